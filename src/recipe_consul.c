/* recipe_consul.c - `happac recipe consul`: a Consul service definition
 * (JSON) whose check follows one happac profile, over HTTP or a script. */
#include "recipe_util.h"

#include "util.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char *const recipe_service_names[] = {
	[RECIPE_SERVICE_PRIMARY] = "primary",
	[RECIPE_SERVICE_REPLICA] = "replica",
};

/* ---- recipe consul */

enum recipe_consul_opt {
	RECIPE_CONSUL_OPT_SERVICE = 1000,
	RECIPE_CONSUL_OPT_HTTP,
	RECIPE_CONSUL_OPT_SCRIPT,
	RECIPE_CONSUL_OPT_AGENT,
	RECIPE_CONSUL_OPT_BIN,
	RECIPE_CONSUL_OPT_NAME,
	RECIPE_CONSUL_OPT_PGBOUNCER_PORT,
	RECIPE_CONSUL_OPT_HELP,
};

static void recipe_consul_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac recipe consul --service primary|replica [OPTION]...\n"
		"Print a Consul service definition (JSON) for this node's PgBouncer, passing\n"
		"only while happac says \"up\" for that profile.\n\n"
		"  --service primary|replica Which happac profile the service follows (required)\n"
		"  --http ADDR:PORT          happac's --http-listen; the check is\n"
		"                            GET /health?profile=SERVICE (200 passing, 503\n"
		"                            critical). Default: 127.0.0.1:%d\n"
		"                            (primary), 127.0.0.1:%d (replica)\n"
		"  --script                  Use a script check instead: happac check asks the\n"
		"                            agent once (exit 0 passing, 2 critical); Consul needs\n"
		"                            enable_local_script_checks = true\n"
		"  --agent ADDR:PORT         The agent --script asks. Default: 127.0.0.1:%d\n"
		"                            (primary), 127.0.0.1:%d (replica)\n"
		"  --bin PATH                happac for --script. Default: %s\n"
		"  --name NAME               Service name; the tag is the profile. Default: postgres\n"
		"  --pgbouncer-port PORT     The port the service offers. Default: %d\n"
		"  --help                    Print this help and exit\n\n"
		"Install: save as /etc/consul.d/NAME-SERVICE.json, then `consul reload`.\n",
		RECIPE_DEFAULT_HTTP_PORT, RECIPE_DEFAULT_REPLICA_HTTP_PORT,
		RECIPE_DEFAULT_AGENT_PORT, RECIPE_DEFAULT_REPLICA_AGENT_PORT,
		RECIPE_DEFAULT_BIN, RECIPE_DEFAULT_PGBOUNCER_PORT);
}

/* --name: Consul serves the name in DNS, one label of letters, digits
 * and '-'. */
static int recipe_consul_name(struct recipe_consul *c, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (!recipe_util_valid_name(v, sizeof(c->name)) || strchr(v, '_') || strchr(v, '.') ||
	    v[n - 1] == '-') {
		recipe_util_errf(err, errlen,
				 "--name: invalid service name '%s' (letters, digits and '-', at most %zu, as in DNS)",
				 v, sizeof(c->name) - 1);
		return -1;
	}
	snprintf(c->name, sizeof(c->name), "%s", v);
	return 0;
}

/* After the options: --service is required; --http and --agent default to
 * the service's loopback ports. */
static enum recipe_parse recipe_consul_defaults(struct recipe_consul *c, int service_set,
						int http_set, int agent_set, char *err,
						size_t errlen)
{
	if (!service_set) {
		recipe_util_errf(err, errlen, "--service is required (primary or replica)");
		return RECIPE_PARSE_ERROR;
	}
	if (!http_set) {
		snprintf(c->http.host, sizeof(c->http.host), "127.0.0.1");
		c->http.family = RECIPE_FAMILY_IPV4;
		c->http.port = RECIPE_DEFAULT_REPLICA_HTTP_PORT;
		if (c->service == RECIPE_SERVICE_PRIMARY)
			c->http.port = RECIPE_DEFAULT_HTTP_PORT;
	}
	if (!agent_set) {
		snprintf(c->agent.host, sizeof(c->agent.host), "127.0.0.1");
		c->agent.family = RECIPE_FAMILY_IPV4;
		c->agent.port = c->service == RECIPE_SERVICE_PRIMARY
					? RECIPE_DEFAULT_AGENT_PORT
					: RECIPE_DEFAULT_REPLICA_AGENT_PORT;
	}
	return RECIPE_PARSE_OK;
}

