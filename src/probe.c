/* probe.c - the round scheduler: interval, jitter, deadline, probe_done(). */
#include "probe.h"

#include "log.h"
#include "util.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>

#define PROBE_MAX 24 /* with 8 PgBouncers (--pgbouncer-socket-dir): 2 probes each */

const char *const probe_result_names[PROBE_RESULT_COUNT] = {
	[PROBE_OK] = "ok",
	[PROBE_HTTP_STATUS] = "http status",
	[PROBE_REFUSED] = "connection refused",
	[PROBE_TIMEOUT] = "timeout",
	[PROBE_RESOLVE] = "cannot resolve",
	[PROBE_CONNECT] = "connect failed",
	[PROBE_TLS] = "tls error",
	[PROBE_BAD_RESPONSE] = "bad response",
	[PROBE_REJECTED] = "rejected",
	[PROBE_LOGIN_FAILED] = "login failed",
	[PROBE_QUERY_FAILED] = "query failed",
	[PROBE_INTERNAL] = "internal error",
};

struct probe_sched {
	struct event_base *base;
	int interval_ms;
	int timeout_ms;
	probe_round_cb cb;
	void *arg;
	struct probe *probes[PROBE_MAX];
	int count;
	int pending;          /* probes of this round not yet done */
	int starting;         /* inside probe_sched_round(): defer the round end */
	int64_t round_start_us;
	uint64_t rounds;
	struct event *tick;
	unsigned int seed;
	int fast_ms;          /* > 0: rounds this often for now (probe_sched_fast) */
	int again;            /* a kick came during a round: one more after it */
};

static void probe_sched_round(evutil_socket_t fd, short what, void *arg);

/* Next round: one interval after this round's start, shortened by up to 10%
 * of jitter so that nodes drift apart but detection never takes longer than
 * interval + timeout. Never overlaps a round still in flight. */
static void probe_sched_next(struct probe_sched *s)
{
	int every = s->fast_ms > 0 && s->fast_ms < s->interval_ms ? s->fast_ms : s->interval_ms;
	int64_t jitter = (int64_t)(rand_r(&s->seed) % 1000) * every / 10;
	int64_t due = s->round_start_us + (int64_t)every * 1000 - jitter;
	int64_t wait;
	struct timeval tv;

	/* A kick during the round: the next one as soon as the gap allows. */
	if (s->again) {
		s->again = 0;
		due = s->round_start_us + (int64_t)PROBE_KICK_GAP_MS * 1000;
	}
	wait = due - util_mono_us();
	if (wait < 0)
		wait = 0;
	tv.tv_sec = wait / 1000000;
	tv.tv_usec = wait % 1000000;
	evtimer_add(s->tick, &tv);
}

static void probe_sched_round_end(struct probe_sched *s)
{
	s->rounds++;
	s->cb(s->arg);
	probe_sched_next(s);
}

void probe_done(struct probe *p, enum probe_result result, int http_status,
		const char *detail)
{
	struct probe_sched *s = p->sched;
	int64_t now = util_mono_us();

	if (!p->in_flight) {
		log_error("internal: probe %s finished twice", p->name);
		abort();
	}
	p->in_flight = 0;
	evtimer_del(p->deadline);
	p->last.result = result;
	p->last.in_recovery = p->in_recovery;
	p->last.lag_bytes = p->lag_bytes;
	p->last.wal_receiver = p->wal_receiver;
	p->last.replay_age_ms = p->replay_age_ms;
	p->last.skipped = p->skipped;
	p->last.http_status = http_status;
	p->last.duration_us = now - p->started_us;
	p->last.finished_us = now;
	snprintf(p->last.detail, sizeof(p->last.detail), "%s", detail ? detail : "");
	p->has_result = 1;
	if (log_debug_enabled())
		log_debug("probe %s: %s %d %s (%.1fms)", p->name,
			  probe_result_names[result], http_status, p->last.detail,
			  (double)p->last.duration_us / 1000.0);
	if (--s->pending == 0 && !s->starting)
		probe_sched_round_end(s);
}

static void probe_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct probe *p = arg;

	(void)fd;
	(void)what;
	if (!p->in_flight)
		return;
	p->ops->cancel(p->impl);
	probe_done(p, PROBE_TIMEOUT, 0, NULL);
}

static void probe_sched_round(evutil_socket_t fd, short what, void *arg)
{
	struct probe_sched *s = arg;
	struct timeval tv = { s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000 };

	(void)fd;
	(void)what;
	s->round_start_us = util_mono_us();
	s->pending = s->count;
	s->starting = 1;
	for (int i = 0; i < s->count; i++) {
		struct probe *p = s->probes[i];

		p->in_flight = 1;
		p->in_recovery = -1;
		p->lag_bytes = -1;
		p->wal_receiver = -1;
		p->replay_age_ms = -1;
		p->skipped = 0;
		p->started_us = util_mono_us();
		evtimer_add(p->deadline, &tv);
		p->ops->start(p->impl, p);
	}
	s->starting = 0;
	if (s->pending == 0)
		probe_sched_round_end(s);
}

struct probe_sched *probe_sched_new(struct event_base *base, int interval_ms,
				    int timeout_ms, probe_round_cb cb, void *arg)
{
	struct probe_sched *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->base = base;
	s->interval_ms = interval_ms;
	s->timeout_ms = timeout_ms;
	s->cb = cb;
	s->arg = arg;
	s->seed = (unsigned int)util_mono_us() ^ (unsigned int)getpid();
	s->tick = evtimer_new(base, probe_sched_round, s);
	if (!s->tick) {
		free(s);
		return NULL;
	}
	return s;
}

int probe_sched_add(struct probe_sched *s, struct probe *p, const char *name,
		    const struct probe_ops *ops, void *impl)
{
	if (s->count >= PROBE_MAX)
		return -1;
	memset(p, 0, sizeof(*p));
	p->name = name;
	p->ops = ops;
	p->impl = impl;
	p->sched = s;
	p->deadline = evtimer_new(s->base, probe_deadline, p);
	if (!p->deadline)
		return -1;
	s->probes[s->count++] = p;
	return 0;
}

void probe_sched_start(struct probe_sched *s)
{
	struct timeval now = { 0, 0 };

	evtimer_add(s->tick, &now);
}

void probe_sched_free(struct probe_sched *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->count; i++) {
		struct probe *p = s->probes[i];

		if (p->in_flight) {
			p->ops->cancel(p->impl);
			p->in_flight = 0;
		}
		event_free(p->deadline);
		p->deadline = NULL;
	}
	event_free(s->tick);
	free(s);
}

void probe_sched_kick(struct probe_sched *s)
{
	int64_t due = s->round_start_us + (int64_t)PROBE_KICK_GAP_MS * 1000;
	int64_t wait = s->rounds || s->pending ? due - util_mono_us() : 0;
	struct timeval tv;

	if (s->pending) {
		s->again = 1; /* coalesced: one more round once this one ends */
		return;
	}
	if (wait < 0)
		wait = 0;
	tv.tv_sec = wait / 1000000;
	tv.tv_usec = wait % 1000000;
	evtimer_add(s->tick, &tv); /* replaces the scheduled round */
}

void probe_sched_fast(struct probe_sched *s, int fast_ms)
{
	int was = s->fast_ms;

	s->fast_ms = fast_ms;
	/* The round already scheduled may be a whole interval away. */
	if (fast_ms > 0 && (was <= 0 || fast_ms < was) && !s->pending &&
	    evtimer_pending(s->tick, NULL))
		probe_sched_next(s);
}

uint64_t probe_sched_rounds(const struct probe_sched *s)
{
	return s->rounds;
}
