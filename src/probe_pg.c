/* probe_pg.c - PgBouncer probe. Ping mode: a non-blocking TCP connect, a
 * StartupMessage and the answer read by pg_wire, all on our loop. Query
 * mode: PQconnectStartParams + PQconnectPoll on our loop, then PQsendQuery +
 * PQconsumeInput, libpq loaded by lib_pq. */
#include "probe_pg.h"

#include "lib_pq.h"
#include "log.h"
#include "net.h"
#include "pgadmin.h"
#include "pg_wire.h"
#include "probe_pg_classify.h"
#include "probe_pg_int.h"
#include "resolve.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The role, and on a replica how far replay trails the primary: the
 * walreceiver's latest_end_lsn is the primary's WAL end from its last
 * message. NULL (-1 here) without a walreceiver or without the
 * pg_read_all_stats privilege that shows it. Then the walreceiver's state
 * ('' none, '?' hidden without that privilege), and the lag in time: 0 once
 * replay has reached the primary's WAL end (an idle primary writes nothing,
 * so the last replayed commit's time stands still without anyone being
 * behind), else the age of the last replayed commit, in ms. */
#define PROBE_PG_RECEIVER "(SELECT latest_end_lsn FROM pg_stat_wal_receiver)"
#define PROBE_PG_QUERY                                                          \
	"SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "      \
	"COALESCE(GREATEST(pg_wal_lsn_diff(" PROBE_PG_RECEIVER ", "            \
	"pg_last_wal_replay_lsn()), 0), -1)::bigint ELSE 0 END, "              \
	"COALESCE((SELECT COALESCE(status, '?') FROM pg_stat_wal_receiver), "  \
	"''), CASE WHEN NOT pg_is_in_recovery() THEN 0 "                       \
	"WHEN " PROBE_PG_RECEIVER " IS NULL THEN NULL "                        \
	"WHEN pg_last_wal_replay_lsn() >= " PROBE_PG_RECEIVER " THEN 0 "       \
	"ELSE GREATEST(extract(epoch FROM now() - "                            \
	"pg_last_xact_replay_timestamp()) * 1000, 0)::bigint END"

/* Also the probe_ops cancel: a cancelled probe only gives back what it
 * holds. */
static void probe_pg_release(void *impl)
{
	struct probe_pg *pg = impl;

	resolve_cancel(&pg->lookup);
	if (pg->ev)
		event_del(pg->ev);
	if (pg->timer)
		event_del(pg->timer);
	/* The waiter's own timer opens its gate if this attempt ends unheard. */
	pg->waiter = NULL;
	if (pg->gate && pg->gate->waiter == pg)
		pg->gate->waiter = NULL;
	if (pg->conn) {
		/* libpq 15 has no non-blocking cancel (PQcancel connects and
		 * waits); closing the client connection makes PgBouncer drop
		 * the server side of a query still running. */
		lib_pq.PQfinish(pg->conn);
		pg->conn = NULL;
	}
	if (pg->fd >= 0) {
		close(pg->fd);
		pg->fd = -1;
	}
	pg->probe = NULL;
	pg->stage = PROBE_PG_IDLE;
}

static void probe_pg_gate_open(struct probe_pg *pg);
static void probe_pg_begin(struct probe_pg *pg);
static void probe_pg_on_check_timer(evutil_socket_t fd, short what, void *arg);

/* Admin mode, the kept connection answered: keep it, and try a new login
 * (it tells a SUSPEND on 1.18, and a shutdown on every version: what
 * PgBouncer does to new and old connections then, docs/PROTOCOLS.md 3a). */
static void probe_pg_admin_check(struct probe_pg *pg)
{
	struct timeval tv = { pg->check_ms / 1000, (pg->check_ms % 1000) * 1000 };

	event_del(pg->ev);
	pg->kept = pg->conn;
	pg->conn = NULL;
	pg->phase = PROBE_PG_ADMIN_CHECK;
	event_assign(pg->timer, pg->base, -1, 0, probe_pg_on_check_timer, pg);
	event_add(pg->timer, &tv);
	probe_pg_begin(pg);
}

/* Admin mode: how an attempt ends with a connection kept across rounds.
 * Returns 1 when the attempt goes on instead. */
