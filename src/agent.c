/* agent.c - accept, write the cached line, close. The hot path. */
#include "agent.h"

#include "acl.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define AGENT_MAX_LISTEN 16
/* Accepts per wake-up: enough to drain a burst, bounded so timers and
 * probes still get their turn under a flood. */
#define AGENT_ACCEPT_BATCH 64
/* A reply that could not be written at once gets this long to finish. */
#define AGENT_WRITE_TIMEOUT_S 2

struct agent_listener {
	int fd;
	struct event *ev;
	char addr[48];   /* as configured; "" = all addresses */
	int port;
	int keep;        /* mark for agent_set_listeners() */
	char name[64];   /* for the log: "127.0.0.1:5555", "[::]:5555" */
};

/* A reply the kernel did not take whole (rare: a fresh socket has room). */
struct agent_write {
	struct agent *agent;
	int fd;
	struct event *ev;
	size_t off, len;
	char line[128];
	struct agent_write *next;
};

struct agent {
	struct event_base *base;
	agent_reply_fn reply;
	void *reply_arg;
	struct agent_listener listeners[AGENT_MAX_LISTEN];
	int nlisteners;
	int enabled;
	struct event *resume;   /* re-enables accepting after EMFILE */
	struct agent_write *writes;
	int nwrites;
	struct agent_stats stats;
	const struct acl *acl;
};

static void agent_write_free(struct agent_write *w)
{
	struct agent *a = w->agent;
	struct agent_write **pp;

	for (pp = &a->writes; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	a->nwrites--;
	event_free(w->ev);
	close(w->fd);
	free(w);
}

static void agent_write_more(evutil_socket_t fd, short what, void *arg)
{
	struct agent_write *w = arg;
	ssize_t n;

	if (what & EV_TIMEOUT) {
		w->agent->stats.failed++;
		agent_write_free(w);
		return;
	}
	n = send(fd, w->line + w->off, w->len - w->off, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		w->agent->stats.failed++;
		agent_write_free(w);
		return;
	}
	w->off += (size_t)n;
	if (w->off == w->len)
		agent_write_free(w);
}

/* Slow path: keep the rest of the line and wait until the socket has room. */
static void agent_write_later(struct agent *a, int fd, const char *line,
			      size_t off, size_t len)
{
	struct agent_write *w = calloc(1, sizeof(*w));
	struct timeval tv = { AGENT_WRITE_TIMEOUT_S, 0 };

	if (!w || len > sizeof(w->line)) {
		free(w);
		a->stats.failed++;
		close(fd);
		return;
	}
	w->agent = a;
	w->fd = fd;
	w->off = off;
	w->len = len;
	memcpy(w->line, line, len);
	w->ev = event_new(a->base, fd, EV_WRITE | EV_PERSIST, agent_write_more, w);
	if (!w->ev) {
		free(w);
		a->stats.failed++;
		close(fd);
		return;
	}
	event_add(w->ev, &tv);
	w->next = a->writes;
	a->writes = w;
	a->nwrites++;
}

static void agent_answer(struct agent *a, int fd)
{
	size_t len;
	const char *line = a->reply(a->reply_arg, &len);
	ssize_t n = send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	char sink[256];

	if (line[0] == 'u')
		a->stats.up++;
	else
		a->stats.down++;
	if (n == (ssize_t)len) {
		/* Read what the checker may have sent (agent-send) so that
		 * close() ends with FIN, not RST: an RST can make the peer
		 * drop our reply before it reads it. */
		for (int i = 0; i < 4; i++)
			if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
				break;
		close(fd);
		return;
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		a->stats.failed++;
		close(fd);
		return;
	}
	agent_write_later(a, fd, line, n < 0 ? 0 : (size_t)n, len);
}

static void agent_resume(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;

	(void)fd;
	(void)what;
	if (a->enabled)
		for (int i = 0; i < a->nlisteners; i++)
			event_add(a->listeners[i].ev, NULL);
}

static void agent_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct agent *a = arg;

	(void)what;
	for (int i = 0; i < AGENT_ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: pause accepting for a
				 * moment instead of spinning on a readable
				 * listener; the backlog keeps the checks. */
				struct timeval tv = { 0, 100000 };

				log_warn("agent: accept: %s; pausing 100ms", strerror(errno));
				for (int j = 0; j < a->nlisteners; j++)
					event_del(a->listeners[j].ev);
				evtimer_add(a->resume, &tv);
			}
			return; /* EAGAIN, or a connection aborted before accept */
		}
		if (a->acl && !acl_allows(a->acl, (struct sockaddr *)&ss)) {
			/* Not ours to answer: no reply, nothing to learn. */
			a->stats.denied++;
			close(fd);
			continue;
		}
		if (log_debug_enabled()) {
			char host[INET6_ADDRSTRLEN] = "?";

			if (ss.ss_family == AF_INET6)
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
					  host, sizeof(host));
			else if (ss.ss_family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
					  host, sizeof(host));
			log_debug("agent: check from %s", host);
		}
		agent_answer(a, fd);
	}
}

struct agent *agent_new(struct event_base *base, agent_reply_fn reply, void *arg)
{
	struct agent *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->base = base;
	a->reply = reply;
	a->reply_arg = arg;
	a->resume = evtimer_new(base, agent_resume, a);
	if (!a->resume) {
		free(a);
		return NULL;
	}
	return a;
}

