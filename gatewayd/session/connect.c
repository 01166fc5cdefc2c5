/*
 * connect.c: connecting to the destination, one candidate address after
 * the other until one answers.
 *
 * The socket is created and connected here rather than through
 * bufferevent_socket_connect() so that the exact errno of each attempt is
 * known: it chooses the RFC 1928 reply (refused, unreachable, TTL expired).
 * Every candidate passes the destination guard first, so a name cannot
 * lead the gateway to an address it would refuse when given literally.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "socks5.h"

#include "base/clock.h"
#include "base/guard.h"
#include "proxy/worker.h"

#include "phases.h"

static void	connect_done(evutil_socket_t, short, void *);

static void
connect_log_failure(const struct session *s)
{
	char	 addr[ADDR_STRLEN];

	if (!log_debug_enabled())
		return;
	log_debug("session %llu: %s: %s%s%s", (unsigned long long)s->s_id,
	    addr_str((const struct sockaddr *)&s->s_dst, addr, sizeof(addr)),
	    s->s_refusal, s->s_errno ? ": " : "",
	    s->s_errno ? strerror(s->s_errno) : "");
}

uint8_t
connect_errno_to_rep(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return (S5_REP_CONN_REFUSED);
	case ENETUNREACH:
	case ENETDOWN:
	case EAFNOSUPPORT:
	case EADDRNOTAVAIL:
		return (S5_REP_NET_UNREACHABLE);
	case EHOSTUNREACH:
	case EHOSTDOWN:
		return (S5_REP_HOST_UNREACHABLE);
	case ETIMEDOUT:
		return (S5_REP_TTL_EXPIRED);
	case EACCES:
	case EPERM:
		/* A local firewall rule said no. */
		return (S5_REP_NOT_ALLOWED);
	default:
		return (S5_REP_GENERAL_FAILURE);
	}
}

/*
 * A loopback handshake is complete when connect() returns: the kernel
 * delivers the SYN, SYN-ACK and ACK within the call. Asking costs one
 * system call and saves an event armed, a loop turn and the event
 * disarmed; elsewhere the answer is always "not yet", so nobody else
 * asks. getpeername() succeeds from ESTABLISHED on, and a refused
 * attempt stays with the event path, which reads its errno.
 */
static int
connect_completed(int fd, const struct sockaddr *sa)
{
	struct sockaddr_storage	 peer;
	socklen_t		 len = sizeof(peer);

	if (!addr_is_loopback(sa))
		return (0);
	return (getpeername(fd, (struct sockaddr *)&peer, &len) == 0);
}

/* Tries the next candidate; refuses the client when none is left. */
void
connect_next(struct session *s)
{
	struct worker		*w = s->s_worker;
	const struct sockaddr	*sa;
	int			 fd;

	while (s->s_dial.d_icand < s->s_dial.d_ncand) {
		sa = (const struct sockaddr *)
		    &s->s_dial.d_cand[s->s_dial.d_icand++];
		if (sa != (const struct sockaddr *)&s->s_dst)	/* a literal */
			memcpy(&s->s_dst, sa, addr_len(sa));
		if (guard_is_listener(sa)) {
			s->s_rep = S5_REP_NOT_ALLOWED;
			s->s_refusal = "the gateway's own listening socket";
			s->s_errno = 0;
			connect_log_failure(s);
			continue;
		}
		if (!verdict_address(s, sa)) {
			s->s_rep = S5_REP_NOT_ALLOWED;
			s->s_errno = 0;
			connect_log_failure(s);
			continue;
		}
		if (s->s_cmd == S5_CMD_BIND) {
			/* The candidate is the peer expected to connect. */
			bind_start(s);
			return;
		}
		fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1) {
			s->s_errno = errno;
			s->s_rep = connect_errno_to_rep(errno);
			s->s_refusal = "socket";
			connect_log_failure(s);
			continue;
		}
		if (connect(fd, sa, addr_len(sa)) == -1 &&
		    errno != EINPROGRESS) {
			s->s_errno = errno;
			s->s_rep = connect_errno_to_rep(errno);
			s->s_refusal = "connect";
			close(fd);
			connect_log_failure(s);
			continue;
		}
		if (connect_completed(fd, sa)) {
			s->s_fd[SIDE_REMOTE] = fd;
			s->s_errno = 0;
			session_connected(s, NULL);
			return;
		}
		s->s_dial.d_ev = event_new(w->w_base, fd, EV_WRITE,
		    connect_done, s);
		if (s->s_dial.d_ev == NULL || event_add(s->s_dial.d_ev,
		    NULL) == -1) {
			if (s->s_dial.d_ev != NULL)
				event_free(s->s_dial.d_ev);
			s->s_dial.d_ev = NULL;
			close(fd);
			session_refuse(s, S5_REP_GENERAL_FAILURE,
			    "out of memory");
			return;
		}
		s->s_fd[SIDE_REMOTE] = fd;
		session_set_state(s, S_CONNECTING);
		w->w_now = gw_clock_ms();
		s->s_deadline = w->w_now +
		    (int64_t)w->w_conf->c_connect_timeout * 1000;
		return;
	}
	if (s->s_rep == 0) {
		s->s_rep = S5_REP_HOST_UNREACHABLE;
		s->s_refusal = "no address to connect to";
	}
	session_refuse(s, s->s_rep, s->s_refusal);
}

static void
connect_done(evutil_socket_t fd, short what, void *arg)
{
	struct session	*s = arg;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	event_free(s->s_dial.d_ev);
	s->s_dial.d_ev = NULL;
	if (err != 0) {
		close(fd);
		s->s_fd[SIDE_REMOTE] = -1;
		s->s_errno = err;
		s->s_rep = connect_errno_to_rep(err);
		s->s_refusal = "connect";
		connect_log_failure(s);
		connect_next(s);
		return;
	}
	s->s_errno = 0;
	session_connected(s, NULL);
}

/* Abandons a connection attempt in progress, if any. */
void
connect_cancel(struct session *s)
{
	if (s->s_dial.d_ev == NULL)
		return;
	event_free(s->s_dial.d_ev);
	s->s_dial.d_ev = NULL;
	close(s->s_fd[SIDE_REMOTE]);
	s->s_fd[SIDE_REMOTE] = -1;
}
