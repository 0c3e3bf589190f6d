/* lib_pq.h - libpq, loaded with dlopen() only when --pg-conninfo is
 * configured (why: docs/ARCHITECTURE.md, "Libraries loaded when
 * configured"); the default PgBouncer probe (ping) speaks the wire protocol
 * itself. Every call goes through the table: lib_pq.PQfinish(conn).
 * <libpq-fe.h> still provides the types. */
#ifndef HAPPAC_LIB_PQ_H
#define HAPPAC_LIB_PQ_H

#include <libpq-fe.h>
#include <stddef.h>

/* Every libpq function happac calls: X(return type, name, (parameters)). */
#define LIB_PQ_FUNCS(X)                                                                  \
	X(PGconn *, PQconnectStartParams,                                                \
	  (const char *const *keywords, const char *const *values, int expand_dbname))   \
	X(PostgresPollingStatusType, PQconnectPoll, (PGconn *conn))                      \
	X(ConnStatusType, PQstatus, (const PGconn *conn))                                \
	X(int, PQsocket, (const PGconn *conn))                                           \
	X(char *, PQerrorMessage, (const PGconn *conn))                                  \
	X(PGVerbosity, PQsetErrorVerbosity, (PGconn *conn, PGVerbosity verbosity))       \
	X(int, PQsetnonblocking, (PGconn *conn, int arg))                                \
	X(int, PQsendQuery, (PGconn *conn, const char *query))                           \
	X(int, PQflush, (PGconn *conn))                                                  \
	X(int, PQconsumeInput, (PGconn *conn))                                           \
	X(int, PQisBusy, (PGconn *conn))                                                 \
	X(PGresult *, PQgetResult, (PGconn *conn))                                       \
	X(ExecStatusType, PQresultStatus, (const PGresult *res))                         \
	X(char *, PQresStatus, (ExecStatusType status))                                  \
	X(char *, PQresultErrorField, (const PGresult *res, int fieldcode))              \
	X(int, PQntuples, (const PGresult *res))                                         \
	X(int, PQnfields, (const PGresult *res))                                         \
	X(char *, PQfname, (const PGresult *res, int field_num))                         \
	X(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num))           \
	X(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num))         \
	X(void, PQclear, (PGresult *res))                                                \
	X(void, PQfinish, (PGconn *conn))                                                \
	X(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg))    \
	X(void, PQconninfoFree, (PQconninfoOption *connOptions))                         \
	X(void, PQfreemem, (void *ptr))                                                  \
	X(int, PQlibVersion, (void))

#define LIB_PQ_MEMBER(ret, name, args) ret (*name) args;
struct lib_pq {
	LIB_PQ_FUNCS(LIB_PQ_MEMBER)
};
#undef LIB_PQ_MEMBER

/* The resolved functions; valid only after lib_pq_load() returned 0. */
extern struct lib_pq lib_pq;

/* Load libpq.so.5 and resolve every function above. Idempotent: later calls
 * return 0 at once. On failure returns -1 with one line in err naming the
 * library and the cause; the table stays unusable. Never unloaded. */
int lib_pq_load(char *err, size_t errlen);
/* True once lib_pq_load() succeeded. */
int lib_pq_loaded(void);
/* PQlibVersion() (e.g. 150013) when loaded, else 0. */
int lib_pq_version(void);

/* True when a connection option holds a secret that happac must never show
 * (--check-config, GET /status) and warns about: libpq's own flag, dispchar
 * "*" ("hide the value", the PQconninfoOption records that PQconninfoParse()
 * and PQconndefaults() return), so every secret a later libpq adds is hidden
 * too; or a keyword of lib_pq_secret_keyword()'s list. opt->dispchar may be
 * NULL. Needs no loaded libpq. */
int lib_pq_secret(const PQconninfoOption *opt);
/* The built-in list, a superset of what libpq 15 to 18 flag "*": password,
 * sslpassword, oauth_client_secret. What happac hides when it has no
 * dispchar to go by. */
int lib_pq_secret_keyword(const char *keyword);

#endif
