/* options.c - the option table and everything derived from it. */
#include "options.h"

#include "acl.h"
#include "lib_pq.h"
#include "resolve.h"

#include <unistd.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

enum options_kind {
	OPTIONS_KIND_HOST,     /* non-empty host name or address */
	OPTIONS_KIND_ENDPOINT, /* Patroni path, with optional query */
	OPTIONS_KIND_PORT,     /* 1..65535 */
	OPTIONS_KIND_DURATION, /* milliseconds, bounded */
	OPTIONS_KIND_PATH,     /* any string, empty allowed */
	OPTIONS_KIND_ADDRESS,  /* literal IPv4/IPv6 address, repeatable */
	OPTIONS_KIND_CIDR,     /* address or CIDR block, repeatable */
	OPTIONS_KIND_SCHEME,   /* http | https */
	OPTIONS_KIND_FILE,     /* a readable file */
	OPTIONS_KIND_CONNINFO, /* libpq conninfo string, one host */
	OPTIONS_KIND_HOSTPORT, /* literal address and port: ADDR:PORT, [V6]:PORT */
	OPTIONS_KIND_FLAG,     /* no value on the command line; true/false elsewhere */
	OPTIONS_KIND_PROFILE,  /* NAME[:PORT], repeatable */
	OPTIONS_KIND_COUNT,    /* a whole number within min..max */
};

/* Where an option may be set from. */
enum options_where {
	OPTIONS_ANYWHERE = 0,
	OPTIONS_NOT_IN_FILE = 1, /* --config itself */
	OPTIONS_CLI_ONLY = 2,    /* actions such as --check-config */
};

/* The sources, applied in this order; a later one overrides an earlier one
 * and replaces (not extends) a repeatable option's list. */
enum options_layer {
	OPTIONS_LAYER_DEFAULT = 1,
	OPTIONS_LAYER_FILE,
	OPTIONS_LAYER_ENV,
	OPTIONS_LAYER_CLI,
};

struct options_def {
	const char *name;  /* long name: --NAME, config key, HAPPAC_NAME */
	int short_name;    /* 0 when none */
	enum options_kind kind;
	const char *arg;   /* value placeholder in --help */
	const char *def;   /* default, as the user would write it; NULL = none */
	long min, max;     /* bounds for durations (ms) */
	size_t offset;     /* field in struct options */
	const char *help;
	enum options_where where;
};

#define OFF(field) offsetof(struct options, field)

static const struct options_def options_table[] = {
	{ "config", 'c', OPTIONS_KIND_PATH, "FILE", NULL, 0, 0, OFF(config_path),
	  "Read settings from FILE (key = value lines); SIGHUP reloads it",
	  OPTIONS_NOT_IN_FILE },
	{ "check-config", 't', OPTIONS_KIND_FLAG, NULL, NULL, 0, 0,
	  OFF(check_config),
	  "Validate all settings, print the effective ones and exit (0 or 2)",
	  OPTIONS_CLI_ONLY },
	{ "patroni-host", 'h', OPTIONS_KIND_HOST, "HOST", NULL, 0, 0,
	  OFF(patroni_host),
	  "Host of the Patroni REST API and of PgBouncer (required)",
	  OPTIONS_ANYWHERE },
	{ "patroni-healthcheck", 'k', OPTIONS_KIND_ENDPOINT, "ENDPOINT", "primary",
	  0, 0, OFF(patroni_endpoint),
	  "Patroni health endpoint that must answer 200",
	  OPTIONS_ANYWHERE },
	{ "patroni-port", 'o', OPTIONS_KIND_PORT, "PORT", "8008", 0, 0,
	  OFF(patroni_port), "Port of the Patroni REST API",
	  OPTIONS_ANYWHERE },
	{ "port", 'p', OPTIONS_KIND_PORT, "PORT", "5555", 0, 0, OFF(port),
	  "Port this agent listens on for HAProxy agent checks",
	  OPTIONS_ANYWHERE },
	{ "pg-is-ready-port", 'r', OPTIONS_KIND_PORT, "PORT", NULL, 0, 0,
	  OFF(pg_port), "Port of the local PgBouncer to probe (required)",
	  OPTIONS_ANYWHERE },
	{ "pg-is-ready-path", 'x', OPTIONS_KIND_PATH, "PATH", "", 0, 0,
	  OFF(pg_isready_path),
	  "Accepted for compatibility and ignored: happac never runs pg_isready",
	  OPTIONS_ANYWHERE },
	{ "listen", 0, OPTIONS_KIND_ADDRESS, "ADDR", NULL, 0, 0, OFF(listen),
	  "Address to listen on, IPv4 or IPv6, repeatable (default: all)",
	  OPTIONS_ANYWHERE },
	{ "allow", 0, OPTIONS_KIND_CIDR, "CIDR", NULL, 0, 0, OFF(allow),
	  "Accept agent and HTTP connections only from here, repeatable "
	  "(default: everyone); others are closed without a reply",
	  OPTIONS_ANYWHERE },
	{ "pg-conninfo", 0, OPTIONS_KIND_CONNINFO, "CONNINFO", NULL, 0, 0,
	  OFF(pg_conninfo),
	  "Log in through PgBouncer with this libpq conninfo and check "
	  "SELECT pg_is_in_recovery() (default: ping only); host and port "
	  "default to -h and -r (host=/DIR: a Unix socket there); keep passwords "
	  "in a passfile (secrets here are warned about, never shown)",
	  OPTIONS_ANYWHERE },
	{ "patroni-scheme", 0, OPTIONS_KIND_SCHEME, "http|https", "http", 0, 0,
	  OFF(patroni_scheme), "Scheme of the Patroni REST API",
	  OPTIONS_ANYWHERE },
	{ "patroni-cafile", 0, OPTIONS_KIND_FILE, "FILE", NULL, 0, 0,
	  OFF(patroni_cafile),
	  "CA bundle that verifies Patroni's certificate (default: system CAs)",
	  OPTIONS_ANYWHERE },
	{ "patroni-cert", 0, OPTIONS_KIND_FILE, "FILE", NULL, 0, 0,
	  OFF(patroni_cert),
	  "Client certificate for Patroni's verify_client (PEM)",
	  OPTIONS_ANYWHERE },
	{ "patroni-key", 0, OPTIONS_KIND_FILE, "FILE", NULL, 0, 0,
	  OFF(patroni_key), "Key of the client certificate (PEM)",
	  OPTIONS_ANYWHERE },
	{ "patroni-insecure", 0, OPTIONS_KIND_FLAG, NULL, NULL, 0, 0,
	  OFF(patroni_insecure),
	  "Do not verify Patroni's certificate (logged as a warning)",
	  OPTIONS_ANYWHERE },
	{ "http-listen", 0, OPTIONS_KIND_HOSTPORT, "ADDR:PORT", NULL, 0, 0,
	  OFF(http_listen),
	  "Serve /health, /status and /metrics over HTTP here (default: off)",
	  OPTIONS_ANYWHERE },
	{ "interval", 0, OPTIONS_KIND_DURATION, "DURATION", "1s", 100, 60000,
	  OFF(interval_ms), "Time between probe rounds",
	  OPTIONS_ANYWHERE },
	{ "timeout", 0, OPTIONS_KIND_DURATION, "DURATION", "800ms", 10, 30000,
	  OFF(timeout_ms), "Hard deadline of each probe",
	  OPTIONS_ANYWHERE },
	{ "haproxy-agent-inter", 0, OPTIONS_KIND_DURATION, "DURATION",
	  OPTIONS_HAPROXY_AGENT_INTER, 100, 600000, OFF(haproxy_agent_inter_ms),
	  "The agent-inter of the HAProxy servers that ask this agent (as "
	  "'happac recipe haproxy' writes it); a new primary is held back "
	  "interval + timeout + this long",
	  OPTIONS_ANYWHERE },
	{ "stale-after", 0, OPTIONS_KIND_DURATION, "DURATION", NULL, 500, 600000,
	  OFF(stale_after_ms),
	  "Answer 'down #stale' when no probe round ended for this long "
	  "(default: 3 x (interval + timeout), at least 5s)",
	  OPTIONS_ANYWHERE },
	{ "profile", 0, OPTIONS_KIND_PROFILE, "NAME[:PORT]", NULL, 0, 0,
	  OFF(profile_use),
	  "Also serve profile NAME (primary, replica, read-only, sync, async, "
	  "standby-leader, quorum, read-only-quorum, or a [profile NAME] of the "
	  "config file), on its own "
	  "port if given; repeatable",
	  OPTIONS_ANYWHERE },
	{ "agent-send-wait", 0, OPTIONS_KIND_DURATION, "DURATION", "50ms", 0, 1000,
	  OFF(agent_send_wait_ms),
	  "With several profiles: how long a check may take to name one "
	  "(HAProxy agent-send) before the port's own profile answers",
	  OPTIONS_ANYWHERE },
	{ "ready-window", 0, OPTIONS_KIND_DURATION, "DURATION", "10s", 1000, 600000,
	  OFF(ready_window_ms),
	  "After happac itself said drain or maint, say 'ready' this long so "
	  "every HAProxy hears it",
	  OPTIONS_ANYWHERE },
	{ "max-connections", 0, OPTIONS_KIND_COUNT, "N", "256", 16, 65536,
	  OFF(max_connections),
	  "Agent connections that may wait for a profile line at once; when full, "
	  "the one silent longest is answered with its listener's profile",
	  OPTIONS_ANYWHERE },
	{ "control-socket", 0, OPTIONS_KIND_PATH, "PATH", NULL, 0, 0,
	  OFF(control_socket),
	  "Unix socket for 'happac ctl' (drain, maint, ready); default: off",
	  OPTIONS_ANYWHERE },
	{ "state-file", 0, OPTIONS_KIND_PATH, "PATH", NULL, 0, 0, OFF(state_file),
	  "Where operator overrides persist across restarts; default: none",
	  OPTIONS_ANYWHERE },
	{ "run-as-root", 0, OPTIONS_KIND_FLAG, NULL, NULL, 0, 0, OFF(run_as_root),
	  "Allow running as root (happac needs no privilege; default: refuse)",
	  OPTIONS_ANYWHERE },
	{ "verbose", 'v', OPTIONS_KIND_FLAG, NULL, NULL, 0, 0, OFF(verbose),
	  "Log every agent connection and probe (debug)",
	  OPTIONS_ANYWHERE },
};

