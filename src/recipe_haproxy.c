/* recipe_haproxy.c - `happac recipe haproxy`: HAProxy sections for the three
 * routing scenarios, with check timing matched to happac's defaults.
 *
 * The sections keep the names and the shape of haproxy/scenario-*.cfg, so
 * that the cluster harness can run the failure matrix on generated
 * configurations: what the tests prove is what users get. */
#include "options.h"
#include "recipe_util.h"
#include "util.h"

#include <ctype.h>
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const recipe_scenario_names[] = {
	[RECIPE_SCENARIO_A] = "a",
	[RECIPE_SCENARIO_B] = "b",
	[RECIPE_SCENARIO_C] = "c",
};

/* ---- options */


int recipe_haproxy_parse_node(const char *arg, struct recipe_node *n, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	const char *addr;
	size_t nlen;
	int bracketed;

	memset(n, 0, sizeof(*n));
	if (!eq) {
		recipe_util_errf(err, errlen,
				 "--node: '%s' is not NAME=ADDR (e.g. node1=10.0.0.11)", arg);
		return -1;
	}
	nlen = (size_t)(eq - arg);
	if (nlen == 0 || nlen >= sizeof(n->name)) {
		recipe_util_errf(err, errlen,
				 "--node: '%s' needs a NAME of 1-%zu characters before '='", arg,
				 sizeof(n->name) - 1);
		return -1;
	}
	memcpy(n->name, arg, nlen);
	n->name[nlen] = '\0';
	if (!recipe_util_valid_name(n->name, sizeof(n->name))) {
		recipe_util_errf(err, errlen,
				 "--node: invalid name '%s' in '%s' (letters, digits, '.', '_', '-'; starting with a letter or digit)",
				 n->name, arg);
		return -1;
	}
	addr = eq + 1;
	bracketed = util_unbracket(addr, strlen(addr), n->addr, sizeof(n->addr));
	if (bracketed < 0 || !n->addr[0])
		goto bad_addr;
	if (recipe_util_host_family(n->addr, 1, &n->family) != 0)
		goto bad_addr;
	if (bracketed && n->family != RECIPE_FAMILY_IPV6)
		goto bad_addr; /* brackets around something else */
	return 0;
bad_addr:
	recipe_util_errf(err, errlen,
			 "--node: invalid address '%s' in '%s' (an IPv4 or IPv6 address or a DNS name; %s)",
			 eq + 1, arg,
			 strchr(eq + 1, ':') && !strchr(eq + 1, '[') && strchr(eq + 1, '.')
			 ? "no port here: the ports are --pgbouncer-port, --postgres-port, ..."
			 : "e.g. node1=10.0.0.11 or node1=fd00::11");
	return -1;
}

enum recipe_haproxy_opt {
	RECIPE_HAPROXY_OPT_SCENARIO = 1000,
	RECIPE_HAPROXY_OPT_NODE,
	RECIPE_HAPROXY_OPT_AGENT_PORT,
	RECIPE_HAPROXY_OPT_REPLICA_AGENT_PORT,
	RECIPE_HAPROXY_OPT_PGBOUNCER_PORT,
	RECIPE_HAPROXY_OPT_POSTGRES_PORT,
	RECIPE_HAPROXY_OPT_PATRONI_PORT,
	RECIPE_HAPROXY_OPT_BIND,
	RECIPE_HAPROXY_OPT_REPLICA_BIND,
	RECIPE_HAPROXY_OPT_REPLICAS,
	RECIPE_HAPROXY_OPT_FULL,
	RECIPE_HAPROXY_OPT_STATS_SOCKET,
	RECIPE_HAPROXY_OPT_SERVER_STATE_FILE,
	RECIPE_HAPROXY_OPT_NAME,
	RECIPE_HAPROXY_OPT_HELP,
	RECIPE_HAPROXY_OPT_VIA_HAPPAC,
	RECIPE_HAPROXY_OPT_HTTP_PORT,
};

