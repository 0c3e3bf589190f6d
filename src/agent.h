/* agent.h - the HAProxy agent-check listener.
 *
 * On every accepted connection the agent writes the reply line of the
 * listener's profile at once, then closes. With several profiles, a checker
 * may name one in a first line (HAProxy's agent-send "replica\n"); a line
 * already there at accept is honoured, and with a dispatch wait the agent
 * waits that long for it before answering the listener's own profile. A
 * name that is no profile (also bytes without a line end when the wait
 * ends) gets "down #unknown profile NAME", never the listener's profile.
 * With one profile nothing is read. The lines come from callbacks, so the
 * agent holds no verdict logic. */
#ifndef HAPPAC_AGENT_H
#define HAPPAC_AGENT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct agent;
struct acl;

/* Returns the reply line of profile (an index the caller defines) and its
 * length; valid until the next call. *up is 1 when the line's health word is
 * `up` (for the counters). Called once per connection: cheap. */
typedef const char *(*agent_reply_fn)(void *arg, int profile, size_t *len, int *up);
/* The profile index for a name sent by the checker, or -1. */
typedef int (*agent_lookup_fn)(void *arg, const char *name);

struct agent_stats {
	uint64_t up;        /* replies that said up */
	uint64_t down;      /* replies that said down */
	uint64_t failed;    /* connections closed before the line was written */
	uint64_t denied;    /* closed at accept: source not in --allow */
	uint64_t dispatched;/* replies for a profile named by the checker */
	uint64_t unknown_profile; /* named no profile: answered down */
	uint64_t evicted;   /* waited longest, answered early to make room */
	uint64_t over_cap;  /* answered at once: the waiting set full of writers */
};

/* One listening socket: addr NULL = all addresses (IPv6 dual-stack where
 * available), the profile it answers by default. */
struct agent_endpoint {
	const char *addr;
	int port;
	int profile;
};

struct agent *agent_new(struct event_base *base, agent_reply_fn reply,
			agent_lookup_fn lookup, void *arg);
/* Make the listening sockets exactly eps, in two steps so that a reload can
 * fail as a whole. agent_listen_prepare() binds what is new (a taken port
 * fails here, err naming the address) and changes nothing the agent runs;
 * agent_listen_commit() then closes the sockets eps no longer holds and puts
 * the new set in place (unchanged sockets stay open: no check is dropped),
 * or agent_listen_abort() closes what the plan bound. Either one frees the
 * plan, and one of them must follow before the loop runs again. Accepting
 * starts with agent_enable(). */
struct agent_listen_plan;
struct agent_listen_plan *agent_listen_prepare(struct agent *a,
					       const struct agent_endpoint *eps, int n,
					       char *err, size_t errlen);
void agent_listen_commit(struct agent *a, struct agent_listen_plan *p);
/* NULL is fine. */
void agent_listen_abort(struct agent_listen_plan *p);
void agent_enable(struct agent *a);
/* wait_ms > 0: wait up to that long for a profile line before answering
 * the listener's profile; 0: only a line already there counts; -1: never
 * look (one profile). max_conns bounds the connections waiting or being
 * written; over it, a check is answered at once. */
void agent_set_dispatch(struct agent *a, int wait_ms, int max_conns);
/* Only sources the list allows get a reply; others are closed at accept.
 * The list must outlive the agent (or be replaced); NULL allows everyone. */
void agent_set_acl(struct agent *a, const struct acl *acl);
/* Stop accepting and close the listening sockets; replies being written
 * still finish. */
void agent_close(struct agent *a);
/* Connections still waiting for a line or being written. */
int agent_pending(const struct agent *a);
const struct agent_stats *agent_stats(const struct agent *a);
void agent_free(struct agent *a);

#endif
