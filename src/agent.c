/* agent.c - accept, write the cached line, close. The hot path. */
#include "agent.h"

#include "acl.h"
#include "log.h"
#include "net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define AGENT_MAX_LISTEN 48
/* Accepts per wake-up: enough to drain a burst, bounded so timers and
 * probes still get their turn under a flood. */
#define AGENT_ACCEPT_BATCH 64
/* A reply that could not be written at once gets this long to finish. */
#define AGENT_WRITE_TIMEOUT_MS 2000
/* What a close reads and discards first (SECURITY.md: at most 1 KiB). */
#define AGENT_DRAIN_MAX 1024
/* A profile name line, newline included. */
#define AGENT_LINE_MAX 64
/* agent_resolve()'s answers besides a profile index. */
#define AGENT_UNKNOWN (-1)
#define AGENT_UNDECIDED (-2)
#define AGENT_NONE (-3)
/* Characters of an unknown name repeated in the #reason. */
#define AGENT_NAME_SHOWN 32

struct agent_listener {
	struct net_listener *nl;
	char addr[48];   /* as configured; "" = all addresses */
	int port;
	int profile;
	char name[64];   /* for the log: "127.0.0.1:5555", "[::]:5555" */
};

enum agent_conn_state { AGENT_CONN_READING, AGENT_CONN_WRITING };

/* A connection the agent could not finish at once: waiting for the
 * checker's profile line, or for room to write the reply (rare). */
struct agent_conn {
	struct net_conn nc;      /* first: ev[0] the socket, ev[1] the deadline */
	struct agent *agent;
	int fd;
	struct event *ev;
	struct event *deadline;  /* one-shot: the wait for a profile line */
	enum agent_conn_state state;
	int profile;
	size_t inlen;
	char in[AGENT_LINE_MAX];
	size_t off, len;
	char out[128];
};

struct agent {
	struct event_base *base;
	agent_reply_fn reply;
	agent_lookup_fn lookup;
	void *arg;
	/* Pointers: an event's argument must not move when the set changes. */
	struct agent_listener *listeners[AGENT_MAX_LISTEN];
	int nlisteners;
	int wait_ms;            /* -1: one profile, never read */
	int max_conns;
	struct net_server *srv;  /* accepts; holds the connections */
	struct agent_stats stats;
};

/* Finish a connection: its socket closes now, its memory once no callback
 * of it can still run (net_conn_close). */
static void agent_conn_free(struct agent_conn *c)
{
	c->nc.fd = c->fd;
	c->fd = -1;
	net_conn_close(&c->nc);
}

/* Write done: FIN right behind the line, then read what the checker may
 * have sent so that close() does not reset. Input that arrives after the
 * drain still makes close() send RST, but the checker has the line and the
 * FIN by then: it reads end-of-file, not a reset (a FIN'd socket reports
 * EOF first). */
static void agent_drain_close(int fd)
{
	net_linger(fd);
	net_drain(fd, AGENT_DRAIN_MAX);
	close(fd);
}

static void agent_conn_io(evutil_socket_t fd, short what, void *arg);

static void agent_answer(struct agent *a, int fd, int profile, struct agent_conn *c);
static void agent_answer_asked(struct agent *a, int fd, int def, const char *buf,
			       size_t len, struct agent_conn *c);

/* The wait for a profile line is one deadline from accept: a client that
 * trickles bytes does not extend it. */
static void agent_conn_expire(evutil_socket_t fd, short what, void *arg)
{
	struct agent_conn *c = arg;

	(void)fd;
	(void)what;
	agent_answer_asked(c->agent, c->fd, c->profile, c->in, c->inlen, c);
}

static struct agent_conn *agent_conn_new(struct agent *a, int fd, int profile)
{
	struct agent_conn *c = net_conn_new(a->srv, sizeof(*c), fd, NULL);

	if (!c)
		return NULL;
	c->agent = a;
	c->profile = profile;
	c->ev = c->nc.ev[0] = event_new(a->base, fd, EV_READ | EV_PERSIST, agent_conn_io, c);
	if (!c->ev) {
		c->fd = -1; /* still the caller's */
		agent_conn_free(c);
		return NULL;
	}
	c->fd = fd;
	return c;
}

static void agent_count(struct agent *a, int up)
{
	if (up)
		a->stats.up++;
	else
		a->stats.down++;
}

/* Write line to fd and close; keep it (as c, or a new connection) when the
 * kernel did not take it whole. c may be NULL. */
