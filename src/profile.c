/* profile.c - built-in profiles and the per-profile verdict. */
#include "profile.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *const profile_rule_names[PROFILE_RULE_COUNT] = {
	[PROFILE_RULE_PRIMARY] = "primary",
	[PROFILE_RULE_REPLICA] = "replica",
	[PROFILE_RULE_READ_ONLY] = "read-only",
	[PROFILE_RULE_SYNC] = "sync",
	[PROFILE_RULE_ASYNC] = "async",
	[PROFILE_RULE_STANDBY_LEADER] = "standby-leader",
	[PROFILE_RULE_QUORUM] = "quorum",
	[PROFILE_RULE_READ_ONLY_QUORUM] = "read-only-quorum",
	[PROFILE_RULE_ENDPOINT] = "endpoint",
};

const char *const profile_wrong_names[PROFILE_WRONG_COUNT] = {
	[PROFILE_WRONG_DOWN] = "down",
	[PROFILE_WRONG_DRAIN] = "drain",
	[PROFILE_WRONG_MAINT] = "maint",
};

/* Patroni's own spellings of each rule's endpoint (api.py matches paths). */
static const struct {
	const char *path;
	enum profile_rule rule;
} profile_paths[] = {
	{ "", PROFILE_RULE_PRIMARY },       { "primary", PROFILE_RULE_PRIMARY },
	{ "master", PROFILE_RULE_PRIMARY }, { "read-write", PROFILE_RULE_PRIMARY },
	{ "replica", PROFILE_RULE_REPLICA }, { "read-only", PROFILE_RULE_READ_ONLY },
	{ "sync", PROFILE_RULE_SYNC },      { "synchronous", PROFILE_RULE_SYNC },
	{ "async", PROFILE_RULE_ASYNC },    { "asynchronous", PROFILE_RULE_ASYNC },
	{ "standby-leader", PROFILE_RULE_STANDBY_LEADER },
	{ "standby_leader", PROFILE_RULE_STANDBY_LEADER },
	{ "quorum", PROFILE_RULE_QUORUM },
	{ "read-only-quorum", PROFILE_RULE_READ_ONLY_QUORUM },
};

int profile_builtin(const char *name, struct profile *p)
{
	for (int r = 0; r < PROFILE_RULE_ENDPOINT; r++)
		if (!strcmp(name, profile_rule_names[r])) {
			memset(p, 0, sizeof(*p));
			snprintf(p->name, sizeof(p->name), "%s", name);
			snprintf(p->endpoint, sizeof(p->endpoint), "%s", name);
			p->rule = (enum profile_rule)r;
			return 0;
		}
	return -1;
}

void profile_from_endpoint(const char *endpoint, struct profile *p)
{
	size_t n;

	while (*endpoint == '/')
		endpoint++;
	n = strcspn(endpoint, "?");
	memset(p, 0, sizeof(*p));
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", endpoint);
	p->rule = PROFILE_RULE_ENDPOINT;
	for (size_t i = 0; i < sizeof(profile_paths) / sizeof(profile_paths[0]); i++)
		if (strlen(profile_paths[i].path) == n &&
		    !strncmp(endpoint, profile_paths[i].path, n)) {
			p->rule = profile_paths[i].rule;
			break;
		}
	snprintf(p->name, sizeof(p->name), "%s",
		 p->rule == PROFILE_RULE_ENDPOINT ? "default" : profile_rule_names[p->rule]);
}

int profile_expect_recovery(const struct profile *p)
{
	switch (p->rule) {
	case PROFILE_RULE_PRIMARY:
		return 0;
	case PROFILE_RULE_REPLICA:
	case PROFILE_RULE_SYNC:
	case PROFILE_RULE_ASYNC:
	case PROFILE_RULE_STANDBY_LEADER:
	case PROFILE_RULE_QUORUM:
		return 1;
	case PROFILE_RULE_READ_ONLY:
	case PROFILE_RULE_READ_ONLY_QUORUM:
		return -1;
	case PROFILE_RULE_ENDPOINT:
		return verdict_expect_recovery(p->endpoint);
	case PROFILE_RULE_COUNT:
		break;
	}
	return -1;
}

int profile_parse_bytes(const char *s, int64_t *bytes)
{
	static const struct {
		const char *unit;
		int64_t scale;
	} units[] = { { "", 1 }, { "B", 1 }, { "kB", 1024 }, { "KB", 1024 },
		      { "MB", 1024 * 1024 }, { "GB", 1024LL * 1024 * 1024 },
		      { "TB", 1024LL * 1024 * 1024 * 1024 } };
	int64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p - '0');
		if (v > (1LL << 40))
			return -1;
		p++;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(p, units[i].unit)) {
			*bytes = v * units[i].scale;
			return 0;
		}
	return -1;
}

