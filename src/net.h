/* net.h - sockets: listening (TCP and unix), one accept loop, connection
 * bookkeeping with deferred cleanup, draining before close, and the
 * nonblocking connect of the probes.
 *
 * The agent port, the HTTP side port and the control socket differ in what
 * they say, not in how they accept: every listener here accepts in bounded
 * batches, pauses for a moment when descriptors run out instead of spinning
 * on a readable socket, closes sources the allow-list refuses before
 * anything is read, and applies its server's connection cap. */
#ifndef HAPPAC_NET_H
#define HAPPAC_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>

struct event;
struct event_base;
struct acl;
struct net_server;
struct net_listener;

/* The listen backlog of every socket: the kernel's limit (it caps a larger
 * value itself). A burst beyond a server's cap is then answered (busy, or
 * at once) rather than refused at connect. */
#define NET_BACKLOG SOMAXCONN
/* Events a connection may own; net frees them with it. */
#define NET_CONN_EVENTS 3

/* A connection a server keeps beyond its accept: the first member of the
 * module's connection, which net_conn_new() allocates and release() (or
 * free()) frees once no callback of it can still be running. */
struct net_conn {
	struct net_server *srv;
	int fd;                            /* closed by net_conn_close() */
	int closed;
	struct event *ev[NET_CONN_EVENTS]; /* deleted at close, freed at reap */
	void (*release)(struct net_conn *nc);
	struct net_conn *prev, *next;      /* newest first */
};

/* fd was accepted (and allowed) on a listener whose argument is larg; the
 * callee owns fd. peer is NULL for unix sockets. */
typedef void (*net_accept_fn)(void *arg, void *larg, int fd, const struct sockaddr *peer);
/* The server holds its cap of connections: the callee owns fd (says busy,
 * or closes it). */
typedef void (*net_full_fn)(void *arg, int fd);

/* name prefixes the log lines ("agent", "http", "control"); batch bounds
 * the accepts per wake-up; *denied (may be NULL) counts sources the
 * allow-list refused. */
struct net_server *net_server_new(struct event_base *base, const char *name, int batch,
				  net_accept_fn accepted, void *arg, uint64_t *denied);
/* max 0: no cap (the module bounds itself); full NULL: close. */
void net_server_set_cap(struct net_server *s, int max, net_full_fn full);
/* NULL allows everyone; the list must outlive its use. */
void net_server_set_acl(struct net_server *s, const struct acl *acl);
/* Listeners accept only while the server is enabled (and not paused). */
void net_server_enable(struct net_server *s, int on);
int net_server_nconns(const struct net_server *s);
/* The connection kept longest; walk newer ones with ->prev. */
struct net_conn *net_server_oldest(const struct net_server *s);
/* Close every connection now; their release() runs. */
void net_server_close_all(struct net_server *s);
/* That, and the listeners still started. NULL is fine. */
void net_server_free(struct net_server *s);

/* Accept on fd (listening, nonblocking; net owns it from now) for s once
 * started. NULL (fd closed) when out of memory. */
struct net_listener *net_listener_new(struct net_server *s, int fd, void *larg);
/* Join the server's accepting set. */
void net_listener_start(struct net_listener *l);
void net_listener_set_arg(struct net_listener *l, void *larg);
/* Stop accepting and close the socket. NULL is fine. */
void net_listener_free(struct net_listener *l);

/* A zeroed connection of size bytes (struct net_conn first) for fd, kept
 * in s's set; the caller then sets its ev[]. release NULL: free(). NULL
 * when out of memory (fd is still the caller's). */
void *net_conn_new(struct net_server *s, size_t size, int fd,
		   void (*release)(struct net_conn *nc));
/* The one end of a connection: out of the set, its events stopped, its
 * socket closed (unless fd was set to -1 first); its memory is released
 * later, outside its own callbacks. A second call does nothing. */
void net_conn_close(struct net_conn *nc);

/* addr (an IPv4 or IPv6 literal, "[v6]" too) and port as a socket address.
 * Returns 0, or -1 when addr is no address. */
int net_sockaddr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len);
/* A listening TCP socket (nonblocking, SO_REUSEADDR, NET_BACKLOG). addr
 * NULL: all addresses, one dual-stack IPv6 socket or IPv4 where the kernel
 * has no IPv6; an address: exactly it (an IPv6 one with IPV6_V6ONLY, so
 * "::" does not also take IPv4's port). name gets "[addr]:port" for the
 * log and error messages ("port P (all addresses)" when all fail). Returns
 * the socket, -1 with errno set, or -2 when addr is no address. */
int net_listen_tcp(const char *addr, int port, char *name, size_t namelen);
/* A listening unix stream socket at path, mode 0660 from its birth. A
 * stale socket file is replaced (logged under log_name); a live one or a
 * non-socket is an error. what names it in err ("control socket"); st gets
 * the file's identity. Returns the socket or -1 with err set. */
int net_listen_unix(const char *path, const char *what, const char *log_name,
		    struct stat *st, char *err, size_t errlen);
/* 1 when something accepts on the unix socket at path (or its backlog is
 * full), 0 when nothing does. */
int net_unix_live(const char *path);
/* Start a nonblocking TCP connect to addr (a literal) port. Returns the
 * socket, connecting or connected (its SO_ERROR says which once it is
 * writable); the caller closes it. -1 with errno set when it cannot start
 * (EINVAL: addr is not an address). */
int net_connect(const char *addr, int port);
/* The same for a Unix stream socket at path (ENAMETOOLONG: too long). */
int net_connect_unix(const char *path);

/* Read (and discard, at most max bytes) what the peer sent, without
 * waiting, so that a close ends with FIN, not a reset that can destroy the
 * reply before the peer reads it. */
void net_drain(int fd, size_t max);
/* Lingering close: stop writing; the caller then reads with
 * net_linger_read() until it returns 1 (EOF or error), bounded by its own
 * deadline. */
void net_linger(int fd);
int net_linger_read(int fd);

#endif
