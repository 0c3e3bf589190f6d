/* probe_patroni.c - Patroni REST probe.
 *
 * Plain HTTP goes through probe_http.c (our own HTTP/1.0 request, no
 * library). HTTPS goes through libcurl, loaded on demand (lib_curl.h), on
 * its multi socket API: the pattern follows curl's docs/examples/hiperfifo.c
 * - libcurl tells us which sockets to watch (socket callback) and when to
 * wake it (timer callback); we hand events back with
 * lib_curl.multi_socket_action() and collect finished transfers from
 * lib_curl.multi_info_read(). One transfer at a time either way. */
#include "probe_patroni.h"

#include "lib_curl.h"
#include "log.h"
#include "patroni_json.h"
#include "probe_http.h"
#include "resolve.h"
#include "util.h"

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
	struct probe_http http; /* plain HTTP */
	CURLM *multi;          /* HTTPS: NULL for plain HTTP */
	CURL *easy;            /* the HTTPS attempt in flight, or NULL */
	struct probe *probe;   /* the attempt's probe, or NULL */
	struct event *timer;   /* libcurl's timeout */
	/* Watchers libcurl is done with. Freed later, never inside their own
	 * event callback (libcurl drops sockets from within our callbacks). */
	struct probe_patroni_sock *dead;
	int timeout_ms;
	size_t body_bytes;
	int want_json;         /* GET and keep the body (profiles need it) */
	int json_required;     /* a body that is not the JSON fails the probe */
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
	char request_target[256]; /* "/replica?lag=1MB" */
	char target[300];      /* "127.0.0.1:8008": also the Host header */
};

/* Per-socket watcher, attached to the socket with lib_curl.multi_assign(). */
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

/* Also the probe_ops cancel: a cancelled probe only gives back what it
 * holds. */
static void probe_patroni_release(void *impl)
{
	struct probe_patroni *pp = impl;

	resolve_cancel(&pp->lookup);
	probe_http_cancel(&pp->http);
	if (pp->easy) {
		lib_curl.multi_remove_handle(pp->multi, pp->easy);
		lib_curl.easy_cleanup(pp->easy);
		pp->easy = NULL;
	}
	if (pp->pin) {
		lib_curl.slist_free_all(pp->pin);
		pp->pin = NULL;
	}
	pp->probe = NULL;
}

/* The one exit of an attempt, for both transports: a whole answer (result
 * PROBE_OK, any status) is judged here; a failure is passed on. */
static void probe_patroni_report(struct probe_patroni *pp, enum probe_result result,
				 int status, const char *detail)
{
	struct probe *p = pp->probe;
	char why[80];

	snprintf(why, sizeof(why), "%s", detail);
	if (result == PROBE_OK) {
		result = status == 200 ? PROBE_OK : PROBE_HTTP_STATUS;
		if (pp->want_json) {
			/* 200 and 503 both carry the node's status. */
			pp->json_ok = patroni_json_parse(pp->body, pp->body_bytes, &pp->json,
							 why, sizeof(why)) == 0;
			if (!pp->json_ok && result == PROBE_OK && pp->json_required)
				result = PROBE_BAD_RESPONSE;
			else
				why[0] = '\0';
		}
	}
	probe_patroni_release(pp);
	probe_done(p, result, status, why);
}

/* probe_http's exit. */
static void probe_patroni_http_done(void *arg, enum probe_result result, int status,
				    const char *detail)
{
	struct probe_patroni *pp = arg;

	pp->body_bytes = pp->http.reply.body_len;
	probe_patroni_report(pp, result, status, detail);
}

