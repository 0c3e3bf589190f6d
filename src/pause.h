/* pause.h - what PgBouncer's own state (--pgbouncer-admin-conninfo) means
 * for the verdict, round by round.
 *
 * A pause (PAUSE, PAUSE db, SUSPEND) holds new logins until RESUME; it is
 * what operators do to restart or switch PostgreSQL without dropping
 * clients, so it must never turn into down: the lines stay what they were,
 * and only after --pause-grace of continuous pause do they say `up drain`.
 * A DISABLEd routed database refuses new logins: down. A PgBouncer shutting
 * down (its listener closed, its clients finishing) says `up drain` at once. An admin console
 * that does not answer changes nothing. One log line per state change. */
#ifndef HAPPAC_PAUSE_H
#define HAPPAC_PAUSE_H

#include "pgadmin.h"
#include "verdict.h"

#include <stddef.h>
#include <stdint.h>

enum pause_effect {
	PAUSE_NONE,  /* judge as without the option */
	PAUSE_HOLD,  /* keep every line as it is */
	PAUSE_DRAIN, /* up drain #reason */
	PAUSE_DOWN,  /* down #reason */
};

struct pause {
	enum pgadmin_state state;  /* as last logged */
	int logged;                /* a state was logged at all */
	int64_t since_us;          /* start of the current pause, 0 none */
	int64_t resumed_us;        /* end of the last pause, 0 none */
	enum pause_effect effect;
	char reason[VERDICT_REASON_MAX];
};

/* How long after RESUME a failing routing probe is the pool refilling (the
 * held clients go first), not a failure: the lines stay meanwhile. */
#define PAUSE_SETTLE_US (5 * 1000000LL)

/* What the routing probe did this round. */
enum pause_routing { PAUSE_ROUTING_OK, PAUSE_ROUTING_SKIPPED, PAUSE_ROUTING_FAILED };

/* This round: state (PGADMIN_UNKNOWN when the admin probe failed, why then
 * in detail), the routed database's name, the routing probe's outcome, the
 * monotonic time and the grace. */
void pause_update(struct pause *p, enum pgadmin_state state, const char *detail,
		  const char *dbname, enum pause_routing routing, int64_t now_us,
		  int grace_ms);

/* Seconds of the current pause, 0 when none. */
double pause_seconds(const struct pause *p, int64_t now_us);

#endif
