/* Unit tests for pause.c: what PgBouncer's admin state does to the lines -
 * a pause holds them, a long one drains, DISABLE is down, silence is
 * nothing at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pause.h"
#include "unit.h"

#include <string.h>

#define SEC 1000000LL
#define OK PAUSE_ROUTING_OK
#define SKIP PAUSE_ROUTING_SKIPPED
#define FAIL PAUSE_ROUTING_FAILED

/* One step of a run: the state at a time, what it must mean. */
struct pause_step {
	enum pgadmin_state state;
	enum pause_routing routing;
	int64_t at_us;
	enum pause_effect effect;
	const char *reason;    /* "" for none */
};

static void run(const struct pause_step *steps, size_t n, int grace_ms)
{
	struct pause p;

	memset(&p, 0, sizeof(p));
	for (size_t i = 0; i < n; i++) {
		const struct pause_step *s = &steps[i];

		pause_update(&p, s->state, "timeout", "postgres", s->routing, s->at_us, grace_ms);
		if (p.effect != s->effect || strcmp(p.reason, s->reason))
			fail_msg("step %zu (%s at %llds): effect %d '%s', want %d '%s'", i,
				 pgadmin_state_names[s->state], (long long)(s->at_us / SEC),
				 (int)p.effect, p.reason, (int)s->effect, s->reason);
	}
}

static void test_pause_holds_then_drains(void **state)
{
	static const struct pause_step steps[] = {
		{ PGADMIN_RUNNING, OK, 1 * SEC, PAUSE_NONE, "" },
		{ PGADMIN_DB_PAUSED, OK, 2 * SEC, PAUSE_HOLD, "" },
		{ PGADMIN_DB_PAUSED, SKIP, 61 * SEC, PAUSE_HOLD, "" },
		{ PGADMIN_PAUSED, SKIP, 62 * SEC, PAUSE_DRAIN, "pgbouncer paused for 60s" },
		{ PGADMIN_SUSPENDED, SKIP, 63 * SEC, PAUSE_DRAIN, "pgbouncer suspended for 60s" },
		/* resumed: the round that skipped the routing probe still holds */
		{ PGADMIN_RUNNING, SKIP, 64 * SEC, PAUSE_HOLD, "" },
		/* the pool refilling after RESUME: a failing routing probe holds,
		 * but only for PAUSE_SETTLE_US */
		{ PGADMIN_RUNNING, FAIL, 68 * SEC, PAUSE_HOLD, "" },
		{ PGADMIN_RUNNING, FAIL, 69 * SEC, PAUSE_NONE, "" },
		{ PGADMIN_RUNNING, OK, 70 * SEC, PAUSE_NONE, "" },
		/* a new pause starts its grace again */
		{ PGADMIN_PAUSED, OK, 71 * SEC, PAUSE_HOLD, "" },
	};

	(void)state;
	run(steps, sizeof(steps) / sizeof(steps[0]), 60000);
}

static void test_disabled_and_unknown(void **state)
{
	static const struct pause_step steps[] = {
		{ PGADMIN_DB_DISABLED, OK, 1 * SEC, PAUSE_DOWN,
		  "pgbouncer: database postgres disabled" },
		{ PGADMIN_UNKNOWN, OK, 2 * SEC, PAUSE_NONE, "" },
		/* an unknown round ends a pause: nothing is held on silence */
		{ PGADMIN_PAUSED, OK, 3 * SEC, PAUSE_HOLD, "" },
		{ PGADMIN_UNKNOWN, SKIP, 4 * SEC, PAUSE_NONE, "" },
		{ PGADMIN_PAUSED, OK, 5 * SEC, PAUSE_HOLD, "" },
		{ PGADMIN_PAUSED, OK, 5 * SEC + 500000, PAUSE_DRAIN, "pgbouncer paused for 500ms" },
	};

	(void)state;
	run(steps, sizeof(steps) / sizeof(steps[0]), 500);
}

/* What a new login beside the kept console connection means: waiting is a
 * SUSPEND, refused a shutdown; a worse state the console gave stays. A
 * shutdown drains at once (no grace: the clients are finishing), also while
 * the routing probe is refused; PgBouncer gone, nothing is left of it. */
static void test_no_new_logins(void **state)
{
	struct pgadmin a;
	struct pause p;

	(void)state;
	memset(&p, 0, sizeof(p));
	pause_update(&p, PGADMIN_SHUTTING_DOWN, NULL, "postgres", FAIL, 2 * SEC, 60000);
	assert_int_equal(p.effect, PAUSE_DRAIN);
	assert_string_equal(p.reason, "pgbouncer shutting down");
	pause_update(&p, PGADMIN_SHUTTING_DOWN, NULL, "postgres", FAIL, 90 * SEC, 60000);
	assert_int_equal(p.effect, PAUSE_DRAIN);
	pause_update(&p, PGADMIN_UNKNOWN, "refused", "postgres", FAIL, 91 * SEC, 60000);
	assert_int_equal(p.effect, PAUSE_NONE);
	memset(&a, 0, sizeof(a));
	a.state = PGADMIN_RUNNING;
	pgadmin_no_new_logins(&a, 0); /* SHOW STATE said running: only slow */
	assert_int_equal(a.state, PGADMIN_RUNNING);
	a.no_show_state = 1;
	pgadmin_no_new_logins(&a, 0);
	assert_int_equal(a.state, PGADMIN_SUSPENDED);
	a.state = PGADMIN_RUNNING;
	pgadmin_no_new_logins(&a, 1);
	assert_int_equal(a.state, PGADMIN_SHUTTING_DOWN);
	a.state = PGADMIN_DB_DISABLED;
	pgadmin_no_new_logins(&a, 1);
	assert_int_equal(a.state, PGADMIN_DB_DISABLED);
	assert_true(pgadmin_is_pause(PGADMIN_SUSPENDED));
	assert_false(pgadmin_is_pause(PGADMIN_SHUTTING_DOWN));
}

UNIT_MAIN(cmocka_unit_test(test_pause_holds_then_drains),
	  cmocka_unit_test(test_disabled_and_unknown),
	  cmocka_unit_test(test_no_new_logins))
