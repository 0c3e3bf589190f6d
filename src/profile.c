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
	[PROFILE_RULE_LEADER] = "leader",
	[PROFILE_RULE_READ_ONLY_SYNC] = "read-only-sync",
	[PROFILE_RULE_HEALTH] = "health",
	[PROFILE_RULE_LIVENESS] = "liveness",
	[PROFILE_RULE_READINESS] = "readiness",
	[PROFILE_RULE_ENDPOINT] = "endpoint",
};

const char *const profile_streaming_names[PROFILE_STREAMING_COUNT] = {
	[PROFILE_STREAMING_REQUIRED] = "required",
	[PROFILE_STREAMING_IGNORED] = "ignored",
};

const char *const profile_wrong_names[PROFILE_WRONG_COUNT] = {
	[PROFILE_WRONG_DOWN] = "down",
	[PROFILE_WRONG_DRAIN] = "drain",
	[PROFILE_WRONG_MAINT] = "maint",
};

/* Patroni's own spellings of each rule's path (api.py matches paths), as a
 * -k endpoint (without the '/') and on the side port (with it). k: the -k
 * endpoint means the rule; the others stay endpoint profiles there, named
 * "default", as they always were. */
static const struct {
	const char *path;
	enum profile_rule rule;
	int k;
} profile_paths[] = {
	{ "", PROFILE_RULE_PRIMARY, 1 },          { "primary", PROFILE_RULE_PRIMARY, 1 },
	{ "master", PROFILE_RULE_PRIMARY, 1 },    { "read-write", PROFILE_RULE_PRIMARY, 1 },
	{ "replica", PROFILE_RULE_REPLICA, 1 },   { "read-only", PROFILE_RULE_READ_ONLY, 1 },
	{ "sync", PROFILE_RULE_SYNC, 1 },         { "synchronous", PROFILE_RULE_SYNC, 1 },
	{ "async", PROFILE_RULE_ASYNC, 1 },       { "asynchronous", PROFILE_RULE_ASYNC, 1 },
	{ "standby-leader", PROFILE_RULE_STANDBY_LEADER, 1 },
	{ "standby_leader", PROFILE_RULE_STANDBY_LEADER, 1 },
	{ "quorum", PROFILE_RULE_QUORUM, 1 },
	{ "read-only-quorum", PROFILE_RULE_READ_ONLY_QUORUM, 1 },
	{ "leader", PROFILE_RULE_LEADER, 0 },
	{ "read-only-sync", PROFILE_RULE_READ_ONLY_SYNC, 0 },
	{ "read-only-synchronous", PROFILE_RULE_READ_ONLY_SYNC, 0 },
	{ "health", PROFILE_RULE_HEALTH, 0 },     { "liveness", PROFILE_RULE_LIVENESS, 0 },
	{ "readiness", PROFILE_RULE_READINESS, 0 },
};

int profile_rule_for_path(const char *path)
{
	if (path[0] != '/')
		return -1;
	for (size_t i = 0; i < sizeof(profile_paths) / sizeof(profile_paths[0]); i++)
		if (!strcmp(path + 1, profile_paths[i].path))
			return (int)profile_paths[i].rule;
	return -1;
}

/* Up to 40 characters of s for a message: anything but printable ASCII
 * becomes '?', so a request's bytes cannot break the message's line. */
static const char *profile_printable(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i < 40 && i + 1 < size; i++)
		buf[i] = s[i] > ' ' && s[i] < 127 ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

