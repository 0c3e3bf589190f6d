/* Unit tests for pg_wire.c: the server's first messages as PQping reads
 * them, whole, split and hostile; and the StartupMessage we send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pg_wire.h"

#include <string.h>

/* Message builders: type, int32 length, body. */
struct bytes {
	unsigned char b[20000];
	size_t n;
};

static void put(struct bytes *s, const void *p, size_t n)
{
	assert_true(s->n + n <= sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void put32(struct bytes *s, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 8), (unsigned char)v };

	put(s, b, 4);
}

static void msg(struct bytes *s, char type, const void *body, size_t n)
{
	put(s, &type, 1);
	put32(s, (uint32_t)(n + 4));
	put(s, body, n);
}

static void auth(struct bytes *s, uint32_t code, size_t extra)
{
	unsigned char body[64] = { 0 };

	body[0] = (unsigned char)(code >> 24);
	body[3] = (unsigned char)code;
	msg(s, 'R', body, 4 + extra);
}

static void ready(struct bytes *s)
{
	msg(s, 'Z', "I", 1);
}

/* An ErrorResponse from "S\0" "C\0" ... field strings, as one buffer. */
static void error(struct bytes *s, const char *fields, size_t n)
{
	msg(s, 'E', fields, n);
}

#define FIELDS(lit) lit, sizeof(lit) /* the literal's own NUL ends the list */

static enum probe_result classify(const struct bytes *s, int eof, char *detail, size_t len)
{
	struct pg_wire w;

	pg_wire_init(&w);
	pg_wire_feed(&w, s->b, s->n);
	if (eof)
		pg_wire_eof(&w);
	return pg_wire_result(&w, detail, len);
}

/* The same bytes one at a time: the same state at the end. */
static enum pg_wire_state bytewise(const struct bytes *s, int eof)
{
	struct pg_wire w;

	pg_wire_init(&w);
	for (size_t i = 0; i < s->n; i++)
		pg_wire_feed(&w, s->b + i, 1);
	if (eof)
		pg_wire_eof(&w);
	return w.state;
}

static void test_login_accepted(void **state)
{
	struct bytes s = { .n = 0 };
	struct pg_wire w;
	char d[80];

	(void)state;
	auth(&s, 0, 0);
	pg_wire_init(&w);
	assert_int_equal(pg_wire_feed(&w, s.b, s.n), PG_WIRE_MORE);
	msg(&s, 'S', "client_encoding\0UTF8", 21);
	msg(&s, 'K', "\0\0\0\1\0\0\0\2", 8);
	ready(&s);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_OK);
	assert_string_equal(d, "login accepted");
	assert_int_equal(bytewise(&s, 0), PG_WIRE_READY);
}

static void test_auth_requests(void **state)
{
	static const uint32_t codes[] = { 3, 5, 10 };
	char d[80];

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct bytes s = { .n = 0 };

		auth(&s, codes[i], codes[i] == 5 ? 4 : codes[i] == 10 ? 14 : 0);
		assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_OK);
		assert_string_equal(d, "password requested");
		assert_int_equal(bytewise(&s, 1), PG_WIRE_AUTH);
	}
}

static void test_errors(void **state)
{
	struct bytes s = { .n = 0 };
	char d[80];

	(void)state;
	error(&s, FIELDS("SFATAL\0C57P03\0Mthe database system is starting up\0"));
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_REJECTED);
	assert_string_equal(d, "57P03");
	assert_int_equal(bytewise(&s, 0), PG_WIRE_ERROR);

	s.n = 0;
	error(&s, FIELDS("SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0"));
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_OK);
	assert_string_equal(d, "28P01");

	/* PQping: no SQLSTATE is no answer. */
	s.n = 0;
	error(&s, FIELDS("SFATAL\0Mno code\0"));
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
	assert_string_equal(d, "error without SQLSTATE");

	/* A code that is not one (a newline) is not kept. */
	s.n = 0;
	error(&s, FIELDS("C57\nP3\0"));
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);

	/* A field that runs past the message: not the protocol. */
	s.n = 0;
	msg(&s, 'E', "C57P03", 6);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
	assert_string_equal(d, "protocol error");

	/* After AuthenticationOk, an error is classified the same way. */
	s.n = 0;
	auth(&s, 0, 0);
	error(&s, FIELDS("SFATAL\0C57P03\0Mshutting down\0"));
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_REJECTED);
}

static void test_notice_first(void **state)
{
	struct bytes s = { .n = 0 };
	char d[80];

	(void)state;
	msg(&s, 'N', "SNOTICE\0C00000\0Mhello\0", 23);
	msg(&s, 'v', "\0\0\0\0\0\0\0\0", 8);
	auth(&s, 5, 4);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_OK);
	assert_string_equal(d, "password requested");
	assert_int_equal(bytewise(&s, 0), PG_WIRE_AUTH);
}

