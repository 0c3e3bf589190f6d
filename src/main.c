/* main.c - start-up order, signals, the all-or-nothing reload, shutdown. The
 * logic lives in the modules (docs/ARCHITECTURE.md): options* (what to do),
 * probe* (what the backends say), profile and verdict (what that means),
 * answer (the cached lines), agent, http and ctl (telling HAProxy and
 * operators); main_view.c fills what /status and /metrics show. */
#include "main_int.h"

#include "acl.h"
#include "agent.h"
#include "answer.h"
#include "check.h"
#include "ctl.h"
#include "http.h"
#include "lib_curl.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "options.h"
#include "probe.h"
#include "probe_patroni.h"
#include "probe_pg.h"
#include "profile.h"
#include "status.h"
#include "recipe.h"
#include "util.h"
#include "verdict.h"

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include "lib_pq.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <sys/resource.h>

static void main_versions(FILE *out)
{
	char err[256];
	int pq;

	/* libcurl and libpq are loaded only for HTTPS to Patroni and for
	 * --pg-conninfo (lib_curl.h, lib_pq.h); here they are loaded to say
	 * which ones those would use. */
	fprintf(out, "happac %s\nlibevent %s\n", HAPPAC_VERSION, event_get_version());
	if (lib_curl_load(err, sizeof(err)) == 0)
		fprintf(out, "libcurl %s (HTTPS to Patroni only)\n", lib_curl_version());
	else
		fprintf(out, "libcurl not found: %s\n", err);
	if (lib_pq_load(err, sizeof(err)) == 0) {
		pq = lib_pq_version();
		fprintf(out, "libpq %d.%d (--pg-conninfo only)\n", pq / 10000, pq % 10000);
	} else {
		fprintf(out, "libpq not found: %s\n", err);
	}
}

/* The agent's reply for a profile: the cached line (or the stale one). */
static const char *main_reply(void *arg, int profile, size_t *len, int *up)
{
	struct happac *h = arg;
	enum profile_health health;
	const char *line = answer_line(h->answer, profile, len, &health);

	*up = health != PROFILE_HEALTH_DOWN;
	return line;
}

static int main_lookup(void *arg, const char *name)
{
	struct happac *h = arg;

	return answer_lookup(h->answer, name);
}

/* Recompute every profile's line from the latest probe results and the
 * operator override: at the end of each round, and when an override or a
 * ramp moves. */
