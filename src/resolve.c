/* resolve.c - evdns_getaddrinfo with one exit and a cancel. */
#include "resolve.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void resolve_cb(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct resolve *r = arg;
	const char *msg = NULL;

	if (err == EVUTIL_EAI_CANCEL || !r->active) {
		if (ai)
			evutil_freeaddrinfo(ai);
		return;
	}
	r->active = 0;
	r->req = NULL;
	if (err || !ai) {
		msg = evutil_gai_strerror(err ? err : EVUTIL_EAI_FAIL);
	} else if (ai->ai_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr,
			  r->addr, sizeof(r->addr));
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr,
			  r->addr, sizeof(r->addr));
	}
	if (ai)
		evutil_freeaddrinfo(ai);
	r->done(r->arg, msg, msg ? NULL : r->addr);
}

void resolve_init(struct resolve *r, struct evdns_base *dns, resolve_done_fn done,
		  void *arg)
{
	memset(r, 0, sizeof(*r));
	r->dns = dns;
	r->done = done;
	r->arg = arg;
}

void resolve_start(struct resolve *r, const char *host)
{
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	r->active = 1;
	req = evdns_getaddrinfo(r->dns, host, NULL, &hints, resolve_cb, r);
	if (r->active)
		r->req = req; /* the callback has not run yet */
}

void resolve_cancel(struct resolve *r)
{
	struct evdns_getaddrinfo_request *req = r->req;

	r->active = 0;
	r->req = NULL;
	if (req)
		evdns_getaddrinfo_cancel(req);
}

int resolve_is_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int resolve_is_unix_socket(const char *host)
{
	/* libpq's is_unixsock_path(): it connects to DIR/.s.PGSQL.PORT. */
	return host[0] == '/' || host[0] == '@';
}
