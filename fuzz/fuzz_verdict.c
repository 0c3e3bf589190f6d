/* fuzz_verdict.c - verdict_reason(), profile_evaluate() and
 * verdict_render_stale() with arbitrary probe reports, names, targets,
 * paths and hosts.
 *
 * The reply is what HAProxy parses, so the properties are HAProxy's
 * (docs/PROTOCOLS.md section 1) and the header's promises:
 *  - exactly one line: ends in '\n', the first '\n' is the last byte, no NUL
 *    or CR before it, length == strlen == *len;
 *  - "up\n" exactly when every probe reported PROBE_OK (and the return is 1);
 *    otherwise "down #REASON\n";
 *  - REASON (and every verdict_reason() result) < VERDICT_REASON_MAX bytes,
 *    printable ASCII only. */
#include "fuzz_common.h"

#include "profile.h"
#include "verdict.h"

#define FUZZ_MAX_PROBES 4

static void fuzz_check_line(const char *line, size_t size, size_t len, const char *what)
{
	const char *nl;

	FUZZ_CHECK(len >= 1 && len < size, "%s: length %zu (size %zu)", what, len, size);
	FUZZ_CHECK(line[len] == '\0' && strlen(line) == len, "%s: *len %zu != strlen %zu",
		   what, len, strlen(line));
	nl = memchr(line, '\n', len);
	FUZZ_CHECK(nl == line + len - 1, "%s: not exactly one line: '%s'", what, line);
	FUZZ_CHECK(memchr(line, '\r', len) == NULL, "%s: CR in the line", what);
}

static void fuzz_check_reason(const char *reason, const char *what)
{
	size_t n = strlen(reason);

	FUZZ_CHECK(n < VERDICT_REASON_MAX, "%s: reason of %zu bytes: %s", what, n, reason);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)reason[i] >= ' ' && (unsigned char)reason[i] < 0x7f,
			   "%s: byte 0x%02x in the reason", what, (unsigned char)reason[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct probe_report reports[FUZZ_MAX_PROBES];
	struct verdict_probe vp[FUZZ_MAX_PROBES];
	char *strings[FUZZ_MAX_PROBES * 4];
	int count = fuzz_u8(&in) % (FUZZ_MAX_PROBES + 1);
	int timeout_ms = (int)fuzz_u32(&in);
	int64_t age_ms = (int64_t)((uint64_t)fuzz_u32(&in) << 32 | fuzz_u32(&in));
	int all_ok = 1, up;
	char line[VERDICT_LINE_MAX], reason[256];
	size_t len;

	memset(strings, 0, sizeof(strings));
	for (int i = 0; i < count; i++) {
		uint8_t flags = fuzz_u8(&in);
		struct probe_report *r = &reports[i];
		char *detail;

		memset(r, 0, sizeof(*r));
		r->result = (enum probe_result)(fuzz_u8(&in) % PROBE_RESULT_COUNT);
		r->http_status = (int)fuzz_u32(&in);
		r->duration_us = (int64_t)fuzz_u32(&in);
		detail = fuzz_str(&in, sizeof(r->detail) - 1); /* as probe_done() */
		memcpy(r->detail, detail, strlen(detail) + 1);
		free(detail);
		strings[4 * i] = fuzz_str(&in, 64);          /* name */
		strings[4 * i + 1] = fuzz_str(&in, 320);     /* target */
		strings[4 * i + 2] = fuzz_str(&in, 320);     /* path */
		strings[4 * i + 3] = fuzz_str(&in, 320);     /* host */
		vp[i] = (struct verdict_probe){
			.name = strings[4 * i],
			.report = flags & 1 ? NULL : r,
			.target = strings[4 * i + 1],
			.path = flags & 2 ? NULL : strings[4 * i + 2],
			.host = flags & 4 ? NULL : strings[4 * i + 3],
		};
		if (!vp[i].report || r->result != PROBE_OK)
			all_ok = 0;

		/* Each reason on its own, in a roomy buffer and in the exact
		 * size main.c uses. */
		memset(reason, 0x5a, sizeof(reason));
		verdict_reason(&vp[i], timeout_ms, reason, sizeof(reason));
		fuzz_check_reason(reason, "verdict_reason");
		verdict_reason(&vp[i], timeout_ms, reason, VERDICT_REASON_MAX);
		fuzz_check_reason(reason, "verdict_reason (exact buffer)");
	}

	if (count >= 2) {
		/* The daemon's path: the -k profile (primary) over Patroni and
		 * PgBouncer, no JSON (OPTIONS mode), no hold, no override. */
		struct profile prof;
		struct profile_state st;
		struct profile_inputs pin;
		int both_ok = vp[0].report && vp[0].report->result == PROBE_OK &&
			      vp[1].report && vp[1].report->result == PROBE_OK;

		profile_from_endpoint("primary", &prof);
		memset(&st, 0, sizeof(st));
		memset(&pin, 0, sizeof(pin));
		pin.patroni = &vp[0];
		pin.pg = &vp[1];
		pin.lag_bytes = -1;
		pin.timeout_ms = timeout_ms;
		pin.ramp_weight = -1;
		pin.ready_window_ms = 1000;
		memset(line, 0x5a, sizeof(line));
		len = 0;
		up = profile_evaluate(&prof, 0, &st, &pin, line, sizeof(line), &len);
		fuzz_check_line(line, sizeof(line), len, "profile_evaluate");
		if (both_ok) {
			FUZZ_CHECK(up == PROFILE_HEALTH_PASSING && strcmp(line, "up\n") == 0,
				   "all ok but '%s' (health %d)", line, up);
		} else {
			char copy[VERDICT_LINE_MAX];

			FUZZ_CHECK(up == PROFILE_HEALTH_DOWN,
				   "a probe failed but evaluate returned %d", up);
			FUZZ_CHECK(strncmp(line, "down #", 6) == 0, "not 'down #': '%s'", line);
			memcpy(copy, line + 6, len - 7);
			copy[len - 7] = '\0';
			fuzz_check_reason(copy, "profile_evaluate");
		}
	}
	(void)all_ok;

	memset(line, 0x5a, sizeof(line));
	len = verdict_render_stale(age_ms, line, sizeof(line));
	fuzz_check_line(line, sizeof(line), len, "verdict_render_stale");
	FUZZ_CHECK(strncmp(line, "down #", 6) == 0, "stale line '%s'", line);
	FUZZ_CHECK(len - 7 < VERDICT_REASON_MAX, "stale reason of %zu bytes", len - 7);

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		free(strings[i]);
	return 0;
}
