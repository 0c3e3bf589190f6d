/* Unit tests for lib_pq.c: which connection options are secrets. happac
 * hides a value by libpq's own flag (dispchar "*"), so a secret a later libpq
 * adds is hidden without a change here; the built-in list must cover every
 * secret the installed libpq flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib_pq.h"

#include <string.h>

static void test_libpq_flags_are_in_the_builtin_list(void **state)
{
	char err[256];
	PQconninfoOption *opts;
	int password = 0, sslpassword = 0, secrets = 0;

	(void)state;
	assert_int_equal(lib_pq_load(err, sizeof(err)), 0);
	/* Every keyword libpq knows, with its flags: what PQconndefaults()
	 * lists, without its side work (environment, service file). */
	opts = lib_pq.PQconninfoParse("", NULL);
	assert_non_null(opts);
	for (PQconninfoOption *p = opts; p->keyword; p++) {
		int flagged = p->dispchar && strchr(p->dispchar, '*') != NULL;

		assert_int_equal(lib_pq_secret(p), flagged || lib_pq_secret_keyword(p->keyword));
		if (!flagged)
			continue;
		secrets++;
		if (!lib_pq_secret_keyword(p->keyword))
			fail_msg("libpq flags %s as a secret; add it to lib_pq_secret_keyword()",
				 p->keyword);
		password |= !strcmp(p->keyword, "password");
		sslpassword |= !strcmp(p->keyword, "sslpassword");
	}
	lib_pq.PQconninfoFree(opts);
	/* libpq 13 and later flag both. */
	assert_true(password);
	assert_true(sslpassword);
	assert_true(secrets >= 2);
}

static void test_secret_by_flag_or_list(void **state)
{
	PQconninfoOption future = { .keyword = "oauth_token_of_2030", .dispchar = "*" };
	PQconninfoOption shown = { .keyword = "user", .dispchar = "" };
	PQconninfoOption debug = { .keyword = "options", .dispchar = "D" };
	PQconninfoOption noflag = { .keyword = "sslpassword", .dispchar = NULL };

	(void)state;
	assert_true(lib_pq_secret(&future));  /* a keyword we never heard of */
	assert_false(lib_pq_secret(&shown));
	assert_false(lib_pq_secret(&debug));
	assert_true(lib_pq_secret(&noflag));  /* the list without a flag */
	assert_true(lib_pq_secret_keyword("password"));
	assert_true(lib_pq_secret_keyword("oauth_client_secret"));
	assert_false(lib_pq_secret_keyword("passfile"));
	assert_false(lib_pq_secret_keyword("sslkey"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_libpq_flags_are_in_the_builtin_list),
		cmocka_unit_test(test_secret_by_flag_or_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
