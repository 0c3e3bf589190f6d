/* agent.h - the HAProxy agent-check listener.
 *
 * On every accepted connection the agent writes the current reply line at
 * once (it never waits for input), then closes. The line comes from a
 * callback so that the agent holds no verdict logic of its own. */
#ifndef HAPPAC_AGENT_H
#define HAPPAC_AGENT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct agent;
struct acl;

/* Returns the reply line to send now and its length; the line must stay
 * valid until the next call. Called once per connection: keep it cheap. */
typedef const char *(*agent_reply_fn)(void *arg, size_t *len);

struct agent_stats {
	uint64_t up;        /* replies that said up */
	uint64_t down;      /* replies that said down */
	uint64_t failed;    /* connections closed before the line was written */
	uint64_t denied;    /* closed at accept: source not in --allow */
};

struct agent *agent_new(struct event_base *base, agent_reply_fn reply, void *arg);
/* Bind and listen now (so a taken port fails at start-up) on addr (NULL: all
 * addresses, IPv6 dual-stack where available) and port; accepting starts
 * with agent_enable(). Returns 0, or -1 with err naming the address. */
int agent_listen(struct agent *a, const char *addr, int port, char *err,
		 size_t errlen);
/* Make the listening sockets exactly addrs (count 0: all addresses) on port:
 * unchanged ones stay open (no check is dropped), new ones are bound, gone
 * ones closed. On failure nothing changes and err names the address. */
int agent_set_listeners(struct agent *a, char *const *addrs, int count, int port,
			char *err, size_t errlen);
void agent_enable(struct agent *a);
/* Only sources the list allows get a reply; others are closed at accept.
 * The list is read at every accept and must outlive the agent (or be
 * replaced); NULL allows everyone. */
void agent_set_acl(struct agent *a, const struct acl *acl);
/* Stop accepting and close the listening sockets; replies being written
 * still finish. */
void agent_close(struct agent *a);
/* Replies still being written (after a short write). */
int agent_pending(const struct agent *a);
const struct agent_stats *agent_stats(const struct agent *a);
void agent_free(struct agent *a);

#endif
