/* http.c - the HTTP side port: a small HTTP/1.x server on our loop.
 *
 * Not libevent's evhttp: in libevent 2.1 it has no hook before a request is
 * read (so --allow could not close at accept), no cap on connections (the
 * stress tests exhausted the fd budget and starved the probes with idle
 * connections) and only an idle timeout, which a client sending one byte a
 * second renews forever. The side port serves a few small GET resources
 * (and Patroni's health paths, whose content comes from the routes) and
 * closes after each answer, which takes little code to do strictly:
 * admission at accept (allow-list, connection cap), one absolute deadline
 * per connection, a bounded request head, and 400/404/405/431. */
#include "http.h"

#include "acl.h"
#include "log.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_HEAD 8192      /* request line + headers */
#define HTTP_MAX_HEADERS 64
#define HTTP_DEADLINE_S 5       /* a connection's whole life */
#define HTTP_MAX_CONNS 64       /* monitoring needs a few; the rest is abuse */
#define HTTP_ACCEPT_BATCH 16

struct http_conn {
	struct net_conn nc;      /* first: ev[0] the socket, ev[1] the deadline */
	struct http *http;
	int fd;
	int draining;            /* answered; reading to EOF before close */
	struct event *ev;        /* read, then write */
	struct event *deadline;
	size_t len;
	char head[HTTP_MAX_HEAD + 1];
	struct evbuffer *out;    /* the response while it is written */
};

struct http {
	struct event_base *base;
	struct net_server *srv;  /* accepts; holds the connections */
	struct net_listener *listener; /* NULL: the side port is off */
	char addr[64];
	int port;
	struct http_routes routes;
	void *arg;
	struct http_stats stats;
};

static const char *http_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Finish a connection: its socket closes now, its memory once no callback
 * of it can still run (net_conn_close). */
static void http_conn_free(struct http_conn *c)
{
	if (c->out) {
		evbuffer_free(c->out);
		c->out = NULL;
	}
	c->fd = -1;
	net_conn_close(&c->nc);
}

static void http_conn_release(struct net_conn *nc)
{
	struct http_conn *c = (struct http_conn *)nc; /* nc is the first member */

	if (c->out)
		evbuffer_free(c->out);
	free(c);
}

static void http_conn_io(evutil_socket_t fd, short what, void *arg);

/* Lingering close: once the answer is out, stop writing and read what the
 * client still sends until it closes (bounded by the deadline). Closing
 * with unread input would send a reset, which can destroy the answer
 * before the client reads it (a 431 to a client still sending headers). */
static void http_conn_linger(struct http_conn *c)
{
	c->draining = 1;
	net_linger(c->fd);
	event_del(c->ev);
	event_assign(c->ev, c->http->base, c->fd, EV_READ | EV_PERSIST, http_conn_io, c);
	event_add(c->ev, NULL);
}

static void http_conn_write(struct http_conn *c)
{
	while (evbuffer_get_length(c->out) > 0) {
		int n = evbuffer_write(c->out, c->fd);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return; /* the write event calls again */
		if (n <= 0) {
			http_conn_free(c);
			return;
		}
	}
	http_conn_linger(c);
}

/* Queue the whole response and start writing it; the connection closes
 * when it is out (or at the deadline). */
static void http_respond(struct http_conn *c, int code, const char *type,
			 struct evbuffer *body, int head_only, const char *extra)
{
	struct http *h = c->http;
	size_t blen = body ? evbuffer_get_length(body) : 0;

	if (code >= 400 && code != 503)
		h->stats.rejected++;
	else
		h->stats.requests++;
	c->out = evbuffer_new();
	if (!c->out) {
		http_conn_free(c);
		return;
	}
	evbuffer_add_printf(c->out,
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			    "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
			    code, http_reason(code), type, blen, extra ? extra : "");
	if (body && !head_only)
		evbuffer_add_buffer(c->out, body);
	event_del(c->ev);
	event_assign(c->ev, h->base, c->fd, EV_WRITE | EV_PERSIST, http_conn_io, c);
	event_add(c->ev, NULL);
	http_conn_write(c);
}

static void http_error(struct http_conn *c, int code, const char *extra)
{
	struct evbuffer *body = evbuffer_new();

	if (body)
		evbuffer_add_printf(body, "%d %s\n", code, http_reason(code));
	http_respond(c, code, "text/plain; charset=utf-8", body, 0, extra);
	if (body)
		evbuffer_free(body);
}

/* "profile=NAME" from a query string; NULL when absent. Names are
 * [A-Za-z0-9_-]; anything else cannot match a profile. */