static void test_split_anywhere(void **state)
{
	struct bytes s = { .n = 0 };

	(void)state;
	msg(&s, 'N', "SNOTICE\0C00000\0Mhello\0", 23);
	auth(&s, 0, 0);
	msg(&s, 'S', "a\0b", 4);
	ready(&s);
	for (size_t cut = 0; cut <= s.n; cut++) {
		struct pg_wire w;

		pg_wire_init(&w);
		pg_wire_feed(&w, s.b, cut);
		pg_wire_feed(&w, s.b + cut, s.n - cut);
		assert_int_equal(w.state, PG_WIRE_READY);
	}
	/* Once decided, later bytes change nothing. */
	{
		struct pg_wire w;

		pg_wire_init(&w);
		pg_wire_feed(&w, s.b, s.n);
		pg_wire_feed(&w, "garbage", 7);
		assert_int_equal(pg_wire_eof(&w), PG_WIRE_READY);
	}
}

static void test_bad_lengths(void **state)
{
	struct bytes s = { .n = 0 };
	char d[80];

	(void)state;
	/* Over the bound: refused at the header, nothing buffered. */
	put(&s, "N", 1);
	put32(&s, PG_WIRE_MESSAGE_MAX + 1);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
	assert_string_equal(d, "protocol error");
	assert_int_equal(bytewise(&s, 0), PG_WIRE_BAD);
	/* At the bound: fine. */
	s.n = 0;
	{
		static char big[PG_WIRE_MESSAGE_MAX - 4];

		msg(&s, 'N', big, sizeof(big));
	}
	auth(&s, 3, 0);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_OK);
	/* Under 4 (the length counts itself). */
	s.n = 0;
	put(&s, "R", 1);
	put32(&s, 3);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
	/* An authentication request without its code. */
	s.n = 0;
	msg(&s, 'R', "", 0);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
}

static void test_garbage(void **state)
{
	struct bytes s = { .n = 0 };
	struct pg_wire w;
	char d[80];

	(void)state;
	put(&s, "HTTP/1.0 400 Bad Request\r\n\r\n", 28);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
	assert_string_equal(d, "protocol error");
	/* Told at the first byte. */
	pg_wire_init(&w);
	assert_int_equal(pg_wire_feed(&w, "H", 1), PG_WIRE_BAD);
	/* ReadyForQuery before any authentication; a second AuthenticationOk. */
	s.n = 0;
	ready(&s);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
	s.n = 0;
	auth(&s, 0, 0);
	auth(&s, 0, 0);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
	/* An authentication request after AuthenticationOk. */
	s.n = 0;
	auth(&s, 0, 0);
	auth(&s, 5, 4);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_BAD_RESPONSE);
}

static void test_truncated(void **state)
{
	struct bytes s = { .n = 0 };
	char d[80];

	(void)state;
	auth(&s, 5, 4);
	s.n -= 3;
	assert_int_equal(classify(&s, 1, d, sizeof(d)), PROBE_BAD_RESPONSE);
	assert_string_equal(d, "connection closed");
	/* Closed after AuthenticationOk, before ReadyForQuery. */
	s.n = 0;
	auth(&s, 0, 0);
	assert_int_equal(classify(&s, 1, d, sizeof(d)), PROBE_BAD_RESPONSE);
	assert_string_equal(d, "connection closed");
	/* Closed before a byte. */
	s.n = 0;
	assert_int_equal(classify(&s, 1, d, sizeof(d)), PROBE_BAD_RESPONSE);
	assert_string_equal(d, "connection closed");
}

static void test_detail_bounded(void **state)
{
	struct bytes s = { .n = 0 };
	char d[4];

	(void)state;
	auth(&s, 0, 0);
	ready(&s);
	assert_int_equal(classify(&s, 0, d, sizeof(d)), PROBE_OK);
	assert_string_equal(d, "log");
}

static void test_startup(void **state)
{
	static const char *const keys[] = { "user", "database", NULL };
	static const char *const vals[] = { "pgbouncer", "db", NULL };
	static const unsigned char expect[] = "\0\0\0\x24\0\3\0\0user\0pgbouncer\0database\0db\0";
	unsigned char buf[64];

	(void)state;
	assert_int_equal(pg_wire_startup(buf, sizeof(buf), keys, vals), 36);
	assert_memory_equal(buf, expect, 36);
	assert_int_equal(pg_wire_startup(buf, 35, keys, vals), 0);
	assert_int_equal(pg_wire_startup(buf, 36, keys, vals), 36);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_login_accepted),
		cmocka_unit_test(test_auth_requests),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_notice_first),
		cmocka_unit_test(test_split_anywhere),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_detail_bounded),
		cmocka_unit_test(test_startup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
