/* main_hold.c - the handover of a role: the hold of a role that has just
 * become right ended by the peers' evidence (peer.h), faster rounds while a
 * role changes, and Patroni's callbacks through `happac ctl probe` and
 * `happac ctl stopping`. The hold itself is profile.c's; this decides when
 * to ask and tells it what the peers said. */
#include "main_int.h"

#include "answer.h"
#include "log.h"
#include "peer.h"
#include "probe_patroni.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rounds this often while a role changes: Patroni sees at most ten
 * requests a second from this node, and only for a hold's time (interval +
 * timeout + agent-inter) after its answer changed or a callback asked for a
 * round, or while a hold runs (bounded by the same time). */
#define MAIN_HOLD_FAST_MS 100
/* After Patroni's callback asked for a round: it is about to promote (or
 * has stopped) and the new answer is due within moments, so for the same
 * bounded time the rounds follow every 50 ms (at most 20 requests a second
 * to the local Patroni, about 40 per callback). */
#define MAIN_HOLD_CALLBACK_FAST_MS 50
/* The fast pace lasts a hold's time, at most this long (a long --interval
 * must not mean a long fast phase). */
#define MAIN_HOLD_FAST_FOR_MAX_MS 3000

static int64_t main_hold_fast_for_us(const struct happac *h)
{
	int ms = options_hold_ms(&h->opts);

	return (int64_t)(ms < MAIN_HOLD_FAST_FOR_MAX_MS ? ms : MAIN_HOLD_FAST_FOR_MAX_MS) * 1000;
}

/* A role only one node may have (the primary, the leader, the standby
 * leader) changes hands between two agents, and without a callback each
 * learns of its own side at its own round. The one that says up must see
 * its demotion quickly (the new node's hold ends when it says down). The
 * candidate must see its promotion: Patroni 3.0.4+ gives it a sign first
 * (its replication_state ends when the old primary stops, which starts the
 * fast rounds, see main_hold_evaluated); older Patroni (3.0.2, by the
 * version in its status; without one, nothing is assumed) gives none,
 * and at one round per interval the candidate's delay spread over a whole
 * interval, its median at the 0.6 s a handover allows. So these agents
 * round at interval / MAIN_HOLD_ONE_NODE_DIVISOR: two requests a second to
 * their own Patroni at the default --interval. Every other agent keeps the
 * interval: halving a candidate's rounds on Patroni 4 too made the
 * callbacks' handover slower there (median 0.16 s against 0.02-0.07 s),
 * probably as the round a callback asks for queues behind one in flight. */
#define MAIN_HOLD_ONE_NODE_DIVISOR 2

static int main_hold_one_node_role(const struct happac *h)
{
	const struct patroni_json *j = probe_patroni_json(h->run->patroni);
	int no_sign = j && patroni_json_reports_replication(j) == 0;

	for (int i = 0; i < answer_count(h->answer); i++) {
		enum profile_rule r = answer_profile(h->answer, i)->rule;

		if ((r == PROFILE_RULE_PRIMARY || r == PROFILE_RULE_LEADER ||
		     r == PROFILE_RULE_STANDBY_LEADER) &&
		    (no_sign || answer_health(h->answer, i) != PROFILE_HEALTH_DOWN))
			return 1;
	}
	return 0;
}

/* Patroni's before_stop: the stopping line stays until a round that began
 * after it sees Patroni answer otherwise than it did then (the stop showed:
 * from then on Patroni's own answer says what the node is), or for this
 * long when Patroni's answer never moves (the stop did not happen, or was
 * too quick for any round to see). */
#define MAIN_HOLD_STOPPING_MAX_MS 60000

enum main_hold_stop { MAIN_HOLD_RUNNING, MAIN_HOLD_STOPPING };

