/* check.c - `happac check`: ask an agent once, as a Consul script check.
 *
 * This replaces the predecessor's `nc HOST PORT | grep -q up` script: nc had
 * no deadline (a silent agent hung the check until Consul killed it) and
 * grep matched "up" anywhere, also inside a "#reason". Here the line is read
 * like HAProxy reads it and the verdict is the last health word.
 *
 * It is a one-shot client, so plain blocking-style code with poll() and one
 * deadline is the simple and right tool; the daemon's loop is not involved. */
#include "check.h"

#include "options.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHECK_DEFAULT_HOST "127.0.0.1"
#define CHECK_DEFAULT_PORT 5555
#define CHECK_DEFAULT_TIMEOUT_MS 2000
#define CHECK_TIMEOUT_MIN_MS 10
#define CHECK_TIMEOUT_MAX_MS 60000
/* Consul keeps 4 KB of a check's output; an agent line is far shorter. */
#define CHECK_LINE_MAX 4096

enum check_health { CHECK_HEALTH_NONE, CHECK_HEALTH_UP, CHECK_HEALTH_DOWN };
enum check_admin { CHECK_ADMIN_NONE, CHECK_ADMIN_READY, CHECK_ADMIN_DRAIN,
		   CHECK_ADMIN_MAINT };

struct check_args {
	char *host;     /* brackets stripped; owned */
	int port;
	long timeout_ms;
};

/* Set up before the check starts, written by the SIGALRM handler. */
static char check_alarm_msg[160];
static size_t check_alarm_len;

static void check_usage(FILE *out)
{
	fprintf(out,
		"Usage: happac check [--host HOST] [--port PORT] [--timeout DURATION]\n"
		"Ask a HAProxy agent (happac) once, print its reply line, and exit\n"
		"with a Consul script-check status.\n\n"
		"Options:\n"
		"  -h, --host=HOST        Agent host: IPv4/IPv6 address or name. Default: %s\n"
		"  -p, --port=PORT        Agent port. Default: %d\n"
		"      --timeout=DURATION Deadline for connect and reply. Default: %dms (%dms-%dms)\n"
		"      --help             Print this help and exit\n\n"
		"Exit status: 0 when the agent says 'up' (passing); 2 (critical) when it\n"
		"says down/fail/stopped, drain or maint, gives no health word, refuses,\n"
		"times out, or on any error, bad arguments included. 1 (warning) is never\n"
		"used.\n",
		CHECK_DEFAULT_HOST, CHECK_DEFAULT_PORT, CHECK_DEFAULT_TIMEOUT_MS,
		CHECK_TIMEOUT_MIN_MS, CHECK_TIMEOUT_MAX_MS);
}

static int check_set_host(struct check_args *a, const char *s)
{
	size_t n = strlen(s);
	char *copy = malloc(n + 1);

	if (copy && util_unbracket(s, n, copy, n + 1) < 0) {
		free(copy);
		return -1;
	}
	if (!copy || !*copy || copy[0] == '-') {
		free(copy);
		return -1;
	}
	free(a->host);
	a->host = copy;
	return 0;
}

/* Returns -1 to go on, or the exit status (help, or a bad argument). */
static int check_parse_args(struct check_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 0; /* glibc: full re-initialisation, argv[0] is "check" */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h:p:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			if (check_set_host(a, optarg) != 0) {
				fprintf(stderr, "happac check: --host: invalid host '%s'\n",
					optarg);
				return CHECK_EXIT_CRITICAL;
			}
			break;
		case 'p':
			if (options_parse_port(optarg, &a->port) != 0) {
				fprintf(stderr,
					"happac check: --port: invalid port '%s' (expected 1-65535)\n",
					optarg);
				return CHECK_EXIT_CRITICAL;
			}
			break;
		case 't':
			if (options_parse_duration(optarg, &a->timeout_ms) != 0) {
				fprintf(stderr, "happac check: --timeout: invalid duration '%s' "
					"(expected e.g. 500ms, 2s, 1.5s)\n", optarg);
				return CHECK_EXIT_CRITICAL;
			}
			if (a->timeout_ms < CHECK_TIMEOUT_MIN_MS ||
			    a->timeout_ms > CHECK_TIMEOUT_MAX_MS) {
				fprintf(stderr,
					"happac check: --timeout: '%s' is out of range (%dms-%dms)\n",
					optarg, CHECK_TIMEOUT_MIN_MS, CHECK_TIMEOUT_MAX_MS);
				return CHECK_EXIT_CRITICAL;
			}
			break;
		case 'H':
			check_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "happac check: option '%s' needs a value\n",
				argv[optind - 1]);
			return CHECK_EXIT_CRITICAL;
		case '?':
			if (optopt && optopt < 256)
				fprintf(stderr,
					"happac check: unknown option '-%c' (see happac check --help)\n",
					optopt);
			else
				fprintf(stderr,
					"happac check: unknown option '%s' (see happac check --help)\n",
					argv[optind - 1]);
			return CHECK_EXIT_CRITICAL;
		default:
			fprintf(stderr, "happac check: internal error: option code %d\n", c);
			return CHECK_EXIT_CRITICAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"happac check: unexpected argument '%s' (see happac check --help)\n",
			argv[optind]);
		return CHECK_EXIT_CRITICAL;
	}
	return -1;
}

