/* fuzz_peer.c - what the peer-confirmed hold reads from the network:
 * Patroni's GET /cluster body (peer_cluster_parse) and a peer agent's reply
 * (peer_line_classify), on arbitrary bytes.
 *
 * The input is copied to a buffer of exactly its size, not NUL-terminated,
 * so that ASan sees any read past len. Properties: no memory error; on
 * success the count is within max and every member's name and addr are
 * NUL-terminated inside their arrays, with a non-empty name; on failure err
 * is one non-empty line; the line's answer is one of the enum's values. */
#include "fuzz_common.h"

#include "peer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	struct peer_member m[4];
	char err[160];
	enum peer_answer a;
	int n;

	if (!text)
		abort();
	memcpy(text, data, size);
	memset(m, 0x5a, sizeof(m));
	err[0] = '\0';
	n = peer_cluster_parse(text, size, "127.0.0.11", m, 4, err, sizeof(err));
	if (n >= 0) {
		FUZZ_CHECK(n <= 4, "count %d above max", n);
		for (int i = 0; i < n; i++) {
			FUZZ_CHECK(memchr(m[i].name, '\0', sizeof(m[i].name)) != NULL &&
				   m[i].name[0], "member %d: name", i);
			FUZZ_CHECK(memchr(m[i].addr, '\0', sizeof(m[i].addr)) != NULL,
				   "member %d: addr not terminated", i);
		}
	} else {
		fuzz_check_err(err, sizeof(err));
	}
	for (int eof = 0; eof < 2; eof++) {
		a = peer_line_classify(text, size < PEER_LINE_MAX ? size : PEER_LINE_MAX, eof);
		FUZZ_CHECK(a >= PEER_PENDING && a <= PEER_GARBAGE, "answer %d", (int)a);
		FUZZ_CHECK(!eof || a != PEER_PENDING, "pending at eof");
	}
	free(text);
	return 0;
}
