/* ctl_state.h - the operator override: what it holds, its weight ramp, its
 * state file and its status JSON. Pure but for the file I/O; the server
 * (ctl.c) keeps the override in force. */
#ifndef HAPPAC_CTL_STATE_H
#define HAPPAC_CTL_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ctl_admin { CTL_ADMIN_READY, CTL_ADMIN_DRAIN, CTL_ADMIN_MAINT, CTL_ADMIN_COUNT };
extern const char *const ctl_state_admin_names[CTL_ADMIN_COUNT]; /* "ready", ... */

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

/* "no override": ready, prev ready, never set. */
void ctl_state_none(struct ctl_override *o);
/* The weight of o's ramp at wall time now_s: 1..100, -1 when no ramp runs.
 * A wall clock behind the ramp's start counts as its start. */
int ctl_state_weight(const struct ctl_override *o, double now_s);
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
size_t ctl_state_status(const struct ctl_override *o, double now_s,
			const char *state_path, int saved, char *buf, size_t len);

/* The directory part of path: "." for a bare name, "/" for "/name". */
void ctl_state_dir_of(const char *path, char *buf, size_t len);

#endif
