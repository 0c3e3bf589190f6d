/* acl.c - CIDR matching for --allow. */
#include "acl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int acl_parse(const char *s, struct acl_entry *e, char *err, size_t errlen)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int max, prefix = -1;

	if (alen == 0 || alen >= sizeof(addr)) {
		snprintf(err, errlen, "'%s' is not an address or CIDR block", s);
		return -1;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(e, 0, sizeof(*e));
	if (inet_pton(AF_INET, addr, e->addr) == 1) {
		e->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, e->addr) == 1) {
		e->family = AF_INET6;
		max = 128;
	} else {
		snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", addr);
		return -1;
	}
	if (slash) {
		const char *p = slash + 1;

		prefix = 0;
		if (!isdigit((unsigned char)*p))
			prefix = -1;
		for (; isdigit((unsigned char)*p) && prefix <= max; p++)
			prefix = prefix * 10 + (*p - '0');
		if (*p != '\0' || prefix > max)
			prefix = -1;
		if (prefix < 0) {
			snprintf(err, errlen, "'%s': prefix length must be 0-%d", s, max);
			return -1;
		}
	} else {
		prefix = max;
	}
	e->prefix = prefix;
	/* Clear host bits, so 10.1.2.3/8 means 10.0.0.0/8. */
	for (int bit = prefix; bit < max; bit++)
		e->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	return 0;
}

static int acl_match(const struct acl_entry *e, int family, const uint8_t *addr)
{
	int full = e->prefix / 8, rest = e->prefix % 8;

	if (e->family != family)
		return 0;
	if (memcmp(e->addr, addr, (size_t)full) != 0)
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rest));

		if ((e->addr[full] & mask) != (addr[full] & mask))
			return 0;
	}
	return 1;
}

int acl_allows(const struct acl *acl, const struct sockaddr *sa)
{
	uint8_t addr[16];
	int family;

	if (acl->count == 0)
		return 1;
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
			&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(addr, &a6->s6_addr[12], 4);
			family = AF_INET;
		} else {
			memcpy(addr, a6->s6_addr, 16);
			family = AF_INET6;
		}
	} else {
		return 0;
	}
	for (int i = 0; i < acl->count; i++)
		if (acl_match(&acl->entries[i], family, addr))
			return 1;
	return 0;
}
