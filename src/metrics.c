/* metrics.c - Prometheus text exposition of happac's own counters. */
#include "metrics.h"

#include "lib_curl.h"
#include "lib_pq.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Probe durations: from a loopback answer (~1 ms) to the largest timeout. */
static const double metrics_buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					  0.1, 0.25, 0.5, 0.8, 1, 2.5, 5, 10, 30 };
#define METRICS_NBUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

struct metrics_probe {
	uint64_t buckets[METRICS_NBUCKETS]; /* not cumulative; summed at render */
	uint64_t count;
	double sum_s;
	uint64_t results[PROBE_RESULT_COUNT];
};

struct metrics {
	struct metrics_probe probes[METRICS_MAX_PROBES];
};

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
	free(m);
}

void metrics_probe_observe(struct metrics *m, int i, enum probe_result r,
			   int64_t duration_us)
{
	struct metrics_probe *p;
	double s = (double)duration_us / 1e6;

	if (i < 0 || i >= METRICS_MAX_PROBES)
		return;
	p = &m->probes[i];
	for (size_t b = 0; b < METRICS_NBUCKETS; b++)
		if (s <= metrics_buckets[b]) {
			p->buckets[b]++;
			break;
		}
	p->count++;
	p->sum_s += s;
	p->results[r]++;
}

