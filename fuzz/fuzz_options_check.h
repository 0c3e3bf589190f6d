/* fuzz_options_check.h - what every successful option parse must satisfy,
 * shared by the command-line and the config-file targets. Only the fields
 * that have stayed put in struct options are read directly; the rest is
 * checked through options_print_each() and options_print_dump(). */
#ifndef HAPPAC_FUZZ_OPTIONS_CHECK_H
#define HAPPAC_FUZZ_OPTIONS_CHECK_H

#include "fuzz_common.h"

#include "options.h"

#include <ctype.h>
#include <sys/mman.h>
#include <unistd.h>

static inline void fuzz_check_host(const char *h)
{
	size_t n;

	FUZZ_CHECK(h != NULL, "no patroni host after a successful parse");
	n = strlen(h);
	FUZZ_CHECK(n >= 1 && n <= 253, "host length %zu", n);
	for (const char *p = h; *p; p++)
		FUZZ_CHECK(isalnum((unsigned char)*p) || strchr(".-:_%", *p),
			   "host has byte 0x%02x", (unsigned char)*p);
}

#ifdef HAPPAC_FUZZ_OPTIONS_LOAD
/* options_print_each() rendered into one buffer: "name=value\n" per setting. */
struct fuzz_each {
	char buf[16384];
	size_t used;
};

static inline void fuzz_each_one(void *arg, const char *name, const char *value)
{
	struct fuzz_each *e = arg;
	int n;

	/* The dump names its own file only in a comment (a config file cannot
	 * name itself), so `config` is the one setting it does not carry. */
	if (!strcmp(name, "config"))
		return;
	if (!value)
		value = "(empty list)"; /* options_print_each: NULL for an empty list */
	n = snprintf(e->buf + e->used, sizeof(e->buf) - e->used, "%s=%s\n", name, value);
	FUZZ_CHECK(strchr(value, '\n') == NULL,
		   "setting %s renders with a newline: the dump is not loadable", name);
	if (n > 0 && (size_t)n < sizeof(e->buf) - e->used)
		e->used += (size_t)n;
}

/* options.h: options_print_dump() writes "name = value" lines loadable as a
 * config file. Dump, load the dump, and compare what both say. */
static inline void fuzz_check_roundtrip(const struct options *o)
{
	static struct fuzz_each a, b;
	static int fd = -1;
	static char path[64];
	struct options o2;
	char err[512];
	FILE *f;

	if (fd < 0) {
		fd = memfd_create("happac-fuzz-dump.conf", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	a.used = b.used = 0;
	a.buf[0] = b.buf[0] = '\0';
	options_print_each(o, fuzz_each_one, &a);
	if (ftruncate(fd, 0) != 0)
		abort();
	f = fopen(path, "w");
	if (!f)
		abort();
	options_print_dump(o, f);
	fclose(f);
	options_init(&o2);
	err[0] = '\0';
	FUZZ_CHECK(options_load_file(&o2, path, err, sizeof(err)) == 0,
		   "the dump of valid settings does not load: %s\n--- given\n%s", err, a.buf);
	options_print_each(&o2, fuzz_each_one, &b);
	FUZZ_CHECK(a.used == b.used && memcmp(a.buf, b.buf, a.used) == 0,
		   "dump/load round trip differs:\n--- given\n%s--- reloaded\n%s", a.buf,
		   b.buf);
	options_free(&o2);
}
#endif

/* Settings after a parse that succeeded (and validated). */
static inline void fuzz_check_settings(const struct options *o)
{
	char buf[4096];

	fuzz_check_host(o->patroni_host);
	FUZZ_CHECK(o->patroni_endpoint != NULL, "no endpoint");
	FUZZ_CHECK(strlen(o->patroni_endpoint) <= 200, "endpoint too long");
	for (const char *p = o->patroni_endpoint; *p; p++)
		FUZZ_CHECK((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f && *p != '#',
			   "endpoint has byte 0x%02x", (unsigned char)*p);
	FUZZ_CHECK(o->patroni_endpoint[0] != '/', "endpoint keeps its leading '/'");
	FUZZ_CHECK(o->patroni_port >= 1 && o->patroni_port <= 65535, "patroni port %d",
		   o->patroni_port);
	FUZZ_CHECK(o->port >= 1 && o->port <= 65535, "agent port %d", o->port);
	FUZZ_CHECK(o->pg_port >= 1 && o->pg_port <= 65535, "pg port %d", o->pg_port);
	FUZZ_CHECK(o->interval_ms >= 100 && o->interval_ms <= 60000, "interval %d",
		   o->interval_ms);
	FUZZ_CHECK(o->timeout_ms >= 10 && o->timeout_ms <= 30000, "timeout %d",
		   o->timeout_ms);
	FUZZ_CHECK(o->stale_after_ms == 0 ||
		   (o->stale_after_ms >= 500 && o->stale_after_ms <= 600000 &&
		    o->stale_after_ms > o->interval_ms + o->timeout_ms),
		   "stale-after %d", o->stale_after_ms);
	FUZZ_CHECK(options_stale_after_ms(o) > o->interval_ms + o->timeout_ms,
		   "effective stale bound %d", options_stale_after_ms(o));
	options_print_describe(o, buf, sizeof(buf));
	FUZZ_CHECK(strchr(buf, '\n') == NULL, "start-up line has a newline: %s", buf);
#ifdef HAPPAC_FUZZ_OPTIONS_LOAD
	fuzz_check_roundtrip(o);
#endif
}

#endif
