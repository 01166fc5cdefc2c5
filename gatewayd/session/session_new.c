/*
 * session_new.c: where sessions come from: a connection accepted
 * (session_accept), or the next request on a forwarded HTTP client's
 * connection (session_next), once the exchange before it is complete.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "stat.h"

#include "auditd/audit.h"
#include "base/clock.h"
#include "base/stats.h"
#include "base/wipe.h"
#include "proxy/worker.h"
#include "relay/relay.h"

#include "phases.h"
#include "session.h"

/* Large enough for any one handshake message plus a pipelined next one. */
#define SESSION_HANDSHAKE_BUFFER	1024

/*
 * A session in its handshake for client socket fd, from peer, with
 * timeout_s seconds to finish it. The descriptor is the session's from
 * here on: closed if there is no session.
 */
static struct session *
session_new(struct worker *w, const struct front *fe, int fd,
    const struct sockaddr_storage *peer, int timeout_s)
{
	struct session	*s;
	unsigned	 open;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("session: calloc");
		close(fd);
		return (NULL);
	}
	/* The session owns the descriptor; the bufferevent only borrows it. */
	if ((s->s_bev = bufferevent_socket_new(w->w_base, fd, 0)) == NULL) {
		log_warnx("session: bufferevent_socket_new failed");
		close(fd);
		free(s);
		return (NULL);
	}
	s->s_worker = w;
	s->s_id = atomic_fetch_add(&gw_next_sid, 1);
	s->s_fd[SIDE_CLIENT] = fd;
	s->s_fd[SIDE_REMOTE] = -1;
	s->s_dial.d_bind_fd = -1;
	memcpy(&s->s_peer, peer, sizeof(s->s_peer));
	clock_gettime(CLOCK_MONOTONIC, &s->s_started);
	s->s_start_ms = gw_clock_of(CLOCK_REALTIME);
	w->w_now = gw_clock_ms();
	s->s_deadline = w->w_now + (int64_t)timeout_s * 1000;
	open = atomic_fetch_add(&gw_nsessions, 1) + 1;
	if (open > (unsigned)w->w_conf->c_max_sessions)
		s->s_over_limit = 1;
	TAILQ_INSERT_TAIL(&w->w_sessions, s, s_entry);
	w->w_nsessions++;
	STAT_ADD(GW_STAT_SESSIONS, 1);
	bufferevent_setcb(s->s_bev, session_client_read, NULL,
	    session_client_event, s);
	bufferevent_setwatermark(s->s_bev, EV_READ, 0,
	    SESSION_HANDSHAKE_BUFFER);
	/* Writing is enabled only if a reply ever has to wait (session_reply). */
	bufferevent_enable(s->s_bev, EV_READ);
	s->s_state = S_GREETING;
	s->s_front = fe;
	s->s_proto = AUDIT_PROTO_SOCKS5;
	return (s);
}

/*
 * Reads what the client sent before its accept. Straight into a buffer
 * of ours (recv, not the bufferevent's FIONREAD and readv), then put at
 * the start of the input, which is empty: a bufferevent's input takes
 * bytes at its start only, its end is the bufferevent's own.
 */
static void
session_read_now(struct session *s)
{
	uint8_t	 buf[SESSION_HANDSHAKE_BUFFER];
	ssize_t	 n;
	int	 kept;

	n = recv(s->s_fd[SIDE_CLIENT], buf, sizeof(buf), MSG_DONTWAIT);
	if (n <= 0)
		return;
	kept = evbuffer_prepend(bufferevent_get_input(s->s_bev), buf,
	    (size_t)n) == 0;
	/* A greeting, but maybe a whole pipelined request, login and all. */
	explicit_bzero(buf, (size_t)n);
	if (kept)
		session_client_read(s->s_bev, s);
	else
		session_close(s, CLOSE_NO_MEMORY);
}

void
session_accept(struct worker *w, const struct front *fe, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct sockaddr_storage	 peer;
	struct session		*s;

	/* A host may hold only so many sockets that have said nothing. */
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, sa, salen < sizeof(peer) ? salen : sizeof(peer));
	addr_unmap(&peer);
	if (pending_enter(&peer, fe->fe_accept_cap != NULL ?
	    fe->fe_accept_cap(w->w_conf) : handshake_cap(w->w_conf)) == -1) {
		STAT_ADD(GW_STAT_LIMIT_HANDSHAKES, 1);
		close(fd);
		return;
	}
	/* No Nagle delay: TCP_NODELAY came from the listener (listen.c). */
	/* A front end that reads a prefix first (PROXY) has its own limit. */
	if ((s = session_new(w, fe, fd, &peer, fe->fe_accept_timeout != NULL ?
	    fe->fe_accept_timeout(w->w_conf) :
	    w->w_conf->c_handshake_timeout)) == NULL) {
		pending_leave(&peer);
		return;
	}
	s->s_pending = 1;
	/*
	 * The listener hands a connection over with its first bytes
	 * (TCP_DEFER_ACCEPT, listen.c): read them in this loop turn rather
	 * than arm the event and come back on the next one. Nothing there
	 * yet (a deferral that expired), or EOF: the bufferevent sees it.
	 */
	session_read_now(s);
}

