/* ctl_conn.h - the control socket's connections (see ctl.h for the
 * protocol). ctl.c owns the socket and the override; this holds the
 * connections accepted on it and hands each request to apply(). */
#ifndef HAPPAC_CTL_CONN_H
#define HAPPAC_CTL_CONN_H

#include "ctl_request.h"
#include "ctl_state.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct net_server;

/* Carry out req for uid/pid: 0 with reply set to the line to send (no
 * newline), or the state-file generation the reply waits for (reply then
 * unused; *want the admin state the change set). */
typedef uint64_t (*ctl_conn_apply_fn)(void *arg, const struct ctl_request *req, uid_t uid,
				      pid_t pid, char *reply, size_t len,
				      enum ctl_admin *want);

struct ctl_conn_set {
	struct event_base *base;
	struct net_server *srv;    /* accepts; its listener is ctl.c's */
	ctl_conn_apply_fn apply;
	void *arg;
	int at_cap;                /* logged once per episode, not per refusal */
};

/* Ready to accept (listeners join s->srv). Returns 0, or -1 out of memory. */
int ctl_conn_set_init(struct ctl_conn_set *s, struct event_base *base,
		      ctl_conn_apply_fn apply, void *arg);
/* State-file writes up to gen ended with rc (err its message): the
 * requesters that waited for them get their reply. */
void ctl_conn_set_saved(struct ctl_conn_set *s, uint64_t gen, int rc, const char *err);
/* Close every connection now. */
void ctl_conn_set_close_all(struct ctl_conn_set *s);
void ctl_conn_set_free(struct ctl_conn_set *s);

#endif
