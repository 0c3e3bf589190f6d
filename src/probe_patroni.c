/* probe_patroni.c - Patroni REST probe: libcurl multi socket API on libevent.
 *
 * The pattern follows curl's docs/examples/hiperfifo.c: libcurl tells us which
 * sockets to watch (socket callback) and when to wake it (timer callback); we
 * hand events back with curl_multi_socket_action() and collect finished
 * transfers from curl_multi_info_read(). One transfer at a time. */
#include "probe_patroni.h"

#include "log.h"
#include "patroni_json.h"
#include "resolve.h"

#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Patroni's answers are a status line (OPTIONS) or a few KB of JSON; a larger
 * body is not Patroni. */
#define PROBE_PATRONI_MAX_BODY (64 * 1024)

struct probe_patroni {
	struct event_base *base;
	CURLM *multi;
	CURL *easy;            /* the attempt in flight, or NULL */
	struct probe *probe;   /* the attempt's probe, or NULL */
	struct event *timer;   /* libcurl's timeout */
	/* Watchers libcurl is done with. Freed later, never inside their own
	 * event callback (libcurl drops sockets from within our callbacks). */
	struct probe_patroni_sock *dead;
	int timeout_ms;
	size_t body_bytes;
	int want_json;         /* GET and keep the body (profiles need it) */
	char *body;            /* PROBE_PATRONI_MAX_BODY bytes when want_json */
	struct patroni_json json;
	int json_ok;           /* json holds the latest answer's status */
	char url[512];
	int https;
	char host[256];        /* as given, without brackets */
	int port;
	int literal;           /* host is an address: no lookup */
	struct resolve lookup; /* evdns: libcurl never resolves (see resolve.h) */
	struct curl_slist *pin;/* CURLOPT_RESOLVE entries of the attempt */
	char *cafile, *cert, *key; /* owned copies; NULL when unset */
	int insecure;
	char path[256];
	char target[300];
};

/* Per-socket watcher, attached to the socket with curl_multi_assign(). */
struct probe_patroni_sock {
	struct event *ev;
	struct probe_patroni_sock *next_dead;
};

static size_t probe_patroni_body(char *data, size_t size, size_t n, void *arg)
{
	struct probe_patroni *pp = arg;

	size_t bytes = size * n;

	if (pp->body_bytes + bytes > PROBE_PATRONI_MAX_BODY)
		return 0; /* CURLE_WRITE_ERROR: ends the transfer */
	if (pp->body)
		memcpy(pp->body + pp->body_bytes, data, bytes);
	pp->body_bytes += bytes;
	return bytes;
}

static void probe_patroni_release(struct probe_patroni *pp)
{
	resolve_cancel(&pp->lookup);
	if (pp->easy) {
		curl_multi_remove_handle(pp->multi, pp->easy);
		curl_easy_cleanup(pp->easy);
		pp->easy = NULL;
	}
	if (pp->pin) {
		curl_slist_free_all(pp->pin);
		pp->pin = NULL;
	}
	pp->probe = NULL;
}

