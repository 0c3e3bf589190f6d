/* net.c - listening sockets, the one accept loop, connection bookkeeping,
 * draining before close, and the probes' nonblocking connect. */
#include "net.h"

#include "acl.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* How long accepting pauses when descriptors run out: the backlog keeps
 * the connections meanwhile. */
#define NET_PAUSE_US 100000

struct net_listener {
	struct net_server *srv;
	int fd;
	struct event *ev;
	void *arg;
	int started;
	struct net_listener *next;
};

struct net_server {
	struct event_base *base;
	char name[16];
	int batch;
	net_accept_fn accepted;
	void *arg;
	uint64_t *denied;
	const struct acl *acl;
	int max;
	net_full_fn full;
	int enabled;
	int paused;                 /* out of descriptors (logged once) */
	struct event *resume, *reap;
	struct net_listener *listeners; /* started ones */
	struct net_conn *conns;     /* newest first */
	struct net_conn *oldest;    /* the list's tail */
	int nconns;
	struct net_conn *dead;      /* closed, released by net_reap() */
};

/* ---- connections */

static void net_reap(evutil_socket_t fd, short what, void *arg)
{
	struct net_server *s = arg;

	(void)fd;
	(void)what;
	while (s->dead) {
		struct net_conn *nc = s->dead;

		s->dead = nc->next;
		for (int i = 0; i < NET_CONN_EVENTS; i++)
			util_event_free(nc->ev[i]);
		if (nc->release)
			nc->release(nc);
		else
			free(nc);
	}
}

void *net_conn_new(struct net_server *s, size_t size, int fd,
		   void (*release)(struct net_conn *nc))
{
	struct net_conn *nc = size >= sizeof(*nc) ? calloc(1, size) : NULL;

	if (!nc)
		return NULL;
	nc->srv = s;
	nc->fd = fd;
	nc->release = release;
	nc->next = s->conns;
	if (s->conns)
		s->conns->prev = nc;
	else
		s->oldest = nc;
	s->conns = nc;
	s->nconns++;
	return nc;
}

void net_conn_close(struct net_conn *nc)
{
	struct net_server *s = nc->srv;

	if (nc->closed)
		return;
	nc->closed = 1;
	if (nc->prev)
		nc->prev->next = nc->next;
	else
		s->conns = nc->next;
	if (nc->next)
		nc->next->prev = nc->prev;
	if (s->oldest == nc)
		s->oldest = nc->prev;
	s->nconns--;
	for (int i = 0; i < NET_CONN_EVENTS; i++)
		if (nc->ev[i])
			event_del(nc->ev[i]);
	if (nc->fd >= 0)
		close(nc->fd);
	nc->fd = -1;
	nc->prev = NULL;
	nc->next = s->dead;
	s->dead = nc;
	/* This usually runs inside one of the connection's callbacks. */
	event_active(s->reap, EV_TIMEOUT, 0);
}

int net_server_nconns(const struct net_server *s)
{
	return s->nconns;
}

struct net_conn *net_server_oldest(const struct net_server *s)
{
	return s->oldest;
}

/* ---- the accept loop */

static void net_listening(struct net_server *s, int on)
{
	for (struct net_listener *l = s->listeners; l; l = l->next)
		if (on)
			event_add(l->ev, NULL);
		else
			event_del(l->ev);
}

static void net_resume(evutil_socket_t fd, short what, void *arg)
{
	struct net_server *s = arg;

	(void)fd;
	(void)what;
	s->paused = 0;
	if (s->enabled)
		net_listening(s, 1);
}

/* Out of descriptors: pause accepting for a moment instead of spinning on a
 * readable listener. */
static void net_pause(struct net_server *s)
{
	struct timeval tv = { 0, NET_PAUSE_US };

	if (!s->paused)
		log_warn("%s: accept: %s; pausing until descriptors are free", s->name,
			 strerror(errno));
	s->paused = 1;
	net_listening(s, 0);
	evtimer_add(s->resume, &tv);
}