static const char *http_query_profile(char *query, int *bad)
{
	for (char *tok = strtok(query, "&"); tok; tok = strtok(NULL, "&")) {
		if (strncmp(tok, "profile=", 8) != 0)
			continue;
		for (const char *p = tok + 8; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
				*bad = 1;
		return tok + 8;
	}
	return NULL;
}

const char *const http_target_names[HTTP_TARGET_COUNT] = {
	[HTTP_TARGET_PROFILE] = "profile",
	[HTTP_TARGET_STATUS] = "status",
	[HTTP_TARGET_METRICS] = "metrics",
	[HTTP_TARGET_PATRONI] = "patroni",
};

/* Whether the query has a profile=NAME parameter. */
static int http_query_names_profile(const char *query)
{
	for (const char *tok = query; tok; tok = strchr(tok, '&')) {
		if (*tok == '&')
			tok++;
		if (!strncmp(tok, "profile=", 8))
			return 1;
	}
	return 0;
}

/* Bare /health is Patroni's (PostgreSQL running, and PgBouncer with it):
 * a check written for Patroni's port means that on ours too. A happac
 * profile's answer is /health?profile=NAME (Consul's checks). */
enum http_target http_target(const char *path, const char *query)
{
	if (!strcmp(path, "/health") && query && http_query_names_profile(query))
		return HTTP_TARGET_PROFILE;
	if (!strcmp(path, "/status"))
		return HTTP_TARGET_STATUS;
	if (!strcmp(path, "/metrics"))
		return HTTP_TARGET_METRICS;
	return HTTP_TARGET_PATRONI;
}

/* 405 unless method is GET or HEAD (or OPTIONS where options is set);
 * returns 1 when it answered. */
static int http_method_refused(struct http_conn *c, const char *method, int options)
{
	if (!strcmp(method, "GET") || !strcmp(method, "HEAD") ||
	    (options && !strcmp(method, "OPTIONS")))
		return 0;
	http_error(c, 405, options ? "Allow: GET, HEAD, OPTIONS\r\n" : "Allow: GET, HEAD\r\n");
	return 1;
}

/* A Patroni health path: its code from the cache; HEAD and OPTIONS get the
 * status line only, as Patroni sends them (HAProxy's httpchk reads no
 * more). A 400 keeps its body (except for HEAD): it says what was wrong. */
static void http_patroni(struct http_conn *c, const char *method, int code,
			 struct evbuffer *body)
{
	int status_only = strcmp(method, "GET") != 0;

	if (code == 400 && strcmp(method, "HEAD"))
		status_only = 0;
	http_respond(c, code, "text/plain; charset=utf-8", status_only ? NULL : body, 0,
		     NULL);
}

/* /health?profile=NAME: the profile's line (OPTIONS: the code only). */
static void http_health(struct http_conn *c, const char *method, char *query,
			struct evbuffer *body)
{
	struct http *h = c->http;
	const char *profile = NULL;
	int bad = 0, up;

	if (query)
		profile = http_query_profile(query, &bad);
	up = bad ? -1 : h->routes.health(h->arg, profile, body);
	if (up < 0)
		http_error(c, 404, NULL);
	else
		http_respond(c, up ? 200 : 503, "text/plain; charset=utf-8",
			     strcmp(method, "OPTIONS") ? body : NULL, !strcmp(method, "HEAD"),
			     NULL);
}

/* Method, path and query (NULL: none) of a well-formed request line. */
static void http_route(struct http_conn *c, const char *method, const char *path,
		       char *query)
{
	struct http *h = c->http;
	int head_only = !strcmp(method, "HEAD");
	enum http_target target = http_target(path, query);
	int health = target == HTTP_TARGET_PROFILE, own = target != HTTP_TARGET_PATRONI;
	int code = 0;
	struct evbuffer *body = evbuffer_new();

	if (!body) {
		http_error(c, 500, NULL);
		return;
	}
	if (!own && h->routes.patroni)
		code = h->routes.patroni(h->arg, path, query, body);
	if (!own && !code)
		http_error(c, 404, NULL);
	else if (http_method_refused(c, method, health || code != 0))
		evbuffer_drain(body, evbuffer_get_length(body)); /* answered 405 */
	else if (code)
		http_patroni(c, method, code, body);
	else if (health)
		http_health(c, method, query, body);
	else if (target == HTTP_TARGET_STATUS) {
		h->routes.status(h->arg, body);
		http_respond(c, 200, "application/json", body, head_only, NULL);
	} else {
		h->routes.metrics(h->arg, body);
		http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body,
			     head_only, NULL);
	}
	evbuffer_free(body);
}

/* A complete head is in c->head: answer it. */
static void http_handle(struct http_conn *c)
{
	char *line = c->head, *eol = strpbrk(line, "\r\n"), *sp1, *sp2, *query, *p;
	int headers = 0;

	*eol = '\0';
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1 == line ||
	    sp1[1] != '/') {
		http_error(c, 400, NULL);
		return;
	}
	for (p = line; p < sp1; p++)
		if (*p < 'A' || *p > 'Z') {
			http_error(c, 400, NULL);
			return;
		}
	for (p = eol + 1; (p = strchr(p, '\n')); p++)
		headers++;
	if (headers > HTTP_MAX_HEADERS + 1) {
		http_error(c, 431, NULL);
		return;
	}
	*sp1 = *sp2 = '\0';
	query = strchr(sp1 + 1, '?');
	if (query)
		*query++ = '\0';
	http_route(c, line, sp1 + 1, query);
}

