/* notify.c - systemd's notify protocol (sd_notify) without libsystemd.
 *
 * Linking libsystemd for five short datagrams would add a run-time dependency
 * for no gain; sd_notify(3) documents the wire format and ships a
 * self-contained example, and HAProxy and OpenSSH do the same. */
#include "notify.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* STATUS is shown in one line by `systemctl status`; a verdict line is far
 * shorter than this, the rest is cut. */
#define NOTIFY_STATUS_MAX 256
#define NOTIFY_MSG_MAX (NOTIFY_STATUS_MAX + 64)

struct notify_state {
	int fd;                     /* -1 = disabled */
	struct sockaddr_un addr;
	socklen_t addrlen;
	char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1]; /* for logs */
	int failing;                /* the last send failed and was logged */
	struct event *watchdog;     /* NULL = no watchdog requested */
};

static struct notify_state notify_st = { .fd = -1 };

/* Parse a decimal unsigned number that must be all digits and > 0. */
static int notify_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v == 0)
		return -1;
	*out = v;
	return 0;
}

static void notify_send(const char *msg, size_t len)
{
	struct notify_state *n = &notify_st;
	ssize_t w;

	if (n->fd < 0)
		return;
	/* MSG_DONTWAIT on top of O_NONBLOCK: a full queue on systemd's side must
	 * never stall the loop; the message is dropped and the next one retries. */
	w = sendto(n->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT,
		   (const struct sockaddr *)&n->addr, n->addrlen);
	if (w == (ssize_t)len) {
		if (n->failing) {
			log_info("notify: sending to %s works again", n->name);
			n->failing = 0;
		}
		return;
	}
	/* Logged once per run of failures: a missing or busy systemd must not
	 * flood the journal with one line per watchdog tick. */
	if (!n->failing) {
		log_warn(
			"notify: cannot send to NOTIFY_SOCKET %s: %s (not logged again until it works)",
			n->name, w < 0 ? strerror(errno) : "short write");
		n->failing = 1;
	}
}

/* Build "PREFIX\nSTATUS=status" (or just PREFIX) with status on one line. */
static void notify_send_with_status(const char *prefix, const char *status)
{
	char msg[NOTIFY_MSG_MAX];
	size_t len = 0;
	int n;

	if (notify_st.fd < 0)
		return;
	if (prefix) {
		n = snprintf(msg, sizeof(msg), "%s", prefix);
		if (n < 0)
			return;
		len = (size_t)n;
	}
	if (status) {
		const char *key = len ? "\nSTATUS=" : "STATUS=";
		size_t klen = strlen(key);
		size_t i;

		memcpy(msg + len, key, klen);
		len += klen;
		/* Only the first line: a newline would start a new assignment and
		 * let a reason text inject e.g. READY=1 or MAINPID=. Stopping there
		 * also lets callers pass the agent line with its '\n' as it is. */
		for (i = 0; status[i] && status[i] != '\n' && status[i] != '\r' &&
			    i < NOTIFY_STATUS_MAX; i++) {
			unsigned char c = (unsigned char)status[i];
			msg[len++] = (c < ' ' || c == 0x7f) ? ' ' : (char)c;
		}
	}
	if (len)
		notify_send(msg, len);
}

static void notify_watchdog_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_send("WATCHDOG=1", strlen("WATCHDOG=1"));
}

/* Arm the watchdog timer if systemd asked for one for this very process. */
static void notify_watchdog_init(struct event_base *base)
{
	const char *usec_s = getenv("WATCHDOG_USEC");
	const char *pid_s = getenv("WATCHDOG_PID");
	uint64_t usec, pid, half;
	struct timeval tv;

	if (!usec_s || !*usec_s)
		return;
	if (notify_parse_u64(usec_s, &usec) != 0) {
		log_warn("notify: ignoring WATCHDOG_USEC='%s' (not a positive number)", usec_s);
		return;
	}
	/* WATCHDOG_PID guards against a child inheriting the variables: only
	 * the process systemd watches may ping. */
	if (pid_s && *pid_s) {
		if (notify_parse_u64(pid_s, &pid) != 0) {
			log_warn("notify: ignoring the watchdog: WATCHDOG_PID='%s' is not a pid",
				 pid_s);
			return;
		}
		if (pid != (uint64_t)getpid())
			return;
	}
	/* Half the period, as sd_watchdog_enabled(3) recommends: one late tick
	 * never makes systemd kill a healthy daemon. */
	half = usec / 2;
	if (half == 0)
		half = 1;
	tv.tv_sec = (time_t)(half / 1000000);
	tv.tv_usec = (suseconds_t)(half % 1000000);
	notify_st.watchdog = event_new(base, -1, EV_PERSIST, notify_watchdog_tick, NULL);
	if (!notify_st.watchdog || event_add(notify_st.watchdog, &tv) != 0) {
		log_warn("notify: cannot arm the watchdog timer; systemd may restart happac");
		util_event_free(notify_st.watchdog);
		notify_st.watchdog = NULL;
		return;
	}
	log_info("notify: watchdog every %llu.%03llus (WATCHDOG_USEC=%llu)",
		 (unsigned long long)(half / 1000000),
		 (unsigned long long)(half % 1000000 / 1000),
		 (unsigned long long)usec);
}

void notify_init(struct event_base *base)
{
	struct notify_state *n = &notify_st;
	const char *path = getenv("NOTIFY_SOCKET");
	size_t plen;

	notify_free();
	if (!path || !*path)
		return; /* not started by systemd with Type=notify: nothing to do */
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen < 2 ||
	    plen >= sizeof(n->addr.sun_path)) {
		log_warn("notify: ignoring NOTIFY_SOCKET='%s' (expected /path or @name, "
			 "at most %zu bytes)", path, sizeof(n->addr.sun_path) - 1);
		return;
	}
	memset(&n->addr, 0, sizeof(n->addr));
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, plen);
	if (path[0] == '@') {
		/* Abstract namespace: a leading NUL, and the length counts exactly
		 * the name's bytes (no terminator), or it names another socket. */
		n->addr.sun_path[0] = '\0';
		n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	} else {
		n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
	}
	memcpy(n->name, path, plen + 1);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		log_warn("notify: cannot create a socket for NOTIFY_SOCKET %s: %s",
			 n->name, strerror(errno));
		return;
	}
	n->failing = 0;
	notify_watchdog_init(base);
}

void notify_ready(const char *status)
{
	notify_send_with_status("READY=1", status);
}

void notify_status(const char *status)
{
	if (status)
		notify_send_with_status(NULL, status);
}

void notify_reloading(void)
{
	char msg[64];
	int len;

	if (notify_st.fd < 0)
		return;
	/* MONOTONIC_USEC lets systemd (253+, Type=notify-reload) match this
	 * message to the reload it started; older versions ignore the field. */
	len = snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		       (unsigned long long)util_mono_us());
	if (len > 0 && (size_t)len < sizeof(msg))
		notify_send(msg, (size_t)len);
}

void notify_stopping(void)
{
	/* systemd stops watching once it sees STOPPING=1, and a pending
	 * persistent timer would keep the loop alive during the drain. */
	if (notify_st.watchdog)
		event_del(notify_st.watchdog);
	notify_send("STOPPING=1", strlen("STOPPING=1"));
}

void notify_free(void)
{
	struct notify_state *n = &notify_st;

	if (n->watchdog) {
		event_free(n->watchdog);
		n->watchdog = NULL;
	}
	if (n->fd >= 0) {
		close(n->fd);
		n->fd = -1;
	}
	n->failing = 0;
	n->name[0] = '\0';
	n->addrlen = 0;
}
