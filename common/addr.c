/*
 * addr.c: socket address parsing and printing. IPv4-mapped IPv6 addresses
 * are folded to IPv4 (addr_unmap) before anything compares them, so that
 * ::ffff:127.0.0.1 cannot pass for something other than loopback.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

socklen_t
addr_len(const struct sockaddr *sa)
{
	return (sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
}

uint16_t
addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return (ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
	if (sa->sa_family == AF_INET)
		return (ntohs(((const struct sockaddr_in *)sa)->sin_port));
	return (0);
}

/* "1.2.3.4:80" or "[::1]:80"; a port of 0 prints the address alone. */
const char *
addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char	 ip[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, addr_port(sa));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
		    sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, addr_port(sa));
		break;
	default:
		snprintf(buf, len, "-");
		break;
	}
	return (buf);
}

void
addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

/* The address alone, without port or brackets. */
const char *
addr_ip(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void	*a = ss->ss_family == AF_INET6 ?
			    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
			    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if ((ss->ss_family != AF_INET && ss->ss_family != AF_INET6) ||
	    inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "-");
	return (buf);
}

void
addr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	*sin;

	if (ss->ss_family != AF_INET6)
		return;
	memcpy(&sin6, ss, sizeof(sin6));
	if (!IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr))
		return;
	sin = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = sin6.sin6_port;
	memcpy(&sin->sin_addr, &sin6.sin6_addr.s6_addr[12], 4);
}

int
addr_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return (0);
	if (a->sa_family == AF_INET)
		return (((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr);
	if (a->sa_family == AF_INET6)
		return (IN6_ARE_ADDR_EQUAL(
		    &((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr));
	return (0);
}

int
addr_is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		    htonl(INADDR_ANY));
	if (sa->sa_family == AF_INET6)
		return (IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr));
	return (0);
}

/* A numeric IPv4 or IPv6 address, port 0: 0, or -1 when text is not one. */
int
addr_parse_ip(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) ==
	    1)
		ss->ss_family = AF_INET;
	else if (inet_pton(AF_INET6, text,
	    &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
		ss->ss_family = AF_INET6;
	else
		return (-1);
	return (0);
}

/*
 * Parses "ADDR:PORT" with a numeric IPv4 address, "[V6ADDR]:PORT", or
 * "*:PORT" for every IPv4 address. Returns 0, or -1 with *why set.
 */
int
addr_parse_hostport(const char *text, struct sockaddr_storage *ss,
    socklen_t *len, const char **why)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[INET6_ADDRSTRLEN + 1];
	const char		*colon, *end;
	size_t			 hlen;
	unsigned long		 port;
	char			*ep;

	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		end = strchr(text, ']');
		if (end == NULL || end[1] != ':') {
			*why = "IPv6 addresses are written [ADDR]:PORT";
			return (-1);
		}
		hlen = (size_t)(end - text - 1);
		colon = end + 1;
		if (hlen == 0 || hlen >= sizeof(host)) {
			*why = "bad IPv6 address";
			return (-1);
		}
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = "bad IPv6 address";
			return (-1);
		}
		sin6->sin6_family = AF_INET6;
		*len = sizeof(*sin6);
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL) {
			*why = "missing :PORT";
			return (-1);
		}
		hlen = (size_t)(colon - text);
		if (hlen == 0 || hlen >= sizeof(host)) {
			*why = "missing address before :PORT";
			return (-1);
		}
		memcpy(host, text, hlen);
		host[hlen] = '\0';
		if (strcmp(host, "*") == 0)
			sin->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*why = strchr(host, ':') != NULL ?
			    "IPv6 addresses are written [ADDR]:PORT" :
			    "bad IPv4 address (names are not accepted here)";
			return (-1);
		}
		sin->sin_family = AF_INET;
		*len = sizeof(*sin);
	}
	errno = 0;
	port = strtoul(colon + 1, &ep, 10);
	if (colon[1] == '\0' || *ep != '\0' || errno != 0 || port > 65535) {
		*why = "bad port (0 to 65535)";
		return (-1);
	}
	if (ss->ss_family == AF_INET6)
		sin6->sin6_port = htons((uint16_t)port);
	else
		sin->sin_port = htons((uint16_t)port);
	return (0);
}

/* "192.0.2.0/24", "2001:db8::/32" or an address alone: 0, or -1. */
int
addr_cidr_parse(const char *text, struct addr_cidr *c)
{
	char		 host[INET6_ADDRSTRLEN + 1];
	const char	*slash = strchr(text, '/');
	size_t		 hlen = slash ? (size_t)(slash - text) : strlen(text);
	char		*ep;
	long		 len;
	int		 max;

	memset(c, 0, sizeof(*c));
	if (hlen == 0 || hlen >= sizeof(host))
		return (-1);
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, c->ac_addr) == 1) {
		c->ac_family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c->ac_addr) == 1) {
		c->ac_family = AF_INET6;
		max = 128;
	} else
		return (-1);
	len = max;
	if (slash != NULL) {
		errno = 0;
		len = strtol(slash + 1, &ep, 10);
		if (slash[1] == '\0' || !isdigit((unsigned char)slash[1]) ||
		    *ep != '\0' || errno != 0 || len < 0 || len > max)
			return (-1);
	}
	c->ac_len = (int)len;
	return (0);
}

int
addr_in_cidr(const struct sockaddr *sa, const struct addr_cidr *c)
{
	const uint8_t	*a;
	int		 full = c->ac_len / 8, rest = c->ac_len % 8;

	if (sa->sa_family != c->ac_family)
		return (0);
	a = sa->sa_family == AF_INET ?
	    (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr :
	    (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (memcmp(a, c->ac_addr, (size_t)full) != 0)
		return (0);
	return (rest == 0 || ((a[full] ^ c->ac_addr[full]) &
	    (0xff << (8 - rest))) == 0);
}

int
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
		    >> 24) == 127);
	if (sa->sa_family == AF_INET6)
		return (IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr));
	return (0);
}
