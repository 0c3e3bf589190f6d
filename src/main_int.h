/* main_int.h - the daemon's state, shared by main.c (start-up, rounds,
 * reload, shutdown) and main_view.c (what the HTTP side port serves). No
 * other file includes it. */
#ifndef HAPPAC_MAIN_INT_H
#define HAPPAC_MAIN_INT_H

#include "acl.h"
#include "options.h"
#include "pause.h"
#include "pgadmin.h"
#include "pgbouncers.h"
#include "probe.h"
#include "profile.h"
#include "replica.h"
#include "verdict.h"

#include <event2/event.h>
#include <stdint.h>

struct agent;
struct answer;
struct ctl;
struct evdns_base;
struct http;
struct http_routes;
struct metrics;
struct probe_patroni;
struct probe_pg;

/* MAIN_PROBE_LEADER runs only when a profile needs the leader lock that
 * the -k endpoint's code cannot show (profile_needs_leader_probe()). */
/* MAIN_PROBE_PGADMIN (--pgbouncer-admin-conninfo) takes the next free
 * slot, main_probes.admin_slot: 2, or 3 after the leader probe. */
enum main_probe { MAIN_PROBE_PATRONI, MAIN_PROBE_PG, MAIN_PROBE_LEADER, MAIN_PROBE_PGADMIN,
		  MAIN_PROBE_COUNT };

extern const char *const main_view_probe_names[MAIN_PROBE_COUNT];

/* What one configuration runs: rebuilt whole on a reload that changes it. */
struct main_probes {
	struct probe_sched *sched;
	struct probe probes[MAIN_PROBE_COUNT];
	int count;                      /* probes in use: 2, or 3 with the leader */
	struct probe_patroni *patroni;
	struct probe_pg *pg;            /* procs[0].pg */
	struct probe_patroni *leader;   /* OPTIONS /leader, or NULL */
	struct probe_pg *admin;         /* PgBouncer's admin console, or NULL */
	int admin_slot;                 /* its index in probes[], -1 none */
	/* PgBouncer: [0] is -h:-r, or the first --pgbouncer-socket-dir (pg and
	 * admin above are its); the others are probed the same way. */
	struct pgbouncers_proc procs[PGBOUNCERS_MAX];
	int nprocs;
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
	int stopping; /* SIGTERM/SIGINT seen: a reload would bind ports again */
	uint64_t reloads_ok, reloads_failed;
	struct answer *answer;  /* the lines the agent and HTTP answer with */
	struct ctl *ctl;        /* operator overrides; NULL when off */
	struct pause pause;     /* PgBouncer's pause/disable, per round */
	/* PgBouncer's view from the last round it was not paused: a pause
	 * stands in with it, so Patroni still moves the lines. */
	struct probe_report pg_unpaused;
	int pg_unpaused_valid;
	struct replica_watch watch; /* pause, failsafe, streaming: /status */
	struct main_hold *hold; /* the handover: peers, fast rounds, stopping */
};

/* main_pgbouncer.c: this round's admin-console answer into h->pause; and
 * during a pause, PgBouncer's view from before it in place of pg. */
void main_pgbouncer_state(struct happac *h);
void main_pgbouncer_pause_view(struct happac *h, struct verdict_probe *pg, int first);

/* Each probe's name, target and latest report, for the verdict and /status. */
void main_view_probes(struct happac *h, struct verdict_probe *vp);

/* The operator override in force, in the one mapping from ctl's states. */
enum profile_admin main_view_admin(const struct happac *h);

/* The handover (main_hold.c): a new role's hold ended by the peers
 * (peer.h), fast rounds while a role changes, `happac ctl probe` and
 * `stopping`. evaluate composes every line again (main.c: when the peers
 * end a hold, when Patroni is stopping). main_hold_new() NULL: out of
 * memory. */
struct main_hold *main_hold_new(struct happac *h, void (*evaluate)(struct happac *h));
void main_hold_free(struct main_hold *mh);
/* After a reload: the peers as the options now say. */
void main_hold_configure(struct happac *h);
/* Its part of a round's inputs; summary gets the release, if any. */
void main_hold_inputs(struct happac *h, struct profile_inputs *in, char *summary,
		      size_t len);
/* At the end of a probe round, after its lines were composed: the pace of
 * the next rounds, and the peers to ask. */
void main_hold_evaluated(struct happac *h);
/* The control socket's probe and stopping requests. */
void main_hold_ctl(void *arg, int stopping);
/* The /status object. */
void main_hold_status(const struct happac *h, char *buf, size_t len);

/* /health, /status and /metrics (main_view.c). */
extern const struct http_routes main_view_routes;

#endif
