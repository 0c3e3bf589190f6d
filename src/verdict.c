/* verdict.c - probe results -> "up\n" / "down #reason\n". */
#include "verdict.h"

#include <stdio.h>
#include <string.h>

/* Keep the #text one clean line: HAProxy reads up to the first line end and
 * a NUL would void the whole reply. */
static void verdict_clean(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f)
			*s = ' ';
}

void verdict_reason(const struct verdict_probe *vp, int timeout_ms, char *buf,
		    size_t len)
{
	const struct probe_report *r = vp->report;
	const char *what;
	char tmp[VERDICT_REASON_MAX + 64];

	if (!r) {
		snprintf(tmp, sizeof(tmp), "%s: no result yet", vp->name);
		goto out;
	}
	what = probe_result_names[r->result];
	switch (r->result) {
	case PROBE_OK:
		snprintf(tmp, sizeof(tmp), "%s: ok", vp->name);
		break;
	case PROBE_HTTP_STATUS:
		snprintf(tmp, sizeof(tmp), "%s %s: %d", vp->name,
			 vp->path ? vp->path : "", r->http_status);
		break;
	case PROBE_TIMEOUT:
		snprintf(tmp, sizeof(tmp), "%s: timeout after %dms", vp->name,
			 timeout_ms);
		break;
	case PROBE_RESOLVE:
		snprintf(tmp, sizeof(tmp), "%s: cannot resolve %s", vp->name,
			 vp->host ? vp->host : "");
		break;
	case PROBE_REJECTED:
		snprintf(tmp, sizeof(tmp), "%s %s: rejected (%s)", vp->name,
			 vp->target, r->detail[0] ? r->detail : "57P03");
		break;
	case PROBE_REFUSED:
		snprintf(tmp, sizeof(tmp), "%s %s: %s", vp->name, vp->target, what);
		break;
	case PROBE_LOGIN_FAILED:
	case PROBE_QUERY_FAILED:
		snprintf(tmp, sizeof(tmp), "%s: %s: %s", vp->name, what, r->detail);
		break;
	case PROBE_CONNECT:
	case PROBE_TLS:
	case PROBE_BAD_RESPONSE:
	case PROBE_INTERNAL:
	default:
		if (r->detail[0])
			snprintf(tmp, sizeof(tmp), "%s %s: %s: %s", vp->name,
				 vp->target, what, r->detail);
		else
			snprintf(tmp, sizeof(tmp), "%s %s: %s", vp->name,
				 vp->target, what);
		break;
	}
out:
	verdict_clean(tmp);
	if (len > VERDICT_REASON_MAX)
		len = VERDICT_REASON_MAX;
	snprintf(buf, len, "%s", tmp);
}

size_t verdict_render_stale(int64_t age_ms, char *line, size_t size)
{
	int n = snprintf(line, size, "down #stale: no probe result for %lld.%llds\n",
			 (long long)(age_ms / 1000), (long long)(age_ms % 1000 / 100));

	return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}
