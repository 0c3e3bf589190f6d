/* ctl.c - operator overrides: the control socket server.
 *
 * The server runs on the daemon's loop and never blocks it on a client (its
 * connections, each bounded in line, time and number, are ctl_conn.c's). Nor
 * on the disk: the state file's write and
 * fsync run on a writer thread (ctl_writer.c), the latest override wins, and
 * only the operator who made a change waits for it to be on disk; the agent
 * line says it at once. Reading the state file at start (and at a reload
 * that moves it) is the one blocking disk access left: a few hundred bytes,
 * before anything is answered from it. */
#include "ctl.h"
#include "util.h"

#include "ctl_conn.h"
#include "ctl_writer.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A wall clock that disagrees with the monotonic one by more than this
 * during a ramp has been stepped (NTP, an operator). */
#define CTL_CLOCK_STEP_S 1.0

struct ctl {
	struct event_base *base;
	char *socket_path;
	char *state_path;          /* NULL: no persistence */
	int fd;
	dev_t sock_dev;            /* the socket file we made, so that ctl_free */
	ino_t sock_ino;            /* never unlinks another instance's */
	struct ctl_conn_set conns; /* accepts; holds the connections */
	struct net_listener *listener;
	struct event *tick;
	void (*changed)(void *arg);
	void *arg;
	struct ctl_override ov;
	int saved;                 /* the state file holds ov */
	int restored;              /* ov was read from the state file */
	struct ctl_writer *writer; /* NULL: no state file */
	uint64_t gen;              /* the latest override handed to the writer */
	int64_t ready_since_us;    /* monotonic: the caller began saying `ready`
				    * for the latest change; 0: not yet */
	struct ctl *next_live;     /* every live ctl, for same-file hand-overs */
	int64_t ramp_mono_start_us;
	int ramp_last_weight;
	void (*probe)(void *arg, int stopping); /* ctl_set_probe(); NULL: none */
	void *probe_arg;
};

/* ---- small helpers */

/* 0 when dir exists and is a directory; else -1 with a reason in why. */
static int ctl_check_dir(const char *dir, char *why, size_t len)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		snprintf(why, len, "directory %s %s", dir,
			 errno == ENOENT ? "does not exist" : strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "%s is not a directory", dir);
		return -1;
	}
	return 0;
}

size_t ctl_status(const struct ctl *c, double now_s, char *buf, size_t len)
{
	return ctl_state_status(&c->ov, now_s, c->state_path, c->saved, buf, len);
}

const struct ctl_override *ctl_get(const struct ctl *c)
{
	return &c->ov;
}

int ctl_ramp_weight(const struct ctl *c, double now_s)
{
	return ctl_state_weight(&c->ov, now_s);
}

static uint64_t ctl_save(struct ctl *c);

void ctl_answered(struct ctl *c, int64_t now_us, int ready_window_ms)
{
	if (c->ov.admin != CTL_ADMIN_READY || c->ov.prev_admin == CTL_ADMIN_READY) {
		c->ready_since_us = 0;
		return;
	}
	if (!c->ready_since_us) {
		/* 0 is "not yet": a clock that reads 0 counts from 1us. */
		c->ready_since_us = now_us ? now_us : 1;
		return;
	}
	if (now_us - c->ready_since_us < (int64_t)ready_window_ms * 1000)
		return;
	/* Every HAProxy has heard `ready`: nothing is owed any more, and a
	 * later start must not say it again (it would undo a state an
	 * operator has set by hand in HAProxy since). */
	log_info("override: said ready for the ready window after %s; a restart will "
		 "not say it again", ctl_state_admin_names[c->ov.prev_admin]);
	c->ov.prev_admin = CTL_ADMIN_READY;
	c->ready_since_us = 0;
	ctl_save(c);
}

/* ---- changes */

/* Hand c->ov to the writer. Returns the generation to wait for, 0 without
 * a state file. On failure the override still holds in memory (an operator
 * who drains in an emergency wants the drain, disk or not): ctl_saved()
 * says so. */
static uint64_t ctl_save(struct ctl *c)
{
	c->saved = 0;
	if (!c->writer)
		return 0;
	c->gen = ctl_writer_put(c->writer, &c->ov);
	return c->gen;
}

/* A state-file write ended (on the loop thread): every change up to gen is
 * settled, and the requesters that waited for them get their reply. */