int profile_parse_query(enum profile_rule rule, char *query, struct profile_query *q,
			char *err, size_t errlen)
{
	int lag_used = rule == PROFILE_RULE_REPLICA || rule == PROFILE_RULE_READ_ONLY ||
		       rule == PROFILE_RULE_SYNC || rule == PROFILE_RULE_ASYNC ||
		       rule == PROFILE_RULE_READ_ONLY_SYNC || rule == PROFILE_RULE_QUORUM ||
		       rule == PROFILE_RULE_READ_ONLY_QUORUM;
	int tags_used = lag_used || rule == PROFILE_RULE_HEALTH;
	char *save = NULL, why[80], shown[48];

	q->max_lag = -1;
	for (char *tok = query ? strtok_r(query, "&", &save) : NULL; tok;
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		const char *val = eq ? eq + 1 : "";

		if (eq)
			*eq = '\0';
		if (!strcmp(tok, "lag") && lag_used) {
			if (profile_parse_bytes(val, &q->max_lag, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "lag=%s: %s",
					 profile_printable(val, shown, sizeof(shown)), why);
				return -1;
			}
		} else if (!strncmp(tok, "tag_", 4) && tags_used) {
			snprintf(err, errlen,
				 "%s: happac does not see this node's Patroni tags; "
				 "check tags against Patroni itself",
				 profile_printable(tok, shown, sizeof(shown)));
			return -1;
		} else if (!strcmp(tok, "replication_state")) {
			snprintf(err, errlen,
				 "replication_state: happac does not see Patroni's "
				 "replication state; check it against Patroni itself");
			return -1;
		}
	}
	return 0;
}

void profile_for_rule(enum profile_rule rule, struct profile *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", profile_rule_names[rule]);
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", profile_rule_names[rule]);
	p->rule = rule;
}

int profile_builtin(const char *name, struct profile *p)
{
	for (int r = 0; r < PROFILE_RULE_ENDPOINT; r++)
		if (!strcmp(name, profile_rule_names[r])) {
			profile_for_rule((enum profile_rule)r, p);
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
		if (profile_paths[i].k && strlen(profile_paths[i].path) == n &&
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
	case PROFILE_RULE_LEADER:
	case PROFILE_RULE_READ_ONLY_SYNC:
	case PROFILE_RULE_HEALTH:
	case PROFILE_RULE_LIVENESS:
	case PROFILE_RULE_READINESS:
		return -1;
	case PROFILE_RULE_ENDPOINT: /* not a rule's spelling (profile_paths):
				       leader, health, ... accept either */
	case PROFILE_RULE_COUNT:
		break;
	}
	return -1;
}

int profile_parse_bytes(const char *s, int64_t *bytes, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		int64_t scale;
	} units[] = { { "", 1 }, { "B", 1 }, { "kB", 1024 }, { "KB", 1024 },
		      { "MB", 1024 * 1024 }, { "GB", 1024LL * 1024 * 1024 },
		      { "TB", 1024LL * 1024 * 1024 * 1024 } };
	int64_t v = 0;
	const char *p = s;
	int big = 0;

	if (*p == '-' && isdigit((unsigned char)p[1])) {
		snprintf(err, errlen, "a size cannot be negative");
		return -1;
	}
	if (!isdigit((unsigned char)*p)) {
		snprintf(err, errlen, "not a size (e.g. 1MB, 512kB)");
		return -1;
	}
	/* Every step stays below PROFILE_BYTES_MAX * 10 + 9: no overflow
	 * however many digits follow. */
	for (; isdigit((unsigned char)*p); p++) {
		if (v > PROFILE_BYTES_MAX)
			big = 1;
		else
			v = v * 10 + (*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit))
			continue;
		/* Compare before multiplying: v * scale must not overflow. */
		if (big || v > PROFILE_BYTES_MAX / units[i].scale) {
			snprintf(err, errlen, "too large (at most %lldTB)",
				 (long long)(PROFILE_BYTES_MAX >> 40));
			return -1;
		}
		*bytes = v * units[i].scale;
		return 0;
	}
	snprintf(err, errlen, "not a size (e.g. 1MB, 512kB; units B, kB, MB, GB, TB)");
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

/* The leader lock, as far as this round shows it: what Patroni's /primary
 * and /standby-leader would answer (1: 200, 0: 503, -1: not known). The
 * status JSON cannot say it: its role comes from pg_is_in_recovery(), so an
 * old primary that lost the lock (isolated, or its Patroni stuck) still
 * reads "master"/"running", and cluster_unlocked is false while another
 * node holds the lock. Patroni answers /primary 200 only while this node
 * holds the lock (api.py do_GET: ha.is_leader()). The evidence is the code
 * of the -k endpoint when that is /primary or /standby-leader, else the
 * OPTIONS /leader probe (200 exactly while is_leader(); the rules add the
 * role from the JSON, as Patroni does). */