#define OPTIONS_COUNT (sizeof(options_table) / sizeof(options_table[0]))

static void options_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void options_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	/* Values are echoed: a newline in one must not forge a second line. */
	for (char *p = err; *p; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p == 0x7f)
			*p = '?';
}

/* "--name" or "-x/--name" for messages. */
static const char *options_label(const struct options_def *d)
{
	static char buf[64];

	if (d->short_name)
		snprintf(buf, sizeof(buf), "-%c/--%s", d->short_name, d->name);
	else
		snprintf(buf, sizeof(buf), "--%s", d->name);
	return buf;
}

int options_parse_duration(const char *s, long *ms)
{
	long long whole = 0, frac_num = 0, frac_den = 1, scale;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		whole = whole * 10 + (*p - '0');
		if (whole > 100000000LL)
			return -1;
		p++;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p)) {
			if (frac_den < 1000000) {
				frac_num = frac_num * 10 + (*p - '0');
				frac_den *= 10;
			}
			p++;
		}
	}
	if (*p == '\0' || strcmp(p, "ms") == 0)
		scale = 1;
	else if (strcmp(p, "s") == 0)
		scale = 1000;
	else if (strcmp(p, "m") == 0)
		scale = 60000;
	else
		return -1;
	*ms = (long)(whole * scale + frac_num * scale / frac_den);
	return 0;
}

int options_parse_port(const char *s, int *port)
{
	long v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p - '0');
		if (v > 65535)
			return -1;
		p++;
	}
	if (*p != '\0' || v < 1)
		return -1;
	*port = (int)v;
	return 0;
}

/* Strip [] from an IPv6 literal; returns a new string or NULL if malformed. */
static char *options_unbracket(const char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
		return strndup(s + 1, n - 2);
	if (strchr(s, '[') || strchr(s, ']'))
		return NULL;
	return strdup(s);
}

static int options_valid_host(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > 253 || h[0] == '-' || h[0] == '.')
		return 0;
	for (const char *p = h; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!(isalnum(c) || c == '.' || c == '-' || c == ':' ||
		      c == '_' || c == '%'))
			return 0;
	}
	return 1;
}

static int options_valid_endpoint(const char *e)
{
	if (strlen(e) > 200)
		return 0;
	for (const char *p = e; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || c == '#')
			return 0;
	}
	return 1;
}

