/* options.c - the option table, and applying one value to the settings. */
#include "options_int.h"

#include "acl.h"
#include "profile_config.h"
#include "util.h"

#include <unistd.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

const struct options_def options_table[OPTIONS_COUNT] = {
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
	  "SELECT pg_is_in_recovery(), and on a replica its lag and "
	  "pg_stat_wal_receiver (default: ping only); host and port "
	  "default to -h and -r (host=/DIR: a Unix socket there); keep passwords "
	  "in a passfile (secrets here are warned about, never shown)",
	  OPTIONS_ANYWHERE },
	{ "pgbouncer-admin-conninfo", 0, OPTIONS_KIND_CONNINFO, "CONNINFO", NULL, 0, 0,
	  OFF(pgb_admin_conninfo), "Also log in to PgBouncer's admin console "
	  "(dbname is always pgbouncer; host and port default to -h and -r) and "
	  "read SHOW STATE / SHOW DATABASES each round: PAUSE or SUSPEND keeps "
	  "the line, DISABLE says down, a shutdown (SIGTERM, 1.23+) up drain",
	  OPTIONS_ANYWHERE },
	{ "pgbouncer-socket-dir", 0, OPTIONS_KIND_DIR, "DIR", NULL, 0, 0,
	  OFF(pgb_socket_dirs), "Several PgBouncers on one port (so_reuseport): "
	  "probe each through its own unix_socket_dir instead of -h:-r; the "
	  "worst one decides and is named; repeatable", OPTIONS_ANYWHERE },
	{ "pause-grace", 0, OPTIONS_KIND_DURATION, "DURATION", "60s", 0, 86400000,
	  OFF(pause_grace_ms), "With --pgbouncer-admin-conninfo: a PgBouncer pause "
	  "longer than this says 'up drain'", OPTIONS_ANYWHERE },
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
	  "Serve Patroni's health paths (/primary, /replica, /health, ...: from "
	  "the cache, PgBouncer included), /health?profile=NAME (a profile's "
	  "line), /status and /metrics over HTTP here (default: off)",
	  OPTIONS_ANYWHERE },
	{ "interval", 0, OPTIONS_KIND_DURATION, "DURATION", "1s", 100, 60000,
	  OFF(interval_ms), "Time between probe rounds (half of it while up for the primary, "
	  "and on Patroni before 3.0.4 for every agent serving it)",
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
	{ "peer-agent-port", 0, OPTIONS_KIND_PORT, "PORT", NULL, 0, 0, OFF(peer_agent_port),
	  "The agent port of the other members' happac, asked to end a new "
	  "primary's hold early (default: --port)",
	  OPTIONS_ANYWHERE },
	{ "stale-after", 0, OPTIONS_KIND_DURATION, "DURATION", NULL, 500, 600000,
	  OFF(stale_after_ms),
	  "Answer 'down #stale' when no probe round ended for this long "
	  "(default: 3 x (interval + timeout), at least 5s)",
	  OPTIONS_ANYWHERE },
	{ "profile", 0, OPTIONS_KIND_PROFILE, "NAME[:PORT]", NULL, 0, 0,
	  OFF(profile_use),
	  "Also serve profile NAME (primary, replica, read-only, sync, async, "
	  "standby-leader, quorum, read-only-quorum, leader, read-only-sync, health, "
	  "liveness, readiness, or a [profile NAME] of the config file), on its own "
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

_Static_assert(sizeof(options_table) / sizeof(options_table[0]) == OPTIONS_COUNT,
	       "OPTIONS_COUNT is the number of options");

void options_err(char *err, size_t errlen, const char *fmt, ...)
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
const char *options_label(const struct options_def *d)
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
	char *copy = malloc(n + 1);

	if (copy && util_unbracket(s, n, copy, n + 1) < 0) {
		free(copy);
		return NULL;
	}
	return copy;
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
	const char *given = value, *portstr;
	char addr[64];
	int port, bracketed;

	if (*value == '\0') {
		free(o->http_listen);
		free(o->http_addr);
		o->http_listen = o->http_addr = NULL;
		o->http_port = 0;
		return 0;
	}
	portstr = util_split_hostport(value, addr, sizeof(addr), &bracketed);
	if (!portstr || options_parse_port(portstr, &port) != 0 || !*addr)
		goto bad;
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

int options_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s == 0x7f)
			return 1;
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
	if (!profile_config_name_valid(value, n)) {
		options_err(err, errlen, "%s: bad profile name in '%s'", options_label(d), value);
		return -1;
	}
	if (colon && options_parse_port(colon + 1, &port) != 0) {
		options_err(err, errlen, "%s: invalid port in '%s' (expected 1-65535)",
			    options_label(d), value);
		return -1;
	}
	return options_list_add(o, &o->profile_use, d, strdup(value), err, errlen);
}

const struct options_def *options_find(const char *name)
{
	for (size_t i = 0; i < OPTIONS_COUNT; i++)
		if (strcmp(options_table[i].name, name) == 0)
			return &options_table[i];
	return NULL;
}

/* Each kind of value is checked and stored by one function of this shape:
 * field is the option's place in struct options. */
