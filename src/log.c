/* log.c - one line per event on stderr, never blocking the loop on it.
 *
 * Under systemd (JOURNAL_STREAM set) the journal adds its own timestamp and
 * reads the <N> priority prefix; elsewhere each line starts with a UTC
 * timestamp so that test and terminal output can be read on its own.
 *
 * The loop that logs also answers HAProxy, so a stderr nobody reads (a stuck
 * journald, a full pipe) must not stop it: lines are written without
 * blocking, whole or not at all. A line that does not fit is dropped and
 * counted, and the next line that fits is preceded by one saying how many
 * were lost. A journal stream is a socket: send(MSG_DONTWAIT). A pipe or a
 * terminal is opened again through /proc/self/fd/2 with O_NONBLOCK, a file
 * description of our own, so that the flag never reaches a shell or a
 * pipeline sharing the original one. A regular file is written as is (it
 * has no reader to wait for). */
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A line with its prefix: under PIPE_BUF, so that a pipe takes it whole. */
#define LOG_LINE_MAX 1200
/* log_fatal's last words wait this long for a full stderr. */
#define LOG_FATAL_WAIT_MS 1000

enum log_out { LOG_OUT_UNSET, LOG_OUT_SOCKET, LOG_OUT_FD };

static enum log_level log_min = LOG_LEVEL_INFO;
static int log_journal = -1; /* -1: not decided yet */
static enum log_out log_out = LOG_OUT_UNSET;
static int log_fd = 2;
static unsigned long long log_lost;  /* dropped since the last notice */
static unsigned long long log_lost_total;
static char log_tail[LOG_LINE_MAX];  /* the rest of a line a socket took part of */
static size_t log_tail_len;

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

unsigned long long log_dropped(void)
{
	return log_lost_total;
}

/* Decide once how stderr is written without blocking. */
static void log_open(void)
{
	struct stat st;
	int fd;

	log_out = LOG_OUT_FD;
	log_fd = 2;
	if (fstat(2, &st) != 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		log_out = LOG_OUT_SOCKET;
		return;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode))
		return;
	/* Without /proc the writes stay blocking, as before. */
	fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0)
		log_fd = fd;
}

/* One non-blocking write: bytes taken, or -1 (EAGAIN: try later). */
static ssize_t log_put(const char *p, size_t len)
{
	ssize_t n;

	do {
		if (log_out == LOG_OUT_SOCKET)
			n = send(2, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			n = write(log_fd, p, len);
	} while (n < 0 && errno == EINTR);
	return n;
}

/* Write p whole, or drop it. A socket may take part of it: the rest is kept
 * (one line at most) and finished before anything else, so lines are never
 * torn. Returns 0 when written (or its rest kept), -1 when dropped. */
static int log_put_line(const char *p, size_t len)
{
	ssize_t n;

	if (log_tail_len) {
		n = log_put(log_tail, log_tail_len);
		if (n > 0) {
			memmove(log_tail, log_tail + n, log_tail_len - (size_t)n);
			log_tail_len -= (size_t)n;
		}
		if (log_tail_len)
			return -1;
	}
	n = log_put(p, len);
	if (n < 0)
		return -1;
	if ((size_t)n < len) {
		log_tail_len = len - (size_t)n;
		memcpy(log_tail, p + n, log_tail_len);
	}
	return 0;
}

/* "<prefix>message\n" into line; returns its length. */
static size_t log_format(enum log_level level, const char *msg, char *line, size_t size)
{
	int n;

	if (log_journal < 0)
		log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (log_journal) {
		n = snprintf(line, size, "<%d>%s: %s\n", log_level_prio[level],
			     log_level_names[level], msg);
	} else {
		char stamp[UTIL_ISO8601_SIZE];

		util_iso8601(util_wall_s(), stamp, sizeof(stamp));
		n = snprintf(line, size, "%s happac %s: %s\n", stamp,
			     log_level_names[level], msg);
	}
	if (n < 0)
		return 0;
	if ((size_t)n >= size) {
		/* Truncated: still one line. */
		n = (int)size - 1;
		line[n - 1] = '\n';
	}
	return (size_t)n;
}

static void log_emit(enum log_level level, const char *msg)
{
	char line[LOG_LINE_MAX];
	size_t len;

	if (log_out == LOG_OUT_UNSET)
		log_open();
	fflush(stderr); /* anything printed with stdio before goes first */
	if (log_lost) {
		char note[128];

		snprintf(note, sizeof(note), "log: %llu line%s dropped: stderr was not "
			 "being read", log_lost, log_lost == 1 ? "" : "s");
		len = log_format(LOG_LEVEL_WARN, note, line, sizeof(line));
		if (log_put_line(line, len) != 0) {
			log_lost++;
			log_lost_total++;
			return;
		}
		log_lost = 0;
	}
	len = log_format(level, msg, line, sizeof(line));
	if (log_put_line(line, len) != 0) {
		log_lost++;
		log_lost_total++;
	}
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
	char msg[1024];

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	log_emit(level, msg);
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
	char msg[1024];
	unsigned long long lost;
	int sent = 0;
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	/* The loop is over: the reason to exit may wait a little for room. */
	for (int waited = 0; waited <= LOG_FATAL_WAIT_MS; waited += 50) {
		if (!sent) {
			lost = log_lost_total;
			log_emit(LOG_LEVEL_ERROR, msg);
			sent = log_lost_total == lost;
		} else if (log_tail_len) {
			log_put_line("", 0); /* the rest of a line a socket took part of */
		}
		if (sent && !log_tail_len)
			break;
		poll(NULL, 0, 50);
	}
	exit(1);
}
