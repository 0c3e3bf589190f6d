/* options_conninfo.c - --pg-conninfo: checked by libpq's own parser when it
 * is set (a typo fails at start, not at the first probe), shown with every
 * secret left out, and the PgBouncer target it makes of -h and -r. */
#include "options_int.h"

#include "lib_pq.h"
#include "resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* True when word is a connection keyword libpq knows. */
static int options_conninfo_keyword(const char *word, size_t len)
{
	PQconninfoOption *opts = lib_pq.PQconninfoParse("", NULL);
	int found = 0;

	for (PQconninfoOption *p = opts; p && p->keyword && !found; p++)
		found = strlen(p->keyword) == len && !strncmp(p->keyword, word, len);
	if (opts)
		lib_pq.PQconninfoFree(opts);
	return found;
}

/* Whether libpq's parse error msg may show the quoted word at q (length
 * n): a keyword, the "=" it misses, or what stands where a keyword goes
 * (an unknown option is the typo to name). */
static int options_conninfo_shown(const char *msg, const char *q, size_t n)
{
	static const char *const key_slots[] = { "invalid connection option ",
						 "invalid URI query parameter: " };

	if ((n == 1 && q[1] == '=') || options_conninfo_keyword(q + 1, n))
		return 1;
	for (size_t i = 0; i < sizeof(key_slots) / sizeof(key_slots[0]); i++) {
		size_t k = strlen(key_slots[i]);

		if ((size_t)(q - msg) >= k && !strncmp(q - k, key_slots[i], k))
			return 1;
	}
	return 0;
}

/* libpq's parse error as one line without a secret in it. Its messages
 * quote what they stumble on, which may be a value or the whole URI
 * (a bad percent-encoding, an unquoted space in a password): a quoted word
 * that options_conninfo_shown() does not clear reads "(hidden)". */
static void options_conninfo_error(const char *msg, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (const char *c = msg; *c && *c != '\n' && used + 1 < len;) {
		const char *end = *c == '"' ? strchr(c + 1, '"') : NULL;
		size_t n = 1;

		if (end && !memchr(c, '\n', (size_t)(end - c)) &&
		    !options_conninfo_shown(msg, c, (size_t)(end - c - 1))) {
			int w = snprintf(buf + used, len - used, "\"(hidden)\"");

			used = w > 0 && (size_t)w < len - used ? used + (size_t)w : len - 1;
			c = end + 1;
			continue;
		}
		if (end)
			n = (size_t)(end - c) + 1; /* a keyword: copied as it is */
		for (size_t i = 0; i < n && used + 1 < len; i++)
			buf[used++] = c[i];
		c += n;
	}
	buf[used < len ? used : len - 1] = '\0';
}

/* Each keyword libpq parsed: one host and port only, no control character
 * in what is shown; the secrets' keywords into secrets (space-separated,
 * as many as fit). 1 when there is a secret, 0 none, -1 + err. */
static int options_conninfo_scan(PQconninfoOption *opts, const struct options_def *d,
				 char *secrets, size_t len, char *err, size_t errlen)
{
	size_t nsecrets = 0;
	int secret = 0;

	secrets[0] = '\0';
	for (PQconninfoOption *p = opts; p->keyword; p++) {
		if (!p->val)
			continue;
		if ((!strcmp(p->keyword, "host") || !strcmp(p->keyword, "hostaddr") ||
		     !strcmp(p->keyword, "port")) && strchr(p->val, ',')) {
			options_err(err, errlen,
				    "%s: one %s only (happac checks this node's PgBouncer)",
				    options_label(d), p->keyword);
			return -1;
		}
		/* A URI decodes %1F into a control character; rendered as
		 * keyword='value' it would break the dump's line (a secret is
		 * never rendered). */
		if (!lib_pq_secret(p) && options_has_control(p->val)) {
			options_err(err, errlen, "%s: control character in the %s value",
				    options_label(d), p->keyword);
			return -1;
		}
		/* Every secret, by libpq's own flag; each one is named in the
		 * warning (as many as fit: a few keywords). */
		if (lib_pq_secret(p) && *p->val) {
			size_t klen = strlen(p->keyword);

			secret = 1;
			if (nsecrets + klen + 2 <= len) {
				if (nsecrets)
					secrets[nsecrets++] = ' ';
				memcpy(secrets + nsecrets, p->keyword, klen + 1);
				nsecrets += klen;
			}
		}
	}
	return secret;
}

/* libpq's parse of value: its option array, or NULL + err (a parse error
 * without the secret values it may quote). */
static PQconninfoOption *options_conninfo_parse(const struct options_def *d, const char *value,
						char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts;

	/* libpq is loaded only when a conninfo is configured (lib_pq.h). */
	if (lib_pq_load(err, errlen) < 0)
		return NULL;
	opts = lib_pq.PQconninfoParse(value, &perr);
	if (opts)
		return opts;
	if (perr) {
		char why[256];

		options_conninfo_error(perr, why, sizeof(why));
		options_err(err, errlen, "%s: %s", options_label(d), why);
		lib_pq.PQfreemem(perr);
	} else {
		options_err(err, errlen, "%s: out of memory", options_label(d));
	}
	return NULL;
}

