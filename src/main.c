/* main.c - start-up order, signals, reload, shutdown. The logic lives in the
 * modules: options (what to do), probe* (what the backends say), verdict
 * (what that means), agent and http (telling HAProxy and operators). */
#include "acl.h"
#include "agent.h"
#include "check.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "options.h"
#include "probe.h"
#include "probe_patroni.h"
#include "probe_pg.h"
#include "status.h"
#include "verdict.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum main_probe { MAIN_PROBE_PATRONI, MAIN_PROBE_PG, MAIN_PROBE_COUNT };

static const char *const main_probe_names[MAIN_PROBE_COUNT] = {
	[MAIN_PROBE_PATRONI] = "patroni",
	[MAIN_PROBE_PG] = "pgbouncer",
};

/* What one configuration runs: rebuilt whole on a reload that changes it. */
struct main_probes {
	struct probe_sched *sched;
	struct probe probes[MAIN_PROBE_COUNT];
	struct probe_patroni *patroni;
	struct probe_pg *pg;
};

struct happac {
	int argc;
	char **argv;
	struct options opts;
	struct event_base *base;
	struct evdns_base *dns;
	struct main_probes *run;
	struct agent *agent;
	struct http *http;
	struct metrics *metrics;
	struct acl acl;         /* --allow, parsed */
	struct event *sigterm, *sigint, *sighup, *drain;
	int drain_ticks;
	uint64_t reloads_ok, reloads_failed;

	/* the cached verdict the agent answers from */
	int ready;              /* the first round has ended */
	int up;
	char line[VERDICT_LINE_MAX];
	size_t line_len;
	int64_t verdict_us;     /* monotonic: when the last round ended */
	double since_s;         /* wall clock: when the verdict last changed */
	int64_t stale_us;
	char stale_line[VERDICT_LINE_MAX];
};

static double main_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static const struct probe_report *main_report(const struct main_probes *r, int i)
{
	return r->probes[i].has_result ? &r->probes[i].last : NULL;
}

static void main_fill_verdict_probes(struct happac *h, struct verdict_probe *vp)
{
	struct main_probes *r = h->run;

	vp[MAIN_PROBE_PATRONI] = (struct verdict_probe){
		.name = main_probe_names[MAIN_PROBE_PATRONI],
		.report = main_report(r, MAIN_PROBE_PATRONI),
		.target = probe_patroni_target(r->patroni),
		.path = probe_patroni_path(r->patroni),
		.host = h->opts.patroni_host,
		.expect_recovery = -1,
	};
	vp[MAIN_PROBE_PG] = (struct verdict_probe){
		.name = main_probe_names[MAIN_PROBE_PG],
		.report = main_report(r, MAIN_PROBE_PG),
		.target = probe_pg_target(r->pg),
		.path = NULL,
		.host = probe_pg_host(r->pg),
		.expect_recovery = verdict_expect_recovery(h->opts.patroni_endpoint),
	};
}

/* Every round ends here: observe, recompute the line, log a transition. */
static void main_round_done(void *arg)
{
	struct happac *h = arg;
	struct verdict_probe vp[MAIN_PROBE_COUNT];
	char line[VERDICT_LINE_MAX];
	size_t len;
	int up, changed;

	for (int i = 0; i < MAIN_PROBE_COUNT; i++)
		metrics_probe_observe(h->metrics, i, h->run->probes[i].last.result,
				      h->run->probes[i].last.duration_us);
	main_fill_verdict_probes(h, vp);
	up = verdict_render(vp, MAIN_PROBE_COUNT, h->opts.timeout_ms, line,
			    sizeof(line), &len);
	h->verdict_us = probe_now_us();
	changed = !h->ready || len != h->line_len || memcmp(line, h->line, len) != 0;
	if (changed) {
		const struct probe_report *pa = &h->run->probes[MAIN_PROBE_PATRONI].last;
		const struct probe_report *pb = &h->run->probes[MAIN_PROBE_PG].last;

		log_info("verdict %s -> %.*s (patroni %s %.1fms, pgbouncer %s %.1fms)",
			 h->ready ? (h->up ? "up" : "down") : "none",
			 (int)len - 1, line, probe_result_names[pa->result],
			 (double)pa->duration_us / 1000.0,
			 probe_result_names[pb->result],
			 (double)pb->duration_us / 1000.0);
		memcpy(h->line, line, len + 1);
		h->line_len = len;
		h->up = up;
		h->since_s = main_wall_s();
		if (h->ready)
			metrics_transition(h->metrics);
		line[len - 1] = '\0';
		if (h->ready)
			notify_status(line);
	}
	if (!h->ready) {
		h->ready = 1;
		agent_enable(h->agent);
		notify_ready(line);
		log_info("ready: answering agent checks");
	}
}