/* A hard stop for what poll() cannot bound, i.e. a slow name resolution:
 * the check must end by its deadline, with status 2 rather than a signal. */
static void check_alarm(int sig)
{
	ssize_t w;

	(void)sig;
	w = write(STDERR_FILENO, check_alarm_msg, check_alarm_len);
	(void)w;
	_exit(CHECK_EXIT_CRITICAL);
}

static void check_arm_alarm(const struct check_args *a, const char *target)
{
	struct itimerval it = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa;
	long ms = a->timeout_ms + 50; /* poll's own deadline fires first */
	int n;

	n = snprintf(check_alarm_msg, sizeof(check_alarm_msg),
		     "happac check: %s: timeout after %ldms\n", target, a->timeout_ms);
	check_alarm_len = n < 0 ? 0 : (size_t)n >= sizeof(check_alarm_msg)
					      ? sizeof(check_alarm_msg) - 1 : (size_t)n;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = check_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	it.it_value.tv_sec = ms / 1000;
	it.it_value.tv_usec = (ms % 1000) * 1000;
	setitimer(ITIMER_REAL, &it, NULL);
}

/* strerror() in lower case ("connection refused"), as the agent's own
 * reasons read, so that Consul's output looks the same from both. */
static void check_errstr(char *err, size_t errlen, const char *prefix, int errnum)
{
	snprintf(err, errlen, "%s%s", prefix, strerror(errnum));
	if (err[strlen(prefix)] >= 'A' && err[strlen(prefix)] <= 'Z')
		err[strlen(prefix)] = (char)(err[strlen(prefix)] - 'A' + 'a');
}

/* Wait for events on fd until the deadline: >0 ready, 0 timeout, -1 error. */
static int check_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int64_t left = deadline - (util_mono_us() / 1000);
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/* Connect to the first address that accepts. Returns the fd, or -1 with a
 * reason in err. */