static int probe_pg_admin_end(struct probe_pg *pg, enum probe_result *result,
			      const char **detail)
{
	struct pgadmin *a = pg->admin;
	int ok = *result == PROBE_OK;

	if (pg->phase == PROBE_PG_ADMIN_KEPT) {
		if (!ok) { /* broken (PgBouncer restarted): a new login */
			lib_pq.PQfinish(pg->conn);
			pg->conn = NULL;
			event_del(pg->ev);
			pg->phase = PROBE_PG_ADMIN_NEW;
			probe_pg_begin(pg);
			return 1;
		}
		if (a->state == PGADMIN_SUSPENDED) { /* SHOW STATE said it */
			pg->kept = pg->conn;
			pg->conn = NULL;
			return 0;
		}
		probe_pg_admin_check(pg);
		return 1;
	}
	if (ok) { /* the new connection is the one kept */
		if (pg->kept)
			lib_pq.PQfinish(pg->kept);
		pg->kept = pg->conn;
		pg->conn = NULL;
		return 0;
	}
	if (pg->phase != PROBE_PG_ADMIN_CHECK)
		return 0;
	/* The kept connection answered; a new one was refused (a socket
	 * directory's file is gone then) or waits. An error from PgBouncer
	 * (a changed password) leaves the kept one's answer. */
	if (*result == PROBE_REFUSED || *result == PROBE_TIMEOUT ||
	    (*result == PROBE_CONNECT && strstr(*detail, "No such file")))
		pgadmin_no_new_logins(a, *result != PROBE_TIMEOUT);
	/* We are the last client a shutdown waits for: let it exit. */
	if (a->state == PGADMIN_SHUTTING_DOWN && a->clients <= 1) {
		lib_pq.PQfinish(pg->kept);
		pg->kept = NULL;
	}
	*result = PROBE_OK;
	*detail = pgadmin_state_names[a->state];
	return 0;
}

static void probe_pg_finish(struct probe_pg *pg, enum probe_result result,
			    const char *detail)
{
	struct probe *p = pg->probe;
	struct probe_pg *waiter = pg->waiter;

	if (pg->admin && probe_pg_admin_end(pg, &result, &detail))
		return;
	pg->admin_ok = result == PROBE_OK;
	probe_pg_release(pg);
	probe_done(p, result, 0, detail);
	if (waiter && waiter->stage == PROBE_PG_GATED)
		probe_pg_gate_open(waiter);
}

static void probe_pg_on_socket(evutil_socket_t fd, short what, void *arg);

/* Watch a socket for reading or writing, once. */
static void probe_pg_watch(struct probe_pg *pg, int fd, short kind)
{
	event_del(pg->ev);
	event_assign(pg->ev, pg->base, fd, kind, probe_pg_on_socket, pg);
	event_add(pg->ev, NULL);
}

/* Watch libpq's socket for reading or writing. */
static void probe_pg_wait(struct probe_pg *pg, short kind)
{
	int fd = lib_pq.PQsocket(pg->conn); /* may change between polls: re-read */

	if (fd < 0) {
		probe_pg_finish(pg, PROBE_INTERNAL, "no socket");
		return;
	}
	probe_pg_watch(pg, fd, kind);
}

static void probe_pg_send_query(struct probe_pg *pg)
{
	const char *query = pg->admin ? pgadmin_next(pg->admin) : PROBE_PG_QUERY;
	int rc;

	pg->stage = PROBE_PG_QUERYING;
	if (lib_pq.PQsetnonblocking(pg->conn, 1) != 0 ||
	    !lib_pq.PQsendQuery(pg->conn, query)) {
		char detail[80];

		snprintf(detail, sizeof(detail), "%s", lib_pq.PQerrorMessage(pg->conn));
		detail[strcspn(detail, "\n")] = '\0';
		probe_pg_finish(pg, PROBE_QUERY_FAILED, detail);
		return;
	}
	rc = lib_pq.PQflush(pg->conn);
	probe_pg_wait(pg, rc == 1 ? EV_WRITE : EV_READ);
}

/* Admin mode: one command's answer; the next command, or the end. */
static void probe_pg_admin_result(struct probe_pg *pg, PGresult *res)
{
	char detail[80];

	if (pgadmin_result(pg->admin, res, detail, sizeof(detail)) != 0) {
		probe_pg_finish(pg, PROBE_QUERY_FAILED, detail);
		return;
	}
	if (pgadmin_next(pg->admin)) {
		probe_pg_send_query(pg);
		return;
	}
	pgadmin_end(pg->admin);
	probe_pg_finish(pg, PROBE_OK, pgadmin_state_names[pg->admin->state]);
}

