/* recipe_haproxy_head.c - the comment header of `happac recipe haproxy`:
 * what the scenario does, the command that prints it again, and why each
 * timing and state setting is what it is. */
#include "options.h"
#include "recipe_util.h"
#include "util.h"

#include <string.h>

/* One --bind value as the shell takes it back: '*' quoted against globbing. */
static void recipe_haproxy_bind_arg(const char *opt, const struct recipe_endpoint *e,
				    FILE *out)
{
	char hp[RECIPE_HOST_MAX + 16];

	recipe_util_hostport_str(e->host, e->family, e->port, hp, sizeof(hp));
	fprintf(out, e->family == RECIPE_FAMILY_ANY ? " %s '%s'" : " %s %s", opt, hp);
}

/* The command that prints this recipe again, defaults left out. */
static void recipe_haproxy_command(const struct recipe_haproxy *r, FILE *out)
{
	char prefix[RECIPE_NAME_MAX];

	fprintf(out, "#   happac recipe haproxy --scenario %c", 'a' + (int)r->scenario);
	for (int i = 0; i < r->node_count; i++)
		fprintf(out, r->nodes[i].family == RECIPE_FAMILY_IPV6 ? " --node %s=[%s]"
								      : " --node %s=%s",
			r->nodes[i].name, r->nodes[i].addr);
	if (r->agent_port != RECIPE_DEFAULT_AGENT_PORT)
		fprintf(out, " --agent-port %d", r->agent_port);
	if (r->pgbouncer_port != RECIPE_DEFAULT_PGBOUNCER_PORT)
		fprintf(out, " --pgbouncer-port %d", r->pgbouncer_port);
	if (r->postgres_port != RECIPE_DEFAULT_POSTGRES_PORT)
		fprintf(out, " --postgres-port %d", r->postgres_port);
	if (r->patroni_port != RECIPE_DEFAULT_PATRONI_PORT)
		fprintf(out, " --patroni-port %d", r->patroni_port);
	if (r->via_happac)
		fputs(" --via-happac", out);
	if (r->via_happac && r->http_port != RECIPE_DEFAULT_HTTP_PORT)
		fprintf(out, " --http-port %d", r->http_port);
	if (r->bind.family != RECIPE_FAMILY_ANY || r->bind.port != RECIPE_DEFAULT_BIND_PORT)
		recipe_haproxy_bind_arg("--bind", &r->bind, out);
	if (r->replicas) {
		struct recipe_endpoint next = r->bind;

		fputs(" --replicas", out);
		if (r->replica_agent_port != RECIPE_DEFAULT_REPLICA_AGENT_PORT)
			fprintf(out, " --replica-agent-port %d", r->replica_agent_port);
		next.port = r->bind.port + 1;
		if (!recipe_util_endpoint_equal(&next, &r->replica_bind))
			recipe_haproxy_bind_arg("--replica-bind", &r->replica_bind, out);
	}
	snprintf(prefix, sizeof(prefix), "scenario_%c", 'a' + (int)r->scenario);
	if (strcmp(r->prefix, prefix) != 0)
		fprintf(out, " --name %s", r->prefix);
	if (r->full)
		fputs(" --full", out);
	if (r->stats_socket[0])
		fprintf(out, " --stats-socket '%s'", r->stats_socket);
	if (r->server_state_file[0])
		fprintf(out, " --server-state-file '%s'", r->server_state_file);
	fputc('\n', out);
}

/* Which kinds of check this recipe's backends use. */
static int recipe_haproxy_uses_patroni(const struct recipe_haproxy *r)
{
	return r->scenario != RECIPE_SCENARIO_B;
}

static int recipe_haproxy_uses_agent(const struct recipe_haproxy *r)
{
	return r->scenario != RECIPE_SCENARIO_A;
}

