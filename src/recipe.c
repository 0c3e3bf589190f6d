/* recipe.c - `happac recipe haproxy|consul|systemd|k8s`: the configuration that
 * goes with happac, printed by happac itself.
 *
 * The predecessor shipped three hand-written HAProxy scenarios, an env file,
 * a unit and Consul files, and its README conceded that the configuration
 * overhead outweighed the benefit. Generated recipes carry happac's own
 * defaults (ports, timing) so they cannot drift from the daemon, and the
 * tests run every one of them through its real consumer (`haproxy -c`, a JSON
 * parser, the cluster harness).
 *
 * All inputs are validated before anything is printed: a recipe is either
 * complete and valid, or there is one line on stderr and exit status 2. */
#include "recipe.h"

#include <stdlib.h>
#include <string.h>

/* ---- happac recipe */

static void recipe_usage(FILE *out)
{
	fputs("Usage: happac recipe haproxy|consul|systemd|patroni|k8s [OPTION]...\n"
	      "Print configuration that goes with happac, matched to its defaults:\n\n"
	      "  haproxy   HAProxy sections for scenario a, b or c (and --replicas)\n"
	      "            happac recipe haproxy --scenario b --node n1=10.0.0.11 --node n2=10.0.0.12\n"
	      "  consul    a Consul service definition checked through happac\n"
	      "            happac recipe consul --service primary\n"
	      "  systemd   the unit and its env file for the given happac options\n"
	      "            happac recipe systemd -h 127.0.0.1 -r 6432\n"
	      "  patroni   patroni.yml callbacks that start a probe round at once\n"
	      "            happac recipe patroni --socket /run/happac/happac.sock\n"
	      "  k8s       Kubernetes readiness and liveness probes on happac's HTTP port\n"
	      "            happac recipe k8s --profile primary\n\n"
	      "`happac recipe KIND --help` lists a recipe's options. A bad option gets one\n"
	      "line naming it and exit status 2.\n", out);
}

int recipe_main(int argc, char **argv)
{
	char err[512];
	enum recipe_parse r;

	if (argc < 2) {
		fprintf(stderr, "happac recipe: which recipe? haproxy, consul, systemd, patroni "
			"or k8s (see happac recipe --help)\n");
		return RECIPE_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		recipe_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "haproxy")) {
		struct recipe_haproxy *h = malloc(sizeof(*h));

		if (!h) {
			fprintf(stderr, "happac recipe haproxy: out of memory\n");
			return 1;
		}
		r = recipe_haproxy_parse(h, argc - 1, argv + 1, stdout, err, sizeof(err));
		if (r == RECIPE_PARSE_OK)
			recipe_haproxy_render(h, stdout);
		free(h);
	} else if (!strcmp(argv[1], "consul")) {
		struct recipe_consul c;

		r = recipe_consul_parse(&c, argc - 1, argv + 1, stdout, err, sizeof(err));
		if (r == RECIPE_PARSE_OK)
			recipe_consul_render(&c, stdout);
	} else if (!strcmp(argv[1], "patroni")) {
		struct recipe_patroni p;

		r = recipe_patroni_parse(&p, argc - 1, argv + 1, stdout, err, sizeof(err));
		if (r == RECIPE_PARSE_OK)
			recipe_patroni_render(&p, stdout);
	} else if (!strcmp(argv[1], "k8s")) {
		struct recipe_k8s k;

		r = recipe_k8s_parse(&k, argc - 1, argv + 1, stdout, err, sizeof(err));
		if (r == RECIPE_PARSE_OK)
			recipe_k8s_render(&k, stdout);
	} else if (!strcmp(argv[1], "systemd")) {
		return recipe_systemd_main(argc - 1, argv + 1, stdout);
	} else {
		fprintf(stderr, "happac recipe: unknown recipe '%s' (haproxy, consul, systemd, "
			"patroni or k8s)\n", argv[1]);
		return RECIPE_EXIT_USAGE;
	}
	if (r == RECIPE_PARSE_ERROR) {
		fprintf(stderr, "happac recipe %s: %s\n", argv[1], err);
		return RECIPE_EXIT_USAGE;
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "happac recipe %s: cannot write the recipe\n", argv[1]);
		return 1;
	}
	return 0;
}
