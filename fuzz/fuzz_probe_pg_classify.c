/* fuzz_probe_pg_classify.c - probe_pg_classify() on arbitrary libpq error
 * messages. Byte 0: bit 0 = "TCP connection established", bits 1-6 = the
 * detail buffer size - 1 (1..64); the rest is the message, copied into a
 * buffer of exactly its length + 1 so that ASan sees any over-read.
 * Properties: a valid result; detail NUL-terminated inside its buffer;
 * PROBE_REJECTED only with detail "57P03". (The detail may hold a newline
 * from a server's SQLSTATE field: verdict_reason() cleans it for the
 * agent's line, only the -v debug log shows it raw.) */
#include "fuzz_common.h"

#include "probe_pg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t flags = fuzz_u8(&in);
	int established = flags & 1;
	size_t detail_len = (size_t)((flags >> 1) & 63) + 1;
	char *message = fuzz_str(&in, 1 << 16);
	char *detail = malloc(detail_len); /* exact size: overflows show */
	enum probe_result r;

	if (!detail)
		abort();
	memset(detail, 0x5a, detail_len);
	r = probe_pg_classify(message, established, detail, detail_len);
	FUZZ_CHECK((int)r >= 0 && r < PROBE_RESULT_COUNT, "result %d", (int)r);
	FUZZ_CHECK(memchr(detail, '\0', detail_len) != NULL, "detail not terminated");
	if (r == PROBE_REJECTED)
		FUZZ_CHECK(detail_len < 6 || strcmp(detail, "57P03") == 0,
			   "rejected with detail '%s'", detail);
	free(detail);
	free(message);
	return 0;
}