/* The walreceiver's state and the lag in time (PROBE_PG_QUERY). */
static void probe_pg_replication(struct probe_pg *pg, PGresult *res)
{
	const char *st = lib_pq.PQgetvalue(res, 0, 2);

	if (pg->probe->in_recovery == 1 && strcmp(st, "?"))
		pg->probe->wal_receiver = !strcmp(st, "streaming");
	pg->probe->replay_age_ms = lib_pq.PQgetisnull(res, 0, 3)
		? -1 : strtoll(lib_pq.PQgetvalue(res, 0, 3), NULL, 10);
}

/* The query's answer: one row, the role first. */
static void probe_pg_result(struct probe_pg *pg, PGresult *res)
{
	char detail[80];
	const char *code, *msg;

	if (pg->admin) {
		probe_pg_admin_result(pg, res);
		return;
	}
	switch (lib_pq.PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		if (lib_pq.PQntuples(res) == 1 && lib_pq.PQnfields(res) == 4 &&
		    !lib_pq.PQgetisnull(res, 0, 0)) {
			const char *v = lib_pq.PQgetvalue(res, 0, 0);

			if (!strcmp(v, "t") || !strcmp(v, "f")) {
				pg->probe->in_recovery = v[0] == 't';
				pg->probe->lag_bytes = lib_pq.PQgetisnull(res, 0, 1)
					? -1 : strtoll(lib_pq.PQgetvalue(res, 0, 1), NULL, 10);
				probe_pg_replication(pg, res);
				probe_pg_finish(pg, PROBE_OK, v[0] == 't' ? "in recovery"
									 : "not in recovery");
				return;
			}
		}
		probe_pg_finish(pg, PROBE_BAD_RESPONSE, "unexpected query result");
		return;
	case PGRES_FATAL_ERROR:
		code = lib_pq.PQresultErrorField(res, PG_DIAG_SQLSTATE);
		msg = lib_pq.PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		snprintf(detail, sizeof(detail), "%s %s", code ? code : "?????",
			 msg ? msg : "error");
		probe_pg_finish(pg, PROBE_QUERY_FAILED, detail);
		return;
	default:
		snprintf(detail, sizeof(detail), "%s",
			 lib_pq.PQresStatus(lib_pq.PQresultStatus(res)));
		probe_pg_finish(pg, PROBE_BAD_RESPONSE, detail);
		return;
	}
}

static void probe_pg_query_io(struct probe_pg *pg, short what)
{
	PGresult *res, *first = NULL;
	char detail[80];

	if (what & EV_WRITE) {
		int rc = lib_pq.PQflush(pg->conn);

		if (rc < 0)
			goto broken;
		probe_pg_wait(pg, rc == 1 ? EV_WRITE : EV_READ);
		return;
	}
	if (!lib_pq.PQconsumeInput(pg->conn))
		goto broken;
	if (lib_pq.PQisBusy(pg->conn)) {
		probe_pg_wait(pg, EV_READ);
		return;
	}
	/* Collect every result (a simple query ends with NULL); keep the first. */
	while ((res = lib_pq.PQgetResult(pg->conn))) {
		if (!first)
			first = res;
		else
			lib_pq.PQclear(res);
		if (lib_pq.PQisBusy(pg->conn)) {
			/* More is coming: this is not one simple answer. */
			break;
		}
	}
	if (!first) {
		probe_pg_finish(pg, PROBE_BAD_RESPONSE, "no query result");
		return;
	}
	probe_pg_result(pg, first);
	lib_pq.PQclear(first);
	return;
broken:
	snprintf(detail, sizeof(detail), "%s",
		 strstr(lib_pq.PQerrorMessage(pg->conn), "closed the connection")
			 ? "connection closed during the query"
			 : lib_pq.PQerrorMessage(pg->conn));
	detail[strcspn(detail, "\n")] = '\0';
	probe_pg_finish(pg, PROBE_QUERY_FAILED, detail);
}

