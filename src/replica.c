/* replica.c - streaming, the lag hold-down and the lag in time. */
#include "replica.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

const char *const replica_streaming_names[REPLICA_STREAMING_COUNT] = {
	[REPLICA_STREAMING_NA] = "n/a",
	[REPLICA_STREAMING_YES] = "streaming",
	[REPLICA_STREAMING_NO] = "not streaming",
	[REPLICA_STREAMING_UNKNOWN] = "unknown",
};

/* Patroni's word, for a node its JSON shows as a running replica or
 * standby leader. */
static void replica_from_patroni(const struct patroni_json *j, struct replica_facts *f)
{
	int reports = patroni_json_reports_replication(j);

	if (j->replication_state[0]) {
		int yes = !strcmp(j->replication_state, "streaming");

		f->streaming = yes ? REPLICA_STREAMING_YES : REPLICA_STREAMING_NO;
		snprintf(f->why, sizeof(f->why), "patroni: %s", j->replication_state);
	} else if (reports == 1) {
		/* 3.0.4+ says replication_state whenever the walreceiver
		 * streams (or archive recovery runs): absent is neither. */
		f->streaming = REPLICA_STREAMING_NO;
		snprintf(f->why, sizeof(f->why), "patroni: no replication_state");
	} else if (reports == 0) {
		f->streaming = REPLICA_STREAMING_UNKNOWN;
		snprintf(f->why, sizeof(f->why),
			 "patroni %d.%d.%d reports no replication_state (3.0.4+)",
			 j->version[0], j->version[1], j->version[2]);
	} else {
		f->streaming = REPLICA_STREAMING_UNKNOWN;
		snprintf(f->why, sizeof(f->why), "patroni's version is not in its JSON");
	}
}

void replica_streaming(const struct patroni_json *j, const struct probe_report *pg,
		       struct replica_facts *f)
{
	int in_recovery = pg && pg->result == PROBE_OK ? pg->in_recovery : -1;
	int patroni_replica = j && j->running &&
			      (j->role == PATRONI_JSON_ROLE_REPLICA ||
			       j->role == PATRONI_JSON_ROLE_STANDBY_LEADER);

	f->why[0] = '\0';
	f->streaming = REPLICA_STREAMING_NA;
	if (in_recovery == 0 || (in_recovery < 0 && !patroni_replica))
		return;
	/* The routing probe asked the walreceiver itself: the direct word. */
	if (in_recovery == 1 && pg->wal_receiver >= 0) {
		f->streaming = pg->wal_receiver ? REPLICA_STREAMING_YES : REPLICA_STREAMING_NO;
		snprintf(f->why, sizeof(f->why), "pg_stat_wal_receiver");
		return;
	}
	if (patroni_replica) {
		replica_from_patroni(j, f);
		return;
	}
	f->streaming = REPLICA_STREAMING_UNKNOWN;
	snprintf(f->why, sizeof(f->why), "%s",
		 j ? "patroni does not show a running replica"
		   : "no patroni status JSON, pg_stat_wal_receiver hidden");
}

int replica_hold_step(struct replica_hold *h, int over, int under, int64_t now_us,
		      int64_t hold_us)
{
	int toward = h->cut ? under : over;

	if (!toward) {
		h->since_us = 0;
		return h->cut;
	}
	if (!h->since_us)
		h->since_us = now_us;
	if (now_us - h->since_us >= hold_us) {
		h->cut = !h->cut;
		h->since_us = 0;
	}
	return h->cut;
}

int64_t replica_time_lag(struct replica_age *a, int64_t replay_age_ms, int64_t now_us)
{
	int64_t since_ms;

	if (replay_age_ms < 0)
		return -1;
	if (replay_age_ms == 0) {
		a->seen = 1;
		a->behind_since_us = 0;
		return 0;
	}
	/* Seen caught up before: it fell behind since then, however old its
	 * last replayed commit is. First sight: only the age can tell. */
	if (!a->behind_since_us)
		a->behind_since_us = a->seen ? now_us : now_us - replay_age_ms * 1000;
	a->seen = 1;
	since_ms = (now_us - a->behind_since_us) / 1000;
	return since_ms < replay_age_ms ? since_ms : replay_age_ms;
}

static void replica_watch_log_streaming(const struct replica_facts *f)
{
	switch (f->streaming) {
	case REPLICA_STREAMING_YES:
		log_info("replication: streaming (%s)", f->why);
		break;
	case REPLICA_STREAMING_NO:
		log_warn("replication: this replica is not streaming (%s): replica "
			 "profiles with streaming = required say down", f->why);
		break;
	case REPLICA_STREAMING_UNKNOWN:
		log_warn("replication: happac cannot tell whether this replica streams "
			 "(%s); profiles do not check streaming until it can "
			 "(--pg-conninfo asks pg_stat_wal_receiver)", f->why);
		break;
	case REPLICA_STREAMING_NA:
	case REPLICA_STREAMING_COUNT:
		break;
	}
}

void replica_watch_update(struct replica_watch *w, const struct patroni_json *j,
			  const struct probe_report *pg)
{
	struct replica_facts f;

	if (j) {
		if (j->pause != w->paused && (w->known || j->pause))
			log_info("patroni: cluster %s; verdicts are unchanged",
				 j->pause ? "paused (maintenance mode)" : "resumed");
		if (j->failsafe_active != w->failsafe && (w->known || j->failsafe_active)) {
			if (j->failsafe_active)
				log_warn("patroni: failsafe mode active: the DCS is "
					 "unreachable, Patroni keeps the leader");
			else
				log_info("patroni: failsafe mode over");
		}
		w->known = 1;
		w->paused = j->pause;
		w->failsafe = j->failsafe_active;
	}
	replica_streaming(j, pg, &f);
	if (f.streaming != w->facts.streaming)
		replica_watch_log_streaming(&f);
	w->facts = f;
}
