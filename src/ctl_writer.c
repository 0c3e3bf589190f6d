/* ctl_writer.c - the state file written by a thread, the loop told by a pipe.
 *
 * Ownership: the loop thread owns the writer; the fields under mu are shared
 * with the thread, everything else is the loop's. The thread keeps no
 * pointer into the loop's data: it copies the override under mu. */
#include "ctl_writer.h"

#include "ctl.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ctl_writer {
	struct event_base *base;
	char *path;
	ctl_writer_done_fn done;
	void *arg;
	int pipe[2];               /* thread -> loop: "a write ended" */
	struct event *wake;
	pthread_t thread;
	int running;               /* the thread was started */
	uint64_t reported;         /* loop: the last generation done() saw */

	pthread_mutex_t mu;        /* guards everything below */
	pthread_cond_t cv;         /* want moved, a write ended, or stop */
	struct ctl_override want;
	uint64_t want_gen;         /* the latest put */
	uint64_t taken_gen;        /* the latest the thread started writing */
	uint64_t done_gen;         /* the latest the thread finished */
	int done_rc;
	char done_err[PATH_MAX + 128];
	int stop;
};

static void *ctl_writer_main(void *arg)
{
	struct ctl_writer *w = arg;
	struct ctl_override o;
	char err[sizeof(w->done_err)];
	uint64_t gen;
	ssize_t n;
	int rc;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->taken_gen == w->want_gen && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		/* Stopping still writes what was put last: a drain followed at
		 * once by SIGTERM must be on disk. */
		if (w->taken_gen == w->want_gen)
			break;
		o = w->want;
		gen = w->taken_gen = w->want_gen;
		pthread_mutex_unlock(&w->mu);

		err[0] = '\0';
		rc = ctl_state_save(w->path, &o, err, sizeof(err));

		pthread_mutex_lock(&w->mu);
		w->done_gen = gen;
		w->done_rc = rc;
		memcpy(w->done_err, err, sizeof(err));
		pthread_cond_broadcast(&w->cv);
		/* Non-blocking: a full pipe already holds a wake-up, so a byte
		 * that does not fit is not needed. */
		n = write(w->pipe[1], "w", 1);
		(void)n;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Report the latest finished write to done(), once per generation. */
static void ctl_writer_report(struct ctl_writer *w)
{
	char err[sizeof(w->done_err)];
	uint64_t gen;
	int rc;

	pthread_mutex_lock(&w->mu);
	gen = w->done_gen;
	rc = w->done_rc;
	memcpy(err, w->done_err, sizeof(err));
	pthread_mutex_unlock(&w->mu);
	if (gen == w->reported)
		return;
	w->reported = gen;
	w->done(w->arg, gen, rc, err);
}

static void ctl_writer_wake(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_writer *w = arg;
	char sink[64];

	(void)what;
	while (read(fd, sink, sizeof(sink)) > 0)
		;
	ctl_writer_report(w);
}

struct ctl_writer *ctl_writer_new(struct event_base *base, const char *path,
				  ctl_writer_done_fn done, void *arg, char *err,
				  size_t errlen)
{
	struct ctl_writer *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int e;

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->base = base;
	w->done = done;
	w->arg = arg;
	w->pipe[0] = w->pipe[1] = -1;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->path = strdup(path);
	if (!w->path) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (pipe2(w->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(err, errlen, "state file %s: cannot create the writer's pipe: %s",
			 path, strerror(errno));
		goto fail;
	}
	w->wake = event_new(base, w->pipe[0], EV_READ | EV_PERSIST, ctl_writer_wake, w);
	if (!w->wake || event_add(w->wake, NULL) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Signals stay with the loop thread: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&w->thread, NULL, ctl_writer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(err, errlen, "state file %s: cannot start the writer thread: %s",
			 path, strerror(e));
		goto fail;
	}
	w->running = 1;
	return w;
fail:
	ctl_writer_free(w);
	return NULL;
}

uint64_t ctl_writer_put(struct ctl_writer *w, const struct ctl_override *o)
{
	uint64_t gen;

	pthread_mutex_lock(&w->mu);
	w->want = *o;
	gen = ++w->want_gen;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return gen;
}

void ctl_writer_flush(struct ctl_writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->done_gen != w->want_gen)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	ctl_writer_report(w);
}

void ctl_writer_free(struct ctl_writer *w)
{
	if (!w)
		return;
	if (w->running) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	util_event_free(w->wake);
	if (w->pipe[0] >= 0)
		close(w->pipe[0]);
	if (w->pipe[1] >= 0)
		close(w->pipe[1]);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w->path);
	free(w);
}
