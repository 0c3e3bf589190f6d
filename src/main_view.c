/* main_view.c - the daemon's state as others see it: each probe as the
 * verdict reads it, the operator override in profile terms, and what the
 * HTTP side port serves (/health from the cached lines, /status and /metrics
 * from views filled here, so status.c and metrics.c only render). */
#include "main_int.h"

#include "agent.h"
#include "answer.h"
#include "ctl.h"
#include "http.h"
#include "metrics.h"
#include "probe_patroni.h"
#include "probe_pg.h"
#include "status.h"
#include "util.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

_Static_assert(MAIN_PROBE_COUNT <= STATUS_MAX_PROBES && MAIN_PROBE_COUNT <= METRICS_MAX_PROBES,
	       "the views hold every probe");

const char *const main_view_probe_names[MAIN_PROBE_COUNT] = {
	[MAIN_PROBE_PATRONI] = "patroni",
	[MAIN_PROBE_PG] = "pgbouncer",
	[MAIN_PROBE_LEADER] = "patroni-leader",
	[MAIN_PROBE_PGADMIN] = "pgbouncer-admin",
};

/* Probe i as the verdict sees it: name and latest report, with where it
 * goes (target, path for HTTP, host for resolve errors). */
static struct verdict_probe main_view_probe(const struct main_probes *r, int i,
					    const char *target, const char *path,
					    const char *host)
{
	return (struct verdict_probe){
		.name = r->probes[i].name,
		.report = r->probes[i].has_result ? &r->probes[i].last : NULL,
		.target = target,
		.path = path,
		.host = host,
	};
}

void main_view_probes(struct happac *h, struct verdict_probe *vp)
{
	struct main_probes *r = h->run;

	vp[MAIN_PROBE_PATRONI] = main_view_probe(r, MAIN_PROBE_PATRONI,
						 probe_patroni_target(r->patroni),
						 probe_patroni_path(r->patroni),
						 h->opts.patroni_host);
	vp[MAIN_PROBE_PG] = main_view_probe(r, MAIN_PROBE_PG, probe_pg_target(r->pg), NULL,
					    probe_pg_host(r->pg));
	/* Several PgBouncers: the first failing one speaks for them. */
	pgbouncers_fold(r->procs + 1, r->nprocs - 1, &vp[MAIN_PROBE_PG]);
	if (r->leader)
		vp[MAIN_PROBE_LEADER] = main_view_probe(r, MAIN_PROBE_LEADER,
							probe_patroni_target(r->leader),
							probe_patroni_path(r->leader),
							h->opts.patroni_host);
	if (r->admin)
		vp[r->admin_slot] = main_view_probe(r, r->admin_slot,
						    probe_pg_target(r->admin), NULL,
						    probe_pg_host(r->admin));
}

enum profile_admin main_view_admin(const struct happac *h)
{
	static const enum profile_admin from_ctl[CTL_ADMIN_COUNT] = {
		[CTL_ADMIN_READY] = PROFILE_ADMIN_NONE,
		[CTL_ADMIN_DRAIN] = PROFILE_ADMIN_DRAIN,
		[CTL_ADMIN_MAINT] = PROFILE_ADMIN_MAINT,
	};

	return h->ctl ? from_ctl[ctl_get(h->ctl)->admin] : PROFILE_ADMIN_NONE;
}

static int main_view_health(void *arg, const char *profile, struct evbuffer *out)
{
	struct happac *h = arg;
	int i = profile ? answer_lookup(h->answer, profile) : 0;
	size_t len;
	const char *line;
	enum profile_health health;

	struct profile builtin;

	/* A built-in profile nobody configured: its rule is judged each round
	 * anyway (answer_path_line). */
	if (i < 0 && profile_builtin(profile, &builtin) == 0)
		line = answer_path_line(h->answer, builtin.rule, &len, &health);
	else if (i < 0)
		return -1;
	else
		line = answer_line(h->answer, i, &len, &health);
	evbuffer_add(out, line, len);
	/* Passing, not merely up: "up drain"/"up maint" take the node out of
	 * HAProxy's rotation, so a catalogue must not list it either. */
	return health == PROFILE_HEALTH_PASSING;
}

/* The lag check of ?lag= at request time: Patroni applies it to replicas
 * only. Returns the code, or 400 with out saying why. */
static int main_view_lag(struct happac *h, int64_t max_lag, struct evbuffer *out)
{
	const struct patroni_json *j = probe_patroni_json(h->run->patroni);
	const struct probe *pg = &h->run->probes[MAIN_PROBE_PG];
	int64_t lag = pg->has_result ? pg->last.lag_bytes : -1;

	if (!j || j->role != PATRONI_JSON_ROLE_REPLICA)
		return 200;
	if (lag < 0) {
		evbuffer_add_printf(out, "lag: happac does not know this replica's lag "
				    "(it measures it through --pg-conninfo only)\n");
		return 400;
	}
	if (lag <= max_lag)
		return 200;
	evbuffer_add_printf(out, "down #replication lag %lldB above lag=%lldB\n",
			    (long long)lag, (long long)max_lag);
	return 503;
}

/* One of Patroni's health paths, from the rule's cached line: 200 while it
 * passes (PgBouncer included), else 503. */