struct main_hold {
	struct peer *peer;                 /* NULL: no peers (HTTPS to Patroni) */
	int64_t clear_us[PROFILE_MAX];     /* per profile: peers all said down */
	char names[PEER_MAX * (PEER_NAME_MAX + 1)];
	int64_t fast_until_us;
	int64_t callback_until_us;         /* MAIN_HOLD_CALLBACK_FAST_MS until then */
	int last_json;                     /* its status JSON's state: running,
					      role, unlocked (-1: none) */
	enum main_hold_stop stop;
	int64_t stop_since_us;
	int stop_result, stop_status;      /* Patroni's answer when it began */
	uint64_t kicks;
	void (*evaluate)(struct happac *h);
};

static void main_hold_peers_done(void *arg, int profile, int clear, const char *names,
				 int64_t asked_us)
{
	struct happac *h = arg;
	struct main_hold *mh = h->hold;

	if (!clear || profile < 0 || profile >= PROFILE_MAX)
		return; /* the timer goes on */
	mh->clear_us[profile] = asked_us;
	snprintf(mh->names, sizeof(mh->names), "%s", names);
	mh->evaluate(h);
}

void main_hold_configure(struct happac *h)
{
	struct main_hold *mh = h->hold;
	const struct options *o = &h->opts;

	peer_free(mh->peer);
	mh->peer = NULL;
	memset(mh->clear_us, 0, sizeof(mh->clear_us));
	if (strcmp(o->patroni_scheme, "http"))
		return; /* /cluster would need libcurl's TLS: the timer only */
	mh->peer = peer_new(h->base, o->patroni_host, o->patroni_port,
			    o->peer_agent_port ? o->peer_agent_port : o->port, o->timeout_ms,
			    main_hold_peers_done, h);
	if (!mh->peer)
		log_warn("hold: out of memory for the peers: the hold runs its full time");
}

struct main_hold *main_hold_new(struct happac *h, void (*evaluate)(struct happac *h))
{
	h->hold = calloc(1, sizeof(struct main_hold));
	if (!h->hold)
		return NULL;
	h->hold->last_json = -1;
	h->hold->evaluate = evaluate;
	main_hold_configure(h);
	return h->hold;
}

void main_hold_free(struct main_hold *mh)
{
	if (!mh)
		return;
	peer_free(mh->peer);
	free(mh);
}

/* Whether this round's Patroni answer began after t. */
static int main_hold_after(const struct probe_report *r, int64_t t)
{
	return r->finished_us - r->duration_us > t;
}

void main_hold_inputs(struct happac *h, struct profile_inputs *in, char *summary,
		      size_t len)
{
	struct main_hold *mh = h->hold;
	const struct probe_report *pa = &h->run->probes[MAIN_PROBE_PATRONI].last;
	size_t used = strlen(summary);

	in->peers_clear_us = mh->peer ? mh->clear_us : NULL;
	if (mh->stop != MAIN_HOLD_RUNNING && main_hold_after(pa, mh->stop_since_us) &&
	    ((int)pa->result != mh->stop_result || pa->http_status != mh->stop_status ||
	     in->now_us - mh->stop_since_us > MAIN_HOLD_STOPPING_MAX_MS * 1000LL)) {
		mh->stop = MAIN_HOLD_RUNNING;
		log_info("patroni: its answer moved after before_stop (%s %d): "
			 "judging by it again", probe_result_names[pa->result], pa->http_status);
	}
	in->patroni_stopping = mh->stop != MAIN_HOLD_RUNNING;
	for (int i = 0; i < answer_count(h->answer) && i < PROFILE_MAX; i++) {
		int64_t since = answer_hold_since(h->answer, i);

		if (!since || !mh->peer || mh->clear_us[i] <= since || used >= len)
			continue;
		snprintf(summary + used, len - used, "; hold released by %s after %.2fs",
			 mh->names, (double)(in->now_us - since) / 1e6);
		break;
	}
}

