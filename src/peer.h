/* peer.h - the peer-confirmed hold: ask the other members' agents whether
 * they still say `up`.
 *
 * A role that has just become right is held back (profile.c) because the
 * old primary's happac may still say `up` from its cache, and its HAProxy
 * keeps the server UP until its next agent check. The timer bounds that
 * from above; the peers can end it early with evidence: once every other
 * member's agent answers a down line for the same profile, no other agent
 * says `up` any more. A member that cannot be reached, is silent until the
 * deadline or answers anything else keeps the timer.
 *
 * The members come from the local Patroni's GET /cluster, fetched at the
 * first ask of a hold, or just before it while a role is changing
 * (peer_prefetch(): a Patroni callback, Patroni's answer moving), so that
 * the hold's first ask goes straight to the agents; peer_forget() drops
 * them once no role is changing. Each
 * ask is one connection per member, started at once, with one short
 * deadline for all of them, all on the caller's loop; nothing here runs on
 * the agent's accept path. */
#ifndef HAPPAC_PEER_H
#define HAPPAC_PEER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct peer;

#define PEER_MAX 16              /* members of a cluster that are asked */
#define PEER_NAME_MAX 64
#define PEER_ADDR_MAX 64
#define PEER_ASK_MS 250          /* the deadline of one ask, every member */
#define PEER_LINE_MAX 256        /* a peer's reply line, newline included */
#define PEER_BODY_MAX 65536      /* Patroni's /cluster document */

/* One enum, one string table: /status and the log use these words. */
enum peer_answer {
	PEER_PENDING,     /* asked, no answer yet */
	PEER_NOT_UP,      /* a line whose health word is down, fail or stopped */
	PEER_UP,          /* a line that starts with up */
	PEER_UNREACHABLE, /* the connection failed */
	PEER_SILENT,      /* no whole line before the deadline */
	PEER_GARBAGE,     /* not an agent line */
	PEER_NO_ADDRESS,  /* its host is not an address literal */
	PEER_ANSWER_COUNT
};
extern const char *const peer_answer_names[PEER_ANSWER_COUNT];

struct peer_member {
	char name[PEER_NAME_MAX];
	char addr[PEER_ADDR_MAX]; /* "" when its host is no address literal */
};

/* Parse Patroni's GET /cluster document: the members other than self_host
 * (the address this happac asks Patroni at; a member is this node when its
 * host or its api_url's host is that), at most max of them. Returns how
 * many, or -1 with err saying what is wrong with the document. A member
 * without a name is an error; one whose host is no address literal gets
 * addr "" (it cannot be asked, so it keeps the timer). */
int peer_cluster_parse(const char *json, size_t len, const char *self_host,
		       struct peer_member *out, int max, char *err, size_t errlen);

/* What a peer's reply (len bytes as read, the line and anything after it)
 * says: PEER_NOT_UP, PEER_UP, PEER_GARBAGE, or PEER_PENDING while no
 * newline has come yet (eof: the peer closed, so that is PEER_GARBAGE). */
enum peer_answer peer_line_classify(const char *buf, size_t len, int eof);

/* The end of an ask for profile: clear when every other member answered a
 * down line; names the members (comma-separated), asked_us the monotonic
 * time the ask started (its answers are no older than that). */
typedef void (*peer_done_fn)(void *arg, int profile, int clear, const char *names,
			     int64_t asked_us);

/* Ask at Patroni patroni_addr:patroni_port (an address literal; another
 * host name means no peers) for /cluster, the members' agents at
 * agent_port; fetch_ms bounds the /cluster request. NULL when out of
 * memory. */
struct peer *peer_new(struct event_base *base, const char *patroni_addr, int patroni_port,
		      int agent_port, int fetch_ms, peer_done_fn done, void *arg);
void peer_free(struct peer *p);
/* Ask every other member for profile_name (sent as HAProxy's agent-send
 * would, name and newline). Does nothing while an ask is running. done()
 * is called once per ask, never from inside peer_ask(). */
void peer_ask(struct peer *p, int profile, const char *profile_name);
/* A role is changing: fetch the members now, for the hold that may come
 * (nothing when they are known or a fetch or ask runs). A failure here is
 * silent: the hold fetches again and says why. */
void peer_prefetch(struct peer *p);
/* The hold ended: forget the members (the next hold fetches them again)
 * and cancel an ask in flight (done() is not called). */
void peer_forget(struct peer *p);
/* A JSON object for /status: the members, their last answers, the counts. */
size_t peer_status(const struct peer *p, char *buf, size_t len);

#endif