static void net_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct net_listener *l = arg;
	struct net_server *s = l->srv;

	(void)what;
	net_reap(-1, 0, s);
	for (int i = 0; i < s->batch; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int inet;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				net_pause(s);
			return; /* EAGAIN, or a connection aborted before accept */
		}
		inet = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
		if (inet && s->acl && !acl_allows(s->acl, (struct sockaddr *)&ss)) {
			/* Not ours to answer: no reply, nothing to learn. */
			if (s->denied)
				(*s->denied)++;
			close(fd);
			continue;
		}
		if (s->max && s->nconns >= s->max) {
			if (s->full)
				s->full(s->arg, fd);
			else
				close(fd);
			continue;
		}
		s->accepted(s->arg, l->arg, fd, inet ? (struct sockaddr *)&ss : NULL);
	}
}

struct net_server *net_server_new(struct event_base *base, const char *name, int batch,
				  net_accept_fn accepted, void *arg, uint64_t *denied)
{
	struct net_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = base;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->batch = batch;
	s->accepted = accepted;
	s->arg = arg;
	s->denied = denied;
	s->resume = evtimer_new(base, net_resume, s);
	s->reap = event_new(base, -1, 0, net_reap, s);
	if (!s->resume || !s->reap) {
		net_server_free(s);
		return NULL;
	}
	return s;
}

void net_server_set_cap(struct net_server *s, int max, net_full_fn full)
{
	s->max = max;
	s->full = full;
}

void net_server_set_acl(struct net_server *s, const struct acl *acl)
{
	s->acl = acl;
}

void net_server_enable(struct net_server *s, int on)
{
	s->enabled = on;
	if (!on) {
		evtimer_del(s->resume);
		s->paused = 0;
	}
	/* A paused server starts listening when its pause ends. */
	if (!s->paused)
		net_listening(s, on);
}

void net_server_close_all(struct net_server *s)
{
	while (s->conns)
		net_conn_close(s->conns);
	net_reap(-1, 0, s);
}

void net_server_free(struct net_server *s)
{
	if (!s)
		return;
	net_server_close_all(s);
	while (s->listeners)
		net_listener_free(s->listeners);
	util_event_free(s->resume);
	util_event_free(s->reap);
	free(s);
}

struct net_listener *net_listener_new(struct net_server *s, int fd, void *larg)
{
	struct net_listener *l = calloc(1, sizeof(*l));

	if (l)
		l->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, net_accept, l);
	if (!l || !l->ev) {
		free(l);
		close(fd);
		return NULL;
	}
	l->srv = s;
	l->fd = fd;
	l->arg = larg;
	return l;
}

void net_listener_start(struct net_listener *l)
{
	struct net_server *s = l->srv;

	if (l->started)
		return;
	l->started = 1;
	l->next = s->listeners;
	s->listeners = l;
	if (s->enabled && !s->paused)
		event_add(l->ev, NULL);
}

void net_listener_set_arg(struct net_listener *l, void *larg)
{
	l->arg = larg;
}

void net_listener_free(struct net_listener *l)
{
	if (!l)
		return;
	if (l->started)
		for (struct net_listener **pp = &l->srv->listeners; *pp; pp = &(*pp)->next)
			if (*pp == l) {
				*pp = l->next;
				break;
			}
	event_free(l->ev);
	close(l->fd);
	free(l);
}

/* ---- sockets */

