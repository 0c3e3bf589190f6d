/* replica.h - what a replica's replication looks like this round, and the
 * hold-down that keeps a lag spike from cutting it.
 *
 * Streaming: known from the routing probe's pg_stat_wal_receiver (through
 * PgBouncer, --pg-conninfo), else from Patroni's replication_state, which
 * Patroni reports from 3.0.4 on (then its absence on a running replica means
 * "not streaming"). Neither: unknown, and never guessed.
 *
 * Lag in time: the routing probe says 0 once replay has reached the
 * primary's WAL end, else the age of the last replayed commit. On a primary
 * that was idle and just wrote again, that age is the idle time, not a lag:
 * replica_time_lag() takes the smaller of it and the time since happac first
 * saw the replica behind.
 *
 * replica_watch_*: the facts /status shows (pause, failsafe, streaming), and
 * one log line for each change. Pure except for the log lines. */
#ifndef HAPPAC_REPLICA_H
#define HAPPAC_REPLICA_H

#include "patroni_json.h"
#include "probe.h"

#include <stddef.h>
#include <stdint.h>

enum replica_streaming {
	REPLICA_STREAMING_NA,      /* not a replica this round (or no answer) */
	REPLICA_STREAMING_YES,
	REPLICA_STREAMING_NO,
	REPLICA_STREAMING_UNKNOWN, /* a replica, but nothing here can tell */
	REPLICA_STREAMING_COUNT
};
extern const char *const replica_streaming_names[REPLICA_STREAMING_COUNT];

struct replica_facts {
	enum replica_streaming streaming;
	char why[64];              /* the evidence, for #reasons, logs, /status */
};

/* Streaming from this round's Patroni JSON (NULL: none) and routing probe
 * report (NULL or a failed probe: none). */
void replica_streaming(const struct patroni_json *j, const struct probe_report *pg,
		       struct replica_facts *f);

/* Lag hold-down: a cut only after `over` has held for hold_us, a return only
 * after `under` has held for as long. Zero-initialised. */
struct replica_hold {
	int cut;
	int64_t since_us;          /* start of the current run towards a change; 0 none */
};

/* One round: over (lag at or above the cut), under (at or below full).
 * Returns the cut state after it. hold_us 0: at once. */
int replica_hold_step(struct replica_hold *h, int over, int under, int64_t now_us,
		      int64_t hold_us);

/* What replica_time_lag() remembers. Zero-initialised. */
struct replica_age {
	int seen;                  /* a round has been measured */
	int64_t behind_since_us;   /* first round seen behind in this run; 0 caught up */
};

/* The lag in ms from the routing probe's replay age (-1 unknown: returns -1
 * and forgets nothing). */
int64_t replica_time_lag(struct replica_age *a, int64_t replay_age_ms, int64_t now_us);

/* Cluster facts for /status and the log. Zero-initialised. */
struct replica_watch {
	int known;                 /* a round with Patroni's JSON has been seen */
	int paused, failsafe;
	struct replica_facts facts;
};

/* Take this round's facts; log each change once. */
void replica_watch_update(struct replica_watch *w, const struct patroni_json *j,
			  const struct probe_report *pg);

#endif
