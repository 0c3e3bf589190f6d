/* options_int.h - what the options_*.c files share and nothing else
 * includes: the option table's shape, the sources' layers and the helpers
 * every source applies a value through.
 *
 *   options.c          the table, applying one value, validation
 *   options_load.c     the sources: config file, environment, command line
 *   options_conninfo.c --pg-conninfo: parsing, redacting, the probe target
 *   options_print.c    --help, --check-config's dump, the start-up line
 *
 * Profile assembly ([profile NAME], --profile) is profile_config.c's. */
#ifndef HAPPAC_OPTIONS_INT_H
#define HAPPAC_OPTIONS_INT_H

#include "options.h"

#include <stddef.h>

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
	OPTIONS_KIND_DIR,      /* an existing directory, absolute, repeatable */
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

/* The table (options.c); OPTIONS_COUNT sizes the getopt arrays. */
#define OPTIONS_COUNT 33
extern const struct options_def options_table[OPTIONS_COUNT];

/* A conninfo is a few keywords; this leaves room for many. */
#define OPTIONS_CONNINFO_MAX 1024

/* err = the formatted message, control characters replaced by '?'. */
void options_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "--name" or "-x/--name" for messages (a static buffer). */
const char *options_label(const struct options_def *d);

const struct options_def *options_find(const char *name);

/* A repeatable option (a struct options_list), a char * one (owned). */
int options_kind_is_list(enum options_kind k);
int options_kind_is_string(enum options_kind k);

/* Check value for d and store it in o (value NULL: a command-line flag). */
int options_apply(struct options *o, const struct options_def *d,
		  const char *value, char *err, size_t errlen);

/* True when s holds a control character. */
int options_has_control(const char *s);

/* options_conninfo.c */
int options_conninfo_apply(struct options *o, const struct options_def *d,
			   const char *value, char *err, size_t errlen);
void options_conninfo_redacted(const char *conninfo, char *buf, size_t len);
int options_conninfo_target(const struct options *o, char *buf, size_t len,
		      int *unix_socket);
int options_conninfo_check_socket(const struct options *o, char *err,
				  size_t errlen);

#endif
