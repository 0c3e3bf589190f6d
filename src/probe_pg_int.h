/* probe_pg_int.h - probe_pg's state, for probe_pg.c only (a header of its
 * own to keep probe_pg.c within the file-length limit). */
#ifndef HAPPAC_PROBE_PG_INT_H
#define HAPPAC_PROBE_PG_INT_H

#include "pg_wire.h"
#include "probe.h"
#include "resolve.h"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stddef.h>

#define PROBE_PG_MAX_PARAMS 48

enum probe_pg_stage {
	PROBE_PG_IDLE,
	PROBE_PG_RESOLVING,
	PROBE_PG_CONNECTING,      /* query mode: libpq's login */
	PROBE_PG_QUERYING,        /* query mode: the routing query */
	PROBE_PG_PING_CONNECTING, /* ping: TCP connect in progress */
	PROBE_PG_PING_SENDING,    /* ping: the StartupMessage */
	PROBE_PG_PING_READING,    /* ping: the server's answer */
	PROBE_PG_GATED            /* query mode: waits for the admin probe */
};

struct probe_pg {
	struct event_base *base;
	struct evdns_base *dns;
	char host[256];
	char port[8];
	char target[300];
	int literal;                     /* host is an address: no DNS */
	int unix_socket;                 /* host is a socket directory: no DNS */
	char hostaddr[INET6_ADDRSTRLEN]; /* what we (or libpq) connect to */
	int portnum;
	int query_mode;
	struct pgadmin *admin;           /* admin mode: the console's state */
	int admin_ok;                    /* admin mode: this attempt answered */
	struct probe_pg *gate;           /* query mode: the admin probe to wait for */
	struct probe_pg *waiter;         /* admin mode: the query probe waiting */
	int gate_wait_ms;                /* ... at most this long */
	/* admin mode: the last good console connection stays open, as only a
	 * connection made before a SUSPEND or a shutdown still answers then */
	PGconn *kept;
	enum { PROBE_PG_ADMIN_NEW, PROBE_PG_ADMIN_KEPT, PROBE_PG_ADMIN_CHECK } phase;
	struct event *timer;             /* admin mode: the new login's deadline */
	int check_ms;
	/* ping mode: the StartupMessage, the same for every attempt */
	unsigned char startup[256];
	size_t startup_len;
	/* connection parameters (query mode: from --pg-conninfo) */
	const char *keys[PROBE_PG_MAX_PARAMS + 1];
	const char *vals[PROBE_PG_MAX_PARAMS + 1];
	int nparams;
	PQconninfoOption *conninfo;      /* owns the strings in keys/vals */

	/* the attempt in flight */
	struct probe *probe;
	enum probe_pg_stage stage;
	struct resolve lookup;
	PGconn *conn;
	struct event *ev;                /* watches fd or PQsocket(conn) */
	int established;                 /* TCP connect completed */
	int fd;                          /* ping mode: our socket, or -1 */
	size_t sent;                     /* ping mode: startup bytes sent */
	struct pg_wire wire;             /* ping mode: the answer so far */
};

#endif
