/* profile_config.c - profiles from the settings: sections, --profile, and
 * the effective list. */
#include "profile_config.h"

#include "options.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int profile_config_name_valid(const char *name, size_t n)
{
	if (n == 0 || n >= PROFILE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
			return 0;
	return 1;
}

static int profile_config_rule(struct profile *p, const char *value, char *err,
			       size_t errlen)
{
	struct profile b;

	if (profile_builtin(value, &b) != 0) {
		snprintf(err, errlen,
			 "rule: '%s' is not primary, replica, read-only, sync, "
			 "async, standby-leader, quorum, read-only-quorum, leader, "
			 "read-only-sync, health, liveness or readiness", value);
		return -1;
	}
	p->rule = b.rule;
	snprintf(p->endpoint, sizeof(p->endpoint), "%s", b.endpoint);
	return 0;
}

/* key = one of names[0..count-1]: its index into *out, or -1 with err
 * listing them ("down, drain or maint"). */
static int profile_config_word(const char *key, const char *value,
			       const char *const *names, int count, int *out, char *err,
			       size_t errlen)
{
	size_t n;

	for (int w = 0; w < count; w++)
		if (!strcmp(value, names[w])) {
			*out = w;
			return 0;
		}
	n = (size_t)snprintf(err, errlen, "%s: '%s' is not", key, value);
	for (int w = 0; w < count && n < errlen; w++)
		n += (size_t)snprintf(err + n, errlen - n, "%s%s",
				      !w ? " " : w + 1 < count ? ", " : " or ", names[w]);
	return -1;
}

/* lag-full-time, lag-cut-time, lag-hold: durations up to an hour. */
static int profile_config_time(struct profile *p, const char *key, const char *value,
			       char *err, size_t errlen)
{
	long ms;

	if (options_parse_duration(value, &ms) != 0 || ms > 3600000) {
		snprintf(err, errlen, "%s: '%s' is not a duration of at most 1h "
			 "(e.g. 500ms, 5s, 1m)", key, value);
		return -1;
	}
	if (!strcmp(key, "lag-hold")) {
		p->lag_hold_ms = ms;
		p->lag_hold_set = 1;
	} else if (!strcmp(key, "lag-full-time")) {
		p->lag_full_ms = ms;
	} else {
		p->lag_cut_ms = ms;
	}
	return 0;
}

int profile_config_key(struct profile *p, const char *key, const char *value,
		       char *err, size_t errlen)
{
	int word;

	if (!strcmp(key, "streaming") || !strcmp(key, "wrong-role")) {
		int streaming = key[0] == 's';

		if (profile_config_word(key, value,
					streaming ? profile_streaming_names : profile_wrong_names,
					streaming ? PROFILE_STREAMING_COUNT : PROFILE_WRONG_COUNT,
					&word, err, errlen) != 0)
			return -1;
		if (streaming)
			p->streaming = (enum profile_streaming)word;
		else
			p->wrong = (enum profile_wrong)word;
		return 0;
	}
	if (!strcmp(key, "lag-hold") || !strcmp(key, "lag-full-time") ||
	    !strcmp(key, "lag-cut-time"))
		return profile_config_time(p, key, value, err, errlen);
	if (!strcmp(key, "rule"))
		return profile_config_rule(p, value, err, errlen);
	if (!strcmp(key, "lag-full") || !strcmp(key, "lag-cut")) {
		int64_t b;
		char why[96];

		if (profile_parse_bytes(value, &b, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: '%s': %s", key, value, why);
			return -1;
		}
		if (key[4] == 'f')
			p->lag_full = b;
		else
			p->lag_cut = b;
		return 0;
	}
	if (!strcmp(key, "port")) {
		if (options_parse_port(value, &p->port) != 0) {
			snprintf(err, errlen, "port: '%s' is not 1-65535", value);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen,
		 "unknown profile setting '%s' (rule, wrong-role, streaming, lag-full, "
		 "lag-cut, lag-full-time, lag-cut-time, lag-hold, port)",
		 key);
	return -1;
}

int profile_config_section(struct profile *defs, int *count, const char *name,
			   char *err, size_t errlen)
{
	struct profile *p;
	size_t n = strlen(name);

	if (n == 0 || n >= PROFILE_NAME_MAX) {
		snprintf(err, errlen, "[profile]: a name of 1-%d characters is needed",
			 PROFILE_NAME_MAX - 1);
		return -1;
	}
	if (!profile_config_name_valid(name, n)) {
		snprintf(err, errlen,
			 "[profile %s]: bad profile name (letters, digits, '-' and '_' only)",
			 name);
		return -1;
	}
	for (int i = 0; i < *count; i++)
		if (!strcmp(defs[i].name, name))
			return i;
	if (*count >= PROFILE_MAX) {
		snprintf(err, errlen, "more than %d profiles", PROFILE_MAX);
		return -1;
	}
	p = &defs[*count];
	/* A section named after a built-in profile starts from it. */
	if (profile_builtin(name, p) != 0) {
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", name);
		p->rule = PROFILE_RULE_COUNT; /* must be given: checked later */
	}
	return (*count)++;
}

static struct profile *profile_config_find(const struct profile *list, int n,
					   const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i].name, name))
			return (struct profile *)&list[i];
	return NULL;
}