static void ctl_saved(void *arg, uint64_t gen, int rc, const char *err)
{
	struct ctl *c = arg;

	if (gen == c->gen)
		c->saved = rc == 0;
	if (rc != 0)
		log_warn("override: %s: it holds only until happac stops", err);
	ctl_conn_set_saved(&c->conns, gen, rc, err);
}

static void ctl_ramp_tick(evutil_socket_t fd, short what, void *arg);

/* Start ticking for a ramp in c->ov, anchored on the monotonic clock so that
 * its pace does not follow wall-clock steps; a restored ramp keeps its
 * progress. */
static void ctl_ramp_begin(struct ctl *c)
{
	double now = util_wall_s(), elapsed = now - c->ov.ramp_start_s;
	int period_ms = c->ov.ramp_ms / 100;
	struct timeval tv;

	if (elapsed < 0)
		elapsed = 0;
	c->ramp_mono_start_us = util_mono_us() - (int64_t)(elapsed * 1e6);
	c->ramp_last_weight = ctl_state_weight(&c->ov, now);
	/* About one tick per percent, at most one a second. */
	if (period_ms < 100)
		period_ms = 100;
	if (period_ms > 1000)
		period_ms = 1000;
	tv.tv_sec = period_ms / 1000;
	tv.tv_usec = (period_ms % 1000) * 1000;
	event_add(c->tick, &tv);
}

static void ctl_ramp_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;
	int64_t elapsed_us = util_mono_us() - c->ramp_mono_start_us;
	double now = util_wall_s(), drift;
	int w;

	(void)fd;
	(void)what;
	if (elapsed_us >= (int64_t)c->ov.ramp_ms * 1000) {
		log_info("override: weight ramp of %.1fs finished: full weight",
			 c->ov.ramp_ms / 1000.0);
		c->ov.ramp_ms = 0;
		c->ov.ramp_start_s = 0;
		event_del(c->tick);
		ctl_save(c);
		c->changed(c->arg);
		return;
	}
	drift = now - (c->ov.ramp_start_s + (double)elapsed_us / 1e6);
	if (drift > CTL_CLOCK_STEP_S || drift < -CTL_CLOCK_STEP_S) {
		log_warn("override: the wall clock stepped %+.1fs during the weight ramp; "
			 "the ramp keeps its pace", drift);
		c->ov.ramp_start_s = now - (double)elapsed_us / 1e6;
		ctl_save(c);
	}
	w = ctl_state_weight(&c->ov, now);
	if (w != c->ramp_last_weight) {
		c->ramp_last_weight = w;
		c->changed(c->arg);
	}
}

/* What the override was, for the log: "drain", "ready (ramping)". */
static const char *ctl_was(const struct ctl_override *o)
{
	if (o->ramp_ms)
		return "ready (ramping)";
	return ctl_state_admin_names[o->admin];
}

/* Carry out a request. Returns 0 with reply set to the line to send (no
 * newline), or the state-file generation the reply waits for, *want set. */
static uint64_t ctl_apply(void *arg, const struct ctl_request *req, uid_t uid,
			  pid_t pid, char *reply, size_t len, enum ctl_admin *wantp)
{
	struct ctl *c = arg;
	struct ctl_override next = c->ov;
	double now = util_wall_s();
	enum ctl_admin want;
	uint64_t gen;

	switch (req->cmd) {
	case CTL_CMD_STATUS:
		ctl_status(c, now, reply, len);
		return 0;
	case CTL_CMD_PROBE:
	case CTL_CMD_STOPPING:
		/* Patroni's callbacks: act, answer at once, keep no state. */
		if (c->probe)
			c->probe(c->probe_arg, req->cmd == CTL_CMD_STOPPING);
		snprintf(reply, len, "ok %s", ctl_request_cmd_names[req->cmd]);
		return 0;
	case CTL_CMD_DRAIN:
		want = CTL_ADMIN_DRAIN;
		break;
	case CTL_CMD_MAINT:
		want = CTL_ADMIN_MAINT;
		break;
	case CTL_CMD_READY:
		want = CTL_ADMIN_READY;
		break;
	case CTL_CMD_COUNT:
	default:
		log_fatal("ctl: impossible command %d", (int)req->cmd);
	}
	if (want == c->ov.admin && !req->ramp_ms && !c->ov.ramp_ms) {
		log_info("override: %s requested by uid %u (pid %d): already in effect",
			 ctl_state_admin_names[want], (unsigned)uid, (int)pid);
		snprintf(reply, len, "ok %s", ctl_state_admin_names[want]);
		return 0;
	}
	/* ready -> ready with a ramp (or back) keeps the `ready` still owed to
	 * HAProxy for an earlier drain/maint, and the time it has been said. */
	if (want == CTL_ADMIN_READY && c->ov.admin == CTL_ADMIN_READY) {
		next.prev_admin = c->ov.prev_admin;
	} else {
		next.prev_admin = c->ov.admin;
		c->ready_since_us = 0;
	}
	next.admin = want;
	next.uid = uid;
	next.set_at_s = now;
	next.ramp_ms = req->ramp_ms;
	next.ramp_start_s = req->ramp_ms ? now : 0;
	if (req->ramp_ms)
		log_info("override: ready with a %.1fs weight ramp set by uid %u (pid %d; was %s)",
			 req->ramp_ms / 1000.0, (unsigned)uid, (int)pid, ctl_was(&c->ov));
	else
		log_info("override: %s set by uid %u (pid %d; was %s)", ctl_state_admin_names[want],
			 (unsigned)uid, (int)pid, ctl_was(&c->ov));
	c->ov = next;
	event_del(c->tick);
	if (next.ramp_ms)
		ctl_ramp_begin(c);
	gen = ctl_save(c);
	snprintf(reply, len, "ok %s", ctl_state_admin_names[want]);
	*wantp = want;
	/* Before the reply, and before the disk: when `happac ctl` returns, the
	 * agent line already says it, however slow the disk. */
	c->changed(c->arg);
	return gen;
}

