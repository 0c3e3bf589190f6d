/* verdict.h - pure: a failed probe -> its #reason; the stale line.
 * (profile.c composes whole reply lines from these.)
 *
 * No I/O, no clock: everything it needs is passed in, so the unit tests can
 * drive every case. */
#ifndef HAPPAC_VERDICT_H
#define HAPPAC_VERDICT_H

#include "probe.h"

#include <stddef.h>

/* HAProxy keeps ~128 bytes of #text; we promise reasons under 100. */
#define VERDICT_REASON_MAX 100
#define VERDICT_LINE_MAX (VERDICT_REASON_MAX + 16)

/* One probe as the verdict sees it. */
struct verdict_probe {
	const char *name;                  /* "patroni" */
	const struct probe_report *report; /* NULL: no result yet */
	const char *target;                /* "127.0.0.1:8008", for connect errors */
	const char *path;                  /* "/primary", for HTTP status; or NULL */
	const char *host;                  /* for resolve errors */
};

/* The reason one failed probe gives, e.g. "patroni /primary: 503",
 * "pgbouncer: timeout after 800ms". Always NUL-terminated, < VERDICT_REASON_MAX. */
void verdict_reason(const struct verdict_probe *vp, int timeout_ms, char *buf,
		    size_t len);

/* The line for a verdict older than the stale bound. */
size_t verdict_render_stale(int64_t age_ms, char *line, size_t size);

#endif