/* A finished libcurl transfer. */
static void probe_patroni_finish(struct probe_patroni *pp, CURLcode rc)
{
	enum probe_result result = PROBE_OK;
	long status = 0, oserr = 0;
	char detail[64] = "";

	lib_curl.easy_getinfo(pp->easy, CURLINFO_RESPONSE_CODE, &status);
	lib_curl.easy_getinfo(pp->easy, CURLINFO_OS_ERRNO, &oserr);
	switch (rc) {
	case CURLE_OK:
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
		snprintf(detail, sizeof(detail), "%s", lib_curl.easy_strerror(rc));
		break;
	case CURLE_OUT_OF_MEMORY:
		result = PROBE_INTERNAL;
		snprintf(detail, sizeof(detail), "%s", lib_curl.easy_strerror(rc));
		break;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		/* A reset before any answer is a connection failure, after the
		 * status line a broken answer. */
		result = status ? PROBE_BAD_RESPONSE : PROBE_CONNECT;
		snprintf(detail, sizeof(detail), "%s", lib_curl.easy_strerror(rc));
		break;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		result = PROBE_BAD_RESPONSE;
		snprintf(detail, sizeof(detail), "body over %d bytes",
			 PROBE_PATRONI_MAX_BODY);
		break;
	default:
		result = PROBE_BAD_RESPONSE;
		snprintf(detail, sizeof(detail), "%s", lib_curl.easy_strerror(rc));
		break;
	}
	probe_patroni_report(pp, result, (int)status, detail);
}

/* Collect finished transfers. Called after every curl_multi_socket_action. */
static void probe_patroni_collect(struct probe_patroni *pp)
{
	CURLMsg *msg;
	int left;

	while ((msg = lib_curl.multi_info_read(pp->multi, &left))) {
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
	lib_curl.multi_socket_action(pp->multi, fd, mask, &running);
	probe_patroni_collect(pp);
}

static void probe_patroni_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct probe_patroni *pp = arg;
	int running;

	(void)fd;
	(void)what;
	lib_curl.multi_socket_action(pp->multi, CURL_SOCKET_TIMEOUT, 0, &running);
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
			lib_curl.multi_assign(pp->multi, s, NULL);
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
		lib_curl.multi_assign(pp->multi, s, ws);
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

/* The HTTPS transfer; addr is the looked-up address (NULL for a literal),
 * pinned for libcurl with CURLOPT_RESOLVE so that it never resolves. */
static void probe_patroni_curl_transfer(struct probe_patroni *pp, const char *addr)
{
	struct probe *p = pp->probe;
	CURL *e = lib_curl.easy_init();

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
		l = lib_curl.slist_append(NULL, drop);
		pp->pin = l ? lib_curl.slist_append(l, pin) : NULL;
		if (!pp->pin) {
			lib_curl.slist_free_all(l);
			lib_curl.easy_cleanup(e);
			probe_patroni_release(pp);
			probe_done(p, PROBE_INTERNAL, 0, "out of memory");
			return;
		}
		lib_curl.easy_setopt(e, CURLOPT_RESOLVE, pp->pin);
	}
	probe_patroni_bury(pp);
	lib_curl.easy_setopt(e, CURLOPT_URL, pp->url);
	/* OPTIONS: Patroni answers with a bare status line, its cheapest reply.
	 * GET when profiles need the node's status JSON as well. */
	if (!pp->want_json)
		lib_curl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, "OPTIONS");
	lib_curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_patroni_body);
	lib_curl.easy_setopt(e, CURLOPT_WRITEDATA, pp);
	lib_curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	lib_curl.easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	/* Never through a proxy from the environment: this is a local check. */
	lib_curl.easy_setopt(e, CURLOPT_PROXY, "");
	lib_curl.easy_setopt(e, CURLOPT_USERAGENT, "happac/" HAPPAC_VERSION);
	lib_curl.easy_setopt(e, CURLOPT_MAXFILESIZE, (long)PROBE_PATRONI_MAX_BODY);
	/* The scheduler's deadline ends the attempt; this is only a backstop. */
	lib_curl.easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)pp->timeout_ms + 1000);
	if (pp->https) {
		if (pp->cafile)
			lib_curl.easy_setopt(e, CURLOPT_CAINFO, pp->cafile);
		if (pp->cert)
			lib_curl.easy_setopt(e, CURLOPT_SSLCERT, pp->cert);
		if (pp->key)
			lib_curl.easy_setopt(e, CURLOPT_SSLKEY, pp->key);
		lib_curl.easy_setopt(e, CURLOPT_SSL_VERIFYPEER, pp->insecure ? 0L : 1L);
		lib_curl.easy_setopt(e, CURLOPT_SSL_VERIFYHOST, pp->insecure ? 0L : 2L);
	}