/* "ADDR:PORT" or "[V6ADDR]:PORT"; "" turns the listener off. */
static int options_apply_hostport(struct options *o, const struct options_def *d,
				  const char *value, char *err, size_t errlen)
{
	unsigned char buf[sizeof(struct in6_addr)];
	const char *given = value, *colon = strrchr(value, ':');
	char addr[64];
	int port;
	size_t alen;

	if (*value == '\0') {
		free(o->http_listen);
		free(o->http_addr);
		o->http_listen = o->http_addr = NULL;
		o->http_port = 0;
		return 0;
	}
	if (!colon || options_parse_port(colon + 1, &port) != 0)
		goto bad;
	alen = (size_t)(colon - value);
	if (alen >= 2 && value[0] == '[' && value[alen - 1] == ']') {
		value++;
		alen -= 2;
	} else if (memchr(value, ':', alen)) {
		goto bad; /* IPv6 needs brackets to tell the port apart */
	}
	if (alen == 0 || alen >= sizeof(addr))
		goto bad;
	memcpy(addr, value, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1)
		goto bad;
	free(o->http_listen);
	free(o->http_addr);
	o->http_listen = strdup(given);
	o->http_addr = strdup(addr);
	o->http_port = port;
	return 0;
bad:
	options_err(err, errlen,
		    "%s: '%s' is not ADDR:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)",
		    options_label(d), given);
	return -1;
}

static int options_list_add(struct options *o, struct options_list *l,
			    const struct options_def *d, char *value, char *err,
			    size_t errlen)
{
	if (l->layer != o->layer) {
		/* A new source replaces the list it inherited. */
		for (int i = 0; i < l->count; i++)
			free(l->items[i]);
		l->count = 0;
		l->layer = o->layer;
	}
	if (!value || l->count >= OPTIONS_MAX_LIST) {
		free(value);
		options_err(err, errlen, "%s: more than %d values", options_label(d),
			    OPTIONS_MAX_LIST);
		return -1;
	}
	l->items[l->count++] = value;
	return 0;
}

static void options_list_free(struct options_list *l)
{
	for (int i = 0; i < l->count; i++)
		free(l->items[i]);
	l->count = 0;
}

static int options_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

/* A conninfo is a few keywords; this leaves room for many. */
#define OPTIONS_CONNINFO_MAX 1024

static void options_conninfo_redacted(const char *conninfo, char *buf, size_t len);

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

/* libpq conninfo: parsed here (no connection) so a typo fails at start. */
static int options_apply_conninfo(struct options *o, const struct options_def *d,
				  const char *value, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts;
	char secrets[sizeof(o->pg_conninfo_secrets)] = "";
	size_t nsecrets = 0;
	int secret = 0;

	if (*value == '\0') {
		free(o->pg_conninfo);
		o->pg_conninfo = NULL;
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
	/* libpq is loaded only when a conninfo is configured (lib_pq.h). */
	if (lib_pq_load(err, errlen) < 0)
		return -1;
	opts = lib_pq.PQconninfoParse(value, &perr);
	if (!opts) {
		if (perr) {
			char why[256];

			options_conninfo_error(perr, why, sizeof(why));
			options_err(err, errlen, "%s: %s", options_label(d), why);
			lib_pq.PQfreemem(perr);
		} else {
			options_err(err, errlen, "%s: out of memory", options_label(d));
		}
		return -1;
	}
	for (PQconninfoOption *p = opts; p->keyword; p++) {
		if (!p->val)
			continue;
		if ((!strcmp(p->keyword, "host") || !strcmp(p->keyword, "hostaddr") ||
		     !strcmp(p->keyword, "port")) && strchr(p->val, ',')) {
			options_err(err, errlen, "%s: one %s only (happac checks this node's PgBouncer)",
				    options_label(d), p->keyword);
			lib_pq.PQconninfoFree(opts);
			return -1;
		}
		/* A URI decodes %1F into a control character; rendered as
		 * keyword='value' it would break the dump's line (a secret is
		 * never rendered). */
		if (!lib_pq_secret(p) && options_has_control(p->val)) {
			options_err(err, errlen, "%s: control character in the %s value",
				    options_label(d), p->keyword);
			lib_pq.PQconninfoFree(opts);
			return -1;
		}
		/* Every secret, by libpq's own flag; each one is named in the
		 * warning (as many as fit: a few keywords). */
		if (lib_pq_secret(p) && *p->val) {
			size_t klen = strlen(p->keyword);

			secret = 1;
			if (nsecrets + klen + 2 <= sizeof(secrets)) {
				if (nsecrets)
					secrets[nsecrets++] = ' ';
				memcpy(secrets + nsecrets, p->keyword, klen + 1);
				nsecrets += klen;
			}
		}
	}
	lib_pq.PQconninfoFree(opts);
	/* Its rendering (quoted, escaped: a URI grows) must load back too. */
	{
		char shown[4 * OPTIONS_CONNINFO_MAX];

		options_conninfo_redacted(value, shown, sizeof(shown));
		if (strlen(shown) > OPTIONS_CONNINFO_MAX) {
			options_err(err, errlen, "%s: longer than %d bytes as keyword='value' pairs",
				    options_label(d), OPTIONS_CONNINFO_MAX);
			return -1;
		}
	}
	free(o->pg_conninfo);
	o->pg_conninfo = strdup(value);
	o->pg_conninfo_has_password = secret;
	snprintf(o->pg_conninfo_secrets, sizeof(o->pg_conninfo_secrets), "%s", secrets);
	return 0;
}

/* --profile NAME[:PORT]: the name is checked once all sources are read
 * (a config section may define it); the port here. */
static int options_apply_profile_use(struct options *o, const struct options_def *d,
				     const char *value, char *err, size_t errlen)
{
	const char *colon = strchr(value, ':');
	size_t n = colon ? (size_t)(colon - value) : strlen(value);
	int port;

	if (n == 0 || n >= PROFILE_NAME_MAX) {
		options_err(err, errlen, "%s: '%s' is not NAME[:PORT]", options_label(d), value);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)value[i]) && value[i] != '-' && value[i] != '_') {
			options_err(err, errlen, "%s: bad profile name in '%s'",
				    options_label(d), value);
			return -1;
		}
	if (colon && options_parse_port(colon + 1, &port) != 0) {
		options_err(err, errlen, "%s: invalid port in '%s' (expected 1-65535)",
			    options_label(d), value);
		return -1;
	}
	return options_list_add(o, &o->profile_use, d, strdup(value), err, errlen);
}

