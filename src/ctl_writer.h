/* ctl_writer.h - the state file, written off the event loop.
 *
 * ctl_state_save() ends in two fsync()s; on a busy or stalled disk they take
 * as long as the disk wants, and the loop answers HAProxy's agent checks. A
 * writer owns one thread that writes the latest override it was handed:
 * overrides put while a write runs collapse into one (the latest state
 * wins), and the loop hears of every finished write through a pipe it
 * watches, so done() always runs on the loop thread. The thread touches
 * nothing but the state file and the writer's own fields (no log, no
 * libevent), and blocks every signal. */
#ifndef HAPPAC_CTL_WRITER_H
#define HAPPAC_CTL_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ctl_override;
struct ctl_writer;

/* Called on the loop thread after a write ended: gen is the generation that
 * was written (ctl_writer_put() numbers them from 1), rc 0 or -1 with err
 * naming the path. Every generation up to gen is settled by it. */
typedef void (*ctl_writer_done_fn)(void *arg, uint64_t gen, int rc, const char *err);

/* Start the thread for path (copied). Returns NULL with err set. */
struct ctl_writer *ctl_writer_new(struct event_base *base, const char *path,
				  ctl_writer_done_fn done, void *arg, char *err,
				  size_t errlen);
/* Hand o (copied) to the thread; never blocks on the disk. Returns its
 * generation. */
uint64_t ctl_writer_put(struct ctl_writer *w, const struct ctl_override *o);
/* Block until everything put so far is on disk (or failed), then run done()
 * for it. For a second instance about to read the same file. */
void ctl_writer_flush(struct ctl_writer *w);
/* Write what is still pending, stop the thread, free. done() is not called
 * again. NULL is fine. */
void ctl_writer_free(struct ctl_writer *w);

#endif
