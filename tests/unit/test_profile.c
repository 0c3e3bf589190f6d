/* Unit tests for profile.c: every profile rule, wrong-role words, the ready
 * window, overrides, ramps, lag weights with hysteresis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "profile.h"
#include "world.h"

#include <stdio.h>
#include <string.h>

struct world {
	struct unit_world u;
	struct profile profiles[PROFILE_MAX];
	struct profile_state st[PROFILE_MAX];
	int n;
};

static void world_init(struct world *w, const char *endpoint)
{
	memset(w, 0, sizeof(*w));
	unit_world_init(&w->u, "/primary", PATRONI_JSON_ROLE_PRIMARY);
	profile_from_endpoint(endpoint, &w->profiles[0]);
	w->n = 1;
}

/* A replica, as Patroni and the routing probe see it. */
static void replica_world(struct world *w)
{
	world_init(w, "replica");
	w->u.json.role = PATRONI_JSON_ROLE_REPLICA;
	w->u.pg.in_recovery = 1;
}

static int add(struct world *w, const char *name)
{
	assert_int_equal(profile_builtin(name, &w->profiles[w->n]), 0);
	return w->n++;
}

static enum profile_health last_health;

static const char *eval(struct world *w, int i)
{
	static char line[VERDICT_LINE_MAX];
	size_t len;

	last_health = profile_evaluate(w->profiles, i, &w->st[i], &w->u.in, line, sizeof(line),
				       &len);
	assert_int_equal(len, strlen(line));
	assert_int_equal(line[len - 1], '\n');
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);
	return line;
}

/* Profile 0 says `held` now and until hold_us has passed, then up. */
static void assert_held(struct world *w, const char *held, int64_t hold_us)
{
	assert_string_equal(eval(w, 0), held);
	w->u.in.now_us += hold_us - 1;
	assert_string_equal(eval(w, 0), held);
	w->u.in.now_us += 1;
	assert_string_equal(eval(w, 0), "up\n");
}

static void test_predecessor_lines_unchanged(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, "primary");
	w.u.in.json = NULL; /* OPTIONS mode: no JSON */
	assert_string_equal(eval(&w, 0), "up\n");
	w.u.pat.result = PROBE_HTTP_STATUS;
	w.u.pat.http_status = 503;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	w.u.pg.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	w.u.pat.result = PROBE_OK;
	assert_string_equal(eval(&w, 0), "down #pgbouncer 127.0.0.1:6432: connection refused\n");
	w.u.pat.result = PROBE_TIMEOUT;
	assert_string_equal(eval(&w, 0), "down #patroni: timeout after 800ms\n");
	w.u.pat.result = PROBE_OK;
	w.u.pg.result = PROBE_OK;
	w.u.pg.in_recovery = 1;
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

	w.u.pat.result = PROBE_HTTP_STATUS; /* /primary says 503 on a replica */
	w.u.pat.http_status = 503;
	w.u.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	assert_string_equal(eval(&w, rep), "up\n");
	assert_string_equal(eval(&w, ro), "up\n");
	assert_string_equal(eval(&w, async), "up\n");
	assert_string_equal(eval(&w, sync), "down #patroni: not sync (replica, running)\n");
	w.u.json.sync_standby = 1;
	assert_string_equal(eval(&w, sync), "up\n");
	assert_string_equal(eval(&w, async), "down #patroni: not async (replica, running)\n");
	w.u.json.noloadbalance = 1;
	assert_string_equal(eval(&w, rep), "down #patroni: not replica (replica, running)\n");
	w.u.json.noloadbalance = 0;
	w.u.json.running = 0;
	snprintf(w.u.json.state, sizeof(w.u.json.state), "starting");
	assert_string_equal(eval(&w, rep), "down #patroni: not replica (replica, starting)\n");
	/* the routing probe must reach a replica for the replica profile */
	w.u.json.running = 1;
	w.u.pg.in_recovery = 0;
	assert_string_equal(eval(&w, rep), "down #role mismatch: pgbouncer reaches a primary\n");
	/* no JSON (not Patroni's answer): only the code's profile is known */
	w.u.in.json = NULL;
	assert_string_equal(eval(&w, rep), "down #patroni 127.0.0.1:8008: no status JSON\n");
}

/* Patroni 4's /quorum and /read-only-quorum (api.py do_GET), from the JSON:
 * a quorum standby is neither sync nor async. */