/* ---- HTTP side port content */

static int main_http_health(void *arg, struct evbuffer *out)
{
	struct happac *h = arg;
	size_t len;
	const char *line = main_reply(h, &len);

	evbuffer_add(out, line, len);
	return line[0] == 'u';
}

static void main_http_status(void *arg, struct evbuffer *out)
{
	struct happac *h = arg;
	struct status_view v;
	struct verdict_probe vp[MAIN_PROBE_COUNT];
	size_t len;

	memset(&v, 0, sizeof(v));
	v.line = main_reply(h, &len);
	v.up = v.line[0] == 'u';
	v.since_s = h->since_s;
	v.now_s = main_wall_s();
	v.now_us = probe_now_us();
	v.opts = &h->opts;
	main_fill_verdict_probes(h, vp);
	v.probe_count = MAIN_PROBE_COUNT;
	for (int i = 0; i < MAIN_PROBE_COUNT; i++) {
		v.probes[i].name = vp[i].name;
		v.probes[i].target = vp[i].target;
		v.probes[i].report = vp[i].report;
		v.probes[i].in_flight = h->run->probes[i].in_flight;
	}
	status_render(&v, out);
}

static void main_http_metrics(void *arg, struct evbuffer *out)
{
	struct happac *h = arg;
	const struct agent_stats *as = agent_stats(h->agent);
	struct metrics_view v;
	size_t len;

	memset(&v, 0, sizeof(v));
	v.up = main_reply(h, &len)[0] == 'u';
	v.verdict_since_s = h->since_s;
	v.checks_up = as->up;
	v.checks_down = as->down;
	v.checks_failed = as->failed;
	v.rounds = probe_sched_rounds(h->run->sched);
	v.probe_count = MAIN_PROBE_COUNT;
	for (int i = 0; i < MAIN_PROBE_COUNT; i++) {
		v.probe_names[i] = main_probe_names[i];
		v.probe_in_flight[i] = h->run->probes[i].in_flight;
	}
	v.reloads_ok = h->reloads_ok;
	v.reloads_failed = h->reloads_failed;
	metrics_render(h->metrics, &v, out);
}

static const struct http_routes main_http_routes = {
	.health = main_http_health,
	.status = main_http_status,
	.metrics = main_http_metrics,
};

/* ---- probes for one configuration */

static void main_probes_free(struct main_probes *r)
{
	if (!r)
		return;
	probe_sched_free(r->sched);
	probe_patroni_free(r->patroni);
	probe_pg_free(r->pg);
	free(r);
}

/* Settings that deserve a warning every time they are (re)loaded. */
static void main_warn_settings(const struct options *o)
{
	if (o->pg_conninfo_has_password)
		log_warn("--pg-conninfo holds a password: anyone who can read the "
			 "process list or the config may see it; use a passfile "
			 "(passfile=... or PGPASSFILE) instead");
	if (o->patroni_insecure && !strcmp(o->patroni_scheme, "https"))
		log_warn("--patroni-insecure: Patroni's TLS certificate is NOT verified; "
			 "anyone on the path can answer for Patroni");
	if ((o->patroni_cafile || o->patroni_cert || o->patroni_key ||
	     o->patroni_insecure) && strcmp(o->patroni_scheme, "https"))
		log_warn("Patroni TLS options are set but --patroni-scheme is http: "
			 "they are not used");
}

static struct main_probes *main_probes_new(struct happac *h, const struct options *o,
					   char *err, size_t errlen)
{
	struct main_probes *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct probe_patroni_tls tls = { o->patroni_cafile, o->patroni_cert,
					 o->patroni_key, o->patroni_insecure };

	r->patroni = probe_patroni_new(h->base, o->patroni_scheme, o->patroni_host,
				       o->patroni_port, o->patroni_endpoint, &tls,
				       o->timeout_ms, err, errlen);
	if (!r->patroni)
		goto fail;
	r->pg = probe_pg_new(h->base, h->dns, o->patroni_host, o->pg_port,
			     o->pg_conninfo, err, errlen);
	if (!r->pg)
		goto fail;
	r->sched = probe_sched_new(h->base, o->interval_ms, o->timeout_ms,
				   main_round_done, h);
	if (!r->sched ||
	    probe_sched_add(r->sched, &r->probes[MAIN_PROBE_PATRONI],
			    main_probe_names[MAIN_PROBE_PATRONI], &probe_patroni_ops,
			    r->patroni) != 0 ||
	    probe_sched_add(r->sched, &r->probes[MAIN_PROBE_PG],
			    main_probe_names[MAIN_PROBE_PG], &probe_pg_ops, r->pg) != 0) {
		snprintf(err, errlen, "cannot set up the probes (out of memory)");
		goto fail;
	}
	return r;
fail:
	main_probes_free(r);
	return NULL;
}

