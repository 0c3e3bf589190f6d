/* ctl_request.h - the control protocol: its limits and its request line,
 * shared by the server (ctl.c, ctl_conn.c) and the client (ctl_client.c).
 *
 * One request line per connection (at most CTL_LINE_MAX bytes with its
 * newline), one reply line, close. Requests: "drain", "maint", "ready",
 * "ready --ramp DURATION", "status", "probe" (start a probe round now),
 * "stopping" (Patroni is about to stop PostgreSQL). Replies: "ok <admin>" (an accepted
 * change or a no-op), "error <message>", or for status one JSON object. */
#ifndef HAPPAC_CTL_REQUEST_H
#define HAPPAC_CTL_REQUEST_H

#include <stddef.h>

#define CTL_DEFAULT_SOCKET "/run/happac/happac.sock"
#define CTL_LINE_MAX 256          /* a request line, newline included */
#define CTL_REPLY_MAX 1024        /* a reply line, newline included */
#define CTL_DEADLINE_MS 2000      /* a control connection's whole life */
#define CTL_MAX_CONNS 16          /* concurrent control connections */
#define CTL_RAMP_MIN_MS 1000      /* below one agent-inter a ramp means nothing */
#define CTL_RAMP_MAX_MS 86400000  /* a day */

enum ctl_cmd { CTL_CMD_DRAIN, CTL_CMD_MAINT, CTL_CMD_READY, CTL_CMD_STATUS, CTL_CMD_PROBE,
	       CTL_CMD_STOPPING, CTL_CMD_COUNT };
extern const char *const ctl_request_cmd_names[CTL_CMD_COUNT];

struct ctl_request {
	enum ctl_cmd cmd;
	int ramp_ms;              /* ready --ramp; 0 = none */
};

/* Parse one request line of len bytes (a trailing "\r\n" or "\n" allowed).
 * Returns 0, or -1 with err (one line, no newline). */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *req,
		      char *err, size_t errlen);
#endif