static void recipe_haproxy_rise_text(const struct recipe_haproxy *r, FILE *out)
{
	if (recipe_haproxy_uses_patroni(r))
		fputs("#   rise 1 (Patroni) one passing check brings a server back: a 200 from\n"
		      "#                    Patroni is authoritative, and a second one would only\n"
		      "#                    add a second to every fail-over.\n", out);
	if (recipe_haproxy_uses_agent(r))
		fputs("#   rise 2 (agent)   the regular check is a TCP connect, which a replica's\n"
		      "#                    PgBouncer passes too. A server that starts DOWN (below)\n"
		      "#                    needs two, and its agent answers in between: with one,\n"
		      "#                    a replica is UP from its first TCP check to its agent's\n"
		      "#                    first \"down\". A fail-over is not slower (the TCP check\n"
		      "#                    passes all along, and happac's \"up\" acts at once); a\n"
		      "#                    PgBouncer that comes back takes one second more.\n",
		      out);
}

/* Why the servers start DOWN, and the systemd lines that keep the state file. */
static void recipe_haproxy_state_text(const struct recipe_haproxy *r, FILE *out)
{
	const char *sock = r->stats_socket[0] ? r->stats_socket : RECIPE_HAPROXY_STATS_SOCKET;
	const char *file = r->server_state_file[0] ? r->server_state_file
						   : RECIPE_HAPROXY_STATE_FILE;
	char sd_sock[2 * RECIPE_PATH_MAX], save[7 * RECIPE_PATH_MAX + 160];
	size_t n = 0;

	/* The socket path may use ${VAR-default} as HAProxy expands it: "$$" is
	 * systemd's "$", and the shell then expands it the same way (inside
	 * double quotes, which the path cannot contain). */
	for (const char *p = sock; *p && n + 2 < sizeof(sd_sock); p++) {
		if (*p == '$')
			sd_sock[n++] = '$';
		sd_sock[n++] = *p;
	}
	sd_sock[n] = '\0';
	/* A dump that fails or is not a state file (its first line is the
	 * format version, 1) must not leave old states to be loaded. */
	snprintf(save, sizeof(save),
		 "echo \"show servers state\" | socat stdio UNIX-CONNECT:\"%s\" > %s.tmp"
		 " && grep -qx 1 %s.tmp && mv %s.tmp %s"
		 " || sed -i \"/^#/!s/[^ ][^ ]*/0/6\" %s",
		 sd_sock, file, file, file, file, file);

	fprintf(out,
		"#\n"
		"# Restarts. HAProxy takes a server for UP until its first check: right after\n"
		"# a start, writes could reach a replica. So servers start DOWN, or after a\n"
		"# reload as they were:\n"
		"#   load-server-state-from-file global\n"
		"#                    each server starts in the state saved in the file that\n"
		"#                    the global section names (%s):\n"
		"#                      server-state-file %s\n"
		"#   init-state fully-down (HAProxy 3.1 and later, hence the .if)\n"
		"#                    a server that is not in the file starts DOWN too, where\n"
		"#                    HAProxy applies it at start: 3.4 (3.1 to 3.3 only when\n"
		"#                    a server leaves MAINT, unless a 3.2/3.3 update has the\n"
		"#                    fix). HAProxy 2.6 and 3.0 start such a server UP: all\n"
		"#                    of them on the very first start, before the file exists.\n"
		"# Save the states before a reload (the new process loads them: no server\n"
		"# changes state) and before a stop; mark every server DOWN before a start\n"
		"# (saved states may be old by then). With Debian's haproxy.service, add with\n"
		"# `systemctl edit haproxy` (socat is its own package):\n"
		"#   [Service]\n"
		"#   ExecStartPre=-/bin/sed -i '/^#/!s/[^ ][^ ]*/0/6' %s\n"
		"#   ExecReload=\n"
		"#   ExecReload=/usr/sbin/haproxy -Ws -f $CONFIG -c -q $EXTRAOPTS\n"
		"#   ExecReload=-/bin/sh -c '%s'\n"
		"#   ExecReload=/bin/kill -USR2 $MAINPID\n"
		"#   ExecStop=-/bin/sh -c '%s'\n"
		"# (field 6 is srv_op_state, 0 is DOWN; a failed save marks every server DOWN.)\n",
		r->full ? "--full writes it" : "add it to yours", file, file, save, save);
}