static void probe_pg_poll(struct probe_pg *pg)
{
	PostgresPollingStatusType st = lib_pq.PQconnectPoll(pg->conn);
	ConnStatusType cs = lib_pq.PQstatus(pg->conn);
	char detail[80];
	enum probe_result r;

	if (cs != CONNECTION_STARTED && cs != CONNECTION_NEEDED && cs != CONNECTION_BAD)
		pg->established = 1;
	switch (st) {
	case PGRES_POLLING_OK:
		if (pg->admin)
			pgadmin_begin(pg->admin);
		probe_pg_send_query(pg);
		return;
	case PGRES_POLLING_READING:
		probe_pg_wait(pg, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		probe_pg_wait(pg, EV_WRITE);
		return;
	case PGRES_POLLING_FAILED:
		r = probe_pg_classify_login(lib_pq.PQerrorMessage(pg->conn), pg->established,
					    detail, sizeof(detail));
		probe_pg_finish(pg, r, detail);
		return;
	case PGRES_POLLING_ACTIVE: /* unused since PostgreSQL 9 */
		break;
	}
	log_error("internal: PQconnectPoll returned %d", (int)st);
	probe_pg_finish(pg, PROBE_INTERNAL, "unexpected poll state");
}

/* Ping: the TCP connect failed (err is an errno). */
static void probe_pg_ping_failed(struct probe_pg *pg, int err)
{
	if (err == ECONNREFUSED)
		probe_pg_finish(pg, PROBE_REFUSED, "");
	else
		probe_pg_finish(pg, PROBE_CONNECT, strerror(err));
}

/* Ping: a send or receive failed after the connect (err is an errno). A
 * reset is the peer closing, as libpq words it. */
static void probe_pg_ping_broken(struct probe_pg *pg, int err)
{
	if (err == ECONNRESET || err == EPIPE)
		probe_pg_finish(pg, PROBE_BAD_RESPONSE, "connection closed");
	else
		probe_pg_finish(pg, PROBE_CONNECT, strerror(err));
}

/* Ping: the answer is decided. After a login, end the session as a client
 * does (Terminate), so that PgBouncer logs a client close, not an EOF. */
static void probe_pg_ping_decided(struct probe_pg *pg)
{
	char detail[80];
	enum probe_result r = pg_wire_result(&pg->wire, detail, sizeof(detail));

	if (pg->wire.state == PG_WIRE_READY) {
		/* Best effort: 5 bytes into an idle socket's buffer. */
		if (send(pg->fd, PG_WIRE_TERMINATE, PG_WIRE_TERMINATE_LEN,
			 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("pgbouncer: terminate: %s", strerror(errno));
	}
	probe_pg_finish(pg, r, detail);
}

/* Ping: send what is left of the StartupMessage, then read. */
static void probe_pg_ping_send(struct probe_pg *pg)
{
	while (pg->sent < pg->startup_len) {
		ssize_t n = send(pg->fd, pg->startup + pg->sent, pg->startup_len - pg->sent,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				probe_pg_watch(pg, pg->fd, EV_WRITE);
				return;
			}
			probe_pg_ping_broken(pg, errno);
			return;
		}
		pg->sent += (size_t)n;
	}
	pg->stage = PROBE_PG_PING_READING;
	probe_pg_watch(pg, pg->fd, EV_READ);
}

/* Ping: the TCP connect finished, one way or the other. */
static void probe_pg_ping_connected(struct probe_pg *pg)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(pg->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		probe_pg_ping_failed(pg, err);
		return;
	}
	pg->established = 1;
	pg->stage = PROBE_PG_PING_SENDING;
	probe_pg_ping_send(pg);
}

/* Ping: one read of the server's answer; one per event, so that a peer
 * that floods us shares the loop. */
static void probe_pg_ping_read(struct probe_pg *pg)
{
	unsigned char buf[4096];
	ssize_t n = recv(pg->fd, buf, sizeof(buf), 0);

	if (n > 0)
		pg_wire_feed(&pg->wire, buf, (size_t)n);
	else if (n == 0 || errno == ECONNRESET)
		pg_wire_eof(&pg->wire);
	else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
		probe_pg_ping_broken(pg, errno);
		return;
	}
	if (pg->wire.state == PG_WIRE_MORE) {
		probe_pg_watch(pg, pg->fd, EV_READ);
		return;
	}
	probe_pg_ping_decided(pg);
}

