/* fsync_stall_standin.c - a STAND-IN for a stalled disk (LD_PRELOAD).
 *
 * The real thing (a dm-delay device, a FUSE file system that stops
 * answering) needs device-mapper or FUSE, which the test machines do not
 * have. This shim makes fsync() and fdatasync() stall the way a stuck disk
 * does, on demand: while the file named by $FSYNC_STALL_GATE exists, every
 * call waits (at most 30 s); on entering the wait it creates
 * "$FSYNC_STALL_GATE.stalled", the readiness signal the test waits for.
 * Without the variable it changes nothing.
 *
 *   cc -shared -fPIC -o fsync_stall.so fsync_stall_standin.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void stall(void)
{
	const char *gate = getenv("FSYNC_STALL_GATE");
	char mark[4096];
	struct timespec step = { 0, 5000000 };

	if (!gate || access(gate, F_OK) != 0)
		return;
	snprintf(mark, sizeof(mark), "%s.stalled", gate);
	close(open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	for (int i = 0; i < 6000 && access(gate, F_OK) == 0; i++)
		nanosleep(&step, NULL);
}

int fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	stall();
	return real(fd);
}

int fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	stall();
	return real(fd);
}
