/* options.c - the option table and everything derived from it. */
#include "options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum options_kind {
	OPTIONS_KIND_HOST,     /* non-empty host name or address */
	OPTIONS_KIND_ENDPOINT, /* Patroni path, with optional query */
	OPTIONS_KIND_PORT,     /* 1..65535 */
	OPTIONS_KIND_DURATION, /* milliseconds, bounded */
	OPTIONS_KIND_PATH,     /* any string, empty allowed */
	OPTIONS_KIND_ADDRESS,  /* literal IPv4/IPv6 address, repeatable */
	OPTIONS_KIND_FLAG,     /* no value */
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
};

#define OFF(field) offsetof(struct options, field)

static const struct options_def options_table[] = {
	{ "patroni-host", 'h', OPTIONS_KIND_HOST, "HOST", NULL, 0, 0,
	  OFF(patroni_host),
	  "Host of the Patroni REST API and of PgBouncer (required)" },
	{ "patroni-healthcheck", 'k', OPTIONS_KIND_ENDPOINT, "ENDPOINT", "primary",
	  0, 0, OFF(patroni_endpoint),
	  "Patroni health endpoint that must answer 200" },
	{ "patroni-port", 'o', OPTIONS_KIND_PORT, "PORT", "8008", 0, 0,
	  OFF(patroni_port), "Port of the Patroni REST API" },
	{ "port", 'p', OPTIONS_KIND_PORT, "PORT", "5555", 0, 0, OFF(port),
	  "Port this agent listens on for HAProxy agent checks" },
	{ "pg-is-ready-port", 'r', OPTIONS_KIND_PORT, "PORT", NULL, 0, 0,
	  OFF(pg_port), "Port of the local PgBouncer to probe (required)" },
	{ "pg-is-ready-path", 'x', OPTIONS_KIND_PATH, "PATH", "", 0, 0,
	  OFF(pg_isready_path),
	  "Accepted for compatibility and ignored: happac never runs pg_isready" },
	{ "listen", 0, OPTIONS_KIND_ADDRESS, "ADDR", NULL, 0, 0, OFF(listen),
	  "Address to listen on, IPv4 or IPv6, repeatable (default: all)" },
	{ "interval", 0, OPTIONS_KIND_DURATION, "DURATION", "1s", 100, 60000,
	  OFF(interval_ms), "Time between probe rounds" },
	{ "timeout", 0, OPTIONS_KIND_DURATION, "DURATION", "800ms", 10, 30000,
	  OFF(timeout_ms), "Hard deadline of each probe" },
	{ "stale-after", 0, OPTIONS_KIND_DURATION, "DURATION", NULL, 500, 600000,
	  OFF(stale_after_ms),
	  "Answer 'down #stale' when no probe round ended for this long "
	  "(default: 3 x (interval + timeout), at least 5s)" },
	{ "verbose", 'v', OPTIONS_KIND_FLAG, NULL, NULL, 0, 0, OFF(verbose),
	  "Log every agent connection and probe (debug)" },
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

static int options_parse_port(const char *s, int *port)
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
		free(*str);
		*str = strdup(value);
		if (d->offset == OFF(pg_isready_path))
			o->pg_isready_path_given = 1;
		return 0;
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
		if (o->listen_count >= OPTIONS_MAX_LISTEN) {
			free(copy);
			options_err(err, errlen, "%s: more than %d addresses",
				    options_label(d), OPTIONS_MAX_LISTEN);
			return -1;
		}
		o->listen[o->listen_count++] = copy;
		return 0;
	}
	case OPTIONS_KIND_FLAG:
		*num = 1;
		return 0;
	}
	options_err(err, errlen, "internal error: option kind %d", (int)d->kind);
	return -1;
}

void options_init(struct options *o)
{
	char err[256];

	memset(o, 0, sizeof(*o));
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
	free(o->patroni_host);
	free(o->patroni_endpoint);
	free(o->pg_isready_path);
	for (int i = 0; i < o->listen_count; i++)
		free(o->listen[i]);
	memset(o, 0, sizeof(*o));
}

int options_set(struct options *o, const char *name, const char *value,
		char *err, size_t errlen)
{
	const struct options_def *d = options_find(name);

	if (!d) {
		options_err(err, errlen, "unknown option '%s'", name);
		return -1;
	}
	return options_apply(o, d, value, err, errlen);
}

int options_stale_after_ms(const struct options *o)
{
	int derived;

	if (o->stale_after_ms)
		return o->stale_after_ms;
	derived = 3 * (o->interval_ms + o->timeout_ms);
	return derived < 5000 ? 5000 : derived;
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
	return 0;
}

enum options_result options_parse_argv(struct options *o, int argc, char **argv,
				       FILE *out, char *err, size_t errlen)
{
	struct option longopts[OPTIONS_COUNT + 3];
	char shortopts[2 * OPTIONS_COUNT + 8];
	size_t ns = 0;
	int c, idx;

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

	optind = 0; /* full re-initialisation (glibc), so tests can parse twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, &idx)) != -1) {
		const struct options_def *d = NULL;

		if (c == 2000) {
			options_usage(out);
			return OPTIONS_EXIT_HELP;
		}
		if (c == 'V')
			return OPTIONS_EXIT_VERSION;
		if (c == '?') {
			if (optopt && optopt < 256)
				options_err(err, errlen, "unknown option '-%c' (see --help)", optopt);
			else
				options_err(err, errlen, "unknown option '%s' (see --help)",
					    argv[optind - 1]);
			return OPTIONS_ERROR;
		}
		if (c == ':') {
			options_err(err, errlen, "option '%s' needs a value",
				    argv[optind - 1]);
			return OPTIONS_ERROR;
		}
		for (size_t i = 0; i < OPTIONS_COUNT; i++)
			if ((options_table[i].short_name && options_table[i].short_name == c) ||
			    c == 1000 + (int)i)
				d = &options_table[i];
		if (!d) {
			options_err(err, errlen, "internal error: option code %d", c);
			return OPTIONS_ERROR;
		}
		if (options_apply(o, d, optarg ? optarg : "", err, errlen) != 0)
			return OPTIONS_ERROR;
	}
	if (optind < argc) {
		options_err(err, errlen, "unexpected argument '%s' (see --help)",
			    argv[optind]);
		return OPTIONS_ERROR;
	}
	if (options_validate(o, err, errlen) != 0)
		return OPTIONS_ERROR;
	return OPTIONS_OK;
}

void options_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac -h HOST -r PORT [OPTION]...\n"
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
		"Durations: 800ms, 1s, 1.5s, 2m; a bare number is milliseconds.\n"
		"Replies: 'up', or 'down #reason' (see the README and happac(8)).\n"
		"Exit status: 0 after SIGTERM/SIGINT or --help, 1 on a runtime failure\n"
		"(e.g. the port is taken), 2 on a bad command line.\n");
}

void options_describe(const struct options *o, char *buf, size_t len)
{
	char listen[OPTIONS_MAX_LISTEN * 48] = "";
	size_t used = 0;

	for (int i = 0; i < o->listen_count && used < sizeof(listen); i++) {
		int n = snprintf(listen + used, sizeof(listen) - used, "%s%s",
				 i ? "," : "", o->listen[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	snprintf(buf, len,
		 "patroni=%s:%d/%s pgbouncer=%s:%d listen=%s port=%d interval=%dms "
		 "timeout=%dms stale-after=%dms",
		 o->patroni_host, o->patroni_port, o->patroni_endpoint,
		 o->patroni_host, o->pg_port, o->listen_count ? listen : "*",
		 o->port, o->interval_ms, o->timeout_ms, options_stale_after_ms(o));
}