/* Ping: open the socket and start the connect to hostaddr:port. */
static void probe_pg_ping_connect(struct probe_pg *pg)
{
	pg->established = 0;
	pg->sent = 0;
	pg_wire_init(&pg->wire);
	/* A socket directory (one of several PgBouncers on a port): its file. */
	pg->fd = pg->unix_socket ? net_connect_unix(pg->target)
				 : net_connect(pg->hostaddr, pg->portnum);
	if (pg->fd < 0) {
		if (errno == EINVAL)
			probe_pg_finish(pg, PROBE_CONNECT, "not an address");
		else
			probe_pg_ping_failed(pg, errno);
		return;
	}
	pg->stage = PROBE_PG_PING_CONNECTING;
	/* Even a connect that completed at once reports through SO_ERROR. */
	probe_pg_watch(pg, pg->fd, EV_WRITE);
}

static void probe_pg_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct probe_pg *pg = arg;

	(void)fd;
	switch (pg->stage) {
	case PROBE_PG_CONNECTING:
		probe_pg_poll(pg);
		return;
	case PROBE_PG_QUERYING:
		probe_pg_query_io(pg, what);
		return;
	case PROBE_PG_PING_CONNECTING:
		probe_pg_ping_connected(pg);
		return;
	case PROBE_PG_PING_SENDING:
		probe_pg_ping_send(pg);
		return;
	case PROBE_PG_PING_READING:
		probe_pg_ping_read(pg);
		return;
	case PROBE_PG_IDLE:
	case PROBE_PG_RESOLVING:
	case PROBE_PG_GATED:
		break;
	}
	log_error("internal: pgbouncer socket event in stage %d", (int)pg->stage);
	if (pg->probe)
		probe_pg_finish(pg, PROBE_INTERNAL, "unexpected socket event");
}

/* Set one connection parameter, replacing an earlier value. */
static void probe_pg_param(struct probe_pg *pg, const char *key, const char *val)
{
	for (int i = 0; i < pg->nparams; i++)
		if (!strcmp(pg->keys[i], key)) {
			pg->vals[i] = val;
			return;
		}
	if (pg->nparams < PROBE_PG_MAX_PARAMS) {
		pg->keys[pg->nparams] = key;
		pg->vals[pg->nparams] = val;
		pg->nparams++;
		pg->keys[pg->nparams] = NULL;
		pg->vals[pg->nparams] = NULL;
	}
}

/* Query mode: libpq's login, on our loop. */
static void probe_pg_login(struct probe_pg *pg)
{
	pg->established = 0;
	pg->stage = PROBE_PG_CONNECTING;
	pg->conn = lib_pq.PQconnectStartParams(pg->keys, pg->vals, 0);
	if (!pg->conn) {
		probe_pg_finish(pg, PROBE_INTERNAL, "out of memory");
		return;
	}
	/* Error messages carry the SQLSTATE, so 57P03 is told apart. */
	lib_pq.PQsetErrorVerbosity(pg->conn, PQERRORS_VERBOSE);
	if (lib_pq.PQstatus(pg->conn) == CONNECTION_BAD) {
		char detail[80];
		enum probe_result r = probe_pg_classify_login(lib_pq.PQerrorMessage(pg->conn),
							      0, detail, sizeof(detail));

		probe_pg_finish(pg, r, detail);
		return;
	}
	/* Right after the start, libpq waits for the socket to be writable. */
	probe_pg_wait(pg, EV_WRITE);
}

static void probe_pg_connect(struct probe_pg *pg)
{
	if (pg->query_mode)
		probe_pg_login(pg);
	else
		probe_pg_ping_connect(pg);
}

static void probe_pg_resolved(void *arg, const char *err, const char *addr)
{
	struct probe_pg *pg = arg;

	if (err) {
		probe_pg_finish(pg, PROBE_RESOLVE, err);
		return;
	}
	snprintf(pg->hostaddr, sizeof(pg->hostaddr), "%s", addr);
	probe_pg_connect(pg);
}

/* Resolve if needed, then connect. */
static void probe_pg_begin(struct probe_pg *pg)
{
	/* A socket directory is libpq's to connect to: nothing to look up. */
	if (pg->literal || pg->unix_socket) {
		probe_pg_connect(pg);
		return;
	}
	pg->stage = PROBE_PG_RESOLVING;
	resolve_start(&pg->lookup, pg->host);
}

