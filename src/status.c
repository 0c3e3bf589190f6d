/* status.c - /status as JSON: verdict, reason, since, probes, config. */
#include "status.h"
#include "util.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

void status_json_string(struct evbuffer *out, const char *s)
{
	char small[512], *big;
	size_t n = util_json_quote(small, sizeof(small), s);

	if (n < sizeof(small)) {
		evbuffer_add(out, small, n);
		return;
	}
	big = malloc(n + 1);
	if (!big)
		return;
	util_json_quote(big, n + 1, s);
	evbuffer_add(out, big, n);
	free(big);
}

static void status_time(struct evbuffer *out, double t)
{
	char buf[UTIL_ISO8601_SIZE];

	util_iso8601(t, buf, sizeof(buf));
	evbuffer_add_printf(out, "\"%s\"", buf);
}

struct status_config {
	struct evbuffer *out;
	const char *last;   /* previous option name, to group repeated ones */
	int first;
	int in_list;
};

/* Options come one value at a time; a repeated name becomes a JSON array. */
static void status_config_one(void *arg, const char *name, const char *value)
{
	struct status_config *c = arg;

	if (c->last && !strcmp(c->last, name)) {
		evbuffer_add_printf(c->out, "%s", ",");
	} else {
		if (c->in_list)
			evbuffer_add_printf(c->out, "%s", "]");
		c->in_list = options_print_is_list(name);
		evbuffer_add_printf(c->out, "%s\n    ", c->first ? "" : ",");
		status_json_string(c->out, name);
		evbuffer_add_printf(c->out, "%s", c->in_list ? ":[" : ":");
	}
	c->first = 0;
	c->last = name;
	if (!value)
		return; /* empty list */
	status_json_string(c->out, value);
}

/* What Patroni's JSON says of the cluster (null before it has said it, or
 * when happac does not ask for it), and whether this replica streams. */
static void status_cluster(const struct replica_watch *w, struct evbuffer *out)
{
	const char *known = w && w->known ? "" : "null";

	evbuffer_add_printf(out, "\n  \"cluster\": {\"paused\": %s, \"failsafe_active\": %s, "
				 "\"streaming\": ",
			    *known ? known : w->paused ? "true" : "false",
			    *known ? known : w->failsafe ? "true" : "false");
	status_json_string(out, replica_streaming_names[w ? w->facts.streaming
							  : REPLICA_STREAMING_NA]);
	evbuffer_add_printf(out, "%s", ", \"streaming_evidence\": ");
	status_json_string(out, w ? w->facts.why : "");
	evbuffer_add_printf(out, "%s", "},");
}

void status_render(const struct status_view *v, struct evbuffer *out)
{
	const char *hash = strchr(v->line, '#');
	char reason[128] = "";
	struct status_config cfg = { out, NULL, 1, 0 };

	if (hash) {
		snprintf(reason, sizeof(reason), "%s", hash + 1);
		reason[strcspn(reason, "\n")] = '\0';
	}
	evbuffer_add_printf(out, "{\n  \"verdict\": \"%s\",\n  \"passing\": %s,\n"
			    "  \"reason\": ", v->up ? "up" : "down", v->passing ? "true" : "false");
	status_json_string(out, reason);
	evbuffer_add_printf(out, "%s", ",\n  \"line\": ");
	status_json_string(out, v->line);
	evbuffer_add_printf(out, "%s", ",\n  \"since\": ");
	status_time(out, v->since_s);
	evbuffer_add_printf(out, ",\n  \"since_seconds_ago\": %.3f,\n  \"version\": \"%s\",\n"
				 "  \"probes\": [",
			    v->now_s - v->since_s, HAPPAC_VERSION);
	for (int i = 0; i < v->probe_count; i++) {
		const struct status_probe *p = &v->probes[i];
		const struct probe_report *r = p->report;

		evbuffer_add_printf(out, "%s\n    {\"name\": ", i ? "," : "");
		status_json_string(out, p->name);
		evbuffer_add_printf(out, "%s", ", \"target\": ");
		status_json_string(out, p->target);
		evbuffer_add_printf(out, ", \"in_flight\": %s", p->in_flight ? "true" : "false");
		if (!r) {
			evbuffer_add_printf(out, "%s", ", \"result\": null}");
			continue;
		}
		evbuffer_add_printf(out, "%s", ", \"result\": ");
		status_json_string(out, probe_result_names[r->result]);
		evbuffer_add_printf(out, ", \"ok\": %s, \"duration_ms\": %.3f, \"age_ms\": %.3f",
				    r->result == PROBE_OK ? "true" : "false",
				    (double)r->duration_us / 1000.0,
				    (double)(v->now_us - r->finished_us) / 1000.0);
		if (r->http_status)
			evbuffer_add_printf(out, ", \"http_status\": %d", r->http_status);
		evbuffer_add_printf(out, "%s", ", \"error\": ");
		if (r->result == PROBE_OK)
			evbuffer_add_printf(out, "%s", "null");
		else
			status_json_string(out, r->detail[0] ? r->detail
							     : probe_result_names[r->result]);
		evbuffer_add_printf(out, "%s", "}");
	}
	evbuffer_add_printf(out, "%s", "\n  ],\n  \"profiles\": [");
	for (int i = 0; i < v->profile_count; i++) {
		const struct status_profile *p = &v->profiles[i];

		evbuffer_add_printf(out, "%s\n    {\"name\": ", i ? "," : "");
		status_json_string(out, p->name);
		evbuffer_add_printf(out, ", \"rule\": ");
		status_json_string(out, p->rule);
		evbuffer_add_printf(out, ", \"wrong_role\": ");
		status_json_string(out, p->wrong_role);
		evbuffer_add_printf(out, ", \"port\": %d, \"passing\": %s, \"line\": ",
				    p->port, p->passing ? "true" : "false");
		status_json_string(out, p->line);
		evbuffer_add_printf(out, ", \"since\": ");
		status_time(out, p->since_s);
		evbuffer_add_printf(out, "}");
	}
	evbuffer_add_printf(out, "\n  ],\n  \"override\": %s,",
			    v->override_json ? v->override_json : "null");
	evbuffer_add_printf(out, "%s", "\n  \"pgbouncer_admin\": ");
	if (v->pgb_admin_state) {
		evbuffer_add_printf(out, "%s", "{\"state\": ");
		status_json_string(out, v->pgb_admin_state);
		evbuffer_add_printf(out, ", \"paused_seconds\": %.3f},", v->pgb_paused_s);
	} else {
		evbuffer_add_printf(out, "%s", "null,");
	}
	status_cluster(v->cluster, out);
	evbuffer_add_printf(out, "\n  \"hold\": %s,", v->hold_json ? v->hold_json : "null");
	evbuffer_add_printf(out, "%s", "\n  \"config\": {");
	options_print_each(v->opts, status_config_one, &cfg);
	if (cfg.in_list)
		evbuffer_add_printf(out, "%s", "]");
	evbuffer_add_printf(out, "%s", "\n  }\n}\n");
}
