/* probe_http.c - a plain HTTP/1.0 request on libevent; see probe_http.h. */
#include "probe_http.h"

#include "net.h"
#include "resolve.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void probe_http_close(struct probe_http *h)
{
	if (h->ev)
		event_del(h->ev);
	if (h->kick)
		event_del(h->kick);
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
}

/* The one exit: release the socket, then report. */
static void probe_http_done(struct probe_http *h, enum probe_result result,
			    const char *detail)
{
	probe_http_close(h);
	h->cb(h->arg, result, h->reply.status, detail ? detail : "");
}

static void probe_http_errno(struct probe_http *h, int err)
{
	char detail[80];

	if (err == ECONNREFUSED) {
		probe_http_done(h, PROBE_REFUSED, "");
		return;
	}
	snprintf(detail, sizeof(detail), "%s", strerror(err));
	/* A reset before any answer is a connection failure, after the
	 * status line a broken answer. */
	probe_http_done(h, h->reply.bytes ? PROBE_BAD_RESPONSE : PROBE_CONNECT, detail);
}

static void probe_http_reply_state(struct probe_http *h, enum http_reply_state st)
{
	switch (st) {
	case HTTP_REPLY_MORE:
		return;
	case HTTP_REPLY_DONE:
		probe_http_done(h, PROBE_OK, "");
		return;
	case HTTP_REPLY_BAD:
		probe_http_done(h, PROBE_BAD_RESPONSE, h->reply.detail);
		return;
	}
	probe_http_done(h, PROBE_INTERNAL, "impossible reply state");
}

static void probe_http_read(struct probe_http *h)
{
	char buf[4096];
	/* A bounded amount per wake-up: a peer that streams fast must not
	 * hold the loop (the reply is bounded anyway). */
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(h->fd, buf, sizeof(buf));

		if (n > 0) {
			enum http_reply_state st = http_reply_feed(&h->reply, buf, (size_t)n);

			if (st != HTTP_REPLY_MORE) {
				probe_http_reply_state(h, st);
				return;
			}
			continue;
		}
		if (n == 0) {
			probe_http_reply_state(h, http_reply_eof(&h->reply));
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		probe_http_errno(h, errno);
		return;
	}
}

static void probe_http_on_socket(evutil_socket_t fd, short what, void *arg);

static void probe_http_watch(struct probe_http *h, short what)
{
	event_del(h->ev);
	event_assign(h->ev, h->base, h->fd, what | EV_PERSIST, probe_http_on_socket, h);
	event_add(h->ev, NULL);
}

static void probe_http_write(struct probe_http *h)
{
	while (h->sent < h->request_len) {
		ssize_t n = send(h->fd, h->request + h->sent, h->request_len - h->sent,
				 MSG_NOSIGNAL);

		if (n > 0) {
			h->sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* still watching for EV_WRITE */
		probe_http_errno(h, n < 0 ? errno : EPIPE);
		return;
	}
	probe_http_watch(h, EV_READ);
}

static void probe_http_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct probe_http *h = arg;

	(void)fd;
	if (what & EV_READ) {
		probe_http_read(h);
		return;
	}
	if (h->sent == 0) {
		/* The first writability ends the non-blocking connect. */
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			probe_http_errno(h, err);
			return;
		}
	}
	probe_http_write(h);
}

static void probe_http_on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct probe_http *h = arg;

	(void)fd;
	(void)what;
	probe_http_done(h, h->pending, h->pending_detail);
}

/* A failure found inside start(): reported from the loop, never from
 * within start(), so the caller's start() returns first. */
static void probe_http_fail_later(struct probe_http *h, enum probe_result result,
				  const char *detail)
{
	h->pending = result;
	snprintf(h->pending_detail, sizeof(h->pending_detail), "%s", detail);
	event_active(h->kick, 0, 0);
}

void probe_http_start(struct probe_http *h, const char *addr, int port, const char *method,
		      const char *target, const char *host_header, char *body,
		      size_t body_max)
{
	int n;

	/* First, so that every exit below reports this request's status (0). */
	http_reply_init(&h->reply, body, body_max);
	h->fd = -1;
	/* HTTP/1.0: the server closes after its answer, and never chunks it. */
	n = snprintf(h->request, sizeof(h->request),
		     "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: happac/" HAPPAC_VERSION
		     "\r\nAccept: */*\r\n\r\n",
		     method, target, host_header);
	if (n < 0 || (size_t)n >= sizeof(h->request)) {
		probe_http_fail_later(h, PROBE_INTERNAL, "request too long");
		return;
	}
	h->request_len = (size_t)n;
	h->sent = 0;
	h->fd = net_connect(addr, port);
	if (h->fd < 0) {
		if (errno == EINVAL)
			probe_http_fail_later(h, PROBE_INTERNAL, "not an address");
		else if (errno == ECONNREFUSED)
			probe_http_fail_later(h, PROBE_REFUSED, "");
		else
			probe_http_fail_later(h, PROBE_CONNECT, strerror(errno));
		return;
	}
	probe_http_watch(h, EV_WRITE);
}

void probe_http_cancel(struct probe_http *h)
{
	probe_http_close(h);
}

int probe_http_init(struct probe_http *h, struct event_base *base, probe_http_cb cb, void *arg)
{
	memset(h, 0, offsetof(struct probe_http, reply));
	h->base = base;
	h->cb = cb;
	h->arg = arg;
	h->fd = -1;
	/* Created unassigned; probe_http_watch() assigns it to each socket. */
	h->ev = event_new(base, -1, 0, probe_http_on_socket, h);
	h->kick = event_new(base, -1, 0, probe_http_on_kick, h);
	if (!h->ev || !h->kick) {
		probe_http_free(h);
		return -1;
	}
	return 0;
}

void probe_http_free(struct probe_http *h)
{
	probe_http_close(h);
	util_event_free(h->ev);
	util_event_free(h->kick);
	h->ev = h->kick = NULL;
}