static void test_quorum_rules_from_json(void **state)
{
	struct world w;
	struct probe_report lead;
	struct verdict_probe vlead;
	int q, roq, async, sync;

	(void)state;
	world_init(&w, "primary");
	q = add(&w, "quorum");
	roq = add(&w, "read-only-quorum");
	async = add(&w, "async");
	sync = add(&w, "sync");
	assert_string_equal(eval(&w, q), "down #patroni: not quorum (primary, running)\n");
	assert_string_equal(eval(&w, roq), "up\n");

	w.u.pat.result = PROBE_HTTP_STATUS;
	w.u.pat.http_status = 503;
	w.u.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, q), "down #patroni: not quorum (replica, running)\n");
	assert_string_equal(eval(&w, roq),
			    "down #patroni: not read-only-quorum (replica, running)\n");
	assert_string_equal(eval(&w, async), "up\n");
	w.u.json.quorum_standby = 1;
	assert_string_equal(eval(&w, q), "up\n");
	assert_string_equal(eval(&w, roq), "up\n");
	assert_string_equal(eval(&w, async), "down #patroni: not async (replica, running)\n");
	assert_string_equal(eval(&w, sync), "down #patroni: not sync (replica, running)\n");
	w.u.json.role = PATRONI_JSON_ROLE_STANDBY_LEADER;
	w.u.json.quorum_standby = 0;
	/* The leader half of read-only-quorum needs the lock, as read-only's. */
	assert_string_equal(eval(&w, roq), "down #patroni: not read-only-quorum (standby leader, "
					   "running, leader lock unknown)\n");
	memset(&lead, 0, sizeof(lead));
	lead.result = PROBE_OK;
	lead.http_status = 200;
	vlead = (struct verdict_probe){ "patroni-leader", &lead, "127.0.0.1:8008", "/leader",
					"127.0.0.1" };
	w.u.in.leader = &vlead;
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
	w.u.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, rep), "up ready\n");
	w.u.in.now_us += 9000000;
	assert_string_equal(eval(&w, rep), "up ready\n");
	w.u.in.now_us += 2000000;
	assert_string_equal(eval(&w, rep), "up\n");
	assert_string_equal(eval(&w, rep), "up\n");
	/* a failing PgBouncer is down even in the wrong role */
	w.u.json.role = PATRONI_JSON_ROLE_PRIMARY;
	w.u.pg.result = PROBE_TIMEOUT;
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
	w.u.in.admin = PROFILE_ADMIN_DRAIN;
	assert_string_equal(eval(&w, 0), "up drain\n");
	w.u.pg.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, 0),
			    "down drain #pgbouncer 127.0.0.1:6432: connection refused\n");
	w.u.pg.result = PROBE_OK;
	w.u.in.admin = PROFILE_ADMIN_MAINT;
	assert_string_equal(eval(&w, 0), "up maint\n");
	w.u.in.admin = PROFILE_ADMIN_NONE;
	w.u.in.ramp_weight = 1;
	assert_string_equal(eval(&w, 0), "up ready 1%\n");
	w.u.in.ramp_weight = 50;
	assert_string_equal(eval(&w, 0), "up ready 50%\n");
	w.u.in.ramp_weight = -1;
	w.u.in.now_us += 20000000;
	/* HAProxy keeps the last weight: say 100% from now on */
	assert_string_equal(eval(&w, 0), "up 100%\n");
	assert_string_equal(eval(&w, 0), "up 100%\n");
}

static void test_lag_weights_and_hysteresis(void **state)
{
	struct world w;
	int rep;

	(void)state;
	replica_world(&w);
	rep = 0;
	w.profiles[rep].lag_full = 1024 * 1024;
	w.profiles[rep].lag_cut = 11 * 1024 * 1024;
	w.profiles[rep].lag_hold_set = 1; /* no hold-down: test_lag_hold_down */
	w.u.in.lag_bytes = 0;
	assert_string_equal(eval(&w, rep), "up 100%\n");
	w.u.in.lag_bytes = 6 * 1024 * 1024;   /* half way: ~50% in 5% steps */
	assert_string_equal(eval(&w, rep), "up 50%\n");
	w.u.in.lag_bytes = 11 * 1024 * 1024;
	assert_string_equal(eval(&w, rep), "down #replication lag 11MB (cut at 11MB)\n");
	w.u.in.lag_bytes = 5 * 1024 * 1024;   /* below the cut, above lag-full: still cut */
	assert_string_equal(eval(&w, rep), "down #replication lag 5MB (cut at 11MB)\n");
	w.u.in.lag_bytes = 1024 * 1024;       /* back at lag-full */
	assert_string_equal(eval(&w, rep), "up 100%\n");
	w.u.in.lag_bytes = -1;                /* unknown lag: keep saying a weight */
	assert_string_equal(eval(&w, rep), "up 100%\n");
}

