/* peer.c - the peer-confirmed hold (peer.h): Patroni's member list, one
 * bounded ask of every other member's agent. */
#include "peer.h"

#include "log.h"
#include "net.h"
#include "probe_http.h"
#include "resolve.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const peer_answer_names[PEER_ANSWER_COUNT] = {
	[PEER_PENDING] = "pending",
	[PEER_NOT_UP] = "down",
	[PEER_UP] = "up",
	[PEER_UNREACHABLE] = "unreachable",
	[PEER_SILENT] = "silent",
	[PEER_GARBAGE] = "garbage",
	[PEER_NO_ADDRESS] = "no address",
};

/* ---- Patroni's /cluster document */

#define PEER_JSON_DEPTH 16

struct peer_js {
	const char *s;
	size_t n, i;
	int depth;
};

static void peer_js_ws(struct peer_js *j)
{
	while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' ||
			       j->s[j->i] == '\n' || j->s[j->i] == '\r'))
		j->i++;
}

/* A string at j->i into out (NULL: skipped). An escape other than the
 * simple ones, or a string longer than out, leaves out "" (unusable, not
 * an error: a member's other fields may still be read). */
static int peer_js_string(struct peer_js *j, char *out, size_t outlen)
{
	size_t o = 0;
	int bad = 0;

	if (j->i >= j->n || j->s[j->i] != '"')
		return -1;
	for (j->i++; j->i < j->n; j->i++) {
		char c = j->s[j->i];

		if (c == '"') {
			j->i++;
			if (out)
				out[bad ? 0 : o] = '\0';
			return 0;
		}
		if ((unsigned char)c < 0x20)
			return -1;
		if (c == '\\') {
			if (++j->i >= j->n)
				return -1;
			c = j->s[j->i];
			if (c == 'u') {
				if (j->i + 4 >= j->n)
					return -1;
				j->i += 4;
				bad = 1;
				continue;
			}
			if (!strchr("\"\\/bfnrt", c))
				return -1;
			bad |= c != '"' && c != '\\' && c != '/';
		}
		if (out && !bad) {
			if (o + 1 >= outlen)
				bad = 1;
			else
				out[o++] = c;
		}
	}
	return -1;
}

static int peer_js_value(struct peer_js *j);

/* An object or an array at j->i, skipped; each member's value through
 * peer_js_value. */
static int peer_js_container(struct peer_js *j)
{
	char close = j->s[j->i] == '{' ? '}' : ']';
	int first = 1;

	if (++j->depth > PEER_JSON_DEPTH)
		return -1;
	j->i++;
	for (;;) {
		peer_js_ws(j);
		if (j->i >= j->n)
			return -1;
		if (j->s[j->i] == close && first) {
			j->i++;
			break;
		}
		if (close == '}') {
			if (peer_js_string(j, NULL, 0) != 0)
				return -1;
			peer_js_ws(j);
			if (j->i >= j->n || j->s[j->i++] != ':')
				return -1;
		}
		if (peer_js_value(j) != 0)
			return -1;
		peer_js_ws(j);
		if (j->i >= j->n)
			return -1;
		first = 0;
		if (j->s[j->i] == ',') {
			j->i++;
			continue;
		}
		if (j->s[j->i++] != close)
			return -1;
		break;
	}
	j->depth--;
	return 0;
}

static int peer_js_value(struct peer_js *j)
{
	peer_js_ws(j);
	if (j->i >= j->n)
		return -1;
	if (j->s[j->i] == '{' || j->s[j->i] == '[')
		return peer_js_container(j);
	if (j->s[j->i] == '"')
		return peer_js_string(j, NULL, 0);
	/* A number, true, false or null: its characters. */
	size_t start = j->i;

	while (j->i < j->n && (isalnum((unsigned char)j->s[j->i]) || j->s[j->i] == '-' ||
			       j->s[j->i] == '+' || j->s[j->i] == '.'))
		j->i++;
	return j->i > start ? 0 : -1;
}

/* The host of "http://HOST:PORT/..." (brackets removed) into out. */
static void peer_url_host(const char *url, char *out, size_t len)
{
	const char *h = strstr(url, "://");
	size_t n;

	out[0] = '\0';
	if (!h)
		return;
	h += 3;
	if (*h == '[') {
		n = strcspn(h, "]");
		if (h[n] == ']')
			util_unbracket(h, n + 1, out, len);
		return;
	}
	n = strcspn(h, ":/");
	if (n < len)
		snprintf(out, len, "%.*s", (int)n, h);
}