void recipe_haproxy_head(const struct recipe_haproxy *r, FILE *out)
{
	static const char *const what[] = {
		[RECIPE_SCENARIO_A] =
			"# Scenario A: HAProxy asks Patroni directly; no happac. The check goes to\n"
			"# Patroni's REST API, the traffic to PgBouncer. Known gap: a dead or frozen\n"
			"# PgBouncer on the primary stays UP, because Patroni is fine. Scenario B\n"
			"# closes it.\n",
		[RECIPE_SCENARIO_B] =
			"# Scenario B: happac on each node is the agent. It answers \"up\" only when\n"
			"# Patroni says this node is the primary AND its PgBouncer answers, else\n"
			"# \"down #reason\", which marks the server DOWN at once (the reason shows as\n"
			"# last_agt in `show stat`). The regular check is a TCP connect to PgBouncer.\n",
		[RECIPE_SCENARIO_C] =
			"# Scenario C: writes go through PgBouncer on the primary while its happac says\n"
			"# \"up\"; when no PgBouncer is usable they go straight to the Patroni-managed\n"
			"# PostgreSQL on the primary, chosen by Patroni's own check: losing PgBouncer\n"
			"# costs connection pooling, not availability.\n",
	};

	fprintf(out, "# HAProxy configuration for a Patroni cluster, written by happac %s.\n",
		HAPPAC_VERSION);
	if (r->via_happac)
		fprintf(out,
			"# Scenario A via happac: the same checks as Patroni's Scenario A, sent to\n"
			"# happac's HTTP port %d instead of Patroni's. happac answers Patroni's paths\n"
			"# from its cache (one Patroni request per second, however many HAProxies\n"
			"# check) and says 503 also when this node's PgBouncer is dead, frozen or\n"
			"# reaches the wrong role. Run happac on every node with\n"
			"#   --http-listen NODE_ADDR:%d --allow HAPROXY_ADDR...\n",
			r->http_port, r->http_port);
	else
		fputs(what[r->scenario], out);
	fputs("#\n# Print it again (or for other nodes and ports) with:\n", out);
	recipe_haproxy_command(r, out);
	fputs("# Check it with: haproxy -c -f FILE\n#\n", out);
	fputs("# Timing, matched to happac's defaults (a probe round every 1s, each probe\n"
	      "# with an 800ms deadline: happac's verdict follows a node within 1.8s):\n"
	      "#   agent-inter " OPTIONS_HAPROXY_AGENT_INTER
	      " HAProxy asks each agent four times a second. happac answers\n"
	      "#                    from its cache at once (~20us), so asking often costs\n"
	      "#                    Patroni nothing, and a switchover reaches HAProxy within\n"
	      "#                    a quarter second of happac's verdict. An agent's \"down\"\n"
	      "#                    acts at once: rise/fall do not apply.\n"
	      "#   inter 1s fall 2  a regular check must fail twice in a row before the\n"
	      "#                    server goes DOWN: one lost packet, or one moment of\n"
	      "#                    Patroni's 5-thread REST server being busy, does not\n"
	      "#                    cut every session.\n", out);
	recipe_haproxy_rise_text(r, out);
	fputs("#   timeout check 2s bounds a check's reply after its connect (bounded by\n"
	      "#                    'timeout connect'); a check that times out has failed.\n"
	      "#   on-marked-down shutdown-sessions\n"
	      "#                    sessions on a server that goes DOWN are cut at once, so\n"
	      "#                    clients reconnect to the new primary instead of writing on\n"
	      "#                    into a demoted or split-brain node.\n"
	      "# Every proxy sets its own mode and timeouts, so these sections can be added\n"
	      "# to an existing configuration as they are.\n", out);
	recipe_haproxy_state_text(r, out);
	if (r->replicas && r->scenario != RECIPE_SCENARIO_A)
		fprintf(out,
			"#\n# --replicas: happac on every node also serves its replica profile on\n"
			"# port %d (\"up\" only on a running replica whose PgBouncer answers):\n"
			"#   happac ... --profile replica:%d\n"
			"# (with the unit: HAPPAC_PROFILE=\"replica:%d\" in /etc/haproxy/happac.env).\n",
			r->replica_agent_port, r->replica_agent_port, r->replica_agent_port);
}