static int agent_bind(int family, const void *addr, int port, int v6only,
		      int *out_fd, int *out_errno)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		memcpy(&s6->sin6_addr, addr, sizeof(s6->sin6_addr));
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		memcpy(&s4->sin_addr, addr, sizeof(s4->sin_addr));
		sl = sizeof(*s4);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*out_errno = errno;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, SOMAXCONN) != 0) {
		*out_errno = errno;
		close(fd);
		return -1;
	}
	*out_fd = fd;
	return 0;
}

int agent_listen(struct agent *a, const char *addr, int port, char *err,
		 size_t errlen)
{
	struct agent_listener *l;
	unsigned char buf[sizeof(struct in6_addr)];
	int fd = -1, e = 0;

	if (a->nlisteners >= AGENT_MAX_LISTEN) {
		snprintf(err, errlen, "too many listen addresses");
		return -1;
	}
	l = &a->listeners[a->nlisteners];
	if (!addr) {
		/* All addresses: one dual-stack IPv6 socket, or IPv4 where the
		 * kernel has no IPv6. */
		if (agent_bind(AF_INET6, &in6addr_any, port, 0, &fd, &e) == 0) {
			snprintf(l->name, sizeof(l->name), "[::]:%d", port);
		} else if (e == EAFNOSUPPORT || e == EADDRNOTAVAIL) {
			struct in_addr any = { htonl(INADDR_ANY) };

			if (agent_bind(AF_INET, &any, port, 0, &fd, &e) == 0)
				snprintf(l->name, sizeof(l->name), "0.0.0.0:%d", port);
		}
		if (fd < 0) {
			snprintf(err, errlen, "cannot listen on port %d (all addresses): %s",
				 port, strerror(e));
			return -1;
		}
	} else {
		int family = inet_pton(AF_INET, addr, buf) == 1 ? AF_INET : AF_INET6;

		if (family == AF_INET6 && inet_pton(AF_INET6, addr, buf) != 1) {
			snprintf(err, errlen, "cannot listen on '%s': not an address", addr);
			return -1;
		}
		if (agent_bind(family, buf, port, 1, &fd, &e) != 0) {
			snprintf(err, errlen, "cannot listen on %s%s%s:%d: %s",
				 family == AF_INET6 ? "[" : "", addr,
				 family == AF_INET6 ? "]" : "", port, strerror(e));
			return -1;
		}
		snprintf(l->name, sizeof(l->name), "%s%s%s:%d",
			 family == AF_INET6 ? "[" : "", addr,
			 family == AF_INET6 ? "]" : "", port);
	}
	l->fd = fd;
	snprintf(l->addr, sizeof(l->addr), "%s", addr ? addr : "");
	l->port = port;
	l->keep = 1;
	l->ev = event_new(a->base, fd, EV_READ | EV_PERSIST, agent_accept, a);
	if (!l->ev) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->nlisteners++;
	if (a->enabled)
		event_add(l->ev, NULL);
	log_info("agent: listening on %s", l->name);
	return 0;
}

static void agent_listener_close(struct agent_listener *l)
{
	if (l->ev)
		event_free(l->ev);
	l->ev = NULL;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

int agent_set_listeners(struct agent *a, char *const *addrs, int count, int port,
			char *err, size_t errlen)
{
	int before = a->nlisteners, n = count ? count : 1, j;

	for (int i = 0; i < a->nlisteners; i++)
		a->listeners[i].keep = 0;
	/* Bind what is new; keep what is unchanged. */
	for (int k = 0; k < n; k++) {
		const char *want = count ? addrs[k] : "";
		int found = 0;

		for (int i = 0; i < before; i++) {
			struct agent_listener *l = &a->listeners[i];

			if (l->port == port && !strcmp(l->addr, want)) {
				l->keep = found = 1;
				break;
			}
		}
		if (!found && agent_listen(a, count ? want : NULL, port, err, errlen) != 0)
			goto rollback;
	}
	/* Close what is gone, compacting the array. */
	for (int i = j = 0; i < a->nlisteners; i++) {
		if (!a->listeners[i].keep) {
			log_info("agent: closed %s", a->listeners[i].name);
			agent_listener_close(&a->listeners[i]);
			continue;
		}
		a->listeners[j++] = a->listeners[i];
	}
	a->nlisteners = j;
	return 0;
rollback:
	/* The new configuration failed: drop what it bound, keep the rest. */
	for (int i = before; i < a->nlisteners; i++)
		agent_listener_close(&a->listeners[i]);
	a->nlisteners = before;
	return -1;
}

void agent_enable(struct agent *a)
{
	a->enabled = 1;
	for (int i = 0; i < a->nlisteners; i++)
		event_add(a->listeners[i].ev, NULL);
}

void agent_set_acl(struct agent *a, const struct acl *acl)
{
	a->acl = acl;
}

void agent_close(struct agent *a)
{
	a->enabled = 0;
	evtimer_del(a->resume);
	for (int i = 0; i < a->nlisteners; i++)
		agent_listener_close(&a->listeners[i]);
	a->nlisteners = 0;
}

int agent_pending(const struct agent *a)
{
	return a->nwrites;
}

const struct agent_stats *agent_stats(const struct agent *a)
{
	return &a->stats;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	agent_close(a);
	while (a->writes)
		agent_write_free(a->writes);
	event_free(a->resume);
	free(a);
}