static void recipe_haproxy_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac recipe haproxy --scenario a|b|c --node NAME=ADDR... [OPTION]...\n"
		"Print HAProxy sections that route PostgreSQL clients to the primary of a\n"
		"Patroni cluster, with check timing matched to happac's defaults.\n\n"
		"  --scenario a|b|c          a: HAProxy asks Patroni (httpchk to port 8008), no happac\n"
		"                            b: happac is the agent of every PgBouncer server\n"
		"                            c: PgBouncer (agent-checked) while one is usable,\n"
		"                               else straight to PostgreSQL (Patroni's check)\n"
		"  --node NAME=ADDR          A cluster node, repeatable (1-%d); ADDR is IPv4, IPv6\n"
		"                            or a DNS name (resolved once, when HAProxy starts)\n"
		"  --agent-port PORT         happac's agent port. Default: %d\n"
		"  --pgbouncer-port PORT     Default: %d\n"
		"  --postgres-port PORT      Default: %d (scenario c)\n"
		"  --patroni-port PORT       Patroni REST API. Default: %d (scenarios a, c)\n"
		"  --via-happac              Scenario a with each check sent to happac's HTTP port\n"
		"                            (Patroni's paths from its cache, PgBouncer included)\n"
		"  --http-port PORT          happac's --http-listen port. Default: %d (--via-happac)\n"
		"  --bind ADDR:PORT          Where clients connect for writes. Default: *:%d\n"
		"  --replicas                Add a read-only listener: replicas checked by happac's\n"
		"                            replica profile, the primary when no replica is fit\n"
		"  --replica-agent-port PORT Agent port of the replica profile. Default: %d\n"
		"  --replica-bind ADDR:PORT  Where clients connect for reads. Default: --bind + 1\n"
		"  --name PREFIX             Proxy names PREFIX_write, ... Default: scenario_<x>\n"
		"  --full                    Add global and defaults sections: a whole file\n"
		"  --stats-socket PATH       Admin socket in the global section (needs --full)\n"
		"  --server-state-file PATH  Where the server states are kept across reloads and\n"
		"                            restarts (needs --full). Default: %s\n"
		"  --help                    Print this help and exit\n\n"
		"Check the result with: haproxy -c -f FILE\n",
		RECIPE_MAX_NODES, RECIPE_DEFAULT_AGENT_PORT, RECIPE_DEFAULT_PGBOUNCER_PORT,
		RECIPE_DEFAULT_POSTGRES_PORT, RECIPE_DEFAULT_PATRONI_PORT, RECIPE_DEFAULT_HTTP_PORT,
		RECIPE_DEFAULT_BIND_PORT, RECIPE_DEFAULT_REPLICA_AGENT_PORT,
		RECIPE_HAPROXY_STATE_FILE);
}

/* The ports one node serves in this recipe must differ from each other. */
static int recipe_haproxy_ports_distinct(const struct recipe_haproxy *r, char *err,
					 size_t errlen)
{
	struct {
		const char *opt;
		int port;
		int used;
	} p[] = {
		{ "--pgbouncer-port", r->pgbouncer_port, 1 },
		{ "--patroni-port", r->patroni_port,
		  r->scenario != RECIPE_SCENARIO_B },
		{ "--postgres-port", r->postgres_port, r->scenario == RECIPE_SCENARIO_C },
		{ "--agent-port", r->agent_port, r->scenario != RECIPE_SCENARIO_A },
		{ "--replica-agent-port", r->replica_agent_port,
		  r->replicas && r->scenario != RECIPE_SCENARIO_A },
		{ "--http-port", r->http_port, r->via_happac },
	};
	size_t n = sizeof(p) / sizeof(p[0]);

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (p[i].used && p[j].used && p[i].port == p[j].port) {
				recipe_util_errf(err, errlen,
						 "%s and %s are both %d: each service on a node needs its own port",
						 p[i].opt, p[j].opt, p[i].port);
				return -1;
			}
	return 0;
}