static void http_conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	ssize_t n;

	(void)what;
	if (c->draining) {
		if (net_linger_read(fd))
			http_conn_free(c);
		return;
	}
	if (c->out) {
		http_conn_write(c);
		return;
	}
	n = recv(fd, c->head + c->len, HTTP_MAX_HEAD - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		http_conn_free(c); /* closed or reset before a whole request */
		return;
	}
	if (memchr(c->head + c->len, '\0', (size_t)n)) {
		c->len = 0;
		http_error(c, 400, NULL);
		return;
	}
	c->len += (size_t)n;
	c->head[c->len] = '\0';
	if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) {
		http_handle(c);
		return;
	}
	if (c->len == HTTP_MAX_HEAD)
		http_error(c, strchr(c->head, '\n') ? 431 : 400, NULL);
}

static void http_conn_expire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	/* Too slow: no answer is owed to a request that never came whole. */
	http_conn_free(arg);
}

/* A connection the allow-list and the cap let in. */
static void http_accept(void *arg, void *larg, int fd, const struct sockaddr *peer)
{
	struct http *h = arg;
	struct timeval deadline = { HTTP_DEADLINE_S, 0 };
	struct http_conn *c = net_conn_new(h->srv, sizeof(*c), fd, http_conn_release);

	(void)larg;
	(void)peer;
	if (!c) {
		close(fd);
		return;
	}
	c->http = h;
	c->fd = fd;
	c->ev = c->nc.ev[0] = event_new(h->base, fd, EV_READ | EV_PERSIST, http_conn_io, c);
	c->deadline = c->nc.ev[1] = evtimer_new(h->base, http_conn_expire, c);
	if (!c->ev || !c->deadline) {
		http_conn_free(c);
		return;
	}
	event_add(c->ev, NULL);
	evtimer_add(c->deadline, &deadline);
}

/* Monitoring needs a few connections; the rest is abuse: closed unread. */
static void http_full(void *arg, int fd)
{
	struct http *h = arg;

	h->stats.over_cap++;
	close(fd);
}

struct http *http_new(struct event_base *base, const struct http_routes *routes,
		      void *arg)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->base = base;
	h->routes = *routes;
	h->arg = arg;
	h->srv = net_server_new(base, "http", HTTP_ACCEPT_BATCH, http_accept, h,
				&h->stats.denied);
	if (!h->srv) {
		free(h);
		return NULL;
	}
	net_server_set_cap(h->srv, HTTP_MAX_CONNS, http_full);
	net_server_enable(h->srv, 1);
	return h;
}

static void http_close_listener(struct http *h)
{
	net_listener_free(h->listener);
	h->listener = NULL;
}

/* What http_listen_commit() will do: keep the running socket, close it, or
 * replace it with fd (bound by the plan). */
struct http_listen_plan {
	struct net_listener *listener; /* NULL: no new socket */
	int close;               /* the side port goes off */
	char addr[64];
	int port;
	char name[80];           /* for the log */
};

struct http_listen_plan *http_listen_prepare(struct http *h, const char *addr, int port,
					     char *err, size_t errlen)
{
	struct http_listen_plan *p = calloc(1, sizeof(*p));
	int fd;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!addr) {
		p->close = h->listener != NULL;
		return p;
	}
	if (h->listener && h->port == port && !strcmp(h->addr, addr))
		return p;
	fd = net_listen_tcp(addr, port, p->name, sizeof(p->name));
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen for HTTP on %s: %s", p->name,
			 fd == -2 ? "not an address" : strerror(errno));
		http_listen_abort(p);
		return NULL;
	}
	p->listener = net_listener_new(h->srv, fd, NULL);
	if (!p->listener) {
		snprintf(err, errlen, "out of memory");
		http_listen_abort(p);
		return NULL;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	p->port = port;
	return p;
}

void http_listen_commit(struct http *h, struct http_listen_plan *p)
{
	if (p->close) {
		log_info("http: closed %s port %d", h->addr, h->port);
		http_close_listener(h);
		h->addr[0] = '\0';
		h->port = 0;
	} else if (p->listener) {
		http_close_listener(h);
		h->listener = p->listener;
		p->listener = NULL;
		/* A paused side port resumes it when descriptors are free. */
		net_listener_start(h->listener);
		snprintf(h->addr, sizeof(h->addr), "%s", p->addr);
		h->port = p->port;
		log_info("http: listening on %s", p->name);
	}
	http_listen_abort(p);
}

void http_listen_abort(struct http_listen_plan *p)
{
	if (!p)
		return;
	net_listener_free(p->listener);
	free(p);
}

void http_set_acl(struct http *h, const struct acl *acl)
{
	net_server_set_acl(h->srv, acl);
}

const struct http_stats *http_stats(const struct http *h)
{
	return &h->stats;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	http_close_listener(h);
	net_server_free(h->srv);
	free(h);
}
