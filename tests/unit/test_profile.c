/* Unit tests for profile.c: every profile rule, wrong-role words, the ready
 * window, overrides, ramps, lag weights with hysteresis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "profile.h"

#include <string.h>

struct world {
	struct probe_report pat, pg;
	struct verdict_probe vpat, vpg;
	struct patroni_json json;
	struct profile_inputs in;
	struct profile profiles[PROFILE_MAX];
	struct profile_state st[PROFILE_MAX];
	int n;
};

static void world_init(struct world *w, const char *endpoint)
{
	memset(w, 0, sizeof(*w));
	w->pat.result = PROBE_OK;
	w->pat.http_status = 200;
	w->pat.in_recovery = -1;
	w->pat.lag_bytes = -1;
	w->pg = w->pat;
	w->pg.http_status = 0;
	w->vpat = (struct verdict_probe){ "patroni", &w->pat, "127.0.0.1:8008", "/primary",
					  "127.0.0.1" };
	w->vpg = (struct verdict_probe){ "pgbouncer", &w->pg, "127.0.0.1:6432", NULL,
					 "127.0.0.1" };
	w->json.role = PATRONI_JSON_ROLE_PRIMARY;
	w->json.running = 1;
	strcpy(w->json.state, "running");
	w->in.patroni = &w->vpat;
	w->in.pg = &w->vpg;
	w->in.json = &w->json;
	w->in.lag_bytes = -1;
	w->in.timeout_ms = 800;
	w->in.ramp_weight = -1;
	w->in.now_us = 1000000;
	w->in.ready_window_ms = 10000;
	profile_from_endpoint(endpoint, &w->profiles[0]);
	w->n = 1;
}

static int add(struct world *w, const char *name)
{
	assert_int_equal(profile_builtin(name, &w->profiles[w->n]), 0);
	return w->n++;
}

static const char *eval(struct world *w, int i)
{
	static char line[VERDICT_LINE_MAX];
	size_t len;

	profile_evaluate(w->profiles, i, &w->st[i], &w->in, line, sizeof(line), &len);
	assert_int_equal(len, strlen(line));
	assert_int_equal(line[len - 1], '\n');
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);
	return line;
}

static void test_predecessor_lines_unchanged(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, "primary");
	w.in.json = NULL; /* OPTIONS mode: no JSON */
	assert_string_equal(eval(&w, 0), "up\n");
	w.pat.result = PROBE_HTTP_STATUS;
	w.pat.http_status = 503;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	w.pg.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	w.pat.result = PROBE_OK;
	assert_string_equal(eval(&w, 0), "down #pgbouncer 127.0.0.1:6432: connection refused\n");
	w.pat.result = PROBE_TIMEOUT;
	assert_string_equal(eval(&w, 0), "down #patroni: timeout after 800ms\n");
	w.pat.result = PROBE_OK;
	w.pg.result = PROBE_OK;
	w.pg.in_recovery = 1;
	assert_string_equal(eval(&w, 0), "down #role mismatch: pgbouncer reaches a replica\n");
}

static void test_rules_from_json(void **state)
{
	struct world w;
	int rep, ro, sync, async, sl;

	(void)state;
	world_init(&w, "primary");
	rep = add(&w, "replica");
	ro = add(&w, "read-only");
	sync = add(&w, "sync");
	async = add(&w, "async");
	sl = add(&w, "standby-leader");
	assert_string_equal(eval(&w, rep), "down #patroni: not replica (primary, running)\n");
	assert_string_equal(eval(&w, ro), "up\n");
	assert_string_equal(eval(&w, sl), "down #patroni: not standby-leader (primary, running)\n");

	w.pat.result = PROBE_HTTP_STATUS; /* /primary says 503 on a replica */
	w.pat.http_status = 503;
	w.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	assert_string_equal(eval(&w, rep), "up\n");
	assert_string_equal(eval(&w, ro), "up\n");
	assert_string_equal(eval(&w, async), "up\n");
	assert_string_equal(eval(&w, sync), "down #patroni: not sync (replica, running)\n");
	w.json.sync_standby = 1;
	assert_string_equal(eval(&w, sync), "up\n");
	assert_string_equal(eval(&w, async), "down #patroni: not async (replica, running)\n");
	w.json.noloadbalance = 1;
	assert_string_equal(eval(&w, rep), "down #patroni: not replica (replica, running)\n");
	w.json.noloadbalance = 0;
	w.json.running = 0;
	strcpy(w.json.state, "starting");
	assert_string_equal(eval(&w, rep), "down #patroni: not replica (replica, starting)\n");
	/* the routing probe must reach a replica for the replica profile */
	w.json.running = 1;
	w.pg.in_recovery = 0;
	assert_string_equal(eval(&w, rep), "down #role mismatch: pgbouncer reaches a primary\n");
	/* no JSON (not Patroni's answer): only the code's profile is known */
	w.in.json = NULL;
	assert_string_equal(eval(&w, rep), "down #patroni 127.0.0.1:8008: no status JSON\n");
}

