/* options.h - the option table: command line, environment, config file,
 * --help and --check-config.
 *
 * One table (options.c) holds every option's names, bounds, default and help
 * text. The command line, HAPPAC_<OPTION> environment variables, the config
 * file, --help and the effective-settings dump are all derived from it so
 * that they never disagree. Precedence: command line > environment > file >
 * defaults. The functions below live in options.c (table, apply, validate),
 * options_load.c (the sources), options_conninfo.c and options_print.c. */
#ifndef HAPPAC_OPTIONS_H
#define HAPPAC_OPTIONS_H

#include "profile.h"

#include <stddef.h>
#include <stdio.h>

#define OPTIONS_MAX_LIST 32

/* A repeatable option's values. A source (file, environment, command line)
 * that sets it replaces the list it inherited from the sources before. */
struct options_list {
	char *items[OPTIONS_MAX_LIST];
	int count;
	int layer;              /* which source set the list */
};

struct options {
	char *config_path;      /* -c, or HAPPAC_CONFIG; NULL = no file */
	int check_config;       /* -t: validate, print, exit */
	char *patroni_host;     /* -h, required; IPv6 brackets stripped */
	char *patroni_endpoint; /* -k, without leading '/'; may hold "?query" */
	int patroni_port;       /* -o */
	int port;               /* -p, agent port */
	int pg_port;            /* -r, PgBouncer port */
	char *pg_isready_path;  /* -x, accepted for compatibility, unused */
	int pg_isready_path_given;
	struct options_list listen; /* --listen, literal addresses */
	struct options_list allow;  /* --allow, CIDR blocks; empty = everyone */
	char *http_listen;      /* --http-listen ADDR:PORT as given; NULL = off */
	char *http_addr;        /* its address part, brackets stripped */
	int http_port;          /* its port part */
	char *pg_conninfo;      /* --pg-conninfo: log in and query; NULL = ping */
	/* It holds a secret (lib_pq_secret(): password, sslpassword, ...),
	 * whose keywords are listed, space-separated, in pg_conninfo_secrets. */
	int pg_conninfo_has_password;
	char pg_conninfo_secrets[64];
	/* --pgbouncer-admin-conninfo: read PAUSE/DISABLE/SUSPEND from the
	 * admin console each round; NULL = off. A secret in it is warned
	 * about like one in pg_conninfo. */
	char *pgb_admin_conninfo;
	int pgb_admin_has_password;
	int pause_grace_ms;     /* --pause-grace: a pause longer -> up drain */
	/* --pgbouncer-socket-dir: one PgBouncer process per directory */
	struct options_list pgb_socket_dirs;
	char *patroni_scheme;   /* "http" or "https" */
	char *patroni_cafile;
	char *patroni_cert;
	char *patroni_key;
	int patroni_insecure;   /* skip TLS verification (loudly logged) */
	int interval_ms;
	int timeout_ms;
	int stale_after_ms;     /* 0 = derived from interval and timeout */
	int haproxy_agent_inter_ms; /* HAProxy's agent-inter: part of the hold */
	int peer_agent_port;    /* the peers' agent port; 0: port */
	int verbose;
	int run_as_root;        /* --run-as-root: allow uid 0 */
	struct options_list profile_use; /* --profile NAME[:PORT] */
	int agent_send_wait_ms; /* wait for a profile line (several profiles) */
	int ready_window_ms;    /* how long `ready` is said after drain/maint */
	int max_connections;    /* agent connections waiting at once */
	char *control_socket;   /* --control-socket; NULL = off */
	char *state_file;       /* --state-file; NULL = no persistence */
	int layer;              /* the source being applied (options_int.h) */
	int section;            /* file reading: profile section, -1 = [happac] */

	/* [profile NAME] sections of the config file */
	struct profile profile_defs[PROFILE_MAX];
	int profile_def_count;

	/* Effective profiles, built by options_validate(): [0] is the one the
	 * -k endpoint means (the agent port's), then every --profile and every
	 * section, each name once. */
	struct profile profiles[PROFILE_MAX];
	int profile_count;
};

enum options_result {
	OPTIONS_OK,           /* run the daemon */
	OPTIONS_EXIT_HELP,    /* --help was printed: exit 0 */
	OPTIONS_EXIT_VERSION, /* caller prints versions and exits 0 */
	OPTIONS_ERROR,        /* err holds one line naming the option: exit 2 */
};

/* Fill o with the defaults. Strings are owned by o: release with options_free. */
void options_init(struct options *o);
void options_free(struct options *o);

/* Build the settings from every source: defaults, the config file (-c or
 * HAPPAC_CONFIG), HAPPAC_<OPTION> variables, then argv; then validate. o is
 * (re)initialised first. On OPTIONS_ERROR, err holds one line (no newline)
 * naming the source (option, variable, or FILE:LINE) and the bad value. The
 * same call serves SIGHUP reloads: argv is only read, never changed. */
enum options_result options_load(struct options *o, int argc, char **argv,
				 FILE *out, char *err, size_t errlen);

/* Set one option by its long name (as in a config file or the environment).
 * Returns 0, or -1 with err set. */
int options_set(struct options *o, const char *name, const char *value,
		char *err, size_t errlen);

/* Apply a config file on top of o. 0, or -1 with err = "FILE:LINE: ...". */
int options_load_file(struct options *o, const char *path, char *err, size_t errlen);

/* Cross-option checks (required options, derived bounds). 0 or -1 + err. */
int options_validate(struct options *o, char *err, size_t errlen);

/* HAProxy's agent-inter that `happac recipe haproxy` writes, and the
 * default of --haproxy-agent-inter: the two must agree (tests/recipe). */
#define OPTIONS_HAPROXY_AGENT_INTER "250ms"

/* How long a profile's right role must last before it counts (profile.c's
 * hold): interval + timeout + haproxy-agent-inter, so that the old
 * primary is DOWN in HAProxy before the new one can be UP. */
int options_hold_ms(const struct options *o);

/* The stale bound in force: the explicit one, or the derived default. */
int options_stale_after_ms(const struct options *o);

/* Print the usage text with every option, its default and its range. */
void options_print_usage(FILE *out);

/* Call fn once per effective setting, value rendered as the user writes it
 * (repeatable options once per value and once with NULL when empty, unset
 * ones with ""). Secrets are never passed. Drives --check-config and
 * /status. */
void options_print_each(const struct options *o,
		  void (*fn)(void *arg, const char *name, const char *value),
		  void *arg);

/* True for a repeatable option (its values form a list). */
int options_print_is_list(const char *name);

/* "name = value" lines, loadable as a config file. */
void options_print_dump(const struct options *o, FILE *out);

/* One line with the effective settings, for the start-up log. */
void options_print_describe(const struct options *o, char *buf, size_t len);

/* Parse a TCP port, 1-65535, digits only. Returns 0 and *port, or -1.
 * Shared by the subcommands so every port is read the same way. */
int options_parse_port(const char *s, int *port);

/* Parse a duration: "800ms", "1s", "1.5s", "2m"; a bare number is ms.
 * Returns 0 and *ms, or -1. Exposed for the unit tests. */
int options_parse_duration(const char *s, long *ms);

#endif