enum recipe_parse recipe_consul_parse(struct recipe_consul *c, int argc, char **argv,
				      FILE *out, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "service", required_argument, NULL, RECIPE_CONSUL_OPT_SERVICE },
		{ "http", required_argument, NULL, RECIPE_CONSUL_OPT_HTTP },
		{ "script", no_argument, NULL, RECIPE_CONSUL_OPT_SCRIPT },
		{ "agent", required_argument, NULL, RECIPE_CONSUL_OPT_AGENT },
		{ "bin", required_argument, NULL, RECIPE_CONSUL_OPT_BIN },
		{ "name", required_argument, NULL, RECIPE_CONSUL_OPT_NAME },
		{ "pgbouncer-port", required_argument, NULL, RECIPE_CONSUL_OPT_PGBOUNCER_PORT },
		{ "help", no_argument, NULL, RECIPE_CONSUL_OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int ch, service_set = 0, http_set = 0, agent_set = 0;

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "postgres");
	snprintf(c->bin, sizeof(c->bin), "%s", RECIPE_DEFAULT_BIN);
	c->pgbouncer_port = RECIPE_DEFAULT_PGBOUNCER_PORT;

	optind = 0; /* glibc: full re-initialisation; argv[0] is "consul" */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		const char *v = optarg;

		switch (ch) {
		case RECIPE_CONSUL_OPT_SERVICE:
			if (strcmp(v, "primary") == 0) {
				c->service = RECIPE_SERVICE_PRIMARY;
			} else if (strcmp(v, "replica") == 0) {
				c->service = RECIPE_SERVICE_REPLICA;
			} else {
				recipe_util_errf(err, errlen,
						 "--service: '%s' is not primary or replica", v);
				return RECIPE_PARSE_ERROR;
			}
			service_set = 1;
			break;
		case RECIPE_CONSUL_OPT_HTTP:
		case RECIPE_CONSUL_OPT_AGENT:
			if (recipe_util_parse_hostport(v, 0, ch == RECIPE_CONSUL_OPT_HTTP ? &c->http
									    : &c->agent) != 0) {
				recipe_util_errf(
					err, errlen,
					"%s: '%s' is not ADDR:PORT (e.g. 127.0.0.1:%d or [::1]:%d)",
					ch == RECIPE_CONSUL_OPT_HTTP ? "--http" : "--agent", v,
					ch == RECIPE_CONSUL_OPT_HTTP ? RECIPE_DEFAULT_HTTP_PORT :
								       RECIPE_DEFAULT_AGENT_PORT,
					ch == RECIPE_CONSUL_OPT_HTTP ? RECIPE_DEFAULT_HTTP_PORT :
								       RECIPE_DEFAULT_AGENT_PORT);
				return RECIPE_PARSE_ERROR;
			}
			http_set |= ch == RECIPE_CONSUL_OPT_HTTP;
			agent_set |= ch == RECIPE_CONSUL_OPT_AGENT;
			break;
		case RECIPE_CONSUL_OPT_SCRIPT:
			c->script = 1;
			break;
		case RECIPE_CONSUL_OPT_BIN:
			if (!recipe_util_valid_bin(v)) {
				recipe_util_errf(
					err, errlen,
					"--bin: '%s' is not an absolute path without spaces or quotes",
					v);
				return RECIPE_PARSE_ERROR;
			}
			snprintf(c->bin, sizeof(c->bin), "%s", v);
			break;
		case RECIPE_CONSUL_OPT_NAME:
			if (recipe_consul_name(c, v, err, errlen) != 0)
				return RECIPE_PARSE_ERROR;
			break;
		case RECIPE_CONSUL_OPT_PGBOUNCER_PORT:
			if (recipe_util_parse_port_opt("--pgbouncer-port", v, &c->pgbouncer_port,
						       err, errlen))
				return RECIPE_PARSE_ERROR;
			break;
		case RECIPE_CONSUL_OPT_HELP:
			recipe_consul_usage(out);
			return RECIPE_PARSE_HELP;
		default: /* ':' or '?' */
			return recipe_util_getopt_error(ch, argv, err, errlen);
		}
	}
	if (recipe_util_getopt_leftover(argc, argv, err, errlen))
		return RECIPE_PARSE_ERROR;
	return recipe_consul_defaults(c, service_set, http_set, agent_set, err, errlen);
}

