/* probe.h - probe results and the round scheduler.
 *
 * A probe is one asynchronous check of one backend (Patroni, PgBouncer). The
 * scheduler starts every probe of a round at once, gives each attempt one
 * deadline on the monotonic clock, and calls the round callback once every
 * probe has reported. Each attempt ends in exactly one call of probe_done():
 * from the implementation, or from the deadline (after the implementation's
 * cancel() released its handles). */
#ifndef HAPPAC_PROBE_H
#define HAPPAC_PROBE_H

#include <stdint.h>

struct event_base;

/* One enum, one string table (probe_result_names): the same words appear in
 * the log, in metric labels and in the agent's #reason. */
enum probe_result {
	PROBE_OK,
	PROBE_HTTP_STATUS,  /* Patroni answered, but not 200 */
	PROBE_REFUSED,      /* connection refused */
	PROBE_TIMEOUT,      /* no answer before the deadline */
	PROBE_RESOLVE,      /* the host name does not resolve */
	PROBE_CONNECT,      /* other connect failure (unreachable, reset) */
	PROBE_TLS,          /* TLS handshake or verification failed */
	PROBE_BAD_RESPONSE, /* connected, but the answer made no sense */
	PROBE_REJECTED,     /* server says starting/stopping (SQLSTATE 57P03) */
	PROBE_LOGIN_FAILED, /* --pg-conninfo login refused (auth, no database) */
	PROBE_QUERY_FAILED, /* the routing query failed behind PgBouncer */
	PROBE_INTERNAL,     /* local failure (out of memory, library error) */
	PROBE_RESULT_COUNT
};

extern const char *const probe_result_names[PROBE_RESULT_COUNT];

/* What one finished attempt found. */
struct probe_report {
	enum probe_result result;
	int http_status;      /* PROBE_HTTP_STATUS */
	int64_t duration_us;  /* start to done */
	int64_t finished_us;  /* monotonic time of probe_done() */
	char detail[80];      /* e.g. a SQLSTATE or library message; may be "" */
	int in_recovery;      /* routing probe: pg_is_in_recovery(), -1 unknown */
	int64_t lag_bytes;    /* routing probe: replay lag behind the primary's
				 WAL end, -1 unknown (0 on a primary) */
	int wal_receiver;     /* routing probe on a replica: 1 streaming, 0 not
				 (no walreceiver, or not in state streaming),
				 -1 unknown (a primary, or no pg_read_all_stats) */
	int64_t replay_age_ms;/* routing probe: 0 when replay has reached the
				 primary's WAL end, else now() minus the last
				 replayed commit's time; -1 unknown */
	int skipped;          /* routing probe: not run, PgBouncer paused */
};

struct probe;

/* What a probe implementation provides. start() begins an attempt and must
 * end it with probe_done(p, ...) exactly once, unless cancel() is called
 * first; cancel() releases everything the attempt holds and must not call
 * probe_done(). */
struct probe_ops {
	void (*start)(void *impl, struct probe *p);
	void (*cancel)(void *impl);
};

/* Called when every probe of a round has reported. */
typedef void (*probe_round_cb)(void *arg);

struct probe {
	const char *name;          /* "patroni", "pgbouncer": log and #reason */
	const struct probe_ops *ops;
	void *impl;
	struct probe_report last;  /* latest finished attempt */
	int has_result;
	int in_flight;
	int in_recovery;           /* set by the attempt before probe_done() */
	int64_t lag_bytes;         /* likewise */
	int wal_receiver;          /* likewise */
	int64_t replay_age_ms;     /* likewise */
	int skipped;               /* likewise */
	int64_t started_us;
	struct event *deadline;
	struct probe_sched *sched;
};

/* The scheduler: owns nothing but timers; probes are owned by the caller and
 * must outlive it. */
struct probe_sched *probe_sched_new(struct event_base *base, int interval_ms,
				    int timeout_ms, probe_round_cb cb, void *arg);
/* Add a probe before probe_sched_start(). Returns 0 or -1. */
int probe_sched_add(struct probe_sched *s, struct probe *p, const char *name,
		    const struct probe_ops *ops, void *impl);
/* Start the first round now; later rounds follow on the interval. */
void probe_sched_start(struct probe_sched *s);
/* Cancel what is in flight and stop scheduling; then free. */
void probe_sched_free(struct probe_sched *s);
/* Start a round now: at once when none is in flight and the last one
 * started PROBE_KICK_GAP_MS ago, else as soon as that gap has passed; a
 * kick during a round gets one more round after it. However many kicks
 * come, rounds start at most once per PROBE_KICK_GAP_MS. */
#define PROBE_KICK_GAP_MS 50
void probe_sched_kick(struct probe_sched *s);
/* While fast_ms > 0, rounds follow each other every fast_ms (when that is
 * shorter than the interval) instead of every interval; 0 goes back. */
void probe_sched_fast(struct probe_sched *s, int fast_ms);
/* Number of rounds completed so far. */
uint64_t probe_sched_rounds(const struct probe_sched *s);

/* The one exit of an attempt. */
void probe_done(struct probe *p, enum probe_result result, int http_status,
		const char *detail);

#endif
