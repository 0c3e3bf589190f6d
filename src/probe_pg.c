/* probe_pg.c - PgBouncer probe: PQconnectStartParams + PQconnectPoll on our
 * loop, then (query mode) PQsendQuery + PQconsumeInput. */
#include "probe_pg.h"

#include "log.h"
#include "resolve.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_PG_MAX_PARAMS 48
/* The role, and on a replica how far replay trails the primary: the
 * walreceiver's latest_end_lsn is the primary's WAL end from its last
 * message. NULL (-1 here) without a walreceiver or without the
 * pg_read_all_stats privilege that shows it. */
#define PROBE_PG_QUERY                                                        \
	"SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "    \
	"COALESCE(GREATEST(pg_wal_lsn_diff((SELECT latest_end_lsn FROM "     \
	"pg_stat_wal_receiver), pg_last_wal_replay_lsn()), 0), -1)::bigint " \
	"ELSE 0 END"

enum probe_pg_stage { PROBE_PG_IDLE, PROBE_PG_RESOLVING, PROBE_PG_CONNECTING,
		      PROBE_PG_QUERYING };

struct probe_pg {
	struct event_base *base;
	struct evdns_base *dns;
	char host[256];
	char port[8];
	char target[300];
	int literal;                     /* host is an address: no DNS */
	char hostaddr[INET6_ADDRSTRLEN]; /* what libpq connects to */
	int query_mode;
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
	struct event *ev;                /* watches PQsocket(conn) */
	int established;                 /* TCP connect completed */
};

static void probe_pg_release(struct probe_pg *pg)
{
	resolve_cancel(&pg->lookup);
	if (pg->ev)
		event_del(pg->ev);
	if (pg->conn) {
		/* libpq 15 has no non-blocking cancel (PQcancel connects and
		 * waits); closing the client connection makes PgBouncer drop
		 * the server side of a query still running. */
		PQfinish(pg->conn);
		pg->conn = NULL;
	}
	pg->probe = NULL;
	pg->stage = PROBE_PG_IDLE;
}

static void probe_pg_finish(struct probe_pg *pg, enum probe_result result,
			    const char *detail)
{
	struct probe *p = pg->probe;

	probe_pg_release(pg);
	probe_done(p, result, 0, detail);
}

/* With PQERRORS_VERBOSE, a server's error reads "FATAL:  57P03: text". Returns
 * a pointer to the SQLSTATE, or NULL when the message holds none. */
static const char *probe_pg_sqlstate(const char *message)
{
	static const char *const severities[] = { "FATAL:  ", "ERROR:  ", "PANIC:  " };

	for (size_t i = 0; i < sizeof(severities) / sizeof(severities[0]); i++) {
		const char *s = strstr(message, severities[i]);

		if (s && strlen(s) >= 8 + 6 && s[8 + 5] == ':')
			return s + 8;
	}
	return NULL;
}

/* Failures before any server error: refused, unreachable, dropped. */
static enum probe_result probe_pg_classify_transport(const char *message, int established,
						     char *detail, size_t detail_len)
{
	if (strstr(message, "Connection refused"))
		return PROBE_REFUSED;
	if (!established) {
		const char *colon = strrchr(message, ':');
		const char *cause = message;

		/* libpq: "...failed: No route to host\n": keep the cause. */
		if (colon) {
			cause = colon + 1;
			if (*cause == ' ')
				cause++;
		}
		snprintf(detail, detail_len, "%s", cause);
		detail[strcspn(detail, "\n")] = '\0';
		return PROBE_CONNECT;
	}
	snprintf(detail, detail_len, "%s",
		 strstr(message, "closed the connection") ? "connection closed"
							  : "protocol error");
	return PROBE_BAD_RESPONSE;
}