/* A JSON string; the inputs are validated, but escaping costs nothing. */
static void recipe_consul_json(const char *s, FILE *out)
{
	size_t n = util_json_quote(NULL, 0, s);
	char *buf = malloc(n + 1);

	if (!buf) {
		/* The inputs are validated (no quotes, backslashes or control
		 * characters): quoted as they are, they are the same JSON. */
		fprintf(out, "\"%s\"", s);
		return;
	}
	util_json_quote(buf, n + 1, s);
	fputs(buf, out);
	free(buf);
}

void recipe_consul_render(const struct recipe_consul *c, FILE *out)
{
	const char *svc = recipe_service_names[c->service];
	char id[2 * RECIPE_NAME_MAX + 16], hp[RECIPE_HOST_MAX + 16], buf[512];
	const struct recipe_endpoint *ep;

	snprintf(id, sizeof(id), "%s-%s", c->name, svc);
	fputs("{\n  \"service\": {\n    \"id\": ", out);
	recipe_consul_json(id, out);
	fputs(",\n    \"name\": ", out);
	recipe_consul_json(c->name, out);
	fputs(",\n    \"tags\": [", out);
	recipe_consul_json(svc, out);
	fprintf(out, "],\n    \"port\": %d,\n", c->pgbouncer_port);
	fputs("    \"meta\": {\n      \"happac_profile\": ", out);
	recipe_consul_json(svc, out);
	fputs("\n    },\n    \"checks\": [\n      {\n        \"id\": ", out);
	snprintf(buf, sizeof(buf), "%s-happac", id);
	recipe_consul_json(buf, out);
	fputs(",\n        \"name\": ", out);
	snprintf(buf, sizeof(buf), "happac %s: Patroni role and PgBouncer", svc);
	recipe_consul_json(buf, out);
	fputs(",\n        \"notes\": ", out);
	/* The check reaches happac's agent port with --script, else the
	 * profile's /health: bare /health is Patroni's path, which passes on
	 * any node whose PostgreSQL runs, whatever its role. */
	ep = c->script ? &c->agent : &c->http;
	recipe_util_hostport_str(ep->host, ep->family, ep->port, hp, sizeof(hp));
	if (c->script) {
		snprintf(buf, sizeof(buf),
			 "happac check asks the agent on %s once: exit 0 (passing) on 'up' "
			 "without drain or maint, 2 (critical) on 'down #reason', 'up drain', "
			 "'up maint', no answer or timeout. The Consul agent needs "
			 "enable_local_script_checks = true.",
			 hp);
		recipe_consul_json(buf, out);
		/* happac check's own deadline comes first, so a hung agent is
		 * reported by happac with a reason, not killed by Consul. */
		fputs(",\n        \"args\": [", out);
		recipe_consul_json(c->bin, out);
		fputs(", \"check\", \"--host\", ", out);
		recipe_consul_json(c->agent.host, out);
		fprintf(out, ", \"--port\", \"%d\", \"--timeout\", \"1s\"],\n", c->agent.port);
		fputs("        \"interval\": \"2s\",\n        \"timeout\": \"2s\"\n", out);
	} else {
		snprintf(buf, sizeof(buf),
			 "happac's /health?profile=%s: 200 (passing) while this node is the %s, its "
			 "PgBouncer answers and it is not drained or in maintenance; 503 "
			 "(critical) with the agent line otherwise. Needs happac "
			 "--http-listen %s.",
			 svc, svc, hp);
		recipe_consul_json(buf, out);
		snprintf(buf, sizeof(buf), "http://%s/health?profile=%s", hp, svc);
		fputs(",\n        \"http\": ", out);
		recipe_consul_json(buf, out);
		/* happac answers from its cache, so a 1s interval costs Patroni
		 * nothing and the timeout only catches a wedged happac. */
		fputs(",\n        \"method\": \"GET\",\n"
		      "        \"interval\": \"1s\",\n"
		      "        \"timeout\": \"1s\"\n", out);
	}
	fputs("      }\n    ]\n  }\n}\n", out);
}

