/* Unit tests for verdict.c and the PgBouncer error classification: every
 * reply word and reason, the line format HAProxy needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe_pg.h"
#include "probe_pg_classify.h"
#include "profile.h"
#include "verdict.h"

#include <string.h>

static struct probe_report report(enum probe_result r, int status, const char *detail)
{
	struct probe_report rep;

	memset(&rep, 0, sizeof(rep));
	rep.result = r;
	rep.http_status = status;
	rep.in_recovery = -1;
	strncpy(rep.detail, detail, sizeof(rep.detail) - 1);
	return rep;
}

static void render(struct probe_report *pat, struct probe_report *pgb,
		   const char *expect, int expect_up)
{
	struct verdict_probe vp[2] = {
		{ "patroni", pat, "127.0.0.1:8008", "/primary", "127.0.0.1" },
		{ "pgbouncer", pgb, "127.0.0.1:6432", NULL, "127.0.0.1" },
	};
	char line[VERDICT_LINE_MAX];
	size_t len;
	struct profile prof;
	struct profile_state st;
	struct profile_inputs in;
	enum profile_health up;

	/* The -k primary profile, as the daemon runs it without profiles. */
	profile_from_endpoint("primary", &prof);
	memset(&st, 0, sizeof(st));
	memset(&in, 0, sizeof(in));
	in.patroni = &vp[0];
	in.pg = &vp[1];
	in.lag_bytes = -1;
	in.timeout_ms = 800;
	in.ramp_weight = -1;
	up = profile_evaluate(&prof, 0, &st, &in, line, sizeof(line), &len);

	assert_int_equal(up != PROFILE_HEALTH_DOWN, expect_up);
	assert_string_equal(line, expect);
	assert_int_equal(len, strlen(expect));
	/* HAProxy: one line, \n-terminated, no NUL before it, < 16 KiB */
	assert_int_equal(line[len - 1], '\n');
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);
	assert_true(len < VERDICT_LINE_MAX);
}

static void test_up(void **state)
{
	struct probe_report a = report(PROBE_OK, 200, ""), b = report(PROBE_OK, 0, "");

	(void)state;
	render(&a, &b, "up\n", 1);
}

static void test_reasons(void **state)
{
	struct probe_report ok = report(PROBE_OK, 0, "");
	struct probe_report s503 = report(PROBE_HTTP_STATUS, 503, "");
	struct probe_report refused = report(PROBE_REFUSED, 0, "");
	struct probe_report timeout = report(PROBE_TIMEOUT, 0, "");
	struct probe_report reject = report(PROBE_REJECTED, 0, "57P03");
	struct probe_report resolve = report(PROBE_RESOLVE, 0, "");
	struct probe_report conn = report(PROBE_CONNECT, 0, "No route to host");

	(void)state;
	render(&s503, &ok, "down #patroni /primary: 503\n", 0);
	render(&timeout, &ok, "down #patroni: timeout after 800ms\n", 0);
	render(&refused, &ok, "down #patroni 127.0.0.1:8008: connection refused\n", 0);
	render(&ok, &refused, "down #pgbouncer 127.0.0.1:6432: connection refused\n", 0);
	render(&ok, &timeout, "down #pgbouncer: timeout after 800ms\n", 0);
	render(&ok, &reject, "down #pgbouncer 127.0.0.1:6432: rejected (57P03)\n", 0);
	render(&resolve, &ok, "down #patroni: cannot resolve 127.0.0.1\n", 0);
	render(&ok, &conn,
	       "down #pgbouncer 127.0.0.1:6432: connect failed: No route to host\n", 0);
	/* Patroni's reason wins when both fail. */
	render(&s503, &refused, "down #patroni /primary: 503\n", 0);
	/* No result yet (never shown to HAProxy, but must still be a line). */
	render(NULL, &ok, "down #patroni: no result yet\n", 0);
}

static void test_reason_is_bounded_and_clean(void **state)
{
	struct probe_report bad = report(PROBE_BAD_RESPONSE, 0, "line\nbreak\r and NUL");
	char longhost[300], reason[VERDICT_REASON_MAX];
	struct verdict_probe vp = { "patroni", &bad, "127.0.0.1:8008", "/primary", "h" };

	(void)state;
	verdict_reason(&vp, 800, reason, sizeof(reason));
	assert_null(strchr(reason, '\n'));
	assert_null(strchr(reason, '\r'));

	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	bad = report(PROBE_RESOLVE, 0, "");
	vp.host = longhost;
	verdict_reason(&vp, 800, reason, sizeof(reason));
	assert_true(strlen(reason) < VERDICT_REASON_MAX);
	assert_non_null(strstr(reason, "patroni: cannot resolve aaaa"));
}

