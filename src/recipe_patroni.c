/* recipe_patroni.c - `happac recipe patroni`: the patroni.yml lines that
 * make Patroni tell happac about a role change at once (callbacks) and
 * before it stops PostgreSQL (before_stop, Patroni 3.0.3+). */
#include "ctl_request.h"
#include "recipe_util.h"

#include <getopt.h>
#include <string.h>

enum { RECIPE_PATRONI_OPT_SOCKET = 256, RECIPE_PATRONI_OPT_BIN, RECIPE_PATRONI_OPT_HELP };

static void recipe_patroni_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac recipe patroni [--socket PATH] [--bin PATH]\n"
		"Print the postgresql: lines of patroni.yml that run `happac ctl probe` on\n"
		"Patroni's on_start, on_stop and on_role_change callbacks and `happac ctl\n"
		"stopping` as its before_stop hook (Patroni 3.0.3+).\n\n"
		"  --socket PATH             happac's control socket (--control-socket; also\n"
		"                            --control-socket PATH). Default: %s\n"
		"  --bin PATH                happac. Default: %s\n",
		CTL_DEFAULT_SOCKET, RECIPE_DEFAULT_BIN);
}

enum recipe_parse recipe_patroni_parse(struct recipe_patroni *p, int argc, char **argv,
				       FILE *out, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, RECIPE_PATRONI_OPT_SOCKET },
		{ "control-socket", required_argument, NULL, RECIPE_PATRONI_OPT_SOCKET },
		{ "bin", required_argument, NULL, RECIPE_PATRONI_OPT_BIN },
		{ "help", no_argument, NULL, RECIPE_PATRONI_OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(p, 0, sizeof(*p));
	snprintf(p->bin, sizeof(p->bin), "%s", RECIPE_DEFAULT_BIN);
	snprintf(p->socket, sizeof(p->socket), "%s", CTL_DEFAULT_SOCKET);
	optind = 0; /* glibc: full re-initialisation; argv[0] is "patroni" */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		const char *v = optarg;

		switch (ch) {
		case RECIPE_PATRONI_OPT_SOCKET:
		case RECIPE_PATRONI_OPT_BIN:
			/* Both end up in a shell-like command line that Patroni
			 * splits with shlex: no spaces, quotes or backslashes. */
			if (!recipe_util_valid_bin(v) || strlen(v) >= sizeof(p->socket)) {
				const char *opt =
					ch == RECIPE_PATRONI_OPT_BIN ? "--bin" : "--socket";

				recipe_util_errf(err, errlen,
						 "%s: '%s' is not an absolute path without "
						 "spaces or quotes", opt, v);
				return RECIPE_PARSE_ERROR;
			}
			snprintf(ch == RECIPE_PATRONI_OPT_BIN ? p->bin : p->socket,
				 sizeof(p->socket), "%s", v);
			break;
		case RECIPE_PATRONI_OPT_HELP:
			recipe_patroni_usage(out);
			return RECIPE_PARSE_HELP;
		default:
			return recipe_util_getopt_error(ch, argv, err, errlen);
		}
	}
	return recipe_util_getopt_leftover(argc, argv, err, errlen);
}

void recipe_patroni_render(const struct recipe_patroni *p, FILE *out)
{
	char cmd[2 * RECIPE_PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "%s ctl --socket %s", p->bin, p->socket);
	fprintf(out,
		"# Patroni tells happac at once (happac recipe patroni). Merge these keys into\n"
		"# the postgresql: section of patroni.yml, then `patronictl reload`.\n"
		"#   callbacks     a probe round starts when PostgreSQL starts, stops or\n"
		"#                 changes role, instead of at the next interval: the new\n"
		"#                 primary's agent says up within about 0.1s of Patroni's\n"
		"#                 promotion (its hold ends once every other agent says down).\n"
		"#   before_stop   (Patroni 3.0.3+; older ones ignore it) happac says\n"
		"#                 `down #patroni: stopping` before PostgreSQL stops, until a\n"
		"#                 round sees Patroni running again.\n"
		"# `happac ctl probe|stopping` gives up within 100ms and exits 0 also when\n"
		"# happac is not running: it never holds Patroni up. Patroni runs it as its\n"
		"# own user, who must be allowed on the control socket (its group).\n"
		"postgresql:\n"
		"  callbacks:\n"
		"    on_start: %s probe\n"
		"    on_stop: %s probe\n"
		"    on_role_change: %s probe\n"
		"  before_stop: %s stopping\n",
		cmd, cmd, cmd, cmd);
}