static int recipe_haproxy_check(struct recipe_haproxy *r, int scenario_set,
				int replica_bind_set, char *err, size_t errlen)
{
	if (!scenario_set) {
		recipe_util_errf(err, errlen, "--scenario is required (a, b or c; see --help)");
		return -1;
	}
	if (r->node_count == 0) {
		recipe_util_errf(err, errlen,
				 "at least one --node NAME=ADDR is required (e.g. --node node1=10.0.0.11)");
		return -1;
	}
	for (int i = 0; i < r->node_count; i++)
		for (int j = i + 1; j < r->node_count; j++) {
			if (strcmp(r->nodes[i].name, r->nodes[j].name) == 0) {
				recipe_util_errf(err, errlen, "--node: name '%s' is given twice",
						 r->nodes[i].name);
				return -1;
			}
			if (strcmp(r->nodes[i].addr, r->nodes[j].addr) == 0) {
				recipe_util_errf(err, errlen,
						 "--node: address '%s' is given twice (%s and %s)",
						 r->nodes[i].addr, r->nodes[i].name,
						 r->nodes[j].name);
				return -1;
			}
		}
	if (r->via_happac && r->scenario != RECIPE_SCENARIO_A) {
		recipe_util_errf(err, errlen, "--via-happac is for --scenario a (b and c ask "
				 "happac's agent already)");
		return -1;
	}
	if (r->stats_socket[0] && !r->full) {
		recipe_util_errf(err, errlen,
				 "--stats-socket needs --full (the stats socket belongs to the global section)");
		return -1;
	}
	if (r->server_state_file[0] && !r->full) {
		recipe_util_errf(err, errlen,
				 "--server-state-file needs --full (server-state-file belongs to the global section)");
		return -1;
	}
	if (recipe_haproxy_ports_distinct(r, err, errlen) != 0)
		return -1;
	if (!r->prefix[0])
		snprintf(r->prefix, sizeof(r->prefix), "scenario_%s",
			 recipe_scenario_names[r->scenario]);
	if (!r->replicas)
		return 0;
	if (!replica_bind_set) {
		if (r->bind.port == 65535) {
			recipe_util_errf(err, errlen,
					 "--bind: port 65535 leaves no next port for the read listener: give --replica-bind");
			return -1;
		}
		r->replica_bind = r->bind;
		r->replica_bind.port = r->bind.port + 1;
	} else if (recipe_util_endpoint_equal(&r->bind, &r->replica_bind)) {
		recipe_util_errf(err, errlen,
				 "--replica-bind: the same address and port as --bind");
		return -1;
	}
	return 0;
}

/* The port options: where each one goes in struct recipe_haproxy. */
static const struct {
	int opt;
	const char *name;
	size_t offset;
} recipe_haproxy_ports[] = {
	{ RECIPE_HAPROXY_OPT_AGENT_PORT, "--agent-port",
	  offsetof(struct recipe_haproxy, agent_port) },
	{ RECIPE_HAPROXY_OPT_REPLICA_AGENT_PORT, "--replica-agent-port",
	  offsetof(struct recipe_haproxy, replica_agent_port) },
	{ RECIPE_HAPROXY_OPT_PGBOUNCER_PORT, "--pgbouncer-port",
	  offsetof(struct recipe_haproxy, pgbouncer_port) },
	{ RECIPE_HAPROXY_OPT_POSTGRES_PORT, "--postgres-port",
	  offsetof(struct recipe_haproxy, postgres_port) },
	{ RECIPE_HAPROXY_OPT_PATRONI_PORT, "--patroni-port",
	  offsetof(struct recipe_haproxy, patroni_port) },
	{ RECIPE_HAPROXY_OPT_HTTP_PORT, "--http-port",
	  offsetof(struct recipe_haproxy, http_port) },
};

static int recipe_haproxy_port(struct recipe_haproxy *r, int opt, const char *v, char *err,
			       size_t errlen)
{
	for (size_t i = 0; i < sizeof(recipe_haproxy_ports) / sizeof(recipe_haproxy_ports[0]); i++)
		if (recipe_haproxy_ports[i].opt == opt)
			return recipe_util_parse_port_opt(
				recipe_haproxy_ports[i].name, v,
				(int *)(void *)((char *)r + recipe_haproxy_ports[i].offset), err,
				errlen);
	return -1;
}

/* --name: the prefix of proxy names, PREFIX_write_replicas the longest. */
static int recipe_valid_prefix(const char *s)
{
	return recipe_util_valid_name(s, sizeof(((struct recipe_haproxy *)0)->prefix) - 11);
}

/* The text options: each one's check, what the message says a good value
 * is, and where it goes. */
