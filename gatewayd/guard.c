/*
 * guard.c: destinations the gateway never connects to on its own say.
 *
 * Until the policy engine decides, this is the whole policy: loopback,
 * "this network", link-local (cloud metadata at 169.254.169.254 lives
 * there), multicast and reserved ranges, and the gateway's own addresses
 * are refused with REP 0x02. It is checked on every resolved address, so a
 * name that resolves to 127.0.0.1 is refused like the literal address.
 * A connection to one of the gateway's own listening sockets would loop
 * back into it, so that is refused even when loopback is allowed.
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

#include "gatewayd.h"

struct guard_self {
	struct sockaddr_storage	*gs_addrs;	/* our IPs, any port */
	size_t			 gs_naddrs;
	struct sockaddr_storage	*gs_listen;	/* our sockets, IP and port */
	size_t			 gs_nlisten;
};

/* Written once before the workers start; read-only after. */
static struct guard_self guard_self;

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
guard_self_init(const struct conf *c, const int *fds, size_t nfds,
    char **cause)
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
	(void)c;
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
		fatalx("out of memory");
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

static const char *
guard_special_v4(uint32_t a, int allow_loopback)
{
	if ((a >> 24) == 0)
		return ("destination in 0.0.0.0/8");
	if ((a >> 24) == 127)
		return (allow_loopback ? NULL : "loopback destination");
	if ((a >> 16) == 0xa9fe)
		return ("link-local destination");
	if ((a >> 28) == 0xe)
		return ("multicast destination");
	if ((a >> 28) == 0xf)
		return ("reserved or broadcast destination");
	return (NULL);
}

static const char *
guard_special_v6(const struct in6_addr *a, int allow_loopback)
{
	if (IN6_IS_ADDR_UNSPECIFIED(a))
		return ("unspecified destination");
	if (IN6_IS_ADDR_LOOPBACK(a))
		return (allow_loopback ? NULL : "loopback destination");
	if (IN6_IS_ADDR_LINKLOCAL(a))
		return ("link-local destination");
	if (IN6_IS_ADDR_MULTICAST(a))
		return ("multicast destination");
	return (NULL);
}

static int
guard_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr)
		    >> 24) == 127);
	return (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr));
}

static int
guard_is_own_ip(const struct sockaddr *sa)
{
	size_t	 i;

	if (guard_is_loopback(sa))
		return (1);
	for (i = 0; i < guard_self.gs_naddrs; i++)
		if (addr_same_ip(sa,
		    (const struct sockaddr *)&guard_self.gs_addrs[i]))
			return (1);
	return (0);
}

/* NULL if the gateway may connect to sa, else why not. */
const char *
guard_refuse(const struct conf *c, const struct sockaddr *sa)
{
	struct sockaddr_storage	 ss;
	const char		*why;
	size_t			 i;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, addr_len(sa));
	addr_unmap(&ss);
	sa = (const struct sockaddr *)&ss;

	if (sa->sa_family == AF_INET)
		why = guard_special_v4(ntohl(((const struct sockaddr_in *)
		    sa)->sin_addr.s_addr), c->c_allow_loopback);
	else if (sa->sa_family == AF_INET6)
		why = guard_special_v6(&((const struct sockaddr_in6 *)
		    sa)->sin6_addr, c->c_allow_loopback);
	else
		return ("unsupported address family");
	if (why != NULL)
		return (why);

	for (i = 0; i < guard_self.gs_nlisten; i++) {
		const struct sockaddr *ls =
		    (const struct sockaddr *)&guard_self.gs_listen[i];

		if (addr_port(ls) == addr_port(sa) && (addr_same_ip(sa, ls) ||
		    (addr_is_wildcard(ls) && guard_is_own_ip(sa))))
			return ("the gateway's own listening socket");
	}
	/* Loopback listeners are already covered by the loopback rule. */
	if (!guard_is_loopback(sa) && guard_is_own_ip(sa))
		return ("the gateway's own address");
	return (NULL);
}
