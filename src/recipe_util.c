/* recipe_util.c - what the recipes share: the one-line error, the value
 * checks (names, hosts, ports, paths) and getopt's errors, so that every
 * recipe rejects the same input with the same message. */
#include "recipe_util.h"

#include "options.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void recipe_util_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- values */

/* A DNS name as HAProxy's libc resolver takes it: labels of letters, digits
 * and '-', and a last label that is not all digits, so that a mistyped IPv4
 * address ("10.0.0.256") is not taken for a name. */
static int recipe_valid_dns_name(const char *s)
{
	size_t n = strlen(s), label = 0;
	int digits_only = 1;

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			digits_only = 1;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (!isdigit(c))
			digits_only = 0;
		if (++label > 63)
			return 0;
	}
	return s[n - 1] != '-' && !digits_only;
}

/* Classify a host without brackets; 0, or -1 when it is none of the three. */
int recipe_util_host_family(const char *s, int allow_name, enum recipe_family *f)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, buf) == 1)
		*f = RECIPE_FAMILY_IPV4;
	else if (inet_pton(AF_INET6, s, buf) == 1)
		*f = RECIPE_FAMILY_IPV6;
	else if (allow_name && recipe_valid_dns_name(s))
		*f = RECIPE_FAMILY_NAME;
	else
		return -1;
	return 0;
}

/* HAProxy server and proxy names, Consul IDs: a safe common subset. */
int recipe_util_valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max || !isalnum((unsigned char)s[0]))
		return 0;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			return 0;
	return 1;
}

/* "ADDR:PORT" or "[V6]:PORT"; with allow_any also "*:PORT" and ":PORT".
 * Literal addresses only: these are addresses to bind or to reach locally. */
int recipe_util_parse_hostport(const char *s, int allow_any, struct recipe_endpoint *e)
{
	int bracketed;
	const char *port = util_split_hostport(s, e->host, sizeof(e->host), &bracketed);

	if (!port || options_parse_port(port, &e->port) != 0)
		return -1;
	if (!bracketed && (!*e->host || strcmp(e->host, "*") == 0)) {
		if (!allow_any)
			return -1;
		e->family = RECIPE_FAMILY_ANY;
		e->host[0] = '\0';
		return 0;
	}
	if (recipe_util_host_family(e->host, 0, &e->family) != 0)
		return -1;
	return bracketed && e->family != RECIPE_FAMILY_IPV6 ? -1 : 0;
}

/* HAProxy and URLs want an IPv6 address in brackets when a port follows;
 * "::1:6432" would also parse, but only by luck of the last colon. */
void recipe_util_hostport_str(const char *host, enum recipe_family f, int port,
			      char *buf, size_t len)
{
	char h[RECIPE_HOST_MAX + 2] = "*";

	if (f != RECIPE_FAMILY_ANY)
		util_host_bracketed(h, sizeof(h), host);
	snprintf(buf, len, "%s:%d", h, port);
}

enum recipe_parse recipe_util_getopt_error(int c, char **argv, char *err, size_t errlen)
{
	if (c == ':')
		recipe_util_errf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
	else
		recipe_util_errf(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
	return RECIPE_PARSE_ERROR;
}

enum recipe_parse recipe_util_getopt_leftover(int argc, char **argv, char *err, size_t errlen)
{
	if (optind >= argc)
		return RECIPE_PARSE_OK;
	recipe_util_errf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
	return RECIPE_PARSE_ERROR;
}

int recipe_util_parse_port_opt(const char *opt, const char *value, int *port, char *err,
			       size_t errlen)
{
	if (options_parse_port(value, port) == 0)
		return 0;
	recipe_util_errf(err, errlen, "%s: invalid port '%s' (expected 1-65535)", opt, value);
	return -1;
}

int recipe_util_valid_bin(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= RECIPE_PATH_MAX || s[0] != '/')
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

int recipe_util_valid_socket_path(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= RECIPE_PATH_MAX)
		return 0;
	/* It is printed inside double quotes, where HAProxy expands ${VAR},
	 * and in single quotes in the comment that repeats the command. */
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\' ||
		    *p == '\'')
			return 0;
	return 1;
}

/* The state file is also printed, unquoted for the shell, in the systemd
 * lines of the header: an absolute path without '$' (systemd and HAProxy
 * expand it) or white space. */
int recipe_util_valid_state_path(const char *s)
{
	if (!recipe_util_valid_socket_path(s) || s[0] != '/')
		return 0;
	for (const char *p = s; *p; p++)
		if (*p == '$' || *p == ' ')
			return 0;
	return 1;
}

int recipe_util_endpoint_equal(const struct recipe_endpoint *a,
			       const struct recipe_endpoint *b)
{
	return a->port == b->port && a->family == b->family &&
	       strcmp(a->host, b->host) == 0;
}