/* One "key = value" line inside a [profile NAME] section. */
static int options_profile_key(struct profile *p, const char *key, const char *value,
			       char *err, size_t errlen)
{
	if (!strcmp(key, "rule")) {
		struct profile b;

		if (profile_builtin(value, &b) != 0) {
			options_err(err, errlen,
				    "rule: '%s' is not primary, replica, read-only, sync, "
				    "async, standby-leader, quorum or read-only-quorum", value);
			return -1;
		}
		p->rule = b.rule;
		snprintf(p->endpoint, sizeof(p->endpoint), "%s", b.endpoint);
		return 0;
	}
	if (!strcmp(key, "wrong-role")) {
		for (int w = 0; w < PROFILE_WRONG_COUNT; w++)
			if (!strcmp(value, profile_wrong_names[w])) {
				p->wrong = (enum profile_wrong)w;
				return 0;
			}
		options_err(err, errlen, "wrong-role: '%s' is not down, drain or maint", value);
		return -1;
	}
	if (!strcmp(key, "lag-full") || !strcmp(key, "lag-cut")) {
		int64_t b;
		char why[96];

		if (profile_parse_bytes(value, &b, why, sizeof(why)) != 0) {
			options_err(err, errlen, "%s: '%s': %s", key, value, why);
			return -1;
		}
		if (key[4] == 'f')
			p->lag_full = b;
		else
			p->lag_cut = b;
		return 0;
	}
	if (!strcmp(key, "port")) {
		if (options_parse_port(value, &p->port) != 0) {
			options_err(err, errlen, "port: '%s' is not 1-65535", value);
			return -1;
		}
		return 0;
	}
	options_err(err, errlen,
		    "unknown profile setting '%s' (rule, wrong-role, lag-full, lag-cut, port)",
		    key);
	return -1;
}

/* "[profile NAME]": start (or continue) the definition of NAME. */
static int options_profile_section(struct options *o, const char *name, char *err,
				   size_t errlen)
{
	struct profile *p;
	size_t n = strlen(name);

	if (n == 0 || n >= PROFILE_NAME_MAX) {
		options_err(err, errlen, "[profile]: a name of 1-%d characters is needed",
			    PROFILE_NAME_MAX - 1);
		return -1;
	}
	for (int i = 0; i < o->profile_def_count; i++)
		if (!strcmp(o->profile_defs[i].name, name)) {
			o->section = i;
			return 0;
		}
	if (o->profile_def_count >= PROFILE_MAX) {
		options_err(err, errlen, "more than %d profiles", PROFILE_MAX);
		return -1;
	}
	p = &o->profile_defs[o->profile_def_count];
	/* A section named after a built-in profile starts from it. */
	if (profile_builtin(name, p) != 0) {
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", name);
		p->rule = PROFILE_RULE_COUNT; /* must be given: checked later */
	}
	o->section = o->profile_def_count++;
	return 0;
}

static const struct options_def *options_find(const char *name)
{
	for (size_t i = 0; i < OPTIONS_COUNT; i++)
		if (strcmp(options_table[i].name, name) == 0)
			return &options_table[i];
	return NULL;
}

static int options_apply(struct options *o, const struct options_def *d,
			 const char *value, char *err, size_t errlen)
{
	char *field = (char *)o + d->offset;
	char **str = (char **)(void *)field;
	int *num = (int *)(void *)field;
	char *copy;
	long ms;

	switch (d->kind) {
	case OPTIONS_KIND_HOST:
		copy = options_unbracket(value);
		if (!copy || !options_valid_host(copy)) {
			free(copy);
			options_err(err, errlen, "%s: invalid host '%s'",
				    options_label(d), value);
			return -1;
		}
		free(*str);
		*str = copy;
		return 0;
	case OPTIONS_KIND_ENDPOINT:
		while (*value == '/')
			value++;
		if (!options_valid_endpoint(value)) {
			options_err(err, errlen,
				    "%s: invalid endpoint '%s' (no spaces, '#' or control characters, at most 200 bytes)",
				    options_label(d), value);
			return -1;
		}
		free(*str);
		*str = strdup(value);
		return 0;
	case OPTIONS_KIND_PORT:
		if (options_parse_port(value, num) != 0) {
			options_err(err, errlen,
				    "%s: invalid port '%s' (expected 1-65535)",
				    options_label(d), value);
			return -1;
		}
		return 0;
	case OPTIONS_KIND_DURATION:
		if (options_parse_duration(value, &ms) != 0) {
			options_err(err, errlen,
				    "%s: invalid duration '%s' (expected e.g. 800ms, 1s, 1.5s)",
				    options_label(d), value);
			return -1;
		}
		if (ms < d->min || ms > d->max) {
			options_err(err, errlen,
				    "%s: '%s' is out of range (%ldms-%ldms)",
				    options_label(d), value, d->min, d->max);
			return -1;
		}
		*num = (int)ms;
		return 0;
	case OPTIONS_KIND_PATH:
		if (options_has_control(value)) {
			options_err(err, errlen, "%s: control character in '%s'",
				    options_label(d), value);
			return -1;
		}
		free(*str);
		*str = strdup(value);
		if (d->offset == OFF(pg_isready_path)) {
			o->pg_isready_path_given = 1;
		} else if (!*value) {
			/* "" switches a path option off (file, environment) */
			free(*str);
			*str = NULL;
		}
		return 0;
	case OPTIONS_KIND_PROFILE:
		return options_apply_profile_use(o, d, value, err, errlen);
	case OPTIONS_KIND_COUNT: {
		long v = 0;
		const char *q = value;

		while (isdigit((unsigned char)*q) && v <= d->max)
			v = v * 10 + (*q++ - '0');
		if (q == value || *q || v < d->min || v > d->max) {
			options_err(err, errlen, "%s: '%s' is not a number in %ld-%ld",
				    options_label(d), value, d->min, d->max);
			return -1;
		}
		*num = (int)v;
		return 0;
	}
	case OPTIONS_KIND_ADDRESS: {
		unsigned char buf[sizeof(struct in6_addr)];

		copy = options_unbracket(value);
		if (!copy || (inet_pton(AF_INET, copy, buf) != 1 &&
			      inet_pton(AF_INET6, copy, buf) != 1)) {
			free(copy);
			options_err(err, errlen,
				    "%s: '%s' is not an IPv4 or IPv6 address",
				    options_label(d), value);
			return -1;
		}
		return options_list_add(o, (struct options_list *)(void *)field, d,
					copy, err, errlen);
	}
	case OPTIONS_KIND_CIDR: {
		struct acl_entry e;
		char msg[128];

		if (acl_parse(value, &e, msg, sizeof(msg)) != 0) {
			options_err(err, errlen, "%s: %s", options_label(d), msg);
			return -1;
		}
		return options_list_add(o, (struct options_list *)(void *)field, d,
					strdup(value), err, errlen);
	}
	case OPTIONS_KIND_SCHEME:
		if (strcmp(value, "http") && strcmp(value, "https")) {
			options_err(err, errlen, "%s: '%s' is not http or https",
				    options_label(d), value);
			return -1;
		}
		free(*str);
		*str = strdup(value);
		return 0;
	case OPTIONS_KIND_FILE:
		if (*value && access(value, R_OK) != 0) {
			options_err(err, errlen, "%s: cannot read '%s': %s",
				    options_label(d), value, strerror(errno));
			return -1;
		}
		free(*str);
		*str = *value ? strdup(value) : NULL;
		return 0;
	case OPTIONS_KIND_CONNINFO:
		return options_apply_conninfo(o, d, value, err, errlen);
	case OPTIONS_KIND_HOSTPORT:
		return options_apply_hostport(o, d, value, err, errlen);
	case OPTIONS_KIND_FLAG:
		/* NULL: a command-line switch; otherwise a file or env value. */
		if (!value || !strcmp(value, "1") || !strcasecmp(value, "true") ||
		    !strcasecmp(value, "yes") || !strcasecmp(value, "on")) {
			*num = 1;
		} else if (!strcmp(value, "0") || !strcasecmp(value, "false") ||
			   !strcasecmp(value, "no") || !strcasecmp(value, "off")) {
			*num = 0;
		} else {
			options_err(err, errlen,
				    "%s: '%s' is not a boolean (true/false, yes/no, on/off, 1/0)",
				    options_label(d), value);
			return -1;
		}
		return 0;
	}
	options_err(err, errlen, "internal error: option kind %d", (int)d->kind);
	return -1;
}