static void probe_patroni_finish(struct probe_patroni *pp, CURLcode rc)
{
	struct probe *p = pp->probe;
	enum probe_result result = PROBE_OK;
	long status = 0, oserr = 0;
	char detail[64] = "";

	curl_easy_getinfo(pp->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(pp->easy, CURLINFO_OS_ERRNO, &oserr);
	switch (rc) {
	case CURLE_OK:
		result = status == 200 ? PROBE_OK : PROBE_HTTP_STATUS;
		if (pp->want_json) {
			/* 200 and 503 both carry the node's status. */
			pp->json_ok = patroni_json_parse(pp->body, pp->body_bytes, &pp->json,
							 detail, sizeof(detail)) == 0;
			if (!pp->json_ok && result == PROBE_OK) {
				result = PROBE_BAD_RESPONSE;
			} else {
				detail[0] = '\0';
			}
		}
		break;
	case CURLE_COULDNT_CONNECT:
		if (oserr == ECONNREFUSED) {
			result = PROBE_REFUSED;
		} else {
			result = PROBE_CONNECT;
			snprintf(detail, sizeof(detail), "%s",
				 oserr ? strerror((int)oserr) : "");
		}
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		result = PROBE_RESOLVE;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		result = PROBE_TIMEOUT;
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
		result = PROBE_TLS;
		snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(rc));
		break;
	case CURLE_OUT_OF_MEMORY:
		result = PROBE_INTERNAL;
		snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(rc));
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		/* A reset before any answer is a connection failure, after the
		 * status line a broken answer. */
		result = status ? PROBE_BAD_RESPONSE : PROBE_CONNECT;
		snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(rc));
		break;
	case CURLE_WRITE_ERROR:
		result = PROBE_BAD_RESPONSE;
		snprintf(detail, sizeof(detail), "body over %d bytes",
			 PROBE_PATRONI_MAX_BODY);
		break;
	default:
		result = PROBE_BAD_RESPONSE;
		snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(rc));
		break;
	}
	probe_patroni_release(pp);
	probe_done(p, result, (int)status, detail);
}

/* Collect finished transfers. Called after every curl_multi_socket_action. */
static void probe_patroni_collect(struct probe_patroni *pp)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(pp->multi, &left))) {
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == pp->easy) {
			probe_patroni_finish(pp, msg->data.result);
			return; /* pp->easy is gone; nothing else can be pending */
		}
	}
}

static void probe_patroni_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct probe_patroni *pp = arg;
	int mask = 0, running;

	if (what & EV_READ)
		mask |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		mask |= CURL_CSELECT_OUT;
	curl_multi_socket_action(pp->multi, fd, mask, &running);
	probe_patroni_collect(pp);
}

static void probe_patroni_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct probe_patroni *pp = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(pp->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	probe_patroni_collect(pp);
}

