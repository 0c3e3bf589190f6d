/* lib_curl.c - libcurl through dlopen(); see lib_curl.h for why. */
#include "lib_curl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

struct lib_curl lib_curl;

/* The table's prototypes are curl.h's: a mismatch fails the build. */
#define LIB_CURL_CHECK(ret, name, params)                                            \
	_Static_assert(__builtin_types_compatible_p(__typeof__(&curl_##name), ret(*) params), \
		       "curl_" #name " differs from <curl/curl.h>");
LIB_CURL_FUNCS(LIB_CURL_CHECK)
#undef LIB_CURL_CHECK

static void *lib_curl_handle;

int lib_curl_load(char *err, size_t errlen)
{
	void *h, *sym;
	struct lib_curl funcs;

	if (lib_curl_handle)
		return 0;
	h = dlopen(LIB_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "HTTPS to Patroni needs libcurl (%s): %s",
			 LIB_CURL_SONAME, dlerror());
		return -1;
	}
	/* Every symbol or none: a half-loaded table is never published. The
	 * object-to-function pointer copy goes through memcpy (POSIX dlsym). */
#define LIB_CURL_RESOLVE(ret, name, params)                                         \
	sym = dlsym(h, "curl_" #name);                                              \
	if (!sym) {                                                                 \
		snprintf(err, errlen, "HTTPS to Patroni needs libcurl: %s has no %s", \
			 LIB_CURL_SONAME, "curl_" #name);                           \
		dlclose(h);                                                         \
		return -1;                                                          \
	}                                                                           \
	memcpy(&funcs.name, &sym, sizeof(funcs.name));
	LIB_CURL_FUNCS(LIB_CURL_RESOLVE)
#undef LIB_CURL_RESOLVE
	if (funcs.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "HTTPS to Patroni: curl_global_init failed");
		dlclose(h);
		return -1;
	}
	lib_curl = funcs;
	lib_curl_handle = h;
	return 0;
}

int lib_curl_loaded(void)
{
	return lib_curl_handle != NULL;
}

const char *lib_curl_version(void)
{
	return lib_curl_handle ? lib_curl.version_info(CURLVERSION_NOW)->version : NULL;
}

void lib_curl_unload(void)
{
	/* libcurl stays mapped: OpenSSL registers exit handlers that must
	 * still find their code. Only curl's global state is released. */
	if (lib_curl_handle)
		lib_curl.global_cleanup();
}
