/* http_reply.h - an HTTP/1.x response, read incrementally as it arrives.
 *
 * Pure: no I/O, so the unit tests and a fuzz target feed it bytes. Built
 * for the Patroni probe, which sends HTTP/1.0 requests: the answer is a
 * status line, headers, and a body that ends at Content-Length or at the
 * close of the connection (no chunked encoding to an HTTP/1.0 client). Its
 * parts are bounded: HTTP_REPLY_HEAD_MAX bytes of status line and headers,
 * body_max bytes of body. */
#ifndef HAPPAC_HTTP_REPLY_H
#define HAPPAC_HTTP_REPLY_H

#include <stddef.h>

#define HTTP_REPLY_HEAD_MAX 8192

enum http_reply_state {
	HTTP_REPLY_MORE, /* complete so far; feed more, or call http_reply_eof() */
	HTTP_REPLY_DONE, /* a whole answer: status, body */
	HTTP_REPLY_BAD,  /* not an acceptable answer: detail says why */
};

struct http_reply {
	int status;            /* 100..999 once the status line is read, else 0 */
	size_t body_len;       /* body bytes so far */
	size_t bytes;          /* every byte fed */
	char detail[64];       /* why HTTP_REPLY_BAD; one line */
	/* private */
	char *body;            /* NULL: count the body, keep nothing */
	size_t body_max;
	long long content_length; /* -1: until the connection closes */
	int in_body;
	int line1;             /* the status line is complete and valid */
	enum http_reply_state state;
	size_t head_len;
	char head[HTTP_REPLY_HEAD_MAX];
};

/* Start a reply. body (body_max bytes, owned by the caller) receives the
 * body, or is NULL to only count it; over body_max bytes is HTTP_REPLY_BAD
 * either way. */
void http_reply_init(struct http_reply *r, char *body, size_t body_max);
/* Feed n bytes. Once DONE or BAD, the state stays and further bytes are
 * ignored (what follows a complete answer is not looked at). */
enum http_reply_state http_reply_feed(struct http_reply *r, const char *data, size_t n);
/* The peer closed: DONE when what came is a whole answer (a body without
 * Content-Length ends here), else BAD. */
enum http_reply_state http_reply_eof(struct http_reply *r);

#endif
