/* answer.c - per-profile reply lines, transitions, staleness. */
#include "answer.h"

#include "log.h"
#include "probe.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct answer_slot {
	struct profile profile;
	struct profile_state state;
	char line[VERDICT_LINE_MAX];
	size_t len;
	enum profile_health health; /* what line means, from profile_evaluate() */
	double since_s;
};

struct answer {
	struct answer_slot slots[PROFILE_MAX];
	int n;
	int ready;
	int64_t updated_us;     /* monotonic: the last update */
	int64_t stale_us;
	uint64_t transitions;
	char stale_line[VERDICT_LINE_MAX];
	/* One line per built-in rule, whether configured or not, for the
	 * Patroni paths the side port serves: evaluated each round from the
	 * same probe results, never read by the agent. */
	struct answer_slot paths[PROFILE_RULE_ENDPOINT];
};

struct answer *answer_new(void)
{
	struct answer *a = calloc(1, sizeof(struct answer));

	if (!a)
		return NULL;
	for (int r = 0; r < PROFILE_RULE_ENDPOINT; r++) {
		profile_for_rule((enum profile_rule)r, &a->paths[r].profile);
		a->paths[r].len = (size_t)snprintf(a->paths[r].line, sizeof(a->paths[r].line),
						   "down #starting\n");
	}
	return a;
}

void answer_free(struct answer *a)
{
	free(a);
}

/* Whether b decides the role differently from a: another rule, or another
 * Patroni endpoint (the first profile's, asked for its status code, or an
 * endpoint profile's). */
static int answer_rule_changed(const struct profile *a, const struct profile *b)
{
	return a->rule != b->rule || strcmp(a->endpoint, b->endpoint) != 0;
}

void answer_set_profiles(struct answer *a, const struct profile *profiles, int n,
			 int stale_after_ms)
{
	struct answer_slot old[PROFILE_MAX];
	int nold = a->n;

	memcpy(old, a->slots, sizeof(old));
	memset(a->slots, 0, sizeof(a->slots));
	for (int i = 0; i < n && i < PROFILE_MAX; i++) {
		a->slots[i].profile = profiles[i];
		for (int j = 0; j < nold; j++)
			if (!strcmp(old[j].profile.name, profiles[i].name)) {
				a->slots[i].state = old[j].state;
				/* A new rule under the old name: a role that is
				 * right by it is new, and must settle like any
				 * other (see profile.c). */
				if (answer_rule_changed(&old[j].profile, &profiles[i]))
					a->slots[i].state.role_ok_since_us = 0;
				memcpy(a->slots[i].line, old[j].line, sizeof(old[j].line));
				a->slots[i].len = old[j].len;
				a->slots[i].health = old[j].health;
				a->slots[i].since_s = old[j].since_s;
				break;
			}
		if (!a->slots[i].len) {
			/* Until its first round a new profile says so. */
			a->slots[i].len = (size_t)snprintf(a->slots[i].line,
							   sizeof(a->slots[i].line),
							   "down #starting\n");
			a->slots[i].since_s = util_wall_s();
		}
	}
	a->n = n < PROFILE_MAX ? n : PROFILE_MAX;
	a->stale_us = (int64_t)stale_after_ms * 1000;
}

/* The path rules, judged like profiles next to the profile Patroni's status
 * code answered for (its code is the leader-lock evidence). Not logged:
 * their changes follow the configured profiles' ones. */
static void answer_update_paths(struct answer *a, const struct profile_inputs *in)
{
	struct profile all[1 + PROFILE_RULE_ENDPOINT];
	struct profile_inputs pin = *in;

	if (a->n < 1)
		return;
	all[0] = a->slots[in->patroni_code_profile].profile;
	pin.patroni_code_profile = 0;
	pin.peers_clear_us = NULL; /* asked per configured profile only */
	for (int r = 0; r < PROFILE_RULE_ENDPOINT; r++)
		all[1 + r] = a->paths[r].profile;
	for (int r = 0; r < PROFILE_RULE_ENDPOINT; r++) {
		struct answer_slot *s = &a->paths[r];

		s->health = profile_evaluate(all, 1 + r, &s->state, &pin, s->line,
					     sizeof(s->line), &s->len);
	}
}

