/* ctl_harness.c - the control socket on a libevent loop, without the probes,
 * until main.c wires ctl in; also the `happac ctl` client.
 *
 *   ctl_harness serve SOCKET STATE|- [READY_MS]
 *                                      run ctl_new (STATE "-": no state file);
 *                                      print "listening" once ready, one
 *                                      "changed ..." line per change; stop
 *                                      cleanly on SIGTERM/SIGINT. With
 *                                      READY_MS, call ctl_answered() every
 *                                      50ms as the daemon's rounds do, with
 *                                      that ready window
 *   ctl_harness ctl ARGS...            ctl_client_main(), as `happac ctl ARGS...`
 *
 * stdout carries the events the tests wait for; stderr carries happac's log. */
#include "ctl.h"

#include <event2/event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct ctl *harness_ctl;
static int harness_ready_ms = -1;

static double harness_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void harness_changed(void *arg)
{
	const struct ctl_override *o = ctl_get(harness_ctl);

	(void)arg;
	printf("changed admin=%s prev=%s uid=%u ramp_ms=%d weight=%d\n",
	       ctl_state_admin_names[o->admin], ctl_state_admin_names[o->prev_admin],
	       (unsigned)o->uid, o->ramp_ms, ctl_ramp_weight(harness_ctl, harness_wall_s()));
	fflush(stdout);
}

static int64_t harness_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A probe round's end in the daemon: the lines were composed just now. */
static void harness_round(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ctl_answered(harness_ctl, harness_mono_us(), harness_ready_ms);
}

static void harness_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopexit(arg, NULL);
}

static int harness_serve(const char *sock, const char *state)
{
	struct event_base *base = event_base_new();
	struct event *term, *intr, *round = NULL;
	struct timeval every = { 0, 50000 };
	char err[1024];

	signal(SIGPIPE, SIG_IGN);
	harness_ctl = ctl_new(base, sock, strcmp(state, "-") ? state : NULL,
			      harness_changed, NULL, err, sizeof(err));
	if (!harness_ctl) {
		fprintf(stderr, "harness: %s\n", err);
		event_base_free(base);
		return 1;
	}
	term = evsignal_new(base, SIGTERM, harness_stop, base);
	intr = evsignal_new(base, SIGINT, harness_stop, base);
	evsignal_add(term, NULL);
	evsignal_add(intr, NULL);
	if (harness_ready_ms >= 0) {
		round = event_new(base, -1, EV_PERSIST, harness_round, NULL);
		event_add(round, &every);
	}
	printf("listening admin=%s ramp_ms=%d\n",
	       ctl_state_admin_names[ctl_get(harness_ctl)->admin], ctl_get(harness_ctl)->ramp_ms);
	fflush(stdout);
	event_base_dispatch(base);
	ctl_free(harness_ctl);
	event_free(term);
	event_free(intr);
	if (round)
		event_free(round);
	event_base_free(base);
	printf("stopped\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_client_main(argc - 1, argv + 1);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "serve")) {
		if (argc == 5) {
			char *end;
			long ms = strtol(argv[4], &end, 10);

			if (*end || ms < 0 || ms > 600000) {
				fprintf(stderr, "harness: bad READY_MS '%s'\n", argv[4]);
				return 2;
			}
			harness_ready_ms = (int)ms;
		}
		return harness_serve(argv[2], argv[3]);
	}
	fprintf(stderr, "usage: ctl_harness serve SOCKET STATE|- [READY_MS] | ctl ARGS...\n");
	return 2;
}