static const struct {
	int opt;
	const char *name;
	int (*valid)(const char *v);
	const char *rule;
	size_t offset, size;
} recipe_haproxy_texts[] = {
	{ RECIPE_HAPROXY_OPT_STATS_SOCKET, "--stats-socket: invalid path",
	  recipe_util_valid_socket_path, "no quotes, backslashes or control characters",
	  offsetof(struct recipe_haproxy, stats_socket), RECIPE_PATH_MAX },
	{ RECIPE_HAPROXY_OPT_SERVER_STATE_FILE, "--server-state-file: invalid path",
	  recipe_util_valid_state_path,
	  "absolute; no quotes, backslashes, '$', spaces or control characters",
	  offsetof(struct recipe_haproxy, server_state_file), RECIPE_PATH_MAX },
	{ RECIPE_HAPROXY_OPT_NAME, "--name: invalid prefix", recipe_valid_prefix,
	  "letters, digits, '.', '_', '-'; at most 21",
	  offsetof(struct recipe_haproxy, prefix), RECIPE_NAME_MAX },
};
_Static_assert(RECIPE_NAME_MAX - 12 == 21, "--name's message says at most 21");

/* --stats-socket, --server-state-file and --name: checked, then copied. */
static int recipe_haproxy_text(struct recipe_haproxy *r, int opt, const char *v, char *err,
			       size_t errlen)
{
	for (size_t i = 0; i < sizeof(recipe_haproxy_texts) / sizeof(recipe_haproxy_texts[0]);
	     i++) {
		if (recipe_haproxy_texts[i].opt != opt)
			continue;
		if (!recipe_haproxy_texts[i].valid(v)) {
			recipe_util_errf(err, errlen, "%s '%s' (%s)", recipe_haproxy_texts[i].name,
					 v, recipe_haproxy_texts[i].rule);
			return -1;
		}
		snprintf((char *)r + recipe_haproxy_texts[i].offset, recipe_haproxy_texts[i].size,
			 "%s", v);
		return 0;
	}
	return -1;
}

