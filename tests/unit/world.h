/* The probe world the profile and answer unit tests start from: a healthy
 * Patroni (HTTP 200 on patroni_path, JSON role `role`, running), a healthy
 * PgBouncer, no lag, and the profile inputs pointing at them. One copy, so
 * the two suites cannot drift apart on what "healthy" means. */
#ifndef UNIT_WORLD_H
#define UNIT_WORLD_H

#include <stdio.h>
#include <string.h>

#include "profile.h"

struct unit_world {
	struct probe_report pat, pg;
	struct verdict_probe vpat, vpg;
	struct patroni_json json;
	struct profile_inputs in;
};

static inline void unit_world_init(struct unit_world *u, const char *patroni_path,
				   enum patroni_json_role role)
{
	memset(u, 0, sizeof(*u));
	u->pat.result = PROBE_OK;
	u->pat.http_status = 200;
	u->pat.in_recovery = -1;
	u->pat.lag_bytes = -1;
	u->pat.wal_receiver = -1;
	u->pat.replay_age_ms = -1;
	u->pg = u->pat;
	u->pg.http_status = 0;
	u->vpat = (struct verdict_probe){ "patroni", &u->pat, "127.0.0.1:8008", patroni_path,
					  "127.0.0.1" };
	u->vpg = (struct verdict_probe){ "pgbouncer", &u->pg, "127.0.0.1:6432", NULL,
					 "127.0.0.1" };
	u->json.role = role;
	u->json.running = 1;
	snprintf(u->json.state, sizeof(u->json.state), "running");
	u->in.patroni = &u->vpat;
	u->in.pg = &u->vpg;
	u->in.json = &u->json;
	u->in.lag_bytes = -1;
	u->in.timeout_ms = 800;
	u->in.ramp_weight = -1;
	u->in.now_us = 1000000;
	u->in.ready_window_ms = 10000;
}

#endif
