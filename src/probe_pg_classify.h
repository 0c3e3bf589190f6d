/* probe_pg_classify.h - what a failed libpq login means: a server error
 * (with its SQLSTATE), a refusal, an unreachable host or a dropped
 * connection. */
#ifndef HAPPAC_PROBE_PG_CLASSIFY_H
#define HAPPAC_PROBE_PG_CLASSIFY_H

#include "probe.h"

#include <stddef.h>

/* Classify a failed libpq login from its error message and whether the TCP
 * connection was ever established. A server error is a failure, with the
 * SQLSTATE and message as detail ("28P01 password authentication failed
 * ..."). Exposed for the unit tests. */
enum probe_result probe_pg_classify_login(const char *message, int established,
					  char *detail, size_t detail_len);

#endif