static void metrics_head(struct evbuffer *out, const char *name, const char *type,
			 const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_label(char *buf, size_t len, const char *value)
{
	size_t used = 0;

	if (len == 0)
		return;
	for (; *value; value++) {
		char c = *value == '\n' ? 'n' : *value;
		size_t n = c != *value || c == '\\' || c == '"' ? 2 : 1;

		if (used + n >= len)
			break;
		if (n == 2)
			buf[used++] = '\\';
		buf[used++] = c;
	}
	buf[used] = '\0';
}

/* The metrics that are one counter of the view each. */
static const struct metrics_counter {
	const char *name, *help;
	size_t offset; /* of a uint64_t in struct metrics_view */
} metrics_counters[] = {
	{ "happac_verdict_transitions_total",
	  "Verdict changes (up to down, down to up, reason changes).",
	  offsetof(struct metrics_view, transitions) },
	{ "happac_connections_denied_total",
	  "Connections closed without a reply: source not in --allow.",
	  offsetof(struct metrics_view, denied) },
	{ "happac_agent_dispatched_total",
	  "Agent checks that named their profile (agent-send).",
	  offsetof(struct metrics_view, dispatched) },
	{ "happac_agent_unknown_profile_total",
	  "Agent checks that named no profile (a misspelt agent-send), answered down.",
	  offsetof(struct metrics_view, unknown_profile) },
	{ "happac_agent_over_cap_total",
	  "Agent connections answered with their listener's profile before naming "
	  "one, because --max-connections were waiting.",
	  offsetof(struct metrics_view, over_cap) },
};

static uint64_t metrics_view_u64(const struct metrics_view *v, size_t offset)
{
	return *(const uint64_t *)(const void *)((const char *)v + offset);
}

static void metrics_render_info(const struct metrics_view *v, struct evbuffer *out)
{
	/* libcurl and libpq are loaded only for HTTPS to Patroni and for
	 * --pg-conninfo: "none" when this happac does not use them. */
	const char *curl = lib_curl_version();
	int pq = lib_pq_version();
	char pqv[16] = "none", curlv[64];

	if (pq)
		snprintf(pqv, sizeof(pqv), "%d.%d", pq / 10000, pq % 10000);
	metrics_label(curlv, sizeof(curlv), curl ? curl : "none");
	metrics_head(out, "happac_build_info", "gauge",
		     "Versions of happac and the libraries it runs with.");
	evbuffer_add_printf(out,
			    "happac_build_info{version=\"%s\",libevent=\"%s\","
			    "libcurl=\"%s\",libpq=\"%s\"} 1\n",
			    HAPPAC_VERSION, event_get_version(), curlv, pqv);

	metrics_head(out, "happac_up", "gauge",
		     "1 when the agent currently answers up, 0 when down.");
	evbuffer_add_printf(out, "happac_up %d\n", v->up ? 1 : 0);

	metrics_head(out, "happac_verdict_since_timestamp_seconds", "gauge",
		     "Unix time of the last verdict change.");
	evbuffer_add_printf(out, "happac_verdict_since_timestamp_seconds %.3f\n",
			    v->verdict_since_s);
}

/* The daemon's own counters; the agent's and the reloads' by label. */
static void metrics_render_counters(const struct metrics_view *v, struct evbuffer *out)
{
	char name[3 * PROFILE_NAME_MAX];

	/* happac_verdict_transitions_total first, then the profiles, as before
	 * the table: scrapers do not care, but diffs of the output do. */
	metrics_head(out, metrics_counters[0].name, "counter", metrics_counters[0].help);
	evbuffer_add_printf(out, "%s %llu\n", metrics_counters[0].name,
			    (unsigned long long)metrics_view_u64(v, metrics_counters[0].offset));

	metrics_head(out, "happac_profile_up", "gauge",
		     "1 when the profile's agent line says up.");
	for (int i = 0; i < v->profile_count && i < PROFILE_MAX; i++) {
		metrics_label(name, sizeof(name), v->profile_names[i]);
		evbuffer_add_printf(out, "happac_profile_up{profile=\"%s\"} %d\n", name,
				    v->profile_up[i]);
	}

	metrics_head(out, "happac_override", "gauge",
		     "Operator override in force: 0 none, 1 drain, 2 maint.");
	evbuffer_add_printf(out, "happac_override %d\n", (int)v->override);
	if (v->pgb_admin) {
		metrics_head(out, "happac_pgbouncer_paused", "gauge",
			     "1 while PgBouncer's admin console says paused or suspended.");
		evbuffer_add_printf(out, "happac_pgbouncer_paused %d\n", v->pgb_paused);
		metrics_head(out, "happac_pgbouncer_paused_seconds", "gauge",
			     "How long the current PgBouncer pause has lasted.");
		evbuffer_add_printf(out, "happac_pgbouncer_paused_seconds %.3f\n",
				    v->pgb_paused_s);
	}

	for (size_t c = 1; c < sizeof(metrics_counters) / sizeof(metrics_counters[0]); c++) {
		const struct metrics_counter *mc = &metrics_counters[c];

		metrics_head(out, mc->name, "counter", mc->help);
		evbuffer_add_printf(out, "%s %llu\n", mc->name,
				    (unsigned long long)metrics_view_u64(v, mc->offset));
	}

	metrics_head(out, "happac_agent_checks_total", "counter",
		     "Agent checks answered, by the verdict given.");
	evbuffer_add_printf(out, "happac_agent_checks_total{verdict=\"up\"} %llu\n",
			    (unsigned long long)v->checks_up);
	evbuffer_add_printf(out, "happac_agent_checks_total{verdict=\"down\"} %llu\n",
			    (unsigned long long)v->checks_down);

	metrics_head(out, "happac_agent_write_failures_total", "counter",
		     "Agent connections closed before the reply was written.");
	evbuffer_add_printf(out, "happac_agent_write_failures_total %llu\n",
			    (unsigned long long)v->checks_failed);

	metrics_head(out, "happac_probe_rounds_total", "counter",
		     "Probe rounds completed.");
	evbuffer_add_printf(out, "happac_probe_rounds_total %llu\n",
			    (unsigned long long)v->rounds);

	metrics_head(out, "happac_config_reloads_total", "counter",
		     "Configuration reloads (SIGHUP), by outcome.");
	evbuffer_add_printf(out, "happac_config_reloads_total{result=\"ok\"} %llu\n",
			    (unsigned long long)v->reloads_ok);
	evbuffer_add_printf(out, "happac_config_reloads_total{result=\"failed\"} %llu\n",
			    (unsigned long long)v->reloads_failed);
}

/* One probe's series: in flight, results, failures, durations. */
static void metrics_render_probes(const struct metrics *m, const struct metrics_view *v,
				  struct evbuffer *out)
{
	char name[METRICS_MAX_PROBES][64];
	int n = v->probe_count < METRICS_MAX_PROBES ? v->probe_count : METRICS_MAX_PROBES;

	for (int i = 0; i < n; i++)
		metrics_label(name[i], sizeof(name[i]), v->probe_names[i]);

	metrics_head(out, "happac_probe_in_flight", "gauge",
		     "1 while the probe's attempt is running.");
	for (int i = 0; i < n; i++)
		evbuffer_add_printf(out, "happac_probe_in_flight{probe=\"%s\"} %d\n",
				    name[i], v->probe_in_flight[i]);

	metrics_head(out, "happac_probe_results_total", "counter",
		     "Finished probe attempts, by result.");
	for (int i = 0; i < n; i++)
		for (int r = 0; r < PROBE_RESULT_COUNT; r++)
			evbuffer_add_printf(out,
					    "happac_probe_results_total{probe=\"%s\",result=\"%s\"} %llu\n",
					    name[i], probe_result_names[r],
					    (unsigned long long)m->probes[i].results[r]);

	metrics_head(out, "happac_probe_failures_total", "counter",
		     "Failed probe attempts, by reason.");
	for (int i = 0; i < n; i++)
		for (int r = 0; r < PROBE_RESULT_COUNT; r++)
			if (r != PROBE_OK)
				evbuffer_add_printf(out,
						    "happac_probe_failures_total{probe=\"%s\",reason=\"%s\"} %llu\n",
						    name[i], probe_result_names[r],
						    (unsigned long long)m->probes[i].results[r]);

	metrics_head(out, "happac_probe_duration_seconds", "histogram",
		     "Duration of probe attempts, timeouts included.");
	for (int i = 0; i < n; i++) {
		const struct metrics_probe *p = &m->probes[i];
		uint64_t cum = 0;

		for (size_t b = 0; b < METRICS_NBUCKETS; b++) {
			cum += p->buckets[b];
			evbuffer_add_printf(out,
					    "happac_probe_duration_seconds_bucket{probe=\"%s\",le=\"%g\"} %llu\n",
					    name[i], metrics_buckets[b], (unsigned long long)cum);
		}
		evbuffer_add_printf(out,
				    "happac_probe_duration_seconds_bucket{probe=\"%s\",le=\"+Inf\"} %llu\n"
				    "happac_probe_duration_seconds_sum{probe=\"%s\"} %.6f\n"
				    "happac_probe_duration_seconds_count{probe=\"%s\"} %llu\n",
				    name[i], (unsigned long long)p->count, name[i], p->sum_s,
				    name[i], (unsigned long long)p->count);
	}
}

void metrics_render(const struct metrics *m, const struct metrics_view *v,
		    struct evbuffer *out)
{
	metrics_render_info(v, out);
	metrics_render_counters(v, out);
	metrics_render_probes(m, v, out);
}
