/* profile.h - profiles: what "fit for traffic" means for one kind of backend.
 *
 * A profile names a Patroni role rule (primary, replica, read-only, sync,
 * async, standby-leader, quorum, read-only-quorum), the role the routing probe must see through
 * PgBouncer, what to say when the node is healthy but in the wrong role
 * (down, drain or maint), optional replica-lag weights, and optionally a
 * listener port of its own. All profiles share one probe schedule: one
 * Patroni request and one PgBouncer probe per interval, however many
 * profiles there are.
 *
 * profile_evaluate() is pure: probe results, the operator override and the
 * profile's own memory in, the agent line out. */
#ifndef HAPPAC_PROFILE_H
#define HAPPAC_PROFILE_H

#include "patroni_json.h"
#include "probe.h"
#include "replica.h"
#include "verdict.h"

#include <stddef.h>
#include <stdint.h>

#define PROFILE_MAX 8
#define PROFILE_NAME_MAX 32

/* The role rule: the same decisions Patroni's api.py makes per endpoint. */
enum profile_rule {
	PROFILE_RULE_PRIMARY,
	PROFILE_RULE_REPLICA,
	PROFILE_RULE_READ_ONLY,
	PROFILE_RULE_SYNC,
	PROFILE_RULE_ASYNC,
	PROFILE_RULE_STANDBY_LEADER,
	PROFILE_RULE_QUORUM,            /* Patroni 4's /quorum */
	PROFILE_RULE_READ_ONLY_QUORUM,  /* and /read-only-quorum */
	PROFILE_RULE_LEADER,            /* the leader lock, either kind of cluster */
	PROFILE_RULE_READ_ONLY_SYNC,    /* the leader, or a synchronous standby */
	PROFILE_RULE_HEALTH,            /* PostgreSQL is running */
	PROFILE_RULE_LIVENESS,          /* Patroni answers */
	PROFILE_RULE_READINESS,         /* the leader, or PostgreSQL running */
	PROFILE_RULE_ENDPOINT,    /* only Patroni's answer for the endpoint */
	PROFILE_RULE_COUNT
};
extern const char *const profile_rule_names[PROFILE_RULE_COUNT];

enum profile_wrong { PROFILE_WRONG_DOWN, PROFILE_WRONG_DRAIN, PROFILE_WRONG_MAINT,
		     PROFILE_WRONG_COUNT };
extern const char *const profile_wrong_names[PROFILE_WRONG_COUNT];

/* What a reply line means for new traffic: the one notion of "passing"
 * that /health, `happac check` and the Consul checks share. Computed by
 * profile_evaluate() from the words it writes, never read back from the
 * line. DRAIN and MAINT are up for HAProxy but take the server out of
 * rotation, so they do not pass. */
enum profile_health {
	PROFILE_HEALTH_DOWN,      /* "down ..." */
	PROFILE_HEALTH_OUT,       /* "up drain", "up maint": alive, no new traffic */
	PROFILE_HEALTH_PASSING,   /* "up", "up ready", "up NN%": HAProxy sends
				     new traffic */
};

/* Whether a replica-type profile needs the node to stream (replica.h). */
enum profile_streaming { PROFILE_STREAMING_REQUIRED, PROFILE_STREAMING_IGNORED,
			 PROFILE_STREAMING_COUNT };
extern const char *const profile_streaming_names[PROFILE_STREAMING_COUNT];

/* How long lag must stay at or above its cut before it cuts, and at or
 * below its full mark before the node returns, unless lag-hold says. */
#define PROFILE_LAG_HOLD_MS 5000

/* Operator override, as the ctl module reports it. */
enum profile_admin { PROFILE_ADMIN_NONE, PROFILE_ADMIN_DRAIN, PROFILE_ADMIN_MAINT };

struct profile {
	char name[PROFILE_NAME_MAX];
	enum profile_rule rule;
	char endpoint[256];       /* Patroni endpoint for PROFILE_RULE_ENDPOINT and
				     for the profile whose answer is asked for */
	enum profile_wrong wrong; /* healthy node in the wrong role */
	int64_t lag_full;         /* bytes: up to here weight 100% (0: no weights) */
	int64_t lag_cut;          /* bytes: from here down #lag */
	int64_t lag_full_ms;      /* the same in time (0: none) */
	int64_t lag_cut_ms;
	int64_t lag_hold_ms;      /* with lag_hold_set; else PROFILE_LAG_HOLD_MS */
	int lag_hold_set;
	enum profile_streaming streaming; /* replica-type rules only */
	int port;                 /* own listener, 0 = none */
};

/* What a profile remembers between rounds. Zero-initialised. */
struct profile_state {
	int admin_said;           /* we reported drain/maint: must clear it */
	int64_t ready_until_us;   /* say `ready` until then */
	struct replica_hold lag;  /* cut for lag; back only at lag_full */
	struct replica_age age;   /* for the lag in time */
	int64_t stream_ok_since_us; /* -1: cut, not streaming; > 0: streaming
				       again since then (held); 0: neither */
	int weight;               /* last weight said (0: none) */
	int64_t role_ok_since_us; /* when Patroni first said "right role" in the
				     current run of such answers; 0: not now */
	int hold_over;            /* the hold of that run ended (its time, or
				     the peers: peers_clear_us) */
};

