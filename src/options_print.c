/* options_print.c - the settings shown: --help, --check-config's dump (which
 * loads back as a config file), /status's list and the start-up log line. */
#include "options_int.h"

#include <stdio.h>
#include <string.h>

void options_print_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac -h HOST -r PORT [OPTION]...\n"
		"       happac check [--host H] [--port P] [--timeout T]\n"
		"HAProxy agent-check for Patroni + PgBouncer nodes: answers 'up' when this\n"
		"node is what the Patroni endpoint asks for AND its PgBouncer answers,\n"
		"'down #reason' otherwise.\n\nOptions:\n");
	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];
		char left[64];

		if (d->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", d->short_name,
				 d->name, d->arg ? "=" : "", d->arg ? d->arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", d->name,
				 d->arg ? "=" : "", d->arg ? d->arg : "");
		fprintf(out, "  %-34s %s", left, d->help);
		if (d->def && *d->def)
			fprintf(out, ". Default: %s", d->def);
		if (d->kind == OPTIONS_KIND_DURATION)
			fprintf(out, " (%ldms-%ldms)", d->min, d->max);
		fputc('\n', out);
	}
	fprintf(out,
		"      %-32s %s\n      %-32s %s\n\n",
		"--help", "Print this help and exit",
		"-V, --version", "Print the versions of happac and its libraries");
	fprintf(out,
		"Every option can also be set as HAPPAC_<OPTION> in the environment\n"
		"(e.g. HAPPAC_PATRONI_HOST) or as 'option = value' in the config file;\n"
		"the command line wins over the environment, which wins over the file.\n"
		"Durations: 800ms, 1s, 1.5s, 2m; a bare number is milliseconds.\n"
		"Replies: 'up', or 'down #reason' (see the README and happac(8)).\n"
		"Exit status: 0 after SIGTERM/SIGINT or --help, 1 on a runtime failure\n"
		"(e.g. the port is taken), 2 on a bad command line.\n");
}

