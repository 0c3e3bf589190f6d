/* recipe.c - `happac recipe haproxy|consul|systemd`: the configuration that
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

#include "options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const recipe_service_names[] = {
	[RECIPE_SERVICE_PRIMARY] = "primary",
	[RECIPE_SERVICE_REPLICA] = "replica",
};

void recipe_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- values */

/* A DNS name as HAProxy's libc resolver takes it: labels of letters, digits
 * and '-', and a last label that is not all digits, so that a mistyped IPv4
 * address ("10.0.0.256") is not taken for a name. */
static int recipe_valid_dns_name(const char *s)
{
	size_t n = strlen(s), label = 0;
	int digits_only = 1;

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			digits_only = 1;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (!isdigit(c))
			digits_only = 0;
		if (++label > 63)
			return 0;
	}
	return s[n - 1] != '-' && !digits_only;
}

/* Classify a host without brackets; 0, or -1 when it is none of the three. */
int recipe_host_family(const char *s, int allow_name, enum recipe_family *f)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, buf) == 1)
		*f = RECIPE_FAMILY_IPV4;
	else if (inet_pton(AF_INET6, s, buf) == 1)
		*f = RECIPE_FAMILY_IPV6;
	else if (allow_name && recipe_valid_dns_name(s))
		*f = RECIPE_FAMILY_NAME;
	else
		return -1;
	return 0;
}

/* HAProxy server and proxy names, Consul IDs: a safe common subset. */
int recipe_valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max || !isalnum((unsigned char)s[0]))
		return 0;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.')
			return 0;
	return 1;
}

/* "ADDR:PORT" or "[V6]:PORT"; with allow_any also "*:PORT" and ":PORT".
 * Literal addresses only: these are addresses to bind or to reach locally. */
int recipe_parse_hostport(const char *s, int allow_any, struct recipe_endpoint *e)
{
	const char *colon, *host = s;
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return -1; /* IPv6 needs brackets to tell the port apart */
	}
	if (hlen >= sizeof(e->host) || options_parse_port(colon + 1, &e->port) != 0)
		return -1;
	memcpy(e->host, host, hlen);
	e->host[hlen] = '\0';
	if (s[0] != '[' && (hlen == 0 || strcmp(e->host, "*") == 0)) {
		if (!allow_any)
			return -1;
		e->family = RECIPE_FAMILY_ANY;
		e->host[0] = '\0';
		return 0;
	}
	if (recipe_host_family(e->host, 0, &e->family) != 0)
		return -1;
	return s[0] == '[' ? (e->family == RECIPE_FAMILY_IPV6 ? 0 : -1) : 0;
}

/* HAProxy and URLs want an IPv6 address in brackets when a port follows;
 * "::1:6432" would also parse, but only by luck of the last colon. */
void recipe_hostport_str(const char *host, enum recipe_family f, int port,
			 char *buf, size_t len)
{
	if (f == RECIPE_FAMILY_ANY)
		snprintf(buf, len, "*:%d", port);
	else if (f == RECIPE_FAMILY_IPV6)
		snprintf(buf, len, "[%s]:%d", host, port);
	else
		snprintf(buf, len, "%s:%d", host, port);
}

enum recipe_parse recipe_getopt_error(int c, char **argv, char *err, size_t errlen)
{
	if (c == ':')
		recipe_errf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
	else
		recipe_errf(err, errlen, "unknown option '%s' (see --help)", argv[optind - 1]);
	return RECIPE_PARSE_ERROR;
}

enum recipe_parse recipe_getopt_leftover(int argc, char **argv, char *err, size_t errlen)
{
	if (optind >= argc)
		return RECIPE_PARSE_OK;
	recipe_errf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
	return RECIPE_PARSE_ERROR;
}

int recipe_parse_port_opt(const char *opt, const char *value, int *port, char *err,
			  size_t errlen)
{
	if (options_parse_port(value, port) == 0)
		return 0;
	recipe_errf(err, errlen, "%s: invalid port '%s' (expected 1-65535)", opt, value);
	return -1;
}