/* libpq conninfo: parsed here (no connection) so a typo fails at start. */
int options_conninfo_apply(struct options *o, const struct options_def *d,
			   const char *value, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char secrets[sizeof(o->pg_conninfo_secrets)];
	char shown[4 * OPTIONS_CONNINFO_MAX];
	int secret;

	char **field = (char **)((char *)o + d->offset);
	int admin = d->offset == OFF(pgb_admin_conninfo);

	if (*value == '\0') {
		free(*field);
		*field = NULL;
		if (admin) {
			o->pgb_admin_has_password = 0;
			return 0;
		}
		o->pg_conninfo_has_password = 0;
		o->pg_conninfo_secrets[0] = '\0';
		return 0;
	}
	if (options_has_control(value)) {
		options_err(err, errlen, "%s: control character in the conninfo", options_label(d));
		return -1;
	}
	/* Bounded (parsed below, rendered in the dump as keyword='value'). */
	if (strlen(value) > OPTIONS_CONNINFO_MAX) {
		options_err(err, errlen, "%s: longer than %d bytes", options_label(d),
			    OPTIONS_CONNINFO_MAX);
		return -1;
	}
	opts = options_conninfo_parse(d, value, err, errlen);
	if (!opts)
		return -1;
	secret = options_conninfo_scan(opts, d, secrets, sizeof(secrets), err, errlen);
	lib_pq.PQconninfoFree(opts);
	if (secret < 0)
		return -1;
	/* Its rendering (quoted, escaped: a URI grows) must load back too. */
	options_conninfo_redacted(value, shown, sizeof(shown));
	if (strlen(shown) > OPTIONS_CONNINFO_MAX) {
		options_err(err, errlen, "%s: longer than %d bytes as keyword='value' pairs",
			    options_label(d), OPTIONS_CONNINFO_MAX);
		return -1;
	}
	free(*field);
	*field = strdup(value);
	if (admin) {
		o->pgb_admin_has_password = secret;
		return 0;
	}
	o->pg_conninfo_has_password = secret;
	snprintf(o->pg_conninfo_secrets, sizeof(o->pg_conninfo_secrets), "%s", secrets);
	return 0;
}

/* Where the PgBouncer probe connects: --pg-conninfo's host and port, each
 * else -h and -r, as "HOST:PORT", or "DIR/.s.PGSQL.PORT" for a socket
 * directory (*unix_socket set). Returns what snprintf() returns. */
int options_conninfo_target(const struct options *o, char *buf, size_t len, int *unix_socket)
{
	PQconninfoOption *opts = NULL;
	const char *host = o->patroni_host ? o->patroni_host : "", *port = NULL;
	char portbuf[8];
	char err[160];
	int n;

	/* A conninfo is only ever set after libpq's parser took it. */
	if (o->pg_conninfo && lib_pq_load(err, sizeof(err)) == 0)
		opts = lib_pq.PQconninfoParse(o->pg_conninfo, NULL);
	for (PQconninfoOption *p = opts; p && p->keyword; p++) {
		if (!p->val || !*p->val)
			continue;
		if (!strcmp(p->keyword, "host"))
			host = p->val;
		else if (!strcmp(p->keyword, "port"))
			port = p->val;
	}
	if (!port) {
		snprintf(portbuf, sizeof(portbuf), "%d", o->pg_port);
		port = portbuf;
	}
	*unix_socket = resolve_is_unix_socket(host);
	n = snprintf(buf, len, *unix_socket ? "%s/.s.PGSQL.%s" : "%s:%s", host, port);
	if (opts)
		lib_pq.PQconninfoFree(opts);
	return n;
}

/* A socket directory in --pg-conninfo: libpq connects to DIR/.s.PGSQL.PORT,
 * which must fit a sockaddr_un; refused here rather than at every probe. */
int options_conninfo_check_socket(const struct options *o, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char path[OPTIONS_CONNINFO_MAX + 16];
	int unix_socket;
	int n = options_conninfo_target(o, path, sizeof(path), &unix_socket);

	if (unix_socket && n >= (int)sizeof(sun.sun_path)) {
		options_err(err, errlen,
			    "--pg-conninfo: the socket path %s is longer than %zu bytes", path,
			    sizeof(sun.sun_path) - 1);
		return -1;
	}
	return 0;
}

/* The conninfo as keyword=value pairs, every secret left out (libpq's "*"
 * flag, lib_pq_secret()): for --check-config and /status, which must never
 * show one. Only libpq's parser can split a conninfo (a URI included), and a
 * conninfo is only ever set after that parser accepted it, so libpq is
 * loaded here; should it not be, nothing at all is shown. */
void options_conninfo_redacted(const char *conninfo, char *buf, size_t len)
{
	PQconninfoOption *opts;
	size_t used = 0;
	char err[160];

	buf[0] = '\0';
	/* A conninfo passed validation, which loaded libpq. */
	if (!conninfo || lib_pq_load(err, sizeof(err)) < 0)
		return;
	opts = lib_pq.PQconninfoParse(conninfo, NULL);
	if (!opts)
		return;
	for (PQconninfoOption *p = opts; p->keyword && used + 1 < len; p++) {
		int n;

		if (!p->val || lib_pq_secret(p))
			continue;
		n = snprintf(buf + used, len - used, "%s%s='", used ? " " : "", p->keyword);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
		/* libpq's quoting: a quote or a backslash in a value is escaped
		 * with a backslash, so the string parses back to the same value. */
		for (const char *c = p->val; *c && used + 3 < len; c++) {
			if (*c == '\'' || *c == '\\')
				buf[used++] = '\\';
			buf[used++] = *c;
		}
		if (used + 2 > len)
			break;
		buf[used++] = '\'';
		buf[used] = '\0';
	}
	buf[used < len ? used : len - 1] = '\0';
	lib_pq.PQconninfoFree(opts);
}
