/* acl.h - source address allow-lists (--allow CIDR). */
#ifndef HAPPAC_ACL_H
#define HAPPAC_ACL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ACL_MAX 32

struct acl_entry {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];    /* network address, host bits cleared */
	int prefix;          /* 0..32 or 0..128 */
};

struct acl {
	struct acl_entry entries[ACL_MAX];
	int count;           /* 0: everyone is allowed */
};

/* Parse "10.0.0.0/8", "::1", "2001:db8::/32" (a bare address is a host).
 * Returns 0, or -1 with err saying what is wrong. */
int acl_parse(const char *s, struct acl_entry *e, char *err, size_t errlen);

/* True when the list is empty or the address matches an entry. IPv4-mapped
 * IPv6 addresses (::ffff:a.b.c.d, from dual-stack sockets) match IPv4
 * entries. */
int acl_allows(const struct acl *acl, const struct sockaddr *sa);

#endif