enum probe_result probe_pg_classify(const char *message, int established,
				    char *detail, size_t detail_len)
{
	const char *code = probe_pg_sqlstate(message);

	detail[0] = '\0';
	if (code) {
		snprintf(detail, detail_len, "%.5s", code);
		/* PQping: 57P03 (cannot connect now) is REJECT, any other
		 * error means the server is there: OK. */
		return strncmp(code, "57P03", 5) == 0 ? PROBE_REJECTED : PROBE_OK;
	}
	return probe_pg_classify_transport(message, established, detail, detail_len);
}

/* "57P03: the database system is starting up\n..." -> "57P03 the database
 * system is starting up" */
static void probe_pg_error_detail(const char *code, char *detail, size_t detail_len)
{
	snprintf(detail, detail_len, "%.5s %s", code, code + 7);
	detail[strcspn(detail, "\n")] = '\0';
}

enum probe_result probe_pg_classify_login(const char *message, int established,
					  char *detail, size_t detail_len)
{
	const char *code = probe_pg_sqlstate(message);

	detail[0] = '\0';
	if (code) {
		probe_pg_error_detail(code, detail, detail_len);
		return strncmp(code, "57P03", 5) == 0 ? PROBE_REJECTED
						     : PROBE_LOGIN_FAILED;
	}
	if (strstr(message, "no password supplied")) {
		snprintf(detail, detail_len, "password required (use a passfile)");
		return PROBE_LOGIN_FAILED;
	}
	return probe_pg_classify_transport(message, established, detail, detail_len);
}

static void probe_pg_on_socket(evutil_socket_t fd, short what, void *arg);

/* Watch the connection's socket for reading or writing. */
static void probe_pg_wait(struct probe_pg *pg, short kind)
{
	int fd = PQsocket(pg->conn); /* may change between polls: re-read */

	if (fd < 0) {
		probe_pg_finish(pg, PROBE_INTERNAL, "no socket");
		return;
	}
	event_del(pg->ev);
	event_assign(pg->ev, pg->base, fd, kind, probe_pg_on_socket, pg);
	event_add(pg->ev, NULL);
}

static void probe_pg_send_query(struct probe_pg *pg)
{
	int rc;

	pg->stage = PROBE_PG_QUERYING;
	if (PQsetnonblocking(pg->conn, 1) != 0 || !PQsendQuery(pg->conn, PROBE_PG_QUERY)) {
		char detail[80];

		snprintf(detail, sizeof(detail), "%s", PQerrorMessage(pg->conn));
		detail[strcspn(detail, "\n")] = '\0';
		probe_pg_finish(pg, PROBE_QUERY_FAILED, detail);
		return;
	}
	rc = PQflush(pg->conn);
	probe_pg_wait(pg, rc == 1 ? EV_WRITE : EV_READ);
}

/* The query's answer: one row, one boolean. */
static void probe_pg_result(struct probe_pg *pg, PGresult *res)
{
	char detail[80];
	const char *code, *msg;

	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
		if (PQntuples(res) == 1 && PQnfields(res) == 2 && !PQgetisnull(res, 0, 0)) {
			const char *v = PQgetvalue(res, 0, 0);

			if (!strcmp(v, "t") || !strcmp(v, "f")) {
				pg->probe->in_recovery = v[0] == 't';
				pg->probe->lag_bytes = PQgetisnull(res, 0, 1)
					? -1 : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
				probe_pg_finish(pg, PROBE_OK, v[0] == 't' ? "in recovery"
									 : "not in recovery");
				return;
			}
		}
		probe_pg_finish(pg, PROBE_BAD_RESPONSE, "unexpected query result");
		return;
	case PGRES_FATAL_ERROR:
		code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		snprintf(detail, sizeof(detail), "%s %s", code ? code : "?????",
			 msg ? msg : "error");
		probe_pg_finish(pg, PROBE_QUERY_FAILED, detail);
		return;
	default:
		snprintf(detail, sizeof(detail), "%s", PQresStatus(PQresultStatus(res)));
		probe_pg_finish(pg, PROBE_BAD_RESPONSE, detail);
		return;
	}
}