struct profile_lock {
	int primary;
	int standby_leader;
};

static int profile_answered(const struct verdict_probe *vp)
{
	return vp && vp->report && (vp->report->result == PROBE_OK ||
				    vp->report->result == PROBE_HTTP_STATUS);
}

static void profile_lock_evidence(const struct profile *profiles,
				  const struct profile_inputs *in, struct profile_lock *lk)
{
	const struct profile *k = &profiles[in->patroni_code_profile];

	lk->primary = lk->standby_leader = -1;
	if (profile_answered(in->leader)) {
		int leader = in->leader->report->result == PROBE_OK;

		lk->primary = lk->standby_leader = leader;
	}
	if (profile_answered(in->patroni)) {
		int ok = in->patroni->report->result == PROBE_OK;

		if (k->rule == PROFILE_RULE_PRIMARY)
			lk->primary = ok;
		else if (k->rule == PROFILE_RULE_STANDBY_LEADER)
			lk->standby_leader = ok;
	}
}

int profile_needs_leader_probe(const struct profile *profiles, int n)
{
	int k_primary = profiles[0].rule == PROFILE_RULE_PRIMARY;
	int k_standby = profiles[0].rule == PROFILE_RULE_STANDBY_LEADER;

	for (int i = 1; i < n; i++)
		switch (profiles[i].rule) {
		case PROFILE_RULE_PRIMARY:
			if (!k_primary)
				return 1;
			break;
		case PROFILE_RULE_STANDBY_LEADER:
			if (!k_standby)
				return 1;
			break;
		case PROFILE_RULE_READ_ONLY:
		case PROFILE_RULE_READ_ONLY_QUORUM:
		case PROFILE_RULE_LEADER:
		case PROFILE_RULE_READ_ONLY_SYNC:
			/* Either half of the rule is enough evidence for the
			 * cluster kind this node is in: a -k primary in a
			 * standby cluster is down anyway. */
			if (!k_primary && !k_standby)
				return 1;
			break;
		default:
			break;
		}
	return 0;
}

/* For the #reason when the role is right but the lock is not shown. */
static const char *profile_lock_word(const struct patroni_json *j,
				     const struct profile_lock *lk)
{
	int held = j->role == PATRONI_JSON_ROLE_PRIMARY ? lk->primary : lk->standby_leader;

	return held == 0 ? ", no leader lock" : ", leader lock unknown";
}

/* Patroni's decision for a rule, from the node's status JSON (api.py
 * do_GET) and, for the rules that need it, the leader lock. Sets *no_lock
 * when the role is right but the lock is not shown to be held. */
static int profile_rule_ok(enum profile_rule rule, const struct patroni_json *j,
			   const struct profile_lock *lk, int *no_lock)
{
	/* The lock is the evidence's (lk), as for Patroni's own /primary
	 * (is_leader()): the JSON's cluster_unlocked is this node's DCS view,
	 * which a DCS outage empties while Patroni still holds the lead (until
	 * its key would expire, and on in failsafe mode). */
	int primary_role = j->role == PATRONI_JSON_ROLE_PRIMARY && j->running;
	int standby_role = j->role == PATRONI_JSON_ROLE_STANDBY_LEADER && j->running;
	int primary = primary_role && lk->primary == 1;
	int standby_leader = standby_role && lk->standby_leader == 1;
	int replica = j->role == PATRONI_JSON_ROLE_REPLICA && j->running &&
		      !j->noloadbalance;
	int ok = 0;

	switch (rule) {
	case PROFILE_RULE_PRIMARY:
		ok = primary;
		*no_lock = primary_role && !ok;
		break;
	case PROFILE_RULE_REPLICA:
		ok = replica;
		break;
	case PROFILE_RULE_READ_ONLY:
		ok = primary || standby_leader || replica;
		*no_lock = (primary_role || standby_role) && !ok;
		break;
	case PROFILE_RULE_SYNC:
		ok = replica && j->sync_standby;
		break;
	case PROFILE_RULE_ASYNC:
		/* Patroni 4: a quorum standby is not asynchronous either. */
		ok = replica && !j->sync_standby && !j->quorum_standby;
		break;
	case PROFILE_RULE_STANDBY_LEADER:
		ok = standby_leader;
		*no_lock = standby_role && !ok;
		break;
	case PROFILE_RULE_QUORUM:
		ok = replica && j->quorum_standby;
		break;
	case PROFILE_RULE_READ_ONLY_QUORUM:
		ok = primary || standby_leader || (replica && j->quorum_standby);
		*no_lock = (primary_role || standby_role) && !ok;
		break;
	case PROFILE_RULE_LEADER:
		ok = primary || standby_leader;
		*no_lock = (primary_role || standby_role) && !ok;
		break;
	case PROFILE_RULE_READ_ONLY_SYNC:
		ok = primary || standby_leader || (replica && j->sync_standby);
		*no_lock = (primary_role || standby_role) && !ok;
		break;
	case PROFILE_RULE_HEALTH:
		ok = j->running;
		break;
	case PROFILE_RULE_LIVENESS:
		/* Patroni answered this round; its heartbeat age is not in
		 * the JSON. */
		ok = 1;
		break;
	case PROFILE_RULE_READINESS:
		ok = j->running || primary || standby_leader;
		break;
	case PROFILE_RULE_ENDPOINT:
	case PROFILE_RULE_COUNT:
		break;
	}
	return ok;
}

