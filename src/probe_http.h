/* probe_http.h - one plain HTTP/1.0 request on our loop, for the Patroni
 * probe: non-blocking connect, write the request, read the answer through
 * http_reply, close. No library: plain HTTP does not need libcurl's weight
 * (see lib_curl.h); HTTPS goes through libcurl. */
#ifndef HAPPAC_PROBE_HTTP_H
#define HAPPAC_PROBE_HTTP_H

#include "http_reply.h"
#include "probe.h"

#include <stddef.h>

struct event_base;
struct event;

/* The one exit of a request: the result (PROBE_OK for any whole answer,
 * whatever its status), the answer's status (0 when none) and a detail
 * (may be ""). The reply (status, body) is in the probe_http. Called at
 * most once per probe_http_start(), never from inside it, and never after
 * probe_http_cancel(); the callback may start the next request. */
typedef void (*probe_http_cb)(void *arg, enum probe_result result, int status,
			      const char *detail);

struct probe_http {
	struct event_base *base;
	struct event *ev;      /* the socket's watcher; assigned per request */
	struct event *kick;    /* reports a failure found inside start() */
	int fd;                /* -1 when idle */
	probe_http_cb cb;
	void *arg;
	char request[768];
	size_t request_len, sent;
	enum probe_result pending; /* for kick */
	char pending_detail[80];
	struct http_reply reply;
};

/* Returns 0, or -1 when out of memory. */
int probe_http_init(struct probe_http *h, struct event_base *base, probe_http_cb cb,
		    void *arg);
void probe_http_free(struct probe_http *h);

/* Send "METHOD TARGET HTTP/1.0" with a Host header to addr (an IPv4 or IPv6
 * literal) port; the answer's body goes to body (body_max bytes, owned by
 * the caller; NULL: counted, not kept). One request at a time. */
void probe_http_start(struct probe_http *h, const char *addr, int port, const char *method,
		      const char *target, const char *host_header, char *body,
		      size_t body_max);
/* Drop the request in flight, if any; the callback is not called. */
void probe_http_cancel(struct probe_http *h);

#endif
