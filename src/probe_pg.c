/* probe_pg.c - PgBouncer probe: PQconnectStartParams + PQconnectPoll on our loop. */
#include "probe_pg.h"

#include "log.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct probe_pg {
	struct event_base *base;
	struct evdns_base *dns;
	char host[256];
	char port[8];
	char target[300];
	int literal;                     /* host is an address: no DNS */
	char hostaddr[INET6_ADDRSTRLEN]; /* what libpq connects to */

	/* the attempt in flight */
	struct probe *probe;
	struct evdns_getaddrinfo_request *lookup;
	PGconn *conn;
	struct event *ev;                /* watches PQsocket(conn) */
	int established;                 /* TCP connect completed */
};

static void probe_pg_release(struct probe_pg *pg)
{
	if (pg->lookup) {
		/* Cancelling runs the callback with EVUTIL_EAI_CANCEL; it sees
		 * probe == NULL and returns. */
		struct evdns_getaddrinfo_request *r = pg->lookup;

		pg->lookup = NULL;
		pg->probe = NULL;
		evdns_getaddrinfo_cancel(r);
	}
	if (pg->ev)
		event_del(pg->ev);
	if (pg->conn) {
		PQfinish(pg->conn);
		pg->conn = NULL;
	}
	pg->probe = NULL;
}

static void probe_pg_finish(struct probe_pg *pg, enum probe_result result,
			    const char *detail)
{
	struct probe *p = pg->probe;

	probe_pg_release(pg);
	probe_done(p, result, 0, detail);
}

enum probe_result probe_pg_classify(const char *message, int established,
				    char *detail, size_t detail_len)
{
	/* With PQERRORS_VERBOSE, a server's error reads "FATAL:  57P03: text". */
	static const char *const severities[] = { "FATAL:  ", "ERROR:  ", "PANIC:  " };

	detail[0] = '\0';
	for (size_t i = 0; i < sizeof(severities) / sizeof(severities[0]); i++) {
		const char *s = strstr(message, severities[i]);

		if (s && strlen(s) >= 8 + 6 && s[8 + 5] == ':') {
			const char *code = s + 8;

			snprintf(detail, detail_len, "%.5s", code);
			/* PQping: 57P03 (cannot connect now) is REJECT, any
			 * other error means the server is there: OK. */
			return strncmp(code, "57P03", 5) == 0 ? PROBE_REJECTED
							     : PROBE_OK;
		}
	}
	if (strstr(message, "Connection refused"))
		return PROBE_REFUSED;
	if (!established) {
		const char *colon = strrchr(message, ':');

		/* libpq: "...failed: No route to host\n": keep the cause. */
		snprintf(detail, detail_len, "%s", colon ? colon + 2 : message);
		detail[strcspn(detail, "\n")] = '\0';
		return PROBE_CONNECT;
	}
	snprintf(detail, detail_len, "%s",
		 strstr(message, "closed the connection") ? "connection closed"
							  : "protocol error");
	return PROBE_BAD_RESPONSE;
}

static void probe_pg_on_socket(evutil_socket_t fd, short what, void *arg);

/* Watch the connection's socket for what PQconnectPoll asked. */
static void probe_pg_wait(struct probe_pg *pg, PostgresPollingStatusType st)
{
	int fd = PQsocket(pg->conn); /* may change between polls: re-read */
	short kind = st == PGRES_POLLING_READING ? EV_READ : EV_WRITE;

	if (fd < 0) {
		probe_pg_finish(pg, PROBE_INTERNAL, "no socket");
		return;
	}
	event_del(pg->ev);
	event_assign(pg->ev, pg->base, fd, kind, probe_pg_on_socket, pg);
	event_add(pg->ev, NULL);
}

