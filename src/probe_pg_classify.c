/* probe_pg_classify.c - a failed libpq login, classified (split from
 * probe_pg.c, which drives the login). */
#include "probe_pg_classify.h"

#include <stdio.h>
#include <string.h>

/* With PQERRORS_VERBOSE, a server's error reads "FATAL:  57P03: text". Returns
 * a pointer to the SQLSTATE, or NULL when the message holds none. */
static const char *probe_pg_sqlstate(const char *message)
{
	static const char *const severities[] = { "FATAL:  ", "ERROR:  ", "PANIC:  " };

	for (size_t i = 0; i < sizeof(severities) / sizeof(severities[0]); i++) {
		const char *s = strstr(message, severities[i]);

		if (s && strlen(s) >= 8 + 6 && s[8 + 5] == ':')
			return s + 8;
	}
	return NULL;
}

/* Failures before any server error: refused, unreachable, dropped. */
static enum probe_result probe_pg_classify_transport(const char *message, int established,
						     char *detail, size_t detail_len)
{
	if (strstr(message, "Connection refused"))
		return PROBE_REFUSED;
	if (!established) {
		const char *colon = strrchr(message, ':');
		const char *cause = message;

		/* libpq: "...failed: No route to host\n": keep the cause. */
		if (colon) {
			cause = colon + 1;
			if (*cause == ' ')
				cause++;
		}
		snprintf(detail, detail_len, "%s", cause);
		detail[strcspn(detail, "\n")] = '\0';
		return PROBE_CONNECT;
	}
	snprintf(detail, detail_len, "%s",
		 strstr(message, "closed the connection") ? "connection closed"
							  : "protocol error");
	return PROBE_BAD_RESPONSE;
}

/* "57P03: the database system is starting up\n..." -> "57P03 the database
 * system is starting up" */
static void probe_pg_error_detail(const char *code, char *detail, size_t detail_len)
{
	snprintf(detail, detail_len, "%.5s %s", code, code + 7);
	detail[strcspn(detail, "\n")] = '\0';
}

enum probe_result probe_pg_classify_login(const char *message, int established,
					  char *detail, size_t detail_len)
{
	const char *code = probe_pg_sqlstate(message);

	detail[0] = '\0';
	if (code) {
		probe_pg_error_detail(code, detail, detail_len);
		return strncmp(code, "57P03", 5) == 0 ? PROBE_REJECTED
						     : PROBE_LOGIN_FAILED;
	}
	if (strstr(message, "no password supplied")) {
		snprintf(detail, detail_len, "password required (use a passfile)");
		return PROBE_LOGIN_FAILED;
	}
	return probe_pg_classify_transport(message, established, detail, detail_len);
}