enum recipe_parse recipe_haproxy_parse(struct recipe_haproxy *r, int argc, char **argv,
				       FILE *out, char *err, size_t errlen)
{
	static const struct option longopts[] = {
		{ "scenario", required_argument, NULL, RECIPE_HAPROXY_OPT_SCENARIO },
		{ "node", required_argument, NULL, RECIPE_HAPROXY_OPT_NODE },
		{ "agent-port", required_argument, NULL, RECIPE_HAPROXY_OPT_AGENT_PORT },
		{ "replica-agent-port", required_argument, NULL,
		  RECIPE_HAPROXY_OPT_REPLICA_AGENT_PORT },
		{ "pgbouncer-port", required_argument, NULL, RECIPE_HAPROXY_OPT_PGBOUNCER_PORT },
		{ "postgres-port", required_argument, NULL, RECIPE_HAPROXY_OPT_POSTGRES_PORT },
		{ "patroni-port", required_argument, NULL, RECIPE_HAPROXY_OPT_PATRONI_PORT },
		{ "bind", required_argument, NULL, RECIPE_HAPROXY_OPT_BIND },
		{ "replica-bind", required_argument, NULL, RECIPE_HAPROXY_OPT_REPLICA_BIND },
		{ "replicas", no_argument, NULL, RECIPE_HAPROXY_OPT_REPLICAS },
		{ "full", no_argument, NULL, RECIPE_HAPROXY_OPT_FULL },
		{ "stats-socket", required_argument, NULL, RECIPE_HAPROXY_OPT_STATS_SOCKET },
		{ "server-state-file", required_argument, NULL,
		  RECIPE_HAPROXY_OPT_SERVER_STATE_FILE },
		{ "name", required_argument, NULL, RECIPE_HAPROXY_OPT_NAME },
		{ "help", no_argument, NULL, RECIPE_HAPROXY_OPT_HELP },
		{ "via-happac", no_argument, NULL, RECIPE_HAPROXY_OPT_VIA_HAPPAC },
		{ "http-port", required_argument, NULL, RECIPE_HAPROXY_OPT_HTTP_PORT },
		{ NULL, 0, NULL, 0 },
	};
	int c, scenario_set = 0, replica_bind_set = 0;

	memset(r, 0, sizeof(*r));
	r->agent_port = RECIPE_DEFAULT_AGENT_PORT;
	r->replica_agent_port = RECIPE_DEFAULT_REPLICA_AGENT_PORT;
	r->pgbouncer_port = RECIPE_DEFAULT_PGBOUNCER_PORT;
	r->postgres_port = RECIPE_DEFAULT_POSTGRES_PORT;
	r->patroni_port = RECIPE_DEFAULT_PATRONI_PORT;
	r->http_port = RECIPE_DEFAULT_HTTP_PORT;
	r->bind.family = RECIPE_FAMILY_ANY;
	r->bind.port = RECIPE_DEFAULT_BIND_PORT;

	optind = 0; /* glibc: full re-initialisation; argv[0] is "haproxy" */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		const char *v = optarg;

		switch (c) {
		case RECIPE_HAPROXY_OPT_SCENARIO:
			if (strlen(v) != 1 || !strchr("abcABC", v[0])) {
				recipe_util_errf(err, errlen, "--scenario: '%s' is not a, b or c",
						 v);
				return RECIPE_PARSE_ERROR;
			}
			r->scenario = (enum recipe_scenario)(tolower((unsigned char)v[0]) - 'a');
			scenario_set = 1;
			break;
		case RECIPE_HAPROXY_OPT_NODE:
			if (r->node_count >= RECIPE_MAX_NODES) {
				recipe_util_errf(err, errlen, "--node: more than %d nodes",
						 RECIPE_MAX_NODES);
				return RECIPE_PARSE_ERROR;
			}
			if (recipe_haproxy_parse_node(v, &r->nodes[r->node_count], err, errlen) !=
			    0)
				return RECIPE_PARSE_ERROR;
			r->node_count++;
			break;
		case RECIPE_HAPROXY_OPT_AGENT_PORT:
		case RECIPE_HAPROXY_OPT_REPLICA_AGENT_PORT:
		case RECIPE_HAPROXY_OPT_PGBOUNCER_PORT:
		case RECIPE_HAPROXY_OPT_POSTGRES_PORT:
		case RECIPE_HAPROXY_OPT_PATRONI_PORT:
		case RECIPE_HAPROXY_OPT_HTTP_PORT:
			if (recipe_haproxy_port(r, c, v, err, errlen) != 0)
				return RECIPE_PARSE_ERROR;
			break;
		case RECIPE_HAPROXY_OPT_BIND:
		case RECIPE_HAPROXY_OPT_REPLICA_BIND:
			if (recipe_util_parse_hostport(v, 1,
						       c == RECIPE_HAPROXY_OPT_BIND ?
							       &r->bind :
							       &r->replica_bind) != 0) {
				recipe_util_errf(
					err, errlen,
					"%s: '%s' is not ADDR:PORT (e.g. *:5000, 10.0.0.5:5000, [::]:5000)",
					c == RECIPE_HAPROXY_OPT_BIND ? "--bind" : "--replica-bind",
					v);
				return RECIPE_PARSE_ERROR;
			}
			replica_bind_set |= c == RECIPE_HAPROXY_OPT_REPLICA_BIND;
			break;
		case RECIPE_HAPROXY_OPT_REPLICAS:
			r->replicas = 1;
			break;
		case RECIPE_HAPROXY_OPT_FULL:
			r->full = 1;
			break;
		case RECIPE_HAPROXY_OPT_VIA_HAPPAC:
			r->via_happac = 1;
			break;
		case RECIPE_HAPROXY_OPT_STATS_SOCKET:
		case RECIPE_HAPROXY_OPT_SERVER_STATE_FILE:
		case RECIPE_HAPROXY_OPT_NAME:
			if (recipe_haproxy_text(r, c, v, err, errlen) != 0)
				return RECIPE_PARSE_ERROR;
			break;
		case RECIPE_HAPROXY_OPT_HELP:
			recipe_haproxy_usage(out);
			return RECIPE_PARSE_HELP;
		default: /* ':' or '?' */
			return recipe_util_getopt_error(c, argv, err, errlen);
		}
	}
	if (recipe_util_getopt_leftover(argc, argv, err, errlen))
		return RECIPE_PARSE_ERROR;
	if (recipe_haproxy_check(r, scenario_set, replica_bind_set, err, errlen) != 0)
		return RECIPE_PARSE_ERROR;
	return RECIPE_PARSE_OK;
}

/* ---- recipe haproxy: output */

