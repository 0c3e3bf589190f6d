/* lib_curl.h - libcurl, loaded with dlopen() only when HTTPS to Patroni is
 * configured. Plain HTTP needs no library (probe_http.c); why linking it
 * would cost every happac: docs/ARCHITECTURE.md, "Libraries loaded when
 * configured". The headers stay a build dependency.
 *
 * Call sites read lib_curl.easy_setopt(...) for curl_easy_setopt(...): the
 * members drop the "curl_" prefix, which curl.h also uses for its type-check
 * macros. */
#ifndef HAPPAC_LIB_CURL_H
#define HAPPAC_LIB_CURL_H

#include <curl/curl.h>
#include <stddef.h>

#define LIB_CURL_SONAME "libcurl.so.4"

/* X(return type, name without "curl_", parameters) */
#define LIB_CURL_FUNCS(X)                                                          \
	X(CURLcode, global_init, (long))                                           \
	X(void, global_cleanup, (void))                                            \
	X(curl_version_info_data *, version_info, (CURLversion))                   \
	X(CURLM *, multi_init, (void))                                             \
	X(CURLMcode, multi_setopt, (CURLM *, CURLMoption, ...))                    \
	X(CURLMcode, multi_cleanup, (CURLM *))                                     \
	X(CURLMcode, multi_add_handle, (CURLM *, CURL *))                          \
	X(CURLMcode, multi_remove_handle, (CURLM *, CURL *))                       \
	X(CURLMcode, multi_socket_action, (CURLM *, curl_socket_t, int, int *))    \
	X(CURLMsg *, multi_info_read, (CURLM *, int *))                            \
	X(CURLMcode, multi_assign, (CURLM *, curl_socket_t, void *))               \
	X(CURL *, easy_init, (void))                                               \
	X(CURLcode, easy_setopt, (CURL *, CURLoption, ...))                        \
	X(CURLcode, easy_getinfo, (CURL *, CURLINFO, ...))                         \
	X(void, easy_cleanup, (CURL *))                                            \
	X(const char *, easy_strerror, (CURLcode))                                 \
	X(struct curl_slist *, slist_append, (struct curl_slist *, const char *))  \
	X(void, slist_free_all, (struct curl_slist *))

#define LIB_CURL_MEMBER(ret, name, params) ret(*name) params;
struct lib_curl {
	LIB_CURL_FUNCS(LIB_CURL_MEMBER)
};
#undef LIB_CURL_MEMBER

/* The functions; valid after lib_curl_load() returned 0. */
extern struct lib_curl lib_curl;

/* Load libcurl and curl_global_init() it, once; later calls return at once.
 * Returns 0, or -1 with one line in err naming the library and the cause. */
int lib_curl_load(char *err, size_t errlen);
/* 1 after a successful lib_curl_load(). */
int lib_curl_loaded(void);
/* "7.88.1" when loaded, else NULL. */
const char *lib_curl_version(void);
/* curl_global_cleanup() when loaded; at exit. */
void lib_curl_unload(void);

#endif