int net_sockaddr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	char bare[INET6_ADDRSTRLEN];
	size_t n = strlen(addr);

	memset(ss, 0, sizeof(*ss));
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']' && n - 2 < sizeof(bare)) {
		memcpy(bare, addr + 1, n - 2);
		bare[n - 2] = '\0';
		addr = bare;
	}
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static int net_bind(const struct sockaddr_storage *ss, socklen_t sl, int v6only)
{
	int one = 1, fd, e;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	if (bind(fd, (const struct sockaddr *)ss, sl) != 0 || listen(fd, NET_BACKLOG) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int net_listen_tcp(const char *addr, int port, char *name, size_t namelen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	if (!addr) {
		/* All addresses: one dual-stack IPv6 socket, or IPv4 where the
		 * kernel has no IPv6. */
		net_sockaddr("::", port, &ss, &sl);
		fd = net_bind(&ss, sl, 0);
		if (fd >= 0) {
			snprintf(name, namelen, "[::]:%d", port);
			return fd;
		}
		if (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL) {
			net_sockaddr("0.0.0.0", port, &ss, &sl);
			fd = net_bind(&ss, sl, 0);
			if (fd >= 0) {
				snprintf(name, namelen, "0.0.0.0:%d", port);
				return fd;
			}
		}
		snprintf(name, namelen, "port %d (all addresses)", port);
		return -1;
	}
	if (net_sockaddr(addr, port, &ss, &sl) != 0) {
		snprintf(name, namelen, "'%s'", addr);
		return -2;
	}
	if (ss.ss_family == AF_INET6 && addr[0] != '[')
		snprintf(name, namelen, "[%s]:%d", addr, port);
	else
		snprintf(name, namelen, "%s:%d", addr, port);
	return net_bind(&ss, sl, 1);
}

static int net_unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(sa->sun_path))
		return -1;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

int net_unix_live(const char *path)
{
	struct sockaddr_un sa;
	int fd, live;

	if (net_unix_addr(path, &sa) != 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	live = connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN;
	close(fd);
	return live;
}

/* A socket file already at path: replace it when stale. */
static int net_unix_replace(const char *path, const char *what, const char *log_name,
			    char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "cannot create %s %s: the path exists and is not a "
			 "socket; not replacing it", what, path);
		return -1;
	}
	if (net_unix_live(path)) {
		snprintf(err, errlen, "%s %s is in use (is another happac running?)", what, path);
		return -1;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot replace the stale %s %s: %s", what, path,
			 strerror(errno));
		return -1;
	}
	log_info("%s: replaced the stale socket %s", log_name, path);
	return 0;
}

int net_listen_unix(const char *path, const char *what, const char *log_name,
		    struct stat *st, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, rc, e;

	if (net_unix_addr(path, &sa) != 0) {
		snprintf(err, errlen, "%s path '%s' is empty or too long (max %zu bytes)", what,
			 path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	if (net_unix_replace(path, what, log_name, err, errlen) != 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	/* The socket file is born 0660: no moment where others may connect. */
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	umask(old);
	if (rc != 0 || chmod(path, 0660) != 0 || listen(fd, NET_BACKLOG) != 0 ||
	    stat(path, st) != 0) {
		if (rc == 0)
			e = errno;
		snprintf(err, errlen, "cannot create %s %s: %s", what, path, strerror(e));
		if (rc == 0)
			unlink(path);
		close(fd);
		return -1;
	}
	return fd;
}

/* A non-blocking stream socket connecting (or connected) to sa. */
static int net_connect_sa(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -1;
	do
		rc = connect(fd, sa, len);
	while (rc < 0 && errno == EINTR);
	if (rc < 0 && errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int net_connect(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (net_sockaddr(addr, port, &ss, &len) != 0) {
		errno = EINVAL;
		return -1;
	}
	return net_connect_sa((struct sockaddr *)&ss, len);
}

int net_connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	return net_connect_sa((struct sockaddr *)&sa, sizeof(sa));
}

/* ---- closing */

void net_drain(int fd, size_t max)
{
	char sink[4096];

	while (max > 0) {
		ssize_t n = recv(fd, sink, max < sizeof(sink) ? max : sizeof(sink),
				 MSG_DONTWAIT);

		if (n <= 0)
			break;
		max -= (size_t)n;
	}
}

void net_linger(int fd)
{
	shutdown(fd, SHUT_WR);
}

int net_linger_read(int fd)
{
	char sink[4096];
	ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}
