/* resolve.h - one asynchronous host name lookup on libevent's evdns.
 *
 * Neither libpq (getaddrinfo) nor libcurl's threaded resolver may look a
 * name up on our behalf: the first blocks the loop, the second blocks it
 * when a transfer is cancelled while its lookup hangs (the thread is
 * joined). Probes resolve here and hand the libraries an address. */
#ifndef HAPPAC_RESOLVE_H
#define HAPPAC_RESOLVE_H

#include <arpa/inet.h>

struct evdns_base;
struct evdns_getaddrinfo_request;

/* done(arg, err, addr): err NULL and addr the first address as text, or err
 * a message. Called exactly once per resolve_start() unless cancelled, and
 * possibly before resolve_start() returns (cached names, /etc/hosts). */
typedef void (*resolve_done_fn)(void *arg, const char *err, const char *addr);

struct resolve {
	struct evdns_base *dns;
	struct evdns_getaddrinfo_request *req;
	resolve_done_fn done;
	void *arg;
	int active;
	char addr[INET6_ADDRSTRLEN];
};

void resolve_init(struct resolve *r, struct evdns_base *dns, resolve_done_fn done,
		  void *arg);
void resolve_start(struct resolve *r, const char *host);
/* Stop a lookup in flight; done() is not called. Safe when none is. */
void resolve_cancel(struct resolve *r);
/* True when host is an IPv4 or IPv6 address literal (no lookup needed). */
int resolve_is_literal(const char *host);
/* True when host names a Unix-domain socket directory as libpq reads it: an
 * absolute path, or '@' for Linux's abstract namespace. Never looked up. */
int resolve_is_unix_socket(const char *host);

#endif
