/* probe_pg.h - the PgBouncer probe.
 *
 * Two modes.
 * - Ping (default), as PQping but without libpq: a non-blocking connect and
 *   a StartupMessage of our own (pg_wire); the probe passes when PgBouncer
 *   answers a login at all - login accepted, a password asked for, or an
 *   error other than SQLSTATE 57P03. It logs in as user "pgbouncer" to
 *   PgBouncer's admin database "pgbouncer", which PgBouncer answers at once
 *   without a backend and whatever the OS user is.
 * - Query (--pg-conninfo): non-blocking libpq (loaded by lib_pq) logs in
 *   through PgBouncer with the given conninfo and runs SELECT
 *   pg_is_in_recovery(); the probe passes when the query answers, and
 *   reports the answer (probe in_recovery) so the verdict can check the role
 *   PgBouncer really reaches.
 * - Admin (--pgbouncer-admin-conninfo): the same libpq login to the console
 *   (dbname pgbouncer) running pgadmin's SHOW commands; a query-mode probe
 *   gated on it waits for its answer and skips a paused database.
 * A host name is resolved with evdns first and the connect (ours, or libpq's
 * as hostaddr) gets the address, so nothing blocks the loop. In query mode a
 * host starting with '/' or '@' is a Unix-socket directory: libpq connects
 * to DIR/.s.PGSQL.PORT itself, nothing is looked up, and the target (the
 * #reason) is that socket file. */
#ifndef HAPPAC_PROBE_PG_H
#define HAPPAC_PROBE_PG_H

#include "probe.h"

#include <stddef.h>

struct event_base;
struct evdns_base;
struct probe_pg;

extern const struct probe_ops probe_pg_ops;

/* dns may be NULL when host is an address literal. conninfo NULL: ping
 * mode; otherwise its host/port override host/port, and libpq is loaded.
 * admin non-NULL: admin mode (--pgbouncer-admin-conninfo): conninfo's
 * login with dbname always "pgbouncer"; each attempt runs pgadmin's
 * commands and ends PROBE_OK with admin->state set (admin must outlive the
 * probe). Returns NULL with err set on a bad conninfo or when libpq cannot
 * be loaded. Caller frees with probe_pg_free() after the scheduler is
 * gone. */
struct pgadmin;
struct probe_pg *probe_pg_new(struct event_base *base, struct evdns_base *dns,
			      const char *host, int port, const char *conninfo,
			      struct pgadmin *admin, char *err, size_t errlen);
void probe_pg_free(struct probe_pg *pg);

/* Query mode: the database the routing probe logs in to (dbname, else
 * user), or NULL when the conninfo names neither. */
const char *probe_pg_dbname(const struct probe_pg *pg);
/* Query mode: each attempt first waits (at most wait_ms) for the admin
 * probe's attempt of the same round, which the scheduler starts first;
 * when that says paused, the attempt does not log in (PgBouncer would hold
 * the login) and ends PROBE_OK at once with detail "not run: pgbouncer
 * paused". */
void probe_pg_gate(struct probe_pg *pg, struct probe_pg *admin, int wait_ms);

/* "127.0.0.1:6432", "[::1]:6432" or "/run/postgresql/.s.PGSQL.6432", for
 * the #reason. */
const char *probe_pg_target(const struct probe_pg *pg);
const char *probe_pg_host(const struct probe_pg *pg);

#endif
