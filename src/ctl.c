/* ctl.c - operator overrides: control socket server, state file, client.
 *
 * The server runs on the daemon's loop and never blocks it on a client: every
 * connection has a bounded line, one deadline set at accept, and there is a
 * cap on how many are open. Nor on the disk: the state file's write and
 * fsync run on a writer thread (ctl_writer.c), the latest override wins, and
 * only the operator who made a change waits for it to be on disk; the agent
 * line says it at once. Reading the state file at start (and at a reload
 * that moves it) is the one blocking disk access left: a few hundred bytes,
 * before anything is answered from it. */
#include "ctl.h"

#include "ctl_writer.h"
#include "log.h"
#include "options.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How long `happac ctl` waits for the daemon; above its CTL_DEADLINE_MS. */
#define CTL_CLIENT_TIMEOUT_S 5
/* Accepts per wake-up: drains a burst, leaves the loop to everyone else. */
#define CTL_ACCEPT_BATCH 16
/* A wall clock that disagrees with the monotonic one by more than this
 * during a ramp has been stepped (NTP, an operator). */
#define CTL_CLOCK_STEP_S 1.0

const char *const ctl_admin_names[CTL_ADMIN_COUNT] = {
	[CTL_ADMIN_READY] = "ready",
	[CTL_ADMIN_DRAIN] = "drain",
	[CTL_ADMIN_MAINT] = "maint",
};

const char *const ctl_cmd_names[CTL_CMD_COUNT] = {
	[CTL_CMD_DRAIN] = "drain",
	[CTL_CMD_MAINT] = "maint",
	[CTL_CMD_READY] = "ready",
	[CTL_CMD_STATUS] = "status",
};

/* The state file's keys, in the order they are written. */
enum ctl_key {
	CTL_KEY_ADMIN, CTL_KEY_PREV, CTL_KEY_UID, CTL_KEY_SET_AT, CTL_KEY_RAMP_MS,
	CTL_KEY_RAMP_START, CTL_KEY_COUNT
};

static const char *const ctl_key_names[CTL_KEY_COUNT] = {
	[CTL_KEY_ADMIN] = "admin",
	[CTL_KEY_PREV] = "prev",
	[CTL_KEY_UID] = "uid",
	[CTL_KEY_SET_AT] = "set_at",
	[CTL_KEY_RAMP_MS] = "ramp_ms",
	[CTL_KEY_RAMP_START] = "ramp_start",
};

/* One control connection: read a line, write a reply, close. */
struct ctl_conn {
	struct ctl *ctl;
	int fd;
	struct event *rd, *wr, *deadline;
	uid_t uid;
	pid_t pid;
	uint64_t wait_gen;         /* > 0: the reply waits for this state-file write */
	enum ctl_admin want;       /* what the change it waits for set */
	size_t in_len, out_off, out_len; /* out_len > 0: the reply is decided */
	char in[CTL_LINE_MAX];
	char out[CTL_REPLY_MAX];
	struct ctl_conn *next;
};

struct ctl {
	struct event_base *base;
	char *socket_path;
	char *state_path;          /* NULL: no persistence */
	int fd;
	dev_t sock_dev;            /* the socket file we made, so that ctl_free */
	ino_t sock_ino;            /* never unlinks another instance's */
	struct event *accept_ev, *resume, *reap, *tick;
	void (*changed)(void *arg);
	void *arg;
	struct ctl_override ov;
	int saved;                 /* the state file holds ov */
	int restored;              /* ov was read from the state file */
	struct ctl_writer *writer; /* NULL: no state file */
	uint64_t gen;              /* the latest override handed to the writer */
	int64_t ready_since_us;    /* monotonic: the caller began saying `ready`
				    * for the latest change; 0: not yet */
	struct ctl *next_live;     /* every live ctl, for same-file hand-overs */
	int64_t ramp_mono_start_us;
	int ramp_last_weight;
	struct ctl_conn *conns;    /* open */
	struct ctl_conn *dead;     /* closed, freed by ctl_reap outside their callbacks */
	int nconns;
	int at_cap;                /* logged once per episode, not per refusal */
};

/* ---- small helpers */