void options_init(struct options *o)
{
	char err[256];

	memset(o, 0, sizeof(*o));
	o->layer = OPTIONS_LAYER_DEFAULT;
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];
		if (d->def && options_apply(o, d, d->def, err, sizeof(err)) != 0) {
			fprintf(stderr, "happac: bad built-in default: %s\n", err);
			abort();
		}
	}
	o->pg_isready_path_given = 0;
}

void options_free(struct options *o)
{
	free(o->config_path);
	free(o->patroni_host);
	free(o->patroni_endpoint);
	free(o->pg_isready_path);
	free(o->http_listen);
	free(o->http_addr);
	free(o->pg_conninfo);
	free(o->patroni_scheme);
	free(o->patroni_cafile);
	free(o->patroni_cert);
	free(o->patroni_key);
	options_list_free(&o->listen);
	options_list_free(&o->allow);
	options_list_free(&o->profile_use);
	free(o->control_socket);
	free(o->state_file);
	memset(o, 0, sizeof(*o));
}

int options_set(struct options *o, const char *name, const char *value,
		char *err, size_t errlen)
{
	const struct options_def *d = options_find(name);

	if (!d || d->where == OPTIONS_CLI_ONLY) {
		options_err(err, errlen, "unknown option '%s'", name);
		return -1;
	}
	return options_apply(o, d, value, err, errlen);
}

static char *options_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
			   end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* One "key = value" line; err gets the message without the FILE:LINE part. */
static int options_file_line(struct options *o, char *line, char *err, size_t errlen)
{
	char *key = options_trim(line), *eq, *value;
	const struct options_def *d;
	size_t vlen;

	if (*key == '\0' || *key == '#' || *key == ';')
		return 0;
	if (*key == '[') {
		/* pgbouncer.ini style sections: [happac] for the options,
		 * [profile NAME] for a profile. */
		size_t n = strlen(key);

		if (strcmp(key, "[happac]") == 0) {
			o->section = -1;
			return 0;
		}
		if (n > 10 && !strncmp(key, "[profile ", 9) && key[n - 1] == ']') {
			key[n - 1] = '\0';
			return options_profile_section(o, options_trim(key + 9), err, errlen);
		}
		options_err(err, errlen, "unknown section %s (expected [happac] or [profile NAME])",
			    key);
		return -1;
	}
	eq = strchr(key, '=');
	if (!eq) {
		options_err(err, errlen, "expected 'key = value', got '%s'", key);
		return -1;
	}
	*eq = '\0';
	value = options_trim(eq + 1);
	key = options_trim(key);
	vlen = strlen(value);
	/* "..." keeps spaces and allows an empty value */
	if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
		value[vlen - 1] = '\0';
		value++;
	}
	if (o->section >= 0)
		return options_profile_key(&o->profile_defs[o->section], key, value, err,
					   errlen);
	d = options_find(key);
	if (!d || d->where != OPTIONS_ANYWHERE) {
		options_err(err, errlen, "unknown option '%s'%s", key,
			    d ? " (not allowed in a config file)" : "");
		return -1;
	}
	return options_apply(o, d, value, err, errlen);
}

int options_load_file(struct options *o, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[4096], msg[512];
	int lineno = 0, layer = o->layer;

	if (!f) {
		options_err(err, errlen, "cannot read config file %s: %s", path,
			    strerror(errno));
		return -1;
	}
	o->layer = OPTIONS_LAYER_FILE;
	o->section = -1;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			options_err(err, errlen, "%s:%d: line longer than %zu bytes",
				    path, lineno, sizeof(line) - 2);
			goto fail;
		}
		if (options_file_line(o, line, msg, sizeof(msg)) != 0) {
			options_err(err, errlen, "%s:%d: %s", path, lineno, msg);
			goto fail;
		}
	}
	if (ferror(f)) {
		options_err(err, errlen, "%s: read error: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	o->layer = layer;
	return 0;
fail:
	fclose(f);
	o->layer = layer;
	return -1;
}

/* HAPPAC_<NAME>: upper case, '-' -> '_'. */
static void options_env_name(const struct options_def *d, char *buf, size_t len)
{
	size_t i = 0, n = strlen("HAPPAC_");

	memcpy(buf, "HAPPAC_", n);
	for (const char *p = d->name; *p && n + 1 < len; p++)
		buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	buf[n] = '\0';
	(void)i;
}

static int options_load_env(struct options *o, char *err, size_t errlen)
{
	char name[64], msg[512];

	o->layer = OPTIONS_LAYER_ENV;
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];
		const char *v;

		if (d->where != OPTIONS_ANYWHERE)
			continue;
		options_env_name(d, name, sizeof(name));
		v = getenv(name);
		if (!v)
			continue;
		if (options_apply(o, d, v, msg, sizeof(msg)) != 0) {
			options_err(err, errlen, "environment %s: %s", name, msg);
			return -1;
		}
	}
	return 0;
}

