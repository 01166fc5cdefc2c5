/*
 * listen.c: the proxy's listening sockets, bound by the privileged parent
 * before anything drops root (a port below 1024 needs it). One socket per
 * worker per listen address, all on the same port with SO_REUSEPORT, so
 * the kernel spreads connections over the workers without a shared
 * accept lock.
 *
 * Two options serve the connection rate. TCP_DEFER_ACCEPT: every client
 * of a gateway speaks first (a SOCKS greeting, an HTTP request, a
 * balancer's PROXY header), so a connection is handed over with its
 * first bytes and is read in the same loop turn as its accept, one
 * wake-up instead of two; a socket that says nothing costs the kernel a
 * request socket, not a descriptor of ours, until the deferral ends and
 * handshake_timeout takes over. TCP_NODELAY: Linux gives an accepted
 * socket the listener's, which saves a system call per connection.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "log.h"

#include "proxy.h"

#define GW_LISTEN_BACKLOG	4096
/* Seconds a silent connection waits in the kernel (one SYN-ACK resent). */
#define GW_LISTEN_DEFER		1

static int
listener_open(const struct conf_listen *cl, uint16_t port, char **cause)
{
	struct sockaddr_storage	 ss;
	int			 fd, one = 1, defer = GW_LISTEN_DEFER;

	memcpy(&ss, &cl->cl_ss, sizeof(ss));
	addr_set_port(&ss, port);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		goto fail;
	/* [::]:P and 0.0.0.0:P are separate listen lines, as written. */
	if ((ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
	    sizeof(defer)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, cl->cl_len) == -1 ||
	    listen(fd, GW_LISTEN_BACKLOG) == -1)
		goto fail;
	return (fd);
fail:
	if (asprintf(cause, "listen %s: %s", cl->cl_text, strerror(errno)) < 0)
		*cause = NULL;
	if (fd != -1)
		close(fd);
	return (-1);
}

/*
 * One socket per worker per listen address, all bound to the same port
 * with SO_REUSEPORT. A port of 0 is chosen by the kernel for the first
 * socket and reused for the others. fds is [worker][listen].
 */
int
listeners_open(const struct conf *c, int nworkers, int *fds, char **cause)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	size_t			 l;
	uint16_t		 port;
	int			 w, fd;

	for (l = 0; l < c->c_nlisten; l++) {
		port = addr_port((const struct sockaddr *)&c->c_listen[l].cl_ss);
		for (w = 0; w < nworkers; w++) {
			if ((fd = listener_open(&c->c_listen[l], port, cause)) == -1)
				return (-1);
			fds[(size_t)w * c->c_nlisten + l] = fd;
			if (port == 0) {
				len = sizeof(ss);
				if (getsockname(fd, (struct sockaddr *)&ss,
				    &len) == -1)
					return (-1);
				port = addr_port((struct sockaddr *)&ss);
			}
		}
		if (port != addr_port((const struct sockaddr *)
		    &c->c_listen[l].cl_ss))
			log_info("listen %s: bound to port %u",
			    c->c_listen[l].cl_text, port);
	}
	return (0);
}