static void probe_pg_query_io(struct probe_pg *pg, short what)
{
	PGresult *res, *first = NULL;
	char detail[80];

	if (what & EV_WRITE) {
		int rc = PQflush(pg->conn);

		if (rc < 0)
			goto broken;
		probe_pg_wait(pg, rc == 1 ? EV_WRITE : EV_READ);
		return;
	}
	if (!PQconsumeInput(pg->conn))
		goto broken;
	if (PQisBusy(pg->conn)) {
		probe_pg_wait(pg, EV_READ);
		return;
	}
	/* Collect every result (a simple query ends with NULL); keep the first. */
	while ((res = PQgetResult(pg->conn))) {
		if (!first)
			first = res;
		else
			PQclear(res);
		if (PQisBusy(pg->conn)) {
			/* More is coming: this is not one simple answer. */
			break;
		}
	}
	if (!first) {
		probe_pg_finish(pg, PROBE_BAD_RESPONSE, "no query result");
		return;
	}
	probe_pg_result(pg, first);
	PQclear(first);
	return;
broken:
	snprintf(detail, sizeof(detail), "%s",
		 strstr(PQerrorMessage(pg->conn), "closed the connection")
			 ? "connection closed during the query"
			 : PQerrorMessage(pg->conn));
	detail[strcspn(detail, "\n")] = '\0';
	probe_pg_finish(pg, PROBE_QUERY_FAILED, detail);
}

