/* answer.h - the cached answers: one reply line per profile.
 *
 * The agent and the HTTP side port read from here; the probe rounds (and
 * operator overrides) write here through answer_update(), which also logs
 * every transition once. Reading is cheap: a pointer and a clock read. */
#ifndef HAPPAC_ANSWER_H
#define HAPPAC_ANSWER_H

#include "profile.h"

#include <stddef.h>
#include <stdint.h>

struct answer;

struct answer *answer_new(void);
void answer_free(struct answer *a);

/* Install the profiles (at start, and on a reload: profiles that keep their
 * name keep their line and memory, except that one whose rule or endpoint
 * changed treats its role as new: it must settle again). */
void answer_set_profiles(struct answer *a, const struct profile *profiles, int n,
			 int stale_after_ms);

/* Recompute every profile's line from in; log each change with summary
 * (probe results and durations). The first call makes the answers ready.
 * Returns the number of profiles whose line changed. */
int answer_update(struct answer *a, const struct profile_inputs *in, const char *summary);

/* After a restart, an override that was cleared while happac was down must
 * still be followed by `ready`: mark every profile as having said it. */
void answer_admin_was_said(struct answer *a);

int answer_ready(const struct answer *a);
/* The line for profile i (with its '\n'), or the stale line when no round
 * ended for longer than the stale bound. Valid until the next call. health
 * (may be NULL) gets what that line means for traffic, read with the same
 * clock reading, never from the text. */
const char *answer_line(struct answer *a, int i, size_t *len, enum profile_health *health);
/* The line the built-in rule gives (a Patroni path on the side port,
 * rule < PROFILE_RULE_ENDPOINT), configured as a profile or not: every
 * rule is judged each round from the same probe results. Stale or before
 * the first round: as answer_line(). health is required. */
const char *answer_path_line(struct answer *a, enum profile_rule rule, size_t *len,
			     enum profile_health *health);
/* What profile i's current line means for traffic (PROFILE_HEALTH_DOWN for
 * the stale line): computed when the line was built, so /health and the
 * metrics never re-read it from the text. */
enum profile_health answer_health(const struct answer *a, int i);
/* When profile i's hold began (monotonic), while it holds back a role
 * that has just become right (profile.c); 0 when no hold runs. */
int64_t answer_hold_since(const struct answer *a, int i);
/* The index of the profile called name (exact, case-sensitive), or -1. */
int answer_lookup(const struct answer *a, const char *name);
int answer_count(const struct answer *a);
const struct profile *answer_profile(const struct answer *a, int i);
/* Wall clock of profile i's last change, and the number of changes. */
double answer_since(const struct answer *a, int i);
uint64_t answer_transitions(const struct answer *a);

#endif