static void test_new_role_is_held(void **state)
{
	struct world w;

	(void)state;
	world_init(&w, "primary");
	w.u.in.hold_us = 1800000;
	/* start-up: a healthy primary is up at once (no flap on restart) */
	w.u.in.first_round = 1;
	assert_string_equal(eval(&w, 0), "up\n");
	w.u.in.first_round = 0;
	/* a replica... */
	w.u.pat.result = PROBE_HTTP_STATUS;
	w.u.pat.http_status = 503;
	assert_string_equal(eval(&w, 0), "down #patroni /primary: 503\n");
	/* ...promoted: held for interval + timeout before "up" */
	w.u.pat.result = PROBE_OK;
	w.u.in.now_us += 1000000;
	assert_held(&w, "down #patroni: primary role is new, settling\n", 1800000);
	/* a Patroni timeout in between starts the hold again */
	w.u.pat.result = PROBE_TIMEOUT;
	assert_string_equal(eval(&w, 0), "down #patroni: timeout after 800ms\n");
	w.u.pat.result = PROBE_OK;
	assert_string_equal(eval(&w, 0), "down #patroni: primary role is new, settling\n");
	w.u.in.now_us += 1800000;
	assert_string_equal(eval(&w, 0), "up\n");
	/* a PgBouncer failure does not: Patroni's answer never changed */
	w.u.pg.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, 0), "down #pgbouncer 127.0.0.1:6432: connection refused\n");
	w.u.pg.result = PROBE_OK;
	assert_string_equal(eval(&w, 0), "up\n");
}