/* The admin probe answered (or took too long): a paused database holds
 * every login until RESUME, and a login given up while it waits can leave
 * the pool stuck (PgBouncer 1.18 after KILL), so none is sent then. */
static void probe_pg_gate_open(struct probe_pg *pg)
{
	struct probe_pg *a = pg->gate;

	event_del(pg->ev);
	if (a->waiter == pg)
		a->waiter = NULL;
	if (a->admin_ok && pgadmin_is_pause(a->admin->state)) {
		pg->probe->skipped = 1;
		probe_pg_finish(pg, PROBE_OK, "not run: pgbouncer paused");
		return;
	}
	probe_pg_begin(pg);
}

static void probe_pg_on_check_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	probe_pg_finish(arg, PROBE_TIMEOUT, "no answer to a new login");
}

static void probe_pg_on_gate_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	probe_pg_gate_open(arg);
}

static void probe_pg_start(void *impl, struct probe *p)
{
	struct probe_pg *pg = impl;

	pg->probe = p;
	pg->admin_ok = 0;
	pg->phase = PROBE_PG_ADMIN_NEW;
	if (pg->kept) {
		pg->conn = pg->kept;
		pg->kept = NULL;
		pg->phase = PROBE_PG_ADMIN_KEPT;
		pgadmin_begin(pg->admin);
		probe_pg_send_query(pg);
		return;
	}
	/* The scheduler starts the admin probe first; wait for its answer, but
	 * a silent console must not cost the routing probe its deadline. */
	if (pg->gate && pg->gate->probe) {
		struct timeval tv = { pg->gate_wait_ms / 1000, (pg->gate_wait_ms % 1000) * 1000 };

		pg->stage = PROBE_PG_GATED;
		pg->gate->waiter = pg;
		event_assign(pg->ev, pg->base, -1, 0, probe_pg_on_gate_timer, pg);
		event_add(pg->ev, &tv);
		return;
	}
	probe_pg_begin(pg);
}

const struct probe_ops probe_pg_ops = {
	.start = probe_pg_start,
	.cancel = probe_pg_release,
};

