/*
 * floor: the least any agent-check server can do, to measure happac against.
 *
 * One thread, raw epoll on the listening socket, accept4() until EAGAIN, write the
 * fixed line "up\n", close. No parsing, no timers, no allocation. Whatever the
 * machine does per connection (handshake, accept, write, FIN) is in this figure, so
 * happac's throughput divided by this one is the cost of happac itself, and holds on
 * a noisy shared machine when both are measured in the same run.
 *
 * Loopback only, like the load client. Stops on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t floor_stop;

static void on_signal(int sig)
{
	(void)sig;
	floor_stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: floor ADDR PORT   (ADDR in 127.0.0.0/8 or ::1)\n");
	exit(2);
}

static int listen_on(const char *addr, const char *port_s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	char *end;
	long port;
	int fd, one = 1;

	errno = 0;
	port = strtol(port_s, &end, 10);
	if (errno || end == port_s || *end || port < 1 || port > 65535) {
		fprintf(stderr, "floor: PORT: bad value '%s' (want 1..65535)\n", port_s);
		exit(2);
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1 &&
	    (ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 &&
		   IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		len = sizeof(*sin6);
	} else {
		fprintf(stderr, "floor: ADDR: '%s' is not a loopback address literal\n", addr);
		exit(2);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("floor: socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		fprintf(stderr, "floor: bind %s:%ld: %s\n", addr, port, strerror(errno));
		exit(1);
	}
	/* The kernel caps this at net.core.somaxconn. */
	if (listen(fd, 4096) < 0) {
		perror("floor: listen");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	static const char reply[] = "up\n";
	struct epoll_event ev = { .events = EPOLLIN }, evs[8];
	struct sigaction sa;
	int lfd, epfd;

	if (argc != 3)
		usage();
	lfd = listen_on(argv[1], argv[2]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("floor: epoll");
		return 1;
	}
	fprintf(stderr, "floor: listening on %s:%s\n", argv[1], argv[2]);
	while (!floor_stop) {
		int n = epoll_wait(epfd, evs, 8, 1000);

		if (n < 0 && errno != EINTR) {
			perror("floor: epoll_wait");
			return 1;
		}
		/* Only the listening socket is watched, so any event means "accept". */
		for (int budget = 0; n > 0 && budget < 1024 && !floor_stop; budget++) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (cfd < 0) {
				/* EAGAIN ends the batch; ECONNABORTED, EMFILE etc. are retried
				 * on the next wakeup. */
				break;
			}
			/* A fresh socket's send buffer always takes 3 bytes. */
			if (write(cfd, reply, sizeof(reply) - 1) < 0) {
				/* The peer went away first: nothing to do but close. */
			}
			close(cfd);
		}
	}
	close(epfd);
	close(lfd);
	return 0;
}