static void probe_patroni_bury(struct probe_patroni *pp)
{
	while (pp->dead) {
		struct probe_patroni_sock *ws = pp->dead;

		pp->dead = ws->next_dead;
		event_free(ws->ev);
		free(ws);
	}
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int probe_patroni_sockcb(CURL *easy, curl_socket_t s, int action,
				void *arg, void *sockp)
{
	struct probe_patroni *pp = arg;
	struct probe_patroni_sock *ws = sockp;
	short kind;

	(void)easy;
	if (action == CURL_POLL_REMOVE) {
		if (ws) {
			event_del(ws->ev);
			ws->next_dead = pp->dead;
			pp->dead = ws;
			curl_multi_assign(pp->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST | (action & CURL_POLL_IN ? EV_READ : 0) |
	       (action & CURL_POLL_OUT ? EV_WRITE : 0);
	if (!ws) {
		ws = calloc(1, sizeof(*ws));
		if (!ws)
			return -1;
		ws->ev = event_new(pp->base, s, kind, probe_patroni_on_socket, pp);
		if (!ws->ev) {
			free(ws);
			return -1;
		}
		curl_multi_assign(pp->multi, s, ws);
	} else {
		event_del(ws->ev);
		event_assign(ws->ev, pp->base, s, kind, probe_patroni_on_socket, pp);
	}
	event_add(ws->ev, NULL);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer, 0 means "as soon as possible". */
static int probe_patroni_timercb(CURLM *multi, long timeout_ms, void *arg)
{
	struct probe_patroni *pp = arg;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(pp->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(pp->timer, &tv);
	return 0;
}

/* The transfer itself; addr is the looked-up address (NULL for a literal),
 * pinned for libcurl with CURLOPT_RESOLVE so that it never resolves. */
static void probe_patroni_transfer(struct probe_patroni *pp, const char *addr)
{
	struct probe *p = pp->probe;
	CURL *e = curl_easy_init();

	if (!e) {
		probe_patroni_release(pp);
		probe_done(p, PROBE_INTERNAL, 0, "curl_easy_init failed");
		return;
	}
	if (addr) {
		char drop[300], pin[400];
		struct curl_slist *l;

		/* Forget the previous round's address, pin this one. */
		snprintf(drop, sizeof(drop), "-%s:%d", pp->host, pp->port);
		snprintf(pin, sizeof(pin), "%s:%d:%s%s%s", pp->host, pp->port,
			 strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "");
		l = curl_slist_append(NULL, drop);
		pp->pin = l ? curl_slist_append(l, pin) : NULL;
		if (!pp->pin) {
			curl_slist_free_all(l);
			curl_easy_cleanup(e);
			probe_patroni_release(pp);
			probe_done(p, PROBE_INTERNAL, 0, "out of memory");
			return;
		}
		curl_easy_setopt(e, CURLOPT_RESOLVE, pp->pin);
	}
	probe_patroni_bury(pp);
	pp->body_bytes = 0;
	pp->json_ok = 0;
	curl_easy_setopt(e, CURLOPT_URL, pp->url);
	/* OPTIONS: Patroni answers with a bare status line, its cheapest reply.
	 * GET when profiles need the node's status JSON as well. */
	if (!pp->want_json)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "OPTIONS");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_patroni_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, pp);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* Never through a proxy from the environment: this is a local check. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "happac/" HAPPAC_VERSION);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE, (long)PROBE_PATRONI_MAX_BODY);
	/* The scheduler's deadline ends the attempt; this is only a backstop. */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pp->timeout_ms + 1000);
	if (pp->https) {
		if (pp->cafile)
			curl_easy_setopt(e, CURLOPT_CAINFO, pp->cafile);
		if (pp->cert)
			curl_easy_setopt(e, CURLOPT_SSLCERT, pp->cert);
		if (pp->key)
			curl_easy_setopt(e, CURLOPT_SSLKEY, pp->key);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, pp->insecure ? 0L : 1L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, pp->insecure ? 0L : 2L);
	}
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	pp->easy = e;
	if (curl_multi_add_handle(pp->multi, e) != CURLM_OK) {
		probe_patroni_release(pp);
		probe_done(p, PROBE_INTERNAL, 0, "curl_multi_add_handle failed");
	}
}

static void probe_patroni_resolved(void *arg, const char *err, const char *addr)
{
	struct probe_patroni *pp = arg;
	struct probe *p = pp->probe;

	if (err) {
		probe_patroni_release(pp);
		probe_done(p, PROBE_RESOLVE, 0, err);
		return;
	}
	probe_patroni_transfer(pp, addr);
}

static void probe_patroni_start(void *impl, struct probe *p)
{
	struct probe_patroni *pp = impl;

	pp->probe = p;
	if (pp->literal)
		probe_patroni_transfer(pp, NULL);
	else
		resolve_start(&pp->lookup, pp->host);
}

static void probe_patroni_cancel(void *impl)
{
	probe_patroni_release(impl);
}

const struct probe_ops probe_patroni_ops = {
	.start = probe_patroni_start,
	.cancel = probe_patroni_cancel,
};

