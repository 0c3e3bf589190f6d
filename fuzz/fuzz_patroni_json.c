/* fuzz_patroni_json.c - patroni_json_parse() on arbitrary bodies: what a
 * Patroni (or anything listening on its port) may answer to GET.
 *
 * The input is copied to a buffer of exactly its size, not NUL-terminated,
 * so that ASan sees any read past len. Properties: no memory error; on
 * success the fields are in range (role a known value, flags 0/1, state
 * NUL-terminated inside its array) and the input holds no NUL byte (RFC
 * 8259: a raw NUL is never valid JSON, inside a string or out); on failure
 * err is one non-empty line. */
#include "fuzz_common.h"

#include "patroni_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size ? size : 1);
	struct patroni_json pj;
	char err[128];

	if (!text)
		abort();
	memcpy(text, data, size);
	memset(&pj, 0x5a, sizeof(pj));
	err[0] = '\0';
	if (patroni_json_parse(text, size, &pj, err, sizeof(err)) == 0) {
		FUZZ_CHECK(pj.role >= PATRONI_JSON_ROLE_UNKNOWN &&
			   pj.role <= PATRONI_JSON_ROLE_OTHER, "role %d", (int)pj.role);
		FUZZ_CHECK((pj.running | pj.pause | pj.cluster_unlocked | pj.sync_standby |
			    pj.noloadbalance) <= 1 &&
			   pj.running >= 0 && pj.pause >= 0 && pj.cluster_unlocked >= 0 &&
			   pj.sync_standby >= 0 && pj.noloadbalance >= 0, "a flag is not 0/1");
		FUZZ_CHECK(memchr(pj.state, '\0', sizeof(pj.state)) != NULL,
			   "state not terminated");
		FUZZ_CHECK(memchr(text, '\0', size) == NULL,
			   "accepted a document with a NUL byte at %zu",
			   (size_t)((char *)memchr(text, '\0', size) - text));
	} else {
		fuzz_check_err(err, sizeof(err));
	}
	free(text);
	return 0;
}