static void test_parse_bytes_and_endpoints(void **state)
{
	char err[96];
	int64_t b;
	struct profile p;

	(void)state;
	assert_int_equal(profile_parse_bytes("16MB", &b, err, sizeof(err)), 0);
	assert_int_equal(b, 16 * 1024 * 1024);
	assert_int_equal(profile_parse_bytes("512kB", &b, err, sizeof(err)), 0);
	assert_int_equal(b, 512 * 1024);
	assert_int_equal(profile_parse_bytes("100", &b, err, sizeof(err)), 0);
	assert_int_equal(b, 100);
	assert_int_equal(profile_parse_bytes("1 MB", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "not a size (e.g. 1MB, 512kB; units B, kB, MB, GB, TB)");
	assert_int_equal(profile_parse_bytes("MB", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "not a size (e.g. 1MB, 512kB)");
	assert_int_equal(profile_parse_bytes("9999999999999GB", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "too large (at most 1024TB)");
	profile_from_endpoint("/replica?lag=16MB", &p);
	assert_int_equal(p.rule, PROFILE_RULE_REPLICA);
	assert_string_equal(p.name, "replica");
	assert_string_equal(p.endpoint, "replica?lag=16MB");
	profile_from_endpoint("leader", &p);
	assert_int_equal(p.rule, PROFILE_RULE_ENDPOINT);
	assert_string_equal(p.name, "default");
	assert_int_equal(profile_builtin("nosuch", &p), -1);
}

/* Sizes are checked before they are multiplied: 2^33 GB is 2^63 bytes,
 * which overflowed int64_t (undefined behaviour; it wrapped to INT64_MIN
 * and passed -t as a lag-full far below any lag-cut). Negative sizes get a
 * message of their own. */
static void test_parse_bytes_bounds(void **state)
{
	char err[96];
	int64_t b = 7;

	(void)state;
	assert_int_equal(profile_parse_bytes("8589934592GB", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "too large (at most 1024TB)");
	assert_int_equal(profile_parse_bytes("8388608TB", &b, err, sizeof(err)), -1);
	assert_int_equal(profile_parse_bytes("9223372036854775808", &b, err, sizeof(err)), -1);
	assert_int_equal(profile_parse_bytes("99999999999999999999999999999999kB", &b, err,
					     sizeof(err)), -1);
	assert_string_equal(err, "too large (at most 1024TB)");
	assert_int_equal(b, 7); /* untouched on failure */
	assert_int_equal(profile_parse_bytes("-9223372036854775808", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "a size cannot be negative");
	assert_int_equal(profile_parse_bytes("-1MB", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "a size cannot be negative");
	/* the bound itself, in every unit that reaches it */
	assert_int_equal(profile_parse_bytes("1024TB", &b, err, sizeof(err)), 0);
	assert_true(b == PROFILE_BYTES_MAX);
	assert_int_equal(profile_parse_bytes("1048576GB", &b, err, sizeof(err)), 0);
	assert_true(b == PROFILE_BYTES_MAX);
	assert_int_equal(profile_parse_bytes("1125899906842624", &b, err, sizeof(err)), 0);
	assert_true(b == PROFILE_BYTES_MAX);
	assert_int_equal(profile_parse_bytes("1125899906842625", &b, err, sizeof(err)), -1);
	assert_int_equal(profile_parse_bytes("1025TB", &b, err, sizeof(err)), -1);
	assert_int_equal(profile_parse_bytes("0MB", &b, err, sizeof(err)), 0);
	assert_true(b == 0);
}

/* A "primary" must hold the leader lock, as Patroni's /primary requires:
 * the JSON role alone (pg_is_in_recovery()) says "master" on an isolated
 * old primary too. */
static void test_leader_lock(void **state)
{
	struct world w;
	struct probe_report lead;
	struct verdict_probe vlead;
	int prim, ro, sl;

	(void)state;
	world_init(&w, "replica");
	w.u.vpat.path = "/replica";
	prim = add(&w, "primary");
	ro = add(&w, "read-only");
	sl = add(&w, "standby-leader");
	/* a primary by its JSON: /replica says 503 */
	w.u.pat.result = PROBE_HTTP_STATUS;
	w.u.pat.http_status = 503;
	/* no evidence of the lock this round: never up */
	assert_string_equal(eval(&w, prim),
			    "down #patroni: not primary (primary, running, leader lock unknown)\n");
	assert_int_equal(last_health, PROFILE_HEALTH_DOWN);
	assert_string_equal(eval(&w, ro),
			    "down #patroni: not read-only (primary, running, leader lock unknown)\n");
	/* /leader says 503: every endpoint 503, JSON "master" -> down */
	memset(&lead, 0, sizeof(lead));
	lead.result = PROBE_HTTP_STATUS;
	lead.http_status = 503;
	vlead = (struct verdict_probe){ "patroni-leader", &lead, "127.0.0.1:8008", "/leader",
					"127.0.0.1" };
	w.u.in.leader = &vlead;
	assert_string_equal(eval(&w, prim),
			    "down #patroni: not primary (primary, running, no leader lock)\n");
	assert_string_equal(eval(&w, ro),
			    "down #patroni: not read-only (primary, running, no leader lock)\n");
	/* a failed /leader probe is no evidence either */
	lead.result = PROBE_TIMEOUT;
	assert_string_equal(eval(&w, prim),
			    "down #patroni: not primary (primary, running, leader lock unknown)\n");
	/* the lock held: up */
	lead.result = PROBE_OK;
	lead.http_status = 200;
	assert_string_equal(eval(&w, prim), "up\n");
	assert_string_equal(eval(&w, ro), "up\n");
	assert_string_equal(eval(&w, sl), "down #patroni: not standby-leader (primary, running)\n");
	/* a standby leader needs the lock as well */
	w.u.json.role = PATRONI_JSON_ROLE_STANDBY_LEADER;
	assert_string_equal(eval(&w, sl), "up\n");
	lead.result = PROBE_HTTP_STATUS;
	lead.http_status = 503;
	assert_string_equal(eval(&w, sl),
			    "down #patroni: not standby-leader (standby leader, running, no leader lock)\n");
	/* a replica needs no lock */
	w.u.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, ro), "up\n");

	/* -k primary: its own code is the evidence ([profile rw] rule = primary) */
	world_init(&w, "primary");
	prim = add(&w, "primary");
	w.u.pat.result = PROBE_HTTP_STATUS;
	w.u.pat.http_status = 503;
	assert_string_equal(eval(&w, prim),
			    "down #patroni: not primary (primary, running, no leader lock)\n");
	w.u.pat.result = PROBE_OK;
	assert_string_equal(eval(&w, prim), "up\n");
}

static void test_needs_leader_probe(void **state)
{
	/* the first profile's endpoint, the built-in rules of the others, and
	 * whether that set needs the leader probe */
	static const struct {
		const char *endpoint, *rules[2];
		int want;
	} cases[] = {
		{ "primary", { NULL, NULL }, 0 },
		{ "primary", { "replica", NULL }, 0 },
		{ "primary", { "read-only", NULL }, 0 },
		{ "primary", { "standby-leader", NULL }, 1 },
		{ "replica", { "primary", NULL }, 1 },
		{ "replica", { "read-only", NULL }, 1 },
		{ "replica", { "sync", NULL }, 0 },
		{ "standby-leader", { "read-only", NULL }, 0 },
		{ "standby-leader", { "read-only", "primary" }, 1 },
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct profile p[3];
		int n = 1;

		profile_from_endpoint(cases[c].endpoint, &p[0]);
		for (size_t r = 0; r < 2 && cases[c].rules[r]; r++)
			assert_int_equal(profile_builtin(cases[c].rules[r], &p[n++]), 0);
		if (profile_needs_leader_probe(p, n) != cases[c].want)
			fail_msg("endpoint %s with %s %s: needs_leader_probe is not %d",
				 cases[c].endpoint, cases[c].rules[0] ? cases[c].rules[0] : "-",
				 cases[c].rules[1] ? cases[c].rules[1] : "-", cases[c].want);
	}
}

/* One notion of passing, computed with the line: up without drain/maint. */
static void test_health_is_computed_with_the_line(void **state)
{
	struct world w;
	int rep;

	(void)state;
	world_init(&w, "primary");
	rep = add(&w, "replica");
	w.profiles[rep].wrong = PROFILE_WRONG_DRAIN;
	assert_string_equal(eval(&w, 0), "up\n");
	assert_int_equal(last_health, PROFILE_HEALTH_PASSING);
	assert_string_equal(eval(&w, rep), "up drain #patroni: not replica (primary, running)\n");
	assert_int_equal(last_health, PROFILE_HEALTH_OUT);
	w.profiles[rep].wrong = PROFILE_WRONG_MAINT;
	assert_string_equal(eval(&w, rep), "up maint #patroni: not replica (primary, running)\n");
	assert_int_equal(last_health, PROFILE_HEALTH_OUT);
	w.u.in.admin = PROFILE_ADMIN_DRAIN;
	assert_string_equal(eval(&w, 0), "up drain\n");
	assert_int_equal(last_health, PROFILE_HEALTH_OUT);
	w.u.in.admin = PROFILE_ADMIN_MAINT;
	assert_string_equal(eval(&w, 0), "up maint\n");
	assert_int_equal(last_health, PROFILE_HEALTH_OUT);
	w.u.pg.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, 0),
			    "down maint #pgbouncer 127.0.0.1:6432: connection refused\n");
	assert_int_equal(last_health, PROFILE_HEALTH_DOWN);
	w.u.pg.result = PROBE_OK;
	w.u.in.admin = PROFILE_ADMIN_NONE;
	w.u.in.ramp_weight = 40;
	assert_string_equal(eval(&w, 0), "up ready 40%\n");
	assert_int_equal(last_health, PROFILE_HEALTH_PASSING);
	w.u.in.ramp_weight = -1;
	w.u.in.now_us += 20000000;
	assert_string_equal(eval(&w, 0), "up 100%\n");
	assert_int_equal(last_health, PROFILE_HEALTH_PASSING);
}

/* The side port's paths: Patroni's spellings, exact; anything else is not
 * one (404). */
static void test_rule_for_path(void **state)
{
	static const struct {
		const char *path;
		int rule;
	} cases[] = {
		{ "/", PROFILE_RULE_PRIMARY }, { "/primary", PROFILE_RULE_PRIMARY },
		{ "/master", PROFILE_RULE_PRIMARY }, { "/read-write", PROFILE_RULE_PRIMARY },
		{ "/leader", PROFILE_RULE_LEADER }, { "/replica", PROFILE_RULE_REPLICA },
		{ "/read-only", PROFILE_RULE_READ_ONLY }, { "/sync", PROFILE_RULE_SYNC },
		{ "/synchronous", PROFILE_RULE_SYNC }, { "/async", PROFILE_RULE_ASYNC },
		{ "/asynchronous", PROFILE_RULE_ASYNC },
		{ "/read-only-sync", PROFILE_RULE_READ_ONLY_SYNC },
		{ "/read-only-synchronous", PROFILE_RULE_READ_ONLY_SYNC },
		{ "/quorum", PROFILE_RULE_QUORUM },
		{ "/read-only-quorum", PROFILE_RULE_READ_ONLY_QUORUM },
		{ "/standby-leader", PROFILE_RULE_STANDBY_LEADER },
		{ "/standby_leader", PROFILE_RULE_STANDBY_LEADER },
		{ "/health", PROFILE_RULE_HEALTH }, { "/liveness", PROFILE_RULE_LIVENESS },
		{ "/readiness", PROFILE_RULE_READINESS },
		{ "/primary/", -1 }, { "/Primary", -1 }, { "primary", -1 }, { "", -1 },
		{ "/status", -1 }, { "/metrics", -1 }, { "/endpoint", -1 }, { "/patroni", -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (profile_rule_for_path(cases[i].path) != cases[i].rule)
			fail_msg("%s: rule %d, want %d", cases[i].path,
				 profile_rule_for_path(cases[i].path), cases[i].rule);
}

/* Query parameters: ?lag= where Patroni applies it, tags ignored where
 * Patroni ignores them, else 400 (-1) naming the parameter. */
static void test_parse_query(void **state)
{
	static const struct {
		int rule;
		const char *query;   /* NULL: none */
		int rc;
		long long lag;
		const char *err;
	} cases[] = {
		{ PROFILE_RULE_REPLICA, NULL, 0, -1, "" },
		{ PROFILE_RULE_REPLICA, "", 0, -1, "" },
		{ PROFILE_RULE_REPLICA, "lag=16MB", 0, 16 << 20, "" },
		{ PROFILE_RULE_READ_ONLY, "foo=1&lag=1024&&x", 0, 1024, "" },
		{ PROFILE_RULE_ASYNC, "lag=1kB", 0, 1024, "" },
		{ PROFILE_RULE_PRIMARY, "lag=junk", 0, -1, "" },        /* not used: ignored */
		{ PROFILE_RULE_PRIMARY, "tag_nofailover=true", 0, -1, "" },
		{ PROFILE_RULE_LEADER, "tag_a=b", 0, -1, "" },
		{ PROFILE_RULE_STANDBY_LEADER, "tag_a=b", 0, -1, "" },
		{ PROFILE_RULE_READINESS, "tag_a=b&lag=x", 0, -1, "" },
		{ PROFILE_RULE_REPLICA, "lag=ten", -1, -1,
		  "lag=ten: not a size (e.g. 1MB, 512kB)" },
		{ PROFILE_RULE_REPLICA, "lag", -1, -1, "lag=: not a size (e.g. 1MB, 512kB)" },
		{ PROFILE_RULE_SYNC, "lag=-5", -1, -1, "lag=-5: a size cannot be negative" },
		{ PROFILE_RULE_REPLICA, "tag_dc=east", -1, -1,
		  "tag_dc: happac does not see this node's Patroni tags; "
		  "check tags against Patroni itself" },
		{ PROFILE_RULE_HEALTH, "tag_dc=east", -1, -1,
		  "tag_dc: happac does not see this node's Patroni tags; "
		  "check tags against Patroni itself" },
		{ PROFILE_RULE_PRIMARY, "replication_state=streaming", -1, -1,
		  "replication_state: happac does not see Patroni's replication state; "
		  "check it against Patroni itself" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char q[128], err[160] = "";
		struct profile_query pq;
		int rc;

		snprintf(q, sizeof(q), "%s", cases[i].query ? cases[i].query : "");
		rc = profile_parse_query((enum profile_rule)cases[i].rule,
					 cases[i].query ? q : NULL, &pq, err, sizeof(err));
		if (rc != cases[i].rc || strcmp(err, cases[i].err) ||
		    (rc == 0 && pq.max_lag != cases[i].lag))
			fail_msg("%s ?%s: rc %d lag %lld err '%s'",
				 profile_rule_names[cases[i].rule],
				 cases[i].query ? cases[i].query : "(none)", rc,
				 (long long)pq.max_lag, err);
	}
}

/* The rules only the side port's paths had before: Patroni's leader,
 * read-only-sync, health, liveness and readiness codes. */
static void test_path_only_rules(void **state)
{
	struct world w;
	int leader, ros, health, live, ready;

	(void)state;
	world_init(&w, "primary");
	leader = add(&w, "leader");
	ros = add(&w, "read-only-sync");
	health = add(&w, "health");
	live = add(&w, "liveness");
	ready = add(&w, "readiness");
	for (int i = leader; i <= ready; i++)
		assert_string_equal(eval(&w, i), "up\n");
	w.u.pat.result = PROBE_HTTP_STATUS;
	w.u.pat.http_status = 503;
	w.u.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, leader), "down #patroni: not leader (replica, running)\n");
	assert_string_equal(eval(&w, ros),
			    "down #patroni: not read-only-sync (replica, running)\n");
	w.u.json.sync_standby = 1;
	assert_string_equal(eval(&w, ros), "up\n");
	w.u.json.running = 0;
	snprintf(w.u.json.state, sizeof(w.u.json.state), "starting");
	assert_string_equal(eval(&w, health), "down #patroni: not health (replica, starting)\n");
	assert_string_equal(eval(&w, ready),
			    "down #patroni: not readiness (replica, starting)\n");
	assert_string_equal(eval(&w, live), "up\n");
	/* a primary that lost the lock: not the leader, yet healthy and live */
	w.u.json.role = PATRONI_JSON_ROLE_PRIMARY;
	w.u.json.running = 1;
	snprintf(w.u.json.state, sizeof(w.u.json.state), "running");
	assert_string_equal(eval(&w, leader),
			    "down #patroni: not leader (primary, running, no leader lock)\n");
	assert_string_equal(eval(&w, health), "up\n");
	/* Patroni not answering: every path down, liveness too */
	w.u.pat.result = PROBE_REFUSED;
	assert_string_equal(eval(&w, live), "down #patroni 127.0.0.1:8008: connection refused\n");
}


/* streaming = required (the default) on the replica-type rules: down at once
 * when the replica does not stream, back after the hold; unknown changes
 * nothing; `ignored` turns it off. */
static void test_streaming_required(void **state)
{
	struct world w;
	int ro, ign;

	(void)state;
	world_init(&w, "replica");
	w.u.json.role = PATRONI_JSON_ROLE_REPLICA;
	w.u.json.version[0] = 4;
	w.u.in.hold_us = 2000000;
	snprintf(w.u.json.replication_state, sizeof(w.u.json.replication_state), "streaming");
	ro = add(&w, "read-only");
	ign = add(&w, "replica");
	snprintf(w.profiles[ign].name, sizeof(w.profiles[ign].name), "replica-any");
	w.profiles[ign].streaming = PROFILE_STREAMING_IGNORED;
	w.u.in.first_round = 1;
	assert_string_equal(eval(&w, 0), "up\n");
	assert_string_equal(eval(&w, ro), "up\n");
	assert_string_equal(eval(&w, ign), "up\n");
	w.u.in.first_round = 0;
	/* the field disappears (walsender gone, replication logins refused) */
	w.u.json.replication_state[0] = '\0';
	assert_string_equal(eval(&w, 0),
			    "down #replica not streaming (patroni: no replication_state)\n");
	assert_string_equal(eval(&w, ro),
			    "down #replica not streaming (patroni: no replication_state)\n");
	assert_string_equal(eval(&w, ign), "up\n");
	/* streaming again: held like a new role, so a flapping walreceiver
	 * does not flap the server */
	snprintf(w.u.json.replication_state, sizeof(w.u.json.replication_state), "streaming");
	w.u.in.now_us += 1000000;
	assert_held(&w, "down #replica streaming again, settling\n", 2000000);
	/* Patroni 3.0.2 cannot say: nothing is checked (the log and /status
	 * say so, replica_watch) */
	w.u.json.version[0] = 3;
	w.u.json.version[2] = 2;
	w.u.json.replication_state[0] = '\0';
	assert_string_equal(eval(&w, 0), "up\n");
	/* the routing probe can: a walreceiver that is not streaming */
	w.u.pg.in_recovery = 1;
	w.u.pg.wal_receiver = 0;
	assert_string_equal(eval(&w, 0), "down #replica not streaming (pg_stat_wal_receiver)\n");
	/* the word lost while cut: stays cut, says why */
	w.u.pg.in_recovery = -1;
	w.u.pg.wal_receiver = -1;
	assert_string_equal(eval(&w, 0),
			    "down #replica not streaming (no word since: patroni 3.0.2 "
			    "reports no replication_state (3.0.4+))\n");
	/* a primary answering read-only streams nothing */
	w.u.json.role = PATRONI_JSON_ROLE_PRIMARY;
	w.u.in.leader = &w.u.vpat;
	w.u.in.first_round = 1;
	assert_string_equal(eval(&w, ro), "up\n");
}

/* A lag at or above lag-cut cuts only after lag-hold; the return waits for
 * lag-full held as long; the lag in time works the same way. */
static void test_lag_hold_down(void **state)
{
	struct world w;
	const int64_t s = 1000000, mb = 1024 * 1024;

	(void)state;
	replica_world(&w);
	w.profiles[0].lag_full = 1 * mb;
	w.profiles[0].lag_cut = 8 * mb;
	w.u.in.lag_bytes = 0;
	assert_string_equal(eval(&w, 0), "up 100%\n");
	/* a 4 s spike: weight 1%, never down */
	w.u.in.lag_bytes = 20 * mb;
	assert_string_equal(eval(&w, 0), "up 1%\n");
	w.u.in.now_us += 4 * s;
	assert_string_equal(eval(&w, 0), "up 1%\n");
	w.u.in.lag_bytes = 0;
	w.u.in.now_us += s;
	assert_string_equal(eval(&w, 0), "up 100%\n");
	/* 5 s at or above the cut: cut */
	w.u.in.lag_bytes = 8 * mb;
	assert_string_equal(eval(&w, 0), "up 1%\n");
	w.u.in.now_us += 5 * s;
	assert_string_equal(eval(&w, 0), "down #replication lag 8MB (cut at 8MB)\n");
	/* under the cut but above lag-full: still cut */
	w.u.in.lag_bytes = 2 * mb;
	w.u.in.now_us += 10 * s;
	assert_string_equal(eval(&w, 0), "down #replication lag 2MB (cut at 8MB)\n");
	/* at lag-full: back 5 s later */
	w.u.in.lag_bytes = 1 * mb;
	assert_string_equal(eval(&w, 0), "down #replication lag 1MB (cut at 8MB)\n");
	w.u.in.now_us += 5 * s - 1;
	assert_string_equal(eval(&w, 0), "down #replication lag 1MB (cut at 8MB)\n");
	w.u.in.now_us += 1;
	assert_string_equal(eval(&w, 0), "up 100%\n");

	/* in time: idle (replay at the primary's WAL end) is no lag */
	replica_world(&w);
	w.profiles[0].lag_full_ms = 1000;
	w.profiles[0].lag_cut_ms = 10000;
	w.profiles[0].lag_hold_set = 1;
	w.profiles[0].lag_hold_ms = 2000;
	w.u.pg.replay_age_ms = 0;
	assert_string_equal(eval(&w, 0), "up 100%\n");
	/* writes after an hour of idling: not an hour of lag */
	w.u.pg.replay_age_ms = 3600 * 1000;
	w.u.in.now_us += s;
	assert_string_equal(eval(&w, 0), "up 100%\n");
	/* really behind: counted from when it fell behind */
	w.u.in.now_us += 10 * s;
	assert_string_equal(eval(&w, 0), "up 1%\n");
	w.u.in.now_us += 2 * s;
	assert_string_equal(eval(&w, 0), "down #replication lag 12.0s (cut at 10.0s)\n");
	w.u.pg.replay_age_ms = 0;
	assert_string_equal(eval(&w, 0), "down #replication lag 0ms (cut at 10.0s)\n");
	w.u.in.now_us += 2 * s;
	assert_string_equal(eval(&w, 0), "up 100%\n");
}

/* Failsafe: the primary keeps the lead without a DCS view; a sync rule on a
 * replica without one says why it is not sync. */
static void test_failsafe_and_no_sync_view(void **state)
{
	struct world w;
	int prim, sync;

	(void)state;
	world_init(&w, "health");
	prim = add(&w, "primary");
	sync = add(&w, "sync");
	w.u.in.leader = &w.u.vpat; /* OPTIONS /leader: 200 */
	w.u.in.first_round = 1;
	/* A DCS outage empties the node's view (cluster_unlocked) while
	 * Patroni still leads: its /primary is is_leader(), the evidence. */
	w.u.json.cluster_unlocked = 1;
	assert_string_equal(eval(&w, prim), "up\n");
	w.u.json.failsafe_active = 1;
	assert_string_equal(eval(&w, prim), "up\n");
	w.u.json.role = PATRONI_JSON_ROLE_REPLICA;
	assert_string_equal(eval(&w, sync),
			    "down #patroni: not sync (replica, running, sync state unknown: "
			    "no leader or no DCS)\n");
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
		cmocka_unit_test(test_streaming_required),
		cmocka_unit_test(test_lag_hold_down),
		cmocka_unit_test(test_failsafe_and_no_sync_view),
		cmocka_unit_test(test_new_role_is_held),
		cmocka_unit_test(test_parse_bytes_and_endpoints),
		cmocka_unit_test(test_parse_bytes_bounds),
		cmocka_unit_test(test_leader_lock),
		cmocka_unit_test(test_needs_leader_probe),
		cmocka_unit_test(test_health_is_computed_with_the_line),
		cmocka_unit_test(test_rule_for_path),
		cmocka_unit_test(test_parse_query),
		cmocka_unit_test(test_path_only_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
