/* fuzz_pg_wire.c - pg_wire_feed()/pg_wire_result(), the server's answer to
 * the ping's StartupMessage. Byte 0: bits 0-5 = the detail buffer size - 1
 * (1..64), bit 6 = the peer closes after the bytes; bytes 1-2: a split
 * point; the rest is what the server sends, in a buffer of exactly its size
 * so that ASan sees any over-read.
 * Properties: the same state and SQLSTATE whether the bytes come in one
 * piece, split at the split point, or one at a time; a decided state after
 * the close; a valid result, never an internal error once decided; detail
 * NUL-terminated inside its buffer and one line; PROBE_REJECTED only with
 * detail "57P03". */
#include "fuzz_common.h"

#include "pg_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pg_wire whole, split, bytes; /* 8 KB each: not on the stack */
	struct fuzz_in in = { data, size };
	uint8_t flags = fuzz_u8(&in);
	size_t detail_len = (size_t)(flags & 63) + 1;
	int eof = (flags >> 6) & 1;
	size_t cut = (size_t)fuzz_u8(&in) << 8 | fuzz_u8(&in);
	size_t n = in.n;
	unsigned char *stream = malloc(n ? n : 1);
	char *detail = malloc(detail_len); /* exact size: overflows show */
	enum probe_result r;

	if (!stream || !detail)
		abort();
	memcpy(stream, in.p, n);
	if (cut > n)
		cut = n;
	pg_wire_init(&whole);
	pg_wire_init(&split);
	pg_wire_init(&bytes);
	pg_wire_feed(&whole, stream, n);
	pg_wire_feed(&split, stream, cut);
	pg_wire_feed(&split, stream + cut, n - cut);
	for (size_t i = 0; i < n; i++)
		pg_wire_feed(&bytes, stream + i, 1);
	if (eof) {
		pg_wire_eof(&whole);
		pg_wire_eof(&split);
		pg_wire_eof(&bytes);
		FUZZ_CHECK(whole.state != PG_WIRE_MORE, "undecided after the close");
	}
	FUZZ_CHECK(whole.state == split.state && whole.state == bytes.state,
		   "state %s whole, %s split at %zu, %s byte by byte",
		   pg_wire_state_names[whole.state], pg_wire_state_names[split.state], cut,
		   pg_wire_state_names[bytes.state]);
	FUZZ_CHECK(strcmp(whole.sqlstate, split.sqlstate) == 0 &&
		   strcmp(whole.sqlstate, bytes.sqlstate) == 0, "SQLSTATE differs");
	FUZZ_CHECK(whole.have <= sizeof(whole.buf), "buffered %zu", whole.have);
	if (whole.state != PG_WIRE_MORE) {
		memset(detail, 0x5a, detail_len);
		r = pg_wire_result(&whole, detail, detail_len);
		FUZZ_CHECK((int)r >= 0 && r < PROBE_RESULT_COUNT, "result %d", (int)r);
		FUZZ_CHECK(r != PROBE_INTERNAL, "internal error in state %s",
			   pg_wire_state_names[whole.state]);
		FUZZ_CHECK(memchr(detail, '\0', detail_len) != NULL, "detail not terminated");
		FUZZ_CHECK(strchr(detail, '\n') == NULL && strchr(detail, '\r') == NULL,
			   "detail not one line: %s", detail);
		if (r == PROBE_REJECTED)
			FUZZ_CHECK(detail_len < 6 || strcmp(detail, "57P03") == 0,
				   "rejected with detail '%s'", detail);
	}
	free(detail);
	free(stream);
	return 0;
}
