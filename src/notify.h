/* notify.h - systemd's notify protocol (sd_notify) without libsystemd.
 *
 * One AF_UNIX datagram per message to $NOTIFY_SOCKET ("/path", or "@name" for
 * the abstract namespace), as sd_notify(3) documents it. Everything here is
 * best effort: without NOTIFY_SOCKET every call is a no-op, and a failure to
 * send is logged once (per run of failures) and never stops the daemon. The
 * module keeps its own state, so there is one notifier per process. */
#ifndef HAPPAC_NOTIFY_H
#define HAPPAC_NOTIFY_H

struct event_base;

/* Read NOTIFY_SOCKET and open the socket. If WATCHDOG_USEC is set and
 * WATCHDOG_PID is unset or our pid, arm a timer on base that sends WATCHDOG=1
 * every half of that period. Call once at start-up, before the loop runs;
 * base must outlive notify_free(). Calling it again starts over. */
void notify_init(struct event_base *base);

/* READY=1 with STATUS=status (status may be NULL). Send it once the daemon
 * really answers (after the first probe round), and again after a reload
 * that followed notify_reloading(). status is copied up to its first line
 * end (so the agent line may be passed with its '\n'), other control bytes
 * become spaces, and it is cut at 256 bytes. */
void notify_ready(const char *status);

/* STATUS=status: the line `systemctl status` shows, e.g. the verdict.
 * Same rules for status as notify_ready(); NULL sends nothing. */
void notify_status(const char *status);

/* RELOADING=1 with MONOTONIC_USEC=now. systemd then waits for READY=1,
 * so the reload must end with notify_ready(), also when it failed. */
void notify_reloading(void);

/* STOPPING=1: the daemon is shutting down (SIGTERM/SIGINT). Also stops the
 * watchdog timer, so it no longer keeps the loop busy. */
void notify_stopping(void);

/* Stop the watchdog timer and close the socket. Safe to call twice and
 * without notify_init(). */
void notify_free(void);

#endif
