/* Unit tests for answer.c: what a profile keeps across a reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"
#include "world.h"

#include "answer.h"

#include <stdio.h>
#include <string.h>

#define HOLD_US 1800000 /* interval + timeout: 1s + 800ms */

/* A replica node: Patroni's /replica says 200, its JSON says replica. */
struct world {
	struct unit_world u;
	struct profile profiles[PROFILE_MAX];
	int n;
	struct answer *a;
};

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	unit_world_init(&w->u, "/replica", PATRONI_JSON_ROLE_REPLICA);
	w->u.in.hold_us = HOLD_US;
	w->u.in.first_round = 1;
	profile_from_endpoint("replica", &w->profiles[0]);
	w->n = 1;
	w->a = answer_new();
	assert_non_null(w->a);
}

/* A profile called name with the built-in rule of rule. */
static void named(struct profile *p, const char *name, const char *rule)
{
	assert_int_equal(profile_builtin(rule, p), 0);
	snprintf(p->name, sizeof(p->name), "%s", name);
}

static void install(struct world *w)
{
	answer_set_profiles(w->a, w->profiles, w->n, 60000);
}

/* One round, t_us after the previous one. */
static void round_at(struct world *w, int64_t t_us)
{
	w->u.in.now_us += t_us;
	answer_update(w->a, &w->u.in, "test");
	w->u.in.first_round = 0;
}

static const char *line(struct world *w, int i)
{
	size_t len;

	return answer_line(w->a, i, &len, NULL);
}

/* The start of every test: the built-in "replica" profile, and "app" with
 * the built-in rule app_rule unless that is NULL, installed and run for a
 * first round and one more a second later. */
static void start(struct world *w, const char *app_rule)
{
	world_init(w);
	if (app_rule)
		named(&w->profiles[w->n++], "app", app_rule);
	install(w);
	round_at(w, 0);
	round_at(w, 1000000);
}

/* "app" has been up for long by its rule; a reload gives "app" another rule
 * that this node also satisfies. The role is new by that rule: it settles
 * for the hold like any role that just became right, instead of inheriting
 * the old rule's "right since long ago". */
static void test_new_rule_same_name_settles(void **state)
{
	struct world w;

	(void)state;
	start(&w, "read-only");
	for (int i = 0; i < 4; i++)
		round_at(&w, 1000000);
	assert_string_equal(line(&w, 1), "up\n");
	/* reload: "app" now means replica (this node is one) */
	named(&w.profiles[1], "app", "replica");
	install(&w);
	round_at(&w, 1000000);
	assert_string_equal(line(&w, 1), "down #patroni: replica role is new, settling\n");
	round_at(&w, HOLD_US - 100000);
	assert_string_equal(line(&w, 1), "down #patroni: replica role is new, settling\n");
	round_at(&w, 200000);
	assert_string_equal(line(&w, 1), "up\n");
	answer_free(w.a);
}

/* The same rule under the same name keeps its memory: a reload that
 * changes nothing about a profile does not flap it. */
static void test_same_rule_keeps_hold_state(void **state)
{
	struct world w;

	(void)state;
	start(&w, "replica");
	assert_string_equal(line(&w, 1), "up\n");
	/* reload with another profile added: "app" is unchanged */
	named(&w.profiles[w.n++], "other", "sync");
	install(&w);
	round_at(&w, 1000000);
	assert_string_equal(line(&w, 1), "up\n");
	assert_string_equal(line(&w, 0), "up\n");
	answer_free(w.a);
}

/* A role that is settling under the new rule keeps settling from where it
 * started when the next reload leaves the rule alone. */
static void test_settling_continues_across_unchanged_reload(void **state)
{
	struct world w;

	(void)state;
	start(&w, "read-only");
	named(&w.profiles[1], "app", "replica");
	install(&w);
	round_at(&w, 1000000);
	assert_string_equal(line(&w, 1), "down #patroni: replica role is new, settling\n");
	install(&w); /* the same profiles again */
	round_at(&w, HOLD_US);
	assert_string_equal(line(&w, 1), "up\n");
	answer_free(w.a);
}

/* The first profile's endpoint is what Patroni's status code answers: a
 * new endpoint under the same name is a new rule too. */
static void test_new_endpoint_same_name_settles(void **state)
{
	struct world w;

	(void)state;
	start(&w, NULL);
	assert_string_equal(line(&w, 0), "up\n");
	profile_from_endpoint("replica?lag=16MB", &w.profiles[0]);
	assert_string_equal(w.profiles[0].name, "replica");
	install(&w);
	round_at(&w, 1000000);
	assert_string_equal(line(&w, 0), "down #patroni: replica role is new, settling\n");
	answer_free(w.a);
}

static const char *path_line(struct world *w, enum profile_rule rule, int *passing)
{
	size_t len;
	enum profile_health h;
	const char *l = answer_path_line(w->a, rule, &len, &h);

	*passing = h == PROFILE_HEALTH_PASSING;
	return l;
}

/* Every built-in rule is judged each round for the side port's Patroni
 * paths, configured or not, from the same inputs as the profiles; the
 * profiles' lines stay what they were. PgBouncer down: every path down. */
static void test_every_rule_has_a_path_line(void **state)
{
	struct world w;
	int passing;

	(void)state;
	world_init(&w);
	install(&w);
	assert_string_equal(path_line(&w, PROFILE_RULE_REPLICA, &passing), "down #starting\n");
	assert_false(passing);
	round_at(&w, 0);
	assert_string_equal(path_line(&w, PROFILE_RULE_REPLICA, &passing), "up\n");
	assert_true(passing);
	assert_string_equal(path_line(&w, PROFILE_RULE_READINESS, &passing), "up\n");
	assert_true(passing);
	assert_string_equal(path_line(&w, PROFILE_RULE_PRIMARY, &passing),
			    "down #patroni: not primary (replica, running)\n");
	assert_false(passing);
	assert_string_equal(path_line(&w, PROFILE_RULE_LEADER, &passing),
			    "down #patroni: not leader (replica, running)\n");
	assert_int_equal(answer_count(w.a), 1);
	assert_string_equal(line(&w, 0), "up\n");
	w.u.pg.result = PROBE_REFUSED;
	round_at(&w, 1000000);
	for (int r = 0; r < PROFILE_RULE_ENDPOINT; r++) {
		assert_false(path_line(&w, (enum profile_rule)r, &passing)[0] == 'u');
		assert_false(passing);
	}
	answer_free(w.a);
}

UNIT_MAIN(cmocka_unit_test(test_every_rule_has_a_path_line),
	  cmocka_unit_test(test_new_rule_same_name_settles),
	  cmocka_unit_test(test_same_rule_keeps_hold_state),
	  cmocka_unit_test(test_settling_continues_across_unchanged_reload),
	  cmocka_unit_test(test_new_endpoint_same_name_settles))