int options_hold_ms(const struct options *o)
{
	/* On a switchover the old primary's Patroni says 503 no later than
	 * the new one says 200. The old node's happac may keep its cached up
	 * for interval + timeout after that (one round to start, one timeout
	 * to end), and its HAProxy keeps the server UP until its next agent
	 * check, up to agent-inter later. */
	return o->interval_ms + o->timeout_ms + o->haproxy_agent_inter_ms;
}

int options_stale_after_ms(const struct options *o)
{
	int derived;

	if (o->stale_after_ms)
		return o->stale_after_ms;
	derived = 3 * (o->interval_ms + o->timeout_ms);
	return derived < 5000 ? 5000 : derived;
}

static struct profile *options_profile_find(struct profile *list, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i].name, name))
			return &list[i];
	return NULL;
}

/* The effective profiles: [0] from -k, then --profile, then sections. */
static int options_build_profiles(struct options *o, char *err, size_t errlen)
{
	struct profile *p, *def;
	int any_lag = 0;

	for (int i = 0; i < o->profile_def_count; i++)
		if (o->profile_defs[i].rule == PROFILE_RULE_COUNT) {
			options_err(err, errlen, "[profile %s]: 'rule = ...' is missing",
				    o->profile_defs[i].name);
			return -1;
		}
	o->profile_count = 0;
	p = &o->profiles[o->profile_count++];
	profile_from_endpoint(o->patroni_endpoint, p);
	/* A section named like the -k profile tunes it (wrong-role, lag, and
	 * a port of its own: one more listener answering it). */
	def = options_profile_find(o->profile_defs, o->profile_def_count, p->name);
	if (def && def->rule == p->rule) {
		p->wrong = def->wrong;
		p->lag_full = def->lag_full;
		p->lag_cut = def->lag_cut;
		p->port = def->port;
	}
	for (int i = 0; i < o->profile_use.count; i++) {
		char name[PROFILE_NAME_MAX];
		const char *spec = o->profile_use.items[i], *colon = strchr(spec, ':');
		struct profile *have;

		snprintf(name, sizeof(name), "%.*s",
			 (int)(colon ? (size_t)(colon - spec) : strlen(spec)), spec);
		have = options_profile_find(o->profiles, o->profile_count, name);
		if (!have) {
			if (o->profile_count >= PROFILE_MAX) {
				options_err(err, errlen, "--profile: more than %d profiles", PROFILE_MAX);
				return -1;
			}
			have = &o->profiles[o->profile_count];
			def = options_profile_find(o->profile_defs, o->profile_def_count, name);
			if (def)
				*have = *def;
			else if (profile_builtin(name, have) != 0) {
				options_err(err, errlen,
					    "--profile: unknown profile '%s' (built in: primary, "
					    "replica, read-only, sync, async, standby-leader, "
					    "quorum, read-only-quorum; or "
					    "define [profile %s] in the config file)", name, name);
				return -1;
			}
			o->profile_count++;
		}
		if (colon)
			options_parse_port(colon + 1, &have->port);
	}
	for (int i = 0; i < o->profile_def_count; i++) {
		if (options_profile_find(o->profiles, o->profile_count, o->profile_defs[i].name))
			continue;
		if (o->profile_count >= PROFILE_MAX) {
			options_err(err, errlen, "more than %d profiles", PROFILE_MAX);
			return -1;
		}
		o->profiles[o->profile_count++] = o->profile_defs[i];
	}
	for (int i = 0; i < o->profile_count; i++) {
		p = &o->profiles[i];
		if (p->port && (p->port == o->port || p->port == o->http_port)) {
			options_err(err, errlen, "profile %s: port %d is already in use by happac",
				    p->name, p->port);
			return -1;
		}
		for (int j = 0; j < i; j++)
			if (p->port && p->port == o->profiles[j].port) {
				options_err(err, errlen, "profiles %s and %s: both on port %d",
					    o->profiles[j].name, p->name, p->port);
				return -1;
			}
		if ((p->lag_full || p->lag_cut) && p->lag_cut <= p->lag_full) {
			options_err(err, errlen, "profile %s: lag-cut must be above lag-full", p->name);
			return -1;
		}
		any_lag |= p->lag_cut > 0;
	}
	if (any_lag && !o->pg_conninfo) {
		options_err(err, errlen,
			    "lag weights need --pg-conninfo (the lag is read through PgBouncer)");
		return -1;
	}
	return 0;
}

/* Where the PgBouncer probe connects: --pg-conninfo's host and port, each
 * else -h and -r, as "HOST:PORT", or "DIR/.s.PGSQL.PORT" for a socket
 * directory (*unix_socket set). Returns what snprintf() returns. */
