/* pgbouncers.c - several PgBouncer processes on one port, each probed
 * through its own socket directory; the worst decides. */
#include "pgbouncers.h"

#include "probe_pg.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* conninfo with host=DIR last (libpq: a later keyword wins), quoted. */
static int pgbouncers_conninfo(const char *conninfo, const char *dir, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "%s host='", conninfo);

	for (const char *c = dir; *c && n + 3 < len; c++) {
		if (*c == '\'' || *c == '\\')
			buf[n++] = '\\';
		buf[n++] = *c;
	}
	if (n + 2 >= len)
		return -1;
	buf[n++] = '\'';
	buf[n] = '\0';
	return 0;
}

static struct probe_pg *pgbouncers_probe(const struct pgbouncers_spec *s, const char *dir,
					 const char *conninfo, struct pgadmin *admin,
					 char *err, size_t errlen)
{
	char at[4096];

	if (dir && conninfo && pgbouncers_conninfo(conninfo, dir, at, sizeof(at)) != 0) {
		snprintf(err, errlen, "--pgbouncer-socket-dir %s: too long", dir);
		return NULL;
	}
	return probe_pg_new(s->base, s->dns, dir ? dir : s->host, s->port,
			    dir && conninfo ? at : conninfo, admin, err, errlen);
}

int pgbouncers_open(struct pgbouncers_proc *p, const struct pgbouncers_spec *s,
		    const char *dir, char *err, size_t errlen)
{
	struct stat st;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "pgbouncer%s%s", dir ? "@" : "", dir ? dir : "");
	snprintf(p->admin_name, sizeof(p->admin_name), "pgbouncer-admin%s%s", dir ? "@" : "",
		 dir ? dir : "");
	p->pg = pgbouncers_probe(s, dir, s->pg_conninfo, NULL, err, errlen);
	if (!p->pg)
		goto fail;
	/* A directory without PgBouncer's socket is a mistake in the
	 * configuration (unix_socket_dir, -r), not an outage to report. */
	if (dir && (stat(probe_pg_target(p->pg), &st) != 0 || !S_ISSOCK(st.st_mode))) {
		snprintf(err, errlen, "--pgbouncer-socket-dir %s: no PgBouncer socket %s "
			 "(unix_socket_dir and listen_port of a running PgBouncer?)", dir,
			 probe_pg_target(p->pg));
		goto fail;
	}
	if (s->admin_conninfo) {
		/* SHOW DATABASES looks at the routed one; ping mode routes
		 * nowhere: only the global state counts. */
		const char *db = s->pg_conninfo ? probe_pg_dbname(p->pg) : NULL;

		if (db)
			snprintf(p->state.dbname, sizeof(p->state.dbname), "%s", db);
		p->admin = pgbouncers_probe(s, dir, s->admin_conninfo, &p->state, err, errlen);
		if (!p->admin)
			goto fail;
		probe_pg_gate(p->pg, p->admin, s->gate_ms);
	}
	return 0;
fail:
	pgbouncers_close(p);
	return -1;
}

void pgbouncers_close(struct pgbouncers_proc *p)
{
	/* The routing probe first: its gate is the admin probe. */
	probe_pg_free(p->pg);
	probe_pg_free(p->admin);
	p->admin = NULL;
	p->pg = NULL;
}

int pgbouncers_open_all(struct pgbouncers_proc *ps, int *n, const struct pgbouncers_spec *s,
			const struct options_list *dirs, char *err, size_t errlen)
{
	*n = 0;
	if (dirs->count > PGBOUNCERS_MAX) {
		snprintf(err, errlen, "--pgbouncer-socket-dir: at most %d", PGBOUNCERS_MAX);
		return -1;
	}
	for (int i = 0; i < (dirs->count ? dirs->count : 1); i++) {
		if (pgbouncers_open(&ps[i], s, dirs->count ? dirs->items[i] : NULL, err,
				    errlen) != 0)
			return -1;
		*n = i + 1;
	}
	return 0;
}

int pgbouncers_add_admins(struct pgbouncers_proc *ps, int n, struct probe_sched *sched)
{
	for (int i = 0; i < n; i++)
		if (ps[i].admin && probe_sched_add(sched, &ps[i].admin_probe, ps[i].admin_name,
						   &probe_pg_ops, ps[i].admin) != 0)
			return -1;
	return 0;
}

int pgbouncers_add_routing(struct pgbouncers_proc *ps, int n, struct probe_sched *sched)
{
	for (int i = 0; i < n; i++)
		if (probe_sched_add(sched, &ps[i].pg_probe, ps[i].name, &probe_pg_ops,
				    ps[i].pg) != 0)
			return -1;
	return 0;
}

enum pgadmin_state pgbouncers_state(const struct pgbouncers_proc *ps, int n,
				    enum pgadmin_state st)
{
	for (int i = 0; i < n; i++) {
		const struct probe *a = &ps[i].admin_probe;

		if (ps[i].admin && a->has_result && a->last.result == PROBE_OK &&
		    ps[i].state.state > st)
			st = ps[i].state.state;
	}
	return st;
}

void pgbouncers_fold(const struct pgbouncers_proc *ps, int n, struct verdict_probe *vp)
{
	if (!vp->report || vp->report->result != PROBE_OK)
		return;
	for (int i = 0; i < n; i++) {
		const struct probe *p = &ps[i].pg_probe;

		if (p->has_result && p->last.result != PROBE_OK) {
			vp->name = ps[i].name;
			vp->report = &p->last;
			vp->target = probe_pg_target(ps[i].pg);
			vp->host = probe_pg_host(ps[i].pg);
			return;
		}
	}
}
