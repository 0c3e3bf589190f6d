/* ctl.h - operator overrides: the control socket server.
 *
 * An operator sets an admin state (drain, maint) or clears it (ready,
 * optionally with a gradual weight ramp) through a unix stream socket that
 * happac owns, with `happac ctl ...`. The override survives a restart in a
 * state file. ctl holds no verdict logic: the caller composes the agent line
 * from ctl_get() and ctl_ramp_weight(), because the admin words override
 * what an operator set by hand in HAProxy and must only be said on purpose.
 *
 * The protocol is in ctl_request.h, the override and its state file in
 * ctl_state.h, the client in ctl_client.h, the connections in ctl_conn.c. */
#ifndef HAPPAC_CTL_H
#define HAPPAC_CTL_H

#include "ctl_client.h"
#include "ctl_request.h"
#include "ctl_state.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct ctl;

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
/* `happac ctl probe` and `happac ctl stopping` (Patroni's callbacks and
 * before_stop hook) call probe(arg, stopping) and are answered at once.
 * Set again after every ctl_new() and ctl_reload_commit(). NULL is fine. */
void ctl_set_probe(struct ctl *c, void (*probe)(void *arg, int stopping), void *arg);
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

#endif