static char *probe_patroni_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct probe_patroni *probe_patroni_new(struct event_base *base, struct evdns_base *dns,
					const char *scheme, const char *host, int port,
					const char *endpoint,
					const struct probe_patroni_tls *tls,
					int timeout_ms, char *err, size_t errlen)
{
	struct probe_patroni *pp = calloc(1, sizeof(*pp));
	CURLU *u = curl_url();
	char hostpart[280], portstr[8], *url = NULL;
	const char *query = strchr(endpoint, '?');
	CURLUcode uc;

	if (!pp || !u) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* IPv6 literals need brackets in a URL; the URL API then checks them. */
	if (strchr(host, ':'))
		snprintf(hostpart, sizeof(hostpart), "[%s]", host);
	else
		snprintf(hostpart, sizeof(hostpart), "%s", host);
	snprintf(portstr, sizeof(portstr), "%d", port);
	snprintf(pp->path, sizeof(pp->path), "/%.*s",
		 (int)(query ? (size_t)(query - endpoint) : strlen(endpoint)), endpoint);
	uc = curl_url_set(u, CURLUPART_SCHEME, scheme, 0);
	if (!uc)
		uc = curl_url_set(u, CURLUPART_HOST, hostpart, 0);
	if (!uc)
		uc = curl_url_set(u, CURLUPART_PORT, portstr, 0);
	if (!uc)
		uc = curl_url_set(u, CURLUPART_PATH, pp->path, 0);
	if (!uc && query)
		uc = curl_url_set(u, CURLUPART_QUERY, query + 1, 0);
	if (!uc)
		uc = curl_url_get(u, CURLUPART_URL, &url, 0);
	if (uc) {
		snprintf(err, errlen, "cannot build a URL from host '%s', port %d, endpoint '%s': %s",
			 host, port, endpoint, curl_url_strerror(uc));
		goto fail;
	}
	snprintf(pp->url, sizeof(pp->url), "%s", url);
	curl_free(url);
	curl_url_cleanup(u);
	u = NULL;
	snprintf(pp->target, sizeof(pp->target), "%s:%d", hostpart, port);

	pp->base = base;
	pp->timeout_ms = timeout_ms;
	snprintf(pp->host, sizeof(pp->host), "%s", host);
	pp->port = port;
	pp->literal = resolve_is_literal(host);
	resolve_init(&pp->lookup, dns, probe_patroni_resolved, pp);
	pp->https = strcmp(scheme, "https") == 0;
	if (pp->https && tls) {
		pp->cafile = probe_patroni_dup(tls->cafile);
		pp->cert = probe_patroni_dup(tls->cert);
		pp->key = probe_patroni_dup(tls->key);
		pp->insecure = tls->insecure;
	}
	pp->multi = curl_multi_init();
	pp->timer = evtimer_new(base, probe_patroni_on_timer, pp);
	if (!pp->multi || !pp->timer) {
		snprintf(err, errlen, "cannot set up libcurl");
		goto fail;
	}
	curl_multi_setopt(pp->multi, CURLMOPT_SOCKETFUNCTION, probe_patroni_sockcb);
	curl_multi_setopt(pp->multi, CURLMOPT_SOCKETDATA, pp);
	curl_multi_setopt(pp->multi, CURLMOPT_TIMERFUNCTION, probe_patroni_timercb);
	curl_multi_setopt(pp->multi, CURLMOPT_TIMERDATA, pp);
	return pp;
fail:
	if (u)
		curl_url_cleanup(u);
	probe_patroni_free(pp);
	return NULL;
}

void probe_patroni_free(struct probe_patroni *pp)
{
	if (!pp)
		return;
	probe_patroni_release(pp);
	if (pp->multi)
		curl_multi_cleanup(pp->multi);
	probe_patroni_bury(pp);
	if (pp->timer)
		event_free(pp->timer);
	free(pp->body);
	free(pp->cafile);
	free(pp->cert);
	free(pp->key);
	free(pp);
}

const char *probe_patroni_url(const struct probe_patroni *pp)
{
	return pp->url;
}

const char *probe_patroni_path(const struct probe_patroni *pp)
{
	return pp->path;
}

const char *probe_patroni_target(const struct probe_patroni *pp)
{
	return pp->target;
}

int probe_patroni_want_json(struct probe_patroni *pp)
{
	if (!pp->body)
		pp->body = malloc(PROBE_PATRONI_MAX_BODY);
	if (!pp->body)
		return -1;
	pp->want_json = 1;
	return 0;
}

const struct patroni_json *probe_patroni_json(const struct probe_patroni *pp)
{
	return pp->want_json && pp->json_ok ? &pp->json : NULL;
}
