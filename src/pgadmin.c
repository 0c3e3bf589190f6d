/* pgadmin.c - PgBouncer's admin console: SHOW STATE and SHOW DATABASES,
 * read. */
#include "pgadmin.h"

#include "lib_pq.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In enum pgadmin_state's order. */
const char *const pgadmin_state_names[PGADMIN_STATE_COUNT] = {
	"unknown",   "running",       "database paused",   "paused",
	"suspended", "shutting down", "database disabled",
};

enum pgadmin_step {
	PGADMIN_STEP_STATE, PGADMIN_STEP_DATABASES, PGADMIN_STEP_LISTS, PGADMIN_STEP_DONE
};

static const char *const pgadmin_commands[] = {
	[PGADMIN_STEP_STATE] = "SHOW STATE",
	[PGADMIN_STEP_DATABASES] = "SHOW DATABASES",
	[PGADMIN_STEP_LISTS] = "SHOW LISTS",
};

void pgadmin_begin(struct pgadmin *a)
{
	a->found = PGADMIN_RUNNING;
	a->clients = -1;
	a->step = a->no_show_state ? PGADMIN_STEP_DATABASES : PGADMIN_STEP_STATE;
}

const char *pgadmin_next(struct pgadmin *a)
{
	/* Without a routed database, SHOW DATABASES has nothing to tell. */
	if (a->step == PGADMIN_STEP_DATABASES && !a->dbname[0])
		a->step++;
	return a->step < PGADMIN_STEP_DONE ? pgadmin_commands[a->step] : NULL;
}

static void pgadmin_worse(struct pgadmin *a, enum pgadmin_state s)
{
	if (s > a->found)
		a->found = s;
}

static int pgadmin_column(const PGresult *res, const char *name)
{
	for (int c = 0; c < lib_pq.PQnfields(res); c++)
		if (!strcmp(lib_pq.PQfname(res, c), name))
			return c;
	return -1;
}

/* SHOW STATE: rows of (key, value), "paused" and "suspended" yes/no. */
static int pgadmin_read_state(struct pgadmin *a, const PGresult *res)
{
	if (lib_pq.PQnfields(res) < 2)
		return -1;
	for (int r = 0; r < lib_pq.PQntuples(res); r++) {
		const char *k = lib_pq.PQgetvalue(res, r, 0);
		int yes = !strcmp(lib_pq.PQgetvalue(res, r, 1), "yes");

		if (yes && !strcmp(k, "paused"))
			pgadmin_worse(a, PGADMIN_PAUSED);
		else if (yes && !strcmp(k, "suspended"))
			pgadmin_worse(a, PGADMIN_SUSPENDED);
	}
	return 0;
}

/* SHOW DATABASES: the routed database's row; "paused" and "disabled" are
 * 0/1. A database PgBouncer does not list tells nothing here (the routing
 * probe's login says what is wrong). */
static int pgadmin_read_databases(struct pgadmin *a, const PGresult *res)
{
	int name = pgadmin_column(res, "name"), paused = pgadmin_column(res, "paused"),
	    disabled = pgadmin_column(res, "disabled");

	if (name < 0 || paused < 0 || disabled < 0)
		return -1;
	for (int r = 0; r < lib_pq.PQntuples(res); r++) {
		if (strcmp(lib_pq.PQgetvalue(res, r, name), a->dbname))
			continue;
		if (!strcmp(lib_pq.PQgetvalue(res, r, disabled), "1"))
			pgadmin_worse(a, PGADMIN_DB_DISABLED);
		if (!strcmp(lib_pq.PQgetvalue(res, r, paused), "1"))
			pgadmin_worse(a, PGADMIN_DB_PAUSED);
	}
	return 0;
}

/* SHOW LISTS: rows of (list, items); used_clients counts every client,
 * admin ones too. */
static int pgadmin_read_lists(struct pgadmin *a, const PGresult *res)
{
	if (lib_pq.PQnfields(res) < 2)
		return -1;
	for (int r = 0; r < lib_pq.PQntuples(res); r++)
		if (!strcmp(lib_pq.PQgetvalue(res, r, 0), "used_clients"))
			a->clients = strtol(lib_pq.PQgetvalue(res, r, 1), NULL, 10);
	return 0;
}

static int pgadmin_read(struct pgadmin *a, int step, const PGresult *res)
{
	switch (step) {
	case PGADMIN_STEP_STATE:
		return pgadmin_read_state(a, res);
	case PGADMIN_STEP_DATABASES:
		return pgadmin_read_databases(a, res);
	default:
		return pgadmin_read_lists(a, res);
	}
}

int pgadmin_result(struct pgadmin *a, const PGresult *res, char *detail, size_t len)
{
	ExecStatusType st = lib_pq.PQresultStatus(res);
	int step = a->step;

	a->step++;
	if (st == PGRES_FATAL_ERROR) {
		const char *msg = lib_pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		msg = msg ? msg : "error";
		/* 1.18: "invalid command 'SHOW STATE', use SHOW HELP;" */
		if (step == PGADMIN_STEP_STATE && strstr(msg, "invalid command")) {
			a->no_show_state = 1;
			if (!a->logged_no_state)
				log_info("pgbouncer admin: no SHOW STATE (PgBouncer before "
					 "1.19): a global PAUSE or SUSPEND cannot be seen, "
					 "only PAUSE/DISABLE of database '%s'", a->dbname);
			a->logged_no_state = 1;
			return 0;
		}
		snprintf(detail, len, "%s: %s", pgadmin_commands[step], msg);
		return -1;
	}
	if (st == PGRES_TUPLES_OK && pgadmin_read(a, step, res) == 0)
		return 0;
	snprintf(detail, len, "%s: unexpected answer", pgadmin_commands[step]);
	return -1;
}

void pgadmin_end(struct pgadmin *a)
{
	a->state = a->found;
}

void pgadmin_no_new_logins(struct pgadmin *a, int refused)
{
	enum pgadmin_state s = refused ? PGADMIN_SHUTTING_DOWN : PGADMIN_SUSPENDED;

	/* Where SHOW STATE exists it has said whether PgBouncer is suspended:
	 * a slow new login is then only slow (the routing probe judges). */
	if (!refused && !a->no_show_state)
		return;
	if (s > a->state)
		a->state = s;
}

int pgadmin_is_pause(enum pgadmin_state s)
{
	return s == PGADMIN_PAUSED || s == PGADMIN_SUSPENDED || s == PGADMIN_DB_PAUSED;
}