static double ctl_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t ctl_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "2024-11-27T01:02:03Z", or "never" for 0. */
static void ctl_iso(double t, char *buf, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;

	if (t <= 0 || !gmtime_r(&s, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "never");
}

/* The directory part of path: "." for a bare name, "/" for "/name". */
static void ctl_dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, len, ".");
	else if (slash == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

/* 0 when dir exists and is a directory; else -1 with a reason in why. */
static int ctl_check_dir(const char *dir, char *why, size_t len)
{
	struct stat st;

	if (stat(dir, &st) != 0) {
		snprintf(why, len, "directory %s %s", dir,
			 errno == ENOENT ? "does not exist" : strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "%s is not a directory", dir);
		return -1;
	}
	return 0;
}

/* Bounded appending for the JSON and state-file texts. */
struct ctl_buf {
	char *p;
	size_t len, used;
};

static void ctl_buf_add(struct ctl_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ctl_buf_add(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->used + 1 >= b->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->used, b->len - b->used, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	b->used += (size_t)n;
	if (b->used >= b->len)
		b->used = b->len - 1;
}

static void ctl_buf_json_string(struct ctl_buf *b, const char *s)
{
	ctl_buf_add(b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			ctl_buf_add(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			ctl_buf_add(b, "\\u%04x", ch);
		else
			ctl_buf_add(b, "%c", ch);
	}
	ctl_buf_add(b, "\"");
}

static void ctl_override_none(struct ctl_override *o)
{
	memset(o, 0, sizeof(*o));
	o->admin = CTL_ADMIN_READY;
	o->prev_admin = CTL_ADMIN_READY;
}

/* ---- requests */

static int ctl_parse_ramp(const char *value, struct ctl_request *req, char *err,
			  size_t errlen)
{
	long ms;

	if (req->ramp_ms) {
		snprintf(err, errlen, "--ramp given twice");
		return -1;
	}
	if (!value || !*value) {
		snprintf(err, errlen, "--ramp needs a duration (e.g. 60s, 2m)");
		return -1;
	}
	if (options_parse_duration(value, &ms) != 0) {
		snprintf(err, errlen, "--ramp: invalid duration '%s' (expected e.g. 30s, 1.5s, 2m)",
			 value);
		return -1;
	}
	if (ms < CTL_RAMP_MIN_MS || ms > CTL_RAMP_MAX_MS) {
		snprintf(err, errlen, "--ramp: '%s' is out of range (1s-24h)", value);
		return -1;
	}
	req->ramp_ms = (int)ms;
	return 0;
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *req,
		      char *err, size_t errlen)
{
	char buf[CTL_LINE_MAX], *save = NULL, *tok[8];
	int ntok = 0, cmd;

	memset(req, 0, sizeof(*req));
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len >= sizeof(buf)) {
		snprintf(err, errlen, "request too long (max %d bytes)", CTL_LINE_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		/* Printable ASCII only: the reply may quote the request back. */
		if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
			snprintf(err, errlen, "request contains a byte that is not printable "
				 "ASCII (0x%02x)", ch);
			return -1;
		}
	}
	memcpy(buf, line, len);
	buf[len] = '\0';
	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (ntok == (int)(sizeof(tok) / sizeof(tok[0]))) {
			snprintf(err, errlen, "too many words in the request");
			return -1;
		}
		tok[ntok++] = t;
	}
	if (ntok == 0) {
		snprintf(err, errlen, "empty request (expected drain, maint, ready "
			 "[--ramp DURATION] or status)");
		return -1;
	}
	for (cmd = 0; cmd < CTL_CMD_COUNT; cmd++)
		if (!strcmp(tok[0], ctl_cmd_names[cmd]))
			break;
	if (cmd == CTL_CMD_COUNT) {
		snprintf(err, errlen, "unknown command '%.40s' (expected drain, maint, "
			 "ready [--ramp DURATION] or status)", tok[0]);
		return -1;
	}
	req->cmd = (enum ctl_cmd)cmd;
	for (int i = 1; i < ntok; i++) {
		if (req->cmd != CTL_CMD_READY) {
			snprintf(err, errlen, "'%s' takes no arguments (got '%.40s')",
				 ctl_cmd_names[cmd], tok[i]);
			return -1;
		}
		if (!strcmp(tok[i], "--ramp")) {
			if (ctl_parse_ramp(i + 1 < ntok ? tok[i + 1] : NULL, req, err,
					   errlen) != 0)
				return -1;
			i++;
		} else if (!strncmp(tok[i], "--ramp=", 7)) {
			if (ctl_parse_ramp(tok[i] + 7, req, err, errlen) != 0)
				return -1;
		} else {
			snprintf(err, errlen, "ready: unknown argument '%.40s' (expected "
				 "--ramp DURATION)", tok[i]);
			return -1;
		}
	}
	return 0;
}

/* ---- the ramp */

int ctl_override_weight(const struct ctl_override *o, double now_s)
{
	double elapsed_ms, w;

	if (o->admin != CTL_ADMIN_READY || o->ramp_ms <= 0)
		return -1;
	elapsed_ms = (now_s - o->ramp_start_s) * 1000.0;
	if (elapsed_ms >= (double)o->ramp_ms)
		return -1;
	/* Before the start (the wall clock went back): the lowest weight, so a
	 * clock step never sends full traffic to a node still warming up. */
	if (!(elapsed_ms > 0))
		return 1;
	w = 100.0 * elapsed_ms / (double)o->ramp_ms;
	return w < 1.0 ? 1 : (int)w;
}

/* ---- the state file */

static int ctl_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

static int ctl_parse_time(const char *s, double *out)
{
	char *end;
	double v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	/* 1e11 s is the year 5138: anything beyond is not a timestamp. */
	if (errno || *end || !isfinite(v) || v < 0 || v > 1e11)
		return -1;
	*out = v;
	return 0;
}

static int ctl_parse_admin(const char *s, enum ctl_admin *out)
{
	for (int a = 0; a < CTL_ADMIN_COUNT; a++)
		if (!strcmp(s, ctl_admin_names[a])) {
			*out = (enum ctl_admin)a;
			return 0;
		}
	return -1;
}

static char *ctl_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
			   end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/* One "key = value" line into v; -1 with why set. *key is the key the line
 * names (-1: none), so that the caller can tell a bad admin line, which
 * decides whether a node is in service, from a bad auxiliary one. A bad
 * value leaves v's field at its safe value: set_at unknown (0), uid unknown
 * ((uid_t)-1), prev ready (nothing owed to HAProxy), no ramp. */
static int ctl_state_line(char *text, struct ctl_override *v, int *key_line,
			  int lineno, int *key, char *why, size_t len)
{
	char *eq = strchr(text, '='), *name, *value;
	unsigned long long u;
	int k, bad = 0;

	*key = -1;
	if (!eq) {
		snprintf(why, len, "expected 'key = value', got '%.40s'", text);
		return -1;
	}
	*eq = '\0';
	name = ctl_trim(text);
	value = ctl_trim(eq + 1);
	for (k = 0; k < CTL_KEY_COUNT; k++)
		if (!strcmp(name, ctl_key_names[k]))
			break;
	if (k == CTL_KEY_COUNT) {
		snprintf(why, len, "unknown key '%.40s'", name);
		return -1;
	}
	if (key_line[k]) {
		/* A second admin line makes the admin state ambiguous; a second
		 * auxiliary one is ignored, the first one stands. */
		*key = k == CTL_KEY_ADMIN ? k : -1;
		snprintf(why, len, "'%s' given twice (first on line %d)", name, key_line[k]);
		return -1;
	}
	*key = k;
	key_line[k] = lineno;
	switch ((enum ctl_key)k) {
	case CTL_KEY_ADMIN:
		bad = ctl_parse_admin(value, &v->admin);
		break;
	case CTL_KEY_PREV:
		bad = ctl_parse_admin(value, &v->prev_admin);
		if (bad)
			v->prev_admin = CTL_ADMIN_READY;
		break;
	case CTL_KEY_UID:
		/* (uid_t)-1 is "no user" in chown(2): never a real uid, so it
		 * stands for "unknown". */
		bad = ctl_parse_uint(value, UINT32_MAX - 1, &u);
		v->uid = bad ? (uid_t)-1 : (uid_t)u;
		break;
	case CTL_KEY_SET_AT:
		bad = ctl_parse_time(value, &v->set_at_s);
		if (bad)
			v->set_at_s = 0;
		break;
	case CTL_KEY_RAMP_MS:
		bad = ctl_parse_uint(value, CTL_RAMP_MAX_MS, &u) ||
		      (u != 0 && u < CTL_RAMP_MIN_MS);
		v->ramp_ms = bad ? 0 : (int)u;
		break;
	case CTL_KEY_RAMP_START:
		bad = ctl_parse_time(value, &v->ramp_start_s);
		if (bad)
			v->ramp_start_s = 0;
		break;
	case CTL_KEY_COUNT:
		log_fatal("ctl: impossible state file key %d", k);
	}
	if (bad) {
		snprintf(why, len, "bad %s '%.40s'", name, value);
		return -1;
	}
	return 0;
}

/* Add "PATH:LINE: why (what)" to the warnings in err. */
static void ctl_state_warn(struct ctl_buf *b, const char *path, int lineno,
			   const char *why, const char *what)
{
	ctl_buf_add(b, "%s%s:%d: %s (%s)", b->used ? "; " : "", path, lineno, why, what);
}

/* What a bad auxiliary line costs, for the warning. */
static const char *ctl_state_ignored(int key)
{
	switch (key) {
	case CTL_KEY_PREV:
		return "taken as ready: no `ready` owed to HAProxy";
	case CTL_KEY_UID:
		return "who set it is unknown";
	case CTL_KEY_SET_AT:
		return "when it was set is unknown";
	case CTL_KEY_RAMP_MS:
		return "no weight ramp";
	case CTL_KEY_RAMP_START:
		return "a ramp starts again from 1%";
	default:
		return "line ignored";
	}
}

int ctl_state_load(const char *path, struct ctl_override *o, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct ctl_override v;
	struct ctl_buf warn = { err, errlen, 0 };
	int key_line[CTL_KEY_COUNT] = { 0 }, lineno = 0, rc = -1, key;
	int first_bad = 0;
	char *line = NULL, why[160] = "", first_why[160] = "";
	size_t cap = 0;
	ssize_t n;

	ctl_override_none(o);
	if (errlen)
		err[0] = '\0';
	if (!f) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ctl_override_none(&v);
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *text;

		lineno++;
		key = -1;
		if (n >= CTL_LINE_MAX) {
			snprintf(why, sizeof(why), "line too long");
		} else if (memchr(line, '\0', (size_t)n)) {
			snprintf(why, sizeof(why), "NUL byte");
		} else {
			text = ctl_trim(line);
			if (*text == '\0' || *text == '#')
				continue;
			if (ctl_state_line(text, &v, key_line, lineno, &key, why,
					   sizeof(why)) == 0)
				continue;
		}
		/* The admin line decides whether this node takes traffic: a bad
		 * one is never guessed around. */
		if (key == CTL_KEY_ADMIN) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			goto out;
		}
		if (!first_bad) {
			first_bad = lineno;
			snprintf(first_why, sizeof(first_why), "%s", why);
		}
		ctl_state_warn(&warn, path, lineno, why, ctl_state_ignored(key));
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
		goto out;
	}
	if (!key_line[CTL_KEY_ADMIN]) {
		if (first_bad)
			snprintf(err, errlen, "%s:%d: %s, and no valid 'admin' line", path,
				 first_bad, first_why);
		else
			snprintf(err, errlen, "%s:%d: no 'admin' line (a truncated or "
				 "foreign file?)", path, lineno);
		goto out;
	}
	if (v.ramp_ms && v.admin != CTL_ADMIN_READY) {
		ctl_state_warn(&warn, path, key_line[CTL_KEY_RAMP_MS],
			       "ramp_ms needs admin = ready", "no weight ramp");
		v.ramp_ms = 0;
	} else if (v.ramp_ms && v.ramp_start_s <= 0) {
		/* The ramp's length is known, its progress is not: start it
		 * again rather than send full weight to a node warming up. */
		ctl_state_warn(&warn, path, key_line[CTL_KEY_RAMP_MS],
			       "ramp_ms without a valid ramp_start",
			       "the ramp starts again from 1%");
		v.ramp_start_s = ctl_wall_s();
	}
	if (!v.ramp_ms)
		v.ramp_start_s = 0;
	*o = v;
	rc = warn.used ? 2 : 0;