/* Everything one round found, shared by all profiles. */
struct profile_inputs {
	const struct verdict_probe *patroni;  /* its report NULL: no result */
	const struct verdict_probe *pg;
	int patroni_code_profile;             /* index of the profile the Patroni
						 request answered for */
	const struct patroni_json *json;      /* NULL: no JSON (OPTIONS, or bad) */
	int64_t lag_bytes;                    /* routing probe, -1 unknown */
	int timeout_ms;
	enum profile_admin admin;             /* operator override */
	int admin_was_set;                    /* an override we reported ended */
	int ramp_weight;                      /* 1..100 during a ramp, else -1 */
	int64_t now_us;
	int ready_window_ms;                  /* how long `ready` is said */
	int64_t hold_us;                      /* a new "right role" must last this
						 long before it counts (interval +
						 timeout + haproxy-agent-inter:
						 options_hold_ms()) */
	int first_round;                      /* happac just started: no hold */
	const char *pgb_down;                 /* PgBouncer's admin console: a
						 #reason for down (DISABLE) */
	const char *pgb_drain;                /* ... for up drain (a pause past
						 --pause-grace); NULL: none */
	const int64_t *peers_clear_us;        /* per profile: when the latest ask
						 of the other members' agents
						 that all said down began (0:
						 none); later than the hold's
						 start, it ends the hold (peer.h).
						 NULL: no peers */
	int patroni_stopping;                 /* Patroni's before_stop ran: down
						 until a round sees it running
						 again */
	const struct verdict_probe *leader;   /* OPTIONS /leader when a profile
						 needs the leader lock that the
						 -k endpoint's code cannot show
						 (profile_needs_leader_probe);
						 NULL otherwise */
};

/* Fill p with the built-in profile called name ("primary", "replica",
 * "read-only", "sync", "async", "standby-leader"). Returns 0 or -1. */
int profile_builtin(const char *name, struct profile *p);

/* The profile the predecessor's -k ENDPOINT meant: its rule when the
 * endpoint is a built-in one, PROFILE_RULE_ENDPOINT otherwise. */
void profile_from_endpoint(const char *endpoint, struct profile *p);

/* The role pg_is_in_recovery() must show for this profile: 0, 1, -1 any. */
int profile_expect_recovery(const struct profile *p);

/* True when profiles[1..n-1] need Patroni's leader lock (rules primary,
 * standby-leader, read-only) and the code of the -k endpoint (profile 0)
 * cannot show it: then each round also asks OPTIONS /leader. */
int profile_needs_leader_probe(const struct profile *profiles, int n);

/* The rule Patroni applies to an HTTP path ("/primary", "/read-only-sync",
 * "/standby_leader", ...: its documented spellings, exact, without the
 * query), or -1 when the path is none of them. The side port serves these
 * from the cache (http.c). */
int profile_rule_for_path(const char *path);

/* The query parameters Patroni reads on a health path, as happac can
 * honour them. */
struct profile_query {
	int64_t max_lag;          /* ?lag=SIZE; -1: not given or not used by the rule */
};

/* Parse query (after '?', NULL: none; modified) for the path rule: ?lag=
 * where Patroni applies it (the replica rules), tag_KEY=VALUE ignored where
 * Patroni ignores tags (leader, primary, standby-leader, liveness,
 * readiness), other keys ignored as Patroni does. Returns 0, or -1 with err
 * naming the parameter happac cannot honour (a tag elsewhere, or
 * replication_state: neither is in what happac keeps from the status JSON)
 * or the bad value. */
int profile_parse_query(enum profile_rule rule, char *query, struct profile_query *q,
			char *err, size_t errlen);

/* The built-in profile a path rule is evaluated as: the rule, wrong role
 * down, no lag weights, no port. */
void profile_for_rule(enum profile_rule rule, struct profile *p);

/* True when the profile's rule sends traffic to replicas, so that
 * `streaming = required` applies to it (replica, sync, async, quorum,
 * standby-leader, and the read-only rules on a replica). */
int profile_rule_streams(enum profile_rule rule);

/* The hold-down of the profile's lag cut, in microseconds. */
int64_t profile_lag_hold_us(const struct profile *p);

/* Render the agent line for profile i. st is updated (hysteresis, ready
 * window). Returns what the line means for traffic (see profile_health). */
enum profile_health profile_evaluate(const struct profile *profiles, int i,
				     struct profile_state *st, const struct profile_inputs *in,
				     char *line, size_t size, size_t *len);

/* The largest size profile_parse_bytes() accepts: 1024TB. Far above any
 * replication lag, and 99 times it still fits in an int64_t (weights). */
#define PROFILE_BYTES_MAX (1LL << 50)

/* Parse "64MB", "512kB", "1GB", "1048576" (bytes) as Patroni does for
 * ?lag=. Returns 0 and *bytes, or -1 with err saying why (not a size, a
 * negative size, above PROFILE_BYTES_MAX). */
int profile_parse_bytes(const char *s, int64_t *bytes, char *err, size_t errlen);

#endif
