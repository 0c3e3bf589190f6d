/* ctl_conn.c - the control socket's connections: one request line in,
 * one reply line out, close.
 *
 * A client never blocks the loop: every connection has a bounded line, one
 * deadline set at accept, and there is a cap on how many are open (over
 * it, "busy" at once). A change's requester waits for its state-file write
 * (ctl_conn_set_saved()), up to the deadline. */
#include "ctl_conn.h"

#include "log.h"
#include "net.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Accepts per wake-up: drains a burst, leaves the loop to everyone else. */
#define CTL_ACCEPT_BATCH 16

/* One control connection: read a line, write a reply, close. */
struct ctl_conn {
	struct net_conn nc;        /* first: ev[] = rd, wr, deadline */
	struct ctl_conn_set *set;
	int fd;
	struct event *rd, *wr, *deadline;
	uid_t uid;
	pid_t pid;
	uint64_t wait_gen;         /* > 0: the reply waits for this state-file write */
	enum ctl_admin want;       /* what the change it waits for set */
	size_t in_len, out_off, out_len; /* out_len > 0: the reply is decided */
	char in[CTL_LINE_MAX];
	char out[CTL_REPLY_MAX];
};

/* The one exit of a connection: close it now, free it outside its callbacks. */
static void ctl_conn_done(struct ctl_conn *conn)
{
	struct ctl_conn_set *c = conn->set;

	if (conn->fd < 0)
		return;
	conn->fd = -1;
	net_conn_close(&conn->nc);
	if (c->at_cap && net_server_nconns(c->srv) < CTL_MAX_CONNS)
		c->at_cap = 0;
}

static void ctl_conn_write(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *conn = arg;
	ssize_t n;

	(void)what;
	n = send(fd, conn->out + conn->out_off, conn->out_len - conn->out_off,
		 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		event_add(conn->wr, NULL);
		return;
	}
	if (n < 0) {
		ctl_conn_done(conn);
		return;
	}
	conn->out_off += (size_t)n;
	if (conn->out_off < conn->out_len) {
		event_add(conn->wr, NULL);
		return;
	}
	/* Read what else the client sent, so that the close does not turn
	 * into a reset that could hide the reply from it. */
	net_drain(fd, 65536);
	ctl_conn_done(conn);
}

static void ctl_conn_reply(struct ctl_conn *conn, const char *text)
{
	int n = snprintf(conn->out, sizeof(conn->out), "%s\n", text);

	if (n < 0 || (size_t)n >= sizeof(conn->out)) {
		/* Keep the newline: a reply is always one whole line. */
		n = (int)sizeof(conn->out) - 1;
		conn->out[n - 1] = '\n';
		conn->out[n] = '\0';
	}
	conn->out_len = (size_t)n;
	conn->out_off = 0;
	event_del(conn->rd);
	ctl_conn_write(conn->fd, EV_WRITE, conn);
}

/* The reply to a change, once the disk has answered. */
static void ctl_saved_reply(struct ctl_conn *conn, int rc, const char *err)
{
	char reply[CTL_REPLY_MAX - 1];

	if (rc != 0)
		snprintf(reply, sizeof(reply), "ok %s (not saved, lost on restart: %s)",
			 ctl_state_admin_names[conn->want], err);
	else
		snprintf(reply, sizeof(reply), "ok %s", ctl_state_admin_names[conn->want]);
	conn->wait_gen = 0;
	ctl_conn_reply(conn, reply);
}


static void ctl_conn_request(struct ctl_conn *conn, size_t len)
{
	struct ctl_request req;
	char err[200], reply[CTL_REPLY_MAX - 1];

	if (ctl_request_parse(conn->in, len, &req, err, sizeof(err)) != 0) {
		log_info("control: refused a request from uid %u (pid %d): %s",
			 (unsigned)conn->uid, (int)conn->pid, err);
		snprintf(reply, sizeof(reply), "error %s", err);
	} else {
		conn->wait_gen = conn->set->apply(conn->set->arg, &req, conn->uid, conn->pid, reply,
					   sizeof(reply), &conn->want);
		if (conn->wait_gen) {
			/* The change is in effect; the reply says whether it is
			 * on disk, when the writer knows (ctl_saved). */
			event_del(conn->rd);
			return;
		}
	}
	ctl_conn_reply(conn, reply);
}

