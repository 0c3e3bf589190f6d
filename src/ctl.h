/* ctl.h - operator overrides: the control socket, its client, the state file.
 *
 * An operator sets an admin state (drain, maint) or clears it (ready,
 * optionally with a gradual weight ramp) through a unix stream socket that
 * happac owns, with `happac ctl ...`. The override survives a restart in a
 * state file. ctl holds no verdict logic: the caller composes the agent line
 * from ctl_get() and ctl_ramp_weight(), because the admin words override
 * what an operator set by hand in HAProxy and must only be said on purpose.
 *
 * Protocol: one request line per connection (at most CTL_LINE_MAX bytes with
 * its newline), one reply line, close. Requests: "drain", "maint", "ready",
 * "ready --ramp DURATION", "status". Replies: "ok <admin>" (an accepted
 * change or a no-op), "error <message>", or for status one JSON object. */
#ifndef HAPPAC_CTL_H
#define HAPPAC_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct ctl;

#define CTL_DEFAULT_SOCKET "/run/happac/happac.sock"
#define CTL_LINE_MAX 256          /* a request line, newline included */
#define CTL_REPLY_MAX 1024        /* a reply line, newline included */
#define CTL_DEADLINE_MS 2000      /* a control connection's whole life */
#define CTL_MAX_CONNS 16          /* concurrent control connections */
#define CTL_RAMP_MIN_MS 1000      /* below one agent-inter a ramp means nothing */
#define CTL_RAMP_MAX_MS 86400000  /* a day */

enum ctl_admin { CTL_ADMIN_READY, CTL_ADMIN_DRAIN, CTL_ADMIN_MAINT, CTL_ADMIN_COUNT };
extern const char *const ctl_admin_names[CTL_ADMIN_COUNT]; /* "ready", ... */

/* The override in force. admin READY with ramp_ms 0 means "no override". */
struct ctl_override {
	enum ctl_admin admin;
	uid_t uid;                /* who made the latest change (SO_PEERCRED) */
	double set_at_s;          /* wall clock of the latest change; 0 = never */
	int ramp_ms;              /* running `ready --ramp` length; 0 = none */
	double ramp_start_s;      /* wall clock the ramp started */
	enum ctl_admin prev_admin; /* what the latest change replaced: lets the
				    * caller say `ready` after a drain/maint it
				    * reported, also across a restart */
};

/* Listen on socket_path (a unix stream socket, mode 0660; a stale socket
 * file is replaced, a live one or a non-socket is left alone and is an
 * error; the directory must exist) and restore the override from state_path
 * (NULL: no persistence; its directory must exist). A state file whose admin
 * line is bad or missing, or that cannot be read, is an error (the node may
 * be in maintenance: never guessed); bad auxiliary fields are logged with
 * file and line and dropped. Changes are written by a thread (ctl_writer.h).
 * changed(arg) is called after every accepted change, before the requester
 * gets its "ok" (which waits for the state file, up to CTL_DEADLINE_MS),
 * and when a ramp's weight moves or the ramp ends; it must not free the ctl.
 * Returns NULL with err set (one line naming the path) on failure. */
struct ctl *ctl_new(struct event_base *base, const char *socket_path,
		    const char *state_path, void (*changed)(void *arg), void *arg,
		    char *err, size_t errlen);
/* The override in force; valid until the next loop iteration. */
const struct ctl_override *ctl_get(const struct ctl *c);
/* During a ramp: the weight in percent (1..100) at wall time now_s; -1 when
 * no ramp runs (none, or it has finished). */
int ctl_ramp_weight(const struct ctl *c, double now_s);
/* The caller has just composed the agent lines from the override, at
 * monotonic time now_us, and says `ready` for ready_window_ms after a
 * drain/maint it reported ends. Once `ready` has been said for that whole
 * window, prev is forgotten and saved, so that a later start answers plain
 * `up`; a start inside the window says `ready` for a whole window again
 * (HAProxy may not have heard it). */
