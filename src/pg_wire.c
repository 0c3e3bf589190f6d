/* pg_wire.c - StartupMessage out, the server's first messages in. */
#include "pg_wire.h"

#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PG_WIRE_PROTOCOL_3_0 196608 /* 3 << 16 */

const char *const pg_wire_state_names[PG_WIRE_STATE_COUNT] = {
	[PG_WIRE_MORE] = "more",
	[PG_WIRE_READY] = "ready",
	[PG_WIRE_AUTH] = "auth",
	[PG_WIRE_ERROR] = "error",
	[PG_WIRE_BAD] = "bad",
	[PG_WIRE_CLOSED] = "closed",
};

void pg_wire_init(struct pg_wire *w)
{
	w->state = PG_WIRE_MORE;
	w->auth_ok = 0;
	w->sqlstate[0] = '\0';
	w->have = 0;
}

static uint32_t pg_wire_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void pg_wire_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The message types a server may send before and during its startup answer. */
static int pg_wire_known_type(unsigned char type)
{
	return type && strchr("REZNSKv", type) != NULL;
}

/* ErrorResponse: fields of a type byte and a string, ended by a zero byte.
 * Keeps the SQLSTATE ('C') when it looks like one. Returns -1 when the
 * fields overrun the message. */
static int pg_wire_error_fields(struct pg_wire *w, const unsigned char *body, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char field = body[i++];
		const unsigned char *end;
		size_t vlen;

		if (field == '\0')
			return 0;
		end = memchr(body + i, '\0', len - i);
		if (!end)
			return -1;
		vlen = (size_t)(end - (body + i));
		if (field == 'C' && vlen == 5 &&
		    strspn((const char *)body + i, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5)
			memcpy(w->sqlstate, body + i, 6);
		i += vlen + 1;
	}
	return -1;
}

/* One complete message: type, then len bytes of body. */
static enum pg_wire_state pg_wire_message(struct pg_wire *w, unsigned char type,
					  const unsigned char *body, size_t len)
{
	switch (type) {
	case 'R':
		if (len < 4)
			return PG_WIRE_BAD;
		if (pg_wire_get32(body) != 0)
			return w->auth_ok ? PG_WIRE_BAD : PG_WIRE_AUTH;
		if (w->auth_ok)
			return PG_WIRE_BAD;
		w->auth_ok = 1;
		return PG_WIRE_MORE;
	case 'E':
		w->sqlstate[0] = '\0';
		return pg_wire_error_fields(w, body, len) < 0 ? PG_WIRE_BAD : PG_WIRE_ERROR;
	case 'Z':
		return w->auth_ok ? PG_WIRE_READY : PG_WIRE_BAD;
	case 'N': /* NoticeResponse */
	case 'S': /* ParameterStatus */
	case 'K': /* BackendKeyData */
	case 'v': /* NegotiateProtocolVersion */
		return PG_WIRE_MORE;
	}
	return PG_WIRE_BAD;
}

enum pg_wire_state pg_wire_feed(struct pg_wire *w, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0 && w->state == PG_WIRE_MORE) {
		/* The header first (type and length), then the rest of the
		 * message; the length was checked before it is used here. */
		size_t need = w->have < 5 ? 5 : 1 + (size_t)pg_wire_get32(w->buf + 1);
		size_t n = need - w->have < len ? need - w->have : len;
		uint32_t mlen;

		memcpy(w->buf + w->have, p, n);
		w->have += n;
		p += n;
		len -= n;
		/* Garbage is told at its first byte, a bad length at its last. */
		if (!pg_wire_known_type(w->buf[0])) {
			w->state = PG_WIRE_BAD;
			break;
		}
		if (w->have < 5)
			continue;
		mlen = pg_wire_get32(w->buf + 1);
		if (mlen < 4 || mlen > PG_WIRE_MESSAGE_MAX) {
			w->state = PG_WIRE_BAD;
			break;
		}
		if (w->have < 1 + (size_t)mlen)
			continue;
		w->state = pg_wire_message(w, w->buf[0], w->buf + 5, w->have - 5);
		w->have = 0;
	}
	return w->state;
}

enum pg_wire_state pg_wire_eof(struct pg_wire *w)
{
	if (w->state == PG_WIRE_MORE)
		w->state = PG_WIRE_CLOSED;
	return w->state;
}

/* What each final state means for the probe, and the words it leaves.
 * PG_WIRE_ERROR depends on the SQLSTATE: pg_wire_result() decides it. */
static const struct {
	enum probe_result result;
	const char *detail;
} pg_wire_results[PG_WIRE_STATE_COUNT] = {
	[PG_WIRE_MORE] = { PROBE_INTERNAL, "undecided answer" },
	[PG_WIRE_READY] = { PROBE_OK, "login accepted" },
	[PG_WIRE_AUTH] = { PROBE_OK, "password requested" },
	[PG_WIRE_ERROR] = { PROBE_BAD_RESPONSE, "error without SQLSTATE" },
	[PG_WIRE_BAD] = { PROBE_BAD_RESPONSE, "protocol error" },
	[PG_WIRE_CLOSED] = { PROBE_BAD_RESPONSE, "connection closed" },
};

enum probe_result pg_wire_result(const struct pg_wire *w, char *detail, size_t detail_len)
{
	enum pg_wire_state st = w->state < PG_WIRE_STATE_COUNT ? w->state : PG_WIRE_MORE;

	if (st == PG_WIRE_ERROR && w->sqlstate[0]) {
		snprintf(detail, detail_len, "%s", w->sqlstate);
		/* 57P03 (cannot connect now: starting, stopping) is a no;
		 * any other error means the server is there and answers.
		 * Without a SQLSTATE (PQping's case) there is no answer. */
		return strcmp(w->sqlstate, "57P03") == 0 ? PROBE_REJECTED : PROBE_OK;
	}
	if (st == PG_WIRE_MORE)
		log_error("internal: pg_wire_result in state %d", (int)w->state);
	snprintf(detail, detail_len, "%s", pg_wire_results[st].detail);
	return pg_wire_results[st].result;
}

size_t pg_wire_startup(unsigned char *buf, size_t len, const char *const *keys,
		       const char *const *vals)
{
	size_t used = 8;

	if (len < used + 1)
		return 0;
	for (size_t i = 0; keys[i]; i++) {
		size_t k = strlen(keys[i]) + 1, v = strlen(vals[i]) + 1;

		if (len - used < k + v + 1)
			return 0;
		memcpy(buf + used, keys[i], k);
		memcpy(buf + used + k, vals[i], v);
		used += k + v;
	}
	buf[used++] = '\0';
	if (used > INT32_MAX)
		return 0;
	pg_wire_put32(buf, (uint32_t)used);
	pg_wire_put32(buf + 4, PG_WIRE_PROTOCOL_3_0);
	return used;
}
