/* util.c - clocks, JSON strings, timestamps, IPv6 brackets. */
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double util_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void util_iso8601(double t, char *buf, size_t len)
{
	time_t sec = (time_t)t;
	int ms = (int)((t - (double)sec) * 1000);
	struct tm tm;
	char stamp[24];

	if (len == 0)
		return;
	buf[0] = '\0';
	if (!gmtime_r(&sec, &tm) || !strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm))
		return;
	snprintf(buf, len, "%s.%03dZ", stamp, ms < 0 ? 0 : ms > 999 ? 999 : ms);
}

/* Append n bytes to buf if they fit whole (keeping room for the NUL);
 * once one does not, nothing more is written. need counts them all. */
static void util_put(char *buf, size_t len, size_t *used, size_t *need, int *full,
		     const char *p, size_t n)
{
	*need += n;
	if (*full || *used + n >= len) {
		*full = 1;
		return;
	}
	memcpy(buf + *used, p, n);
	*used += n;
}

size_t util_json_quote(char *buf, size_t len, const char *s)
{
	size_t need = 0, used = 0;
	int full = 0;

	util_put(buf, len, &used, &need, &full, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char esc[8];

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			util_put(buf, len, &used, &need, &full, esc, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			util_put(buf, len, &used, &need, &full, esc, 6);
		} else {
			util_put(buf, len, &used, &need, &full, s, 1);
		}
	}
	util_put(buf, len, &used, &need, &full, "\"", 1);
	if (len)
		buf[used] = '\0';
	return need;
}

char *util_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
			   end[-1] == '\n'))
		*--end = '\0';
	return s;
}

int util_unbracket(const char *s, size_t n, char *out, size_t outlen)
{
	int bracketed = n >= 2 && s[0] == '[' && s[n - 1] == ']';

	if (bracketed) {
		s++;
		n -= 2;
	}
	if (memchr(s, '[', n) || memchr(s, ']', n) || n >= outlen)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return bracketed;
}

const char *util_split_hostport(const char *s, char *host, size_t hostlen, int *bracketed)
{
	const char *h = s, *colon;
	size_t hlen;

	*bracketed = s[0] == '[';
	if (*bracketed) {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return NULL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return NULL;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen))
			return NULL; /* IPv6 needs brackets to tell the port apart */
	}
	if (hlen >= hostlen)
		return NULL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return colon + 1;
}

int util_host_bracketed(char *buf, size_t len, const char *host)
{
	return snprintf(buf, len, strchr(host, ':') ? "[%s]" : "%s", host);
}

void util_event_free(struct event *ev)
{
	if (ev)
		event_free(ev);
}
