/* patroni_json.c - a small, strict JSON reader for Patroni's status. */
#include "patroni_json.h"

#include <stdio.h>
#include <string.h>

#define PATRONI_JSON_MAX_DEPTH 16

struct patroni_json_reader {
	const char *p, *end, *start;
	int depth;
	const char *error;
};

/* Which field the value being read belongs to (only top level and tags). */
enum patroni_json_field {
	PJ_NONE, PJ_STATE, PJ_ROLE, PJ_PAUSE, PJ_UNLOCKED, PJ_SYNC, PJ_QUORUM, PJ_FAILSAFE,
	PJ_REPLICATION, PJ_TAGS, PJ_PATRONI, PJ_NOLB, PJ_VERSION,
};

/* The objects whose members are read: kind of pj_object(). */
enum { PJ_OBJ_SKIP, PJ_OBJ_TOP, PJ_OBJ_TAGS, PJ_OBJ_PATRONI };

static void pj_ws(struct patroni_json_reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' ||
				 *r->p == '\r'))
		r->p++;
}

static int pj_fail(struct patroni_json_reader *r, const char *what)
{
	if (!r->error)
		r->error = what;
	return -1;
}

/* A string; its raw bytes (escapes kept) go to out when out is not NULL. */
static int pj_string(struct patroni_json_reader *r, char *out, size_t outlen)
{
	size_t n = 0;

	if (r->p >= r->end || *r->p != '"')
		return pj_fail(r, "expected a string");
	r->p++;
	while (r->p < r->end && *r->p != '"') {
		unsigned char c = (unsigned char)*r->p;

		if (c < 0x20)
			return pj_fail(r, "control character in a string");
		if (c == '\\') {
			if (r->p + 1 >= r->end)
				return pj_fail(r, "unterminated escape");
			if (!r->p[1] || !strchr("\"\\/bfnrtu", r->p[1]))
				return pj_fail(r, "bad escape");
			if (r->p[1] == 'u') {
				if (r->end - r->p < 6)
					return pj_fail(r, "short \\u escape");
				for (int i = 2; i < 6; i++)
					if (!r->p[i] || !strchr("0123456789abcdefABCDEF", r->p[i]))
						return pj_fail(r, "bad \\u escape");
			}
		}
		if (out && n + 1 < outlen) {
			/* the escaped character itself; a \\uXXXX or a control
			 * escape as '?' (no field we keep needs them) */
			if (c == '\\')
				c = strchr("\"\\/", r->p[1]) ? (unsigned char)r->p[1] : '?';
			out[n++] = (char)c;
		}
		r->p += *r->p == '\\' ? (r->p[1] == 'u' ? 6 : 2) : 1;
	}
	if (r->p >= r->end)
		return pj_fail(r, "unterminated string");
	r->p++;
	if (out && outlen)
		out[n] = '\0';
	return 0;
}

static int pj_literal(struct patroni_json_reader *r, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return pj_fail(r, "unexpected character");
	r->p += n;
	return 0;
}

static int pj_number(struct patroni_json_reader *r)
{
	const char *s = r->p;

	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (r->p >= r->end || *r->p < '0' || *r->p > '9')
		return pj_fail(r, "bad number");
	while (r->p < r->end && ((*r->p >= '0' && *r->p <= '9') || *r->p == '.' ||
				 *r->p == 'e' || *r->p == 'E' || *r->p == '+' ||
				 *r->p == '-'))
		r->p++;
	return r->p > s ? 0 : pj_fail(r, "bad number");
}

static int pj_value(struct patroni_json_reader *r, enum patroni_json_field field,
		    struct patroni_json *out);

/* The top-level keys that are read, by field; everything else is skipped.
 * PJ_NOLB is read only inside "tags", PJ_VERSION only inside "patroni". */
static const char *const pj_keys[PJ_NOLB] = {
	[PJ_STATE] = "state",       [PJ_ROLE] = "role",
	[PJ_PAUSE] = "pause",       [PJ_UNLOCKED] = "cluster_unlocked",
	[PJ_SYNC] = "sync_standby", [PJ_QUORUM] = "quorum_standby",
	[PJ_FAILSAFE] = "failsafe_mode_is_active",
	[PJ_REPLICATION] = "replication_state",
	[PJ_TAGS] = "tags",         [PJ_PATRONI] = "patroni",
};

static enum patroni_json_field pj_field(const char *key, int kind)
{
	if (kind == PJ_OBJ_TAGS)
		return strcmp(key, "noloadbalance") ? PJ_NONE : PJ_NOLB;
	if (kind == PJ_OBJ_PATRONI)
		return strcmp(key, "version") ? PJ_NONE : PJ_VERSION;
	for (int f = PJ_STATE; f < PJ_NOLB; f++)
		if (!strcmp(key, pj_keys[f]))
			return (enum patroni_json_field)f;
	return PJ_NONE;
}

/* At close ('}' or ']'): step over it and leave the container. */
static int pj_close(struct patroni_json_reader *r, char close)
{
	if (r->p >= r->end || *r->p != close)
		return 0;
	r->p++;
	r->depth--;
	return 1;
}

/* Entering '{' or '[' at r->p: 1 when a member or element follows, 0 when
 * the container is empty (and left), -1 when nested too deep. */
static int pj_open(struct patroni_json_reader *r, char close)
{
	if (++r->depth > PATRONI_JSON_MAX_DEPTH)
		return pj_fail(r, "nested too deep");
	r->p++;
	pj_ws(r);
	return !pj_close(r, close);
}

