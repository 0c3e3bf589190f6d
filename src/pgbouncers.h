/* pgbouncers.h - several PgBouncer processes on one port (so_reuseport,
 * --pgbouncer-socket-dir DIR, repeatable).
 *
 * Through the shared TCP port the kernel picks a process per connection,
 * so a frozen or paused one shows only now and then. Each process is
 * probed through its own unix_socket_dir instead, by the same probes as a
 * single PgBouncer at -h:-r (the routing/ping probe, and the admin console
 * whose answer gates it). The worst process decides, and the verdict names
 * it: its probes are called "pgbouncer@DIR" and "pgbouncer-admin@DIR"
 * (why a socket directory reaches one process: docs/PROTOCOLS.md 3a).
 * Process 0 is the only one without the option (dir NULL: -h:-r); main's
 * own scheduler slots and names are its. */
#ifndef HAPPAC_PGBOUNCERS_H
#define HAPPAC_PGBOUNCERS_H

#include "options.h"
#include "pgadmin.h"
#include "probe.h"
#include "verdict.h"

#include <stddef.h>

#define PGBOUNCERS_MAX 8
#define PGBOUNCERS_NAME_MAX 128

struct event_base;
struct evdns_base;
struct probe_pg;
struct probe_sched;

struct pgbouncers_proc {
	char name[PGBOUNCERS_NAME_MAX];       /* "pgbouncer@DIR" */
	char admin_name[PGBOUNCERS_NAME_MAX]; /* "pgbouncer-admin@DIR" */
	struct probe_pg *pg;                  /* routing or ping, via DIR */
	struct probe_pg *admin;               /* admin console via DIR, or NULL */
	struct probe pg_probe, admin_probe;   /* the scheduler's slots */
	struct pgadmin state;
};

/* What one process's probes are made from. */
struct pgbouncers_spec {
	struct event_base *base;
	struct evdns_base *dns;
	const char *host;            /* -h, without directories */
	int port;                    /* -r */
	const char *pg_conninfo;     /* NULL: ping mode */
	const char *admin_conninfo;  /* NULL: no admin console */
	int gate_ms;                 /* the routing probe waits this for the admin */
};

/* Make p's probes for dir, or for -h:-r when dir is NULL (names, probes,
 * the socket in dir checked). On failure err says which directory and
 * why, and p holds nothing. */
int pgbouncers_open(struct pgbouncers_proc *p, const struct pgbouncers_spec *s,
		    const char *dir, char *err, size_t errlen);
void pgbouncers_close(struct pgbouncers_proc *p);
/* One process at -h:-r without directories, else one per directory (at
 * most PGBOUNCERS_MAX); *n counts those opened, also on failure. */
int pgbouncers_open_all(struct pgbouncers_proc *ps, int *n, const struct pgbouncers_spec *s,
			const struct options_list *dirs, char *err, size_t errlen);

/* The others (ps = the second process on), added to the scheduler: admins
 * must be added before the routing probes (they start first). */
int pgbouncers_add_admins(struct pgbouncers_proc *ps, int n, struct probe_sched *sched);
int pgbouncers_add_routing(struct pgbouncers_proc *ps, int n, struct probe_sched *sched);

/* The worst admin state: st (the first process's) and each other's. */
enum pgadmin_state pgbouncers_state(const struct pgbouncers_proc *ps, int n,
				    enum pgadmin_state st);
/* When the first process's routing probe passed but another's did not,
 * vp (the first's) becomes that one's, so the verdict names it. */
void pgbouncers_fold(const struct pgbouncers_proc *ps, int n, struct verdict_probe *vp);

#endif
