/* Unit tests for patroni_json.c: Patroni 3.x and 4.x status documents and
 * everything that is not one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include "patroni_json.h"

#include <string.h>

static int parse(const char *s, struct patroni_json *j)
{
	char err[128];

	return patroni_json_parse(s, strlen(s), j, err, sizeof(err));
}

static void test_primary_3x(void **state)
{
	struct patroni_json j;
	const char *doc =
		"{\"state\": \"running\", \"postmaster_start_time\": \"2026-11-27 01:00:00+00:00\", "
		"\"role\": \"master\", \"server_version\": 150020, \"xlog\": {\"location\": 50331808}, "
		"\"timeline\": 1, \"replication\": [{\"usename\": \"replicator\", \"application_name\": "
		"\"node2\", \"client_addr\": \"127.0.0.12\", \"state\": \"streaming\", \"sync_state\": "
		"\"async\", \"sync_priority\": 0}], \"dcs_last_seen\": 1764205200, \"database_system_identifier\": "
		"\"7\", \"patroni\": {\"version\": \"3.0.2\", \"scope\": \"demo\"}}";

	(void)state;
	assert_int_equal(parse(doc, &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_PRIMARY);
	assert_true(j.running);
	assert_false(j.pause);
	assert_false(j.noloadbalance);
	assert_string_equal(j.state, "running");
	assert_int_equal(j.version[0], 3);
	assert_int_equal(j.version[2], 2);
	assert_int_equal(patroni_json_reports_replication(&j), 0);
	assert_string_equal(j.replication_state, "");
}

/* Patroni 4 on a replica: replication_state, failsafe, the version, and a
 * "version" key elsewhere that is not Patroni's. */
static void test_replication_state_failsafe_version(void **state)
{
	struct patroni_json j;
	const char *doc =
		"{\"state\":\"running\",\"role\":\"replica\",\"server_version\":170000,"
		"\"tags\":{\"version\":\"9.9.9\"},\"replication_state\":\"streaming\","
		"\"failsafe_mode_is_active\":true,\"cluster_unlocked\":true,"
		"\"patroni\":{\"version\":\"4.0.7\",\"scope\":\"demo\",\"name\":\"node2\"}}";

	(void)state;
	assert_int_equal(parse(doc, &j), 0);
	assert_string_equal(j.replication_state, "streaming");
	assert_true(j.failsafe_active);
	assert_int_equal(j.version[0], 4);
	assert_int_equal(j.version[1], 0);
	assert_int_equal(j.version[2], 7);
	assert_int_equal(patroni_json_reports_replication(&j), 1);
	assert_int_equal(parse("{\"patroni\":{\"version\":\"3.0.4rc1\"}}", &j), 0);
	assert_int_equal(patroni_json_reports_replication(&j), 1);
	assert_int_equal(parse("{\"patroni\":{\"version\":\"3.0\"}}", &j), 0);
	assert_int_equal(patroni_json_reports_replication(&j), 0);
	assert_int_equal(parse("{\"role\":\"replica\"}", &j), 0);
	assert_int_equal(patroni_json_reports_replication(&j), -1);
}

static void test_replica_tags_sync_pause(void **state)
{
	struct patroni_json j;
	const char *doc =
		"{\"state\":\"running\",\"role\":\"replica\",\"xlog\":{\"received_location\":1,"
		"\"replayed_location\":1,\"replayed_timestamp\":null,\"paused\":false},"
		"\"sync_standby\":true,\"pause\":true,\"tags\":{\"nofailover\":true,"
		"\"noloadbalance\":true,\"x\":[1,2,{\"y\":\"\\u00e9\\\"\"}]},"
		"\"cluster_unlocked\":false}";

	(void)state;
	assert_int_equal(parse(doc, &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_REPLICA);
	assert_true(j.sync_standby);
	assert_true(j.pause);
	assert_true(j.noloadbalance);
	assert_false(j.cluster_unlocked);
}

/* Patroni 4.0.7's words, as a quorum standby says them (synchronous_mode:
 * quorum): role "replica", replication_state, quorum_standby. */
static void test_patroni_4_quorum_standby(void **state)
{
	struct patroni_json j;
	const char *doc =
		"{\"state\":\"running\",\"postmaster_start_time\":\"2026-12-01 20:00:00+00:00\","
		"\"role\":\"replica\",\"server_version\":170007,\"xlog\":{\"received_location\":1,"
		"\"replayed_location\":1,\"replayed_timestamp\":null,\"paused\":false},"
		"\"quorum_standby\":true,\"timeline\":1,\"replication_state\":\"streaming\","
		"\"dcs_last_seen\":1764619200,\"patroni\":{\"version\":\"4.0.7\","
		"\"scope\":\"s\",\"name\":\"n\"}}";

	(void)state;
	assert_int_equal(parse(doc, &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_REPLICA);
	assert_true(j.running);
	assert_true(j.quorum_standby);
	assert_false(j.sync_standby);
}

static void test_other_roles(void **state)
{
	struct patroni_json j;

	(void)state;
	assert_int_equal(parse("{\"role\":\"primary\",\"state\":\"running\"}", &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_PRIMARY);
	assert_int_equal(parse("{\"role\":\"standby_leader\",\"state\":\"running\"}", &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_STANDBY_LEADER);
	assert_int_equal(parse("{\"role\":\"demoted\",\"state\":\"stopped\","
			       "\"cluster_unlocked\":true}", &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_OTHER);
	assert_false(j.running);
	assert_true(j.cluster_unlocked);
	assert_int_equal(parse("{}", &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_UNKNOWN);
	/* a nested "role" is not the node's role */
	assert_int_equal(parse("{\"x\":{\"role\":\"master\"}}", &j), 0);
	assert_int_equal(j.role, PATRONI_JSON_ROLE_UNKNOWN);
}

static void test_not_json(void **state)
{
	struct patroni_json j;
	char err[128];
	char deep[200];

	(void)state;
	assert_int_equal(parse("", &j), -1);
	assert_int_equal(parse("[]", &j), -1);
	assert_int_equal(parse("<html>", &j), -1);
	assert_int_equal(parse("{\"role\":\"master\"", &j), -1);
	assert_int_equal(parse("{\"role\":master}", &j), -1);
	assert_int_equal(parse("{\"a\":1} x", &j), -1);
	assert_int_equal(parse("{\"a\":\"\\q\"}", &j), -1);
	assert_int_equal(parse("{\"a\":tru}", &j), -1);
	assert_int_equal(parse("{\"a\":\"x\ny\"}", &j), -1);
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"a\":", 5);
	assert_int_equal(patroni_json_parse(deep, sizeof(deep), &j, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "deep"));
	/* a NUL inside the buffer is not JSON either */
	assert_int_equal(patroni_json_parse("{\"a\":1}\0{", 9, &j, err, sizeof(err)), -1);
}

UNIT_MAIN(cmocka_unit_test(test_primary_3x),
	  cmocka_unit_test(test_replication_state_failsafe_version),
	  cmocka_unit_test(test_replica_tags_sync_pause),
	  cmocka_unit_test(test_patroni_4_quorum_standby),
	  cmocka_unit_test(test_other_roles),
	  cmocka_unit_test(test_not_json))