typedef int options_applier(struct options *o, const struct options_def *d, char *field,
			    const char *value, char *err, size_t errlen);

static void options_set_str(char *field, char *copy)
{
	char **str = (char **)(void *)field;

	free(*str);
	*str = copy;
}

static int options_apply_host(struct options *o, const struct options_def *d, char *field,
			      const char *value, char *err, size_t errlen)
{
	char *copy = options_unbracket(value);

	if (!copy || !options_valid_host(copy)) {
		free(copy);
		options_err(err, errlen, "%s: invalid host '%s'", options_label(d), value);
		return -1;
	}
	options_set_str(field, copy);
	return 0;
}

static int options_apply_endpoint(struct options *o, const struct options_def *d,
				  char *field, const char *value, char *err, size_t errlen)
{
	while (*value == '/')
		value++;
	if (!options_valid_endpoint(value)) {
		options_err(err, errlen,
			    "%s: invalid endpoint '%s' (no spaces, '#' or control characters, at most 200 bytes)",
			    options_label(d), value);
		return -1;
	}
	options_set_str(field, strdup(value));
	return 0;
}

static int options_apply_port(struct options *o, const struct options_def *d, char *field,
			      const char *value, char *err, size_t errlen)
{
	if (options_parse_port(value, (int *)(void *)field) != 0) {
		options_err(err, errlen, "%s: invalid port '%s' (expected 1-65535)",
			    options_label(d), value);
		return -1;
	}
	return 0;
}

static int options_apply_duration(struct options *o, const struct options_def *d,
				  char *field, const char *value, char *err, size_t errlen)
{
	long ms;

	if (options_parse_duration(value, &ms) != 0) {
		options_err(err, errlen,
			    "%s: invalid duration '%s' (expected e.g. 800ms, 1s, 1.5s)",
			    options_label(d), value);
		return -1;
	}
	if (ms < d->min || ms > d->max) {
		options_err(err, errlen, "%s: '%s' is out of range (%ldms-%ldms)",
			    options_label(d), value, d->min, d->max);
		return -1;
	}
	*(int *)(void *)field = (int)ms;
	return 0;
}

static int options_apply_path(struct options *o, const struct options_def *d, char *field,
			      const char *value, char *err, size_t errlen)
{
	if (options_has_control(value)) {
		options_err(err, errlen, "%s: control character in '%s'", options_label(d),
			    value);
		return -1;
	}
	if (d->offset == OFF(pg_isready_path)) {
		options_set_str(field, strdup(value));
		o->pg_isready_path_given = 1;
	} else {
		/* "" switches a path option off (file, environment) */
		options_set_str(field, *value ? strdup(value) : NULL);
	}
	return 0;
}

static int options_apply_count(struct options *o, const struct options_def *d, char *field,
			       const char *value, char *err, size_t errlen)
{
	long v = 0;
	const char *q = value;

	while (isdigit((unsigned char)*q) && v <= d->max)
		v = v * 10 + (*q++ - '0');
	if (q == value || *q || v < d->min || v > d->max) {
		options_err(err, errlen, "%s: '%s' is not a number in %ld-%ld",
			    options_label(d), value, d->min, d->max);
		return -1;
	}
	*(int *)(void *)field = (int)v;
	return 0;
}

static int options_apply_address(struct options *o, const struct options_def *d,
				 char *field, const char *value, char *err, size_t errlen)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char *copy = options_unbracket(value);

	if (!copy || (inet_pton(AF_INET, copy, buf) != 1 &&
		      inet_pton(AF_INET6, copy, buf) != 1)) {
		free(copy);
		options_err(err, errlen, "%s: '%s' is not an IPv4 or IPv6 address",
			    options_label(d), value);
		return -1;
	}
	return options_list_add(o, (struct options_list *)(void *)field, d, copy, err,
				errlen);
}

/* --pgbouncer-socket-dir: it must be there now (the socket in it is
 * checked once -r is known, when the probes are set up). */
static int options_apply_dir(struct options *o, const struct options_def *d, char *field,
			     const char *value, char *err, size_t errlen)
{
	struct stat st;
	const char *why = NULL;

	if (value[0] != '/')
		why = "not an absolute path";
	else if (stat(value, &st) != 0)
		why = strerror(errno);
	else if (!S_ISDIR(st.st_mode))
		why = "not a directory";
	if (why) {
		options_err(err, errlen, "%s: '%s': %s", options_label(d), value, why);
		return -1;
	}
	return options_list_add(o, (struct options_list *)(void *)field, d, strdup(value), err,
				errlen);
}

static int options_apply_cidr(struct options *o, const struct options_def *d, char *field,
			      const char *value, char *err, size_t errlen)
{
	struct acl_entry e;
	char msg[128];

	if (acl_parse(value, &e, msg, sizeof(msg)) != 0) {
		options_err(err, errlen, "%s: %s", options_label(d), msg);
		return -1;
	}
	return options_list_add(o, (struct options_list *)(void *)field, d, strdup(value),
				err, errlen);
}

