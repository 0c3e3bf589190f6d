/* fuzz_common.h - helpers shared by the libFuzzer targets.
 *
 * FUZZ_CHECK() aborts with a message: libFuzzer reports the abort as a crash
 * and saves the input, so every property below is enforced like a memory
 * error. */
#ifndef HAPPAC_FUZZ_COMMON_H
#define HAPPAC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz property violated: %s (%s:%d): ", \
				#cond, __FILE__, __LINE__);                  \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

/* A cursor over the fuzzer's bytes; reads past the end yield zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | fuzz_u8(in);
	return v;
}

/* A heap string of exactly its length + 1 (so ASan sees any over-read) made
 * of the next bytes up to a NUL or max bytes. Caller frees. */
static inline char *fuzz_str(struct fuzz_in *in, size_t max)
{
	size_t len = 0;
	char *s;

	while (len < in->n && len < max && in->p[len] != '\0')
		len++;
	s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->n -= len;
	if (in->n) { /* skip the terminating NUL */
		in->p++;
		in->n--;
	}
	return s;
}

/* err buffers: NUL-terminated within their size, one line, not empty. */
static inline void fuzz_check_err(const char *err, size_t size)
{
	FUZZ_CHECK(memchr(err, '\0', size) != NULL, "err not terminated");
	FUZZ_CHECK(err[0] != '\0', "empty error message");
	FUZZ_CHECK(strchr(err, '\n') == NULL, "error message is not one line: %s", err);
}

#endif