/* One member object at j->i. Returns 0 (*m filled, *self set), -1 bad. */
static int peer_js_member(struct peer_js *j, const char *self_host, struct peer_member *m,
			  int *self)
{
	char key[16], host[PEER_ADDR_MAX] = "", url[256] = "", url_host[PEER_ADDR_MAX];

	memset(m, 0, sizeof(*m));
	peer_js_ws(j);
	if (j->i >= j->n || j->s[j->i] != '{' || ++j->depth > PEER_JSON_DEPTH)
		return -1;
	j->i++;
	peer_js_ws(j);
	if (j->i < j->n && j->s[j->i] == '}') {
		j->i++;
	} else {
		for (;;) {
			char *into = NULL;
			size_t into_len = 0;

			peer_js_ws(j);
			if (peer_js_string(j, key, sizeof(key)) != 0)
				return -1;
			peer_js_ws(j);
			if (j->i >= j->n || j->s[j->i++] != ':')
				return -1;
			peer_js_ws(j);
			if (!strcmp(key, "name"))
				into = m->name, into_len = sizeof(m->name);
			else if (!strcmp(key, "host"))
				into = host, into_len = sizeof(host);
			else if (!strcmp(key, "api_url"))
				into = url, into_len = sizeof(url);
			if (into && j->i < j->n && j->s[j->i] == '"') {
				if (peer_js_string(j, into, into_len) != 0)
					return -1;
			} else if (peer_js_value(j) != 0) {
				return -1;
			}
			peer_js_ws(j);
			if (j->i < j->n && j->s[j->i] == ',') {
				j->i++;
				continue;
			}
			if (j->i >= j->n || j->s[j->i++] != '}')
				return -1;
			break;
		}
	}
	j->depth--;
	if (!m->name[0])
		return -1;
	peer_url_host(url, url_host, sizeof(url_host));
	*self = (host[0] && !strcmp(host, self_host)) ||
		(url_host[0] && !strcmp(url_host, self_host));
	if (host[0] && resolve_is_literal(host))
		snprintf(m->addr, sizeof(m->addr), "%s", host);
	return 0;
}

int peer_cluster_parse(const char *json, size_t len, const char *self_host,
		       struct peer_member *out, int max, char *err, size_t errlen)
{
	struct peer_js j = { json, len, 0, 0 };
	char key[16];
	int count = 0, seen = 0;

	peer_js_ws(&j);
	if (j.i >= j.n || json[j.i++] != '{') {
		snprintf(err, errlen, "/cluster: not a JSON object");
		return -1;
	}
	j.depth = 1;
	peer_js_ws(&j);
	if (j.i < j.n && json[j.i] == '}')
		j.i++;
	else
		for (;;) {
			peer_js_ws(&j);
			if (peer_js_string(&j, key, sizeof(key)) != 0)
				goto bad;
			peer_js_ws(&j);
			if (j.i >= j.n || json[j.i++] != ':')
				goto bad;
			peer_js_ws(&j);
			if (!strcmp(key, "members") && j.i < j.n && json[j.i] == '[') {
				seen = 1;
				j.i++;
				peer_js_ws(&j);
				if (j.i < j.n && json[j.i] == ']') {
					j.i++;
				} else {
					for (;;) {
						struct peer_member m;
						int self = 0;

						if (peer_js_member(&j, self_host, &m, &self) != 0) {
							snprintf(err, errlen, "/cluster: a member "
								 "is not an object with a name "
								 "(at byte %zu)", j.i);
							return -1;
						}
						if (!self && count < max)
							out[count] = m;
						count += !self;
						peer_js_ws(&j);
						if (j.i < j.n && json[j.i] == ',') {
							j.i++;
							continue;
						}
						if (j.i >= j.n || json[j.i++] != ']')
							goto bad;
						break;
					}
				}
			} else if (peer_js_value(&j) != 0) {
				goto bad;
			}
			peer_js_ws(&j);
			if (j.i < j.n && json[j.i] == ',') {
				j.i++;
				continue;
			}
			if (j.i >= j.n || json[j.i++] != '}')
				goto bad;
			break;
		}
	peer_js_ws(&j);
	if (j.i != j.n)
		goto bad;
	if (!seen) {
		snprintf(err, errlen, "/cluster: no \"members\" array");
		return -1;
	}
	if (count > max) {
		snprintf(err, errlen, "/cluster: %d other members, more than the %d happac asks",
			 count, max);
		return -1;
	}
	return count;
bad:
	snprintf(err, errlen, "/cluster: not JSON (at byte %zu)", j.i);
	return -1;
}