static int main_view_patroni(void *arg, const char *path, char *query, struct evbuffer *out)
{
	struct happac *h = arg;
	int rule = profile_rule_for_path(path), code;
	struct profile_query q;
	char err[160];
	size_t len;
	const char *line;
	enum profile_health health;

	if (rule < 0)
		return 0;
	if (profile_parse_query((enum profile_rule)rule, query, &q, err, sizeof(err)) != 0) {
		evbuffer_add_printf(out, "%s\n", err);
		return 400;
	}
	line = answer_path_line(h->answer, (enum profile_rule)rule, &len, &health);
	code = health == PROFILE_HEALTH_PASSING ? 200 : 503;
	/* Out of rotation is not dead: an operator's drain or maint must not
	 * make a liveness probe restart anything (Patroni's /liveness stays 200
	 * in its maintenance mode too). */
	if (rule == PROFILE_RULE_LIVENESS && health == PROFILE_HEALTH_OUT)
		code = 200;
	if (code == 200 && q.max_lag >= 0) {
		code = main_view_lag(h, q.max_lag, out);
		if (code != 200)
			return code;
	}
	evbuffer_add(out, line, len);
	return code;
}

static void main_view_status(void *arg, struct evbuffer *out)
{
	struct happac *h = arg;
	struct status_view v;
	struct verdict_probe vp[MAIN_PROBE_COUNT];
	char lines[PROFILE_MAX][VERDICT_LINE_MAX], override[512], hold[1536];
	size_t len;
	enum profile_health health;

	memset(&v, 0, sizeof(v));
	v.line = answer_line(h->answer, 0, &len, &health);
	v.up = health != PROFILE_HEALTH_DOWN;
	v.passing = health == PROFILE_HEALTH_PASSING;
	v.since_s = answer_since(h->answer, 0);
	v.now_s = util_wall_s();
	v.now_us = util_mono_us();
	v.opts = &h->opts;
	main_view_probes(h, vp);
	v.probe_count = h->run->count;
	for (int i = 0; i < h->run->count; i++) {
		v.probes[i].name = vp[i].name;
		v.probes[i].target = vp[i].target;
		v.probes[i].report = vp[i].report;
		v.probes[i].in_flight = h->run->probes[i].in_flight;
	}
	v.profile_count = answer_count(h->answer);
	for (int i = 0; i < v.profile_count && i < PROFILE_MAX; i++) {
		const struct profile *p = answer_profile(h->answer, i);
		const char *l = answer_line(h->answer, i, &len, NULL);

		snprintf(lines[i], sizeof(lines[i]), "%s", l);
		v.profiles[i].name = p->name;
		v.profiles[i].rule = profile_rule_names[p->rule];
		v.profiles[i].wrong_role = profile_wrong_names[p->wrong];
		v.profiles[i].port = i == 0 ? h->opts.port : p->port;
		v.profiles[i].line = lines[i];
		v.profiles[i].passing = answer_health(h->answer, i) == PROFILE_HEALTH_PASSING;
		v.profiles[i].since_s = answer_since(h->answer, i);
	}
	if (h->run->admin) {
		v.pgb_admin_state = pgadmin_state_names[h->pause.state];
		v.pgb_paused_s = pause_seconds(&h->pause, v.now_us);
	}
	if (h->ctl) {
		ctl_status(h->ctl, v.now_s, override, sizeof(override));
		v.override_json = override;
	}
	v.cluster = &h->watch;
	main_hold_status(h, hold, sizeof(hold));
	v.hold_json = hold;
	status_render(&v, out);
}

static void main_view_metrics(void *arg, struct evbuffer *out)
{
	struct happac *h = arg;
	const struct agent_stats *as = agent_stats(h->agent);
	struct metrics_view v;

	memset(&v, 0, sizeof(v));
	v.up = answer_health(h->answer, 0) != PROFILE_HEALTH_DOWN;
	v.verdict_since_s = answer_since(h->answer, 0);
	v.checks_up = as->up;
	v.checks_down = as->down;
	v.checks_failed = as->failed;
	v.rounds = probe_sched_rounds(h->run->sched);
	v.probe_count = h->run->count;
	for (int i = 0; i < h->run->count; i++) {
		v.probe_names[i] = h->run->probes[i].name;
		v.probe_in_flight[i] = h->run->probes[i].in_flight;
	}
	v.reloads_ok = h->reloads_ok;
	v.reloads_failed = h->reloads_failed;
	v.transitions = answer_transitions(h->answer);
	v.denied = as->denied + (h->http ? http_stats(h->http)->denied : 0);
	v.dispatched = as->dispatched;
	v.unknown_profile = as->unknown_profile;
	v.over_cap = as->evicted + as->over_cap;
	v.profile_count = answer_count(h->answer);
	for (int i = 0; i < v.profile_count && i < PROFILE_MAX; i++) {
		v.profile_names[i] = answer_profile(h->answer, i)->name;
		v.profile_up[i] = answer_health(h->answer, i) != PROFILE_HEALTH_DOWN;
	}
	v.override = main_view_admin(h);
	v.pgb_admin = h->run->admin != NULL;
	v.pgb_paused = pgadmin_is_pause(h->pause.state);
	v.pgb_paused_s = pause_seconds(&h->pause, util_mono_us());
	metrics_render(h->metrics, &v, out);
}

const struct http_routes main_view_routes = {
	.health = main_view_health,
	.status = main_view_status,
	.metrics = main_view_metrics,
	.patroni = main_view_patroni,
};

