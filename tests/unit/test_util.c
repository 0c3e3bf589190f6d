/* Unit tests for util.c: the one JSON string, timestamp and bracket rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

#include <string.h>

static void test_json_quote(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(util_json_quote(buf, sizeof(buf), "up"), 4);
	assert_string_equal(buf, "\"up\"");
	util_json_quote(buf, sizeof(buf), "a\"b\\c");
	assert_string_equal(buf, "\"a\\\"b\\\\c\"");
	/* Every control character as \u00XX, a newline and DEL included. */
	util_json_quote(buf, sizeof(buf), "up\n\t\x01\x7f");
	assert_string_equal(buf, "\"up\\u000a\\u0009\\u0001\\u007f\"");
	/* UTF-8 passes as it is. */
	util_json_quote(buf, sizeof(buf), "é");
	assert_string_equal(buf, "\"é\"");
	/* Too small: the length needed, and no escape cut in half. */
	assert_int_equal(util_json_quote(buf, 5, "ab\"c"), 7);
	assert_string_equal(buf, "\"ab");
	assert_int_equal(util_json_quote(NULL, 0, "abc"), 5);
}

static void test_iso8601(void **state)
{
	char buf[UTIL_ISO8601_SIZE];

	(void)state;
	util_iso8601(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	util_iso8601(1732669323.456789, buf, sizeof(buf));
	assert_string_equal(buf, "2024-11-27T01:02:03.456Z");
}

static void test_brackets(void **state)
{
	char host[64];
	const char *port;
	int b;

	(void)state;
	assert_int_equal(util_unbracket("[::1]", 5, host, sizeof(host)), 1);
	assert_string_equal(host, "::1");
	assert_int_equal(util_unbracket("10.0.0.1", 8, host, sizeof(host)), 0);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(util_unbracket("[::1", 4, host, sizeof(host)), -1);
	assert_int_equal(util_unbracket("a]b", 3, host, sizeof(host)), -1);
	assert_int_equal(util_unbracket("abcdef", 6, host, 6), -1);

	port = util_split_hostport("[::1]:8080", host, sizeof(host), &b);
	assert_non_null(port);
	assert_string_equal(port, "8080");
	assert_string_equal(host, "::1");
	assert_int_equal(b, 1);
	port = util_split_hostport("127.0.0.1:80", host, sizeof(host), &b);
	assert_string_equal(port, "80");
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(b, 0);
	port = util_split_hostport(":80", host, sizeof(host), &b);
	assert_string_equal(port, "80");
	assert_string_equal(host, "");
	assert_null(util_split_hostport("::1:80", host, sizeof(host), &b));
	assert_null(util_split_hostport("[::1]80", host, sizeof(host), &b));
	assert_null(util_split_hostport("[::1]", host, sizeof(host), &b));
	assert_null(util_split_hostport("nocolon", host, sizeof(host), &b));

	util_host_bracketed(host, sizeof(host), "::1");
	assert_string_equal(host, "[::1]");
	util_host_bracketed(host, sizeof(host), "db.example");
	assert_string_equal(host, "db.example");
}

static void test_clocks(void **state)
{
	int64_t a = util_mono_us(), b = util_mono_us();

	(void)state;
	assert_true(a > 0 && b >= a);
	assert_true(util_wall_s() > 1.7e9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_quote),
		cmocka_unit_test(test_iso8601),
		cmocka_unit_test(test_brackets),
		cmocka_unit_test(test_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
