/* Unit tests for options.c: every bad-input case of the agent daemon issue,
 * the predecessor's command line, durations and defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "options.h"

#include <stdio.h>
#include <string.h>

static enum options_result parse(struct options *o, char *err, size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	FILE *devnull = fopen("/dev/null", "w");
	enum options_result r;

	argv[argc++] = "happac";
	va_start(ap, errlen);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	options_init(o);
	err[0] = '\0';
	r = options_parse_argv(o, argc, argv, devnull, err, errlen);
	fclose(devnull);
	return r;
}

static void expect_error(const char *needle, ...)
{
	/* Same as parse(), with the error message checked for needle. */
	char *argv[32];
	int argc = 0;
	va_list ap;
	struct options o;
	char err[256] = "";
	enum options_result r;

	argv[argc++] = "happac";
	va_start(ap, needle);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	options_init(&o);
	r = options_parse_argv(&o, argc, argv, stdout, err, sizeof(err));
	assert_int_equal(r, OPTIONS_ERROR);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not name '%s'", err, needle);
	assert_null(strchr(err, '\n'));
	options_free(&o);
}

static void test_predecessor_command_line(void **state)
{
	struct options o;
	char err[256];

	(void)state;
	/* The shipped unit: -h H -p P -r R -x "" -o O -k E */
	assert_int_equal(parse(&o, err, sizeof(err), "-h", "10.0.0.1", "-p", "5555",
			       "-r", "6432", "-x", "", "-o", "8008", "-k", "primary",
			       NULL),
			 OPTIONS_OK);
	assert_string_equal(o.patroni_host, "10.0.0.1");
	assert_int_equal(o.port, 5555);
	assert_int_equal(o.pg_port, 6432);
	assert_int_equal(o.patroni_port, 8008);
	assert_string_equal(o.patroni_endpoint, "primary");
	assert_string_equal(o.pg_isready_path, "");
	assert_int_equal(o.pg_isready_path_given, 1);
	options_free(&o);
}

static void test_defaults(void **state)
{
	struct options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "-h", "db1", "-r", "6432", NULL),
			 OPTIONS_OK);
	assert_int_equal(o.port, 5555);
	assert_int_equal(o.patroni_port, 8008);
	assert_string_equal(o.patroni_endpoint, "primary");
	assert_int_equal(o.interval_ms, 1000);
	assert_int_equal(o.timeout_ms, 800);
	assert_int_equal(o.listen_count, 0);
	assert_int_equal(o.pg_isready_path_given, 0);
	assert_int_equal(options_stale_after_ms(&o), 5400);
	options_free(&o);
}

static void test_long_forms_and_new_options(void **state)
{
	struct options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "--patroni-host=[::1]",
			       "--pg-is-ready-port", "6432", "--port=5556",
			       "--patroni-port=8009", "--patroni-healthcheck=/replica?lag=16MB",
			       "--listen", "127.0.0.1", "--listen", "[::1]",
			       "--interval", "1.5s", "--timeout", "300", "--stale-after", "1m",
			       "-v", NULL),
			 OPTIONS_OK);
	assert_string_equal(o.patroni_host, "::1");
	assert_string_equal(o.patroni_endpoint, "replica?lag=16MB");
	assert_int_equal(o.listen_count, 2);
	assert_string_equal(o.listen[1], "::1");
	assert_int_equal(o.interval_ms, 1500);
	assert_int_equal(o.timeout_ms, 300);
	assert_int_equal(o.stale_after_ms, 60000);
	assert_int_equal(o.verbose, 1);
	options_free(&o);
}

static void test_bad_input(void **state)
{
	(void)state;
	expect_error("--bogus", "-h", "x", "-r", "1", "--bogus", NULL);
	expect_error("-z", "-h", "x", "-r", "1", "-z", NULL);
	expect_error("'0'", "-h", "x", "-r", "1", "-p", "0", NULL);
	expect_error("-p/--port", "-h", "x", "-r", "1", "-p", "70000", NULL);
	expect_error("'70000'", "-h", "x", "-r", "1", "-p", "70000", NULL);
	expect_error("-o/--patroni-port", "-h", "x", "-r", "1", "-o", "8008x", NULL);
	expect_error("-r/--pg-is-ready-port", "-h", "x", "-r", "-5", NULL);
	expect_error("--interval", "-h", "x", "-r", "1", "--interval", "abc", NULL);
	expect_error("'abc'", "-h", "x", "-r", "1", "--interval", "abc", NULL);
	expect_error("--interval", "-h", "x", "-r", "1", "--interval", "5ms", NULL);
	expect_error("--timeout", "-h", "x", "-r", "1", "--timeout", "1h", NULL);
	expect_error("-h/--patroni-host", "-r", "6432", NULL);
	expect_error("-r/--pg-is-ready-port", "-h", "db1", NULL);
	expect_error("--listen", "-h", "x", "-r", "1", "--listen", "db1.example", NULL);
	expect_error("-h/--patroni-host", "-h", "bad host", "-r", "1", NULL);
	expect_error("'-r'", "-h", "-r", "6432", NULL);
	expect_error("-k/--patroni-healthcheck", "-h", "x", "-r", "1", "-k", "a#b", NULL);
	expect_error("needs a value", "-h", NULL);
	expect_error("unexpected argument 'extra'", "-h", "x", "-r", "1", "extra", NULL);
	expect_error("--stale-after", "-h", "x", "-r", "1", "--stale-after", "1s", NULL);
}

static void test_help_and_version(void **state)
{
	struct options o;
	char err[256];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof(err), "--help", NULL), OPTIONS_EXIT_HELP);
	options_free(&o);
	assert_int_equal(parse(&o, err, sizeof(err), "-V", NULL), OPTIONS_EXIT_VERSION);
	options_free(&o);
	/* -h is the host, never help */
	assert_int_equal(parse(&o, err, sizeof(err), "-h", "--help", NULL),
			 OPTIONS_ERROR);
	options_free(&o);
}

static void test_durations(void **state)
{
	long ms;

	(void)state;
	assert_int_equal(options_parse_duration("800ms", &ms), 0);
	assert_int_equal(ms, 800);
	assert_int_equal(options_parse_duration("1s", &ms), 0);
	assert_int_equal(ms, 1000);
	assert_int_equal(options_parse_duration("1.25s", &ms), 0);
	assert_int_equal(ms, 1250);
	assert_int_equal(options_parse_duration("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(options_parse_duration("250", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(options_parse_duration("", &ms), -1);
	assert_int_equal(options_parse_duration("-1s", &ms), -1);
	assert_int_equal(options_parse_duration("1.s", &ms), -1);
	assert_int_equal(options_parse_duration("1 s", &ms), -1);
	assert_int_equal(options_parse_duration("99999999999", &ms), -1);
}

static void test_set_by_name(void **state)
{
	struct options o;
	char err[256];

	(void)state;
	options_init(&o);
	assert_int_equal(options_set(&o, "patroni-port", "8010", err, sizeof(err)), 0);
	assert_int_equal(o.patroni_port, 8010);
	assert_int_equal(options_set(&o, "no-such", "1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no-such"));
	options_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_predecessor_command_line),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_long_forms_and_new_options),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_set_by_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