static int options_pg_target(const struct options *o, char *buf, size_t len,
			     int *unix_socket)
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
static int options_check_conninfo_socket(const struct options *o, char *err,
					 size_t errlen)
{
	struct sockaddr_un sun;
	char path[OPTIONS_CONNINFO_MAX + 16];
	int unix_socket;
	int n = options_pg_target(o, path, sizeof(path), &unix_socket);

	if (unix_socket && n >= (int)sizeof(sun.sun_path)) {
		options_err(err, errlen, "--pg-conninfo: the socket path %s is longer than %zu bytes",
			    path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	return 0;
}

int options_validate(struct options *o, char *err, size_t errlen)
{
	if (!o->patroni_host) {
		options_err(err, errlen,
			    "-h/--patroni-host is required (host of the Patroni REST API)");
		return -1;
	}
	if (!o->pg_port) {
		options_err(err, errlen,
			    "-r/--pg-is-ready-port is required (port of the local PgBouncer)");
		return -1;
	}
	if (o->stale_after_ms &&
	    o->stale_after_ms <= o->interval_ms + o->timeout_ms) {
		options_err(err, errlen,
			    "--stale-after: %dms must exceed --interval + --timeout (%dms)",
			    o->stale_after_ms, o->interval_ms + o->timeout_ms);
		return -1;
	}
	if (options_build_profiles(o, err, errlen) != 0)
		return -1;
	if (options_check_conninfo_socket(o, err, errlen) != 0)
		return -1;
	if (o->http_listen && o->http_port == o->port) {
		int same = !o->listen.count;

		for (int i = 0; i < o->listen.count; i++)
			same |= strcmp(o->listen.items[i], o->http_addr) == 0;
		if (same) {
			options_err(err, errlen,
				    "--http-listen: %s uses the agent port %d",
				    o->http_listen, o->port);
			return -1;
		}
	}
	return 0;
}

/* One command-line option, kept until the other sources are applied. */
struct options_arg {
	const struct options_def *def;
	const char *value;
};

enum options_result options_load(struct options *o, int argc, char **argv,
				 FILE *out, char *err, size_t errlen)
{
	struct option longopts[OPTIONS_COUNT + 3];
	char shortopts[2 * OPTIONS_COUNT + 8];
	struct options_arg *args;
	size_t nmax;
	struct options scratch;
	char **av;
	size_t ns = 0;
	int c, idx, nargs = 0;
	enum options_result r = OPTIONS_ERROR;
	const char *config = getenv("HAPPAC_CONFIG");

	/* ':' first: report a missing value as ':' instead of printing. */
	shortopts[ns++] = ':';
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];
		longopts[i].name = d->name;
		longopts[i].has_arg = d->kind == OPTIONS_KIND_FLAG ? no_argument
								   : required_argument;
		longopts[i].flag = NULL;
		longopts[i].val = d->short_name ? d->short_name : 1000 + (int)i;
		if (d->short_name) {
			shortopts[ns++] = (char)d->short_name;
			if (d->kind != OPTIONS_KIND_FLAG)
				shortopts[ns++] = ':';
		}
	}
	longopts[OPTIONS_COUNT] = (struct option){ "help", no_argument, NULL, 2000 };
	longopts[OPTIONS_COUNT + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[OPTIONS_COUNT + 2] = (struct option){ NULL, 0, NULL, 0 };
	shortopts[ns++] = 'V';
	shortopts[ns] = '\0';

	memset(o, 0, sizeof(*o));
	memset(&scratch, 0, sizeof(scratch));
	/* getopt permutes its argv: work on a copy so that a reload sees the
	 * command line exactly as it was given. */
	/* Bundled short options (-vvv) give more options than argv entries:
	 * at most one per character. */
	nmax = 1;
	for (int i = 0; i < argc; i++)
		nmax += strlen(argv[i]) + 1;
	args = calloc(nmax, sizeof(*args));
	av = calloc((size_t)argc + 1, sizeof(*av));
	if (!args || !av) {
		options_err(err, errlen, "out of memory");
		goto out;
	}
	memcpy(av, argv, (size_t)argc * sizeof(*av));
	optind = 0; /* full re-initialisation (glibc), so a reload can parse again */
	opterr = 0;
	while ((c = getopt_long(argc, av, shortopts, longopts, &idx)) != -1) {
		const struct options_def *d = NULL;

		if (c == 2000) {
			options_usage(out);
			r = OPTIONS_EXIT_HELP;
			goto out;
		}
		if (c == 'V') {
			r = OPTIONS_EXIT_VERSION;
			goto out;
		}
		if (c == '?') {
			if (optopt && optopt < 256)
				options_err(err, errlen, "unknown option '-%c' (see --help)", optopt);
			else
				options_err(err, errlen, "unknown option '%s' (see --help)",
					    av[optind - 1]);
			goto out;
		}
		if (c == ':') {
			options_err(err, errlen, "option '%s' needs a value", av[optind - 1]);
			goto out;
		}
		for (size_t i = 0; i < OPTIONS_COUNT; i++)
			if ((options_table[i].short_name && options_table[i].short_name == c) ||
			    c == 1000 + (int)i)
				d = &options_table[i];
		if (!d) {
			options_err(err, errlen, "internal error: option code %d", c);
			goto out;
		}
		args[nargs].def = d;
		args[nargs].value = d->kind == OPTIONS_KIND_FLAG ? NULL : optarg;
		/* Check the value now, so errors come in command-line order;
		 * it is applied for real after the file and the environment. */
		if (options_apply(&scratch, d, args[nargs].value, err, errlen) != 0)
			goto out;
		nargs++;
		if (d->offset == OFF(config_path))
			config = optarg;
	}
	if (optind < argc) {
		options_err(err, errlen, "unexpected argument '%s' (see --help)",
			    av[optind]);
		goto out;
	}

	options_init(o);
	if (config && *config && options_load_file(o, config, err, errlen) != 0)
		goto out;
	if (options_load_env(o, err, errlen) != 0)
		goto out;
	o->layer = OPTIONS_LAYER_CLI;
	for (int i = 0; i < nargs; i++)
		if (options_apply(o, args[i].def, args[i].value, err, errlen) != 0)
			goto out;
	if (config && !o->config_path)
		o->config_path = strdup(config);
	if (options_validate(o, err, errlen) != 0)
		goto out;
	r = OPTIONS_OK;
out:
	if (r != OPTIONS_OK)
		options_free(o);
	options_free(&scratch);
	free(args);
	free(av);
	return r;
}

void options_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac -h HOST -r PORT [OPTION]...\n"
		"       happac check [--host H] [--port P] [--timeout T]\n"
		"HAProxy agent-check for Patroni + PgBouncer nodes: answers 'up' when this\n"
		"node is what the Patroni endpoint asks for AND its PgBouncer answers,\n"
		"'down #reason' otherwise.\n\nOptions:\n");
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];
		char left[64];

		if (d->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", d->short_name,
				 d->name, d->arg ? "=" : "", d->arg ? d->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", d->name,
				 d->arg ? "=" : "", d->arg ? d->arg : "");
		fprintf(out, "  %-34s %s", left, d->help);
		if (d->def && *d->def)
			fprintf(out, ". Default: %s", d->def);
		if (d->kind == OPTIONS_KIND_DURATION)
			fprintf(out, " (%ldms-%ldms)", d->min, d->max);
		fputc('\n', out);
	}
	fprintf(out,
		"      %-32s %s\n      %-32s %s\n\n",
		"--help", "Print this help and exit",
		"-V, --version", "Print the versions of happac and its libraries");
	fprintf(out,
		"Every option can also be set as HAPPAC_<OPTION> in the environment\n"
		"(e.g. HAPPAC_PATRONI_HOST) or as 'option = value' in the config file;\n"
		"the command line wins over the environment, which wins over the file.\n"
		"Durations: 800ms, 1s, 1.5s, 2m; a bare number is milliseconds.\n"
		"Replies: 'up', or 'down #reason' (see the README and happac(8)).\n"
		"Exit status: 0 after SIGTERM/SIGINT or --help, 1 on a runtime failure\n"
		"(e.g. the port is taken), 2 on a bad command line.\n");
}