static int options_apply_scheme(struct options *o, const struct options_def *d,
				char *field, const char *value, char *err, size_t errlen)
{
	if (strcmp(value, "http") && strcmp(value, "https")) {
		options_err(err, errlen, "%s: '%s' is not http or https", options_label(d),
			    value);
		return -1;
	}
	options_set_str(field, strdup(value));
	return 0;
}

static int options_apply_file(struct options *o, const struct options_def *d, char *field,
			      const char *value, char *err, size_t errlen)
{
	if (*value && access(value, R_OK) != 0) {
		options_err(err, errlen, "%s: cannot read '%s': %s", options_label(d), value,
			    strerror(errno));
		return -1;
	}
	options_set_str(field, *value ? strdup(value) : NULL);
	return 0;
}

static int options_apply_flag(struct options *o, const struct options_def *d, char *field,
			      const char *value, char *err, size_t errlen)
{
	int *num = (int *)(void *)field;

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

static int options_apply_whole(struct options *o, const struct options_def *d,
			       char *field, const char *value, char *err, size_t errlen)
{
	if (d->kind == OPTIONS_KIND_CONNINFO)
		return options_conninfo_apply(o, d, value, err, errlen);
	if (d->kind == OPTIONS_KIND_HOSTPORT)
		return options_apply_hostport(o, d, value, err, errlen);
	return options_apply_profile_use(o, d, value, err, errlen);
}

static options_applier *const options_appliers[] = {
	[OPTIONS_KIND_HOST] = options_apply_host,
	[OPTIONS_KIND_ENDPOINT] = options_apply_endpoint,
	[OPTIONS_KIND_PORT] = options_apply_port,
	[OPTIONS_KIND_DURATION] = options_apply_duration,
	[OPTIONS_KIND_PATH] = options_apply_path,
	[OPTIONS_KIND_ADDRESS] = options_apply_address,
	[OPTIONS_KIND_CIDR] = options_apply_cidr,
	[OPTIONS_KIND_SCHEME] = options_apply_scheme,
	[OPTIONS_KIND_FILE] = options_apply_file,
	[OPTIONS_KIND_CONNINFO] = options_apply_whole,
	[OPTIONS_KIND_HOSTPORT] = options_apply_whole,
	[OPTIONS_KIND_FLAG] = options_apply_flag,
	[OPTIONS_KIND_PROFILE] = options_apply_whole,
	[OPTIONS_KIND_COUNT] = options_apply_count,
	[OPTIONS_KIND_DIR] = options_apply_dir,
};

int options_kind_is_list(enum options_kind k)
{
	return k == OPTIONS_KIND_ADDRESS || k == OPTIONS_KIND_CIDR || k == OPTIONS_KIND_PROFILE ||
	       k == OPTIONS_KIND_DIR;
}

int options_kind_is_string(enum options_kind k)
{
	return k == OPTIONS_KIND_HOST || k == OPTIONS_KIND_ENDPOINT || k == OPTIONS_KIND_PATH ||
	       k == OPTIONS_KIND_SCHEME || k == OPTIONS_KIND_FILE ||
	       k == OPTIONS_KIND_CONNINFO || k == OPTIONS_KIND_HOSTPORT;
}

int options_apply(struct options *o, const struct options_def *d, const char *value,
		  char *err, size_t errlen)
{
	if ((size_t)d->kind >= sizeof(options_appliers) / sizeof(options_appliers[0]) ||
	    !options_appliers[d->kind]) {
		options_err(err, errlen, "internal error: option kind %d", (int)d->kind);
		return -1;
	}
	return options_appliers[d->kind](o, d, (char *)o + d->offset, value, err, errlen);
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
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		char *field = (char *)o + options_table[i].offset;

		if (options_kind_is_list(options_table[i].kind))
			options_list_free((struct options_list *)(void *)field);
		else if (options_kind_is_string(options_table[i].kind))
			free(*(char **)(void *)field);
	}
	free(o->http_addr); /* derived from http-listen */
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

/* The effective profiles (profile_config.c), and the one cross-check that
 * needs the other settings: lag weights read the lag through the query. */
static int options_profiles(struct options *o, char *err, size_t errlen)
{
	struct profile_config_sources src = {
		.endpoint = o->patroni_endpoint,
		.uses = o->profile_use.items,
		.nuses = o->profile_use.count,
		.defs = o->profile_defs,
		.ndefs = o->profile_def_count,
		.agent_port = o->port,
		.http_port = o->http_port,
	};
	char msg[512];
	int n = profile_config_assemble(&src, o->profiles, msg, sizeof(msg)), any_lag = 0;

	o->profile_count = n < 0 ? 0 : n;
	if (n < 0) {
		options_err(err, errlen, "%s", msg);
		return -1;
	}
	for (int i = 0; i < n; i++)
		any_lag |= o->profiles[i].lag_cut > 0 || o->profiles[i].lag_cut_ms > 0;
	if (any_lag && !o->pg_conninfo) {
		options_err(err, errlen,
			    "lag weights need --pg-conninfo (the lag is read through PgBouncer)");
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
	if (options_profiles(o, err, errlen) != 0)
		return -1;
	if (options_conninfo_check_socket(o, err, errlen) != 0)
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