void options_print_describe(const struct options *o, char *buf, size_t len)
{
	char listen[OPTIONS_MAX_LIST * 48] = "";
	char pg[OPTIONS_CONNINFO_MAX + 16];
	size_t used = 0;
	int unix_socket;

	/* Where the probe really goes: a conninfo's host and port win. */
	options_conninfo_target(o, pg, sizeof(pg), &unix_socket);
	for (int i = 0; i < o->listen.count && used < sizeof(listen); i++) {
		int n = snprintf(listen + used, sizeof(listen) - used, "%s%s",
				 i ? "," : "", o->listen.items[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	snprintf(buf, len,
		 "patroni=%s://%s:%d/%s pgbouncer=%s listen=%s port=%d http=%s "
		 "interval=%dms timeout=%dms stale-after=%dms%s%s%s%s",
		 o->patroni_scheme, o->patroni_host, o->patroni_port, o->patroni_endpoint,
		 pg, o->listen.count ? listen : "*",
		 o->port, o->http_listen ? o->http_listen : "off", o->interval_ms,
		 o->timeout_ms, options_stale_after_ms(o),
		 o->config_path ? " config=" : "", o->config_path ? o->config_path : "",
		 o->pg_conninfo ? " pgbouncer-check=query" : " pgbouncer-check=ping",
		 o->allow.count ? " allow-list=on" : "");
}

static void options_render(const struct options *o, const struct options_def *d,
			   char *buf, size_t len)
{
	const char *field = (const char *)o + d->offset;
	const char *const *str = (const char *const *)(const void *)field;
	const int *num = (const int *)(const void *)field;

	buf[0] = '\0';
	switch (d->kind) {
	case OPTIONS_KIND_HOST:
	case OPTIONS_KIND_ENDPOINT:
	case OPTIONS_KIND_PATH:
	case OPTIONS_KIND_HOSTPORT:
	case OPTIONS_KIND_SCHEME:
	case OPTIONS_KIND_FILE:
		snprintf(buf, len, "%s", *str ? *str : "");
		break;
	case OPTIONS_KIND_CONNINFO:
		options_conninfo_redacted(*str, buf, len);
		break;
	case OPTIONS_KIND_PORT:
		if (*num)
			snprintf(buf, len, "%d", *num);
		else if (d->offset == OFF(peer_agent_port)) /* its default: --port */
			snprintf(buf, len, "%d", o->port);
		break;
	case OPTIONS_KIND_DURATION:
		if (d->offset == OFF(stale_after_ms))
			snprintf(buf, len, "%dms", options_stale_after_ms(o));
		else
			snprintf(buf, len, "%dms", *num);
		break;
	case OPTIONS_KIND_FLAG:
		snprintf(buf, len, "%s", *num ? "true" : "false");
		break;
	case OPTIONS_KIND_ADDRESS:
	case OPTIONS_KIND_CIDR:
	case OPTIONS_KIND_PROFILE:
	case OPTIONS_KIND_DIR:
		break; /* repeatable: rendered by the caller, one per value */
	case OPTIONS_KIND_COUNT:
		snprintf(buf, len, "%d", *num);
		break;
	}
}

void options_print_each(const struct options *o,
		  void (*fn)(void *arg, const char *name, const char *value),
		  void *arg)
{
	char value[4 * OPTIONS_CONNINFO_MAX];

	for (size_t i = 0; i < OPTIONS_COUNT; i++) {
		const struct options_def *d = &options_table[i];

		if (d->where == OPTIONS_CLI_ONLY)
			continue;
		if (options_kind_is_list(d->kind)) {
			const struct options_list *l = (const struct options_list *)(const void *)
				((const char *)o + d->offset);

			for (int j = 0; j < l->count; j++)
				fn(arg, d->name, l->items[j]);
			if (l->count == 0)
				fn(arg, d->name, NULL); /* an empty list */
			continue;
		}
		options_render(o, d, value, sizeof(value));
		fn(arg, d->name, value);
	}
}

static void options_dump_one(void *arg, const char *name, const char *value)
{
	FILE *out = arg;

	if (!value) {
		fprintf(out, "# %s: none\n", name); /* an empty list */
		return;
	}
	/* The file's own name cannot be set in it. */
	if (!strcmp(name, "config")) {
		if (*value)
			fprintf(out, "# config = %s\n", value);
		return;
	}
	/* Quoted when the reader would otherwise lose something: it trims
	 * spaces, stops at '#'/';' comments only at line start but strips one
	 * pair of quotes, and an empty value must stay a value. Values never
	 * hold control characters (refused when set). */
	if (!*value || strchr(value, ' ') || strchr(value, '#') || strchr(value, ';') ||
	    value[0] == '"' || value[strlen(value) - 1] == '"')
		fprintf(out, "%s = \"%s\"\n", name, value);
	else
		fprintf(out, "%s = %s\n", name, value);
}

void options_print_dump(const struct options *o, FILE *out)
{
	fprintf(out, "[happac]\n");
	options_print_each(o, options_dump_one, out);
	for (int i = 0; i < o->profile_def_count; i++) {
		const struct profile *p = &o->profile_defs[i];

		fprintf(out, "\n[profile %s]\nrule = %s\nwrong-role = %s\n", p->name,
			profile_rule_names[p->rule], profile_wrong_names[p->wrong]);
		if (p->lag_cut)
			fprintf(out, "lag-full = %lld\nlag-cut = %lld\n",
				(long long)p->lag_full, (long long)p->lag_cut);
		if (p->lag_cut_ms)
			fprintf(out, "lag-full-time = %lldms\nlag-cut-time = %lldms\n",
				(long long)p->lag_full_ms, (long long)p->lag_cut_ms);
		if (p->lag_hold_set)
			fprintf(out, "lag-hold = %lldms\n", (long long)p->lag_hold_ms);
		if (profile_rule_streams(p->rule))
			fprintf(out, "streaming = %s\n", profile_streaming_names[p->streaming]);
		if (p->port)
			fprintf(out, "port = %d\n", p->port);
	}
	/* What the agent will listen on, as the settings above combine. */
	fprintf(out, "\n# agent ports, on %s:\n", o->listen.count ? "each listen address"
								 : "all addresses");
	fprintf(out, "#   %d answers %s\n", o->port, o->profiles[0].name);
	for (int i = 0; i < o->profile_count; i++)
		if (o->profiles[i].port)
			fprintf(out, "#   %d answers %s\n", o->profiles[i].port,
				o->profiles[i].name);
	if (o->profile_count > 1)
		fprintf(out, "#   (each one answers instead the profile an agent-send line "
			     "names)\n");
}

int options_print_is_list(const char *name)
{
	const struct options_def *d = options_find(name);

	return d && options_kind_is_list(d->kind);
}