static void agent_send_line(struct agent *a, int fd, int profile, const char *line,
			    size_t len, int up, struct agent_conn *c)
{
	ssize_t n = send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	struct timeval tv = { AGENT_WRITE_TIMEOUT_MS / 1000,
			      (AGENT_WRITE_TIMEOUT_MS % 1000) * 1000 };

	if (c && c->deadline)
		evtimer_del(c->deadline);
	agent_count(a, up);
	if (n == (ssize_t)len) {
		if (c) {
			/* agent_conn_free closes: FIN and drain first, as in
			 * agent_drain_close() */
			net_linger(fd);
			net_drain(fd, AGENT_DRAIN_MAX);
			agent_conn_free(c);
		} else {
			agent_drain_close(fd);
		}
		return;
	}
	if ((n < 0 && errno != EAGAIN && errno != EINTR) || len > sizeof(c->out)) {
		a->stats.failed++;
		if (c)
			agent_conn_free(c);
		else
			close(fd);
		return;
	}
	if (!c && !(c = agent_conn_new(a, fd, profile))) {
		a->stats.failed++;
		close(fd);
		return;
	}
	c->state = AGENT_CONN_WRITING;
	c->off = n < 0 ? 0 : (size_t)n;
	c->len = len;
	memcpy(c->out, line, len);
	event_del(c->ev);
	event_assign(c->ev, a->base, fd, EV_WRITE | EV_PERSIST, agent_conn_io, c);
	event_add(c->ev, &tv);
}

/* Write the reply of profile to fd and close (see agent_send_line). */
static void agent_answer(struct agent *a, int fd, int profile, struct agent_conn *c)
{
	size_t len;
	int up = 0;
	const char *line = a->reply(a->arg, profile, &len, &up);

	agent_send_line(a, fd, profile, line, len, up, c);
}

/* What the checker's bytes ask for: the name on its first line (up to \n
 * or \r, trailing blanks dropped), or, once final (its wait is over), the
 * bytes that came without a line end. Returns the profile index;
 * AGENT_NONE when nothing is named (no bytes, an empty line); AGENT_UNKNOWN
 * for a name that is no profile (exact, case-sensitive match, as Patroni
 * matches its endpoints), cleaned and bounded in name; AGENT_UNDECIDED while
 * a line may still be coming. */
static int agent_resolve(struct agent *a, const char *buf, size_t len, int final,
			 char *name, size_t namelen)
{
	char line[AGENT_LINE_MAX];
	size_t n = 0, o = 0;
	int p;

	while (n < len && n < sizeof(line) - 1 && buf[n] != '\n' && buf[n] != '\r')
		n++;
	if (n == len && !final)
		return AGENT_UNDECIDED;
	memcpy(line, buf, n);
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	line[n] = '\0';
	if (!n)
		return AGENT_NONE;
	p = a->lookup(a->arg, line);
	if (p >= 0)
		return p;
	/* It goes back in the #reason: printable, short, nothing HAProxy or a
	 * log reader could take for something else. */
	for (size_t i = 0; i < n && o + 1 < namelen && i < AGENT_NAME_SHOWN; i++) {
		unsigned char ch = (unsigned char)line[i];

		name[o++] = (isalnum(ch) || ch == '-' || ch == '_' || ch == '.') ? (char)ch : '?';
	}
	if (n > AGENT_NAME_SHOWN && o + 4 < namelen) {
		memcpy(name + o, "...", 3);
		o += 3;
	}
	name[o] = '\0';
	return AGENT_UNKNOWN;
}

/* Answer what the checker asked for: a profile, or, for a name that is no
 * profile, down. A misspelt agent-send ("primay", "Primary") must never get
 * the port's own profile: on a replica whose port serves the replica
 * profile that would be an "up" for a backend that wants the primary. */
static void agent_answer_asked(struct agent *a, int fd, int def, const char *buf,
			       size_t len, struct agent_conn *c)
{
	char name[AGENT_NAME_SHOWN + 8], line[AGENT_NAME_SHOWN + 48];
	int p = agent_resolve(a, buf, len, 1, name, sizeof(name));
	int n;

	if (p >= 0)
		a->stats.dispatched++;
	if (p != AGENT_UNKNOWN) {
		agent_answer(a, fd, p >= 0 ? p : def, c);
		return;
	}
	a->stats.unknown_profile++;
	n = snprintf(line, sizeof(line), "down #unknown profile %s\n", name);
	agent_send_line(a, fd, def, line, n < 0 ? 0 : (size_t)n, 0, c);
}