/* ---- a peer's reply line */

enum peer_answer peer_line_classify(const char *buf, size_t len, int eof)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n, w;
	char word[8];

	if (!nl)
		return eof || len >= PEER_LINE_MAX ? PEER_GARBAGE : PEER_PENDING;
	n = (size_t)(nl - buf);
	if (n && buf[n - 1] == '\r')
		n--;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 && buf[i] != '\t')
			return PEER_GARBAGE;
		else if ((unsigned char)buf[i] >= 0x7f)
			return PEER_GARBAGE;
	/* The first word, as HAProxy splits them (spaces, tabs, commas). */
	for (w = 0; w < n && w < sizeof(word) - 1 && !strchr(" \t,", buf[w]); w++)
		word[w] = (char)tolower((unsigned char)buf[w]);
	word[w] = '\0';
	if (w < n && !strchr(" \t,", buf[w]))
		return PEER_GARBAGE;
	if (!strcmp(word, "up"))
		return PEER_UP;
	if (!strcmp(word, "down") || !strcmp(word, "fail") || !strcmp(word, "stopped"))
		return PEER_NOT_UP;
	return PEER_GARBAGE;
}

/* ---- the asks */

struct peer_conn {
	struct peer *p;
	int fd;
	struct event *ev;
	int connected;
	size_t sent, got;
	char buf[PEER_LINE_MAX];
	enum peer_answer answer;
};

enum peer_phase { PEER_IDLE, PEER_FETCHING, PEER_ASKING };

struct peer {
	struct event_base *base;
	char patroni_addr[PEER_ADDR_MAX];
	int patroni_port, agent_port, fetch_ms;
	peer_done_fn done;
	void *arg;
	enum peer_phase phase;
	struct probe_http http;
	char body[PEER_BODY_MAX];
	int have_members;              /* members[] is this hold's list */
	int prefetch;                  /* the fetch running asks nobody yet */
	int prefetched;                /* one try ahead per role change */
	struct peer_member members[PEER_MAX];
	int n;
	char cluster_err[120];         /* why the list is unusable, for /status */
	struct peer_conn conns[PEER_MAX];
	int open;                      /* connections not yet ended */
	struct event *deadline, *finish;
	int profile;
	char request[48];
	int64_t asked_us;
	uint64_t asks, clears;
	char last[PEER_MAX * (PEER_NAME_MAX + 16)];
};

static void peer_conn_end(struct peer_conn *c, enum peer_answer a)
{
	if (c->fd < 0)
		return;
	c->answer = a;
	if (c->ev) {
		event_free(c->ev);
		c->ev = NULL;
	}
	close(c->fd);
	c->fd = -1;
	c->p->open--;
}

/* Every connection ended: report once. */
static void peer_report(struct peer *p)
{
	char names[PEER_MAX * (PEER_NAME_MAX + 1)] = "";
	size_t o = 0, lo = 0;
	int clear = p->n > 0;

	for (int i = 0; i < p->n; i++) {
		struct peer_conn *c = &p->conns[i];
		int w;

		if (c->answer != PEER_NOT_UP)
			clear = 0;
		w = snprintf(names + o, sizeof(names) - o, "%s%s", o ? "," : "",
			     p->members[i].name);
		if (w > 0 && (size_t)w < sizeof(names) - o)
			o += (size_t)w;
		w = snprintf(p->last + lo, sizeof(p->last) - lo, "%s%s %s", lo ? ", " : "",
			     p->members[i].name, peer_answer_names[c->answer]);
		if (w > 0 && (size_t)w < sizeof(p->last) - lo)
			lo += (size_t)w;
	}
	if (!p->n)
		snprintf(p->last, sizeof(p->last), "%s",
			 p->cluster_err[0] ? p->cluster_err : "no other members");
	p->phase = PEER_IDLE;
	evtimer_del(p->deadline);
	p->clears += (uint64_t)clear;
	log_debug("hold: peers for profile %d: %s%s", p->profile, p->last,
		  clear ? " (clear)" : "");
	p->done(p->arg, p->profile, clear, names, p->asked_us);
}