void ctl_answered(struct ctl *c, int64_t now_us, int ready_window_ms);
/* The status JSON object (no newline) into buf; returns its length. The same
 * text `happac ctl status` prints, for the HTTP /status page. */
size_t ctl_status(const struct ctl *c, double now_s, char *buf, size_t len);
/* Close the connections and the socket, and unlink the socket file if it
 * is still ours. NULL is fine. */
void ctl_free(struct ctl *c);

/* A reload, in two steps so that it can fail as a whole.
 * ctl_reload_prepare() readies the server for socket_path and state_path
 * (socket_path NULL: no control socket) next to cur (NULL: none runs) and
 * changes nothing cur does: a new socket is bound here (the errors of
 * ctl_new()), the same socket (by name or by file) is kept open, and a new
 * state file's directory is checked. ctl_reload_commit() then returns the
 * server to use from now on and frees cur if that is not cur; the override
 * in force carries over to it, ramp included, and is written to a new state
 * file (a server started where none ran restores it from the state file, as
 * at start). ctl_reload_abort() undoes the prepare (NULL is fine). Either
 * one frees r, and one of them must follow before the loop runs again. */
struct ctl_reload;
struct ctl_reload *ctl_reload_prepare(struct ctl *cur, struct event_base *base,
				      const char *socket_path, const char *state_path,
				      void (*changed)(void *arg), void *arg, char *err,
				      size_t errlen);
struct ctl *ctl_reload_commit(struct ctl *cur, struct ctl_reload *r);
void ctl_reload_abort(struct ctl_reload *r);

/* `happac ctl [--socket PATH] drain|maint|ready [--ramp D]|status`, argv[0]
 * being "ctl". Prints the reply. Exit status: 0 ok, 1 the daemon said
 * error, 2 bad usage or no daemon on the socket. */
int ctl_main(int argc, char **argv);

/* ---- pure parts, exposed for the unit tests */

enum ctl_cmd { CTL_CMD_DRAIN, CTL_CMD_MAINT, CTL_CMD_READY, CTL_CMD_STATUS, CTL_CMD_COUNT };
extern const char *const ctl_cmd_names[CTL_CMD_COUNT];

struct ctl_request {
	enum ctl_cmd cmd;
	int ramp_ms;              /* ready --ramp; 0 = none */
};

/* Parse one request line of len bytes (a trailing "\r\n" or "\n" allowed).
 * Returns 0, or -1 with err (one line, no newline). */
int ctl_request_parse(const char *line, size_t len, struct ctl_request *req,
		      char *err, size_t errlen);
/* The weight of o's ramp at wall time now_s: 1..100, -1 when no ramp runs.
 * A wall clock behind the ramp's start counts as its start. */
int ctl_override_weight(const struct ctl_override *o, double now_s);
/* Read a state file into o. Returns 0 (loaded), 1 (no such file: o is "no
 * override"), 2 (loaded, but bad auxiliary lines were dropped: prev, uid,
 * set_at or the ramp took safe values, and err lists each as "PATH:LINE:
 * what (what it costs)", joined by "; "), or -1 with err "PATH:LINE: what"
 * (or "PATH: what") and o "no override" when the admin state is not known:
 * a bad, repeated or missing admin line, or an unreadable file. */
int ctl_state_load(const char *path, struct ctl_override *o, char *err,
		   size_t errlen);
/* Write o to path atomically (PATH.tmp, fsync, rename, fsync of the
 * directory). Blocks on the disk: the daemon calls it from its writer
 * thread only. Returns 0, or -1 with err naming the path. */
int ctl_state_save(const char *path, const struct ctl_override *o, char *err,
		   size_t errlen);
/* The status JSON of o (state_path may be NULL; saved: the last write
 * succeeded). Returns the length written (truncated to len - 1). */
size_t ctl_status_render(const struct ctl_override *o, double now_s,
			 const char *state_path, int saved, char *buf, size_t len);

#endif
