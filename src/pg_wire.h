/* pg_wire.h - the PostgreSQL frontend/backend protocol (3.0) as far as a
 * ping needs it: build a StartupMessage, and read the server's first
 * messages until they decide the ping. Pure: no sockets, no allocation, so
 * the unit tests and the fuzzer drive it with bytes.
 *
 * What decides, as libpq's PQping (internal_ping in fe-connect.c):
 * AuthenticationOk ... ReadyForQuery (login accepted), any other
 * authentication request (the server is up and asks for a password), an
 * ErrorResponse (its SQLSTATE says more), or bytes that are not the protocol.
 * The server is a peer we do not trust: a message longer than
 * PG_WIRE_MESSAGE_MAX is a protocol error, and nothing is buffered beyond
 * one message. */
#ifndef HAPPAC_PG_WIRE_H
#define HAPPAC_PG_WIRE_H

#include "probe.h"

#include <stddef.h>

/* Largest message accepted, its type byte not counted (the length field
 * counts itself). A server's startup answers are a few hundred bytes. */
#define PG_WIRE_MESSAGE_MAX 8192

/* Where a ping stands. One enum, one string table (pg_wire_state_names). */
enum pg_wire_state {
	PG_WIRE_MORE,     /* undecided: feed more bytes */
	PG_WIRE_READY,    /* AuthenticationOk, then ReadyForQuery */
	PG_WIRE_AUTH,     /* an authentication request other than Ok */
	PG_WIRE_ERROR,    /* an ErrorResponse; sqlstate holds its code or "" */
	PG_WIRE_BAD,      /* bytes that are not the protocol */
	PG_WIRE_CLOSED,   /* the peer closed before the answer was complete */
	PG_WIRE_STATE_COUNT
};

extern const char *const pg_wire_state_names[PG_WIRE_STATE_COUNT];

/* One server answer being read. Zero it (or pg_wire_init()) per attempt. */
struct pg_wire {
	enum pg_wire_state state;
	int auth_ok;                /* AuthenticationOk seen */
	char sqlstate[6];           /* PG_WIRE_ERROR: 5 characters [0-9A-Z], or "" */
	size_t have;                /* bytes of the current message in buf */
	unsigned char buf[5 + PG_WIRE_MESSAGE_MAX];
};

void pg_wire_init(struct pg_wire *w);

/* Read len more bytes from the server. Returns the new state; once it is not
 * PG_WIRE_MORE it stays so, and later bytes are ignored. Bytes are consumed
 * whatever their split: feeding a stream in one piece or in any pieces gives
 * the same state. */
enum pg_wire_state pg_wire_feed(struct pg_wire *w, const void *data, size_t len);

/* The peer closed the connection: PG_WIRE_MORE becomes PG_WIRE_CLOSED; a
 * decided state stays. Returns the new state. */
enum pg_wire_state pg_wire_eof(struct pg_wire *w);

/* A decided state as a probe result with PQping's semantics, and a one-line
 * detail (NUL-terminated within detail_len, may be ""): READY -> ok "login
 * accepted"; AUTH -> ok "password requested"; ERROR 57P03 -> rejected;
 * another SQLSTATE -> ok, the SQLSTATE as detail; ERROR without one ->
 * bad response; BAD -> bad response "protocol error"; CLOSED -> bad response
 * "connection closed". PG_WIRE_MORE is a caller's bug: internal error. */
enum probe_result pg_wire_result(const struct pg_wire *w, char *detail, size_t detail_len);

/* Write a StartupMessage (protocol 3.0) with the parameters keys[i]=vals[i]
 * (NULL-terminated keys) into buf. Returns its length, or 0 when it does not
 * fit in len. */
size_t pg_wire_startup(unsigned char *buf, size_t len, const char *const *keys,
		       const char *const *vals);

/* Terminate ('X'): what a client sends before it closes a session. */
#define PG_WIRE_TERMINATE "X\0\0\0\4"
#define PG_WIRE_TERMINATE_LEN 5

#endif