out:
	free(line);
	fclose(f);
	return rc;
}

static int ctl_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ctl_state_save(const char *path, const struct ctl_override *o, char *err,
		   size_t errlen)
{
	char tmp[PATH_MAX], dir[PATH_MAX], body[512], when[32];
	struct ctl_buf b = { body, sizeof(body), 0 };
	int fd, dfd, e;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "state file path too long: %s", path);
		return -1;
	}
	ctl_iso(o->set_at_s, when, sizeof(when));
	ctl_buf_add(&b, "# happac operator override (happac ctl), rewritten on every "
		    "change.\n# %s by uid %u at %s\n", ctl_admin_names[o->admin],
		    (unsigned)o->uid, when);
	ctl_buf_add(&b, "%s = %s\n", ctl_key_names[CTL_KEY_ADMIN], ctl_admin_names[o->admin]);
	ctl_buf_add(&b, "%s = %s\n", ctl_key_names[CTL_KEY_PREV],
		    ctl_admin_names[o->prev_admin]);
	ctl_buf_add(&b, "%s = %u\n", ctl_key_names[CTL_KEY_UID], (unsigned)o->uid);
	ctl_buf_add(&b, "%s = %.3f\n", ctl_key_names[CTL_KEY_SET_AT], o->set_at_s);
	ctl_buf_add(&b, "%s = %d\n", ctl_key_names[CTL_KEY_RAMP_MS], o->ramp_ms);
	ctl_buf_add(&b, "%s = %.3f\n", ctl_key_names[CTL_KEY_RAMP_START],
		    o->ramp_ms ? o->ramp_start_s : 0.0);

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write state file %s: %s", tmp, strerror(errno));
		return -1;
	}
	/* Data on disk before the rename makes it visible: a crash leaves the
	 * old file or the new one, never a torn one. */
	if (ctl_write_all(fd, body, b.used) != 0 || fsync(fd) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		snprintf(err, errlen, "cannot write state file %s: %s", tmp, strerror(e));
		return -1;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		snprintf(err, errlen, "cannot replace state file %s: %s", path, strerror(e));
		return -1;
	}
	/* The rename itself is durable only once the directory is synced. */
	ctl_dir_of(path, dir, sizeof(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* ---- status */

size_t ctl_status_render(const struct ctl_override *o, double now_s,
			 const char *state_path, int saved, char *buf, size_t len)
{
	struct ctl_buf b = { buf, len, 0 };
	int w = ctl_override_weight(o, now_s);

	if (len == 0)
		return 0;
	buf[0] = '\0';
	ctl_buf_add(&b, "{\"admin\":\"%s\",\"prev\":\"%s\",\"uid\":%u,",
		    ctl_admin_names[o->admin], ctl_admin_names[o->prev_admin],
		    (unsigned)o->uid);
	if (o->set_at_s > 0)
		ctl_buf_add(&b, "\"since\":%.3f,", o->set_at_s);
	else
		ctl_buf_add(&b, "\"since\":null,");
	if (w >= 0) {
		double left = o->ramp_start_s + o->ramp_ms / 1000.0 - now_s;

		ctl_buf_add(&b, "\"ramp_ms\":%d,\"ramp_left_ms\":%lld,\"ramp_weight\":%d,",
			    o->ramp_ms, (long long)(left * 1000.0), w);
	} else {
		ctl_buf_add(&b, "\"ramp_ms\":0,\"ramp_left_ms\":0,\"ramp_weight\":null,");
	}
	ctl_buf_add(&b, "\"state_file\":");
	if (state_path)
		ctl_buf_json_string(&b, state_path);
	else
		ctl_buf_add(&b, "null");
	ctl_buf_add(&b, ",\"saved\":%s}", saved ? "true" : "false");
	return b.used;
}

size_t ctl_status(const struct ctl *c, double now_s, char *buf, size_t len)
{
	return ctl_status_render(&c->ov, now_s, c->state_path, c->saved, buf, len);
}

const struct ctl_override *ctl_get(const struct ctl *c)
{
	return &c->ov;
}

int ctl_ramp_weight(const struct ctl *c, double now_s)
{
	return ctl_override_weight(&c->ov, now_s);
}

static uint64_t ctl_save(struct ctl *c);

void ctl_answered(struct ctl *c, int64_t now_us, int ready_window_ms)
{
	if (c->ov.admin != CTL_ADMIN_READY || c->ov.prev_admin == CTL_ADMIN_READY) {
		c->ready_since_us = 0;
		return;
	}
	if (!c->ready_since_us) {
		/* 0 is "not yet": a clock that reads 0 counts from 1us. */
		c->ready_since_us = now_us ? now_us : 1;
		return;
	}
	if (now_us - c->ready_since_us < (int64_t)ready_window_ms * 1000)
		return;
	/* Every HAProxy has heard `ready`: nothing is owed any more, and a
	 * later start must not say it again (it would undo a state an
	 * operator has set by hand in HAProxy since). */
	log_info("override: said ready for the ready window after %s; a restart will "
		 "not say it again", ctl_admin_names[c->ov.prev_admin]);
	c->ov.prev_admin = CTL_ADMIN_READY;
	c->ready_since_us = 0;
	ctl_save(c);
}

/* ---- changes */

/* Hand c->ov to the writer. Returns the generation to wait for, 0 without
 * a state file. On failure the override still holds in memory (an operator
 * who drains in an emergency wants the drain, disk or not): ctl_saved()
 * says so. */
static uint64_t ctl_save(struct ctl *c)
{
	c->saved = 0;
	if (!c->writer)
		return 0;
	c->gen = ctl_writer_put(c->writer, &c->ov);
	return c->gen;
}

static void ctl_conn_reply(struct ctl_conn *conn, const char *text);

/* The reply to a change, once the disk has answered. */
static void ctl_saved_reply(struct ctl_conn *conn, int rc, const char *err)
{
	char reply[CTL_REPLY_MAX - 1];

	if (rc != 0)
		snprintf(reply, sizeof(reply), "ok %s (not saved, lost on restart: %s)",
			 ctl_admin_names[conn->want], err);
	else
		snprintf(reply, sizeof(reply), "ok %s", ctl_admin_names[conn->want]);
	conn->wait_gen = 0;
	ctl_conn_reply(conn, reply);
}

/* A state-file write ended (on the loop thread): every change up to gen is
 * settled, and the requesters that waited for them get their reply. */
static void ctl_saved(void *arg, uint64_t gen, int rc, const char *err)
{
	struct ctl *c = arg;
	struct ctl_conn *conn, *next;

	if (gen == c->gen)
		c->saved = rc == 0;
	if (rc != 0)
		log_warn("override: %s: it holds only until happac stops", err);
	for (conn = c->conns; conn; conn = next) {
		next = conn->next; /* a reply may end the connection */
		if (conn->wait_gen && conn->wait_gen <= gen)
			ctl_saved_reply(conn, rc, err);
	}
}

static void ctl_ramp_tick(evutil_socket_t fd, short what, void *arg);

/* Start ticking for a ramp in c->ov, anchored on the monotonic clock so that
 * its pace does not follow wall-clock steps; a restored ramp keeps its
 * progress. */
static void ctl_ramp_begin(struct ctl *c)
{
	double now = ctl_wall_s(), elapsed = now - c->ov.ramp_start_s;
	int period_ms = c->ov.ramp_ms / 100;
	struct timeval tv;

	if (elapsed < 0)
		elapsed = 0;
	c->ramp_mono_start_us = ctl_mono_us() - (int64_t)(elapsed * 1e6);
	c->ramp_last_weight = ctl_override_weight(&c->ov, now);
	/* About one tick per percent, at most one a second. */
	if (period_ms < 100)
		period_ms = 100;
	if (period_ms > 1000)
		period_ms = 1000;
	tv.tv_sec = period_ms / 1000;
	tv.tv_usec = (period_ms % 1000) * 1000;
	event_add(c->tick, &tv);
}

static void ctl_ramp_tick(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;
	int64_t elapsed_us = ctl_mono_us() - c->ramp_mono_start_us;
	double now = ctl_wall_s(), drift;
	int w;

	(void)fd;
	(void)what;
	if (elapsed_us >= (int64_t)c->ov.ramp_ms * 1000) {
		log_info("override: weight ramp of %.1fs finished: full weight",
			 c->ov.ramp_ms / 1000.0);
		c->ov.ramp_ms = 0;
		c->ov.ramp_start_s = 0;
		event_del(c->tick);
		ctl_save(c);
		c->changed(c->arg);
		return;
	}
	drift = now - (c->ov.ramp_start_s + (double)elapsed_us / 1e6);
	if (drift > CTL_CLOCK_STEP_S || drift < -CTL_CLOCK_STEP_S) {
		log_warn("override: the wall clock stepped %+.1fs during the weight ramp; "
			 "the ramp keeps its pace", drift);
		c->ov.ramp_start_s = now - (double)elapsed_us / 1e6;
		ctl_save(c);
	}
	w = ctl_override_weight(&c->ov, now);
	if (w != c->ramp_last_weight) {
		c->ramp_last_weight = w;
		c->changed(c->arg);
	}
}

/* What the override was, for the log: "drain", "ready (ramping)". */
static const char *ctl_was(const struct ctl_override *o)
{
	if (o->ramp_ms)
		return "ready (ramping)";
	return ctl_admin_names[o->admin];
}

/* Carry out a request. Returns 0 with reply set to the line to send (no
 * newline), or the state-file generation the reply waits for, *want set. */
static uint64_t ctl_apply(struct ctl *c, const struct ctl_request *req, uid_t uid,
			  pid_t pid, char *reply, size_t len, enum ctl_admin *wantp)
{
	struct ctl_override next = c->ov;
	double now = ctl_wall_s();
	enum ctl_admin want;
	uint64_t gen;

	switch (req->cmd) {
	case CTL_CMD_STATUS:
		ctl_status(c, now, reply, len);
		return 0;
	case CTL_CMD_DRAIN:
		want = CTL_ADMIN_DRAIN;
		break;
	case CTL_CMD_MAINT:
		want = CTL_ADMIN_MAINT;
		break;
	case CTL_CMD_READY:
		want = CTL_ADMIN_READY;
		break;
	case CTL_CMD_COUNT:
	default:
		log_fatal("ctl: impossible command %d", (int)req->cmd);
	}
	if (want == c->ov.admin && !req->ramp_ms && !c->ov.ramp_ms) {
		log_info("override: %s requested by uid %u (pid %d): already in effect",
			 ctl_admin_names[want], (unsigned)uid, (int)pid);
		snprintf(reply, len, "ok %s", ctl_admin_names[want]);
		return 0;
	}
	/* ready -> ready with a ramp (or back) keeps the `ready` still owed to
	 * HAProxy for an earlier drain/maint, and the time it has been said. */
	if (want == CTL_ADMIN_READY && c->ov.admin == CTL_ADMIN_READY) {
		next.prev_admin = c->ov.prev_admin;
	} else {
		next.prev_admin = c->ov.admin;
		c->ready_since_us = 0;
	}
	next.admin = want;
	next.uid = uid;
	next.set_at_s = now;
	next.ramp_ms = req->ramp_ms;
	next.ramp_start_s = req->ramp_ms ? now : 0;
	if (req->ramp_ms)
		log_info("override: ready with a %.1fs weight ramp set by uid %u (pid %d; was %s)",
			 req->ramp_ms / 1000.0, (unsigned)uid, (int)pid, ctl_was(&c->ov));
	else
		log_info("override: %s set by uid %u (pid %d; was %s)", ctl_admin_names[want],
			 (unsigned)uid, (int)pid, ctl_was(&c->ov));
	c->ov = next;
	event_del(c->tick);
	if (next.ramp_ms)
		ctl_ramp_begin(c);
	gen = ctl_save(c);
	snprintf(reply, len, "ok %s", ctl_admin_names[want]);
	*wantp = want;
	/* Before the reply, and before the disk: when `happac ctl` returns, the
	 * agent line already says it, however slow the disk. */
	c->changed(c->arg);
	return gen;
}

/* ---- connections */

static void ctl_reap(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;

	(void)fd;
	(void)what;
	while (c->dead) {
		struct ctl_conn *conn = c->dead;

		c->dead = conn->next;
		event_free(conn->rd);
		event_free(conn->wr);
		event_free(conn->deadline);
		free(conn);
	}
}

/* The one exit of a connection: close it now, free it outside its callbacks. */
static void ctl_conn_done(struct ctl_conn *conn)
{
	struct ctl *c = conn->ctl;
	struct ctl_conn **pp;

	if (conn->fd < 0)
		return;
	event_del(conn->rd);
	event_del(conn->wr);
	event_del(conn->deadline);
	close(conn->fd);
	conn->fd = -1;
	for (pp = &c->conns; *pp; pp = &(*pp)->next)
		if (*pp == conn) {
			*pp = conn->next;
			break;
		}
	c->nconns--;
	if (c->at_cap && c->nconns < CTL_MAX_CONNS)
		c->at_cap = 0;
	conn->next = c->dead;
	c->dead = conn;
	event_active(c->reap, EV_TIMEOUT, 0);
}

static void ctl_conn_write(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *conn = arg;
	char sink[4096];
	ssize_t n;

	(void)what;
	n = send(fd, conn->out + conn->out_off, conn->out_len - conn->out_off,
		 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		event_add(conn->wr, NULL);
		return;
	}
	if (n < 0) {
		ctl_conn_done(conn);
		return;
	}
	conn->out_off += (size_t)n;
	if (conn->out_off < conn->out_len) {
		event_add(conn->wr, NULL);
		return;
	}
	/* Read what else the client sent, so that the close does not turn
	 * into a reset that could hide the reply from it. */
	for (int i = 0; i < 16; i++)
		if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
	ctl_conn_done(conn);
}

static void ctl_conn_reply(struct ctl_conn *conn, const char *text)
{
	int n = snprintf(conn->out, sizeof(conn->out), "%s\n", text);

	if (n < 0 || (size_t)n >= sizeof(conn->out)) {
		/* Keep the newline: a reply is always one whole line. */
		n = (int)sizeof(conn->out) - 1;
		conn->out[n - 1] = '\n';
		conn->out[n] = '\0';
	}
	conn->out_len = (size_t)n;
	conn->out_off = 0;
	event_del(conn->rd);
	ctl_conn_write(conn->fd, EV_WRITE, conn);
}

static void ctl_conn_request(struct ctl_conn *conn, size_t len)
{
	struct ctl_request req;
	char err[200], reply[CTL_REPLY_MAX - 1];

	if (ctl_request_parse(conn->in, len, &req, err, sizeof(err)) != 0) {
		log_info("control: refused a request from uid %u (pid %d): %s",
			 (unsigned)conn->uid, (int)conn->pid, err);
		snprintf(reply, sizeof(reply), "error %s", err);
	} else {
		conn->wait_gen = ctl_apply(conn->ctl, &req, conn->uid, conn->pid, reply,
					   sizeof(reply), &conn->want);
		if (conn->wait_gen) {
			/* The change is in effect; the reply says whether it is
			 * on disk, when the writer knows (ctl_saved). */
			event_del(conn->rd);
			return;
		}
	}
	ctl_conn_reply(conn, reply);
}

static void ctl_conn_read(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *conn = arg;
	ssize_t n;
	char *nl;

	(void)what;
	n = recv(fd, conn->in + conn->in_len, sizeof(conn->in) - conn->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		ctl_conn_done(conn);
		return;
	}
	if (n == 0) {
		/* End of input ends the line too: `printf drain | socat` works. */
		if (conn->in_len == 0)
			ctl_conn_reply(conn, "error empty request");
		else
			ctl_conn_request(conn, conn->in_len);
		return;
	}
	conn->in_len += (size_t)n;
	nl = memchr(conn->in, '\n', conn->in_len);
	if (nl) {
		ctl_conn_request(conn, (size_t)(nl - conn->in) + 1);
		return;
	}
	if (conn->in_len == sizeof(conn->in)) {
		char msg[64];

		snprintf(msg, sizeof(msg), "error request too long (max %d bytes)",
			 CTL_LINE_MAX - 1);
		log_info("control: refused an over-long request from uid %u (pid %d)",
			 (unsigned)conn->uid, (int)conn->pid);
		ctl_conn_reply(conn, msg);
	}
}

static void ctl_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_conn *conn = arg;
	char msg[128];
	int n;

	(void)fd;
	(void)what;
	if (conn->wait_gen) {
		/* The change holds; only its write is slow. */
		n = snprintf(msg, sizeof(msg), "ok %s (not saved yet: the state file write "
			     "is still running after %dms)\n", ctl_admin_names[conn->want],
			     CTL_DEADLINE_MS);
		log_warn("override: the state file write for %s is still running after "
			 "%dms (a slow disk?)", ctl_admin_names[conn->want], CTL_DEADLINE_MS);
		if (send(conn->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("control: timeout reply lost: %s", strerror(errno));
	} else if (conn->out_len == 0) {
		/* Best effort: a client still listening learns why it was cut. */
		n = snprintf(msg, sizeof(msg), "error timeout: no complete request within %dms\n",
			     CTL_DEADLINE_MS);
		if (send(conn->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("control: timeout reply lost: %s", strerror(errno));
	}
	log_debug("control: connection from uid %u timed out", (unsigned)conn->uid);
	ctl_conn_done(conn);
}

static void ctl_conn_new(struct ctl *c, int fd)
{
	struct ctl_conn *conn = calloc(1, sizeof(*conn));
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	struct timeval tv = { CTL_DEADLINE_MS / 1000, (CTL_DEADLINE_MS % 1000) * 1000 };

	if (!conn) {
		close(fd);
		return;
	}
	conn->ctl = c;
	conn->fd = fd;
	conn->uid = (uid_t)-1;
	conn->pid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
		conn->uid = cred.uid;
		conn->pid = cred.pid;
	}
	conn->rd = event_new(c->base, fd, EV_READ | EV_PERSIST, ctl_conn_read, conn);
	conn->wr = event_new(c->base, fd, EV_WRITE, ctl_conn_write, conn);
	conn->deadline = evtimer_new(c->base, ctl_conn_timeout, conn);
	if (!conn->rd || !conn->wr || !conn->deadline) {
		if (conn->rd)
			event_free(conn->rd);
		if (conn->wr)
			event_free(conn->wr);
		if (conn->deadline)
			event_free(conn->deadline);
		close(fd);
		free(conn);
		return;
	}
	event_add(conn->rd, NULL);
	event_add(conn->deadline, &tv);
	conn->next = c->conns;
	c->conns = conn;
	c->nconns++;
}

static void ctl_resume(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;

	(void)fd;
	(void)what;
	event_add(c->accept_ev, NULL);
}

static void ctl_accept(evutil_socket_t lfd, short what, void *arg)
{
	static const char busy[] = "error busy: too many control connections, try again\n";
	struct ctl *c = arg;

	(void)what;
	for (int i = 0; i < CTL_ACCEPT_BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* Out of descriptors: pause instead of spinning on a
				 * readable listener. */
				struct timeval tv = { 0, 100000 };

				log_warn("control: accept: %s; pausing 100ms", strerror(errno));
				event_del(c->accept_ev);
				evtimer_add(c->resume, &tv);
			}
			return;
		}
		if (c->nconns >= CTL_MAX_CONNS) {
			if (!c->at_cap)
				log_warn("control: %d connections open, refusing more until "
					 "one ends", c->nconns);
			c->at_cap = 1;
			if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("control: busy reply lost: %s", strerror(errno));
			close(fd);
			continue;
		}
		ctl_conn_new(c, fd);
	}
}

/* ---- the socket */

/* 1 when something accepts on the unix socket at path (or its backlog is
 * full), 0 when nothing does. */
static int ctl_socket_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int live;

	if (fd < 0)
		return 0;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
	       errno == EAGAIN;
	close(fd);
	return live;
}

static int ctl_listen(struct ctl *c, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	char dir[PATH_MAX], why[PATH_MAX + 64];
	const char *path = c->socket_path;
	mode_t old;
	int rc, e;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path '%s' is empty or too long "
			 "(max %zu bytes)", path, sizeof(sa.sun_path) - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ctl_dir_of(path, dir, sizeof(dir));
	if (ctl_check_dir(dir, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "cannot create control socket %s: %s", path, why);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "cannot create control socket %s: the path "
				 "exists and is not a socket; not replacing it", path);
			return -1;
		}
		if (ctl_socket_live(&sa)) {
			snprintf(err, errlen, "control socket %s is in use (is another happac "
				 "running?)", path);
			return -1;
		}
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(err, errlen, "cannot replace the stale control socket %s: %s",
				 path, strerror(errno));
			return -1;
		}
		log_info("control: replaced the stale socket %s", path);
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(err, errlen, "cannot create control socket %s: %s", path,
			 strerror(errno));
		return -1;
	}
	/* The socket file is born 0660: no moment where others may connect. */
	old = umask(0117);
	rc = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	umask(old);
	/* A deep backlog: a burst beyond the cap is told "busy" at once rather
	 * than refused at connect. */
	if (rc != 0 || chmod(path, 0660) != 0 || listen(c->fd, SOMAXCONN) != 0 ||
	    stat(path, &st) != 0) {
		if (rc == 0)
			e = errno;
		snprintf(err, errlen, "cannot create control socket %s: %s", path, strerror(e));
		if (rc == 0)
			unlink(path);
		return -1;
	}
	c->sock_dev = st.st_dev;
	c->sock_ino = st.st_ino;
	return 0;
}