void options_describe(const struct options *o, char *buf, size_t len)
{
	char listen[OPTIONS_MAX_LIST * 48] = "";
	char pg[OPTIONS_CONNINFO_MAX + 16];
	size_t used = 0;
	int unix_socket;

	/* Where the probe really goes: a conninfo's host and port win. */
	options_pg_target(o, pg, sizeof(pg), &unix_socket);
	for (int i = 0; i < o->listen.count && used < sizeof(listen); i++) {
		int n = snprintf(listen + used, sizeof(listen) - used, "%s%s",
				 i ? "," : "", o->listen.items[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	snprintf(buf, len,
		 "patroni=%s://%s:%d/%s pgbouncer=%s listen=%s port=%d http=%s "
		 "interval=%dms timeout=%dms stale-after=%dms%s%s%s%s",
		 o->patroni_scheme, o->patroni_host, o->patroni_port, o->patroni_endpoint,
		 pg, o->listen.count ? listen : "*",
		 o->port, o->http_listen ? o->http_listen : "off", o->interval_ms,
		 o->timeout_ms, options_stale_after_ms(o),
		 o->config_path ? " config=" : "", o->config_path ? o->config_path : "",
		 o->pg_conninfo ? " pgbouncer-check=query" : " pgbouncer-check=ping",
		 o->allow.count ? " allow-list=on" : "");
}

/* The conninfo as keyword=value pairs, every secret left out (libpq's "*"
 * flag, lib_pq_secret()): for --check-config and /status, which must never
 * show one. Only libpq's parser can split a conninfo (a URI included), and a
 * conninfo is only ever set after that parser accepted it, so libpq is
 * loaded here; should it not be, nothing at all is shown. */
static void options_conninfo_redacted(const char *conninfo, char *buf, size_t len)
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

static void options_render(const struct options *o, const struct options_def *d,
			   char *buf, size_t len)
{
	const char *field = (const char *)o + d->offset;
	const char *const *str = (const char *const *)(const void *)field;
	const int *num = (const int *)(const void *)field;

	buf[0] = '\0';
	switch (d->kind) {
	case OPTIONS_KIND_HOST:
	case OPTIONS_KIND_ENDPOINT:
	case OPTIONS_KIND_PATH:
	case OPTIONS_KIND_HOSTPORT:
	case OPTIONS_KIND_SCHEME:
	case OPTIONS_KIND_FILE:
		snprintf(buf, len, "%s", *str ? *str : "");
		break;
	case OPTIONS_KIND_CONNINFO:
		options_conninfo_redacted(*str, buf, len);
		break;
	case OPTIONS_KIND_PORT:
		if (*num)
			snprintf(buf, len, "%d", *num);
		break;
	case OPTIONS_KIND_DURATION:
		if (d->offset == OFF(stale_after_ms))
			snprintf(buf, len, "%dms", options_stale_after_ms(o));
		else
			snprintf(buf, len, "%dms", *num);
		break;
	case OPTIONS_KIND_FLAG:
		snprintf(buf, len, "%s", *num ? "true" : "false");
		break;
	case OPTIONS_KIND_ADDRESS:
	case OPTIONS_KIND_CIDR:
	case OPTIONS_KIND_PROFILE:
		break; /* repeatable: rendered by the caller, one per value */
	case OPTIONS_KIND_COUNT:
		snprintf(buf, len, "%d", *num);
		break;
	}
}

void options_each(const struct options *o,
		  void (*fn)(void *arg, const char *name, const char *value),
		  void *arg)
{
	char value[4 * OPTIONS_CONNINFO_MAX];

	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];

		if (d->where == OPTIONS_CLI_ONLY)
			continue;
		if (d->kind == OPTIONS_KIND_ADDRESS || d->kind == OPTIONS_KIND_CIDR ||
		    d->kind == OPTIONS_KIND_PROFILE) {
			const struct options_list *l = (const struct options_list *)(const void *)
				((const char *)o + d->offset);

			for (int j = 0; j < l->count; j++)
				fn(arg, d->name, l->items[j]);
			if (l->count == 0)
				fn(arg, d->name, NULL); /* an empty list */
			continue;
		}
		options_render(o, d, value, sizeof(value));
		fn(arg, d->name, value);
	}
}

static void options_dump_one(void *arg, const char *name, const char *value)
{
	FILE *out = arg;

	if (!value) {
		fprintf(out, "# %s: none\n", name); /* an empty list */
		return;
	}
	/* The file's own name cannot be set in it. */
	if (!strcmp(name, "config")) {
		if (*value)
			fprintf(out, "# config = %s\n", value);
		return;
	}
	/* Quoted when the reader would otherwise lose something: it trims
	 * spaces, stops at '#'/';' comments only at line start but strips one
	 * pair of quotes, and an empty value must stay a value. Values never
	 * hold control characters (refused when set). */
	if (!*value || strchr(value, ' ') || strchr(value, '#') || strchr(value, ';') ||
	    value[0] == '"' || value[strlen(value) - 1] == '"')
		fprintf(out, "%s = \"%s\"\n", name, value);
	else
		fprintf(out, "%s = %s\n", name, value);
}

void options_dump(const struct options *o, FILE *out)
{
	fprintf(out, "[happac]\n");
	options_each(o, options_dump_one, out);
	for (int i = 0; i < o->profile_def_count; i++) {
		const struct profile *p = &o->profile_defs[i];

		fprintf(out, "\n[profile %s]\nrule = %s\nwrong-role = %s\n", p->name,
			profile_rule_names[p->rule], profile_wrong_names[p->wrong]);
		if (p->lag_cut)
			fprintf(out, "lag-full = %lld\nlag-cut = %lld\n",
				(long long)p->lag_full, (long long)p->lag_cut);
		if (p->port)
			fprintf(out, "port = %d\n", p->port);
	}
	/* What the agent will listen on, as the settings above combine. */
	fprintf(out, "\n# agent ports, on %s:\n", o->listen.count ? "each listen address"
								 : "all addresses");
	fprintf(out, "#   %d answers %s\n", o->port, o->profiles[0].name);
	for (int i = 0; i < o->profile_count; i++)
		if (o->profiles[i].port)
			fprintf(out, "#   %d answers %s\n", o->profiles[i].port,
				o->profiles[i].name);
	if (o->profile_count > 1)
		fprintf(out, "#   (each one answers instead the profile an agent-send line "
			     "names)\n");
}

int options_is_list(const char *name)
{
	const struct options_def *d = options_find(name);

	return d && (d->kind == OPTIONS_KIND_ADDRESS || d->kind == OPTIONS_KIND_CIDR ||
		     d->kind == OPTIONS_KIND_PROFILE);
}
