/* status.h - the /status JSON document, from a view the daemon fills in. */
#ifndef HAPPAC_STATUS_H
#define HAPPAC_STATUS_H

#include "options.h"
#include "probe.h"
#include "profile.h"
#include "replica.h"

#include <stdint.h>

struct evbuffer;

/* Probes the daemon runs at most (patroni, pgbouncer, patroni-leader). */
#define STATUS_MAX_PROBES 4

struct status_probe {
	const char *name;
	const char *target;
	const struct probe_report *report; /* NULL: no result yet */
	int in_flight;
};

struct status_profile {
	const char *name;
	const char *rule;
	const char *wrong_role;
	int port;               /* 0: only by agent-send on the main port */
	const char *line;
	int passing;            /* what /health says (profile_health) */
	double since_s;
};

struct status_view {
	const char *line;         /* the agent line, with its '\n' */
	int up;
	int passing;              /* up without drain/maint: /health's 200 */
	double since_s;           /* wall clock of the last verdict change */
	double now_s;             /* wall clock now */
	int64_t now_us;           /* monotonic now, to age the reports */
	int probe_count;
	struct status_probe probes[STATUS_MAX_PROBES];
	const struct options *opts;
	int profile_count;
	struct status_profile profiles[PROFILE_MAX];
	const char *override_json; /* ctl status object, or NULL */
	const char *pgb_admin_state; /* pgadmin_state_names, NULL: no admin probe */
	double pgb_paused_s;      /* seconds of the current pause, 0 none */
	const struct replica_watch *cluster; /* pause, failsafe, streaming */
	const char *hold_json;     /* the new-role hold and its peers, or NULL */
};

/* Append the JSON document to out. */
void status_render(const struct status_view *v, struct evbuffer *out);

/* Append s as a JSON string (quotes and escapes included). */
void status_json_string(struct evbuffer *out, const char *s);

#endif