static int check_connect(const struct check_args *a, int64_t deadline,
			 char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[8];
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", a->port);
	rc = getaddrinfo(a->host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", a->host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		return -1;
	}
	snprintf(err, errlen, "no address for %s", a->host);
	for (ai = res; ai; ai = ai->ai_next) {
		int soerr = 0;
		socklen_t slen = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			check_errstr(err, errlen, "socket: ", errno);
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			check_errstr(err, errlen, "", errno);
		} else {
			rc = check_wait(fd, POLLOUT, deadline);
			if (rc == 0) {
				snprintf(err, errlen, "connect timeout after %ldms", a->timeout_ms);
				close(fd);
				fd = -1;
				break; /* the deadline is shared: no time for the next one */
			}
			if (rc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 &&
			    soerr == 0)
				break;
			check_errstr(err, errlen, "", rc < 0 ? errno : soerr);
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Read the first line (up to \n, \r or EOF). Returns its length, or -1 with
 * a reason in err. buf is NUL-terminated. */
static int check_read_line(int fd, const struct check_args *a, int64_t deadline,
			   char *buf, size_t buflen, char *err, size_t errlen)
{
	size_t len = 0;

	for (;;) {
		ssize_t r;
		int rc;

		if (len + 1 >= buflen) {
			snprintf(err, errlen, "reply longer than %zu bytes without a line end",
				 buflen - 1);
			return -1;
		}
		rc = check_wait(fd, POLLIN, deadline);
		if (rc == 0) {
			snprintf(err, errlen, len ? "incomplete reply after %ldms"
						  : "no reply within %ldms", a->timeout_ms);
			return -1;
		}
		if (rc < 0) {
			check_errstr(err, errlen, "poll: ", errno);
			return -1;
		}
		r = recv(fd, buf + len, buflen - 1 - len, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			check_errstr(err, errlen, "", errno);
			return -1;
		}
		if (r == 0) {
			if (len == 0) {
				snprintf(err, errlen, "closed without a reply");
				return -1;
			}
			break;
		}
		for (size_t i = len; i < len + (size_t)r; i++) {
			if (buf[i] == '\n' || buf[i] == '\r') {
				buf[i] = '\0';
				return (int)i;
			}
			/* HAProxy ignores a line with a NUL in it: so do we. */
			if (buf[i] == '\0') {
				snprintf(err, errlen, "NUL byte in the reply");
				return -1;
			}
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	return (int)len;
}

/* The agent words, read as HAProxy reads them (docs/PROTOCOLS.md section 1):
 * separated by spaces, tabs or commas, case-insensitive, the last word of a
 * category wins, and '#' starts the description. */
static enum check_health check_words(char *line, enum check_admin *admin)
{
	enum check_health health = CHECK_HEALTH_NONE;
	char *save = NULL;

	*admin = CHECK_ADMIN_NONE;
	for (char *w = strtok_r(line, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
		if (w[0] == '#')
			break;
		if (strcasecmp(w, "up") == 0)
			health = CHECK_HEALTH_UP;
		else if (strcasecmp(w, "down") == 0 || strcasecmp(w, "fail") == 0 ||
			 strcasecmp(w, "stopped") == 0)
			health = CHECK_HEALTH_DOWN;
		else if (strcasecmp(w, "ready") == 0)
			*admin = CHECK_ADMIN_READY;
		else if (strcasecmp(w, "drain") == 0)
			*admin = CHECK_ADMIN_DRAIN;
		else if (strcasecmp(w, "maint") == 0)
			*admin = CHECK_ADMIN_MAINT;
	}
	return health;
}

static int check_run(const struct check_args *a)
{
	char target[300], err[256], line[CHECK_LINE_MAX], words[CHECK_LINE_MAX];
	enum check_health health;
	enum check_admin admin;
	int64_t deadline;
	int fd, len, n;

	n = util_host_bracketed(target, sizeof(target), a->host);
	if (n > 0 && (size_t)n < sizeof(target))
		snprintf(target + n, sizeof(target) - (size_t)n, ":%d", a->port);
	deadline = (util_mono_us() / 1000) + a->timeout_ms;
	check_arm_alarm(a, target);

	fd = check_connect(a, deadline, err, sizeof(err));
	if (fd < 0) {
		fprintf(stderr, "happac check: %s: %s\n", target, err);
		return CHECK_EXIT_CRITICAL;
	}
	len = check_read_line(fd, a, deadline, line, sizeof(line), err, sizeof(err));
	close(fd);
	if (len < 0) {
		fprintf(stderr, "happac check: %s: %s\n", target, err);
		return CHECK_EXIT_CRITICAL;
	}
	/* The line goes to Consul's output and a terminal: no control bytes. */
	for (int i = 0; i < len; i++)
		if ((unsigned char)line[i] < ' ' || (unsigned char)line[i] == 0x7f)
			line[i] = '?';
	printf("%s\n", line);
	fflush(stdout);

	memcpy(words, line, (size_t)len + 1);
	health = check_words(words, &admin);
	if (health == CHECK_HEALTH_NONE) {
		fprintf(stderr,
			"happac check: %s: no health word (up/down/fail/stopped) in the reply\n",
			target);
		return CHECK_EXIT_CRITICAL;
	}
	if (health != CHECK_HEALTH_UP)
		return CHECK_EXIT_CRITICAL;
	/* drain and maint take the server out of HAProxy's rotation: a service
	 * catalogue must not send clients there either. */
	if (admin == CHECK_ADMIN_DRAIN || admin == CHECK_ADMIN_MAINT)
		return CHECK_EXIT_CRITICAL;
	return CHECK_EXIT_UP;
}

int check_main(int argc, char **argv)
{
	struct check_args a = { .host = NULL, .port = CHECK_DEFAULT_PORT,
				.timeout_ms = CHECK_DEFAULT_TIMEOUT_MS };
	int rc;

	/* A vanished reader (e.g. `| head`) must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	rc = check_parse_args(&a, argc, argv);
	if (rc < 0 && !a.host && !(a.host = strdup(CHECK_DEFAULT_HOST))) {
		fprintf(stderr, "happac check: out of memory\n");
		rc = CHECK_EXIT_CRITICAL;
	}
	if (rc < 0)
		rc = check_run(&a);
	free(a.host);
	return rc;
}
