/* main.c - start-up order, signals, shutdown. The logic lives in the modules:
 * options (what to do), probe* (what the backends say), verdict (what that
 * means), agent (telling HAProxy). */
#include "agent.h"
#include "log.h"
#include "options.h"
#include "probe.h"
#include "probe_patroni.h"
#include "probe_pg.h"
#include "verdict.h"

#include <curl/curl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum main_probe { MAIN_PROBE_PATRONI, MAIN_PROBE_PG, MAIN_PROBE_COUNT };

struct happac {
	struct options opts;
	struct event_base *base;
	struct evdns_base *dns;
	struct probe_sched *sched;
	struct probe probes[MAIN_PROBE_COUNT];
	struct probe_patroni *patroni;
	struct probe_pg *pg;
	struct agent *agent;
	struct event *sigterm, *sigint, *drain;
	int drain_ticks;

	/* the cached verdict the agent answers from */
	int ready;              /* the first round has ended */
	int up;
	char line[VERDICT_LINE_MAX];
	size_t line_len;
	int64_t verdict_us;     /* when the last round ended */
	int64_t since_us;       /* when the verdict last changed */
	int64_t stale_us;
	char stale_line[VERDICT_LINE_MAX];
};

static void main_versions(FILE *out)
{
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	int pq = PQlibVersion();

	fprintf(out, "happac %s\nlibevent %s\nlibcurl %s\nlibpq %d.%d\n",
		HAPPAC_VERSION, event_get_version(), cv->version, pq / 10000,
		pq % 10000);
}

/* The agent's reply: the cached line, unless the probes have stalled. */
static const char *main_reply(void *arg, size_t *len)
{
	struct happac *h = arg;
	int64_t age = probe_now_us() - h->verdict_us;

	if (age > h->stale_us) {
		*len = verdict_render_stale(age / 1000, h->stale_line,
					    sizeof(h->stale_line));
		return h->stale_line;
	}
	*len = h->line_len;
	return h->line;
}

static void main_fill_verdict_probes(struct happac *h, struct verdict_probe *vp)
{
	vp[MAIN_PROBE_PATRONI] = (struct verdict_probe){
		.name = "patroni",
		.report = h->probes[MAIN_PROBE_PATRONI].has_result
				  ? &h->probes[MAIN_PROBE_PATRONI].last : NULL,
		.target = probe_patroni_target(h->patroni),
		.path = probe_patroni_path(h->patroni),
		.host = h->opts.patroni_host,
	};
	vp[MAIN_PROBE_PG] = (struct verdict_probe){
		.name = "pgbouncer",
		.report = h->probes[MAIN_PROBE_PG].has_result
				  ? &h->probes[MAIN_PROBE_PG].last : NULL,
		.target = probe_pg_target(h->pg),
		.path = NULL,
		.host = probe_pg_host(h->pg),
	};
}

/* Every round ends here: recompute the line, log a transition. */
static void main_round_done(void *arg)
{
	struct happac *h = arg;
	struct verdict_probe vp[MAIN_PROBE_COUNT];
	char line[VERDICT_LINE_MAX];
	size_t len;
	int up, changed;

	main_fill_verdict_probes(h, vp);
	up = verdict_render(vp, MAIN_PROBE_COUNT, h->opts.timeout_ms, line,
			    sizeof(line), &len);
	h->verdict_us = probe_now_us();
	changed = !h->ready || len != h->line_len || memcmp(line, h->line, len) != 0;
	if (changed) {
		const struct probe_report *pa = &h->probes[MAIN_PROBE_PATRONI].last;
		const struct probe_report *pb = &h->probes[MAIN_PROBE_PG].last;

		log_info("verdict %s -> %.*s (patroni %s %.1fms, pgbouncer %s %.1fms)",
			 h->ready ? (h->up ? "up" : "down") : "none",
			 (int)len - 1, line, probe_result_names[pa->result],
			 (double)pa->duration_us / 1000.0,
			 probe_result_names[pb->result],
			 (double)pb->duration_us / 1000.0);
		memcpy(h->line, line, len + 1);
		h->line_len = len;
		h->up = up;
		h->since_us = h->verdict_us;
	}
	if (!h->ready) {
		h->ready = 1;
		agent_enable(h->agent);
		log_info("ready: answering agent checks");
	}
}

static void main_drain(evutil_socket_t fd, short what, void *arg)
{
	struct happac *h = arg;
	struct timeval tv = { 0, 50000 };

	(void)fd;
	(void)what;
	if (agent_pending(h->agent) == 0 || ++h->drain_ticks > 40)
		event_base_loopexit(h->base, NULL);
	else
		evtimer_add(h->drain, &tv);
}

static void main_signal(evutil_socket_t sig, short what, void *arg)
{
	struct happac *h = arg;

	(void)what;
	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	agent_close(h->agent);
	probe_sched_free(h->sched);
	h->sched = NULL;
	main_drain(-1, 0, h);
}

