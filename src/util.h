/* util.h - the few small helpers every module would otherwise write again:
 * clocks, a JSON string, one timestamp format, IPv6 brackets, freeing an
 * event that may not exist.
 *
 * Nothing here allocates, blocks or logs. */
#ifndef HAPPAC_UTIL_H
#define HAPPAC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in microseconds: deadlines, ages, durations. */
int64_t util_mono_us(void);

/* CLOCK_REALTIME as Unix seconds: what is shown to people and stored. */
double util_wall_s(void);

/* The one timestamp format of happac's output (the log, /status):
 * "2024-11-27T01:02:03.456Z", UTC with milliseconds. buf gets at least
 * UTIL_ISO8601_SIZE bytes; a time gmtime cannot take gives "". */
#define UTIL_ISO8601_SIZE 32
void util_iso8601(double t, char *buf, size_t len);

/* s as a JSON string, quotes included: '"' and '\' escaped with a
 * backslash, every control character (below 0x20, and 0x7f) as \u00XX,
 * other bytes as they are. Writes what fits into buf without cutting an
 * escape, always NUL-terminated (len > 0); returns the length of the whole
 * string, as snprintf does: the result is complete when it is below len
 * (buf may be NULL when len is 0, to size it). */
size_t util_json_quote(char *buf, size_t len, const char *s);

/* event_free(ev) for an event that may never have been made: libevent's
 * own event_free() does not take NULL. */
struct event;
void util_event_free(struct event *ev);

/* s without leading blanks (space, tab) and trailing whitespace (also CR,
 * LF): the end is cut in place, the start returned. For line-based files. */
char *util_trim(char *s);

/* The n bytes at s with one pair of enclosing brackets removed ("[::1]" ->
 * "::1"), into out. Returns 1 when brackets were removed, 0 when there
 * were none, -1 when a bracket is left anywhere or the result does not fit
 * outlen. */
int util_unbracket(const char *s, size_t n, char *out, size_t outlen);

/* Split "HOST:PORT" or "[HOST]:PORT" (IPv6 needs the brackets: a colon in an
 * unbracketed host is refused). The host goes to host (may be empty),
 * *bracketed says which form it was; returns the port text after the
 * colon, or NULL when s has neither form or the host does not fit. */
const char *util_split_hostport(const char *s, char *host, size_t hostlen, int *bracketed);

/* host as it goes before ":PORT" in a target or URL: an IPv6 literal (any
 * host with a ':') in brackets. Returns what snprintf returns. */
int util_host_bracketed(char *buf, size_t len, const char *host);

#endif