/* ---- life cycle */

/* Every live ctl (loop thread only): a new instance for the same state file
 * (a reload that moves the socket) first waits for the old one's writes. */
static struct ctl *ctl_live;

/* Read the override from the state file into c->ov. A bad admin line, an
 * unreadable file, or none that names the admin state, is an error:
 * starting without it could put a node in maintenance back into service.
 * Bad auxiliary fields cost only themselves, with a warning naming each.
 * Changes nothing but c, so a reload can still be abandoned after it. */
static int ctl_restore_load(struct ctl *c, char *err, size_t errlen)
{
	char why[1024];
	int r;

	for (struct ctl *o = ctl_live; o; o = o->next_live)
		if (o->writer && !strcmp(o->state_path, c->state_path))
			ctl_writer_flush(o->writer);
	r = ctl_state_load(c->state_path, &c->ov, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "cannot restore the operator override from %s; "
			 "refusing to start rather than guess whether this node is in "
			 "maintenance: correct or remove the file", why);
		return -1;
	}
	c->saved = r != 2;
	c->restored = r != 1;
	if (r == 2)
		log_warn("override: keeping admin = %s from the state file, without its "
			 "bad fields: %s", ctl_admin_names[c->ov.admin], why);
	return 0;
}

/* Put a loaded override in force: its ramp ticks again, and the log says
 * what was restored. */