/* Query mode: libpq's parameters from --pg-conninfo, ours as defaults. */
static int probe_pg_new_query(struct probe_pg *pg, const char *option,
			      const char *conninfo, char *err, size_t errlen)
{
	char *perr = NULL;

	if (lib_pq_load(err, errlen) < 0)
		return -1;
	pg->query_mode = 1;
	pg->conninfo = lib_pq.PQconninfoParse(conninfo, &perr);
	if (!pg->conninfo) {
		snprintf(err, errlen, "%s: %s", option, perr ? perr : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		if (perr)
			lib_pq.PQfreemem(perr);
		return -1;
	}
	/* Our defaults first; what the operator wrote wins. gssencmode stays
	 * off unless asked for: GSSAPI may block on Kerberos. */
	probe_pg_param(pg, "application_name", "happac");
	probe_pg_param(pg, "gssencmode", "disable");
	for (PQconninfoOption *o = pg->conninfo; o->keyword; o++) {
		/* An empty host or port is not given: -h and -r stand. */
		if (!o->val || (!*o->val && (!strcmp(o->keyword, "host") ||
					     !strcmp(o->keyword, "port"))))
			continue;
		if (!strcmp(o->keyword, "host"))
			snprintf(pg->host, sizeof(pg->host), "%s", o->val);
		else if (!strcmp(o->keyword, "port"))
			snprintf(pg->port, sizeof(pg->port), "%s", o->val);
		else if (strcmp(o->keyword, "hostaddr"))
			probe_pg_param(pg, o->keyword, o->val);
	}
	/* The admin console is the virtual database "pgbouncer", always. */
	if (pg->admin)
		probe_pg_param(pg, "dbname", "pgbouncer");
	probe_pg_param(pg, "host", pg->host);
	/* hostaddr: the address evdns found (filled in before each login); a
	 * socket directory has none, libpq connects to it itself. */
	if (!resolve_is_unix_socket(pg->host))
		probe_pg_param(pg, "hostaddr", pg->hostaddr);
	probe_pg_param(pg, "port", pg->port);
	/* libpq ignores connect_timeout in non-blocking mode; the deadline is
	 * the scheduler's. */
	probe_pg_param(pg, "connect_timeout", "0");
	return 0;
}

/* Ping mode: what libpq sent for PQping with our parameters (dbname is
 * "database" on the wire; sslmode and gssencmode off send nothing). */
static int probe_pg_new_ping(struct probe_pg *pg, char *err, size_t errlen)
{
	static const char *const keys[] = { "user", "database", "application_name", NULL };
	static const char *const vals[] = { "pgbouncer", "pgbouncer", "happac", NULL };

	pg->startup_len = pg_wire_startup(pg->startup, sizeof(pg->startup), keys, vals);
	if (!pg->startup_len) {
		snprintf(err, errlen, "internal: startup message too long");
		return -1;
	}
	return 0;
}

const char *probe_pg_dbname(const struct probe_pg *pg)
{
	const char *user = NULL;

	/* libpq's default database is the user name. */
	for (int i = 0; i < pg->nparams; i++) {
		if (!strcmp(pg->keys[i], "dbname"))
			return pg->vals[i];
		if (!strcmp(pg->keys[i], "user"))
			user = pg->vals[i];
	}
	return user;
}

void probe_pg_gate(struct probe_pg *pg, struct probe_pg *admin, int wait_ms)
{
	pg->gate = admin;
	pg->gate_wait_ms = wait_ms;
	/* The admin's new login gives up before the gate opens. */
	admin->check_ms = wait_ms * 4 / 5;
}

struct probe_pg *probe_pg_new(struct event_base *base, struct evdns_base *dns,
			      const char *host, int port, const char *conninfo,
			      struct pgadmin *admin, char *err, size_t errlen)
{
	struct probe_pg *pg = calloc(1, sizeof(*pg));

	if (!pg) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pg->fd = -1;
	pg->base = base;
	pg->dns = dns;
	pg->portnum = port;
	snprintf(pg->host, sizeof(pg->host), "%s", host);
	snprintf(pg->port, sizeof(pg->port), "%d", port);
	resolve_init(&pg->lookup, dns, probe_pg_resolved, pg);
	pg->admin = admin;
	if (conninfo ? probe_pg_new_query(pg, admin ? "--pgbouncer-admin-conninfo"
						    : "--pg-conninfo", conninfo, err, errlen)
		     : probe_pg_new_ping(pg, err, errlen)) {
		probe_pg_free(pg);
		return NULL;
	}
	/* Ping mode gets a directory from --pgbouncer-socket-dir only (-h is
	 * Patroni's host as well, which refuses a path). */
	pg->unix_socket = resolve_is_unix_socket(pg->host);
	/* The #reason names what is connected to: the socket file for a
	 * directory (libpq's DIR/.s.PGSQL.PORT), else host:port. */
	if (pg->unix_socket) {
		snprintf(pg->target, sizeof(pg->target), "%s/.s.PGSQL.%s", pg->host, pg->port);
	} else {
		char hostpart[sizeof(pg->target)];

		util_host_bracketed(hostpart, sizeof(hostpart), pg->host);
		snprintf(pg->target, sizeof(pg->target), "%s:%s", hostpart, pg->port);
	}
	pg->literal = resolve_is_literal(pg->host);
	if (pg->literal)
		snprintf(pg->hostaddr, sizeof(pg->hostaddr), "%s", pg->host);
	/* Created unassigned; probe_pg_watch() assigns it to each socket. */
	pg->ev = event_new(base, -1, 0, probe_pg_on_socket, pg);
	pg->timer = event_new(base, -1, 0, probe_pg_on_check_timer, pg);
	if (!pg->ev || !pg->timer) {
		snprintf(err, errlen, "out of memory");
		probe_pg_free(pg);
		return NULL;
	}
	return pg;
}

void probe_pg_free(struct probe_pg *pg)
{
	if (!pg)
		return;
	probe_pg_release(pg);
	if (pg->kept)
		lib_pq.PQfinish(pg->kept);
	util_event_free(pg->ev);
	util_event_free(pg->timer);
	if (pg->conninfo)
		lib_pq.PQconninfoFree(pg->conninfo);
	free(pg);
}

const char *probe_pg_target(const struct probe_pg *pg)
{
	return pg->target;
}

const char *probe_pg_host(const struct probe_pg *pg)
{
	return pg->host;
}