static void main_evaluate(struct happac *h)
{
	struct verdict_probe vp[MAIN_PROBE_COUNT];
	struct profile_inputs in;
	const struct probe_report *pa, *pb;
	char summary[400];
	int first = !answer_ready(h->answer);

	if (!h->run->probes[MAIN_PROBE_PATRONI].has_result)
		return; /* no round has ended yet */
	main_view_probes(h, vp);
	main_pgbouncer_pause_view(h, &vp[MAIN_PROBE_PG], first);
	memset(&in, 0, sizeof(in));
	in.patroni = &vp[MAIN_PROBE_PATRONI];
	in.pg = &vp[MAIN_PROBE_PG];
	in.patroni_code_profile = 0;
	in.json = probe_patroni_json(h->run->patroni);
	in.lag_bytes = vp[MAIN_PROBE_PG].report ? vp[MAIN_PROBE_PG].report->lag_bytes : -1;
	in.timeout_ms = h->opts.timeout_ms;
	in.ramp_weight = -1;
	in.now_us = util_mono_us();
	in.ready_window_ms = h->opts.ready_window_ms;
	in.hold_us = (int64_t)options_hold_ms(&h->opts) * 1000;
	in.first_round = first;
	in.leader = h->run->leader ? &vp[MAIN_PROBE_LEADER] : NULL;
	in.pgb_down = h->pause.effect == PAUSE_DOWN ? h->pause.reason : NULL;
	in.pgb_drain = h->pause.effect == PAUSE_DRAIN ? h->pause.reason : NULL;
	if (h->ctl) {
		const struct ctl_override *ov = ctl_get(h->ctl);

		in.admin = main_view_admin(h);
		in.ramp_weight = ctl_ramp_weight(h->ctl, util_wall_s());
		/* A drain/maint that ended before the first answer (restored, or
		 * cleared before the first round) is still owed its `ready`. */
		if (first && ov->admin == CTL_ADMIN_READY &&
		    ov->prev_admin != CTL_ADMIN_READY)
			answer_admin_was_said(h->answer);
	}
	replica_watch_update(&h->watch, in.json, vp[MAIN_PROBE_PG].report);
	pa = &h->run->probes[MAIN_PROBE_PATRONI].last;
	pb = &h->run->probes[MAIN_PROBE_PG].last;
	snprintf(summary, sizeof(summary), "patroni %s %.1fms, pgbouncer %s %.1fms",
		 probe_result_names[pa->result], (double)pa->duration_us / 1000.0,
		 probe_result_names[pb->result], (double)pb->duration_us / 1000.0);
	main_hold_inputs(h, &in, summary, sizeof(summary));
	if (answer_update(h->answer, &in, summary) && !first) {
		size_t len;
		const char *line = answer_line(h->answer, 0, &len, NULL);

		notify_status(line);
	}
	if (h->ctl)
		ctl_answered(h->ctl, in.now_us, in.ready_window_ms);
	if (first) {
		size_t len;

		agent_enable(h->agent);
		/* Logged before READY=1 is sent, so that the journal shows it
		 * before systemd's "Started" line. */
		log_info("ready: answering agent checks");
		notify_ready(answer_line(h->answer, 0, &len, NULL));
	}
}

/* Every round ends here. */
static void main_round_done(void *arg)
{
	struct happac *h = arg;

	for (int i = 0; i < h->run->count; i++)
		metrics_probe_observe(h->metrics, i, h->run->probes[i].last.result,
				      h->run->probes[i].last.duration_us);
	if (h->run->admin)
		main_pgbouncer_state(h);
	main_evaluate(h);
	main_hold_evaluated(h);
}

/* An operator changed the override, or a ramp moved. */
static void main_ctl_changed(void *arg)
{
	main_evaluate(arg);
}

/* ---- probes for one configuration */

static void main_probes_free(struct main_probes *r)
{
	if (!r)
		return;
	probe_sched_free(r->sched);
	for (int i = 0; i < r->nprocs; i++)
		pgbouncers_close(&r->procs[i]);
	probe_patroni_free(r->patroni);
	probe_patroni_free(r->leader);
	free(r);
}

/* One warning per secret in --pg-conninfo (keywords space-separated), each
 * with where that secret belongs instead. */
static void main_warn_secrets(const char *secrets)
{
	const char *k = secrets;

	while (*k) {
		size_t n = strcspn(k, " ");

		if (n == 8 && !strncmp(k, "password", n))
			log_warn("--pg-conninfo holds a password: anyone who can read the "
				 "process list or the config may see it; use a passfile "
				 "(passfile=... or PGPASSFILE) instead");
		else if (n == 11 && !strncmp(k, "sslpassword", n))
			log_warn("--pg-conninfo holds sslpassword (the client "
				 "key's passphrase): anyone who can read the process list or "
				 "the config may see it; give happac an unencrypted key "
				 "(sslkey=...) readable only by its own user instead");
		else
			log_warn("--pg-conninfo holds a secret (%.*s): anyone who can read "
				 "the process list or the config may see it", (int)n, k);
		k += n;
		k += strspn(k, " ");
	}
}

