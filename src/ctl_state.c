/* ctl_state.c - the operator override: the state file, the weight ramp,
 * the status JSON, and the small clock and text helpers the ctl files
 * share. Reading and writing the file block on the disk: the server reads
 * it at start (and at a reload that moves it) and writes it from its
 * writer thread (ctl_writer.c) only. */
#include "ctl_state.h"
#include "util.h"

#include "ctl_request.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const ctl_state_admin_names[CTL_ADMIN_COUNT] = {
	[CTL_ADMIN_READY] = "ready",
	[CTL_ADMIN_DRAIN] = "drain",
	[CTL_ADMIN_MAINT] = "maint",
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

void ctl_state_dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, len, ".");
	else if (slash == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
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

/* s as a JSON string (util_json_quote), cut like ctl_buf_add cuts. */
static void ctl_buf_json_string(struct ctl_buf *b, const char *s)
{
	size_t n = util_json_quote(b->p + b->used, b->len - b->used, s);

	b->used += n;
	if (b->used >= b->len)
		b->used = b->len - 1;
}

void ctl_state_none(struct ctl_override *o)
{
	memset(o, 0, sizeof(*o));
	o->admin = CTL_ADMIN_READY;
	o->prev_admin = CTL_ADMIN_READY;
}

/* ---- the ramp */

int ctl_state_weight(const struct ctl_override *o, double now_s)
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

/* A bad timestamp leaves 0 ("never") in *out: the caller reports it and
 * the rest of the file still loads. */
static int ctl_parse_time(const char *s, double *out)
{
	char *end;
	double v;

	*out = 0;
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
		if (!strcmp(s, ctl_state_admin_names[a])) {
			*out = (enum ctl_admin)a;
			return 0;
		}
	return -1;
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
	name = util_trim(text);
	value = util_trim(eq + 1);
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
		break;
	case CTL_KEY_RAMP_MS:
		bad = ctl_parse_uint(value, CTL_RAMP_MAX_MS, &u) ||
		      (u != 0 && u < CTL_RAMP_MIN_MS);
		v->ramp_ms = bad ? 0 : (int)u;
		break;
	case CTL_KEY_RAMP_START:
		bad = ctl_parse_time(value, &v->ramp_start_s);
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

/* A ramp the loaded fields cannot run as written: dropped, or restarted. */
static void ctl_state_check_ramp(struct ctl_override *v, const char *path, int ramp_line,
				 struct ctl_buf *warn)
{
	if (v->ramp_ms && v->admin != CTL_ADMIN_READY) {
		ctl_state_warn(warn, path, ramp_line, "ramp_ms needs admin = ready",
			       "no weight ramp");
		v->ramp_ms = 0;
	} else if (v->ramp_ms && v->ramp_start_s <= 0) {
		/* The ramp's length is known, its progress is not: start it
		 * again rather than send full weight to a node warming up. */
		ctl_state_warn(warn, path, ramp_line, "ramp_ms without a valid ramp_start",
			       "the ramp starts again from 1%");
		v->ramp_start_s = util_wall_s();
	}
	if (!v->ramp_ms)
		v->ramp_start_s = 0;
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

	ctl_state_none(o);
	if (errlen)
		err[0] = '\0';
	if (!f) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ctl_state_none(&v);
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *text;

		lineno++;
		key = -1;
		if (n >= CTL_LINE_MAX) {
			snprintf(why, sizeof(why), "line too long");
		} else if (memchr(line, '\0', (size_t)n)) {
			snprintf(why, sizeof(why), "NUL byte");
		} else {
			text = util_trim(line);
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
	ctl_state_check_ramp(&v, path, key_line[CTL_KEY_RAMP_MS], &warn);
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
	if (o->set_at_s > 0)
		util_iso8601(o->set_at_s, when, sizeof(when));
	else
		snprintf(when, sizeof(when), "an unknown time");
	ctl_buf_add(&b, "# happac operator override (happac ctl), rewritten on every "
		    "change.\n# %s by uid %u at %s\n", ctl_state_admin_names[o->admin],
		    (unsigned)o->uid, when);
	ctl_buf_add(&b, "%s = %s\n", ctl_key_names[CTL_KEY_ADMIN], ctl_state_admin_names[o->admin]);
	ctl_buf_add(&b, "%s = %s\n", ctl_key_names[CTL_KEY_PREV],
		    ctl_state_admin_names[o->prev_admin]);
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
	ctl_state_dir_of(path, dir, sizeof(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* ---- status */

size_t ctl_state_status(const struct ctl_override *o, double now_s,
			 const char *state_path, int saved, char *buf, size_t len)
{
	struct ctl_buf b = { buf, len, 0 };
	int w = ctl_state_weight(o, now_s);

	if (len == 0)
		return 0;
	buf[0] = '\0';
	ctl_buf_add(&b, "{\"admin\":\"%s\",\"prev\":\"%s\",\"uid\":%u,",
		    ctl_state_admin_names[o->admin], ctl_state_admin_names[o->prev_admin],
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