static void recipe_haproxy_global(const struct recipe_haproxy *r, FILE *out)
{
	fputs("\nglobal\n"
	      "    # stderr reaches journald when HAProxy runs under systemd; use\n"
	      "    # \"log /dev/log local0\" for a syslog daemon instead.\n"
	      "    log stderr format raw local0 notice\n", out);
	if (r->stats_socket[0])
		fprintf(out,
			"    # show stat: status, check_status, agent_status, last_agt (happac's reason)\n"
			"    stats socket \"%s\" mode 660 level admin\n"
			"    stats timeout 10s\n",
			r->stats_socket);
	fprintf(out,
		"    # Server states across reloads and restarts: see the header.\n"
		"    server-state-file \"%s\"\n",
		r->server_state_file[0] ? r->server_state_file : RECIPE_HAPROXY_STATE_FILE);
	fputs("\ndefaults\n"
	      "    mode tcp\n"
	      "    log global\n"
	      "    option tcplog\n"
	      "    option dontlognull\n"
	      "    timeout connect 1s\n"
	      "    timeout client 30m\n"
	      "    timeout server 30m\n"
	      "    timeout check 2s\n", out);
}

/* Frontend side of a proxy: listen or frontend. */
static void recipe_haproxy_front(const struct recipe_endpoint *bind, FILE *out)
{
	char hp[RECIPE_HOST_MAX + 16];

	recipe_util_hostport_str(bind->host, bind->family, bind->port, hp, sizeof(hp));
	fprintf(out, "    bind %s\n", hp);
	fputs("    mode tcp\n"
	      "    # Sessions may idle between transactions; 30 minutes of silence ends one.\n"
	      "    timeout client 30m\n", out);
}

enum recipe_check {
	RECIPE_CHECK_PATRONI, /* httpchk to Patroni's REST API */
	RECIPE_CHECK_AGENT,   /* TCP connect + happac agent */
};

/* A node given by DNS name: resolved when HAProxy starts (init-addr libc), not
 * taken from the state file, whose address would otherwise win ("last"). */
static int recipe_haproxy_has_names(const struct recipe_haproxy *r)
{
	for (int i = 0; i < r->node_count; i++)
		if (r->nodes[i].family == RECIPE_FAMILY_NAME)
			return 1;
	return 0;
}

/* Backend side of a proxy: timeouts, the check, the servers. */
static void recipe_haproxy_back(const struct recipe_haproxy *r, enum recipe_check check,
				const char *endpoint, int agent_port, int server_port,
				int balance_leastconn, FILE *out)
{
	if (balance_leastconn)
		fputs("    # Long-lived pooled sessions: spread by open sessions, not by turns.\n"
		      "    balance leastconn\n", out);
	fputs("    timeout connect 1s\n"
	      "    timeout server 30m\n"
	      "    timeout check 2s\n", out);
	const char *init_addr = recipe_haproxy_has_names(r) ? " init-addr libc" : "";

	fputs("    # Each server starts as saved, and DOWN when not saved (see the header).\n"
	      "    load-server-state-from-file global\n", out);
	if (check == RECIPE_CHECK_PATRONI) {
		fprintf(out,
			"    # %s answers OPTIONS with a bare status line: its cheapest request.\n"
			"    # 200 only when this node is what /%s asks for.\n"
			"    option httpchk OPTIONS /%s\n"
			"    http-check expect status 200\n"
			"    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions%s\n",
			r->via_happac ? "happac, from its cache," : "Patroni", endpoint, endpoint,
			init_addr);
	} else {
		fprintf(out,
			"    # check: TCP connect to PgBouncer. agent-check: happac's verdict on port %d.\n"
			"    default-server inter 1s fall 2 rise 2 agent-check agent-port %d agent-inter %s on-marked-down shutdown-sessions%s\n",
			agent_port, agent_port, OPTIONS_HAPROXY_AGENT_INTER, init_addr);
	}
	fputs("    .if version_atleast(3.1)\n"
	      "    default-server init-state fully-down\n"
	      "    .endif\n", out);
	for (int i = 0; i < r->node_count; i++) {
		const struct recipe_node *n = &r->nodes[i];
		char hp[RECIPE_HOST_MAX + 16];

		recipe_util_hostport_str(n->addr, n->family, server_port, hp, sizeof(hp));
		if (check == RECIPE_CHECK_PATRONI)
			fprintf(out, "    server %s %s check port %d\n", n->name, hp,
				r->via_happac ? r->http_port : r->patroni_port);
		else
			fprintf(out, "    server %s %s check\n", n->name, hp);
	}
}

