/* recipe_k8s.c - `happac recipe k8s`: Kubernetes readiness and liveness
 * probes (YAML) pointed at happac's side port, where Patroni's paths are
 * answered from the cache with PgBouncer's state. */
#include "recipe_util.h"

#include "profile.h"

#include <getopt.h>
#include <string.h>

enum recipe_k8s_opt {
	RECIPE_K8S_OPT_PROFILE = 1000,
	RECIPE_K8S_OPT_HTTP_PORT,
	RECIPE_K8S_OPT_HELP,
};

static void recipe_k8s_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac recipe k8s --profile NAME [OPTION]...\n"
		"Print Kubernetes readinessProbe and livenessProbe snippets (YAML) for the\n"
		"containers of a Patroni pod, checked on happac's HTTP side port: Patroni's\n"
		"paths answered from happac's cache, PgBouncer's state included.\n\n"
		"  --profile NAME     The readiness path: /NAME, one of Patroni's rules:\n"
		"                     primary, replica, read-only, sync, async, leader,\n"
		"                     standby-leader, quorum, read-only-quorum,\n"
		"                     read-only-sync, readiness, health (required)\n"
		"  --http-port PORT   happac's --http-listen port in the pod. Default: %d\n"
		"  --help             Print this help and exit\n\n"
		"The liveness probe is /liveness on the same port.\n",
		RECIPE_DEFAULT_HTTP_PORT);
}

/* --profile: a built-in rule that Patroni serves as a path; liveness is
 * the liveness probe's own. */
static int recipe_k8s_profile(struct recipe_k8s *k, const char *v, char *err, size_t errlen)
{
	struct profile p;

	if (profile_builtin(v, &p) != 0 || p.rule == PROFILE_RULE_LIVENESS) {
		recipe_util_errf(err, errlen,
				 "--profile: '%s' is not one of Patroni's rules (primary, replica, "
				 "read-only, sync, async, leader, standby-leader, quorum, "
				 "read-only-quorum, read-only-sync, readiness, health)",
				 v);
		return -1;
	}
	snprintf(k->profile, sizeof(k->profile), "%s", profile_rule_names[p.rule]);
	return 0;
}

/* One option of the loop; -1 with err naming it when it is bad. */
static int recipe_k8s_option(struct recipe_k8s *k, int ch, char **argv, char *err,
			     size_t errlen)
{
	if (ch == RECIPE_K8S_OPT_PROFILE)
		return recipe_k8s_profile(k, optarg, err, errlen);
	if (ch == RECIPE_K8S_OPT_HTTP_PORT)
		return recipe_util_parse_port_opt("--http-port", optarg, &k->http_port, err,
						  errlen);
	recipe_util_getopt_error(ch, argv, err, errlen); /* ':' or '?' */
	return -1;
}

enum recipe_parse recipe_k8s_parse(struct recipe_k8s *k, int argc, char **argv, FILE *out,
				   char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "profile", required_argument, NULL, RECIPE_K8S_OPT_PROFILE },
		{ "http-port", required_argument, NULL, RECIPE_K8S_OPT_HTTP_PORT },
		{ "help", no_argument, NULL, RECIPE_K8S_OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(k, 0, sizeof(*k));
	k->http_port = RECIPE_DEFAULT_HTTP_PORT;
	optind = 0; /* glibc: full re-initialisation; argv[0] is "k8s" */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (ch == RECIPE_K8S_OPT_HELP) {
			recipe_k8s_usage(out);
			return RECIPE_PARSE_HELP;
		}
		if (recipe_k8s_option(k, ch, argv, err, errlen) != 0)
			return RECIPE_PARSE_ERROR;
	}
	if (recipe_util_getopt_leftover(argc, argv, err, errlen))
		return RECIPE_PARSE_ERROR;
	if (!k->profile[0]) {
		recipe_util_errf(err, errlen, "--profile is required (e.g. primary or replica)");
		return RECIPE_PARSE_ERROR;
	}
	return RECIPE_PARSE_OK;
}

/* Timing: the kubelet asks every second, as HAProxy's checks do (inter 1s):
 * happac answers from its cache, so asking often costs Patroni nothing.
 * Two failures in a row take the pod out (HAProxy's fall 2: one lost
 * answer does not), one success brings it back (rise 1). Liveness is slow
 * on purpose: a restart is the last resort. */
void recipe_k8s_render(const struct recipe_k8s *k, FILE *out)
{
	fprintf(out,
		"# Kubernetes probes for a Patroni pod, written by happac " HAPPAC_VERSION ".\n"
		"# Print it again with:\n"
		"#   happac recipe k8s --profile %s --http-port %d\n"
		"#\n"
		"# Run happac in the pod next to Patroni and PgBouncer with\n"
		"#   --http-listen 0.0.0.0:%d --allow NODE_CIDR\n"
		"# (the kubelet probes from its node's address). happac answers Patroni's\n"
		"# paths from its cache - one Patroni request per round however often the\n"
		"# kubelet asks - and says 503 also when the pod's PgBouncer is dead, frozen\n"
		"# or (with --pg-conninfo) reaches the wrong role.\n"
		"#\n"
		"# readinessProbe: add it to the container whose port the Service sends\n"
		"#   clients to (PgBouncer's). /%s is 200 while Patroni's %s rule holds\n"
		"#   for this pod and its PgBouncer answers; 503 takes the pod out of the\n"
		"#   Service's endpoints (also while an operator drains it: happac ctl).\n"
		"# livenessProbe: add it to PgBouncer's container. /liveness is 200 while\n"
		"#   Patroni and PgBouncer answer happac; 30 s of 503 or silence restart\n"
		"#   PgBouncer (a frozen one comes back). Never add it to the Patroni/\n"
		"#   PostgreSQL container: a dead PgBouncer must take the pod out of the\n"
		"#   Service, not restart PostgreSQL; keep that container's livenessProbe on\n"
		"#   Patroni's own /liveness (port %d).\n"
		"readinessProbe:\n"
		"  httpGet:\n"
		"    path: /%s\n"
		"    port: %d\n"
		"  periodSeconds: 1\n"
		"  timeoutSeconds: 1\n"
		"  failureThreshold: 2\n"
		"  successThreshold: 1\n"
		"livenessProbe:\n"
		"  httpGet:\n"
		"    path: /liveness\n"
		"    port: %d\n"
		"  periodSeconds: 10\n"
		"  timeoutSeconds: 2\n"
		"  failureThreshold: 3\n",
		k->profile, k->http_port, k->http_port, k->profile, k->profile,
		RECIPE_DEFAULT_PATRONI_PORT, k->profile, k->http_port, k->http_port);
}
