/* probe_patroni.h - the Patroni REST probe: one request per round, plain
 * HTTP through happac's own client (probe_http.c), HTTPS through libcurl's
 * multi interface driven by our libevent loop (lib_curl.h). Host names are
 * looked up with evdns first (resolve.h), never inside libcurl; nothing
 * blocks the loop. */
#ifndef HAPPAC_PROBE_PATRONI_H
#define HAPPAC_PROBE_PATRONI_H

#include "probe.h"

#include <stddef.h>

struct event_base;
struct evdns_base;
struct probe_patroni;

extern const struct probe_ops probe_patroni_ops;

/* TLS to Patroni (restapi.certfile, verify_client). Strings may be NULL. */
struct probe_patroni_tls {
	const char *cafile;  /* verifies Patroni; NULL: the system's CAs */
	const char *cert;    /* client certificate for verify_client */
	const char *key;     /* its key; NULL: in the certificate file */
	int insecure;        /* skip verification of Patroni's certificate */
};

/* Build the probe for SCHEME://HOST:PORT/ENDPOINT. A host name is looked up
 * with dns (evdns) each attempt, never by libcurl (scheme "http" or "https",
 * endpoint "primary", "replica?lag=1MB"). tls is used with https and may be
 * NULL. Returns NULL with err set when the URL cannot be built. Caller frees
 * with probe_patroni_free() after the scheduler is gone. */
struct probe_patroni *probe_patroni_new(struct event_base *base, struct evdns_base *dns,
					const char *scheme, const char *host, int port,
					const char *endpoint,
					const struct probe_patroni_tls *tls,
					int timeout_ms, char *err, size_t errlen);
void probe_patroni_free(struct probe_patroni *pp);

struct patroni_json;

/* Ask with GET and parse the node's status JSON from every answer (200 and
 * 503 alike), for profiles that Patroni's status code alone cannot answer.
 * required: a 200 whose body is not the JSON fails the probe (profiles read
 * it); else it only leaves no JSON (the side port's Patroni paths read it,
 * and must not change what the agent says). Call before the first attempt.
 * Returns 0, or -1 when out of memory. */
int probe_patroni_want_json(struct probe_patroni *pp, int required);
/* The status from the latest answer; NULL when there is none (OPTIONS mode,
 * a failed attempt, or a body that is not Patroni's JSON). */
const struct patroni_json *probe_patroni_json(const struct probe_patroni *pp);

/* "http://127.0.0.1:8008/primary", for the log. Valid while pp lives. */
const char *probe_patroni_url(const struct probe_patroni *pp);
/* "/primary", for the #reason on a non-200 answer. */
const char *probe_patroni_path(const struct probe_patroni *pp);
/* "127.0.0.1:8008" or "[::1]:8008", for connection failures. */
const char *probe_patroni_target(const struct probe_patroni *pp);

#endif