/* The frontend rules of scenario C, also used for its read side. */
static void recipe_haproxy_c_rules(const struct recipe_haproxy *r, FILE *out)
{
	fprintf(out,
		"    # nbsrv() counts the UP servers: PgBouncer while one is usable.\n"
		"    acl pgbouncer_usable nbsrv(%s_pgbouncer) gt 0\n"
		"    use_backend %s_pgbouncer if pgbouncer_usable\n"
		"    default_backend %s_direct\n",
		r->prefix, r->prefix, r->prefix);
}

static void recipe_haproxy_write(const struct recipe_haproxy *r, FILE *out)
{
	switch (r->scenario) {
	case RECIPE_SCENARIO_A:
		fprintf(out, "\nlisten %s_write\n", r->prefix);
		recipe_haproxy_front(&r->bind, out);
		recipe_haproxy_back(r, RECIPE_CHECK_PATRONI, "primary", 0, r->pgbouncer_port,
				    0, out);
		return;
	case RECIPE_SCENARIO_B:
		fprintf(out, "\nlisten %s_write\n", r->prefix);
		recipe_haproxy_front(&r->bind, out);
		recipe_haproxy_back(r, RECIPE_CHECK_AGENT, NULL, r->agent_port,
				    r->pgbouncer_port, 0, out);
		return;
	case RECIPE_SCENARIO_C:
		fprintf(out, "\nfrontend %s_write\n", r->prefix);
		recipe_haproxy_front(&r->bind, out);
		recipe_haproxy_c_rules(r, out);
		fprintf(out, "\n# PgBouncer on the primary, while its happac says \"up\".\n"
			"backend %s_pgbouncer\n    mode tcp\n", r->prefix);
		recipe_haproxy_back(r, RECIPE_CHECK_AGENT, NULL, r->agent_port,
				    r->pgbouncer_port, 0, out);
		fprintf(out, "\n# PostgreSQL on the primary, without PgBouncer: the fallback.\n"
			"backend %s_direct\n    mode tcp\n", r->prefix);
		recipe_haproxy_back(r, RECIPE_CHECK_PATRONI, "primary", 0, r->postgres_port,
				    0, out);
		return;
	}
	fprintf(stderr, "happac recipe: internal error: scenario %d\n", (int)r->scenario);
	abort();
}

static void recipe_haproxy_read(const struct recipe_haproxy *r, FILE *out)
{
	fprintf(out,
		"\n# Reads: a replica while one is fit, else the same route as writes, so\n"
		"# read traffic still has somewhere to go when every replica is down.\n"
		"frontend %s_read\n",
		r->prefix);
	recipe_haproxy_front(&r->replica_bind, out);
	fprintf(out,
		"    acl replica_usable nbsrv(%s_replica) gt 0\n"
		"    use_backend %s_replica if replica_usable\n",
		r->prefix, r->prefix);
	if (r->scenario == RECIPE_SCENARIO_C)
		recipe_haproxy_c_rules(r, out);
	else
		fprintf(out, "    default_backend %s_write\n", r->prefix);

	fprintf(out, "\nbackend %s_replica\n    mode tcp\n", r->prefix);
	if (r->scenario == RECIPE_SCENARIO_A) {
		fputs("    # Patroni's /replica: a running replica without the noloadbalance tag.\n"
		      "    # Add ?lag=16MB to the path to leave lagging replicas out.\n", out);
		recipe_haproxy_back(r, RECIPE_CHECK_PATRONI, "replica", 0, r->pgbouncer_port,
				    1, out);
	} else {
		recipe_haproxy_back(r, RECIPE_CHECK_AGENT, NULL, r->replica_agent_port,
				    r->pgbouncer_port, 1, out);
	}
}

void recipe_haproxy_render(const struct recipe_haproxy *r, FILE *out)
{
	recipe_haproxy_head(r, out);
	if (r->full)
		recipe_haproxy_global(r, out);
	recipe_haproxy_write(r, out);
	if (r->replicas)
		recipe_haproxy_read(r, out);
}