static void agent_conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct agent_conn *c = arg;
	struct agent *a = c->agent;
	ssize_t n;

	if (c->state == AGENT_CONN_WRITING) {
		if (what & EV_TIMEOUT) {
			a->stats.failed++;
			agent_conn_free(c);
			return;
		}
		n = send(fd, c->out + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0) {
			a->stats.failed++;
			agent_conn_free(c);
			return;
		}
		c->off += (size_t)n;
		if (c->off == c->len)
			agent_conn_free(c);
		return;
	}
	/* Waiting for the checker's line (the deadline timer answers the
	 * default when it does not come). */
	n = recv(fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		char name[AGENT_NAME_SHOWN + 8];

		c->inlen += (size_t)n;
		if (c->inlen < sizeof(c->in) - 1 &&
		    agent_resolve(a, c->in, c->inlen, 0, name, sizeof(name)) == AGENT_UNDECIDED)
			return;
	}
	/* A whole line, a full buffer, or the checker closed its side (or
	 * failed): answer what it sent so far. */
	agent_answer_asked(a, fd, c->profile, c->in, c->inlen, c);
}

/* The waiting set is full: answer the connection that has waited longest
 * without naming a profile, its wait cut short (it gets the listener's
 * profile, as when its wait ends). HAProxy sends agent-send right after
 * connecting, so the longest-silent connection is the least likely to be a
 * checker; answering the newcomer at once instead would give a checker
 * whose line is a moment late the wrong profile's reply. Returns 0, or -1
 * when nothing waits (every held connection is writing). */
static int agent_make_room(struct agent *a)
{
	for (struct net_conn *nc = net_server_oldest(a->srv); nc; nc = nc->prev) {
		struct agent_conn *c = (struct agent_conn *)nc;

		if (c->state != AGENT_CONN_READING)
			continue;
		a->stats.evicted++;
		agent_answer_asked(a, c->fd, c->profile, c->in, c->inlen, c);
		return 0;
	}
	return -1;
}

static void agent_accepted(struct agent *a, int fd, int profile)
{
	char buf[AGENT_LINE_MAX], name[AGENT_NAME_SHOWN + 8];
	struct timeval tv;
	struct agent_conn *c;
	ssize_t n;
	size_t have = 0;

	if (a->wait_ms < 0) {
		agent_answer(a, fd, profile, NULL);
		return;
	}
	/* HAProxy sends agent-send right after connecting: often it is here. */
	n = recv(fd, buf, sizeof(buf) - 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0)
		have = (size_t)n;
	/* Answered now: a whole line, or no wait allowed. */
	if ((have && agent_resolve(a, buf, have, 0, name, sizeof(name)) != AGENT_UNDECIDED) ||
	    a->wait_ms == 0) {
		agent_answer_asked(a, fd, profile, buf, have, NULL);
		return;
	}
	if (net_server_nconns(a->srv) >= a->max_conns && agent_make_room(a) != 0) {
		a->stats.over_cap++;
		agent_answer_asked(a, fd, profile, buf, have, NULL);
		return;
	}
	c = agent_conn_new(a, fd, profile);
	if (c)
		c->deadline = c->nc.ev[1] = evtimer_new(a->base, agent_conn_expire, c);
	if (!c || !c->deadline) {
		if (c) {
			c->fd = -1; /* still ours: answered below */
			agent_conn_free(c);
		}
		agent_answer_asked(a, fd, profile, buf, have, NULL);
		return;
	}
	tv.tv_sec = a->wait_ms / 1000;
	tv.tv_usec = (a->wait_ms % 1000) * 1000;
	event_add(c->ev, NULL);
	evtimer_add(c->deadline, &tv);
}

/* A connection the allow-list let in, on the listener l. */
static void agent_accept(void *arg, void *larg, int fd, const struct sockaddr *peer)
{
	struct agent *a = arg;
	struct agent_listener *l = larg;

	if (log_debug_enabled()) {
		char host[INET6_ADDRSTRLEN] = "?";

		if (peer->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr,
				  host, sizeof(host));
		else if (peer->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr,
				  host, sizeof(host));
		log_debug("agent: check from %s on %s", host, l->name);
	}
	agent_accepted(a, fd, l->profile);
}

struct agent *agent_new(struct event_base *base, agent_reply_fn reply,
			agent_lookup_fn lookup, void *arg)
{
	struct agent *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->base = base;
	a->reply = reply;
	a->lookup = lookup;
	a->arg = arg;
	a->wait_ms = -1;
	a->max_conns = 1024;
	/* No cap in net: agent_accepted() bounds only the connections that
	 * wait, and answers the others at once. */
	a->srv = net_server_new(base, "agent", AGENT_ACCEPT_BATCH, agent_accept, a,
				&a->stats.denied);
	if (!a->srv) {
		free(a);
		return NULL;
	}
	return a;
}