static void ctl_restore_apply(struct ctl *c)
{
	char when[32], who[32];
	double now = ctl_wall_s();

	if (!c->restored)
		return;
	ctl_iso(c->ov.set_at_s, when, sizeof(when));
	if (c->ov.set_at_s <= 0)
		snprintf(when, sizeof(when), "an unknown time");
	if (c->ov.uid == (uid_t)-1)
		snprintf(who, sizeof(who), "an unknown uid");
	else
		snprintf(who, sizeof(who), "uid %u", (unsigned)c->ov.uid);
	if (c->ov.ramp_ms && ctl_override_weight(&c->ov, now) < 0) {
		log_info("override: the weight ramp in %s ended while happac was stopped",
			 c->state_path);
		c->ov.ramp_ms = 0;
		c->ov.ramp_start_s = 0;
		ctl_save(c);
	} else if (c->ov.ramp_ms) {
		ctl_ramp_begin(c);
		log_info("override: restored a %.1fs weight ramp from %s (set by %s at %s): "
			 "now %d%%", c->ov.ramp_ms / 1000.0, c->state_path, who, when,
			 ctl_override_weight(&c->ov, now));
	} else if (c->ov.admin != CTL_ADMIN_READY) {
		log_info("override: restored %s from %s (set by %s at %s)",
			 ctl_admin_names[c->ov.admin], c->state_path, who, when);
	} else if (c->ov.prev_admin != CTL_ADMIN_READY) {
		log_info("override: %s ended before happac stopped; `ready` is said again "
			 "for the ready window", ctl_admin_names[c->ov.prev_admin]);
	}
}