/* Parse --allow into an acl (already validated by options). */
static void main_acl(const struct options *o, struct acl *acl)
{
	char err[128];

	memset(acl, 0, sizeof(*acl));
	for (int i = 0; i < o->allow.count && acl->count < ACL_MAX; i++)
		if (acl_parse(o->allow.items[i], &acl->entries[acl->count], err,
			      sizeof(err)) == 0)
			acl->count++;
}

/* Bind or re-bind the listeners for o; unchanged ones stay open. */
static int main_listen(struct happac *h, const struct options *o, char *err,
		       size_t errlen)
{
	if (agent_set_listeners(h->agent, o->listen.items, o->listen.count, o->port, err,
				errlen) != 0)
		return -1;
	if (!o->http_listen && !h->http)
		return 0;
	if (!h->http) {
		h->http = http_new(h->base, &main_http_routes, h);
		if (!h->http) {
			snprintf(err, errlen, "cannot set up the HTTP side port");
			return -1;
		}
		http_set_acl(h->http, &h->acl);
	}
	return http_set_listen(h->http, o->http_listen ? o->http_addr : NULL,
			       o->http_port, err, errlen);
}

/* ---- signals */

static void main_drain(evutil_socket_t fd, short what, void *arg)
{
	struct happac *h = arg;
	struct timeval tv = { 0, 50000 };

	(void)fd;
	(void)what;
	/* Replies being written get up to two seconds to finish. */
	if (agent_pending(h->agent) == 0 || ++h->drain_ticks > 40)
		event_base_loopexit(h->base, NULL);
	else
		evtimer_add(h->drain, &tv);
}

static void main_stop(evutil_socket_t sig, short what, void *arg)
{
	struct happac *h = arg;

	(void)what;
	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	notify_stopping();
	agent_close(h->agent);
	if (h->http) {
		http_free(h->http);
		h->http = NULL;
	}
	probe_sched_free(h->run->sched);
	h->run->sched = NULL;
	main_drain(-1, 0, h);
}

static int main_strcmp(const char *a, const char *b)
{
	return a && b ? strcmp(a, b) : a != b;
}

/* True when the probes must be rebuilt for the new options. */
static int main_probes_changed(const struct options *a, const struct options *b)
{
	return strcmp(a->patroni_host, b->patroni_host) ||
	       strcmp(a->patroni_endpoint, b->patroni_endpoint) ||
	       a->patroni_port != b->patroni_port || a->pg_port != b->pg_port ||
	       main_strcmp(a->pg_conninfo, b->pg_conninfo) ||
	       strcmp(a->patroni_scheme, b->patroni_scheme) ||
	       main_strcmp(a->patroni_cafile, b->patroni_cafile) ||
	       main_strcmp(a->patroni_cert, b->patroni_cert) ||
	       main_strcmp(a->patroni_key, b->patroni_key) ||
	       a->patroni_insecure != b->patroni_insecure ||
	       a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms;
}

