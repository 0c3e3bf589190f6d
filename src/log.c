/* log.c - one line per event on stderr.
 *
 * Under systemd (JOURNAL_STREAM set) the journal adds its own timestamp and
 * reads the <N> priority prefix; elsewhere each line starts with a UTC
 * timestamp so that test and terminal output can be read on its own. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static enum log_level log_min = LOG_LEVEL_INFO;
static int log_journal = -1; /* -1: not decided yet */

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_ERROR] = "error",
};

/* syslog priorities for sd-daemon(3) prefixes */
static const int log_level_prio[] = {
	[LOG_LEVEL_DEBUG] = 7,
	[LOG_LEVEL_INFO] = 6,
	[LOG_LEVEL_WARN] = 4,
	[LOG_LEVEL_ERROR] = 3,
};

void log_set_level(enum log_level level)
{
	log_min = level;
}

int log_debug_enabled(void)
{
	return log_min <= LOG_LEVEL_DEBUG;
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line), fmt, ap);

	if (n < 0)
		return;
	if (log_journal < 0)
		log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (log_journal) {
		fprintf(stderr, "<%d>%s: %s\n", log_level_prio[level],
			log_level_names[level], line);
	} else {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ happac %s: %s\n", stamp,
			ts.tv_nsec / 1000000L, log_level_names[level], line);
	}
	fflush(stderr);
}

#define LOG_DEFINE(name, level)                       \
	void name(const char *fmt, ...)               \
	{                                             \
		va_list ap;                           \
		if (log_min > (level))                \
			return;                       \
		va_start(ap, fmt);                    \
		log_vwrite((level), fmt, ap);         \
		va_end(ap);                           \
	}

LOG_DEFINE(log_debug, LOG_LEVEL_DEBUG)
LOG_DEFINE(log_info, LOG_LEVEL_INFO)
LOG_DEFINE(log_warn, LOG_LEVEL_WARN)
LOG_DEFINE(log_error, LOG_LEVEL_ERROR)

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