static const char *profile_role_word(const struct patroni_json *j)
{
	switch (j->role) {
	case PATRONI_JSON_ROLE_PRIMARY:
		return "primary";
	case PATRONI_JSON_ROLE_REPLICA:
		return "replica";
	case PATRONI_JSON_ROLE_STANDBY_LEADER:
		return "standby leader";
	case PATRONI_JSON_ROLE_OTHER:
		return "other role";
	case PATRONI_JSON_ROLE_UNKNOWN:
		break;
	}
	return "unknown role";
}

/* Patroni's decision for a rule, from the node's status JSON (api.py
 * do_GET). The leader lock itself is not in the JSON: a running primary
 * with cluster_unlocked false stands for it. */
static int profile_rule_ok(enum profile_rule rule, const struct patroni_json *j)
{
	int primary = j->role == PATRONI_JSON_ROLE_PRIMARY && j->running &&
		      !j->cluster_unlocked;
	int standby_leader = j->role == PATRONI_JSON_ROLE_STANDBY_LEADER && j->running;
	int replica = j->role == PATRONI_JSON_ROLE_REPLICA && j->running &&
		      !j->noloadbalance;

	switch (rule) {
	case PROFILE_RULE_PRIMARY:
		return primary;
	case PROFILE_RULE_REPLICA:
		return replica;
	case PROFILE_RULE_READ_ONLY:
		return primary || standby_leader || replica;
	case PROFILE_RULE_SYNC:
		return replica && j->sync_standby;
	case PROFILE_RULE_ASYNC:
		/* Patroni 4: a quorum standby is not asynchronous either. */
		return replica && !j->sync_standby && !j->quorum_standby;
	case PROFILE_RULE_STANDBY_LEADER:
		return standby_leader;
	case PROFILE_RULE_QUORUM:
		return replica && j->quorum_standby;
	case PROFILE_RULE_READ_ONLY_QUORUM:
		return primary || standby_leader || (replica && j->quorum_standby);
	case PROFILE_RULE_ENDPOINT:
	case PROFILE_RULE_COUNT:
		break;
	}
	return 0;
}

/* Weight for a lag between lag_full (100%) and lag_cut (1%), in 5% steps so
 * that small lag changes do not rewrite HAProxy's weight every second. */
static int profile_weight(const struct profile *p, int64_t lag)
{
	int64_t span = p->lag_cut - p->lag_full;
	int w;

	if (lag <= p->lag_full || span <= 0)
		return 100;
	w = (int)(100 - (99 * (lag - p->lag_full)) / span);
	w = w / 5 * 5;
	return w < 1 ? 1 : w;
}

static void profile_human_bytes(int64_t b, char *buf, size_t len)
{
	if (b >= 1024 * 1024)
		snprintf(buf, len, "%lldMB", (long long)(b / (1024 * 1024)));
	else if (b >= 1024)
		snprintf(buf, len, "%lldkB", (long long)(b / 1024));
	else
		snprintf(buf, len, "%lldB", (long long)b);
}

