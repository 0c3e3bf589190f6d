/* patroni_json.h - the part of Patroni's status JSON that profiles need.
 *
 * Patroni answers GET on any health endpoint with the node's status as JSON
 * (api.py get_postgresql_status): state, role, pause, tags, xlog, ... This
 * parser validates the whole document (bounded depth and size) and keeps only
 * the fields below. Pure: no I/O, no allocation. */
#ifndef HAPPAC_PATRONI_JSON_H
#define HAPPAC_PATRONI_JSON_H

#include <stddef.h>

enum patroni_json_role {
	PATRONI_JSON_ROLE_UNKNOWN,
	PATRONI_JSON_ROLE_PRIMARY,        /* "master" (3.x) or "primary" (4.x) */
	PATRONI_JSON_ROLE_REPLICA,
	PATRONI_JSON_ROLE_STANDBY_LEADER,
	PATRONI_JSON_ROLE_OTHER,          /* e.g. "demoted", "uninitialized" */
};

struct patroni_json {
	enum patroni_json_role role;
	int running;           /* "state": "running" */
	int pause;             /* maintenance mode */
	int cluster_unlocked;  /* no leader lock in the DCS */
	int sync_standby;      /* this replica is a synchronous standby */
	int quorum_standby;    /* a quorum standby (Patroni 4, synchronous_mode: quorum) */
	int noloadbalance;     /* tags.noloadbalance is true */
	int failsafe_active;   /* failsafe_mode_is_active: DCS lost, failsafe
				  keeps the leader */
	char state[24];        /* as Patroni said it, for reasons */
	char replication_state[24]; /* "streaming", "in archive recovery"
				       (Patroni 3.0.4+); "" when absent */
	int version[3];        /* patroni.version, e.g. 4.0.7; 0.0.0 unknown */
};

/* Whether this Patroni reports replication_state (3.0.4 and later), so
 * that its absence on a running replica means "not streaming": 1, 0, or
 * -1 when the version is not in the JSON. */
int patroni_json_reports_replication(const struct patroni_json *j);

/* Parse len bytes of JSON. Returns 0, or -1 with err saying what and where
 * (the document is not JSON, is not an object, or is nested too deep). */
int patroni_json_parse(const char *text, size_t len, struct patroni_json *out,
		       char *err, size_t errlen);

#endif
