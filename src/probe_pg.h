/* probe_pg.h - the PgBouncer probe on non-blocking libpq.
 *
 * Ping semantics (as PQping): the probe passes when PgBouncer answers a login
 * at all - login accepted, a password asked for, or an error other than
 * SQLSTATE 57P03. It logs in as user "pgbouncer" to PgBouncer's admin
 * database "pgbouncer", which PgBouncer answers at once without a backend and
 * whatever the OS user is. A host name is resolved with evdns first and libpq
 * gets the address as hostaddr, so nothing blocks the loop. */
#ifndef HAPPAC_PROBE_PG_H
#define HAPPAC_PROBE_PG_H

#include "probe.h"

#include <stddef.h>

struct event_base;
struct evdns_base;
struct probe_pg;

extern const struct probe_ops probe_pg_ops;

/* dns may be NULL when host is an address literal. Caller frees with
 * probe_pg_free() after the scheduler is gone. */
struct probe_pg *probe_pg_new(struct event_base *base, struct evdns_base *dns,
			      const char *host, int port);
void probe_pg_free(struct probe_pg *pg);

/* "127.0.0.1:6432" or "[::1]:6432", for the #reason. */
const char *probe_pg_target(const struct probe_pg *pg);
const char *probe_pg_host(const struct probe_pg *pg);

/* Classify a failed libpq connection from its error message and whether the
 * TCP connection was ever established. Exposed for the unit tests. */
enum probe_result probe_pg_classify(const char *message, int established,
				    char *detail, size_t detail_len);

#endif
