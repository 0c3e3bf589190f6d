/* ctl_client.c - `happac ctl`: send one request line to the daemon's
 * control socket, print its reply. */
#include "ctl_client.h"

#include "ctl_request.h"
#include "ctl_state.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* How long `happac ctl` waits for the daemon; above its CTL_DEADLINE_MS. */
#define CTL_CLIENT_TIMEOUT_S 5
/* probe and stopping run inside Patroni (callbacks, before_stop): each of
 * connect and reply gets half of this, so the call ends within it. */
#define CTL_CLIENT_HOOK_MS 100

static void ctl_usage(FILE *out)
{
	fprintf(out,
		"usage: happac ctl [--socket PATH] COMMAND\n"
		"  drain              HAProxy sends no new connections here (agent word 'drain')\n"
		"  maint              put this server in maintenance (agent word 'maint')\n"
		"  ready [--ramp D]   clear drain/maint; with --ramp, raise the weight from 1%%\n"
		"                     to 100%% over D (e.g. 60s, 2m; 1s-24h)\n"
		"  status             print the override in force as JSON\n"
		"  probe              start a probe round now (Patroni's callbacks; words\n"
		"                     after it are ignored)\n"
		"  stopping           say down #patroni: stopping until Patroni's answer\n"
		"                     changes, at most 60s (Patroni's before_stop)\n"
		"  --socket PATH      the daemon's control socket (default: $HAPPAC_CONTROL_SOCKET,\n"
		"                     else %s)\n"
		"Exit status: 0 ok, 1 the daemon refused, 2 bad usage or no daemon.\n"
		"probe and stopping never block Patroni: they give up after %dms and exit 0\n"
		"also when happac is not running (with a note on stderr).\n",
		CTL_DEFAULT_SOCKET, CTL_CLIENT_HOOK_MS);
}

/* Who may connect, for the EACCES message: the group of the socket, or of
 * its directory when that is what keeps the caller out (the shipped unit's
 * /run/happac is 0750). "" when neither can be seen. */
static void ctl_client_group(const char *path, char *buf, size_t len)
{
	char dir[PATH_MAX];
	struct stat st;
	struct group *g;

	buf[0] = '\0';
	ctl_state_dir_of(path, dir, sizeof(dir));
	if (stat(path, &st) != 0 && stat(dir, &st) != 0)
		return;
	g = getgrgid(st.st_gid);
	if (g)
		snprintf(buf, len, "%s", g->gr_name);
	else
		snprintf(buf, len, "%u", (unsigned)st.st_gid);
}

/* Send line to the daemon at path and read its reply into buf, each step
 * bounded by tv. Returns 0, or -1 with why set (one line, no newline). */
static int ctl_client_exchange(const char *path, const char *line, char *buf, size_t len,
			       struct timeval tv, char *why, size_t whylen)
{
	struct sockaddr_un sa;
	size_t got = 0;
	int fd, send_errno = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "control socket path '%s' is empty or too long",
			path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Both bound connect() too on a unix socket: a wedged daemon cannot
	 * hang the operator's shell. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		char group[64];

		if (e == EACCES) {
			ctl_client_group(path, group, sizeof(group));
			snprintf(why, whylen, "cannot connect to %s: %s (only root and the "
				"members of %s%s may use it)", path, strerror(e),
				*group ? "group " : "the socket's group", group);
			close(fd);
			return -1;
		}
		snprintf(why, whylen, "cannot connect to %s: %s%s", path, strerror(e),
			e == ENOENT || e == ECONNREFUSED
				? " (is happac running with --control-socket at this path?)"
				: "");
		close(fd);
		return -1;
	}
	/* A send that fails is not the end yet: a daemon that refuses the
	 * connection (busy) writes why before it closes. */
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line))
		send_errno = errno;
	for (;;) {
		ssize_t n = recv(fd, buf + got, len - 1 - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && got == 0 && send_errno) {
			snprintf(why, whylen, "cannot send to %s: %s", path,
				strerror(send_errno));
			close(fd);
			return -1;
		}
		if (n < 0 && got == 0) {
			int e = errno;

			snprintf(why, whylen, "no reply from %s%s: %s", path,
				 e == EAGAIN ? (tv.tv_sec ? " within 5s" : " in time") : "",
				 strerror(e));
			close(fd);
			return -1;
		}
		if (n <= 0 || (got += (size_t)n) == len - 1)
			break;
	}
	close(fd);
	buf[got] = '\0';
	if (got == 0) {
		snprintf(why, whylen, "%s closed the connection without a reply", path);
		return -1;
	}
	return 0;
}

int ctl_client_main(int argc, char **argv)
{
	const char *path = getenv("HAPPAC_CONTROL_SOCKET");
	char line[CTL_LINE_MAX + 1] = "", reply[4096], err[200], why[PATH_MAX + 200];
	struct ctl_request req;
	size_t used = 0;
	char *nl;
	int hook = 0;
	struct timeval tv = { CTL_CLIENT_TIMEOUT_S, 0 };

	if (!path || !*path)
		path = CTL_DEFAULT_SOCKET;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int n;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			ctl_usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--socket") || !strncmp(a, "--socket=", 9)) {
			path = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
			if (!path || !*path) {
				fprintf(stderr, "happac ctl: --socket needs a path\n");
				return 2;
			}
			continue;
		}
		/* Patroni appends its callback's arguments (action, role,
		 * scope): after probe or stopping, words are not the request. */
		if (hook)
			continue;
		hook = !used && (!strcmp(a, "probe") || !strcmp(a, "stopping"));
		n = snprintf(line + used, sizeof(line) - used, "%s%s", used ? " " : "", a);
		if (n < 0 || (size_t)n >= sizeof(line) - used) {
			fprintf(stderr, "happac ctl: request too long\n");
			return 2;
		}
		used += (size_t)n;
	}
	/* Checked here too: a typo gets usage help, not a round trip. */
	if (ctl_request_parse(line, used, &req, err, sizeof(err)) != 0) {
		fprintf(stderr, "happac ctl: %s\n", err);
		ctl_usage(stderr);
		return 2;
	}
	if (used + 1 >= sizeof(line)) {
		fprintf(stderr, "happac ctl: request too long\n");
		return 2;
	}
	line[used++] = '\n';
	line[used] = '\0';
	if (hook) {
		tv.tv_sec = 0;
		tv.tv_usec = CTL_CLIENT_HOOK_MS * 1000 / 2;
	}
	if (ctl_client_exchange(path, line, reply, sizeof(reply), tv, why,
				sizeof(why)) != 0) {
		/* A hook must never fail Patroni's action: happac not running
		 * (or not answering in time) is nothing to do. */
		if (hook) {
			fprintf(stderr, "happac ctl %s: not delivered, nothing to do: %s\n",
				ctl_request_cmd_names[req.cmd], why);
			return 0;
		}
		fprintf(stderr, "happac ctl: %s\n", why);
		return 2;
	}
	nl = strchr(reply, '\n');
	if (nl)
		*nl = '\0';
	if (!strncmp(reply, "ok", 2) || reply[0] == '{') {
		printf("%s\n", reply);
		return 0;
	}
	if (!strncmp(reply, "error", 5)) {
		fprintf(stderr, "%s\n", reply);
		return 1;
	}
	fprintf(stderr, "happac ctl: unexpected reply from %s: %.200s\n", path, reply);
	return 2;
}
