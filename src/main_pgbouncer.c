/* main_pgbouncer.c - what PgBouncer's own state (--pgbouncer-admin-conninfo)
 * does to a round: the admin console's answer becomes the pause state
 * (pause.h), and a pause stands in PgBouncer's view from before it. */
#include "main_int.h"

#include "pause.h"
#include "pgadmin.h"
#include "pgbouncers.h"
#include "probe.h"
#include "util.h"
#include "verdict.h"

#include <stdio.h>

/* What PgBouncer's admin console said this round, and what it means: a
 * pause keeps PgBouncer's own failures out of the lines and the routing
 * probe out of the paused database from the next round on. */
void main_pgbouncer_state(struct happac *h)
{
	struct main_probes *r = h->run;
	const struct probe_report *ar = &r->probes[r->admin_slot].last;
	const struct probe_report *pr = &r->probes[MAIN_PROBE_PG].last;
	enum pgadmin_state st = ar->result == PROBE_OK ? r->procs[0].state.state
						       : PGADMIN_UNKNOWN;
	char why[96];

	snprintf(why, sizeof(why), "%s%s%s", probe_result_names[ar->result],
		 ar->detail[0] ? ": " : "", ar->detail);
	/* Several PgBouncers: the worst state of them. */
	st = pgbouncers_state(r->procs + 1, r->nprocs - 1, st);
	pause_update(&h->pause, st, why, r->procs[0].state.dbname,
		     pr->result != PROBE_OK ? PAUSE_ROUTING_FAILED
		     : pr->skipped ? PAUSE_ROUTING_SKIPPED : PAUSE_ROUTING_OK,
		     util_mono_us(), h->opts.pause_grace_ms);
}

/* PgBouncer paused (pause.h): the PgBouncer probe of this round is the
 * pause, not PgBouncer's health, so the round is judged with PgBouncer's
 * view from before the pause. The lines stay what they were -- unless
 * Patroni moves: a node demoted during a pause (PAUSE, switchover, RESUME
 * is the usual procedure) must not keep its `up`. */
void main_pgbouncer_pause_view(struct happac *h, struct verdict_probe *pg, int first)
{
	if (h->pause.effect != PAUSE_HOLD || first) {
		if (pg->report) {
			h->pg_unpaused = *pg->report;
			h->pg_unpaused_valid = 1;
		}
	} else if (h->pg_unpaused_valid) {
		pg->report = &h->pg_unpaused;
	}
}
