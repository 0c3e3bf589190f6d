/* Unit tests for peer.c: Patroni's /cluster document (Patroni 3.x and 4.x
 * members, this node left out, what is not one) and a peer agent's reply
 * line (down, up, garbage, incomplete). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include "peer.h"

#include <string.h>

/* As Patroni 3.0.2 answers GET /cluster in the lab (one member per node). */
static const char cluster_3x[] =
	"{\"members\": [{\"name\": \"node1\", \"role\": \"leader\", \"state\": \"running\", "
	"\"api_url\": \"http://127.0.0.11:8008/patroni\", \"host\": \"127.0.0.11\", "
	"\"port\": 5432, \"timeline\": 3}, {\"name\": \"node2\", \"role\": \"replica\", "
	"\"state\": \"running\", \"api_url\": \"http://127.0.0.12:8008/patroni\", "
	"\"host\": \"127.0.0.12\", \"port\": 5432, \"timeline\": 3, \"lag\": 0}, "
	"{\"name\": \"node3\", \"role\": \"replica\", \"state\": \"streaming\", "
	"\"api_url\": \"http://127.0.0.13:8008/patroni\", \"host\": \"127.0.0.13\", "
	"\"port\": 5432, \"timeline\": 3, \"tags\": {\"nosync\": true}, \"lag\": \"unknown\"}], "
	"\"scope\": \"happac-lab\"}";

static int parse(const char *doc, const char *self, struct peer_member *m, int max,
		 char *err)
{
	return peer_cluster_parse(doc, strlen(doc), self, m, max, err, 160);
}

static void test_cluster_members_but_self(void **state)
{
	struct peer_member m[PEER_MAX];
	char err[160];

	(void)state;
	assert_int_equal(parse(cluster_3x, "127.0.0.12", m, PEER_MAX, err), 2);
	assert_string_equal(m[0].name, "node1");
	assert_string_equal(m[0].addr, "127.0.0.11");
	assert_string_equal(m[1].name, "node3");
	assert_string_equal(m[1].addr, "127.0.0.13");
	/* not a member's address: every member is a peer */
	assert_int_equal(parse(cluster_3x, "10.0.0.1", m, PEER_MAX, err), 3);
}

static void test_cluster_self_by_api_url_and_names(void **state)
{
	struct peer_member m[PEER_MAX];
	char err[160];
	/* Patroni 4: members of a standby cluster; a host that is a name
	 * cannot be asked (its addr stays empty); self found by api_url. */
	const char *doc =
		"{\"members\":[{\"name\":\"a\",\"role\":\"standby_leader\",\"host\":\"db-a.example\","
		"\"api_url\":\"https://[::1]:8008/patroni\",\"port\":5432},"
		"{\"name\":\"b\",\"host\":\"db-b.example\",\"api_url\":\"http://db-b.example:8008/patroni\"},"
		"{\"name\":\"c\",\"host\":\"::2\"}],\"scope\":\"s\"}";

	(void)state;
	assert_int_equal(parse(doc, "::1", m, PEER_MAX, err), 2);
	assert_string_equal(m[0].name, "b");
	assert_string_equal(m[0].addr, "");
	assert_string_equal(m[1].name, "c");
	assert_string_equal(m[1].addr, "::2");
	assert_int_equal(parse("{\"members\": []}", "::1", m, PEER_MAX, err), 0);
}

static void test_cluster_not_a_member_list(void **state)
{
	struct peer_member m[2];
	char err[160];

	(void)state;
	assert_int_equal(parse("", "x", m, 2, err), -1);
	assert_non_null(strstr(err, "not a JSON object"));
	assert_int_equal(parse("{\"scope\": \"s\"}", "x", m, 2, err), -1);
	assert_non_null(strstr(err, "no \"members\""));
	assert_int_equal(parse("{\"members\": [{\"host\": \"127.0.0.1\"}]}", "x", m, 2, err), -1);
	assert_non_null(strstr(err, "with a name"));
	assert_int_equal(parse("{\"members\": [1]}", "x", m, 2, err), -1);
	assert_int_equal(parse("{\"members\": [{\"name\": \"a\"}] x", "x", m, 2, err), -1);
	assert_int_equal(parse("{\"members\": [{\"name\": \"a\"}]} x", "x", m, 2, err), -1);
	assert_int_equal(parse("{\"members\": [{\"name\": \"a\"}", "x", m, 2, err), -1);
	assert_int_equal(parse("<html>503</html>", "x", m, 2, err), -1);
	/* more peers than happac asks: an error, not a partial list */
	assert_int_equal(parse(cluster_3x, "x", m, 2, err), -1);
	assert_non_null(strstr(err, "more than the 2"));
}

static enum peer_answer line(const char *s, int eof)
{
	return peer_line_classify(s, strlen(s), eof);
}

static void test_line_classify(void **state)
{
	char big[PEER_LINE_MAX];

	(void)state;
	assert_int_equal(line("down #patroni /primary: 503\n", 1), PEER_NOT_UP);
	assert_int_equal(line("down\r\n", 0), PEER_NOT_UP);
	assert_int_equal(line("DOWN,#x\n", 0), PEER_NOT_UP);
	assert_int_equal(line("stopped\n", 0), PEER_NOT_UP);
	assert_int_equal(line("fail #x\n", 0), PEER_NOT_UP);
	assert_int_equal(line("down #patroni: primary role is new, settling\n", 0), PEER_NOT_UP);
	assert_int_equal(line("up\n", 0), PEER_UP);
	assert_int_equal(line("up drain 50%\n", 0), PEER_UP);
	assert_int_equal(line("up ready\n", 0), PEER_UP);
	/* garbage and incomplete lines keep the timer */
	assert_int_equal(line("downtown\n", 0), PEER_GARBAGE);
	assert_int_equal(line("HTTP/1.0 200 OK\r\n", 0), PEER_GARBAGE);
	assert_int_equal(line("\n", 0), PEER_GARBAGE);
	assert_int_equal(line("down \x01\n", 0), PEER_GARBAGE);
	assert_int_equal(line("down \xff\n", 0), PEER_GARBAGE);
	assert_int_equal(line("down", 0), PEER_PENDING);
	assert_int_equal(line("down", 1), PEER_GARBAGE);
	assert_int_equal(line("", 1), PEER_GARBAGE);
	memset(big, 'd', sizeof(big));
	assert_int_equal(peer_line_classify(big, sizeof(big), 0), PEER_GARBAGE);
}

UNIT_MAIN(cmocka_unit_test(test_cluster_members_but_self),
	  cmocka_unit_test(test_cluster_self_by_api_url_and_names),
	  cmocka_unit_test(test_cluster_not_a_member_list),
	  cmocka_unit_test(test_line_classify))
