/* options.h - the option table: command line, --help, validation.
 *
 * One table (options.c) holds every option's names, bounds, default and help
 * text; the command line, --help and the start-up summary are all derived from
 * it so that they never disagree. */
#ifndef HAPPAC_OPTIONS_H
#define HAPPAC_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#define OPTIONS_MAX_LISTEN 16

struct options {
	char *patroni_host;     /* -h, required; IPv6 brackets stripped */
	char *patroni_endpoint; /* -k, without leading '/'; may hold "?query" */
	int patroni_port;       /* -o */
	int port;               /* -p, agent port */
	int pg_port;            /* -r, PgBouncer port */
	char *pg_isready_path;  /* -x, accepted for compatibility, unused */
	int pg_isready_path_given;
	char *listen[OPTIONS_MAX_LISTEN]; /* --listen, literal addresses */
	int listen_count;
	int interval_ms;
	int timeout_ms;
	int stale_after_ms;     /* 0 = derived from interval and timeout */
	int verbose;
};

enum options_result {
	OPTIONS_OK,          /* run the daemon */
	OPTIONS_EXIT_HELP,   /* --help was printed: exit 0 */
	OPTIONS_EXIT_VERSION,/* caller prints versions and exits 0 */
	OPTIONS_ERROR,       /* err holds one line naming the option: exit 2 */
};

/* Fill o with the defaults. Strings are owned by o: release with options_free. */
void options_init(struct options *o);
void options_free(struct options *o);

/* Parse argv on top of what o holds, then validate. On OPTIONS_ERROR, err holds
 * one line (no newline) naming the option and the bad value. --help is printed
 * to out. */
enum options_result options_parse_argv(struct options *o, int argc, char **argv,
				       FILE *out, char *err, size_t errlen);

/* Set one option by its long name (as in a config file or the environment).
 * Returns 0, or -1 with err set. */
int options_set(struct options *o, const char *name, const char *value,
		char *err, size_t errlen);

/* Cross-option checks (required options, derived bounds). 0 or -1 + err. */
int options_validate(struct options *o, char *err, size_t errlen);

/* The stale bound in force: the explicit one, or the derived default. */
int options_stale_after_ms(const struct options *o);

/* Print the usage text with every option, its default and its range. */
void options_usage(FILE *out);

/* One line with the effective settings, for the start-up log. */
void options_describe(const struct options *o, char *buf, size_t len);

/* Parse a duration: "800ms", "1s", "1.5s", "2m"; a bare number is ms.
 * Returns 0 and *ms, or -1. Exposed for the unit tests. */
int options_parse_duration(const char *s, long *ms);

#endif
