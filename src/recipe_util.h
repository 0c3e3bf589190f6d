/* recipe_util.h - the value checks and messages the recipe files share
 * (recipe_util.c); only recipe_*.c include it. */
#ifndef HAPPAC_RECIPE_UTIL_H
#define HAPPAC_RECIPE_UTIL_H

#include "recipe.h"


/* snprintf into err: the one-line message of a rejected input. */
void recipe_util_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));


/* getopt_long's '?' or ':' (c) in a recipe's option loop: err names the
 * bad argument. Always returns RECIPE_PARSE_ERROR. */
enum recipe_parse recipe_util_getopt_error(int c, char **argv, char *err, size_t errlen);
/* Arguments left after the options: err names the first, and
 * RECIPE_PARSE_ERROR; RECIPE_PARSE_OK when there are none. */
enum recipe_parse recipe_util_getopt_leftover(int argc, char **argv, char *err, size_t errlen);

/* The same for option opt, with err "OPT: invalid port 'VALUE' ...". */
int recipe_util_parse_port_opt(const char *opt, const char *value, int *port, char *err,
			  size_t errlen);

/* Classify a host given without brackets: IPv4, IPv6, or (with allow_name)
 * a DNS name. 0, or -1 when it is none of them. */
int recipe_util_host_family(const char *s, int allow_name, enum recipe_family *f);

/* "ADDR:PORT" or "[V6]:PORT" with a literal address; with allow_any also
 * "*:PORT" and ":PORT" (family RECIPE_FAMILY_ANY, host ""). 0 or -1. */
int recipe_util_parse_hostport(const char *s, int allow_any, struct recipe_endpoint *e);

/* host:port as HAProxy and URLs want it: "[v6]:port", "*:port", "a.b.c.d:port". */
void recipe_util_hostport_str(const char *host, enum recipe_family f, int port,
			 char *buf, size_t len);

/* Same host, family and port. */
int recipe_util_endpoint_equal(const struct recipe_endpoint *a,
			       const struct recipe_endpoint *b);

/* 1..max-1 characters of letters, digits, '.', '_', '-', starting with a
 * letter or digit: safe as an HAProxy name and in a Consul ID. */
int recipe_util_valid_name(const char *s, size_t max);

/* An absolute path without whitespace, quotes or backslashes. */
int recipe_util_valid_bin(const char *s);

/* A socket path HAProxy's config can hold in double quotes and the header's
 * comment in single quotes: no quotes, backslashes or control characters. */
int recipe_util_valid_socket_path(const char *s);
/* A server-state file: as a socket path, absolute, without '$' or spaces
 * (it is also printed unquoted in the header's systemd lines). */
int recipe_util_valid_state_path(const char *s);

#endif
