/* pause.c - PgBouncer's state -> hold, drain, down or nothing. */
#include "pause.h"

#include "log.h"

#include <stdio.h>

static void pause_log(struct pause *p, enum pgadmin_state state, const char *detail,
		      const char *dbname)
{
	if (p->logged && state == p->state)
		return;
	p->logged = 1;
	if (state == PGADMIN_UNKNOWN)
		log_warn("pgbouncer admin: state unknown (%s): judging as without "
			 "--pgbouncer-admin-conninfo", detail && *detail ? detail : "no answer");
	else if (state == PGADMIN_DB_PAUSED || state == PGADMIN_DB_DISABLED)
		log_info("pgbouncer admin: %s -> %s (%s)", pgadmin_state_names[p->state],
			 pgadmin_state_names[state], dbname ? dbname : "?");
	else
		log_info("pgbouncer admin: %s -> %s", pgadmin_state_names[p->state],
			 pgadmin_state_names[state]);
	p->state = state;
}

static void pause_grace_word(int grace_ms, char *buf, size_t len)
{
	if (grace_ms % 1000 == 0)
		snprintf(buf, len, "%ds", grace_ms / 1000);
	else
		snprintf(buf, len, "%dms", grace_ms);
}

void pause_update(struct pause *p, enum pgadmin_state state, const char *detail,
		  const char *dbname, enum pause_routing routing, int64_t now_us,
		  int grace_ms)
{
	char grace[24];

	pause_log(p, state, detail, dbname);
	p->reason[0] = '\0';
	if (!pgadmin_is_pause(state)) {
		if (p->since_us)
			p->resumed_us = now_us;
		p->since_us = 0;
		/* New logins are refused, the clients it has finish: keep
		 * them, send no new ones, until it exits. */
		if (state == PGADMIN_SHUTTING_DOWN) {
			snprintf(p->reason, sizeof(p->reason), "pgbouncer shutting down");
			p->effect = PAUSE_DRAIN;
			return;
		}
		if (state == PGADMIN_DB_DISABLED) {
			snprintf(p->reason, sizeof(p->reason), "pgbouncer: database %s disabled",
				 dbname ? dbname : "?");
			p->effect = PAUSE_DOWN;
			return;
		}
		/* Resumed, but this round's routing probe was not run, or the
		 * pool is still refilling: the old line a little longer. */
		p->effect = state == PGADMIN_RUNNING &&
			    (routing == PAUSE_ROUTING_SKIPPED ||
			     (routing == PAUSE_ROUTING_FAILED && p->resumed_us &&
			      now_us - p->resumed_us < PAUSE_SETTLE_US)) ? PAUSE_HOLD : PAUSE_NONE;
		return;
	}
	if (!p->since_us)
		p->since_us = now_us;
	if (now_us - p->since_us < (int64_t)grace_ms * 1000) {
		p->effect = PAUSE_HOLD;
		return;
	}
	pause_grace_word(grace_ms, grace, sizeof(grace));
	snprintf(p->reason, sizeof(p->reason), "pgbouncer %s for %s",
		 state == PGADMIN_SUSPENDED ? "suspended" : "paused", grace);
	p->effect = PAUSE_DRAIN;
}

double pause_seconds(const struct pause *p, int64_t now_us)
{
	return p->since_us ? (double)(now_us - p->since_us) / 1e6 : 0.0;
}
