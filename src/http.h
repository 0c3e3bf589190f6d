/* http.h - the HTTP side port: /health, /status, /metrics, and Patroni's
 * health paths (/primary, /replica, ...) answered from the cache.
 *
 * Off unless --http-listen is set. GET and HEAD (and OPTIONS on the health
 * paths, as HAProxy's httpchk sends it); every response closes
 * the connection. Content comes from callbacks so that this module holds only
 * HTTP: admission, routing, methods, limits and error codes. */
#ifndef HTTP_H_HAPPAC
#define HTTP_H_HAPPAC

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct http;
struct acl;

struct http_routes {
	/* /health?profile=NAME: append that profile's agent line (a built-in
	 * profile's when none is configured by that name); return 1 when up,
	 * 0 when not, -1 when there is no such profile. */
	int (*health)(void *arg, const char *profile, struct evbuffer *out);
	/* /status: append a JSON document. */
	void (*status)(void *arg, struct evbuffer *out);
	/* /metrics: append Prometheus text. */
	void (*metrics)(void *arg, struct evbuffer *out);
	/* Any other path (and bare /health, Patroni's): when it is one of
	 * Patroni's health paths, append
	 * the body and return 200, 503 or 400 (query not understood; the body
	 * says why); 0 when it is not (404). query: after '?', or NULL. */
	int (*patroni)(void *arg, const char *path, char *query, struct evbuffer *out);
};

struct http_stats {
	uint64_t requests;  /* answered with 2xx/503 */
	uint64_t rejected;  /* answered with 4xx */
	uint64_t denied;    /* closed at accept: source not in --allow */
	uint64_t over_cap;  /* closed at accept: too many connections */
};

/* Which route a request target takes (http_target()). */
enum http_target {
	HTTP_TARGET_PROFILE,  /* /health?profile=NAME: a happac profile's line */
	HTTP_TARGET_STATUS,   /* /status */
	HTTP_TARGET_METRICS,  /* /metrics */
	HTTP_TARGET_PATRONI,  /* anything else: one of Patroni's paths (bare
			       * /health included) or 404 */
	HTTP_TARGET_COUNT
};
extern const char *const http_target_names[HTTP_TARGET_COUNT];

/* The route of path with query (after '?', NULL: none); reads only. */
enum http_target http_target(const char *path, const char *query);

struct http *http_new(struct event_base *base, const struct http_routes *routes,
		      void *arg);
/* Listen on addr:port (addr NULL: close the side port), in two steps so
 * that a reload can fail as a whole: http_listen_prepare() binds a new
 * socket when addr:port differs from the running one (NULL with err naming
 * the address when it cannot) and changes nothing the side port runs;
 * http_listen_commit() then swaps it in (or closes the side port), or
 * http_listen_abort() closes it. Either one frees the plan, and one of them
 * must follow before the loop runs again. */
struct http_listen_plan;
struct http_listen_plan *http_listen_prepare(struct http *h, const char *addr, int port,
					     char *err, size_t errlen);
void http_listen_commit(struct http *h, struct http_listen_plan *p);
/* NULL is fine. */
void http_listen_abort(struct http_listen_plan *p);
/* As agent_set_acl(): others are closed at accept without a reply. */
void http_set_acl(struct http *h, const struct acl *acl);
const struct http_stats *http_stats(const struct http *h);
void http_free(struct http *h);

#endif