/* Settings that deserve a warning every time they are (re)loaded. */
static void main_warn_settings(const struct options *o)
{
	if (o->pg_conninfo_has_password)
		main_warn_secrets(o->pg_conninfo_secrets);
	if (o->pgb_admin_has_password)
		log_warn("--pgbouncer-admin-conninfo holds a secret: anyone who can read "
			 "the process list or the config may see it; use a passfile "
			 "(passfile=... or PGPASSFILE) instead");
	if (o->patroni_insecure && !strcmp(o->patroni_scheme, "https"))
		log_warn("--patroni-insecure: Patroni's TLS certificate is NOT verified; "
			 "anyone on the path can answer for Patroni");
	if ((o->patroni_cafile || o->patroni_cert || o->patroni_key ||
	     o->patroni_insecure) && strcmp(o->patroni_scheme, "https"))
		log_warn("Patroni TLS options are set but --patroni-scheme is http: "
			 "they are not used");
}

/* The round keeps Patroni's status JSON always: profiles beyond the first
 * and the side port's paths are judged from it, and the handover reads a
 * state change from it (main_hold.c: Patroni 3.0.2 keeps an old primary's
 * /primary at 200 for a second after its PostgreSQL stopped), and
 * streaming = required reads replication_state from it (replica.h). Patroni
 * builds the same status for OPTIONS, so GET costs it only the body. Only
 * when profiles need it does a body that is not the JSON fail the probe. */
static int main_wants_json(const struct options *o)
{
	(void)o;
	return 1;
}

/* OPTIONS /leader each round when a profile needs the leader lock that the
 * -k endpoint's code cannot show; with the side port on, /primary and
 * /leader need it unless the -k endpoint is /primary or /standby-leader. */
static int main_wants_leader(const struct options *o)
{
	enum profile_rule k = o->profiles[0].rule;

	if (profile_needs_leader_probe(o->profiles, o->profile_count))
		return 1;
	return o->http_listen != NULL && k != PROFILE_RULE_PRIMARY &&
	       k != PROFILE_RULE_STANDBY_LEADER;
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

	r->patroni = probe_patroni_new(h->base, h->dns, o->patroni_scheme, o->patroni_host,
				       o->patroni_port, o->patroni_endpoint, &tls,
				       o->timeout_ms, err, errlen);
	if (!r->patroni)
		goto fail;
	struct pgbouncers_spec spec = {
		h->base, h->dns, o->patroni_host, o->pg_port, o->pg_conninfo,
		o->pgb_admin_conninfo, o->timeout_ms / 2,
	};

	if (pgbouncers_open_all(r->procs, &r->nprocs, &spec, &o->pgb_socket_dirs,
				err, errlen) != 0)
		goto fail;
	r->pg = r->procs[0].pg;
	/* One Patroni request per round answers every profile: the first
	 * profile by its status code, the others from the status JSON. */
	if (main_wants_json(o) &&
	    probe_patroni_want_json(r->patroni, o->profile_count > 1) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->sched = probe_sched_new(h->base, o->interval_ms, o->timeout_ms,
				   main_round_done, h);
	r->count = 2;
	if (main_wants_leader(o)) {
		r->leader = probe_patroni_new(h->base, h->dns, o->patroni_scheme,
					      o->patroni_host, o->patroni_port, "leader",
					      &tls, o->timeout_ms, err, errlen);
		if (!r->leader)
			goto fail;
		r->count = 3;
	}
	r->admin_slot = -1;
	if (r->procs[0].admin) {
		r->admin = r->procs[0].admin;
		r->admin_slot = r->count++;
	}
	/* The admin probe starts first: the routing probe waits for it. */
	if (!r->sched ||
	    (r->admin &&
	     probe_sched_add(r->sched, &r->probes[r->admin_slot],
			     r->procs[0].admin_name, &probe_pg_ops, r->admin) != 0) ||
	    pgbouncers_add_admins(r->procs + 1, r->nprocs - 1, r->sched) != 0 ||
	    probe_sched_add(r->sched, &r->probes[MAIN_PROBE_PATRONI],
			    main_view_probe_names[MAIN_PROBE_PATRONI], &probe_patroni_ops,
			    r->patroni) != 0 ||
	    probe_sched_add(r->sched, &r->probes[MAIN_PROBE_PG], r->procs[0].name,
			    &probe_pg_ops, r->pg) != 0 ||
	    pgbouncers_add_routing(r->procs + 1, r->nprocs - 1, r->sched) != 0 ||
	    (r->leader &&
	     probe_sched_add(r->sched, &r->probes[MAIN_PROBE_LEADER],
			     main_view_probe_names[MAIN_PROBE_LEADER], &probe_patroni_ops,
			     r->leader) != 0)) {
		snprintf(err, errlen, "cannot set up the probes (out of memory)");
		goto fail;
	}
	return r;
fail:
	main_probes_free(r);
	return NULL;
}

/* Descriptors: raise the soft limit to the hard one (systemd gives
 * 1024:524288), so a flood of idle connections cannot take the sockets the
 * probes need; then keep waiting agent connections under half of it. */
static void main_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("cannot raise the descriptor limit: %s", strerror(errno));
}