/* Bind one listener; returns it, or NULL with err naming the address. */
static struct agent_listener *agent_listen(struct agent *a, const char *addr, int port,
					   int profile, char *err, size_t errlen)
{
	struct agent_listener *l = calloc(1, sizeof(*l));
	int fd;

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fd = net_listen_tcp(addr, port, l->name, sizeof(l->name));
	if (fd < 0) {
		if (fd == -2)
			snprintf(err, errlen, "cannot listen on %s: not an address", l->name);
		else
			snprintf(err, errlen, "cannot listen on %s: %s", l->name, strerror(errno));
		free(l);
		return NULL;
	}
	snprintf(l->addr, sizeof(l->addr), "%s", addr ? addr : "");
	l->port = port;
	l->profile = profile;
	l->nl = net_listener_new(a->srv, fd, l);
	if (!l->nl) {
		free(l);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return l;
}

static void agent_listener_free(struct agent_listener *l)
{
	net_listener_free(l->nl);
	free(l);
}

/* The new set in endpoint order: each entry a running listener kept as
 * it is or one bound for the plan, with the profile it will answer. */
struct agent_listen_plan {
	struct agent_listener *set[AGENT_MAX_LISTEN];
	int profile[AGENT_MAX_LISTEN];
	int fresh[AGENT_MAX_LISTEN];  /* bound by the plan: closed on abort */
	int n;
};

struct agent_listen_plan *agent_listen_prepare(struct agent *a,
					       const struct agent_endpoint *eps, int n,
					       char *err, size_t errlen)
{
	struct agent_listen_plan *p;

	if (n > AGENT_MAX_LISTEN) {
		snprintf(err, errlen, "more than %d listening sockets", AGENT_MAX_LISTEN);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (int k = 0; k < n; k++) {
		const char *want = eps[k].addr ? eps[k].addr : "";
		struct agent_listener *found = NULL;

		/* A running listener on the same address and port is kept: no
		 * check to it is refused across the reload. */
		for (int i = 0; i < a->nlisteners && !found; i++) {
			struct agent_listener *l = a->listeners[i];
			int taken = 0;

			for (int j = 0; j < p->n && !taken; j++)
				taken = p->set[j] == l;
			if (!taken && l->port == eps[k].port && !strcmp(l->addr, want))
				found = l;
		}
		if (!found) {
			found = agent_listen(a, eps[k].addr, eps[k].port, eps[k].profile, err,
					     errlen);
			if (!found) {
				agent_listen_abort(p);
				return NULL;
			}
			p->fresh[p->n] = 1;
		}
		p->set[p->n] = found;
		p->profile[p->n] = eps[k].profile;
		p->n++;
	}
	return p;
}

void agent_listen_commit(struct agent *a, struct agent_listen_plan *p)
{
	/* Close what the new set does not hold. */
	for (int i = 0; i < a->nlisteners; i++) {
		int kept = 0;

		for (int j = 0; j < p->n && !kept; j++)
			kept = p->set[j] == a->listeners[i];
		if (!kept) {
			log_info("agent: closed %s", a->listeners[i]->name);
			agent_listener_free(a->listeners[i]);
		}
	}
	for (int j = 0; j < p->n; j++) {
		struct agent_listener *l = p->set[j];

		l->profile = p->profile[j];
		a->listeners[j] = l;
		if (!p->fresh[j])
			continue;
		/* Before the first round the listener waits for agent_enable(),
		 * and a paused agent resumes it with the others. */
		net_listener_start(l->nl);
		log_info("agent: listening on %s", l->name);
	}
	a->nlisteners = p->n;
	free(p);
}

void agent_listen_abort(struct agent_listen_plan *p)
{
	if (!p)
		return;
	for (int j = 0; j < p->n; j++)
		if (p->fresh[j])
			agent_listener_free(p->set[j]);
	free(p);
}

void agent_enable(struct agent *a)
{
	net_server_enable(a->srv, 1);
}

void agent_set_dispatch(struct agent *a, int wait_ms, int max_conns)
{
	a->wait_ms = wait_ms;
	a->max_conns = max_conns;
}

void agent_set_acl(struct agent *a, const struct acl *acl)
{
	net_server_set_acl(a->srv, acl);
}

void agent_close(struct agent *a)
{
	net_server_enable(a->srv, 0);
	for (int i = 0; i < a->nlisteners; i++)
		agent_listener_free(a->listeners[i]);
	a->nlisteners = 0;
	/* Checks still waiting for a profile line get the default now. */
	for (struct net_conn *nc = net_server_oldest(a->srv), *newer; nc; nc = newer) {
		struct agent_conn *c = (struct agent_conn *)nc;

		newer = nc->prev;
		if (c->state == AGENT_CONN_READING)
			agent_answer_asked(a, c->fd, c->profile, c->in, c->inlen, c);
	}
}

int agent_pending(const struct agent *a)
{
	return net_server_nconns(a->srv);
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
	net_server_free(a->srv);
	free(a);
}
