/* lib_pq.c - dlopen("libpq.so.5") and the table of its functions. */
#include "lib_pq.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define LIB_PQ_SONAME "libpq.so.5"

struct lib_pq lib_pq;

/* The table's prototypes are the header's: a mismatch fails the build. */
#define LIB_PQ_CHECK(ret, name, args)                                              \
	_Static_assert(__builtin_types_compatible_p(__typeof__(&name), ret (*) args), \
		       #name " differs from <libpq-fe.h>");
LIB_PQ_FUNCS(LIB_PQ_CHECK)
#undef LIB_PQ_CHECK

static int lib_pq_ok;

/* "--pg-conninfo needs libpq (libpq.so.5): <cause>", on one line. */
static int lib_pq_fail(char *err, size_t errlen, const char *cause)
{
	snprintf(err, errlen, "--pg-conninfo needs libpq (%s): %s", LIB_PQ_SONAME,
		 cause ? cause : "unknown error");
	err[strcspn(err, "\n")] = '\0';
	return -1;
}

int lib_pq_load(char *err, size_t errlen)
{
	struct lib_pq t;
	void *h, *sym;
	char cause[160];

	if (lib_pq_ok)
		return 0;
	/* RTLD_LOCAL: libpq's symbols (and its dependencies') stay out of the
	 * global namespace. The handle is kept for the life of the process:
	 * libpq keeps state (OpenSSL, Kerberos) that unloading would break. */
	h = dlopen(LIB_PQ_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return lib_pq_fail(err, errlen, dlerror());
	memset(&t, 0, sizeof(t));
	/* A data pointer to a function pointer: what POSIX dlsym() requires. */
#define LIB_PQ_RESOLVE(ret, name, args)                                            \
	sym = dlsym(h, #name);                                                    \
	if (!sym) {                                                               \
		snprintf(cause, sizeof(cause), "no symbol %s", #name);            \
		dlclose(h);                                                       \
		return lib_pq_fail(err, errlen, cause);                           \
	}                                                                         \
	memcpy(&t.name, &sym, sizeof(t.name));
	LIB_PQ_FUNCS(LIB_PQ_RESOLVE)
#undef LIB_PQ_RESOLVE
	lib_pq = t;
	lib_pq_ok = 1;
	return 0;
}

int lib_pq_loaded(void)
{
	return lib_pq_ok;
}

int lib_pq_version(void)
{
	return lib_pq_ok ? lib_pq.PQlibVersion() : 0;
}

int lib_pq_secret_keyword(const char *keyword)
{
	/* Every keyword flagged "*" by libpq 15 (password, sslpassword) and
	 * later (18: oauth_client_secret); the unit test checks the loaded
	 * libpq flags nothing beyond them. */
	static const char *const secrets[] = { "password", "sslpassword",
					       "oauth_client_secret" };

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (!strcmp(keyword, secrets[i]))
			return 1;
	return 0;
}

int lib_pq_secret(const PQconninfoOption *opt)
{
	return (opt->dispchar && strchr(opt->dispchar, '*')) ||
	       lib_pq_secret_keyword(opt->keyword);
}
