/* http.c - evhttp side port with strict limits. */
#include "http.h"

#include "acl.h"
#include "log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libevent answers 413 itself past this; below it we check the headers
 * ourselves and answer 431, as RFC 6585 asks. */
#define HTTP_EVHTTP_MAX_HEADERS (64 * 1024)
#define HTTP_MAX_HEADER_BYTES (8 * 1024)
#define HTTP_MAX_HEADERS 64
#define HTTP_MAX_BODY 1024
#define HTTP_TIMEOUT_S 5

struct http {
	struct event_base *base;
	struct evhttp *evh;
	struct evhttp_bound_socket *sock;
	char addr[64];
	int port;
	struct http_routes routes;
	void *arg;
	struct http_stats stats;
	const struct acl *acl;
};

static void http_reply(struct http *h, struct evhttp_request *req, int code,
		       const char *reason, const char *type, struct evbuffer *body)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (type)
		evhttp_add_header(out, "Content-Type", type);
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_add_header(out, "Connection", "close");
	if (code >= 400 && code != 503)
		h->stats.rejected++;
	else
		h->stats.requests++;
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD && body)
		evbuffer_drain(body, evbuffer_get_length(body));
	evhttp_send_reply(req, code, reason, body);
}

static void http_error(struct http *h, struct evhttp_request *req, int code,
		       const char *reason)
{
	struct evbuffer *body = evbuffer_new();

	if (body)
		evbuffer_add_printf(body, "%d %s\n", code, reason);
	http_reply(h, req, code, reason, "text/plain; charset=utf-8", body);
	if (body)
		evbuffer_free(body);
}

/* 431 when the client sent more header than any health checker needs. */
static int http_headers_too_large(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	size_t bytes = 0;
	int count = 0;

	TAILQ_FOREACH(kv, in, next) {
		bytes += strlen(kv->key) + strlen(kv->value) + 4;
		count++;
	}
	return bytes > HTTP_MAX_HEADER_BYTES || count > HTTP_MAX_HEADERS;
}

static int http_admit(struct http *h, struct evhttp_request *req);

static void http_dispatch(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *body;

	if (!http_admit(h, req)) {
		evhttp_send_reply(req, 403, "Forbidden", NULL);
		return;
	}
	if (http_headers_too_large(req)) {
		http_error(h, req, 431, "Request Header Fields Too Large");
		return;
	}
	if (!path || path[0] != '/') {
		http_error(h, req, 400, "Bad Request");
		return;
	}
	if (strcmp(path, "/health") && strcmp(path, "/status") &&
	    strcmp(path, "/metrics")) {
		http_error(h, req, 404, "Not Found");
		return;
	}
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  "GET, HEAD");
		http_error(h, req, 405, "Method Not Allowed");
		return;
	}
	body = evbuffer_new();
	if (!body) {
		http_error(h, req, 500, "Internal Server Error");
		return;
	}
	if (!strcmp(path, "/health")) {
		const char *query = evhttp_uri_get_query(uri);
		struct evkeyvalq params;
		const char *profile = NULL;
		int up;

		TAILQ_INIT(&params);
		if (query && evhttp_parse_query_str(query, &params) != 0) {
			evbuffer_free(body);
			http_error(h, req, 400, "Bad Request");
			return;
		}
		profile = evhttp_find_header(&params, "profile");
		up = h->routes.health(h->arg, profile, body);
		if (up < 0) {
			evhttp_clear_headers(&params);
			evbuffer_free(body);
			http_error(h, req, 404, "Not Found");
			return;
		}
		http_reply(h, req, up ? 200 : 503, up ? "OK" : "Service Unavailable",
			   "text/plain; charset=utf-8", body);
		evhttp_clear_headers(&params);
	} else if (!strcmp(path, "/status")) {
		h->routes.status(h->arg, body);
		http_reply(h, req, 200, "OK", "application/json", body);
	} else {
		h->routes.metrics(h->arg, body);
		http_reply(h, req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
			   body);
	}
	evbuffer_free(body);
}

/* --allow for HTTP. libevent 2.1's evhttp has no hook before the request is
 * read (evhttp_set_newreqcb came in 2.2), so a denied source gets a bare 403
 * with no content instead of a silent close. */
static int http_admit(struct http *h, struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	const struct sockaddr *sa = conn ? evhttp_connection_get_addr(conn) : NULL;

	if (!h->acl || (sa && acl_allows(h->acl, sa)))
		return 1;
	h->stats.denied++;
	return 0;
}

void http_set_acl(struct http *h, const struct acl *acl)
{
	h->acl = acl;
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
	h->evh = evhttp_new(base);
	if (!h->evh) {
		free(h);
		return NULL;
	}
	evhttp_set_max_headers_size(h->evh, HTTP_EVHTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->evh, HTTP_MAX_BODY);
	evhttp_set_timeout(h->evh, HTTP_TIMEOUT_S);
	/* Every method reaches http_dispatch, which answers 405 itself (evhttp
	 * would say 501 for a method it was told to refuse). */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
					   EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
					   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
					   EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
					   EVHTTP_REQ_PATCH);
	evhttp_set_gencb(h->evh, http_dispatch, h);
	return h;
}

int http_set_listen(struct http *h, const char *addr, int port, char *err,
		    size_t errlen)
{
	struct evhttp_bound_socket *s;

	if (addr && h->sock && h->port == port && !strcmp(h->addr, addr))
		return 0;
	if (!addr) {
		if (h->sock) {
			evhttp_del_accept_socket(h->evh, h->sock);
			h->sock = NULL;
			log_info("http: closed %s port %d", h->addr, h->port);
		}
		h->addr[0] = '\0';
		h->port = 0;
		return 0;
	}
	s = evhttp_bind_socket_with_handle(h->evh, addr, (unsigned short)port);
	if (!s) {
		snprintf(err, errlen, "cannot listen for HTTP on %s%s%s:%d: %s",
			 strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "",
			 port, strerror(errno));
		return -1;
	}
	if (h->sock)
		evhttp_del_accept_socket(h->evh, h->sock);
	h->sock = s;
	snprintf(h->addr, sizeof(h->addr), "%s", addr);
	h->port = port;
	log_info("http: listening on %s%s%s:%d", strchr(addr, ':') ? "[" : "", addr,
		 strchr(addr, ':') ? "]" : "", port);
	return 0;
}

const struct http_stats *http_stats(const struct http *h)
{
	return &h->stats;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	evhttp_free(h->evh);
	free(h);
}