void ctl_set_probe(struct ctl *c, void (*probe)(void *arg, int stopping), void *arg)
{
	if (!c)
		return;
	c->probe = probe;
	c->probe_arg = arg;
}

/* ---- the socket */

static int ctl_listen(struct ctl *c, char *err, size_t errlen)
{
	struct stat st;
	char dir[PATH_MAX], why[PATH_MAX + 64];
	const char *path = c->socket_path;
	int fd;

	ctl_state_dir_of(path, dir, sizeof(dir));
	if (*path && ctl_check_dir(dir, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "cannot create control socket %s: %s", path, why);
		return -1;
	}
	/* A deep backlog: a burst beyond the cap is told "busy" at once rather
	 * than refused at connect. */
	fd = net_listen_unix(path, "control socket", "control", &st, err, errlen);
	if (fd < 0)
		return -1;
	c->fd = fd;
	c->sock_dev = st.st_dev;
	c->sock_ino = st.st_ino;
	c->listener = net_listener_new(c->conns.srv, fd, NULL);
	if (!c->listener) {
		c->fd = -1;
		unlink(path);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- life cycle */

/* Every live ctl (loop thread only): a new instance for the same state file
 * (a reload that moves the socket) first waits for the old one's writes. */
static struct ctl *ctl_live;

/* Read the override from the state file into c->ov. A bad admin line, an
 * unreadable file, or none that names the admin state, is an error:
 * starting without it could put a node in maintenance back into service.
 * Bad auxiliary fields cost only themselves, with a warning naming each.
 * Changes nothing but c, so a reload can still be abandoned after it. */
static int ctl_restore_load(struct ctl *c, char *err, size_t errlen)
{
	char why[1024];
	int r;

	for (struct ctl *o = ctl_live; o; o = o->next_live)
		if (o->writer && !strcmp(o->state_path, c->state_path))
			ctl_writer_flush(o->writer);
	r = ctl_state_load(c->state_path, &c->ov, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "cannot restore the operator override from %s; "
			 "refusing to start rather than guess whether this node is in "
			 "maintenance: correct or remove the file", why);
		return -1;
	}
	c->saved = r != 2;
	c->restored = r != 1;
	if (r == 2)
		log_warn("override: keeping admin = %s from the state file, without its "
			 "bad fields: %s", ctl_state_admin_names[c->ov.admin], why);
	return 0;
}

/* Put a loaded override in force: its ramp ticks again, and the log says
 * what was restored. */
static void ctl_restore_apply(struct ctl *c)
{
	char when[32], who[32];
	double now = util_wall_s();

	if (!c->restored)
		return;
	util_iso8601(c->ov.set_at_s, when, sizeof(when));
	if (c->ov.set_at_s <= 0)
		snprintf(when, sizeof(when), "an unknown time");
	if (c->ov.uid == (uid_t)-1)
		snprintf(who, sizeof(who), "an unknown uid");
	else
		snprintf(who, sizeof(who), "uid %u", (unsigned)c->ov.uid);
	if (c->ov.ramp_ms && ctl_state_weight(&c->ov, now) < 0) {
		log_info("override: the weight ramp in %s ended while happac was stopped",
			 c->state_path);
		c->ov.ramp_ms = 0;
		c->ov.ramp_start_s = 0;
		ctl_save(c);
	} else if (c->ov.ramp_ms) {
		ctl_ramp_begin(c);
		log_info("override: restored a %.1fs weight ramp from %s (set by %s at %s): "
			 "now %d%%", c->ov.ramp_ms / 1000.0, c->state_path, who, when,
			 ctl_state_weight(&c->ov, now));
	} else if (c->ov.admin != CTL_ADMIN_READY) {
		log_info("override: restored %s from %s (set by %s at %s)",
			 ctl_state_admin_names[c->ov.admin], c->state_path, who, when);
	} else if (c->ov.prev_admin != CTL_ADMIN_READY) {
		log_info("override: %s ended before happac stopped; `ready` is said again "
			 "for the ready window", ctl_state_admin_names[c->ov.prev_admin]);
	}
}

/* The state file's directory must exist and be writable: found at start
 * (or reload) rather than at the first drain in an emergency. */
static int ctl_check_state_dir(const char *state_path, char *err, size_t errlen)
{
	char dir[PATH_MAX], why[PATH_MAX + 64];

	ctl_state_dir_of(state_path, dir, sizeof(dir));
	if (ctl_check_dir(dir, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "state file %s: %s", state_path, why);
		return -1;
	}
	if (access(dir, W_OK) != 0) {
		snprintf(err, errlen, "state file %s: directory %s is not writable: %s",
			 state_path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* A server with its socket bound and listening, not accepting yet, its
 * state file's writer running, and (with restore) the override read from
 * the state file but not yet in force: ctl_start() begins. */
static struct ctl *ctl_open(struct event_base *base, const char *socket_path,
			    const char *state_path, int restore,
			    void (*changed)(void *arg), void *arg, char *err, size_t errlen)
{
	struct ctl *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->base = base;
	c->fd = -1;
	c->changed = changed;
	c->arg = arg;
	ctl_state_none(&c->ov);
	c->socket_path = strdup(socket_path ? socket_path : CTL_DEFAULT_SOCKET);
	c->state_path = state_path ? strdup(state_path) : NULL;
	c->tick = event_new(base, -1, EV_PERSIST, ctl_ramp_tick, c);
	if (!c->socket_path || (state_path && !c->state_path) || !c->tick ||
	    ctl_conn_set_init(&c->conns, base, ctl_apply, c) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (c->state_path) {
		if (ctl_check_state_dir(c->state_path, err, errlen) != 0)
			goto fail;
		c->writer = ctl_writer_new(base, c->state_path, ctl_saved, c, err, errlen);
		if (!c->writer)
			goto fail;
	}
	if (ctl_listen(c, err, errlen) != 0)
		goto fail;
	c->next_live = ctl_live;
	ctl_live = c;
	if (restore && c->state_path && ctl_restore_load(c, err, errlen) != 0)
		goto fail;
	return c;
fail:
	ctl_free(c);
	return NULL;
}

static void ctl_start(struct ctl *c)
{
	net_server_enable(c->conns.srv, 1);
	net_listener_start(c->listener);
	log_info("control: listening on %s%s%s", c->socket_path,
		 c->state_path ? ", state in " : ", no state file",
		 c->state_path ? c->state_path : "");
}

struct ctl *ctl_new(struct event_base *base, const char *socket_path,
		    const char *state_path, void (*changed)(void *arg), void *arg,
		    char *err, size_t errlen)
{
	struct ctl *c = ctl_open(base, socket_path, state_path, 1, changed, arg, err, errlen);

	if (!c)
		return NULL;
	ctl_restore_apply(c);
	ctl_start(c);
	return c;
}

/* ---- reload */

struct ctl_reload {
	int keep;           /* the running server stays: same socket */
	int state_changed;  /* keep: state_path replaces the running one */
	char *state_path;
	struct ctl_writer *writer; /* keep: the new state file's writer */
	struct ctl *fresh;  /* a server on a new socket; NULL with !keep: off */
};

static int ctl_same_path(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

/* The running server owns the socket at path: the same name, or another
 * name for the same file. Binding it anew would find it live (our own) and
 * fail. */
static int ctl_owns_socket(const struct ctl *c, const char *path)
{
	struct stat st;

	if (!strcmp(c->socket_path, path))
		return 1;
	return c->fd >= 0 && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       st.st_dev == c->sock_dev && st.st_ino == c->sock_ino;
}

struct ctl_reload *ctl_reload_prepare(struct ctl *cur, struct event_base *base,
				      const char *socket_path, const char *state_path,
				      void (*changed)(void *arg), void *arg, char *err,
				      size_t errlen)
{
	struct ctl_reload *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!socket_path)
		return r;
	if (cur && ctl_owns_socket(cur, socket_path)) {
		/* Only the state file may move: the socket stays open. */
		r->keep = 1;
		if (ctl_same_path(cur->state_path, state_path))
			return r;
		r->state_changed = 1;
		if (state_path) {
			if (ctl_check_state_dir(state_path, err, errlen) != 0)
				goto fail;
			r->state_path = strdup(state_path);
			if (!r->state_path) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			r->writer = ctl_writer_new(base, state_path, ctl_saved, cur, err, errlen);
			if (!r->writer)
				goto fail;
		}
		return r;
	}
	/* A running server hands its override over; only a first one reads
	 * the state file. */
	r->fresh = ctl_open(base, socket_path, state_path, cur == NULL, changed, arg, err,
			    errlen);
	if (r->fresh)
		return r;
fail:
	ctl_reload_abort(r);
	return NULL;
}

/* Persist the override in force in c's (new) state file; a failed write
 * is logged by ctl_saved(). */
static void ctl_save_moved(struct ctl *c)
{
	if (!c->state_path) {
		c->saved = 0;
		return;
	}
	ctl_save(c);
	log_info("control: state now in %s (override: %s)", c->state_path,
		 ctl_was(&c->ov));
}

/* The new server c takes over old's override, ramp included: what HAProxy
 * hears must not change because the socket moved. */
static void ctl_adopt(struct ctl *c, const struct ctl *old)
{
	c->ov = old->ov;
	if (c->ov.ramp_ms) {
		ctl_ramp_begin(c);
		c->ramp_mono_start_us = old->ramp_mono_start_us;
		c->ramp_last_weight = old->ramp_last_weight;
	}
	if (c->state_path && ctl_same_path(c->state_path, old->state_path) && old->saved)
		c->saved = 1; /* the file already holds it */
	else
		ctl_save_moved(c);
	log_info("control: moved from %s to %s; the override carries over: %s",
		 old->socket_path, c->socket_path, ctl_was(&c->ov));
}

struct ctl *ctl_reload_commit(struct ctl *cur, struct ctl_reload *r)
{
	struct ctl *c = NULL;

	if (r->keep) {
		c = cur;
		if (r->state_changed) {
			/* The old file's pending writes finish (and their
			 * requesters hear of them) before the new file takes
			 * over. */
			if (c->writer)
				ctl_writer_flush(c->writer);
			ctl_writer_free(c->writer);
			c->writer = r->writer;
			r->writer = NULL;
			free(c->state_path);
			c->state_path = r->state_path;
			r->state_path = NULL;
			if (!c->state_path)
				log_info("control: no state file from now on: the override "
					 "(%s) holds until happac stops", ctl_was(&c->ov));
			ctl_save_moved(c);
		}
	} else if (r->fresh) {
		c = r->fresh;
		r->fresh = NULL;
		if (cur)
			ctl_adopt(c, cur);
		else
			ctl_restore_apply(c);
		ctl_start(c);
		ctl_free(cur);
	} else {
		if (cur)
			log_info("control: socket %s closed: no override from now on",
				 cur->socket_path);
		ctl_free(cur);
	}
	ctl_reload_abort(r);
	return c;
}

void ctl_reload_abort(struct ctl_reload *r)
{
	if (!r)
		return;
	ctl_free(r->fresh);
	ctl_writer_free(r->writer);
	free(r->state_path);
	free(r);
}

void ctl_free(struct ctl *c)
{
	struct stat st;

	if (!c)
		return;
	for (struct ctl **pp = &ctl_live; *pp; pp = &(*pp)->next_live)
		if (*pp == c) {
			*pp = c->next_live;
			break;
		}
	ctl_conn_set_close_all(&c->conns);
	/* Writes what is still pending: a change is never lost to a stop. */
	ctl_writer_free(c->writer);
	net_listener_free(c->listener);
	ctl_conn_set_free(&c->conns);
	if (c->fd >= 0) {
		/* Only our own file: a newer instance may have replaced it. */
		if (lstat(c->socket_path, &st) == 0 && st.st_dev == c->sock_dev &&
		    st.st_ino == c->sock_ino)
			unlink(c->socket_path);
	}
	util_event_free(c->tick);
	free(c->socket_path);
	free(c->state_path);
	free(c);
}