static void peer_conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct peer_conn *c = arg;
	struct peer *p = c->p;
	ssize_t r;

	(void)what;
	if (!c->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
			peer_conn_end(c, PEER_UNREACHABLE);
			goto out;
		}
		c->connected = 1;
	}
	if (c->sent < strlen(p->request)) {
		r = send(fd, p->request + c->sent, strlen(p->request) - c->sent, MSG_NOSIGNAL);
		/* An agent with one profile answers without reading and may
		 * have closed already: its line can still be waiting here. */
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			c->sent = strlen(p->request);
		if (r > 0)
			c->sent += (size_t)r;
		if (c->sent == strlen(p->request)) {
			/* Now only the answer matters. */
			event_del(c->ev);
			event_assign(c->ev, p->base, fd, EV_READ | EV_PERSIST, peer_conn_io, c);
			event_add(c->ev, NULL);
		}
		return;
	}
	r = recv(fd, c->buf + c->got, sizeof(c->buf) - c->got, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r > 0)
		c->got += (size_t)r;
	{
		enum peer_answer a = peer_line_classify(c->buf, c->got, r <= 0);

		if (a == PEER_GARBAGE && r < 0 && !c->got)
			a = PEER_UNREACHABLE; /* reset before any byte */
		if (a != PEER_PENDING)
			peer_conn_end(c, a);
	}
out:
	if (p->open == 0 && p->phase == PEER_ASKING)
		event_active(p->finish, EV_TIMEOUT, 0);
}

static void peer_start_asks(struct peer *p)
{
	struct timeval tv = { 0, PEER_ASK_MS * 1000 };

	p->phase = PEER_ASKING;
	p->asks++;
	p->asked_us = util_mono_us();
	p->open = 0;
	for (int i = 0; i < p->n; i++) {
		struct peer_conn *c = &p->conns[i];

		memset(c, 0, sizeof(*c));
		c->p = p;
		c->fd = -1;
		c->answer = PEER_NO_ADDRESS;
		if (!p->members[i].addr[0])
			continue;
		c->fd = net_connect(p->members[i].addr, p->agent_port);
		if (c->fd < 0) {
			c->answer = PEER_UNREACHABLE;
			continue;
		}
		c->answer = PEER_PENDING;
		c->ev = event_new(p->base, c->fd, EV_WRITE | EV_PERSIST, peer_conn_io, c);
		p->open++;
		if (!c->ev) {
			peer_conn_end(c, PEER_UNREACHABLE);
			continue;
		}
		event_add(c->ev, NULL);
	}
	if (p->open == 0)
		event_active(p->finish, EV_TIMEOUT, 0);
	else
		evtimer_add(p->deadline, &tv);
}

/* The deadline: whatever has not answered is silent. */
static void peer_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;

	(void)fd;
	(void)what;
	if (p->phase == PEER_FETCHING && p->prefetch) {
		probe_http_cancel(&p->http);
		p->prefetch = 0;
		p->phase = PEER_IDLE; /* the hold fetches again */
		return;
	}
	if (p->phase == PEER_FETCHING) {
		probe_http_cancel(&p->http);
		snprintf(p->cluster_err, sizeof(p->cluster_err),
			 "/cluster: no answer within %dms", p->fetch_ms);
		log_warn("hold: cannot ask the peers (%s): the hold runs its full time",
			 p->cluster_err);
		p->n = 0;
		p->have_members = 1; /* not again in this hold */
		peer_report(p);
		return;
	}
	for (int i = 0; i < p->n; i++)
		if (p->conns[i].fd >= 0)
			peer_conn_end(&p->conns[i], PEER_SILENT);
	if (p->phase == PEER_ASKING)
		peer_report(p);
}

static void peer_finish(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;

	(void)fd;
	(void)what;
	if (p->phase == PEER_ASKING && p->open == 0)
		peer_report(p);
}

static void peer_fetched(void *arg, enum probe_result result, int status, const char *detail)
{
	struct peer *p = arg;
	int n;

	evtimer_del(p->deadline);
	if (result != PROBE_OK) {
		snprintf(p->cluster_err, sizeof(p->cluster_err), "/cluster: %s%s%s",
			 probe_result_names[result], detail && *detail ? " " : "",
			 detail ? detail : "");
		n = -1;
	} else if (status != 200) {
		snprintf(p->cluster_err, sizeof(p->cluster_err), "/cluster: HTTP %d", status);
		n = -1;
	} else {
		n = peer_cluster_parse(p->body, p->http.reply.body_len, p->patroni_addr,
				       p->members, PEER_MAX, p->cluster_err,
				       sizeof(p->cluster_err));
	}
	if (n >= 0)
		p->cluster_err[0] = '\0'; /* a list again: an old failure is over */
	if (p->prefetch) {
		/* Ahead of a hold: keep a good list for it, nothing else (a
		 * failure is the hold's to find and log: it fetches again). */
		p->prefetch = 0;
		p->phase = PEER_IDLE;
		p->n = n < 0 ? 0 : n;
		p->have_members = n >= 0;
		return;
	}
	if (n < 0) {
		/* Once per hold: the list stays empty (and Patroni unasked)
		 * until peer_forget(). */
		log_warn("hold: cannot ask the peers (%s): the hold runs its full time",
			 p->cluster_err);
		p->n = 0;
		p->have_members = 1;
		peer_report(p);
		return;
	}
	p->n = n;
	p->have_members = 1;
	peer_start_asks(p);
}