static void probe_pg_poll(struct probe_pg *pg)
{
	PostgresPollingStatusType st = PQconnectPoll(pg->conn);
	ConnStatusType cs = PQstatus(pg->conn);
	char detail[80];
	enum probe_result r;

	if (cs != CONNECTION_STARTED && cs != CONNECTION_NEEDED && cs != CONNECTION_BAD)
		pg->established = 1;
	switch (st) {
	case PGRES_POLLING_OK:
		if (pg->query_mode)
			probe_pg_send_query(pg);
		else
			probe_pg_finish(pg, PROBE_OK, "login accepted");
		return;
	case PGRES_POLLING_READING:
		probe_pg_wait(pg, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		probe_pg_wait(pg, EV_WRITE);
		return;
	case PGRES_POLLING_FAILED:
		if (!pg->query_mode && PQconnectionNeedsPassword(pg->conn)) {
			probe_pg_finish(pg, PROBE_OK, "password requested");
			return;
		}
		if (pg->query_mode)
			r = probe_pg_classify_login(PQerrorMessage(pg->conn),
						    pg->established, detail, sizeof(detail));
		else
			r = probe_pg_classify(PQerrorMessage(pg->conn), pg->established,
					      detail, sizeof(detail));
		probe_pg_finish(pg, r, detail);
		return;
	case PGRES_POLLING_ACTIVE: /* unused since PostgreSQL 9 */
		break;
	}
	log_error("internal: PQconnectPoll returned %d", (int)st);
	probe_pg_finish(pg, PROBE_INTERNAL, "unexpected poll state");
}

static void probe_pg_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct probe_pg *pg = arg;

	(void)fd;
	if (pg->stage == PROBE_PG_QUERYING)
		probe_pg_query_io(pg, what);
	else
		probe_pg_poll(pg);
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

static void probe_pg_connect(struct probe_pg *pg)
{
	pg->established = 0;
	pg->stage = PROBE_PG_CONNECTING;
	pg->conn = PQconnectStartParams(pg->keys, pg->vals, 0);
	if (!pg->conn) {
		probe_pg_finish(pg, PROBE_INTERNAL, "out of memory");
		return;
	}
	/* Error messages carry the SQLSTATE, so 57P03 is told apart. */
	PQsetErrorVerbosity(pg->conn, PQERRORS_VERBOSE);
	if (PQstatus(pg->conn) == CONNECTION_BAD) {
		char detail[80];
		enum probe_result r = pg->query_mode
			? probe_pg_classify_login(PQerrorMessage(pg->conn), 0, detail,
						  sizeof(detail))
			: probe_pg_classify(PQerrorMessage(pg->conn), 0, detail,
					    sizeof(detail));
		probe_pg_finish(pg, r, detail);
		return;
	}
	/* Right after the start, libpq waits for the socket to be writable. */
	probe_pg_wait(pg, EV_WRITE);
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

static void probe_pg_start(void *impl, struct probe *p)
{
	struct probe_pg *pg = impl;

	pg->probe = p;
	if (pg->literal) {
		probe_pg_connect(pg);
		return;
	}
	pg->stage = PROBE_PG_RESOLVING;
	resolve_start(&pg->lookup, pg->host);
}

static void probe_pg_cancel(void *impl)
{
	probe_pg_release(impl);
}

const struct probe_ops probe_pg_ops = {
	.start = probe_pg_start,
	.cancel = probe_pg_cancel,
};

struct probe_pg *probe_pg_new(struct event_base *base, struct evdns_base *dns,
			      const char *host, int port, const char *conninfo,
			      char *err, size_t errlen)
{
	struct probe_pg *pg = calloc(1, sizeof(*pg));
	char *perr = NULL;

	if (!pg) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pg->base = base;
	pg->dns = dns;
	snprintf(pg->host, sizeof(pg->host), "%s", host);
	snprintf(pg->port, sizeof(pg->port), "%d", port);
	if (conninfo) {
		pg->query_mode = 1;
		pg->conninfo = PQconninfoParse(conninfo, &perr);
		if (!pg->conninfo) {
			snprintf(err, errlen, "--pg-conninfo: %s", perr ? perr : "out of memory");
			err[strcspn(err, "\n")] = '\0';
			PQfreemem(perr);
			free(pg);
			return NULL;
		}
		/* Our defaults first; what the operator wrote wins. gssencmode
		 * stays off unless asked for: GSSAPI may block on Kerberos. */
		probe_pg_param(pg, "application_name", "happac");
		probe_pg_param(pg, "gssencmode", "disable");
		for (PQconninfoOption *o = pg->conninfo; o->keyword; o++) {
			if (!o->val)
				continue;
			if (!strcmp(o->keyword, "host"))
				snprintf(pg->host, sizeof(pg->host), "%s", o->val);
			else if (!strcmp(o->keyword, "port"))
				snprintf(pg->port, sizeof(pg->port), "%s", o->val);
			else if (strcmp(o->keyword, "hostaddr"))
				probe_pg_param(pg, o->keyword, o->val);
		}
	} else {
		probe_pg_param(pg, "dbname", "pgbouncer");
		probe_pg_param(pg, "user", "pgbouncer");
		probe_pg_param(pg, "application_name", "happac");
		probe_pg_param(pg, "sslmode", "disable");
		probe_pg_param(pg, "gssencmode", "disable");
	}
	probe_pg_param(pg, "host", pg->host);
	probe_pg_param(pg, "hostaddr", pg->hostaddr);
	probe_pg_param(pg, "port", pg->port);
	/* libpq ignores connect_timeout in non-blocking mode; the deadline is
	 * the scheduler's. */
	probe_pg_param(pg, "connect_timeout", "0");
	if (strchr(pg->host, ':'))
		snprintf(pg->target, sizeof(pg->target), "[%s]:%s", pg->host, pg->port);
	else
		snprintf(pg->target, sizeof(pg->target), "%s:%s", pg->host, pg->port);
	pg->literal = resolve_is_literal(pg->host);
	resolve_init(&pg->lookup, dns, probe_pg_resolved, pg);
	if (pg->literal)
		snprintf(pg->hostaddr, sizeof(pg->hostaddr), "%s", pg->host);
	/* Created unassigned; probe_pg_wait() assigns it to each socket. */
	pg->ev = event_new(base, -1, 0, probe_pg_on_socket, pg);
	if (!pg->ev) {
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
	if (pg->ev)
		event_free(pg->ev);
	if (pg->conninfo)
		PQconninfoFree(pg->conninfo);
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
