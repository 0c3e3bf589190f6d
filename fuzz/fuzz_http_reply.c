/* fuzz_http_reply.c - http_reply_feed()/http_reply_eof() on arbitrary
 * answers: what anything listening on Patroni's port may send back.
 *
 * The first input byte picks where the rest is split in two; the rest is
 * fed in those two pieces, then the close. Properties: no memory error; the
 * state is one of the three; a DONE answer has a status in 200..999 and at
 * most body_max body bytes, and the same bytes fed in one piece (and byte
 * by byte) give the same state, status, body and detail; a BAD one has a
 * one-line detail. */
#include "fuzz_common.h"

#include "http_reply.h"

#define FUZZ_BODY_MAX 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum http_reply_state fuzz_run(struct http_reply *r, char *body, const char *in,
				      size_t n, size_t cut, int bytewise)
{
	enum http_reply_state st = HTTP_REPLY_MORE;

	http_reply_init(r, body, FUZZ_BODY_MAX);
	if (bytewise) {
		for (size_t i = 0; i < n && st == HTTP_REPLY_MORE; i++)
			st = http_reply_feed(r, in + i, 1);
	} else {
		st = http_reply_feed(r, in, cut);
		if (st == HTTP_REPLY_MORE)
			st = http_reply_feed(r, in + cut, n - cut);
	}
	if (st == HTTP_REPLY_MORE)
		st = http_reply_eof(r);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_reply a, b, c;
	static char ba[FUZZ_BODY_MAX], bb[FUZZ_BODY_MAX], bc[FUZZ_BODY_MAX];
	char *in;
	size_t n, cut;
	enum http_reply_state sa, sb, sc;

	if (size < 1)
		return 0;
	n = size - 1;
	cut = n ? data[0] % (n + 1) : 0;
	in = malloc(n ? n : 1); /* exactly n bytes, so ASan sees a read past them */
	if (!in)
		abort();
	memcpy(in, data + 1, n);
	sa = fuzz_run(&a, ba, in, n, cut, 0);
	sb = fuzz_run(&b, bb, in, n, n, 0);
	sc = fuzz_run(&c, bc, in, n, 0, 1);
	FUZZ_CHECK(sa == HTTP_REPLY_DONE || sa == HTTP_REPLY_BAD, "state %d after eof", (int)sa);
	FUZZ_CHECK(sa == sb && sa == sc, "split at %zu: state %d, whole %d, bytewise %d", cut,
		   (int)sa, (int)sb, (int)sc);
	FUZZ_CHECK(a.status == b.status && a.status == c.status, "status %d / %d / %d", a.status,
		   b.status, c.status);
	FUZZ_CHECK(!strcmp(a.detail, b.detail) && !strcmp(a.detail, c.detail),
		   "detail '%s' / '%s' / '%s'", a.detail, b.detail, c.detail);
	if (sa == HTTP_REPLY_DONE) {
		FUZZ_CHECK(a.status >= 200 && a.status <= 999, "status %d", a.status);
		FUZZ_CHECK(a.body_len <= FUZZ_BODY_MAX, "body %zu bytes", a.body_len);
		FUZZ_CHECK(a.body_len == b.body_len && a.body_len == c.body_len &&
			   !memcmp(ba, bb, a.body_len) && !memcmp(ba, bc, a.body_len),
			   "bodies differ");
	} else {
		fuzz_check_err(a.detail, sizeof(a.detail));
	}
	free(in);
	return 0;
}
