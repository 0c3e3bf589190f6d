/* metrics.c - Prometheus text exposition of happac's own counters. */
#include "metrics.h"

#include "lib_curl.h"
#include "lib_pq.h"

#include <event2/buffer.h>
#include <event2/event.h>
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

void metrics_render(const struct metrics *m, const struct metrics_view *v,
		    struct evbuffer *out)
{
	/* libcurl and libpq are loaded only for HTTPS to Patroni and for
	 * --pg-conninfo: "none" when this happac does not use them. */
	const char *curl = lib_curl_version();
	int pq = lib_pq_version();
	char pqv[16] = "none";

	if (pq)
		snprintf(pqv, sizeof(pqv), "%d.%d", pq / 10000, pq % 10000);
	metrics_head(out, "happac_build_info", "gauge",
		     "Versions of happac and the libraries it runs with.");
	evbuffer_add_printf(out,
			    "happac_build_info{version=\"%s\",libevent=\"%s\","
			    "libcurl=\"%s\",libpq=\"%s\"} 1\n",
			    HAPPAC_VERSION, event_get_version(), curl ? curl : "none", pqv);

	metrics_head(out, "happac_up", "gauge",
		     "1 when the agent currently answers up, 0 when down.");
	evbuffer_add_printf(out, "happac_up %d\n", v->up ? 1 : 0);

	metrics_head(out, "happac_verdict_since_timestamp_seconds", "gauge",
		     "Unix time of the last verdict change.");
	evbuffer_add_printf(out, "happac_verdict_since_timestamp_seconds %.3f\n",
			    v->verdict_since_s);

	metrics_head(out, "happac_verdict_transitions_total", "counter",
		     "Verdict changes (up to down, down to up, reason changes).");
	evbuffer_add_printf(out, "happac_verdict_transitions_total %llu\n",
			    (unsigned long long)v->transitions);

	metrics_head(out, "happac_profile_up", "gauge",
		     "1 when the profile's agent line says up.");
	for (int i = 0; i < v->profile_count; i++)
		evbuffer_add_printf(out, "happac_profile_up{profile=\"%s\"} %d\n",
				    v->profile_names[i], v->profile_up[i]);

	metrics_head(out, "happac_override", "gauge",
		     "Operator override in force: 0 none, 1 drain, 2 maint.");
	evbuffer_add_printf(out, "happac_override %d\n", v->override);

	metrics_head(out, "happac_connections_denied_total", "counter",
		     "Connections closed without a reply: source not in --allow.");
	evbuffer_add_printf(out, "happac_connections_denied_total %llu\n",
			    (unsigned long long)v->denied);

	metrics_head(out, "happac_agent_dispatched_total", "counter",
		     "Agent checks that named their profile (agent-send).");
	evbuffer_add_printf(out, "happac_agent_dispatched_total %llu\n",
			    (unsigned long long)v->dispatched);

	metrics_head(out, "happac_agent_unknown_profile_total", "counter",
		     "Agent checks that named no profile (a misspelt agent-send), "
		     "answered down.");
	evbuffer_add_printf(out, "happac_agent_unknown_profile_total %llu\n",
			    (unsigned long long)v->unknown_profile);

	metrics_head(out, "happac_agent_over_cap_total", "counter",
		     "Agent connections answered with their listener's profile before "
		     "naming one, because --max-connections were waiting.");
	evbuffer_add_printf(out, "happac_agent_over_cap_total %llu\n",
			    (unsigned long long)v->over_cap);

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

	metrics_head(out, "happac_probe_in_flight", "gauge",
		     "1 while the probe's attempt is running.");
	for (int i = 0; i < v->probe_count; i++)
		evbuffer_add_printf(out, "happac_probe_in_flight{probe=\"%s\"} %d\n",
				    v->probe_names[i], v->probe_in_flight[i]);

	metrics_head(out, "happac_probe_results_total", "counter",
		     "Finished probe attempts, by result.");
	for (int i = 0; i < v->probe_count; i++)
		for (int r = 0; r < PROBE_RESULT_COUNT; r++)
			evbuffer_add_printf(out,
					    "happac_probe_results_total{probe=\"%s\",result=\"%s\"} %llu\n",
					    v->probe_names[i], probe_result_names[r],
					    (unsigned long long)m->probes[i].results[r]);

	metrics_head(out, "happac_probe_failures_total", "counter",
		     "Failed probe attempts, by reason.");
	for (int i = 0; i < v->probe_count; i++)
		for (int r = 0; r < PROBE_RESULT_COUNT; r++)
			if (r != PROBE_OK)
				evbuffer_add_printf(out,
						    "happac_probe_failures_total{probe=\"%s\",reason=\"%s\"} %llu\n",
						    v->probe_names[i], probe_result_names[r],
						    (unsigned long long)m->probes[i].results[r]);

	metrics_head(out, "happac_probe_duration_seconds", "histogram",
		     "Duration of probe attempts, timeouts included.");
	for (int i = 0; i < v->probe_count; i++) {
		const struct metrics_probe *p = &m->probes[i];
		uint64_t cum = 0;

		for (size_t b = 0; b < METRICS_NBUCKETS; b++) {
			cum += p->buckets[b];
			evbuffer_add_printf(out,
					    "happac_probe_duration_seconds_bucket{probe=\"%s\",le=\"%g\"} %llu\n",
					    v->probe_names[i], metrics_buckets[b],
					    (unsigned long long)cum);
		}
		evbuffer_add_printf(out,
				    "happac_probe_duration_seconds_bucket{probe=\"%s\",le=\"+Inf\"} %llu\n"
				    "happac_probe_duration_seconds_sum{probe=\"%s\"} %.6f\n"
				    "happac_probe_duration_seconds_count{probe=\"%s\"} %llu\n",
				    v->probe_names[i], (unsigned long long)p->count,
				    v->probe_names[i], p->sum_s, v->probe_names[i],
				    (unsigned long long)p->count);
	}
}
