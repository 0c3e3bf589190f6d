/* options_load.c - the sources of the settings, in the order they apply:
 * defaults, the config file, HAPPAC_<OPTION> variables, the command line. */
#include "options_int.h"

#include "profile_config.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One "key = value" line; err gets the message without the FILE:LINE part. */
static int options_file_line(struct options *o, char *line, char *err, size_t errlen)
{
	char *key = util_trim(line), *eq, *value;
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
			char msg[512];
			int i;

			key[n - 1] = '\0';
			i = profile_config_section(o->profile_defs, &o->profile_def_count,
						   util_trim(key + 9), msg, sizeof(msg));
			if (i < 0) {
				options_err(err, errlen, "%s", msg);
				return -1;
			}
			o->section = i;
			return 0;
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
	value = util_trim(eq + 1);
	key = util_trim(key);
	vlen = strlen(value);
	/* "..." keeps spaces and allows an empty value */
	if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
		value[vlen - 1] = '\0';
		value++;
	}
	if (o->section >= 0) {
		char msg[512];

		if (profile_config_key(&o->profile_defs[o->section], key, value, msg,
				       sizeof(msg)) == 0)
			return 0;
		options_err(err, errlen, "%s", msg);
		return -1;
	}
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

/* One command-line option, kept until the other sources are applied. */
struct options_arg {
	const struct options_def *def;
	const char *value;
};

/* getopt_long()'s tables, derived from the option table; the long-only
 * options get codes 1000 + their index. */
static void options_getopt_tables(struct option *longopts, char *shortopts)
{
	size_t ns = 0;

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
}

/* The command line, read into args[] (each value checked on scratch so
 * errors come in command-line order) and *config. OPTIONS_OK when the
 * daemon is to run. av is a copy: getopt permutes it. */
static enum options_result options_parse_args(struct options *scratch, int argc, char **av,
					      struct options_arg *args, int *nargs,
					      const char **config, FILE *out, char *err,
					      size_t errlen)
{
	struct option longopts[OPTIONS_COUNT + 3];
	char shortopts[2 * OPTIONS_COUNT + 8];
	int c, idx;

	options_getopt_tables(longopts, shortopts);
	optind = 0; /* full re-initialisation (glibc), so a reload can parse again */
	opterr = 0;
	while ((c = getopt_long(argc, av, shortopts, longopts, &idx)) != -1) {
		const struct options_def *d = NULL;

		if (c == 2000) {
			options_print_usage(out);
			return OPTIONS_EXIT_HELP;
		}
		if (c == 'V')
			return OPTIONS_EXIT_VERSION;
		if (c == '?') {
			if (optopt && optopt < 256)
				options_err(err, errlen, "unknown option '-%c' (see --help)",
					    optopt);
			else
				options_err(err, errlen, "unknown option '%s' (see --help)",
					    av[optind - 1]);
			return OPTIONS_ERROR;
		}
		if (c == ':') {
			options_err(err, errlen, "option '%s' needs a value", av[optind - 1]);
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
		args[*nargs].def = d;
		args[*nargs].value = d->kind == OPTIONS_KIND_FLAG ? NULL : optarg;
		/* Check the value now; it is applied for real after the file
		 * and the environment. */
		if (options_apply(scratch, d, args[*nargs].value, err, errlen) != 0)
			return OPTIONS_ERROR;
		(*nargs)++;
		if (d->offset == OFF(config_path))
			*config = optarg;
	}
	if (optind < argc) {
		options_err(err, errlen, "unexpected argument '%s' (see --help)", av[optind]);
		return OPTIONS_ERROR;
	}
	return OPTIONS_OK;
}

/* Defaults, file, environment, then the command line's args on top. */
static int options_layers(struct options *o, const char *config,
			  const struct options_arg *args, int nargs, char *err, size_t errlen)
{
	options_init(o);
	if (config && *config && options_load_file(o, config, err, errlen) != 0)
		return -1;
	if (options_load_env(o, err, errlen) != 0)
		return -1;
	o->layer = OPTIONS_LAYER_CLI;
	for (int i = 0; i < nargs; i++)
		if (options_apply(o, args[i].def, args[i].value, err, errlen) != 0)
			return -1;
	if (config && !o->config_path)
		o->config_path = strdup(config);
	return options_validate(o, err, errlen);
}

enum options_result options_load(struct options *o, int argc, char **argv,
				 FILE *out, char *err, size_t errlen)
{
	struct options_arg *args;
	struct options scratch;
	char **av;
	size_t nmax;
	int nargs = 0;
	enum options_result r = OPTIONS_ERROR;
	const char *config = getenv("HAPPAC_CONFIG");

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
	r = options_parse_args(&scratch, argc, av, args, &nargs, &config, out, err, errlen);
	if (r == OPTIONS_OK && options_layers(o, config, args, nargs, err, errlen) != 0)
		r = OPTIONS_ERROR;
out:
	if (r != OPTIONS_OK)
		options_free(o);
	options_free(&scratch);
	free(args);
	free(av);
	return r;
}
