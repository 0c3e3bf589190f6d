/* Unit tests for log.c: a stderr nobody reads never blocks a log call;
 * lines are dropped whole and counted, and the next line that fits says how
 * many were lost (issue 11 #11). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Everything in the pipe's read end, up to len - 1 bytes. */
static size_t drain(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	return got;
}

static void test_full_pipe_never_blocks(void **state)
{
	static char buf[1 << 20];
	char pad[200];
	int p[2], saved = dup(2), lines = 0;
	double t0, took;
	unsigned long long dropped;
	size_t got;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	/* The first log call decides how stderr is written: a pipe. */
	assert_int_equal(dup2(p[1], 2), 2);
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	t0 = mono_s();
	/* About 2 MB into a 64 kB pipe that nobody reads. */
	for (int i = 0; i < 10000; i++)
		log_info("line %d %s", i, pad);
	took = mono_s() - t0;
	dropped = log_dropped();
	got = drain(p[0], buf, sizeof(buf));
	log_info("after the reader came back");
	dup2(saved, 2);
	close(saved);
	close(p[1]);
	fprintf(stderr, "10000 lines into a full pipe: %.1f ms, %llu dropped\n",
		took * 1000, dropped);
	/* A functional bound, not a speed target: a blocked write never returns. */
	assert_true(took < 5.0);
	assert_in_range(dropped, 1, 9999);
	/* What got through is whole lines. */
	assert_true(got > 0 && buf[got - 1] == '\n');
	for (char *l = buf, *nl; (nl = strchr(l, '\n')); l = nl + 1) {
		/* A notice may fit where a longer line did not. */
		if (strstr(l, "happac warning: log: ") == l + 25)
			continue;
		if (strstr(l, "happac info: line ") != l + 25)
			fail_msg("torn or foreign line: '%.*s'", (int)(nl - l), l);
		assert_true(nl - l > (ptrdiff_t)sizeof(pad));
		lines++;
	}
	assert_int_equal((unsigned long long)lines + dropped, 10000);
	/* Then the loss is told, before the next line. */
	got = drain(p[0], buf, sizeof(buf));
	close(p[0]);
	{
		char *note, *after;

		note = strstr(buf, " lines dropped: stderr was not being read\n");
		after = strstr(buf, "happac info: after the reader came back\n");
		if (!note || !after || note > after)
			fail_msg("no loss notice before the next line in '%s'", buf);
	}
	assert_int_equal(log_dropped(), dropped);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_pipe_never_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