static int main_max_connections(const struct options *o)
{
	struct rlimit rl;
	long budget;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return o->max_connections;
	budget = ((long)rl.rlim_cur - 64) / 2;
	if (budget < 16)
		budget = 16;
	if (o->max_connections > budget) {
		log_warn("--max-connections %d is over half the descriptor limit (%ld): "
			 "using %ld", o->max_connections, (long)rl.rlim_cur, budget);
		return (int)budget;
	}
	return o->max_connections;
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

/* What a configuration needs that can fail, made ready before the running
 * one is touched: a reload commits all of it or none of it. */
struct main_next {
	struct main_probes *run;             /* NULL: the running probes stay */
	struct agent_listen_plan *agent;
	struct http *http;                   /* a side port created for it */
	struct http_listen_plan *http_plan;  /* NULL: no side port */
	struct ctl_reload *ctl;
};

/* Bind what o listens on and the running listeners do not; change nothing
 * that runs. Every listen address gets the agent port (first profile) and
 * each profile's own port, the first profile's too. */
static int main_listen_prepare(struct happac *h, const struct options *o,
			       struct main_next *n, char *err, size_t errlen)
{
	struct agent_endpoint eps[OPTIONS_MAX_LIST * (PROFILE_MAX + 1)];
	int count = 0, naddr = o->listen.count ? o->listen.count : 1;
	struct http *http = h->http;

	for (int k = 0; k < naddr; k++) {
		const char *addr = o->listen.count ? o->listen.items[k] : NULL;

		eps[count++] = (struct agent_endpoint){ addr, o->port, 0 };
		for (int i = 0; i < o->profile_count; i++)
			if (o->profiles[i].port)
				eps[count++] =
					(struct agent_endpoint){ addr, o->profiles[i].port, i };
	}
	n->agent = agent_listen_prepare(h->agent, eps, count, err, errlen);
	if (!n->agent)
		return -1;
	if (!o->http_listen && !http)
		return 0;
	if (!http) {
		n->http = http = http_new(h->base, &main_view_routes, h);
		if (!http) {
			snprintf(err, errlen, "cannot set up the HTTP side port");
			return -1;
		}
		http_set_acl(http, &h->acl);
	}
	n->http_plan = http_listen_prepare(http, o->http_listen ? o->http_addr : NULL,
					   o->http_port, err, errlen);
	return n->http_plan ? 0 : -1;
}

/* Put the prepared listeners in place; nothing here fails. */
static void main_listen_commit(struct happac *h, const struct options *o,
			       struct main_next *n)
{
	agent_listen_commit(h->agent, n->agent);
	n->agent = NULL;
	agent_set_dispatch(h->agent, o->profile_count > 1 ? o->agent_send_wait_ms : -1,
			   main_max_connections(o));
	if (n->http) {
		h->http = n->http;
		n->http = NULL;
	}
	if (n->http_plan) {
		http_listen_commit(h->http, n->http_plan);
		n->http_plan = NULL;
	}
}

/* Undo what was prepared and not committed. */
static void main_next_abort(struct main_next *n)
{
	ctl_reload_abort(n->ctl);
	agent_listen_abort(n->agent);
	http_listen_abort(n->http_plan);
	http_free(n->http);
	main_probes_free(n->run);
	memset(n, 0, sizeof(*n));
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
	if (h->stopping)
		return;
	h->stopping = 1;
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

static int main_lists_differ(const struct options_list *a, const struct options_list *b)
{
	if (a->count != b->count)
		return 1;
	for (int i = 0; i < a->count; i++)
		if (strcmp(a->items[i], b->items[i]))
			return 1;
	return 0;
}

/* True when the probes must be rebuilt for the new options. */
static int main_probes_changed(const struct options *a, const struct options *b)
{
	return strcmp(a->patroni_host, b->patroni_host) ||
	       strcmp(a->patroni_endpoint, b->patroni_endpoint) ||
	       a->patroni_port != b->patroni_port || a->pg_port != b->pg_port ||
	       main_strcmp(a->pg_conninfo, b->pg_conninfo) ||
	       main_strcmp(a->pgb_admin_conninfo, b->pgb_admin_conninfo) ||
	       main_lists_differ(&a->pgb_socket_dirs, &b->pgb_socket_dirs) ||
	       strcmp(a->patroni_scheme, b->patroni_scheme) ||
	       main_strcmp(a->patroni_cafile, b->patroni_cafile) ||
	       main_strcmp(a->patroni_cert, b->patroni_cert) ||
	       main_strcmp(a->patroni_key, b->patroni_key) ||
	       a->patroni_insecure != b->patroni_insecure ||
	       main_wants_json(a) != main_wants_json(b) ||
	       (a->profile_count > 1) != (b->profile_count > 1) ||
	       main_wants_leader(a) != main_wants_leader(b) ||
	       a->interval_ms != b->interval_ms || a->timeout_ms != b->timeout_ms;
}

/* SIGHUP: read every source again. A bad configuration changes nothing. */
static void main_reload(evutil_socket_t sig, short what, void *arg)
{
	struct happac *h = arg;
	struct options next;
	struct main_next n = { 0 };
	char err[512], desc[1024];
	FILE *devnull = fopen("/dev/null", "w");
	enum options_result r;

	(void)sig;
	(void)what;
	if (h->stopping) {
		log_info("SIGHUP while stopping: not reloaded");
		return;
	}
	/* Before the first round systemd has not seen READY=1 yet; it must not
	 * get one from a reload either. */
	if (answer_ready(h->answer))
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
		if (answer_ready(h->answer))
			notify_ready("reload failed: running configuration kept");
		return;
	}
	/* Prepare: every socket and table the new configuration needs. */
	n.ctl = ctl_reload_prepare(h->ctl, h->base, next.control_socket, next.state_file,
				   main_ctl_changed, h, err, sizeof(err));
	if (!n.ctl)
		goto fail;
	if (main_probes_changed(&h->opts, &next)) {
		n.run = main_probes_new(h, &next, err, sizeof(err));
		if (!n.run)
			goto fail;
	}
	if (main_listen_prepare(h, &next, &n, err, sizeof(err)) != 0)
		goto fail;
	/* Commit, in one step: nothing from here on fails. */
	main_listen_commit(h, &next, &n);
	if (n.run) {
		/* The cached verdict keeps answering until the new probes' first
		 * round ends. */
		main_probes_free(h->run);
		h->run = n.run;
		n.run = NULL;
		probe_sched_start(h->run->sched);
	}
	h->ctl = ctl_reload_commit(h->ctl, n.ctl);
	n.ctl = NULL;
	ctl_set_probe(h->ctl, main_hold_ctl, h);
	options_free(&h->opts);
	h->opts = next;
	main_hold_configure(h);
	main_acl(&h->opts, &h->acl);
	answer_set_profiles(h->answer, h->opts.profiles, h->opts.profile_count,
			    options_stale_after_ms(&h->opts));
	main_evaluate(h);
	log_set_level(h->opts.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	options_print_describe(&h->opts, desc, sizeof(desc));
	log_info("reloaded: %s", desc);
	main_warn_settings(&h->opts);
	h->reloads_ok++;
	if (answer_ready(h->answer)) {
		size_t len;

		notify_ready(answer_line(h->answer, 0, &len, NULL));
	}
	return;
fail:
	main_next_abort(&n);
	options_free(&next);
	log_error("reload failed, keeping the running configuration: %s", err);
	h->reloads_failed++;
	if (answer_ready(h->answer))
		notify_ready("reload failed: running configuration kept");
}

/* ---- start-up and teardown */

static int main_setup(struct happac *h)
{
	struct main_next next = { 0 };
	char err[512];

	h->base = event_base_new();
	h->metrics = metrics_new();
	if (!h->base || !h->metrics) {
		log_error("cannot create the event loop");
		return -1;
	}
	h->answer = answer_new();
	if (!h->answer) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	answer_set_profiles(h->answer, h->opts.profiles, h->opts.profile_count,
			    options_stale_after_ms(&h->opts));

	/* Bind first: a taken port must fail before anything else starts. */
	h->agent = agent_new(h->base, main_reply, main_lookup, h);
	if (!h->agent) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	main_acl(&h->opts, &h->acl);
	agent_set_acl(h->agent, &h->acl);
	if (main_listen_prepare(h, &h->opts, &next, err, sizeof(err)) != 0) {
		main_next_abort(&next);
		goto fail;
	}
	main_listen_commit(h, &h->opts, &next);

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
	if (!main_hold_new(h, main_evaluate)) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (h->opts.control_socket) {
		h->ctl = ctl_new(h->base, h->opts.control_socket, h->opts.state_file,
				 main_ctl_changed, h, err, sizeof(err));
		if (!h->ctl)
			goto fail;
		ctl_set_probe(h->ctl, main_hold_ctl, h);
	}

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
	main_hold_free(h->hold);
	main_probes_free(h->run);
	ctl_free(h->ctl);
	agent_free(h->agent);
	answer_free(h->answer);
	http_free(h->http);
	metrics_free(h->metrics);
	if (h->dns)
		evdns_base_free(h->dns, 0);
	{
		struct event *evs[] = { h->sigterm, h->sigint, h->sighup, h->drain };

		for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
			util_event_free(evs[i]);
	}
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
	if (argc > 1 && strcmp(argv[1], "ctl") == 0)
		return ctl_client_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "recipe") == 0)
		return recipe_main(argc - 1, argv + 1);
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
		/* The dump leaves secrets out; say on stderr that they are there. */
		if (h.opts.pg_conninfo_has_password)
			main_warn_secrets(h.opts.pg_conninfo_secrets);
		options_print_dump(&h.opts, stdout);
		options_free(&h.opts);
		return 0;
	}
	/* happac needs no privilege: its ports are above 1024 by default, it
	 * reads nothing secret and writes no file but its state file. Running
	 * it as root only widens what a bug could reach. */
	if (geteuid() == 0 && !h.opts.run_as_root) {
		fprintf(stderr, "happac: refusing to run as root: it needs no privilege; "
				"run it as an unprivileged user (the unit uses haproxy) or "
				"pass --run-as-root\n");
		options_free(&h.opts);
		return 2;
	}
	if (h.opts.verbose)
		log_set_level(LOG_LEVEL_DEBUG);
	signal(SIGPIPE, SIG_IGN);
	main_raise_fd_limit();
	options_print_describe(&h.opts, desc, sizeof(desc));
	log_info("happac %s starting: %s", HAPPAC_VERSION, desc);
	main_warn_settings(&h.opts);
	if (h.opts.pg_isready_path_given)
		log_info("-x/--pg-is-ready-path '%s' is accepted for compatibility and "
			 "unused: happac probes PgBouncer itself, without pg_isready",
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
	lib_curl_unload();
	return rc;
}
