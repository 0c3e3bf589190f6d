/* fuzz_http_route.c - the side port's routing of a request target, as
 * http.c splits it: PATH?QUERY -> profile_rule_for_path() and, for one of
 * Patroni's health paths, profile_parse_query() (#17).
 *
 * The first input byte picks the rule the query is parsed for when the path
 * is none; the rest is the request target. Properties: no memory error; the
 * rule is one of the built-in ones or -1, and its own spelling maps back to
 * it; a query is accepted (max_lag -1, or 0..PROFILE_BYTES_MAX and only for
 * a rule that reads ?lag=) or refused with a one-line message that names a
 * parameter; parsing the same query again gives the same answer. And
 * http_target(), http.c's own choice of route: it reads only; /status and
 * /metrics are theirs; /health is a happac profile's answer exactly when a
 * profile= parameter is there, else Patroni's /health rule; any other path
 * goes to Patroni's paths (or 404). */
#include "fuzz_common.h"

#include "http.h"
#include "profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A "profile=" parameter, found by another route than http.c's. */
static int fuzz_names_profile(const char *query)
{
	size_t n = strlen(query);

	for (size_t i = 0; i + 8 <= n; i++)
		if ((i == 0 || query[i - 1] == '&') && !memcmp(query + i, "profile=", 8))
			return 1;
	return 0;
}

static void fuzz_target(const char *path, const char *query)
{
	char before[512];
	enum http_target t;

	snprintf(before, sizeof(before), "%s", query ? query : "");
	t = http_target(path, query);
	FUZZ_CHECK(t >= 0 && t < HTTP_TARGET_COUNT && http_target_names[t], "target %d", t);
	FUZZ_CHECK(!query || !strcmp(before, query), "http_target() changed the query");
	if (!strcmp(path, "/health"))
		FUZZ_CHECK(t == (query && fuzz_names_profile(query) ? HTTP_TARGET_PROFILE
								  : HTTP_TARGET_PATRONI) &&
			   profile_rule_for_path(path) == PROFILE_RULE_HEALTH,
			   "/health?%s routed to %s", before, http_target_names[t]);
	else if (!strcmp(path, "/status") || !strcmp(path, "/metrics"))
		FUZZ_CHECK(t == (path[1] == 's' ? HTTP_TARGET_STATUS : HTTP_TARGET_METRICS),
			   "%s routed to %s", path, http_target_names[t]);
	else
		FUZZ_CHECK(t == HTTP_TARGET_PATRONI, "%s routed to %s", path,
			   http_target_names[t]);
}

static int fuzz_reads_lag(int rule)
{
	return rule == PROFILE_RULE_REPLICA || rule == PROFILE_RULE_READ_ONLY ||
	       rule == PROFILE_RULE_SYNC || rule == PROFILE_RULE_ASYNC ||
	       rule == PROFILE_RULE_READ_ONLY_SYNC || rule == PROFILE_RULE_QUORUM ||
	       rule == PROFILE_RULE_READ_ONLY_QUORUM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char target[512], again[512], err[160], err2[160], self[64];
	char *query;
	struct profile_query q, q2;
	int rule, prule, rc, rc2;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1 < sizeof(target) - 1 ? size - 1 : sizeof(target) - 1;
	memcpy(target, data + 1, n);
	target[n] = '\0'; /* http.c refuses NUL bytes: the head is a C string */
	query = strchr(target, '?');
	if (query)
		*query++ = '\0';
	fuzz_target(target, query);
	rule = profile_rule_for_path(target);
	FUZZ_CHECK(rule >= -1 && rule < PROFILE_RULE_ENDPOINT, "rule %d for %s", rule, target);
	if (rule >= 0) {
		snprintf(self, sizeof(self), "/%s", profile_rule_names[rule]);
		FUZZ_CHECK(profile_rule_for_path(self) == rule, "%s does not map back", self);
	}
	prule = rule >= 0 ? rule : data[0] % PROFILE_RULE_ENDPOINT;
	if (query)
		snprintf(again, sizeof(again), "%s", query);
	err[0] = err2[0] = '\0';
	rc = profile_parse_query((enum profile_rule)prule, query, &q, err, sizeof(err));
	rc2 = profile_parse_query((enum profile_rule)prule, query ? again : NULL, &q2, err2,
				  sizeof(err2));
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	FUZZ_CHECK(rc == rc2 && !strcmp(err, err2) && (rc || q.max_lag == q2.max_lag),
		   "not the same twice: %d/%d '%s'/'%s'", rc, rc2, err, err2);
	if (rc == 0) {
		FUZZ_CHECK(q.max_lag == -1 || (q.max_lag >= 0 && q.max_lag <= PROFILE_BYTES_MAX),
			   "lag %lld", (long long)q.max_lag);
		FUZZ_CHECK(q.max_lag == -1 || fuzz_reads_lag(prule), "lag for %s",
			   profile_rule_names[prule]);
	} else {
		FUZZ_CHECK(err[0] && !strchr(err, '\n'), "message '%s'", err);
		FUZZ_CHECK(!strncmp(err, "lag", 3) || !strncmp(err, "tag_", 4) ||
			   !strncmp(err, "replication_state", 17), "names no parameter: '%s'",
			   err);
	}
	return 0;
}