void main_hold_evaluated(struct happac *h)
{
	struct main_hold *mh = h->hold;
	const struct patroni_json *j = probe_patroni_json(h->run->patroni);
	/* A replica's replication_state (Patroni 3.0.4+) ends when its
	 * primary stops: in a switchover that is the candidate's first sign,
	 * some 0.3 s before its own /primary says 200. */
	int js = j ? j->running | (int)j->role << 1 | j->cluster_unlocked << 4 |
			     !!j->replication_state[0] << 5 : -1;
	int64_t now = util_mono_us();
	int holding = -1;

	for (int i = answer_count(h->answer) - 1; i >= 0 && i < PROFILE_MAX; i--)
		if (answer_hold_since(h->answer, i))
			holding = i;
	/* What Patroni's status says moved (PostgreSQL stopped or started,
	 * another role, the leader lock gone, replication from the primary
	 * ended or began): a role is changing somewhere. Edges between two
	 * status documents only: a Patroni that fails (no document: garbage,
	 * a timeout, refused) is never probed faster than the interval, and a
	 * node that stays stopped is probed at the interval again after a
	 * hold's time. */
	if (mh->last_json >= 0 && js >= 0 && js != mh->last_json) {
		mh->fast_until_us = now + main_hold_fast_for_us(h);
		peer_prefetch(mh->peer);
	}
	mh->last_json = js;
	if (h->run->sched) {
		int fast = 0;

		if (holding >= 0 || now < mh->fast_until_us || mh->stop != MAIN_HOLD_RUNNING)
			fast = MAIN_HOLD_FAST_MS;
		if (now < mh->callback_until_us)
			fast = MAIN_HOLD_CALLBACK_FAST_MS;
		if (!fast && main_hold_one_node_role(h))
			fast = h->opts.interval_ms / MAIN_HOLD_ONE_NODE_DIVISOR;
		probe_sched_fast(h->run->sched, fast);
	}
	if (!mh->peer)
		return;
	if (holding < 0) {
		/* No hold and no role changing: the next hold asks Patroni for
		 * the members again. While one changes, a list fetched ahead
		 * (peer_prefetch) waits for the hold. */
		if (now < mh->fast_until_us)
			return;
		peer_forget(mh->peer);
		memset(mh->clear_us, 0, sizeof(mh->clear_us));
		return;
	}
	peer_ask(mh->peer, holding, answer_profile(h->answer, holding)->name);
}

void main_hold_ctl(void *arg, int stopping)
{
	struct happac *h = arg;
	struct main_hold *mh = h->hold;

	mh->kicks++;
	/* Patroni calls on_role_change right after `pg_ctl promote`, before
	 * its /primary says 200 (that waits for the promotion to finish): the
	 * round started now may still see 503, so the next ones follow fast
	 * for a hold's time. */
	mh->fast_until_us = util_mono_us() + main_hold_fast_for_us(h);
	mh->callback_until_us = mh->fast_until_us;
	peer_prefetch(mh->peer);
	if (stopping && mh->stop == MAIN_HOLD_RUNNING) {
		log_info("patroni: before_stop: saying down until Patroni's answer moves");
		const struct probe *pp = &h->run->probes[MAIN_PROBE_PATRONI];

		mh->stop = MAIN_HOLD_STOPPING;
		mh->stop_since_us = util_mono_us();
		mh->stop_result = pp->has_result ? (int)pp->last.result : -1;
		mh->stop_status = pp->has_result ? pp->last.http_status : -1;
		mh->evaluate(h);
	}
	if (h->run->sched && !h->stopping)
		probe_sched_kick(h->run->sched);
}

void main_hold_status(const struct happac *h, char *buf, size_t len)
{
	const struct main_hold *mh = h->hold;
	char peers[1024] = "null";
	int64_t since = answer_count(h->answer) ? answer_hold_since(h->answer, 0) : 0;
	int n;

	if (mh->peer)
		peer_status(mh->peer, peers, sizeof(peers));
	n = snprintf(buf, len, "{\"holding\":%s,\"held_s\":%.3f,\"fast\":%s,"
		     "\"patroni_stopping\":%s,\"probe_requests\":%llu,\"peers\":%s}",
		     since ? "true" : "false",
		     since ? (double)(util_mono_us() - since) / 1e6 : 0.0,
		     util_mono_us() < mh->fast_until_us ? "true" : "false",
		     mh->stop != MAIN_HOLD_RUNNING ? "true" : "false",
		     (unsigned long long)mh->kicks, peers);
	if (n < 0 || (size_t)n >= len)
		snprintf(buf, len, "null");
}
