/*
 * guard.c: the gateway's own addresses. Listening sockets are never a
 * destination, whatever the rules say: a connection to one would loop back
 * into the gateway. The gateway's own IP addresses (every local address
 * when a listener is a wildcard) are handed to the policy engine, which
 * treats them as special-purpose destinations that only a rule naming them
 * opens.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#include "guard.h"

/* Written once before the workers start; read-only after. */
static struct {
	struct sockaddr_storage	*gs_addrs;	/* our IPs, any port */
	size_t			 gs_naddrs;
	struct sockaddr_storage	*gs_listen;	/* our sockets, IP and port */
	size_t			 gs_nlisten;
} guard_self;

static int
guard_push(struct sockaddr_storage **arr, size_t *n, const struct sockaddr *sa)
{
	struct sockaddr_storage	*na;

	if ((na = reallocarray(*arr, *n + 1, sizeof(**arr))) == NULL)
		return (-1);
	*arr = na;
	memset(&na[*n], 0, sizeof(na[*n]));
	memcpy(&na[*n], sa, addr_len(sa));
	addr_unmap(&na[*n]);
	(*n)++;
	return (0);
}

/* fds are the bound listening sockets, so port 0 is known as bound. */
int
guard_self_init(const int *fds, size_t nfds, char **cause)
{
	struct sockaddr_storage	 ss;
	struct ifaddrs		*ifa, *i;
	socklen_t		 len;
	size_t			 k;
	int			 wildcard = 0;

	guard_self_free();
	for (k = 0; k < nfds; k++) {
		len = sizeof(ss);
		if (getsockname(fds[k], (struct sockaddr *)&ss, &len) == -1 ||
		    guard_push(&guard_self.gs_listen, &guard_self.gs_nlisten,
		    (struct sockaddr *)&ss) == -1)
			goto fail;
		if (addr_is_wildcard((struct sockaddr *)&ss))
			wildcard = 1;
		else if (guard_push(&guard_self.gs_addrs,
		    &guard_self.gs_naddrs, (struct sockaddr *)&ss) == -1)
			goto fail;
	}
	if (!wildcard)
		return (0);
	/* A wildcard listener answers on every local address. */
	if (getifaddrs(&ifa) == -1)
		goto fail;
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
		    i->ifa_addr->sa_family != AF_INET6))
			continue;
		if (guard_push(&guard_self.gs_addrs, &guard_self.gs_naddrs,
		    i->ifa_addr) == -1) {
			freeifaddrs(ifa);
			goto fail;
		}
	}
	freeifaddrs(ifa);
	return (0);
fail:
	if (asprintf(cause, "listing the gateway's own addresses: %s",
	    strerror(errno)) < 0)
		*cause = NULL;
	guard_self_free();
	return (-1);
}

void
guard_self_free(void)
{
	free(guard_self.gs_addrs);
	free(guard_self.gs_listen);
	memset(&guard_self, 0, sizeof(guard_self));
}

const struct sockaddr_storage *
guard_self_addrs(size_t *n)
{
	*n = guard_self.gs_naddrs;
	return (guard_self.gs_addrs);
}

static int
guard_is_local(const struct sockaddr *sa)
{
	size_t	 i;

	if (sa->sa_family == AF_INET &&
	    (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) ==
	    127)
		return (1);
	if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr))
		return (1);
	for (i = 0; i < guard_self.gs_naddrs; i++)
		if (addr_same_ip(sa,
		    (const struct sockaddr *)&guard_self.gs_addrs[i]))
			return (1);
	return (0);
}

/* Whether sa is one of the gateway's own listening sockets. */
int
guard_is_listener(const struct sockaddr *sa)
{
	struct sockaddr_storage	 ss;
	const struct sockaddr	*ls;
	size_t			 i;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, addr_len(sa));
	addr_unmap(&ss);
	sa = (const struct sockaddr *)&ss;
	for (i = 0; i < guard_self.gs_nlisten; i++) {
		ls = (const struct sockaddr *)&guard_self.gs_listen[i];
		if (addr_port(ls) == addr_port(sa) && (addr_same_ip(sa, ls) ||
		    (addr_is_wildcard(ls) && guard_is_local(sa))))
			return (1);
	}
	return (0);
}