/* The state file's directory must exist and be writable: found at start
 * (or reload) rather than at the first drain in an emergency. */
static int ctl_check_state_dir(const char *state_path, char *err, size_t errlen)
{
	char dir[PATH_MAX], why[PATH_MAX + 64];

	ctl_dir_of(state_path, dir, sizeof(dir));
	if (ctl_check_dir(dir, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "state file %s: %s", state_path, why);
		return -1;
	}
	if (access(dir, W_OK) != 0) {
		snprintf(err, errlen, "state file %s: directory %s is not writable: %s",
			 state_path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* A server with its socket bound and listening, not accepting yet, its
 * state file's writer running, and (with restore) the override read from
 * the state file but not yet in force: ctl_start() begins. */
static struct ctl *ctl_open(struct event_base *base, const char *socket_path,
			    const char *state_path, int restore,
			    void (*changed)(void *arg), void *arg, char *err, size_t errlen)
{
	struct ctl *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->base = base;
	c->fd = -1;
	c->changed = changed;
	c->arg = arg;
	ctl_override_none(&c->ov);
	c->socket_path = strdup(socket_path ? socket_path : CTL_DEFAULT_SOCKET);
	c->state_path = state_path ? strdup(state_path) : NULL;
	c->accept_ev = NULL;
	c->resume = evtimer_new(base, ctl_resume, c);
	c->reap = event_new(base, -1, 0, ctl_reap, c);
	c->tick = event_new(base, -1, EV_PERSIST, ctl_ramp_tick, c);
	if (!c->socket_path || (state_path && !c->state_path) || !c->resume || !c->reap ||
	    !c->tick) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (c->state_path) {
		if (ctl_check_state_dir(c->state_path, err, errlen) != 0)
			goto fail;
		c->writer = ctl_writer_new(base, c->state_path, ctl_saved, c, err, errlen);
		if (!c->writer)
			goto fail;
	}
	if (ctl_listen(c, err, errlen) != 0)
		goto fail;
	c->accept_ev = event_new(base, c->fd, EV_READ | EV_PERSIST, ctl_accept, c);
	if (!c->accept_ev) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->next_live = ctl_live;
	ctl_live = c;
	if (restore && c->state_path && ctl_restore_load(c, err, errlen) != 0)
		goto fail;
	return c;
fail:
	ctl_free(c);
	return NULL;
}

static void ctl_start(struct ctl *c)
{
	event_add(c->accept_ev, NULL);
	log_info("control: listening on %s%s%s", c->socket_path,
		 c->state_path ? ", state in " : ", no state file",
		 c->state_path ? c->state_path : "");
}

struct ctl *ctl_new(struct event_base *base, const char *socket_path,
		    const char *state_path, void (*changed)(void *arg), void *arg,
		    char *err, size_t errlen)
{
	struct ctl *c = ctl_open(base, socket_path, state_path, 1, changed, arg, err, errlen);

	if (!c)
		return NULL;
	ctl_restore_apply(c);
	ctl_start(c);
	return c;
}

/* ---- reload */

struct ctl_reload {
	int keep;           /* the running server stays: same socket */
	int state_changed;  /* keep: state_path replaces the running one */
	char *state_path;
	struct ctl_writer *writer; /* keep: the new state file's writer */
	struct ctl *fresh;  /* a server on a new socket; NULL with !keep: off */
};

static int ctl_same_path(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

/* The running server owns the socket at path: the same name, or another
 * name for the same file. Binding it anew would find it live (our own) and
 * fail. */
static int ctl_owns_socket(const struct ctl *c, const char *path)
{
	struct stat st;

	if (!strcmp(c->socket_path, path))
		return 1;
	return c->fd >= 0 && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       st.st_dev == c->sock_dev && st.st_ino == c->sock_ino;
}

struct ctl_reload *ctl_reload_prepare(struct ctl *cur, struct event_base *base,
				      const char *socket_path, const char *state_path,
				      void (*changed)(void *arg), void *arg, char *err,
				      size_t errlen)
{
	struct ctl_reload *r = calloc(1, sizeof(*r));

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!socket_path)
		return r;
	if (cur && ctl_owns_socket(cur, socket_path)) {
		/* Only the state file may move: the socket stays open. */
		r->keep = 1;
		if (ctl_same_path(cur->state_path, state_path))
			return r;
		r->state_changed = 1;
		if (state_path) {
			if (ctl_check_state_dir(state_path, err, errlen) != 0)
				goto fail;
			r->state_path = strdup(state_path);
			if (!r->state_path) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			r->writer = ctl_writer_new(base, state_path, ctl_saved, cur, err, errlen);
			if (!r->writer)
				goto fail;
		}
		return r;
	}
	/* A running server hands its override over; only a first one reads
	 * the state file. */
	r->fresh = ctl_open(base, socket_path, state_path, cur == NULL, changed, arg, err,
			    errlen);
	if (!r->fresh)
		goto fail;
	return r;
fail:
	ctl_reload_abort(r);
	return NULL;
}

/* Persist the override in force in c's (new) state file; a failed write
 * is logged by ctl_saved(). */
static void ctl_save_moved(struct ctl *c)
{
	if (!c->state_path) {
		c->saved = 0;
		return;
	}
	ctl_save(c);
	log_info("control: state now in %s (override: %s)", c->state_path,
		 ctl_was(&c->ov));
}

/* The new server c takes over old's override, ramp included: what HAProxy
 * hears must not change because the socket moved. */
static void ctl_adopt(struct ctl *c, const struct ctl *old)
{
	c->ov = old->ov;
	if (c->ov.ramp_ms) {
		ctl_ramp_begin(c);
		c->ramp_mono_start_us = old->ramp_mono_start_us;
		c->ramp_last_weight = old->ramp_last_weight;
	}
	if (c->state_path && ctl_same_path(c->state_path, old->state_path) && old->saved)
		c->saved = 1; /* the file already holds it */
	else
		ctl_save_moved(c);
	log_info("control: moved from %s to %s; the override carries over: %s",
		 old->socket_path, c->socket_path, ctl_was(&c->ov));
}

struct ctl *ctl_reload_commit(struct ctl *cur, struct ctl_reload *r)
{
	struct ctl *c = NULL;

	if (r->keep) {
		c = cur;
		if (r->state_changed) {
			/* The old file's pending writes finish (and their
			 * requesters hear of them) before the new file takes
			 * over. */
			if (c->writer)
				ctl_writer_flush(c->writer);
			ctl_writer_free(c->writer);
			c->writer = r->writer;
			r->writer = NULL;
			free(c->state_path);
			c->state_path = r->state_path;
			r->state_path = NULL;
			if (!c->state_path)
				log_info("control: no state file from now on: the override "
					 "(%s) holds until happac stops", ctl_was(&c->ov));
			ctl_save_moved(c);
		}
	} else if (r->fresh) {
		c = r->fresh;
		r->fresh = NULL;
		if (cur)
			ctl_adopt(c, cur);
		else
			ctl_restore_apply(c);
		ctl_start(c);
		ctl_free(cur);
	} else {
		if (cur)
			log_info("control: socket %s closed: no override from now on",
				 cur->socket_path);
		ctl_free(cur);
	}
	ctl_reload_abort(r);
	return c;
}

void ctl_reload_abort(struct ctl_reload *r)
{
	if (!r)
		return;
	ctl_free(r->fresh);
	ctl_writer_free(r->writer);
	free(r->state_path);
	free(r);
}

void ctl_free(struct ctl *c)
{
	struct stat st;

	if (!c)
		return;
	for (struct ctl **pp = &ctl_live; *pp; pp = &(*pp)->next_live)
		if (*pp == c) {
			*pp = c->next_live;
			break;
		}
	while (c->conns)
		ctl_conn_done(c->conns);
	ctl_reap(-1, 0, c);
	/* Writes what is still pending: a change is never lost to a stop. */
	ctl_writer_free(c->writer);
	if (c->accept_ev)
		event_free(c->accept_ev);
	if (c->fd >= 0) {
		close(c->fd);
		/* Only our own file: a newer instance may have replaced it. */
		if (lstat(c->socket_path, &st) == 0 && st.st_dev == c->sock_dev &&
		    st.st_ino == c->sock_ino)
			unlink(c->socket_path);
	}
	if (c->resume)
		event_free(c->resume);
	if (c->reap)
		event_free(c->reap);
	if (c->tick)
		event_free(c->tick);
	free(c->socket_path);
	free(c->state_path);
	free(c);
}

/* ---- the client: happac ctl */

static void ctl_usage(FILE *out)
{
	fprintf(out,
		"usage: happac ctl [--socket PATH] COMMAND\n"
		"  drain              HAProxy sends no new connections here (agent word 'drain')\n"
		"  maint              put this server in maintenance (agent word 'maint')\n"
		"  ready [--ramp D]   clear drain/maint; with --ramp, raise the weight from 1%%\n"
		"                     to 100%% over D (e.g. 60s, 2m; 1s-24h)\n"
		"  status             print the override in force as JSON\n"
		"  --socket PATH      the daemon's control socket (default: $HAPPAC_CONTROL_SOCKET,\n"
		"                     else %s)\n"
		"Exit status: 0 ok, 1 the daemon refused, 2 bad usage or no daemon.\n",
		CTL_DEFAULT_SOCKET);
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
	ctl_dir_of(path, dir, sizeof(dir));
	if (stat(path, &st) != 0 && stat(dir, &st) != 0)
		return;
	g = getgrgid(st.st_gid);
	if (g)
		snprintf(buf, len, "%s", g->gr_name);
	else
		snprintf(buf, len, "%u", (unsigned)st.st_gid);
}

/* Send line to the daemon at path and read its reply into buf. Returns 0, or
 * -1 after printing why. */
static int ctl_client_exchange(const char *path, const char *line, char *buf, size_t len)
{
	struct sockaddr_un sa;
	struct timeval tv = { CTL_CLIENT_TIMEOUT_S, 0 };
	size_t got = 0;
	int fd, send_errno = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "happac ctl: control socket path '%s' is empty or too long\n",
			path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "happac ctl: socket: %s\n", strerror(errno));
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
			fprintf(stderr, "happac ctl: cannot connect to %s: %s (only root and the "
				"members of %s%s may use it)\n", path, strerror(e),
				*group ? "group " : "the socket's group", group);
			close(fd);
			return -1;
		}
		fprintf(stderr, "happac ctl: cannot connect to %s: %s%s\n", path, strerror(e),
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
			fprintf(stderr, "happac ctl: cannot send to %s: %s\n", path,
				strerror(send_errno));
			close(fd);
			return -1;
		}
		if (n < 0 && got == 0) {
			fprintf(stderr, "happac ctl: no reply from %s%s: %s\n", path,
				errno == EAGAIN ? " within 5s" : "", strerror(errno));
			close(fd);
			return -1;
		}
		if (n <= 0 || (got += (size_t)n) == len - 1)
			break;
	}
	close(fd);
	buf[got] = '\0';
	if (got == 0) {
		fprintf(stderr, "happac ctl: %s closed the connection without a reply\n", path);
		return -1;
	}
	return 0;
}

int ctl_main(int argc, char **argv)
{
	const char *path = getenv("HAPPAC_CONTROL_SOCKET");
	char line[CTL_LINE_MAX + 1] = "", reply[4096], err[200];
	struct ctl_request req;
	size_t used = 0;
	char *nl;

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
	if (ctl_client_exchange(path, line, reply, sizeof(reply)) != 0)
		return 2;
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