/* SIGHUP: read every source again. A bad configuration changes nothing. */
static void main_reload(evutil_socket_t sig, short what, void *arg)
{
	struct happac *h = arg;
	struct options next;
	struct main_probes *run = NULL;
	char err[512], desc[1024];
	FILE *devnull = fopen("/dev/null", "w");
	enum options_result r;

	(void)sig;
	(void)what;
	/* Before the first round systemd has not seen READY=1 yet; it must not
	 * get one from a reload either. */
	if (h->ready)
		notify_reloading();
	r = options_load(&next, h->argc, h->argv, devnull ? devnull : stdout, err,
			 sizeof(err));
	if (devnull)
		fclose(devnull);
	if (r != OPTIONS_OK) {
		if (r != OPTIONS_ERROR) {
			snprintf(err, sizeof(err), "unexpected --help/--version");
			options_free(&next);
		}
		log_error("reload failed, keeping the running configuration: %s", err);
		h->reloads_failed++;
		if (h->ready)
			notify_ready("reload failed: running configuration kept");
		return;
	}
	if (main_probes_changed(&h->opts, &next)) {
		run = main_probes_new(h, &next, err, sizeof(err));
		if (!run)
			goto fail;
	}
	if (main_listen(h, &next, err, sizeof(err)) != 0)
		goto fail;
	if (run) {
		/* The cached verdict keeps answering until the new probes' first
		 * round ends. */
		main_probes_free(h->run);
		h->run = run;
		probe_sched_start(run->sched);
	}
	options_free(&h->opts);
	h->opts = next;
	main_acl(&h->opts, &h->acl);
	h->stale_us = (int64_t)options_stale_after_ms(&h->opts) * 1000;
	log_set_level(h->opts.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	options_describe(&h->opts, desc, sizeof(desc));
	log_info("reloaded: %s", desc);
	main_warn_settings(&h->opts);
	h->reloads_ok++;
	if (h->ready)
		notify_ready(h->line);
	return;
fail:
	main_probes_free(run);
	options_free(&next);
	log_error("reload failed, keeping the running configuration: %s", err);
	h->reloads_failed++;
	if (h->ready)
		notify_ready("reload failed: running configuration kept");
}

/* ---- start-up and teardown */

static int main_setup(struct happac *h)
{
	char err[512];
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	h->base = event_base_new();
	h->metrics = metrics_new();
	if (!h->base || !h->metrics) {
		log_error("cannot create the event loop");
		return -1;
	}
	if (!(cv->features & CURL_VERSION_ASYNCHDNS))
		log_warn("libcurl %s has no asynchronous resolver: give -h as an address",
			 cv->version);
	h->stale_us = (int64_t)options_stale_after_ms(&h->opts) * 1000;

	/* Bind first: a taken port must fail before anything else starts. */
	h->agent = agent_new(h->base, main_reply, h);
	if (!h->agent) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	main_acl(&h->opts, &h->acl);
	agent_set_acl(h->agent, &h->acl);
	if (main_listen(h, &h->opts, err, sizeof(err)) != 0)
		goto fail;

	h->dns = evdns_base_new(h->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
					    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!h->dns) /* no resolv.conf: address literals still work */
		h->dns = evdns_base_new(h->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!h->dns) {
		snprintf(err, sizeof(err), "cannot set up the resolver");
		goto fail;
	}
	h->run = main_probes_new(h, &h->opts, err, sizeof(err));
	if (!h->run)
		goto fail;

	h->sigterm = evsignal_new(h->base, SIGTERM, main_stop, h);
	h->sigint = evsignal_new(h->base, SIGINT, main_stop, h);
	h->sighup = evsignal_new(h->base, SIGHUP, main_reload, h);
	h->drain = evtimer_new(h->base, main_drain, h);
	if (!h->sigterm || !h->sigint || !h->sighup || !h->drain) {
		snprintf(err, sizeof(err), "cannot set up signal handling");
		goto fail;
	}
	evsignal_add(h->sigterm, NULL);
	evsignal_add(h->sigint, NULL);
	evsignal_add(h->sighup, NULL);
	notify_init(h->base);
	return 0;
fail:
	log_error("%s", err);
	return -1;
}

static void main_teardown(struct happac *h)
{
	notify_free();
	main_probes_free(h->run);
	agent_free(h->agent);
	http_free(h->http);
	metrics_free(h->metrics);
	if (h->dns)
		evdns_base_free(h->dns, 0);
	if (h->sigterm)
		event_free(h->sigterm);
	if (h->sigint)
		event_free(h->sigint);
	if (h->sighup)
		event_free(h->sighup);
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

	/* Subcommands first: they share nothing with the daemon. */
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return check_main(argc - 1, argv + 1);
	h.argc = argc;
	h.argv = argv;
	switch (options_load(&h.opts, argc, argv, stdout, err, sizeof(err))) {
	case OPTIONS_OK:
		break;
	case OPTIONS_EXIT_HELP:
		return 0;
	case OPTIONS_EXIT_VERSION:
		main_versions(stdout);
		return 0;
	case OPTIONS_ERROR:
		fprintf(stderr, "happac: %s\n", err);
		return 2;
	}
	if (h.opts.check_config) {
		options_dump(&h.opts, stdout);
		options_free(&h.opts);
		return 0;
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
	main_warn_settings(&h.opts);
	if (h.opts.pg_isready_path_given)
		log_info("-x/--pg-is-ready-path '%s' is accepted for compatibility and "
			 "unused: happac probes PgBouncer with libpq itself",
			 h.opts.pg_isready_path);

	if (main_setup(&h) != 0) {
		rc = 1;
	} else {
		probe_sched_start(h.run->sched);
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