static void probe_pg_poll(struct probe_pg *pg)
{
	PostgresPollingStatusType st = PQconnectPoll(pg->conn);
	ConnStatusType cs = PQstatus(pg->conn);
	char detail[64];
	enum probe_result r;

	if (cs != CONNECTION_STARTED && cs != CONNECTION_NEEDED && cs != CONNECTION_BAD)
		pg->established = 1;
	switch (st) {
	case PGRES_POLLING_OK:
		probe_pg_finish(pg, PROBE_OK, "login accepted");
		return;
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		probe_pg_wait(pg, st);
		return;
	case PGRES_POLLING_FAILED:
		if (PQconnectionNeedsPassword(pg->conn)) {
			probe_pg_finish(pg, PROBE_OK, "password requested");
			return;
		}
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
	(void)fd;
	(void)what;
	probe_pg_poll(arg);
}

static void probe_pg_connect(struct probe_pg *pg)
{
	const char *keys[] = { "host", "hostaddr", "port", "dbname", "user",
			       "application_name", "sslmode", "gssencmode",
			       "connect_timeout", NULL };
	const char *vals[] = { pg->host, pg->hostaddr, pg->port, "pgbouncer",
			       "pgbouncer", "happac", "disable", "disable",
			       "0", NULL };

	pg->established = 0;
	pg->conn = PQconnectStartParams(keys, vals, 0);
	if (!pg->conn) {
		probe_pg_finish(pg, PROBE_INTERNAL, "out of memory");
		return;
	}
	/* Error messages carry the SQLSTATE, so 57P03 is told apart. */
	PQsetErrorVerbosity(pg->conn, PQERRORS_VERBOSE);
	if (PQstatus(pg->conn) == CONNECTION_BAD) {
		char detail[64];
		enum probe_result r = probe_pg_classify(PQerrorMessage(pg->conn), 0,
							detail, sizeof(detail));
		probe_pg_finish(pg, r, detail);
		return;
	}
	/* Right after the start, libpq waits for the socket to be writable. */
	probe_pg_wait(pg, PGRES_POLLING_WRITING);
}

static void probe_pg_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct probe_pg *pg = arg;

	if (!pg->probe || err == EVUTIL_EAI_CANCEL) {
		if (ai)
			evutil_freeaddrinfo(ai);
		return;
	}
	pg->lookup = NULL;
	if (err || !ai) {
		if (ai)
			evutil_freeaddrinfo(ai);
		probe_pg_finish(pg, PROBE_RESOLVE, evutil_gai_strerror(err));
		return;
	}
	if (ai->ai_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr,
			  pg->hostaddr, sizeof(pg->hostaddr));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr,
			  pg->hostaddr, sizeof(pg->hostaddr));
	evutil_freeaddrinfo(ai);
	probe_pg_connect(pg);
}

static void probe_pg_start(void *impl, struct probe *p)
{
	struct probe_pg *pg = impl;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *r;

	pg->probe = p;
	if (pg->literal) {
		probe_pg_connect(pg);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* The callback may run before this returns (cached or /etc/hosts). */
	r = evdns_getaddrinfo(pg->dns, pg->host, NULL, &hints, probe_pg_resolved, pg);
	if (r && pg->probe)
		pg->lookup = r;
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
			      const char *host, int port)
{
	struct probe_pg *pg = calloc(1, sizeof(*pg));
	unsigned char buf[sizeof(struct in6_addr)];

	if (!pg)
		return NULL;
	pg->base = base;
	pg->dns = dns;
	snprintf(pg->host, sizeof(pg->host), "%s", host);
	snprintf(pg->port, sizeof(pg->port), "%d", port);
	if (strchr(host, ':'))
		snprintf(pg->target, sizeof(pg->target), "[%s]:%d", host, port);
	else
		snprintf(pg->target, sizeof(pg->target), "%s:%d", host, port);
	pg->literal = inet_pton(AF_INET, host, buf) == 1 ||
		      inet_pton(AF_INET6, host, buf) == 1;
	if (pg->literal)
		snprintf(pg->hostaddr, sizeof(pg->hostaddr), "%s", host);
	/* Created unassigned; probe_pg_wait() assigns it to each socket. */
	pg->ev = event_new(base, -1, 0, probe_pg_on_socket, pg);
	if (!pg->ev) {
		free(pg);
		return NULL;
	}
	return pg;
}

void probe_pg_free(struct probe_pg *pg)
{
	if (!pg)
		return;
	probe_pg_release(pg);
	event_free(pg->ev);
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