#if LIBCURL_VERSION_NUM >= 0x075500
	lib_curl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	pp->easy = e;
	if (lib_curl.multi_add_handle(pp->multi, e) != CURLM_OK) {
		probe_patroni_release(pp);
		probe_done(p, PROBE_INTERNAL, 0, "curl_multi_add_handle failed");
	}
}

/* addr: the looked-up address, NULL when the host is a literal. */
static void probe_patroni_transfer(struct probe_patroni *pp, const char *addr)
{
	pp->body_bytes = 0;
	pp->json_ok = 0;
	if (pp->https) {
		probe_patroni_curl_transfer(pp, addr);
		return;
	}
	/* OPTIONS: Patroni answers with a bare status line, its cheapest reply.
	 * GET when profiles need the node's status JSON as well. */
	probe_http_start(&pp->http, addr ? addr : pp->host, pp->port,
			 pp->want_json ? "GET" : "OPTIONS", pp->request_target,
			 pp->target, pp->body, PROBE_PATRONI_MAX_BODY);
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

const struct probe_ops probe_patroni_ops = {
	.start = probe_patroni_start,
	.cancel = probe_patroni_release,
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
	char hostpart[280];
	const char *query = strchr(endpoint, '?');

	if (!pp) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pp->http.fd = -1;
	if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
		snprintf(err, errlen, "unknown Patroni scheme '%s' (http or https)", scheme);
		goto fail;
	}
	/* The options module has checked host and endpoint (no spaces, '#' or
	 * control characters), so they go into the request as they are. IPv6
	 * literals need brackets in a URL and a Host header. */
	util_host_bracketed(hostpart, sizeof(hostpart), host);
	snprintf(pp->path, sizeof(pp->path), "/%.*s",
		 (int)(query ? (size_t)(query - endpoint) : strlen(endpoint)), endpoint);
	snprintf(pp->request_target, sizeof(pp->request_target), "/%s", endpoint);
	snprintf(pp->target, sizeof(pp->target), "%s:%d", hostpart, port);
	snprintf(pp->url, sizeof(pp->url), "%s://%s:%d/%s", scheme, hostpart, port, endpoint);

	pp->base = base;
	pp->timeout_ms = timeout_ms;
	snprintf(pp->host, sizeof(pp->host), "%s", host);
	pp->port = port;
	pp->literal = resolve_is_literal(host);
	resolve_init(&pp->lookup, dns, probe_patroni_resolved, pp);
	if (probe_http_init(&pp->http, base, probe_patroni_http_done, pp) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	pp->https = strcmp(scheme, "https") == 0;
	if (!pp->https)
		return pp;
	if (tls) {
		pp->cafile = probe_patroni_dup(tls->cafile);
		pp->cert = probe_patroni_dup(tls->cert);
		pp->key = probe_patroni_dup(tls->key);
		pp->insecure = tls->insecure;
	}
	if (lib_curl_load(err, errlen) != 0)
		goto fail;
	pp->multi = lib_curl.multi_init();
	pp->timer = evtimer_new(base, probe_patroni_on_timer, pp);
	if (!pp->multi || !pp->timer) {
		snprintf(err, errlen, "cannot set up libcurl");
		goto fail;
	}
	lib_curl.multi_setopt(pp->multi, CURLMOPT_SOCKETFUNCTION, probe_patroni_sockcb);
	lib_curl.multi_setopt(pp->multi, CURLMOPT_SOCKETDATA, pp);
	lib_curl.multi_setopt(pp->multi, CURLMOPT_TIMERFUNCTION, probe_patroni_timercb);
	lib_curl.multi_setopt(pp->multi, CURLMOPT_TIMERDATA, pp);
	return pp;
fail:
	probe_patroni_free(pp);
	return NULL;
}

void probe_patroni_free(struct probe_patroni *pp)
{
	if (!pp)
		return;
	probe_patroni_release(pp);
	probe_http_free(&pp->http);
	if (pp->multi)
		lib_curl.multi_cleanup(pp->multi);
	probe_patroni_bury(pp);
	util_event_free(pp->timer);
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

int probe_patroni_want_json(struct probe_patroni *pp, int required)
{
	pp->json_required = required;
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