static int main_setup(struct happac *h)
{
	char err[512];
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	h->base = event_base_new();
	if (!h->base) {
		log_error("cannot create the event loop");
		return -1;
	}
	if (!(cv->features & CURL_VERSION_ASYNCHDNS))
		log_warn("libcurl %s has no asynchronous resolver: give -h as an address",
			 cv->version);
	h->stale_us = (int64_t)options_stale_after_ms(&h->opts) * 1000;

	/* Bind first: a taken port must fail before anything else starts. */
	h->agent = agent_new(h->base, main_reply, h);
	if (!h->agent)
		return -1;
	if (h->opts.listen_count == 0) {
		if (agent_listen(h->agent, NULL, h->opts.port, err, sizeof(err)) != 0)
			goto fail;
	}
	for (int i = 0; i < h->opts.listen_count; i++)
		if (agent_listen(h->agent, h->opts.listen[i], h->opts.port, err,
				 sizeof(err)) != 0)
			goto fail;

	h->dns = evdns_base_new(h->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
					    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!h->dns) /* no resolv.conf: address literals still work */
		h->dns = evdns_base_new(h->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	h->patroni = probe_patroni_new(h->base, h->opts.patroni_host,
				       h->opts.patroni_port, h->opts.patroni_endpoint,
				       h->opts.timeout_ms, err, sizeof(err));
	if (!h->patroni)
		goto fail;
	h->pg = probe_pg_new(h->base, h->dns, h->opts.patroni_host, h->opts.pg_port);
	h->sched = probe_sched_new(h->base, h->opts.interval_ms, h->opts.timeout_ms,
				   main_round_done, h);
	if (!h->dns || !h->pg || !h->sched ||
	    probe_sched_add(h->sched, &h->probes[MAIN_PROBE_PATRONI], "patroni",
			    &probe_patroni_ops, h->patroni) != 0 ||
	    probe_sched_add(h->sched, &h->probes[MAIN_PROBE_PG], "pgbouncer",
			    &probe_pg_ops, h->pg) != 0) {
		snprintf(err, sizeof(err), "cannot set up the probes (out of memory)");
		goto fail;
	}

	h->sigterm = evsignal_new(h->base, SIGTERM, main_signal, h);
	h->sigint = evsignal_new(h->base, SIGINT, main_signal, h);
	h->drain = evtimer_new(h->base, main_drain, h);
	if (!h->sigterm || !h->sigint || !h->drain) {
		snprintf(err, sizeof(err), "cannot set up signal handling");
		goto fail;
	}
	evsignal_add(h->sigterm, NULL);
	evsignal_add(h->sigint, NULL);
	return 0;
fail:
	log_error("%s", err);
	return -1;
}

static void main_teardown(struct happac *h)
{
	probe_sched_free(h->sched);
	probe_patroni_free(h->patroni);
	probe_pg_free(h->pg);
	agent_free(h->agent);
	if (h->dns)
		evdns_base_free(h->dns, 0);
	if (h->sigterm)
		event_free(h->sigterm);
	if (h->sigint)
		event_free(h->sigint);
	if (h->drain)
		event_free(h->drain);
	if (h->base)
		event_base_free(h->base);
	options_free(&h->opts);
}

int main(int argc, char **argv)
{
	static struct happac h;
	char err[512], desc[1024];
	int rc = 0;

	options_init(&h.opts);
	switch (options_parse_argv(&h.opts, argc, argv, stdout, err, sizeof(err))) {
	case OPTIONS_OK:
		break;
	case OPTIONS_EXIT_HELP:
		options_free(&h.opts);
		return 0;
	case OPTIONS_EXIT_VERSION:
		main_versions(stdout);
		options_free(&h.opts);
		return 0;
	case OPTIONS_ERROR:
		fprintf(stderr, "happac: %s\n", err);
		options_free(&h.opts);
		return 2;
	}
	if (h.opts.verbose)
		log_set_level(LOG_LEVEL_DEBUG);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialise libcurl");
		options_free(&h.opts);
		return 1;
	}
	options_describe(&h.opts, desc, sizeof(desc));
	log_info("happac %s starting: %s", HAPPAC_VERSION, desc);
	if (h.opts.pg_isready_path_given)
		log_info("-x/--pg-is-ready-path '%s' is accepted for compatibility and "
			 "unused: happac probes PgBouncer with libpq itself",
			 h.opts.pg_isready_path);

	if (main_setup(&h) != 0) {
		rc = 1;
	} else {
		probe_sched_start(h.sched);
		if (event_base_dispatch(h.base) < 0) {
			log_error("event loop failed");
			rc = 1;
		}
		log_info("stopped");
	}
	main_teardown(&h);
	curl_global_cleanup();
	return rc;
}
