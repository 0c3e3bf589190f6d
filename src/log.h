/* log.h - leveled logging to stderr (journald keeps it), never blocking:
 * a line stderr cannot take at once is dropped and counted. */
#ifndef HAPPAC_LOG_H
#define HAPPAC_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Set the lowest level that is printed (default LOG_LEVEL_INFO). */
void log_set_level(enum log_level level);
/* True when debug lines would be printed; lets callers skip building them. */
int log_debug_enabled(void);
/* Lines dropped because stderr could not take them without blocking (a
 * stuck journald, a pipe nobody reads); the log says how many, too. */
unsigned long long log_dropped(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log at error level and exit(1): only for local impossibilities. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
