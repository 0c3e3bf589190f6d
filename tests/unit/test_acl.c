/* Unit tests for acl.c: --allow parsing and matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include "acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static struct acl make(const char *a, const char *b)
{
	struct acl acl;
	char err[128];

	memset(&acl, 0, sizeof(acl));
	if (a)
		assert_int_equal(acl_parse(a, &acl.entries[acl.count++], err, sizeof(err)), 0);
	if (b)
		assert_int_equal(acl_parse(b, &acl.entries[acl.count++], err, sizeof(err)), 0);
	return acl;
}

static int allows4(const struct acl *acl, const char *ip)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return acl_allows(acl, (struct sockaddr *)&sin);
}

static int allows6(const struct acl *acl, const char *ip)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return acl_allows(acl, (struct sockaddr *)&sin6);
}

static void test_empty_allows_all(void **state)
{
	struct acl acl = make(NULL, NULL);

	(void)state;
	assert_true(allows4(&acl, "192.0.2.1"));
	assert_true(allows6(&acl, "2001:db8::1"));
}

static void test_ipv4_blocks(void **state)
{
	struct acl acl = make("10.1.2.3/8", "127.0.0.1");

	(void)state;
	assert_true(allows4(&acl, "10.200.0.1"));
	assert_true(allows4(&acl, "127.0.0.1"));
	assert_false(allows4(&acl, "127.0.0.2"));
	assert_false(allows4(&acl, "11.0.0.1"));
	/* dual-stack sockets see IPv4 clients as ::ffff:a.b.c.d */
	assert_true(allows6(&acl, "::ffff:10.9.9.9"));
	assert_false(allows6(&acl, "::ffff:192.0.2.1"));
	assert_false(allows6(&acl, "2001:db8::1"));
}

static void test_ipv6_blocks(void **state)
{
	struct acl acl = make("2001:db8::/33", "::1");

	(void)state;
	assert_true(allows6(&acl, "2001:db8:7fff::1"));
	assert_false(allows6(&acl, "2001:db8:8000::1"));
	assert_true(allows6(&acl, "::1"));
	assert_false(allows4(&acl, "127.0.0.1"));
}

static void test_zero_prefix_and_bad_input(void **state)
{
	struct acl acl = make("0.0.0.0/0", NULL);
	struct acl_entry e;
	char err[128];

	(void)state;
	assert_true(allows4(&acl, "203.0.113.7"));
	assert_int_equal(acl_parse("10.0.0.0/33", &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0-32"));
	assert_int_equal(acl_parse("::/129", &e, err, sizeof(err)), -1);
	assert_int_equal(acl_parse("10.0.0.0/", &e, err, sizeof(err)), -1);
	assert_int_equal(acl_parse("10.0.0.0/8x", &e, err, sizeof(err)), -1);
	assert_int_equal(acl_parse("db1.example/24", &e, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "db1.example"));
	assert_int_equal(acl_parse("", &e, err, sizeof(err)), -1);
}

UNIT_MAIN(cmocka_unit_test(test_empty_allows_all),
	  cmocka_unit_test(test_ipv4_blocks),
	  cmocka_unit_test(test_ipv6_blocks),
	  cmocka_unit_test(test_zero_prefix_and_bad_input))