static void ctl_conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *conn = arg;
	ssize_t n;
	char *nl;

	(void)what;
	n = recv(fd, conn->in + conn->in_len, sizeof(conn->in) - conn->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		ctl_conn_done(conn);
		return;
	}
	if (n == 0) {
		/* End of input ends the line too: `printf drain | socat` works. */
		if (conn->in_len == 0)
			ctl_conn_reply(conn, "error empty request");
		else
			ctl_conn_request(conn, conn->in_len);
		return;
	}
	conn->in_len += (size_t)n;
	nl = memchr(conn->in, '\n', conn->in_len);
	if (nl) {
		ctl_conn_request(conn, (size_t)(nl - conn->in) + 1);
		return;
	}
	if (conn->in_len == sizeof(conn->in)) {
		char msg[64];

		snprintf(msg, sizeof(msg), "error request too long (max %d bytes)",
			 CTL_LINE_MAX - 1);
		log_info("control: refused an over-long request from uid %u (pid %d)",
			 (unsigned)conn->uid, (int)conn->pid);
		ctl_conn_reply(conn, msg);
	}
}

static void ctl_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *conn = arg;
	char msg[128];
	int n;

	(void)fd;
	(void)what;
	if (conn->wait_gen) {
		/* The change holds; only its write is slow. */
		n = snprintf(msg, sizeof(msg), "ok %s (not saved yet: the state file write "
			     "is still running after %dms)\n", ctl_state_admin_names[conn->want],
			     CTL_DEADLINE_MS);
		log_warn("override: the state file write for %s is still running after "
			 "%dms (a slow disk?)", ctl_state_admin_names[conn->want], CTL_DEADLINE_MS);
		if (send(conn->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("control: timeout reply lost: %s", strerror(errno));
	} else if (conn->out_len == 0) {
		/* Best effort: a client still listening learns why it was cut. */
		n = snprintf(msg, sizeof(msg), "error timeout: no complete request within %dms\n",
			     CTL_DEADLINE_MS);
		if (send(conn->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("control: timeout reply lost: %s", strerror(errno));
	}
	log_debug("control: connection from uid %u timed out", (unsigned)conn->uid);
	ctl_conn_done(conn);
}

static void ctl_conn_new(void *arg, void *larg, int fd, const struct sockaddr *peer)
{
	struct ctl_conn_set *c = arg;
	struct ctl_conn *conn = net_conn_new(c->srv, sizeof(*conn), fd, NULL);
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct timeval tv = { CTL_DEADLINE_MS / 1000, (CTL_DEADLINE_MS % 1000) * 1000 };

	(void)larg;
	(void)peer;
	if (!conn) {
		close(fd);
		return;
	}
	conn->set = c;
	conn->fd = fd;
	conn->uid = (uid_t)-1;
	conn->pid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
		conn->uid = cred.uid;
		conn->pid = cred.pid;
	}
	conn->rd = conn->nc.ev[0] = event_new(c->base, fd, EV_READ | EV_PERSIST, ctl_conn_read,
					      conn);
	conn->wr = conn->nc.ev[1] = event_new(c->base, fd, EV_WRITE, ctl_conn_write, conn);
	conn->deadline = conn->nc.ev[2] = evtimer_new(c->base, ctl_conn_timeout, conn);
	if (!conn->rd || !conn->wr || !conn->deadline) {
		ctl_conn_done(conn);
		return;
	}
	event_add(conn->rd, NULL);
	event_add(conn->deadline, &tv);
}

/* The cap is reached: say so at once rather than leave the client hanging. */
static void ctl_conn_busy(void *arg, int fd)
{
	static const char busy[] = "error busy: too many control connections, try again\n";
	struct ctl_conn_set *c = arg;

	if (!c->at_cap)
		log_warn("control: %d connections open, refusing more until one ends",
			 net_server_nconns(c->srv));
	c->at_cap = 1;
	if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("control: busy reply lost: %s", strerror(errno));
	close(fd);
}

int ctl_conn_set_init(struct ctl_conn_set *s, struct event_base *base,
		      ctl_conn_apply_fn apply, void *arg)
{
	s->base = base;
	s->apply = apply;
	s->arg = arg;
	s->at_cap = 0;
	s->srv = net_server_new(base, "control", CTL_ACCEPT_BATCH, ctl_conn_new, s, NULL);
	if (!s->srv)
		return -1;
	net_server_set_cap(s->srv, CTL_MAX_CONNS, ctl_conn_busy);
	net_server_enable(s->srv, 1);
	return 0;
}

void ctl_conn_set_saved(struct ctl_conn_set *s, uint64_t gen, int rc, const char *err)
{
	struct net_conn *nc, *newer;

	if (!s->srv)
		return;
	for (nc = net_server_oldest(s->srv); nc; nc = newer) {
		struct ctl_conn *conn = (struct ctl_conn *)nc;

		newer = nc->prev; /* a reply may end the connection */
		if (conn->wait_gen && conn->wait_gen <= gen)
			ctl_saved_reply(conn, rc, err);
	}
}

void ctl_conn_set_close_all(struct ctl_conn_set *s)
{
	if (s->srv)
		net_server_close_all(s->srv);
}

void ctl_conn_set_free(struct ctl_conn_set *s)
{
	net_server_free(s->srv);
	s->srv = NULL;
}