/*
 * The login s made holds for n too, when it belongs to the connection:
 * Negotiate (Kerberos) is one per connection, and browsers send it once,
 * until its ticket ends. Basic is per request (RFC 9110): browsers send it
 * with each, and a request without it on a connection that several users'
 * requests may share (a downstream proxy's pool) must not run as the
 * last one's. All or nothing: a login without its groups would slip past
 * group rules.
 */
static void
session_inherit(struct session *n, const struct session *s)
{
	int	 i;

	if (!s->s_authed || s->s_user == NULL ||
	    s->s_login != AUDIT_AUTH_NEGOTIATE ||
	    s->s_login_until <= gw_clock_ms())
		return;
	if ((n->s_user = strdup(s->s_user)) == NULL)
		return;
	if (s->s_ngroups > 0 && (n->s_groups = calloc((size_t)s->s_ngroups,
	    sizeof(*n->s_groups))) == NULL)
		goto fail;
	for (i = 0; i < s->s_ngroups; i++) {
		if ((n->s_groups[i] = strdup(s->s_groups[i])) == NULL)
			goto fail;
		n->s_ngroups++;
	}
	n->s_authed = 1;
	n->s_login = s->s_login;
	n->s_login_until = s->s_login_until;
	return;
fail:
	while (n->s_ngroups > 0)
		free(n->s_groups[--n->s_ngroups]);
	free(n->s_groups);
	n->s_groups = NULL;
	free(n->s_user);
	n->s_user = NULL;
}

/*
 * The exchange of a forwarded HTTP request is complete (CLOSE_KEEPALIVE)
 * and its front end says the client's connection carries on: a new
 * session takes the socket over, with the response bytes the client has
 * not been sent yet and the bytes it sent after its request (its next
 * request), and the login it made. Each request is still judged, limited
 * and audited on its own. It counts as no silent socket: a browser keeps
 * several idle connections to its proxy, and behind one NAT address many
 * browsers would fill handshake_per_client; handshake_timeout closes an
 * idle one.
 */
void
session_next(struct session *s)
{
	struct evbuffer	*early, *unsent;
	struct session	*n;
	uint8_t		*p;
	size_t		 len;
	int		 fd = s->s_fd[SIDE_CLIENT], keep;

	if (s->s_front->fe_next == NULL || fd == -1 || s->s_bev != NULL)
		return;
	early = evbuffer_new();
	unsent = evbuffer_new();
	if (early == NULL || unsent == NULL ||
	    relay_unsent_client(s, unsent) == -1)
		goto done;
	/* Stopping: the connection closes once this answer is out. */
	keep = s->s_front->fe_next(s, early) == 1 && !s->s_worker->w_stopping;
	s->s_fd[SIDE_CLIENT] = -1;	/* the successor's, or closed */
	if ((n = session_new(s->s_worker, s->s_front, fd, &s->s_peer,
	    s->s_worker->w_conf->c_handshake_timeout)) == NULL)
		goto done;
	n->s_proto = s->s_proto;
	if (s->s_reached != NULL && (n->s_reached = malloc(sizeof(
	    *n->s_reached))) != NULL)
		memcpy(n->s_reached, s->s_reached, sizeof(*n->s_reached));
	if (!keep) {
		/*
		 * Not kept (the server answered before the request's body
		 * ended, or the client sent too much past it): the rest of
		 * the response goes, then the connection closes.
		 */
		if ((p = evbuffer_pullup(unsent, -1)) == NULL)
			len = 0;	/* nothing, or no memory: closed now */
		else
			len = evbuffer_get_length(unsent);
		session_refuse_bytes(n, p, len, "the connection is not kept");
		goto done;
	}
	session_inherit(n, s);
	if (evbuffer_prepend_buffer(bufferevent_get_input(n->s_bev), early) ==
	    -1 || (evbuffer_get_length(unsent) > 0 &&
	    (bufferevent_enable(n->s_bev, EV_WRITE) == -1 ||
	    bufferevent_write_buffer(n->s_bev, unsent) == -1))) {
		session_close(n, CLOSE_NO_MEMORY);
		goto done;
	}
	log_debug("session %llu: the client's next request is session %llu",
	    (unsigned long long)s->s_id, (unsigned long long)n->s_id);
	/* A request that came already is read on the next loop turn. */
	if (evbuffer_get_length(bufferevent_get_input(n->s_bev)) > 0)
		bufferevent_trigger(n->s_bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
done:
	if (early != NULL) {
		wipe_drain(early, evbuffer_get_length(early));
		evbuffer_free(early);
	}
	if (unsent != NULL)
		evbuffer_free(unsent);
}
