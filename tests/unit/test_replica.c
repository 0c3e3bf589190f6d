/* Unit tests for replica.c: where "streaming" comes from (and where it
 * cannot be known), the lag hold-down state machine, and the lag in time
 * on an idle primary versus a replica that is behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "replica.h"

#include <stdio.h>
#include <string.h>

static void replica_json(struct patroni_json *j, int major, int minor, int patch,
			 const char *state)
{
	memset(j, 0, sizeof(*j));
	j->role = PATRONI_JSON_ROLE_REPLICA;
	j->running = 1;
	j->version[0] = major;
	j->version[1] = minor;
	j->version[2] = patch;
	snprintf(j->replication_state, sizeof(j->replication_state), "%s", state);
}

static void test_streaming_sources(void **state)
{
	struct patroni_json j;
	struct probe_report pg;
	struct replica_facts f;

	(void)state;
	memset(&pg, 0, sizeof(pg));
	pg.result = PROBE_OK;
	pg.in_recovery = -1;
	pg.wal_receiver = -1;
	/* Patroni's JSON alone: 3.0.4+ reports replication_state whenever the
	 * replica streams, so its absence there means "not streaming"; Patroni
	 * 3.0.2, or a JSON without a version, cannot say: unknown, not "no". */
	static const struct {
		int v[3];
		const char *state;
		enum replica_streaming want;
		const char *why;
	} cases[] = {
		{ { 4, 0, 7 }, "streaming", REPLICA_STREAMING_YES, "patroni: streaming" },
		{ { 4, 0, 7 }, "", REPLICA_STREAMING_NO, "patroni: no replication_state" },
		{ { 3, 0, 4 }, "in archive recovery", REPLICA_STREAMING_NO,
		  "patroni: in archive recovery" },
		{ { 3, 0, 2 }, "", REPLICA_STREAMING_UNKNOWN,
		  "patroni 3.0.2 reports no replication_state (3.0.4+)" },
		{ { 0, 0, 0 }, "", REPLICA_STREAMING_UNKNOWN,
		  "patroni's version is not in its JSON" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		replica_json(&j, cases[i].v[0], cases[i].v[1], cases[i].v[2], cases[i].state);
		replica_streaming(&j, &pg, &f);
		assert_int_equal(f.streaming, cases[i].want);
		assert_string_equal(f.why, cases[i].why);
	}
	/* the routing probe's walreceiver is the direct word, on any Patroni */
	replica_json(&j, 3, 0, 2, "");
	pg.in_recovery = 1;
	pg.wal_receiver = 0;
	replica_streaming(&j, &pg, &f);
	assert_int_equal(f.streaming, REPLICA_STREAMING_NO);
	assert_string_equal(f.why, "pg_stat_wal_receiver");
	pg.wal_receiver = 1;
	replica_streaming(NULL, &pg, &f);
	assert_int_equal(f.streaming, REPLICA_STREAMING_YES);
	/* hidden walreceiver (no pg_read_all_stats): Patroni's word again */
	pg.wal_receiver = -1;
	replica_json(&j, 4, 0, 7, "streaming");
	replica_streaming(&j, &pg, &f);
	assert_int_equal(f.streaming, REPLICA_STREAMING_YES);
	replica_streaming(NULL, &pg, &f);
	assert_int_equal(f.streaming, REPLICA_STREAMING_UNKNOWN);
	/* a primary has nothing to stream; a failed probe is no evidence */
	pg.in_recovery = 0;
	replica_streaming(&j, &pg, &f);
	assert_int_equal(f.streaming, REPLICA_STREAMING_NA);
	j.role = PATRONI_JSON_ROLE_PRIMARY;
	pg.result = PROBE_TIMEOUT;
	replica_streaming(&j, &pg, &f);
	assert_int_equal(f.streaming, REPLICA_STREAMING_NA);
	/* a standby leader streams from its source cluster */
	replica_json(&j, 4, 0, 7, "");
	j.role = PATRONI_JSON_ROLE_STANDBY_LEADER;
	replica_streaming(&j, NULL, &f);
	assert_int_equal(f.streaming, REPLICA_STREAMING_NO);
}

static void test_hold_down(void **state)
{
	struct replica_hold h;
	const int64_t s = 1000000, hold = 5 * s;
	int64_t t = 10 * s;

	(void)state;
	memset(&h, 0, sizeof(h));
	/* a spike shorter than the hold does not cut */
	assert_int_equal(replica_hold_step(&h, 1, 0, t, hold), 0);
	assert_int_equal(replica_hold_step(&h, 1, 0, t + 4 * s, hold), 0);
	assert_int_equal(replica_hold_step(&h, 0, 1, t + 5 * s, hold), 0);
	/* and the next one starts its count afresh */
	t += 6 * s;
	assert_int_equal(replica_hold_step(&h, 1, 0, t, hold), 0);
	assert_int_equal(replica_hold_step(&h, 1, 0, t + hold - 1, hold), 0);
	assert_int_equal(replica_hold_step(&h, 1, 0, t + hold, hold), 1);
	/* cut: between full and cut is neither, so it stays cut */
	t += hold;
	assert_int_equal(replica_hold_step(&h, 0, 0, t + s, hold), 1);
	assert_int_equal(replica_hold_step(&h, 0, 1, t + 2 * s, hold), 1);
	/* back above full resets the return's count */
	assert_int_equal(replica_hold_step(&h, 0, 0, t + 3 * s, hold), 1);
	assert_int_equal(replica_hold_step(&h, 0, 1, t + 4 * s, hold), 1);
	assert_int_equal(replica_hold_step(&h, 0, 1, t + 4 * s + hold - 1, hold), 1);
	assert_int_equal(replica_hold_step(&h, 0, 1, t + 4 * s + hold, hold), 0);
	/* hold 0: at once, both ways */
	assert_int_equal(replica_hold_step(&h, 1, 0, t + 20 * s, 0), 1);
	assert_int_equal(replica_hold_step(&h, 0, 1, t + 20 * s, 0), 0);
}

static void test_time_lag_idle_versus_behind(void **state)
{
	struct replica_age a;
	const int64_t s = 1000000;
	int64_t t = 100 * s;

	(void)state;
	memset(&a, 0, sizeof(a));
	/* unknown (no walreceiver): no lag, nothing remembered */
	assert_int_equal(replica_time_lag(&a, -1, t), -1);
	/* idle primary, replay at its WAL end: 0 however old the last commit */
	assert_int_equal(replica_time_lag(&a, 0, t), 0);
	/* the primary wrote after an hour of idling: the last replayed commit
	 * is an hour old, but the replica was caught up one round ago */
	t += s;
	assert_int_equal(replica_time_lag(&a, 3600 * 1000, t), 0);
	t += 2 * s;
	assert_int_equal(replica_time_lag(&a, 3602 * 1000, t), 2000);
	/* under steady writes the commit age is the smaller measure */
	t += 10 * s;
	assert_int_equal(replica_time_lag(&a, 1500, t), 1500);
	/* caught up again, then behind: counted from then */
	assert_int_equal(replica_time_lag(&a, 0, t), 0);
	assert_int_equal(replica_time_lag(&a, 90000, t + s), 0);
	/* first sight (happac just started) of a replica behind: the age */
	memset(&a, 0, sizeof(a));
	assert_int_equal(replica_time_lag(&a, 90000, t), 90000);
	assert_int_equal(replica_time_lag(&a, 91000, t + s), 91000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_streaming_sources),
		cmocka_unit_test(test_hold_down),
		cmocka_unit_test(test_time_lag_idle_versus_behind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
