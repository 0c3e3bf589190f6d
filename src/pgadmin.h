/* pgadmin.h - what PgBouncer's admin console says about itself: the
 * commands happac sends there each round and what their answers mean
 * (what PgBouncer guarantees here: docs/PROTOCOLS.md section 3a).
 *
 * The connection is probe_pg's (an admin-mode probe_pg logs in with libpq
 * to the virtual database "pgbouncer"); this module only chooses the next
 * command and reads each PGresult. SHOW STATE (PgBouncer 1.19+) gives the
 * global pause and suspend; SHOW DATABASES gives `paused` and `disabled` of
 * the routed database. PgBouncer 1.18 answers SHOW STATE with "invalid
 * command": then only SHOW DATABASES is asked, and a global PAUSE
 * cannot be seen there (a SUSPEND can: see pgadmin_no_new_logins()).
 * SHOW LISTS gives the number of clients, so that a connection kept open
 * is let go when it is the last one a shutting-down PgBouncer waits for. */
#ifndef HAPPAC_PGADMIN_H
#define HAPPAC_PGADMIN_H

#include <libpq-fe.h>
#include <stddef.h>

/* Worst last: when several hold, the higher one is reported. */
enum pgadmin_state {
	PGADMIN_UNKNOWN,     /* no answer this round (login refused, timeout) */
	PGADMIN_RUNNING,
	PGADMIN_DB_PAUSED,   /* PAUSE <routed database> */
	PGADMIN_PAUSED,      /* PAUSE (all databases) */
	PGADMIN_SUSPENDED,   /* SUSPEND */
	PGADMIN_SHUTTING_DOWN, /* SIGTERM / SHUTDOWN WAIT_FOR_CLIENTS (1.23+) */
	PGADMIN_DB_DISABLED, /* DISABLE <routed database> */
	PGADMIN_STATE_COUNT
};
extern const char *const pgadmin_state_names[PGADMIN_STATE_COUNT];

struct pgadmin {
	char dbname[64];     /* the routed database; "" = none (ping mode) */
	int no_show_state;   /* PgBouncer answered "invalid command" (1.18) */
	int step;            /* index into the command list of this attempt */
	enum pgadmin_state found; /* this attempt so far */
	enum pgadmin_state state; /* the last complete attempt's */
	int logged_no_state; /* the 1.18 limitation was logged */
	long clients;        /* SHOW LISTS used_clients (we are one), -1 unknown */
};

/* Start an attempt. */
void pgadmin_begin(struct pgadmin *a);
/* The next command to send, or NULL when the attempt has all it needs. */
const char *pgadmin_next(struct pgadmin *a);
/* Read the answer to pgadmin_next()'s command. Returns 0 to go on, or -1
 * with detail set (an error other than 1.18's missing SHOW STATE, or an
 * answer without the expected columns). */
int pgadmin_result(struct pgadmin *a, const PGresult *res, char *detail, size_t len);
/* The attempt completed: its state becomes a->state. */
void pgadmin_end(struct pgadmin *a);

/* A connection opened before answered this round, but a new login did not:
 * refused (the listener is closed: shutting down) or unanswered (new
 * connections wait in the listen queue: suspended; only where SHOW STATE
 * is missing, 1.18, as SHOW STATE says it otherwise). */
void pgadmin_no_new_logins(struct pgadmin *a, int refused);

/* True when the state is a pause (PAUSE, PAUSE db or SUSPEND). */
int pgadmin_is_pause(enum pgadmin_state s);

#endif