/* Patroni 4's /quorum and /read-only-quorum (api.py do_GET), from the JSON:
 * a quorum standby is neither sync nor async. */
static void test_quorum_rules_from_json(void **state)
{
	struct world w;
	int q, roq, async, sync;

	(void)state;
	world_init(&w, "primary");
	q = add(&w, "quorum");
	roq = add(&w, "read-only-quorum");
	async = add(&w, "async");
	sync = add(&w, "sync");
	assert_string_equal(eval(&w, q), "down #patroni: not quorum (primary, running)\n");
	assert_string_equal(eval(&w, roq), "up\n");

	w.pat.result = PROBE_HTTP_STATUS;
	w.pat.http_status = 503;
	w.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, q), "down #patroni: not quorum (replica, running)\n");
	assert_string_equal(eval(&w, roq),
			    "down #patroni: not read-only-quorum (replica, running)\n");
	assert_string_equal(eval(&w, async), "up\n");
	w.json.quorum_standby = 1;
	assert_string_equal(eval(&w, q), "up\n");
	assert_string_equal(eval(&w, roq), "up\n");
	assert_string_equal(eval(&w, async), "down #patroni: not async (replica, running)\n");
	assert_string_equal(eval(&w, sync), "down #patroni: not sync (replica, running)\n");
	w.json.role = PATRONI_JSON_ROLE_STANDBY_LEADER;
	w.json.quorum_standby = 0;
	assert_string_equal(eval(&w, roq), "up\n");
	assert_string_equal(eval(&w, q), "down #patroni: not quorum (standby leader, running)\n");
}

static void test_wrong_role_drain_and_ready_window(void **state)
{
	struct world w;
	int rep;

	(void)state;
	world_init(&w, "primary");
	rep = add(&w, "replica");
	w.profiles[rep].wrong = PROFILE_WRONG_DRAIN;
	assert_string_equal(eval(&w, rep), "up drain #patroni: not replica (primary, running)\n");
	w.profiles[rep].wrong = PROFILE_WRONG_MAINT;
	assert_string_equal(eval(&w, rep), "up maint #patroni: not replica (primary, running)\n");
	/* role right again: ready, for the window only */
	w.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, rep), "up ready\n");
	w.in.now_us += 9000000;
	assert_string_equal(eval(&w, rep), "up ready\n");
	w.in.now_us += 2000000;
	assert_string_equal(eval(&w, rep), "up\n");
	assert_string_equal(eval(&w, rep), "up\n");
	/* a failing PgBouncer is down even in the wrong role */
	w.json.role = PATRONI_JSON_ROLE_PRIMARY;
	w.pg.result = PROBE_TIMEOUT;
	assert_string_equal(eval(&w, rep), "down #pgbouncer: timeout after 800ms\n");
	/* never `ready` when happac never said drain/maint */
	world_init(&w, "primary");
	for (int k = 0; k < 3; k++)
		assert_string_equal(eval(&w, 0), "up\n");
}

static void test_operator_override_and_ramp(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, "primary");
	w.in.admin = PROFILE_ADMIN_DRAIN;
	assert_string_equal(eval(&w, 0), "up drain\n");
	w.pg.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, 0),
			    "down drain #pgbouncer 127.0.0.1:6432: connection refused\n");
	w.pg.result = PROBE_OK;
	w.in.admin = PROFILE_ADMIN_MAINT;
	assert_string_equal(eval(&w, 0), "up maint\n");
	w.in.admin = PROFILE_ADMIN_NONE;
	w.in.ramp_weight = 1;
	assert_string_equal(eval(&w, 0), "up ready 1%\n");
	w.in.ramp_weight = 50;
	assert_string_equal(eval(&w, 0), "up ready 50%\n");
	w.in.ramp_weight = -1;
	w.in.now_us += 20000000;
	/* HAProxy keeps the last weight: say 100% from now on */
	assert_string_equal(eval(&w, 0), "up 100%\n");
	assert_string_equal(eval(&w, 0), "up 100%\n");
}