/* After a member or element: ',' gives 1 (another follows), close 0 (the
 * container is left), anything else -1. */
static int pj_next(struct patroni_json_reader *r, char close)
{
	pj_ws(r);
	if (r->p < r->end && *r->p == ',') {
		r->p++;
		return 1;
	}
	if (pj_close(r, close))
		return 0;
	return pj_fail(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int pj_object(struct patroni_json_reader *r, int kind, struct patroni_json *out)
{
	/* kind: PJ_OBJ_*: whose members are read */
	char key[32];
	int more = pj_open(r, '}');

	while (more > 0) {
		enum patroni_json_field f;

		pj_ws(r);
		if (pj_string(r, key, sizeof(key)) != 0)
			return -1;
		pj_ws(r);
		if (r->p >= r->end || *r->p != ':')
			return pj_fail(r, "expected ':'");
		r->p++;
		pj_ws(r);
		f = kind != PJ_OBJ_SKIP ? pj_field(key, kind) : PJ_NONE;
		if (pj_value(r, f, out) != 0)
			return -1;
		more = pj_next(r, '}');
	}
	return more;
}

static int pj_array(struct patroni_json_reader *r, struct patroni_json *out)
{
	int more = pj_open(r, ']');

	while (more > 0) {
		pj_ws(r);
		if (pj_value(r, PJ_NONE, out) != 0)
			return -1;
		more = pj_next(r, ']');
	}
	return more;
}

static void pj_set_flag(enum patroni_json_field f, int v, struct patroni_json *out)
{
	/* Only the true/false fields: any other one has nowhere to go. */
	int *flag = (f == PJ_PAUSE    ? &out->pause :
		     f == PJ_UNLOCKED ? &out->cluster_unlocked :
		     f == PJ_SYNC     ? &out->sync_standby :
		     f == PJ_QUORUM   ? &out->quorum_standby :
		     f == PJ_FAILSAFE ? &out->failsafe_active :
		     f == PJ_NOLB     ? &out->noloadbalance : NULL);

	if (flag)
		*flag = v;
}

static void pj_set_string(enum patroni_json_field f, const char *s, struct patroni_json *out)
{
	switch (f) {
	case PJ_STATE:
		snprintf(out->state, sizeof(out->state), "%s", s);
		out->running = !strcmp(s, "running");
		break;
	case PJ_ROLE:
		if (!strcmp(s, "master") || !strcmp(s, "primary"))
			out->role = PATRONI_JSON_ROLE_PRIMARY;
		else if (!strcmp(s, "replica"))
			out->role = PATRONI_JSON_ROLE_REPLICA;
		else if (!strcmp(s, "standby_leader"))
			out->role = PATRONI_JSON_ROLE_STANDBY_LEADER;
		else
			out->role = PATRONI_JSON_ROLE_OTHER;
		break;
	case PJ_REPLICATION:
		snprintf(out->replication_state, sizeof(out->replication_state), "%s", s);
		break;
	case PJ_VERSION:
		/* "4.0.7"; a suffix ("3.0.2rc1") ends the number it follows. */
		for (int i = 0; i < 3 && *s; i++) {
			long v = 0;

			for (; *s >= '0' && *s <= '9' && v < 10000; s++)
				v = v * 10 + (*s - '0');
			out->version[i] = (int)v;
			s += strcspn(s, ".");
			s += *s == '.';
		}
		break;
	case PJ_NOLB:
		/* Patroni treats the tag as a boolean; a YAML string "true" too. */
		out->noloadbalance = !strcmp(s, "true") || !strcmp(s, "True");
		break;
	default:
		break;
	}
}

static int pj_value(struct patroni_json_reader *r, enum patroni_json_field f,
		    struct patroni_json *out)
{
	char buf[32];

	if (r->p >= r->end)
		return pj_fail(r, "unexpected end");
	switch (*r->p) {
	case '{':
		return pj_object(r, f == PJ_TAGS ? PJ_OBJ_TAGS :
				    f == PJ_PATRONI ? PJ_OBJ_PATRONI : PJ_OBJ_SKIP, out);
	case '[':
		return pj_array(r, out);
	case '"':
		if (pj_string(r, buf, sizeof(buf)) != 0)
			return -1;
		pj_set_string(f, buf, out);
		return 0;
	case 't':
		if (pj_literal(r, "true") != 0)
			return -1;
		pj_set_flag(f, 1, out);
		return 0;
	case 'f':
		if (pj_literal(r, "false") != 0)
			return -1;
		pj_set_flag(f, 0, out);
		return 0;
	case 'n':
		return pj_literal(r, "null");
	default:
		return pj_number(r);
	}
}

int patroni_json_parse(const char *text, size_t len, struct patroni_json *out,
		       char *err, size_t errlen)
{
	struct patroni_json_reader r = { text, text + len, text, 0, NULL };

	memset(out, 0, sizeof(*out));
	pj_ws(&r);
	if (r.p >= r.end || *r.p != '{') {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	if (pj_object(&r, PJ_OBJ_TOP, out) == 0) {
		pj_ws(&r);
		if (r.p == r.end)
			return 0;
		r.error = "trailing data";
	}
	snprintf(err, errlen, "bad JSON at byte %ld: %s", (long)(r.p - r.start),
		 r.error ? r.error : "syntax error");
	return -1;
}

int patroni_json_reports_replication(const struct patroni_json *j)
{
	static const int since[3] = { 3, 0, 4 };

	if (!j->version[0])
		return -1;
	for (int i = 0; i < 3; i++)
		if (j->version[i] != since[i])
			return j->version[i] > since[i];
	return 1;
}
