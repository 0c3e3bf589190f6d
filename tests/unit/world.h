/* The probe world the profile and answer unit tests start from: a healthy
 * Patroni (HTTP 200 on patroni_path, JSON role `role`, running), a healthy
 * PgBouncer, no lag, and the profile inputs pointing at them. One copy, so
 * the two suites cannot drift apart on what "healthy" means. */
#ifndef UNIT_WORLD_H
#define UNIT_WORLD_H

#include <stdio.h>
#include <string.h>

#include "profile.h"

static inline void unit_world_init(struct probe_report *pat, struct probe_report *pg,
				   struct verdict_probe *vpat, struct verdict_probe *vpg,
				   struct patroni_json *json, struct profile_inputs *in,
				   const char *patroni_path, enum patroni_json_role role)
{
	memset(pat, 0, sizeof(*pat));
	pat->result = PROBE_OK;
	pat->http_status = 200;
	pat->in_recovery = -1;
	pat->lag_bytes = -1;
	*pg = *pat;
	pg->http_status = 0;
	*vpat = (struct verdict_probe){ "patroni", pat, "127.0.0.1:8008", patroni_path,
					"127.0.0.1" };
	*vpg = (struct verdict_probe){ "pgbouncer", pg, "127.0.0.1:6432", NULL, "127.0.0.1" };
	memset(json, 0, sizeof(*json));
	json->role = role;
	json->running = 1;
	snprintf(json->state, sizeof(json->state), "running");
	memset(in, 0, sizeof(*in));
	in->patroni = vpat;
	in->pg = vpg;
	in->json = json;
	in->lag_bytes = -1;
	in->timeout_ms = 800;
	in->ramp_weight = -1;
	in->now_us = 1000000;
	in->ready_window_ms = 10000;
}

#endif