static void test_routing_probe(void **state)
{
	struct probe_report ok = report(PROBE_OK, 0, "");
	struct probe_report primary = report(PROBE_OK, 0, "not in recovery");
	struct probe_report replica = report(PROBE_OK, 0, "in recovery");
	struct probe_report qf =
		report(PROBE_QUERY_FAILED, 0, "08P01 server login has been failing");
	struct probe_report lf =
		report(PROBE_LOGIN_FAILED, 0, "28P01 password authentication failed");

	(void)state;
	primary.in_recovery = 0;
	replica.in_recovery = 1;
	render(&ok, &primary, "up\n", 1);
	render(&ok, &replica, "down #role mismatch: pgbouncer reaches a replica\n", 0);
	render(&ok, &qf, "down #pgbouncer: query failed: 08P01 server login has been failing\n", 0);
	render(&ok, &lf, "down #pgbouncer: login failed: 28P01 password authentication failed\n",
	       0);
	/* Patroni's own failure still comes first. */
	render(&qf, &replica, "down #patroni: query failed: 08P01 server login has been failing\n",
	       0);
}

/* The role a -k endpoint asks for, through the one table of Patroni's
 * endpoint spellings (profile.c). */
static int expect_recovery(const char *endpoint)
{
	struct profile p;

	profile_from_endpoint(endpoint, &p);
	return profile_expect_recovery(&p);
}

static void test_expect_recovery(void **state)
{
	(void)state;
	assert_int_equal(expect_recovery("primary"), 0);
	assert_int_equal(expect_recovery("/master"), 0);
	assert_int_equal(expect_recovery("read-write"), 0);
	assert_int_equal(expect_recovery(""), 0);
	assert_int_equal(expect_recovery("replica?lag=16MB"), 1);
	assert_int_equal(expect_recovery("sync"), 1);
	assert_int_equal(expect_recovery("standby-leader"), 1);
	assert_int_equal(expect_recovery("quorum"), 1);
	assert_int_equal(expect_recovery("read-only-quorum"), -1);
	assert_int_equal(expect_recovery("read-only"), -1);
	assert_int_equal(expect_recovery("leader"), -1);
	assert_int_equal(expect_recovery("health"), -1);
	assert_int_equal(expect_recovery("primaryx"), -1);
}

static void test_pg_classify_login(void **state)
{
	char d[80];

	(void)state;
	assert_int_equal(probe_pg_classify_login(
				 "connection to server at \"127.0.0.1\", port 6432 failed: "
				 "FATAL:  28P01: password authentication failed for user \"x\"\n",
				 1, d, sizeof(d)),
			 PROBE_LOGIN_FAILED);
	assert_string_equal(d, "28P01 password authentication failed for user \"x\"");
	assert_int_equal(probe_pg_classify_login(
				 "failed: FATAL:  57P03: the database system is starting up\n", 1,
				 d, sizeof(d)),
			 PROBE_REJECTED);
	assert_int_equal(
		probe_pg_classify_login("fe_sendauth: no password supplied\n", 1, d, sizeof(d)),
		PROBE_LOGIN_FAILED);
	assert_int_equal(probe_pg_classify_login("connection to server at \"127.0.0.1\", port 6432 "
						 "failed: Connection refused\n", 0, d, sizeof(d)),
			 PROBE_REFUSED);
	/* Was a fuzz regression of the ping classifier: a message ending in a colon. */
	assert_int_equal(probe_pg_classify_login("~x:", 0, d, sizeof(d)), PROBE_CONNECT);
	assert_string_equal(d, "");
}

static void test_stale(void **state)
{
	char line[VERDICT_LINE_MAX];
	size_t len;

	(void)state;
	len = verdict_render_stale(6250, line, sizeof(line));
	assert_string_equal(line, "down #stale: no probe result for 6.2s\n");
	assert_int_equal(len, strlen(line));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_up),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_reason_is_bounded_and_clean),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_routing_probe),
		cmocka_unit_test(test_expect_recovery),
		cmocka_unit_test(test_pg_classify_login),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
