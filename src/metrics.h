/* metrics.h - counters, gauges and histograms in Prometheus text format.
 *
 * The daemon owns one struct metrics; probes are observed once per attempt,
 * transitions once per verdict change. Gauges that other modules already
 * know (agent counters, the current verdict) are passed in at render time,
 * so nothing is counted twice. */
#ifndef HAPPAC_METRICS_H
#define HAPPAC_METRICS_H

#include "probe.h"
#include "profile.h"

#include <stddef.h>

#include <stdint.h>

struct evbuffer;
struct metrics;

/* Probes the daemon runs at most (patroni, pgbouncer, patroni-leader). */
#define METRICS_MAX_PROBES 4

/* What the renderer needs from the rest of the daemon at scrape time. */
struct metrics_view {
	int up;                       /* current verdict */
	double verdict_since_s;       /* wall clock of the last change (Unix s) */
	uint64_t checks_up, checks_down, checks_failed; /* agent replies */
	uint64_t rounds;              /* probe rounds completed */
	int probe_count;
	const char *probe_names[METRICS_MAX_PROBES];
	int probe_in_flight[METRICS_MAX_PROBES];
	uint64_t reloads_ok, reloads_failed;
	uint64_t transitions;         /* verdict changes, all profiles */
	uint64_t denied;              /* agent + HTTP: closed, not in --allow */
	uint64_t dispatched;          /* checks that named their profile */
	uint64_t unknown_profile;     /* checks that named no profile: down */
	uint64_t over_cap;            /* answered early: --max-connections waiting */
	int profile_count;
	const char *profile_names[PROFILE_MAX];
	int profile_up[PROFILE_MAX];
	enum profile_admin override;  /* rendered as 0 none, 1 drain, 2 maint */
	int pgb_admin;                /* --pgbouncer-admin-conninfo is set */
	int pgb_paused;               /* PgBouncer paused or suspended now */
	double pgb_paused_s;          /* for how long */
};

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Record one finished attempt of the probe at index i (names come with the
 * view). */
void metrics_probe_observe(struct metrics *m, int i, enum probe_result r,
			   int64_t duration_us);

/* A label value as the exposition format wants it between quotes: '\',
 * '"' and a newline backslashed. Writes what fits into buf without cutting
 * an escape, NUL-terminated (len > 0). Every label value goes through it:
 * profile and probe names come from the configuration. */
void metrics_label(char *buf, size_t len, const char *value);

/* Append the exposition text (format 0.0.4) to out. */
void metrics_render(const struct metrics *m, const struct metrics_view *v,
		    struct evbuffer *out);

#endif