/* GET /cluster; prefetch: for a later ask. */
static void peer_fetch(struct peer *p, int prefetch)
{
	struct timeval tv = { p->fetch_ms / 1000, (p->fetch_ms % 1000) * 1000 };

	p->phase = PEER_FETCHING;
	p->prefetch = prefetch;
	p->asked_us = util_mono_us();
	if (!resolve_is_literal(p->patroni_addr)) {
		snprintf(p->cluster_err, sizeof(p->cluster_err),
			 "Patroni's host is not an address literal");
		p->n = 0;
		event_active(p->finish, EV_TIMEOUT, 0);
		p->phase = PEER_ASKING; /* peer_finish reports the empty list */
		p->open = 0;
		return;
	}
	evtimer_add(p->deadline, &tv);
	probe_http_start(&p->http, p->patroni_addr, p->patroni_port, "GET", "/cluster",
			 p->patroni_addr, p->body, sizeof(p->body));
}

void peer_ask(struct peer *p, int profile, const char *profile_name)
{
	if (p->phase == PEER_FETCHING && p->prefetch) {
		/* The list is on its way: this ask starts when it comes. */
		p->prefetch = 0;
		p->profile = profile;
		snprintf(p->request, sizeof(p->request), "%s\n", profile_name);
		return;
	}
	if (p->phase != PEER_IDLE)
		return;
	p->profile = profile;
	snprintf(p->request, sizeof(p->request), "%s\n", profile_name);
	if (p->have_members) {
		peer_start_asks(p);
		return;
	}
	peer_fetch(p, 0);
}

void peer_prefetch(struct peer *p)
{
	if (!p || p->phase != PEER_IDLE || p->have_members || p->prefetched ||
	    !resolve_is_literal(p->patroni_addr))
		return;
	p->prefetched = 1; /* a flood of callbacks is one GET /cluster */
	peer_fetch(p, 1);
}

static void peer_cancel(struct peer *p)
{
	if (p->phase == PEER_FETCHING)
		probe_http_cancel(&p->http);
	for (int i = 0; i < p->n; i++)
		peer_conn_end(&p->conns[i], PEER_SILENT);
	evtimer_del(p->deadline);
	event_del(p->finish);
	p->phase = PEER_IDLE;
	p->prefetch = 0;
}

void peer_forget(struct peer *p)
{
	if (!p)
		return;
	peer_cancel(p);
	p->have_members = 0;
	p->prefetched = 0;
}

struct peer *peer_new(struct event_base *base, const char *patroni_addr, int patroni_port,
		      int agent_port, int fetch_ms, peer_done_fn done, void *arg)
{
	struct peer *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->base = base;
	snprintf(p->patroni_addr, sizeof(p->patroni_addr), "%s", patroni_addr);
	p->patroni_port = patroni_port;
	p->agent_port = agent_port;
	p->fetch_ms = fetch_ms;
	p->done = done;
	p->arg = arg;
	for (int i = 0; i < PEER_MAX; i++)
		p->conns[i].fd = -1;
	p->deadline = evtimer_new(base, peer_deadline, p);
	p->finish = evtimer_new(base, peer_finish, p);
	if (!p->deadline || !p->finish || probe_http_init(&p->http, base, peer_fetched, p) != 0) {
		util_event_free(p->deadline);
		util_event_free(p->finish);
		free(p);
		return NULL;
	}
	return p;
}

void peer_free(struct peer *p)
{
	if (!p)
		return;
	peer_cancel(p);
	probe_http_free(&p->http);
	util_event_free(p->deadline);
	util_event_free(p->finish);
	free(p);
}

size_t peer_status(const struct peer *p, char *buf, size_t len)
{
	char last[sizeof(p->last) + 64];
	int n;

	util_json_quote(last, sizeof(last), p->last);
	n = snprintf(buf, len, "{\"agent_port\":%d,\"asks\":%llu,\"released\":%llu,"
		     "\"last\":%s}", p->agent_port, (unsigned long long)p->asks,
		     (unsigned long long)p->clears, last);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}