/* --profile NAME[:PORT] onto out[0..*n-1]: a new name from its section or
 * the built-in, a port onto the profile of that name. */
static int profile_config_use(const struct profile_config_sources *src, const char *spec,
			      struct profile *out, int *n, char *err, size_t errlen)
{
	char name[PROFILE_NAME_MAX];
	const char *colon = strchr(spec, ':');
	struct profile *have, *def;

	snprintf(name, sizeof(name), "%.*s",
		 (int)(colon ? (size_t)(colon - spec) : strlen(spec)), spec);
	have = profile_config_find(out, *n, name);
	if (!have) {
		if (*n >= PROFILE_MAX) {
			snprintf(err, errlen, "--profile: more than %d profiles", PROFILE_MAX);
			return -1;
		}
		have = &out[*n];
		def = profile_config_find(src->defs, src->ndefs, name);
		if (def) {
			*have = *def;
		} else if (profile_builtin(name, have) != 0) {
			snprintf(err, errlen,
				 "--profile: unknown profile '%s' (built in: primary, "
				 "replica, read-only, sync, async, standby-leader, "
				 "quorum, read-only-quorum; or "
				 "define [profile %s] in the config file)", name, name);
			return -1;
		}
		(*n)++;
	}
	if (colon)
		options_parse_port(colon + 1, &have->port);
	return 0;
}

/* Ports apart from happac's own and from each other; lag bounds ordered. */
static int profile_config_check(const struct profile_config_sources *src,
				const struct profile *out, int n, char *err, size_t errlen)
{
	for (int i = 0; i < n; i++) {
		const struct profile *p = &out[i];

		if (p->port && (p->port == src->agent_port || p->port == src->http_port)) {
			snprintf(err, errlen, "profile %s: port %d is already in use by happac",
				 p->name, p->port);
			return -1;
		}
		for (int j = 0; j < i; j++)
			if (p->port && p->port == out[j].port) {
				snprintf(err, errlen, "profiles %s and %s: both on port %d",
					 out[j].name, p->name, p->port);
				return -1;
			}
		if ((p->lag_full || p->lag_cut) && p->lag_cut <= p->lag_full) {
			snprintf(err, errlen, "profile %s: lag-cut must be above lag-full",
				 p->name);
			return -1;
		}
		if ((p->lag_full_ms || p->lag_cut_ms) && p->lag_cut_ms <= p->lag_full_ms) {
			snprintf(err, errlen,
				 "profile %s: lag-cut-time must be above lag-full-time", p->name);
			return -1;
		}
	}
	return 0;
}

int profile_config_assemble(const struct profile_config_sources *src,
			    struct profile *out, char *err, size_t errlen)
{
	struct profile *p, *def;
	int n = 0;

	for (int i = 0; i < src->ndefs; i++)
		if (src->defs[i].rule == PROFILE_RULE_COUNT) {
			snprintf(err, errlen, "[profile %s]: 'rule = ...' is missing",
				 src->defs[i].name);
			return -1;
		}
	p = &out[n++];
	profile_from_endpoint(src->endpoint, p);
	/* A section named like the -k profile tunes it (wrong-role, lag, and
	 * a port of its own: one more listener answering it). */
	def = profile_config_find(src->defs, src->ndefs, p->name);
	if (def && def->rule == p->rule) {
		char endpoint[sizeof(p->endpoint)];

		/* Everything but the name and the -k endpoint (its query). */
		memcpy(endpoint, p->endpoint, sizeof(endpoint));
		*p = *def;
		memcpy(p->endpoint, endpoint, sizeof(endpoint));
	}
	for (int i = 0; i < src->nuses; i++)
		if (profile_config_use(src, src->uses[i], out, &n, err, errlen) != 0)
			return -1;
	for (int i = 0; i < src->ndefs; i++) {
		if (profile_config_find(out, n, src->defs[i].name))
			continue;
		if (n >= PROFILE_MAX) {
			snprintf(err, errlen, "more than %d profiles", PROFILE_MAX);
			return -1;
		}
		out[n++] = src->defs[i];
	}
	if (profile_config_check(src, out, n, err, errlen) != 0)
		return -1;
	return n;
}