static void test_lag_weights_and_hysteresis(void **state)
{
	struct world w;
	int rep;

	(void)state;
	world_init(&w, "replica");
	w.pat.result = PROBE_OK;
	w.json.role = PATRONI_JSON_ROLE_REPLICA;
	w.pg.in_recovery = 1;
	rep = 0;
	w.profiles[rep].lag_full = 1024 * 1024;
	w.profiles[rep].lag_cut = 11 * 1024 * 1024;
	w.in.lag_bytes = 0;
	assert_string_equal(eval(&w, rep), "up 100%\n");
	w.in.lag_bytes = 6 * 1024 * 1024;   /* half way: ~50% in 5% steps */
	assert_string_equal(eval(&w, rep), "up 50%\n");
	w.in.lag_bytes = 11 * 1024 * 1024;
	assert_string_equal(eval(&w, rep), "down #replication lag 11MB (cut at 11MB)\n");
	w.in.lag_bytes = 5 * 1024 * 1024;   /* below the cut, above lag-full: still cut */
	assert_string_equal(eval(&w, rep), "down #replication lag 5MB (cut at 11MB)\n");
	w.in.lag_bytes = 1024 * 1024;       /* back at lag-full */
	assert_string_equal(eval(&w, rep), "up 100%\n");
	w.in.lag_bytes = -1;                /* unknown lag: keep saying a weight */
	assert_string_equal(eval(&w, rep), "up 100%\n");
}

static void test_new_role_is_held(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, "primary");
	w.in.hold_us = 1800000;
	/* start-up: a healthy primary is up at once (no flap on restart) */
	w.in.first_round = 1;
	assert_string_equal(eval(&w, 0), "up\n");
	w.in.first_round = 0;
	/* a replica... */
	w.pat.result = PROBE_HTTP_STATUS;
	w.pat.http_status = 503;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	/* ...promoted: held for interval + timeout before "up" */
	w.pat.result = PROBE_OK;
	w.in.now_us += 1000000;
	assert_string_equal(eval(&w, 0), "down #patroni: primary role is new, settling\n");
	w.in.now_us += 1799999;
	assert_string_equal(eval(&w, 0), "down #patroni: primary role is new, settling\n");
	w.in.now_us += 1;
	assert_string_equal(eval(&w, 0), "up\n");
	/* a Patroni timeout in between starts the hold again */
	w.pat.result = PROBE_TIMEOUT;
	assert_string_equal(eval(&w, 0), "down #patroni: timeout after 800ms\n");
	w.pat.result = PROBE_OK;
	assert_string_equal(eval(&w, 0), "down #patroni: primary role is new, settling\n");
	w.in.now_us += 1800000;
	assert_string_equal(eval(&w, 0), "up\n");
	/* a PgBouncer failure does not: Patroni's answer never changed */
	w.pg.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, 0), "down #pgbouncer 127.0.0.1:6432: connection refused\n");
	w.pg.result = PROBE_OK;
	assert_string_equal(eval(&w, 0), "up\n");
}

static void test_parse_bytes_and_endpoints(void **state)
{
	int64_t b;
	struct profile p;

	(void)state;
	assert_int_equal(profile_parse_bytes("16MB", &b), 0);
	assert_int_equal(b, 16 * 1024 * 1024);
	assert_int_equal(profile_parse_bytes("512kB", &b), 0);
	assert_int_equal(b, 512 * 1024);
	assert_int_equal(profile_parse_bytes("100", &b), 0);
	assert_int_equal(b, 100);
	assert_int_equal(profile_parse_bytes("1 MB", &b), -1);
	assert_int_equal(profile_parse_bytes("MB", &b), -1);
	assert_int_equal(profile_parse_bytes("9999999999999GB", &b), -1);
	profile_from_endpoint("/replica?lag=16MB", &p);
	assert_int_equal(p.rule, PROFILE_RULE_REPLICA);
	assert_string_equal(p.name, "replica");
	assert_string_equal(p.endpoint, "replica?lag=16MB");
	profile_from_endpoint("leader", &p);
	assert_int_equal(p.rule, PROFILE_RULE_ENDPOINT);
	assert_string_equal(p.name, "default");
	assert_int_equal(profile_builtin("nosuch", &p), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_predecessor_lines_unchanged),
		cmocka_unit_test(test_rules_from_json),
		cmocka_unit_test(test_quorum_rules_from_json),
		cmocka_unit_test(test_wrong_role_drain_and_ready_window),
		cmocka_unit_test(test_operator_override_and_ramp),
		cmocka_unit_test(test_lag_weights_and_hysteresis),
		cmocka_unit_test(test_new_role_is_held),
		cmocka_unit_test(test_parse_bytes_and_endpoints),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