/* Weight for a lag between full (100%) and cut (1%), in 5% steps so that
 * small lag changes do not rewrite HAProxy's weight every second. */
static int profile_weight(int64_t full, int64_t cut, int64_t lag)
{
	int64_t span = cut - full;
	int w;

	if (lag <= full || span <= 0)
		return 100;
	w = (int)(100 - (99 * (lag - full)) / span);
	w = w / 5 * 5;
	return w < 1 ? 1 : w;
}

static void profile_human_ms(int64_t ms, char *buf, size_t len)
{
	if (ms >= 1000)
		snprintf(buf, len, "%lld.%llds", (long long)(ms / 1000),
			 (long long)(ms % 1000 / 100));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
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

/* What profile_evaluate() works out before it renders the line. */
struct profile_eval {
	char reason[VERDICT_REASON_MAX];      /* after '#'; "" for none */
	char role_reason[VERDICT_REASON_MAX]; /* why the role is not right */
	const char *admin;                    /* drain, maint, ready or NULL */
	int up, own_admin, lag_w;
};

/* The word an operator's override puts on the line. */
static const char *const profile_admin_words[] = {
	[PROFILE_ADMIN_NONE] = NULL,
	[PROFILE_ADMIN_DRAIN] = "drain",
	[PROFILE_ADMIN_MAINT] = "maint",
};

/* For the #reason of a sync or quorum rule on a replica whose Patroni has
 * no view of the cluster (no leader, or the DCS unreachable, where failsafe
 * mode keeps the primary): the sync state lives in the DCS, so Patroni
 * shows none then (its /sync and /quorum say 503), and neither does happac
 * (README: DCS outage). */
static const char *profile_no_sync_view(enum profile_rule rule, const struct patroni_json *j)
{
	int sync_rule = rule == PROFILE_RULE_SYNC || rule == PROFILE_RULE_QUORUM ||
			rule == PROFILE_RULE_READ_ONLY_SYNC ||
			rule == PROFILE_RULE_READ_ONLY_QUORUM;

	return sync_rule && j->role == PATRONI_JSON_ROLE_REPLICA && j->cluster_unlocked ?
		       ", sync state unknown: no leader or no DCS" : "";
}

/* 1. What Patroni says about this node for profile i, held back while the
 * role is new: 1 right role, 0 not (e->role_reason says why), -1 no usable
 * answer (e->reason says why). */
static int profile_role(const struct profile *profiles, int i, struct profile_state *st,
			const struct profile_inputs *in, struct profile_eval *e)
{
	const struct profile *p = &profiles[i];
	const struct probe_report *pat = in->patroni->report;
	int role_ok;

	if (in->patroni_stopping) {
		/* Before PostgreSQL stops: the node leaves before its clients
		 * see the shutdown, whatever this round's answer was. */
		st->role_ok_since_us = 0;
		snprintf(e->reason, sizeof(e->reason), "patroni: stopping");
		return -1;
	}
	if (!pat || (pat->result != PROBE_OK && pat->result != PROBE_HTTP_STATUS)) {
		st->role_ok_since_us = 0;
		verdict_reason(in->patroni, in->timeout_ms, e->reason, sizeof(e->reason));
		return -1;
	}
	if (i == in->patroni_code_profile || p->rule == PROFILE_RULE_ENDPOINT) {
		/* Patroni answered for exactly this profile: its word is final. */
		role_ok = pat->result == PROBE_OK;
		if (!role_ok)
			verdict_reason(in->patroni, in->timeout_ms, e->role_reason,
				       sizeof(e->role_reason));
	} else if (!in->json) {
		snprintf(e->reason, sizeof(e->reason), "patroni %s: no status JSON",
			 in->patroni->target);
		return -1;
	} else {
		struct profile_lock lk;
		int no_lock = 0;

		profile_lock_evidence(profiles, in, &lk);
		role_ok = profile_rule_ok(p->rule, in->json, &lk, &no_lock);
		if (!role_ok)
			snprintf(e->role_reason, sizeof(e->role_reason),
				 "patroni: not %s (%s, %s%s%s)", profile_rule_names[p->rule],
				 profile_role_word(in->json),
				 in->json->state[0] ? in->json->state : "state unknown",
				 no_lock ? profile_lock_word(in->json, &lk) : "",
				 profile_no_sync_view(p->rule, in->json));
	}
	/* A role that just became right is held back for in->hold_us
	 * (interval + timeout + HAProxy's agent-inter, options_hold_ms()).
	 * On a switchover the old primary's Patroni says 503 no later than
	 * the new one says 200, but the old node's happac may keep its cached
	 * "up" for up to interval + timeout after that, and its HAProxy keeps
	 * the server UP until its next agent check: the hold makes sure the
	 * two are never UP together. Not on start-up (a restart of
	 * happac must not flap a healthy primary), not after a pure PgBouncer
	 * failure (Patroni's answer did not change). */
	if (!role_ok) {
		st->role_ok_since_us = 0;
		return 0;
	}
	if (!st->role_ok_since_us) {
		st->role_ok_since_us = in->first_round ? in->now_us - in->hold_us : in->now_us;
		st->hold_over = 0;
	}
	/* Evidence ends it early: every other member's agent said down in an
	 * ask that began after the hold did, so none of them says up now. */
	if (in->peers_clear_us && in->peers_clear_us[i] > st->role_ok_since_us)
		st->hold_over = 1;
	if (!st->hold_over && in->now_us - st->role_ok_since_us < in->hold_us) {
		snprintf(e->role_reason, sizeof(e->role_reason),
			 "patroni: %s role is new, settling",
			 p->rule == PROFILE_RULE_ENDPOINT ? p->endpoint :
							    profile_rule_names[p->rule]);
		return 0;
	}
	st->hold_over = 1;
	return 1;
}

int64_t profile_lag_hold_us(const struct profile *p)
{
	return (p->lag_hold_set ? p->lag_hold_ms : PROFILE_LAG_HOLD_MS) * 1000;
}

/* 3. Replication lag, in bytes and in time (each where configured and
 * known): weights, and a cut with hysteresis and hold-down. 0, or -1 when
 * the lag cuts the node off (e->reason says so). */
static int profile_lag(const struct profile *p, struct profile_state *st,
		       const struct profile_inputs *in, struct profile_eval *e)
{
	const struct probe_report *pg = in->pg->report;
	int64_t t = -1, b = p->lag_cut > 0 ? in->lag_bytes : -1;
	int over = 0, under = 1, wb = 100, wt = 100;
	char lag[24], cut[24];

	if (p->lag_cut_ms > 0 && pg && pg->result == PROBE_OK)
		t = replica_time_lag(&st->age, pg->replay_age_ms, in->now_us);
	if (b < 0 && t < 0)
		return 0;
	if (b >= 0) {
		over |= b >= p->lag_cut;
		under &= b <= p->lag_full;
		wb = profile_weight(p->lag_full, p->lag_cut, b);
	}
	if (t >= 0) {
		over |= t >= p->lag_cut_ms;
		under &= t <= p->lag_full_ms;
		wt = profile_weight(p->lag_full_ms, p->lag_cut_ms, t);
	}
	if (replica_hold_step(&st->lag, over, under, in->now_us, profile_lag_hold_us(p))) {
		/* Name the measure that is furthest over its own mark. */
		if (b >= 0 && (t < 0 || wb <= wt)) {
			profile_human_bytes(b, lag, sizeof(lag));
			profile_human_bytes(p->lag_cut, cut, sizeof(cut));
		} else {
			profile_human_ms(t, lag, sizeof(lag));
			profile_human_ms(p->lag_cut_ms, cut, sizeof(cut));
		}
		snprintf(e->reason, sizeof(e->reason), "replication lag %s (cut at %s)", lag,
			 cut);
		return -1;
	}
	e->lag_w = wb < wt ? wb : wt;
	return 0;
}

int profile_rule_streams(enum profile_rule rule)
{
	switch (rule) {
	case PROFILE_RULE_REPLICA:
	case PROFILE_RULE_READ_ONLY:
	case PROFILE_RULE_SYNC:
	case PROFILE_RULE_ASYNC:
	case PROFILE_RULE_STANDBY_LEADER:
	case PROFILE_RULE_QUORUM:
	case PROFILE_RULE_READ_ONLY_QUORUM:
	case PROFILE_RULE_READ_ONLY_SYNC:
		return 1;
	default:
		return 0;
	}
}

/* 2b. streaming = required: a node in recovery that does not stream is
 * down at once, and back only after streaming for the hold (a walreceiver
 * that reconnects and drops again must not flap it: patroni#3491). Where
 * nothing can tell, nothing is checked (replica_watch logs and shows it).
 * 0, or -1 with e->reason. */
static int profile_streaming(const struct profile *p, struct profile_state *st,
			     const struct profile_inputs *in, struct profile_eval *e)
{
	struct replica_facts f;
	const char *who;

	if (p->streaming != PROFILE_STREAMING_REQUIRED || !profile_rule_streams(p->rule))
		return 0;
	replica_streaming(in->json, in->pg->report, &f);
	who = in->json && in->json->role == PATRONI_JSON_ROLE_STANDBY_LEADER ?
		      "standby leader" : "replica";
	switch (f.streaming) {
	case REPLICA_STREAMING_NO:
		st->stream_ok_since_us = -1;
		snprintf(e->reason, sizeof(e->reason), "%s not streaming (%s)", who, f.why);
		return -1;
	case REPLICA_STREAMING_YES:
		if (st->stream_ok_since_us == -1)
			st->stream_ok_since_us = in->now_us;
		if (st->stream_ok_since_us > 0 &&
		    in->now_us - st->stream_ok_since_us < in->hold_us) {
			snprintf(e->reason, sizeof(e->reason),
				 "%s streaming again, settling", who);
			return -1;
		}
		st->stream_ok_since_us = 0;
		return 0;
	case REPLICA_STREAMING_UNKNOWN:
		if (st->stream_ok_since_us == -1) {
			snprintf(e->reason, sizeof(e->reason),
				 "%s not streaming (no word since: %s)", who, f.why);
			return -1;
		}
		return 0;
	case REPLICA_STREAMING_NA:
	case REPLICA_STREAMING_COUNT:
		break;
	}
	st->stream_ok_since_us = 0;
	return 0;
}

/* 2. and 3.: with the role known, PgBouncer, the role it really reaches,
 * and the lag decide up or down. */
static void profile_judge(const struct profile *p, struct profile_state *st,
			  const struct profile_inputs *in, int role_ok, struct profile_eval *e)
{
	const struct probe_report *pg = in->pg->report;

	if (!role_ok && p->wrong == PROFILE_WRONG_DOWN) {
		snprintf(e->reason, sizeof(e->reason), "%s", e->role_reason);
		return;
	}
	if (in->pgb_down) {
		snprintf(e->reason, sizeof(e->reason), "%s", in->pgb_down);
		return;
	}
	if (in->pgb_drain) {
		/* A long pause: alive, keep the sessions, send no new ones. */
		e->up = 1;
		e->own_admin = 1;
		e->admin = "drain";
		snprintf(e->reason, sizeof(e->reason), "%s", in->pgb_drain);
		return;
	}
	if (!pg || pg->result != PROBE_OK) {
		verdict_reason(in->pg, in->timeout_ms, e->reason, sizeof(e->reason));
		return;
	}
	if (!role_ok) {
		/* Healthy, wrong role: stay up, out of rotation, on dashboards
		 * as DRAIN or MAINT instead of DOWN. */
		e->up = 1;
		e->own_admin = 1;
		e->admin = profile_wrong_names[p->wrong];
		snprintf(e->reason, sizeof(e->reason), "%s", e->role_reason);
		return;
	}
	if (pg->in_recovery >= 0) {
		int want = profile_expect_recovery(p);

		if (want >= 0 && pg->in_recovery != want) {
			snprintf(e->reason, sizeof(e->reason), "role mismatch: %s reaches a %s",
				 in->pg->name, pg->in_recovery ? "replica" : "primary");
			return;
		}
	}
	if (profile_streaming(p, st, in, e) == 0 && profile_lag(p, st, in, e) == 0)
		e->up = 1;
}

/* The line: up/down, the admin word (override, own, or the `ready` that
 * clears one), the weight, the reason. */
static enum profile_health profile_render(struct profile_state *st,
					  const struct profile_inputs *in,
					  struct profile_eval *e, char *line, size_t size,
					  size_t *len)
{
	char wbuf[8] = "";
	int n;

	/* The operator's override wins over the profile's own admin word. */
	if (in->admin != PROFILE_ADMIN_NONE) {
		e->admin = profile_admin_words[in->admin];
		e->own_admin = 1;
	}
	if (e->own_admin) {
		st->admin_said = 1;
		st->ready_until_us = 0;
	} else if (st->admin_said) {
		/* We set DRAIN/MAINT in HAProxy: clear it ourselves, for long
		 * enough that every HAProxy checking us hears it, then never
		 * again (ready also undoes an operator's manual state). */
		st->admin_said = 0;
		st->ready_until_us = in->now_us + (int64_t)in->ready_window_ms * 1000;
	}
	if (!e->admin && st->ready_until_us && in->now_us < st->ready_until_us)
		e->admin = "ready";
	else if (st->ready_until_us && in->now_us >= st->ready_until_us)
		st->ready_until_us = 0;
	/* Weight: from lag, capped by an operator's ramp. HAProxy keeps the
	 * last weight an agent said, so once we said one we always say one. */
	if (e->up) {
		int w = e->lag_w;

		if (in->ramp_weight > 0)
			w = in->ramp_weight < (w ? w : 100) ? in->ramp_weight : (w ? w : 100);
		if (!w && st->weight)
			w = 100;
		if (w) {
			st->weight = w;
			snprintf(wbuf, sizeof(wbuf), " %d%%", w);
		}
	}
	n = snprintf(line, size, "%s%s%s%s%s%s\n", e->up ? "up" : "down",
		     e->admin ? " " : "", e->admin ? e->admin : "", wbuf,
		     e->reason[0] ? " #" : "", e->reason);
	*len = n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
	if (!e->up)
		return PROFILE_HEALTH_DOWN;
	/* own_admin: this line says drain or maint, which HAProxy obeys by
	 * taking the server out of rotation. */
	return e->own_admin ? PROFILE_HEALTH_OUT : PROFILE_HEALTH_PASSING;
}

enum profile_health profile_evaluate(const struct profile *profiles, int i,
				     struct profile_state *st,
				     const struct profile_inputs *in, char *line,
				     size_t size, size_t *len)
{
	struct profile_eval e;
	int role_ok;

	memset(&e, 0, sizeof(e));
	role_ok = profile_role(profiles, i, st, in, &e);
	if (role_ok >= 0)
		profile_judge(&profiles[i], st, in, role_ok, &e);
	return profile_render(st, in, &e, line, size, len);
}