int recipe_valid_bin(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= RECIPE_PATH_MAX || s[0] != '/')
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

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
		"  --http ADDR:PORT          happac's --http-listen; the check is GET /health\n"
		"                            (200 passing, 503 critical). Default: 127.0.0.1:%d\n"
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
				recipe_errf(err, errlen, "--service: '%s' is not primary or replica", v);
				return RECIPE_PARSE_ERROR;
			}
			service_set = 1;
			break;
		case RECIPE_CONSUL_OPT_HTTP:
		case RECIPE_CONSUL_OPT_AGENT:
			if (recipe_parse_hostport(v, 0, ch == RECIPE_CONSUL_OPT_HTTP ? &c->http
									    : &c->agent) != 0) {
				recipe_errf(err, errlen,
					    "%s: '%s' is not ADDR:PORT (e.g. 127.0.0.1:%d or [::1]:%d)",
					    ch == RECIPE_CONSUL_OPT_HTTP ? "--http" : "--agent", v,
					    ch == RECIPE_CONSUL_OPT_HTTP ? RECIPE_DEFAULT_HTTP_PORT
					    : RECIPE_DEFAULT_AGENT_PORT,
					    ch == RECIPE_CONSUL_OPT_HTTP ? RECIPE_DEFAULT_HTTP_PORT
					    : RECIPE_DEFAULT_AGENT_PORT);
				return RECIPE_PARSE_ERROR;
			}
			http_set |= ch == RECIPE_CONSUL_OPT_HTTP;
			agent_set |= ch == RECIPE_CONSUL_OPT_AGENT;
			break;
		case RECIPE_CONSUL_OPT_SCRIPT:
			c->script = 1;
			break;
		case RECIPE_CONSUL_OPT_BIN:
			if (!recipe_valid_bin(v)) {
				recipe_errf(err, errlen,
					    "--bin: '%s' is not an absolute path without spaces or quotes", v);
				return RECIPE_PARSE_ERROR;
			}
			snprintf(c->bin, sizeof(c->bin), "%s", v);
			break;
		case RECIPE_CONSUL_OPT_NAME: {
			size_t n = strlen(v);

			/* Consul serves the name in DNS: one label of letters,
			 * digits and '-'. */
			if (!recipe_valid_name(v, sizeof(c->name)) || strchr(v, '_') ||
			    strchr(v, '.') || v[n - 1] == '-') {
				recipe_errf(err, errlen,
					    "--name: invalid service name '%s' (letters, digits and '-', at most %zu, as in DNS)",
					    v, sizeof(c->name) - 1);
				return RECIPE_PARSE_ERROR;
			}
			snprintf(c->name, sizeof(c->name), "%s", v);
			break;
		}
		case RECIPE_CONSUL_OPT_PGBOUNCER_PORT:
			if (recipe_parse_port_opt("--pgbouncer-port", v, &c->pgbouncer_port, err, errlen))
				return RECIPE_PARSE_ERROR;
			break;
		case RECIPE_CONSUL_OPT_HELP:
			recipe_consul_usage(out);
			return RECIPE_PARSE_HELP;
		default: /* ':' or '?' */
			return recipe_getopt_error(ch, argv, err, errlen);
		}
	}
	if (recipe_getopt_leftover(argc, argv, err, errlen))
		return RECIPE_PARSE_ERROR;
	if (!service_set) {
		recipe_errf(err, errlen, "--service is required (primary or replica)");
		return RECIPE_PARSE_ERROR;
	}
	if (!http_set) {
		snprintf(c->http.host, sizeof(c->http.host), "127.0.0.1");
		c->http.family = RECIPE_FAMILY_IPV4;
		c->http.port = c->service == RECIPE_SERVICE_PRIMARY ? RECIPE_DEFAULT_HTTP_PORT
								   : RECIPE_DEFAULT_REPLICA_HTTP_PORT;
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

/* A JSON string; the inputs are validated, but escaping costs nothing. */
static void recipe_json_str(const char *s, FILE *out)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

void recipe_consul_render(const struct recipe_consul *c, FILE *out)
{
	const char *svc = recipe_service_names[c->service];
	char id[2 * RECIPE_NAME_MAX + 16], hp[RECIPE_HOST_MAX + 16], buf[512];

	snprintf(id, sizeof(id), "%s-%s", c->name, svc);
	fputs("{\n  \"service\": {\n    \"id\": ", out);
	recipe_json_str(id, out);
	fputs(",\n    \"name\": ", out);
	recipe_json_str(c->name, out);
	fputs(",\n    \"tags\": [", out);
	recipe_json_str(svc, out);
	fprintf(out, "],\n    \"port\": %d,\n", c->pgbouncer_port);
	fputs("    \"meta\": {\n      \"happac_profile\": ", out);
	recipe_json_str(svc, out);
	fputs("\n    },\n    \"checks\": [\n      {\n        \"id\": ", out);
	snprintf(buf, sizeof(buf), "%s-happac", id);
	recipe_json_str(buf, out);
	fputs(",\n        \"name\": ", out);
	snprintf(buf, sizeof(buf), "happac %s: Patroni role and PgBouncer", svc);
	recipe_json_str(buf, out);
	fputs(",\n        \"notes\": ", out);
	if (c->script) {
		recipe_hostport_str(c->agent.host, c->agent.family, c->agent.port, hp,
				    sizeof(hp));
		snprintf(buf, sizeof(buf),
			 "happac check asks the agent on %s once: exit 0 (passing) on 'up' "
			 "without drain or maint, 2 (critical) on 'down #reason', 'up drain', "
			 "'up maint', no answer or timeout. The Consul agent needs "
			 "enable_local_script_checks = true.",
			 hp);
		recipe_json_str(buf, out);
		/* happac check's own deadline comes first, so a hung agent is
		 * reported by happac with a reason, not killed by Consul. */
		fputs(",\n        \"args\": [", out);
		recipe_json_str(c->bin, out);
		fputs(", \"check\", \"--host\", ", out);
		recipe_json_str(c->agent.host, out);
		fprintf(out, ", \"--port\", \"%d\", \"--timeout\", \"1s\"],\n", c->agent.port);
		fputs("        \"interval\": \"2s\",\n        \"timeout\": \"2s\"\n", out);
	} else {
		recipe_hostport_str(c->http.host, c->http.family, c->http.port, hp, sizeof(hp));
		snprintf(buf, sizeof(buf),
			 "happac's /health: 200 (passing) while this node is the %s, its "
			 "PgBouncer answers and it is not drained or in maintenance; 503 "
			 "(critical) with the agent line otherwise. Needs happac "
			 "--http-listen %s.",
			 svc, hp);
		recipe_json_str(buf, out);
		snprintf(buf, sizeof(buf), "http://%s/health", hp);
		fputs(",\n        \"http\": ", out);
		recipe_json_str(buf, out);
		/* happac answers from its cache, so a 1s interval costs Patroni
		 * nothing and the timeout only catches a wedged happac. */
		fputs(",\n        \"method\": \"GET\",\n"
		      "        \"interval\": \"1s\",\n"
		      "        \"timeout\": \"1s\"\n", out);
	}
	fputs("      }\n    ]\n  }\n}\n", out);
}

/* ---- happac recipe */

static void recipe_usage(FILE *out)
{
	fputs("Usage: happac recipe haproxy|consul|systemd [OPTION]...\n"
	      "Print configuration that goes with happac, matched to its defaults:\n\n"
	      "  haproxy   HAProxy sections for scenario a, b or c (and --replicas)\n"
	      "            happac recipe haproxy --scenario b --node n1=10.0.0.11 --node n2=10.0.0.12\n"
	      "  consul    a Consul service definition checked through happac\n"
	      "            happac recipe consul --service primary\n"
	      "  systemd   the unit and its env file for the given happac options\n"
	      "            happac recipe systemd -h 127.0.0.1 -r 6432\n\n"
	      "`happac recipe KIND --help` lists a recipe's options. A bad option gets one\n"
	      "line naming it and exit status 2.\n", out);
}

int recipe_main(int argc, char **argv)
{
	char err[512];
	enum recipe_parse r;

	if (argc < 2) {
		fprintf(stderr, "happac recipe: which recipe? haproxy, consul or systemd "
			"(see happac recipe --help)\n");
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
	} else if (!strcmp(argv[1], "systemd")) {
		return recipe_systemd_main(argc - 1, argv + 1, stdout);
	} else {
		fprintf(stderr, "happac recipe: unknown recipe '%s' (haproxy, consul or systemd)\n",
			argv[1]);
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