int profile_evaluate(const struct profile *profiles, int i, struct profile_state *st,
		     const struct profile_inputs *in, char *line, size_t size,
		     size_t *len)
{
	const struct profile *p = &profiles[i];
	const struct probe_report *pat = in->patroni->report;
	const struct probe_report *pg = in->pg->report;
	char reason[VERDICT_REASON_MAX] = "", role_reason[VERDICT_REASON_MAX] = "";
	char wbuf[8] = "";
	const char *admin = NULL;
	int up = 0, role_ok = 0, own_admin = 0, lag_w = 0, w = 0, n;

	/* 1. What Patroni says about this node for this profile. */
	if (!pat || (pat->result != PROBE_OK && pat->result != PROBE_HTTP_STATUS)) {
		st->role_ok_since_us = 0;
		verdict_reason(in->patroni, in->timeout_ms, reason, sizeof(reason));
		goto render;
	}
	if (i == in->patroni_code_profile || p->rule == PROFILE_RULE_ENDPOINT) {
		/* Patroni answered for exactly this profile: its word is final. */
		role_ok = pat->result == PROBE_OK;
		if (!role_ok)
			verdict_reason(in->patroni, in->timeout_ms, role_reason,
				       sizeof(role_reason));
	} else if (!in->json) {
		snprintf(reason, sizeof(reason), "patroni %s: no status JSON",
			 in->patroni->target);
		goto render;
	} else {
		role_ok = profile_rule_ok(p->rule, in->json);
		if (!role_ok)
			snprintf(role_reason, sizeof(role_reason), "patroni: not %s (%s, %s)",
				 profile_rule_names[p->rule], profile_role_word(in->json),
				 in->json->state[0] ? in->json->state : "state unknown");
	}
	/* A role that just became right is held back for interval + timeout.
	 * On a switchover the old primary's Patroni says 503 no later than
	 * the new one says 200, but the old node's happac may keep its cached
	 * "up" for up to interval + timeout after that: the hold makes sure
	 * the two never say "up" together. Not on start-up (a restart of
	 * happac must not flap a healthy primary), not after a pure PgBouncer
	 * failure (Patroni's answer did not change). */
	if (role_ok) {
		if (!st->role_ok_since_us)
			st->role_ok_since_us = in->first_round ? in->now_us - in->hold_us
							       : in->now_us;
		if (in->now_us - st->role_ok_since_us < in->hold_us) {
			role_ok = 0;
			snprintf(role_reason, sizeof(role_reason),
				 "patroni: %s role is new, settling",
				 p->rule == PROFILE_RULE_ENDPOINT ? p->endpoint
								  : profile_rule_names[p->rule]);
		}
	} else {
		st->role_ok_since_us = 0;
	}
	if (!role_ok && p->wrong == PROFILE_WRONG_DOWN) {
		snprintf(reason, sizeof(reason), "%s", role_reason);
		goto render;
	}

	/* 2. PgBouncer, and the role it really reaches. */
	if (!pg || pg->result != PROBE_OK) {
		verdict_reason(in->pg, in->timeout_ms, reason, sizeof(reason));
		goto render;
	}
	if (!role_ok) {
		/* Healthy, wrong role: stay up, out of rotation, on dashboards
		 * as DRAIN or MAINT instead of DOWN. */
		up = 1;
		own_admin = 1;
		admin = profile_wrong_names[p->wrong];
		snprintf(reason, sizeof(reason), "%s", role_reason);
		goto render;
	}
	if (pg->in_recovery >= 0) {
		int want = profile_expect_recovery(p);

		if (want >= 0 && pg->in_recovery != want) {
			snprintf(reason, sizeof(reason), "role mismatch: %s reaches a %s",
				 in->pg->name, pg->in_recovery ? "replica" : "primary");
			goto render;
		}
	}

	/* 3. Replication lag: weights, and a cut with hysteresis. */
	if (p->lag_cut > 0 && in->lag_bytes >= 0) {
		char lag[24], cut[24];

		if (st->lag_cut && in->lag_bytes <= p->lag_full)
			st->lag_cut = 0;
		else if (!st->lag_cut && in->lag_bytes >= p->lag_cut)
			st->lag_cut = 1;
		if (st->lag_cut) {
			profile_human_bytes(in->lag_bytes, lag, sizeof(lag));
			profile_human_bytes(p->lag_cut, cut, sizeof(cut));
			snprintf(reason, sizeof(reason), "replication lag %s (cut at %s)",
				 lag, cut);
			goto render;
		}
		lag_w = profile_weight(p, in->lag_bytes);
	}
	up = 1;

render:
	/* The operator's override wins over the profile's own admin word. */
	if (in->admin == PROFILE_ADMIN_DRAIN)
		admin = "drain", own_admin = 1;
	else if (in->admin == PROFILE_ADMIN_MAINT)
		admin = "maint", own_admin = 1;
	if (own_admin) {
		st->admin_said = 1;
		st->ready_until_us = 0;
	} else if (st->admin_said) {
		/* We set DRAIN/MAINT in HAProxy: clear it ourselves, for long
		 * enough that every HAProxy checking us hears it, then never
		 * again (ready also undoes an operator's manual state). */
		st->admin_said = 0;
		st->ready_until_us = in->now_us + (int64_t)in->ready_window_ms * 1000;
	}
	if (!admin && st->ready_until_us && in->now_us < st->ready_until_us)
		admin = "ready";
	else if (st->ready_until_us && in->now_us >= st->ready_until_us)
		st->ready_until_us = 0;
	/* Weight: from lag, capped by an operator's ramp. HAProxy keeps the
	 * last weight an agent said, so once we said one we always say one. */
	if (up) {
		w = lag_w;
		if (in->ramp_weight > 0)
			w = in->ramp_weight < (w ? w : 100) ? in->ramp_weight : (w ? w : 100);
		if (!w && st->weight)
			w = 100;
		if (w) {
			st->weight = w;
			snprintf(wbuf, sizeof(wbuf), " %d%%", w);
		}
	}
	n = snprintf(line, size, "%s%s%s%s%s%s\n", up ? "up" : "down",
		     admin ? " " : "", admin ? admin : "", wbuf,
		     reason[0] ? " #" : "", reason);
	*len = n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
	return up;
}
