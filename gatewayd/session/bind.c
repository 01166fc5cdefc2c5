/*
 * bind.c: the BIND command (RFC 1928), as FTP active mode uses it. The
 * gateway listens on the address it would use to reach the expected peer,
 * tells the client where (first reply), and waits, at most bind_timeout
 * seconds, for the peer to connect. Only the expected peer is accepted:
 * a connection from another address is closed and the wait goes on; the
 * peer that came is judged by the policy like a CONNECT destination.
 * Then the client learns who connected (second reply) and the two are
 * relayed.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "socks5.h"

#include "base/clock.h"
#include "proxy/worker.h"

#include "phases.h"

static void	bind_accept(evutil_socket_t, short, void *);

/*
 * The local address toward sa: a UDP socket connected to it asks the
 * kernel's routing without sending anything.
 */
static int
bind_local_toward(const struct sockaddr *sa, struct sockaddr_storage *out)
{
	socklen_t	 len = sizeof(*out);
	int		 fd, rc = -1;

	if ((fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return (-1);
	if (connect(fd, sa, addr_len(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)out, &len) == 0)
		rc = 0;
	close(fd);
	return (rc);
}

/*
 * advertise (behind a load balancer): datagrams and BIND's peers come to
 * this node directly, at the address clients know it by, which may not be
 * the socket's own (a NAT in front). With one for local's family, local
 * names it, port kept, and 1 is returned.
 */
int
bind_advertise(const struct conf *c, struct sockaddr_storage *local)
{
	const struct addr_cidr	*ac;
	size_t			 i;

	for (i = 0; i < c->c_advertise.cc_n; i++) {
		ac = &c->c_advertise.cc_list[i];
		if (ac->ac_family != local->ss_family)
			continue;
		if (ac->ac_family == AF_INET)
			memcpy(&((struct sockaddr_in *)local)->sin_addr,
			    ac->ac_addr, 4);
		else
			memcpy(&((struct sockaddr_in6 *)local)->sin6_addr,
			    ac->ac_addr, 16);
		return (1);
	}
	return (0);
}

/*
 * Where a socket for the client's datagrams or BIND's peer listens: where
 * the client reached the gateway (UDP) or toward the peer (BIND), port 0;
 * every address of the family when one is advertised, since the socket's
 * own may be neither the advertised one nor reachable.
 */
int
bind_local(struct session *s, const struct sockaddr *toward,
    struct sockaddr_storage *local)
{
	struct sockaddr_storage	 adv;
	socklen_t		 len = sizeof(*local);

	if (toward != NULL ? bind_local_toward(toward, local) == -1 :
	    getsockname(s->s_fd[SIDE_CLIENT], (struct sockaddr *)local,
	    &len) == -1)
		return (-1);
	addr_set_port(local, 0);
	memcpy(&adv, local, sizeof(adv));
	if (bind_advertise(s->s_worker->w_conf, &adv)) {
		memset(local, 0, sizeof(*local));
		local->ss_family = adv.ss_family;
	}
	return (0);
}

/* Listens for the peer the client expects (s_dst) and replies where. */
int
bind_start(struct session *s)
{
	struct worker		*w = s->s_worker;
	struct sockaddr_storage	 local;
	socklen_t		 len = sizeof(local);
	uint8_t			 reply[FRONT_REPLY_MAX];
	int			 fd = -1, one = 1;

	if (bind_local(s, (struct sockaddr *)&s->s_dst, &local) == -1)
		goto fail;
	if ((fd = socket(local.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&local, addr_len((struct sockaddr *)
	    &local)) == -1 || listen(fd, 4) == -1 ||
	    getsockname(fd, (struct sockaddr *)&local, &len) == -1)
		goto fail;
	if ((s->s_dial.d_ev = event_new(w->w_base, fd, EV_READ | EV_PERSIST,
	    bind_accept, s)) == NULL)
		goto fail;
	s->s_dial.d_bind_fd = fd;
	fd = -1;		/* bind_cancel() closes it now */
	if (event_add(s->s_dial.d_ev, NULL) == -1)
		goto fail;
	addr_unmap(&local);
	bind_advertise(w->w_conf, &local);
	if (session_reply(s, reply, s->s_front->fe_reply(s, S5_REP_SUCCEEDED,
	    (struct sockaddr *)&local, reply, sizeof(reply))) == -1)
		goto fail;
	session_set_state(s, S_BINDING);
	w->w_now = gw_clock_ms();
	s->s_deadline = w->w_now + (int64_t)w->w_conf->c_bind_timeout * 1000;
	return (0);
fail:
	s->s_errno = errno;
	bind_cancel(s);
	if (fd != -1)
		close(fd);
	session_refuse(s, S5_REP_GENERAL_FAILURE, "bind");
	return (-1);
}

static void
bind_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct session		*s = arg;
	struct sockaddr_storage	 peer;
	socklen_t		 len = sizeof(peer);
	char			 who[ADDR_STRLEN];
	int			 fd;

	(void)what;
	if ((fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) == -1)
		return;
	addr_unmap(&peer);
	addr_str((struct sockaddr *)&peer, who, sizeof(who));
	/* The expected peer only (any, if the client named no address). */
	if (!addr_is_wildcard((struct sockaddr *)&s->s_dst) &&
	    !addr_same_ip((struct sockaddr *)&peer,
	    (struct sockaddr *)&s->s_dst)) {
		log_info("session %llu: bind: %s is not the expected peer",
		    (unsigned long long)s->s_id, who);
		close(fd);
		return;
	}
	if (!verdict_address(s, (struct sockaddr *)&peer)) {
		log_info("session %llu: bind: peer %s denied: %s",
		    (unsigned long long)s->s_id, who, s->s_refusal);
		close(fd);
		return;
	}
	bind_cancel(s);
	memcpy(&s->s_dst, &peer, sizeof(peer));
	s->s_fd[SIDE_REMOTE] = fd;
	session_connected(s, (struct sockaddr *)&peer);
}

void
bind_cancel(struct session *s)
{
	if (s->s_dial.d_bind_fd == -1)
		return;
	if (s->s_dial.d_ev != NULL) {
		event_free(s->s_dial.d_ev);
		s->s_dial.d_ev = NULL;
	}
	close(s->s_dial.d_bind_fd);
	s->s_dial.d_bind_fd = -1;
}
