/* Unit tests for http_reply.c: the answers Patroni gives, where a body
 * ends, and everything that is not an HTTP/1.x answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct http_reply r;
static char body[64];

/* Feed s whole, then (when eof) the close. */
static enum http_reply_state feed(const char *s, int eof)
{
	enum http_reply_state st;

	http_reply_init(&r, body, sizeof(body));
	st = http_reply_feed(&r, s, strlen(s));
	if (eof && st == HTTP_REPLY_MORE)
		st = http_reply_eof(&r);
	return st;
}

static void test_options_status_line_only(void **state)
{
	(void)state;
	/* Patroni's OPTIONS/HEAD: a bare status line, then the close. */
	assert_int_equal(feed("HTTP/1.0 200 OK\r\n\r\n", 0), HTTP_REPLY_MORE);
	assert_int_equal(http_reply_eof(&r), HTTP_REPLY_DONE);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	assert_int_equal(feed("HTTP/1.0 503 Service Unavailable\r\n\r\n", 1), HTTP_REPLY_DONE);
	assert_int_equal(r.status, 503);
}

static void test_content_length_ends_the_body(void **state)
{
	(void)state;
	assert_int_equal(feed("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			      "content-LENGTH: 7\r\n\r\n{\"a\":1}trailing junk", 0),
			 HTTP_REPLY_DONE);
	assert_int_equal(r.body_len, 7);
	assert_memory_equal(body, "{\"a\":1}", 7);
	assert_int_equal(feed("HTTP/1.0 204 No Content\r\nContent-Length: 0\r\n\r\n", 0),
			 HTTP_REPLY_DONE);
}

static void test_body_until_close(void **state)
{
	(void)state;
	assert_int_equal(feed("HTTP/1.0 200 OK\nServer: x\n\nhello", 0), HTTP_REPLY_MORE);
	assert_int_equal(http_reply_eof(&r), HTTP_REPLY_DONE);
	assert_int_equal(r.body_len, 5);
	assert_memory_equal(body, "hello", 5);
}

static void test_split_anywhere_gives_the_same_answer(void **state)
{
	const char *s = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nabcde";
	size_t n = strlen(s);

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		enum http_reply_state st;

		http_reply_init(&r, body, sizeof(body));
		st = http_reply_feed(&r, s, cut);
		if (st == HTTP_REPLY_MORE)
			st = http_reply_feed(&r, s + cut, n - cut);
		assert_int_equal(st, HTTP_REPLY_DONE);
		assert_int_equal(r.status, 503);
		assert_memory_equal(body, "abcde", 5);
	}
	/* Byte by byte. */
	http_reply_init(&r, body, sizeof(body));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(http_reply_feed(&r, s + i, 1),
				 i + 1 == n ? HTTP_REPLY_DONE : HTTP_REPLY_MORE);
}

static void test_body_over_the_bound(void **state)
{
	char big[200];

	(void)state;
	assert_int_equal(feed("HTTP/1.0 200 OK\r\nContent-Length: 65\r\n\r\n", 0), HTTP_REPLY_BAD);
	assert_string_equal(r.detail, "body over 64 bytes");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(feed("HTTP/1.0 200 OK\r\n\r\n", 0), HTTP_REPLY_MORE);
	assert_int_equal(http_reply_feed(&r, big, 64), HTTP_REPLY_MORE);
	assert_int_equal(http_reply_feed(&r, big, 1), HTTP_REPLY_BAD);
	assert_string_equal(r.detail, "body over 64 bytes");
	/* Counting only (NULL body) has the same bound. */
	http_reply_init(&r, NULL, 10);
	assert_int_equal(http_reply_feed(&r, "HTTP/1.0 200 OK\r\n\r\n0123456789", 29),
			 HTTP_REPLY_MORE);
	assert_int_equal(http_reply_feed(&r, "x", 1), HTTP_REPLY_BAD);
}

static void test_not_http(void **state)
{
	static const char *const bad[] = {
		"garbage\r\n\r\n", "\x16\x03\x01\x02\x00", "HTTP/2 200\r\n\r\n",
		"HTTP/1.0 20 OK\r\n\r\n", "HTTP/1.0 2000 OK\r\n\r\n", "HTTP/1.0 099 x\r\n\r\n",
		"HTTP/1.x 200 OK\r\n\r\n", "\r\n\r\n", "\n", "SSH-2.0-OpenSSH\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(feed(bad[i], 1), HTTP_REPLY_BAD);
		assert_string_equal(r.detail, "not an HTTP/1.x status line");
	}
	/* Garbage is refused at its first wrong byte, not after 8 KB. */
	http_reply_init(&r, body, sizeof(body));
	assert_int_equal(http_reply_feed(&r, "X", 1), HTTP_REPLY_BAD);
}

static void test_bad_headers(void **state)
{
	(void)state;
	assert_int_equal(feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde", 0),
			 HTTP_REPLY_BAD);
	assert_int_equal(feed("HTTP/1.0 200 OK\r\nContent-Length: 5x\r\n\r\n", 0), HTTP_REPLY_BAD);
	assert_int_equal(feed("HTTP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n", 0), HTTP_REPLY_BAD);
	assert_int_equal(feed("HTTP/1.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0),
			 HTTP_REPLY_BAD);
	assert_int_equal(feed("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
			      0),
			 HTTP_REPLY_BAD);
	assert_string_equal(r.detail, "conflicting Content-Length headers");
	assert_int_equal(feed("HTTP/1.0 100 Continue\r\n\r\n", 0), HTTP_REPLY_BAD);
}

static void test_head_bound(void **state)
{
	char *big = malloc(HTTP_REPLY_HEAD_MAX + 64);

	(void)state;
	assert_non_null(big);
	http_reply_init(&r, body, sizeof(body));
	assert_int_equal(http_reply_feed(&r, "HTTP/1.0 200 OK\r\nX: ", 20), HTTP_REPLY_MORE);
	memset(big, 'a', HTTP_REPLY_HEAD_MAX + 64);
	assert_int_equal(http_reply_feed(&r, big, HTTP_REPLY_HEAD_MAX + 64), HTTP_REPLY_BAD);
	assert_string_equal(r.detail, "status line and headers over 8192 bytes");
	free(big);
}

static void test_early_close(void **state)
{
	(void)state;
	assert_int_equal(feed("", 1), HTTP_REPLY_BAD);
	assert_string_equal(r.detail, "empty reply from server");
	assert_int_equal(feed("HTTP/1.0 200 OK\r\nServer: x\r\n", 1), HTTP_REPLY_BAD);
	assert_string_equal(r.detail, "connection closed before the end of the headers");
	assert_int_equal(feed("HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nabc", 1),
			 HTTP_REPLY_BAD);
	assert_string_equal(r.detail, "connection closed before the end of the body");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_status_line_only),
		cmocka_unit_test(test_content_length_ends_the_body),
		cmocka_unit_test(test_body_until_close),
		cmocka_unit_test(test_split_anywhere_gives_the_same_answer),
		cmocka_unit_test(test_body_over_the_bound),
		cmocka_unit_test(test_not_http),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_head_bound),
		cmocka_unit_test(test_early_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