int answer_update(struct answer *a, const struct profile_inputs *in, const char *summary)
{
	struct profile all[PROFILE_MAX];
	int changed = 0;

	for (int i = 0; i < a->n; i++)
		all[i] = a->slots[i].profile;
	for (int i = 0; i < a->n; i++) {
		struct answer_slot *s = &a->slots[i];
		char line[VERDICT_LINE_MAX];
		const char *prev;
		enum profile_health health, was = s->health;
		size_t len;

		health = profile_evaluate(all, i, &s->state, in, line, sizeof(line), &len);
		s->health = health;
		if (a->ready && len == s->len && !memcmp(line, s->line, len))
			continue;
		prev = !a->ready ? "none" : was != PROFILE_HEALTH_DOWN ? "up" : "down";
		if (i == 0)
			log_info("verdict %s -> %.*s (%s)", prev, (int)len - 1, line, summary);
		else
			log_info("verdict %s: %s -> %.*s (%s)", s->profile.name, prev,
				 (int)len - 1, line, summary);
		if (a->ready)
			a->transitions++;
		memcpy(s->line, line, len + 1);
		s->len = len;
		s->since_s = util_wall_s();
		changed++;
	}
	answer_update_paths(a, in);
	a->ready = 1;
	a->updated_us = util_mono_us();
	return changed;
}

int64_t answer_hold_since(const struct answer *a, int i)
{
	const struct profile_state *st = &a->slots[i].state;

	return st->role_ok_since_us && !st->hold_over ? st->role_ok_since_us : 0;
}

void answer_admin_was_said(struct answer *a)
{
	for (int i = 0; i < a->n; i++)
		a->slots[i].state.admin_said = 1;
}

int answer_ready(const struct answer *a)
{
	return a->ready;
}

const char *answer_line(struct answer *a, int i, size_t *len, enum profile_health *health)
{
	int64_t age = util_mono_us() - a->updated_us;

	if (i < 0 || i >= a->n)
		i = 0;
	if (age > a->stale_us) {
		*len = verdict_render_stale(age / 1000, a->stale_line, sizeof(a->stale_line));
		if (health)
			*health = PROFILE_HEALTH_DOWN;
		return a->stale_line;
	}
	*len = a->slots[i].len;
	if (health)
		*health = a->slots[i].health;
	return a->slots[i].line;
}

const char *answer_path_line(struct answer *a, enum profile_rule rule, size_t *len,
			     enum profile_health *health)
{
	if (a->ready && util_mono_us() - a->updated_us > a->stale_us)
		return answer_line(a, 0, len, health); /* the stale line */
	*len = a->paths[rule].len;
	*health = a->paths[rule].health;
	return a->paths[rule].line;
}

enum profile_health answer_health(const struct answer *a, int i)
{
	if (i < 0 || i >= a->n)
		i = 0;
	/* The stale line is a down line (and "down #starting" leaves health
	 * at its zero value, DOWN). */
	if (util_mono_us() - a->updated_us > a->stale_us)
		return PROFILE_HEALTH_DOWN;
	return a->slots[i].health;
}

int answer_lookup(const struct answer *a, const char *name)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->slots[i].profile.name, name))
			return i;
	return -1;
}

int answer_count(const struct answer *a)
{
	return a->n;
}

const struct profile *answer_profile(const struct answer *a, int i)
{
	return &a->slots[i].profile;
}

double answer_since(const struct answer *a, int i)
{
	return a->slots[i].since_s;
}

uint64_t answer_transitions(const struct answer *a)
{
	return a->transitions;
}
