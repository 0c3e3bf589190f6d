/* http_reply.c - incremental HTTP/1.x response parser; see http_reply.h. */
#include "http_reply.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void http_reply_init(struct http_reply *r, char *body, size_t body_max)
{
	memset(r, 0, offsetof(struct http_reply, head));
	r->body = body;
	r->body_max = body_max;
	r->content_length = -1;
	r->state = HTTP_REPLY_MORE;
}

static enum http_reply_state http_reply_bad(struct http_reply *r, const char *why)
{
	snprintf(r->detail, sizeof(r->detail), "%s", why);
	r->state = HTTP_REPLY_BAD;
	return r->state;
}

/* "HTTP/1.x NNN[ reason]": the status, or 0. */
static int http_reply_status_line(const char *line, size_t len)
{
	if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[7] < '0' || line[7] > '9' ||
	    line[8] != ' ')
		return 0;
	for (int i = 9; i < 12; i++)
		if (line[i] < '0' || line[i] > '9')
			return 0;
	if (len > 12 && line[12] != ' ')
		return 0;
	if (line[9] == '0')
		return 0;
	return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

/* Content-Length: digits only, at most 18 of them (no overflow). */
static long long http_reply_length(const char *v, size_t len)
{
	long long n = 0;

	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	return n;
}

static int http_reply_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* The head is complete (head[0..len) ends with its blank line): read the
 * status line and the headers that decide where the body ends. */
static enum http_reply_state http_reply_head(struct http_reply *r, size_t len)
{
	const char *p = r->head, *end = r->head + len;
	int first = 1;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)(nl - p); /* the head ends with '\n' */

		if (l && p[l - 1] == '\r')
			l--;
		if (first) {
			r->status = http_reply_status_line(p, l);
			if (!r->status)
				return http_reply_bad(r, "not an HTTP/1.x status line");
			if (r->status < 200)
				return http_reply_bad(r,
						      "interim 1xx answer to an HTTP/1.0 request");
			first = 0;
		} else if (l == 0) {
			break;
		} else if (memchr(p, '\0', l)) {
			return http_reply_bad(r, "NUL byte in a header");
		} else if (http_reply_is(p, l, "content-length")) {
			long long n = http_reply_length(p + 15, l - 15);

			if (n < 0)
				return http_reply_bad(r, "invalid Content-Length");
			if (r->content_length >= 0 && r->content_length != n)
				return http_reply_bad(r, "conflicting Content-Length headers");
			r->content_length = n;
		} else if (http_reply_is(p, l, "transfer-encoding")) {
			return http_reply_bad(r, "Transfer-Encoding in an HTTP/1.0 answer");
		}
		p = nl + 1;
	}
	if (r->content_length > (long long)r->body_max) {
		snprintf(r->detail, sizeof(r->detail), "body over %zu bytes", r->body_max);
		r->state = HTTP_REPLY_BAD;
		return r->state;
	}
	r->in_body = 1;
	if (r->content_length == 0)
		r->state = HTTP_REPLY_DONE;
	return r->state;
}

static enum http_reply_state http_reply_body(struct http_reply *r, const char *data, size_t n)
{
	if (r->content_length >= 0 && n > (size_t)r->content_length - r->body_len)
		n = (size_t)r->content_length - r->body_len; /* the rest is not read */
	if (n > r->body_max - r->body_len) {
		snprintf(r->detail, sizeof(r->detail), "body over %zu bytes", r->body_max);
		r->state = HTTP_REPLY_BAD;
		return r->state;
	}
	if (r->body && n)
		memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	if (r->content_length >= 0 && r->body_len == (size_t)r->content_length)
		r->state = HTTP_REPLY_DONE;
	return r->state;
}

enum http_reply_state http_reply_feed(struct http_reply *r, const char *data, size_t n)
{
	if (r->state != HTTP_REPLY_MORE)
		return r->state;
	r->bytes += n;
	while (n && !r->in_body) {
		/* Copy byte by byte up to the blank line that ends the head, so
		 * that the body's first bytes are not taken for headers. */
		char c = *data++;

		n--;
		if (r->head_len == sizeof(r->head))
			return http_reply_bad(r, "status line and headers over 8192 bytes");
		r->head[r->head_len++] = c;
		if (!r->line1) {
			/* Judge the first line as it comes, rather than wait for
			 * a blank line that garbage may never send. */
			size_t l = r->head_len - 1;

			if (c != '\n') {
				if (r->head_len <= 7 && memcmp(r->head, "HTTP/1.", r->head_len))
					return http_reply_bad(r, "not an HTTP/1.x status line");
				continue;
			}
			if (l && r->head[l - 1] == '\r')
				l--;
			if (!http_reply_status_line(r->head, l))
				return http_reply_bad(r, "not an HTTP/1.x status line");
			r->line1 = 1;
			continue;
		}
		if (c != '\n')
			continue;
		/* The blank line: "\n\n" or "\n\r\n". */
		if (r->head[r->head_len - 2] == '\n' ||
		    (r->head[r->head_len - 2] == '\r' && r->head[r->head_len - 3] == '\n')) {
			if (http_reply_head(r, r->head_len) != HTTP_REPLY_MORE)
				return r->state;
		}
	}
	if (n)
		return http_reply_body(r, data, n);
	return r->state;
}

enum http_reply_state http_reply_eof(struct http_reply *r)
{
	if (r->state != HTTP_REPLY_MORE)
		return r->state;
	if (r->bytes == 0)
		return http_reply_bad(r, "empty reply from server");
	if (!r->in_body)
		return http_reply_bad(r, "connection closed before the end of the headers");
	if (r->content_length >= 0)
		return http_reply_bad(r, "connection closed before the end of the body");
	r->state = HTTP_REPLY_DONE;
	return r->state;
}
