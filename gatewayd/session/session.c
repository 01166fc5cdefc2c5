/*
 * session.c: the session core, one client connection from accept to close.
 *
 * DESIGN. A session's protocol front end (struct front, set at accept:
 * front/front_socks.c) reads the handshake and either waits for more
 * bytes, moves to the next state, or refuses; a request ends in
 * session_begin(), and from there (policy, DNS, connect, relay, limits,
 * audit) every protocol is the same. The core speaks in SOCKS5 REP codes
 * and the front end writes each reply in its protocol (fe_reply), so
 * nothing here knows a protocol's bytes. The handshake is bounded in size
 * (a read watermark of a little more than the largest message) and in
 * time (an absolute deadline set at accept, so a client that dribbles one
 * byte at a time is closed like one that sends nothing). Every path ends in
 * session_close(), which releases everything but the struct itself; the
 * struct is freed from the worker's reap event, after every callback that
 * might still hold it has returned (tmux's deferred free).
 *
 * A refusal is written, the write side shut down, and the input drained
 * for a moment before the close ("lingering close"): closing a socket with
 * unread input makes the kernel send RST, which can destroy the reply
 * before the client reads it.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "log.h"
#include "policy.h"
#include "socks5.h"
#include "stat.h"

#include "account/account.h"
#include "authd/auth.h"
#include "base/bev.h"
#include "base/clock.h"
#include "base/stats.h"
#include "base/wipe.h"
#include "proxy/worker.h"
#include "relay/relay.h"

#include "phases.h"
#include "session.h"

/* How long a refused client gets to read its reply before the close. */
#define SESSION_LINGER_MS		2000

_Atomic unsigned	 gw_nsessions;

static void	session_refusal_flushed(struct bufferevent *, void *);
static void	session_wipe_input(struct session *);

const char *
session_state_name(enum session_state state)
{
	static const char *const names[] = {
		"greeting", "auth", "request", "resolving", "connecting",
		"binding", "udp", "relay", "replying", "closed"
	};

	return (names[state]);
}

/*
 * Every change of a session's state comes here (the -v transition log);
 * only a new session's first state is set as it is made.
 */
void
session_set_state(struct session *s, enum session_state state)
{
	if (log_debug_enabled())
		log_debug("session %llu: %s -> %s",
		    (unsigned long long)s->s_id, session_state_name(s->s_state),
		    session_state_name(state));
	s->s_state = state;
}

/*
 * Writes a handshake message (BIND's first reply too); an empty one is a
 * failure. A fresh socket takes a few bytes at once, so they are sent
 * right away rather than a loop turn later; what the socket does not take
 * waits in the bufferevent. A layered client (SOCKS5 GSSAPI) has every
 * byte wrapped by its filter: never straight to the socket.
 */
int
session_reply(struct session *s, const void *buf, size_t len)
{
	ssize_t	 n = 0;

	/* A front end that could not write its reply (fe_reply gave 0). */
	if (len == 0)
		return (-1);
	if (bufferevent_get_underlying(s->s_bev) == NULL &&
	    evbuffer_get_length(bufferevent_get_output(s->s_bev)) == 0) {
		n = send(s->s_fd[SIDE_CLIENT], buf, len, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (n == -1)
			n = 0;	/* the bufferevent will meet the error */
	}
	if ((size_t)n == len)
		return (0);
	if (bufferevent_enable(s->s_bev, EV_WRITE) == -1)
		return (-1);
	return (bufferevent_write(s->s_bev, (const uint8_t *)buf + n,
	    len - (size_t)n));
}

/* The client's bytes, to the handler of the session's state. */
void
session_client_read(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	enum step	 step;

	(void)bev;
	do {
		switch (s->s_state) {
		case S_GREETING:
		case S_REQUEST:
			step = s->s_front->fe_read(s);
			break;
		case S_AUTH:
			/* Whatever comes while authd checks waits for it. */
			step = s->s_authing ? STEP_WAIT :
			    s->s_front->fe_read(s);
			break;
		case S_UDP:
		case S_REPLYING:
			/* UDP's control connection carries nothing; lingering:
			 * what the client still sends is dropped. */
			session_wipe_input(s);
			step = STEP_WAIT;
			break;
		default:
			/*
			 * Resolving or connecting: bytes the client sends
			 * early stay buffered (up to the watermark) and are
			 * relayed once the remote side is connected.
			 */
			step = STEP_WAIT;
			break;
		}
	} while (step == STEP_NEXT);
}

void
session_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF) {
		if (s->s_state == S_REPLYING)
			session_close(s, CLOSE_REFUSED);
		else if (s->s_state == S_UDP || s->s_state == S_RESOLVING ||
		    s->s_state == S_CONNECTING || s->s_state == S_BINDING)
			session_close(s, CLOSE_CLIENT);
		else
			session_close(s, CLOSE_CLIENT_HANDSHAKE);
	} else if (what & BEV_EVENT_ERROR) {
		s->s_errno = errno;
		session_close(s, s->s_state == S_REPLYING ? CLOSE_REFUSED :
		    CLOSE_CLIENT_HANDSHAKE_ERROR);
	}
}

/*
 * Drops what the client sent and has not been used, wiped first: in the
 * handshake it can hold a password (an RFC 1929 message cut short, or
 * one sent before a refusal), which must not outlive the session in
 * freed memory.
 */
static void
session_wipe_input(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->s_bev);

	/* Early bytes too: behind a forwarded HTTP request may be another,
	 * credentials and all. */
	wipe_drain(in, evbuffer_get_length(in));
}

/*
 * The session relays (or ends): it no longer counts as one of its
 * client's silent sockets. Until then it does, whether it is in its
 * handshake, resolving, connecting, waiting for a BIND peer, or a UDP
 * association without a datagram yet.
 */
void
session_active(struct session *s)
{
	if (!s->s_pending)
		return;
	s->s_pending = 0;
	pending_leave(&s->s_peer);
}

/* A parsed request, SOCKS5 or 4: admission, policy, then DNS or connect. */
enum step
session_begin(struct session *s, uint8_t cmd, const char *name,
    const struct sockaddr_storage *addr, uint16_t port, const char *ident)
{
	enum limit_verdict limit;

	s->s_cmd = cmd;
	s->s_dst_port = port;
	STAT_ADD(s->s_proto == AUDIT_PROTO_HTTP ? GW_STAT_REQ_HTTP :
	    s->s_proto == AUDIT_PROTO_SOCKS4 ? GW_STAT_REQ_SOCKS4 :
	    GW_STAT_REQ_SOCKS5, 1);
	if (ident != NULL && ident[0] != '\0')
		s->s_ident = strdup(ident);
	if (!audit_admit(s)) {
		/* audit_failure block: no session the log cannot record. */
		STAT_ADD(GW_STAT_AUDIT_REFUSED, 1);
		session_refuse(s, S5_REP_GENERAL_FAILURE, "audit unavailable");
		return (STEP_STOP);
	}
	if ((limit = limits_admit(s)) != LIMIT_OK) {
		if (limit == LIMIT_SESSIONS)
			STAT_ADD(GW_STAT_LIMIT_SESSIONS, 1);
		else if (limit == LIMIT_RATE)
			STAT_ADD(GW_STAT_LIMIT_RATE, 1);
		session_refuse(s, S5_REP_NOT_ALLOWED, limit_text[limit]);
		return (STEP_STOP);
	}
	switch (quota_admit(s)) {
	case -1:
		STAT_ADD(GW_STAT_LIMIT_QUOTA, 1);
		session_refuse(s, S5_REP_NOT_ALLOWED, "limit: quota");
		return (STEP_STOP);
	case -2:
		session_refuse(s, S5_REP_GENERAL_FAILURE, "out of memory");
		return (STEP_STOP);
	}
	if (cmd == S5_CMD_UDP_ASSOCIATE)
		return (udp_begin(s, name, addr));
	if (name != NULL) {
		if ((s->s_dst_name = strdup(name)) == NULL) {
			session_refuse(s, S5_REP_GENERAL_FAILURE,
			    "out of memory");
			return (STEP_STOP);
		}
	} else {
		memcpy(&s->s_dst, addr, sizeof(s->s_dst));
		addr_unmap(&s->s_dst);
	}

	if (s->s_over_limit) {
		session_refuse(s, S5_REP_GENERAL_FAILURE,
		    "max_sessions reached");
		return (STEP_STOP);
	}

	if (s->s_dst_name != NULL) {
		/* A name denied as such is never resolved. */
		if (verdict_name(s) == 0)
			resolve_start(s);
		return (STEP_STOP);
	}
	s->s_dial.d_cand = &s->s_dst;
	s->s_dial.d_ncand = 1;
	connect_next(s);
	return (STEP_STOP);
}

/*
 * Refuses with outcome rep (a SOCKS5 REP code: the front end says it in
 * the client's protocol), then closes after a linger.
 */
void
session_refuse(struct session *s, uint8_t rep, const char *why)
{
	uint8_t	 reply[FRONT_REPLY_MAX];

	/* A refusal never reads as success, whatever a caller passed. */
	if (rep == S5_REP_SUCCEEDED)
		rep = S5_REP_GENERAL_FAILURE;
	s->s_refusal = why;	/* the front end may say it */
	session_refuse_bytes(s, reply, s->s_front->fe_reply(s, rep, NULL,
	    reply, sizeof(reply)), why);
}

void
session_refuse_bytes(struct session *s, const uint8_t *bytes, size_t len,
    const char *why)
{
	struct bufferevent	*bev = s->s_bev;

	log_debug("session %llu: refused: %s", (unsigned long long)s->s_id,
	    why);
	s->s_refusal = why;
	resolve_cancel(s);
	bind_cancel(s);
	connect_cancel(s);
	session_set_state(s, S_REPLYING);
	s->s_deadline = s->s_worker->w_now + SESSION_LINGER_MS;
	bufferevent_setcb(bev, session_client_read, session_refusal_flushed,
	    session_client_event, s);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (session_reply(s, bytes, len) == -1) {
		session_close(s, CLOSE_REFUSED);
		return;
	}
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* Sent at once: the write callback will not come. */
	session_refusal_flushed(bev, s);
}

/* The refusal has left: half-close and wait for the client's EOF. */
static void
session_refusal_flushed(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if (bev_unsent(bev) > 0)
		return;
	if (!s->s_client_shut) {
		s->s_client_shut = 1;
		shutdown(s->s_fd[SIDE_CLIENT], SHUT_WR);
	}
}

/*
 * The remote side is connected (s_fd[SIDE_REMOTE]): tell the client, hand
 * both sockets to the relay, and let the handshake's bufferevent go. Bytes
 * it still holds (early client data, an unsent part of the reply) are
 * queued in order in the relay.
 */
void
session_connected(struct session *s, const struct sockaddr *peer)
{
	struct sockaddr_storage	 bnd;
	socklen_t		 len = sizeof(bnd);
	uint8_t			 reply[FRONT_REPLY_MAX];
	struct evbuffer		*in, *out;
	size_t			 early;
	int			 one = 1, paid;

	setsockopt(s->s_fd[SIDE_REMOTE], IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
	/* CONNECT: our end; BIND's second reply: the peer that came. */
	if (peer != NULL)
		memcpy(&bnd, peer, addr_len(peer));
	else if (getsockname(s->s_fd[SIDE_REMOTE], (struct sockaddr *)&bnd,
	    &len) == -1)
		memset(&bnd, 0, sizeof(bnd));
	addr_unmap(&bnd);
	if ((s->s_front->fe_connected != NULL ? s->s_front->fe_connected(s) :
	    session_reply(s, reply, s->s_front->fe_reply(s, S5_REP_SUCCEEDED,
	    (struct sockaddr *)&bnd, reply, sizeof(reply)))) == -1 ||
	    relay_start(s) == -1) {
		session_close(s, s->s_errno == EPROTO ? CLOSE_CLIENT_ERROR :
		    CLOSE_NO_MEMORY);
		return;
	}
	session_set_state(s, S_RELAY);
	session_active(s);
	session_observe_handshake(s);
	session_audit(s, AR_START, NULL);
	if (s->s_bev == NULL) {
		/* A layered client, taken over by the relay, early bytes too. */
		relay_early(s);
		return;
	}
	in = bufferevent_get_input(s->s_bev);
	out = bufferevent_get_output(s->s_bev);
	/*
	 * What the bufferevent has not written yet (a kept HTTP connection:
	 * the rest of the previous response) moves to the relay, ahead of
	 * anything else. A bufferevent keeps its output's start to itself
	 * (frozen); it is freed below, so the relay takes it over.
	 */
	evbuffer_unfreeze(out, 1);
	early = evbuffer_get_length(in);
	if ((paid = quota_take_all(s, early)) == -1 ||
	    relay_queue(s, SIDE_CLIENT, out) == -1 ||
	    relay_queue(s, SIDE_REMOTE, in) == -1) {
		session_close(s, paid == -1 ? CLOSE_QUOTA : CLOSE_NO_MEMORY);
		return;
	}
	s->s_bytes[SIDE_CLIENT] += early;
	bufferevent_free(s->s_bev);
	s->s_bev = NULL;
}

/* Called by the worker's sweep when s->s_deadline has passed. */
void
session_timeout(struct session *s)
{
	switch (s->s_state) {
	case S_GREETING:
	case S_AUTH:
	case S_REQUEST:
		session_close(s, CLOSE_HANDSHAKE_TIMEOUT);
		break;
	case S_RESOLVING:
		session_refuse(s, S5_REP_HOST_UNREACHABLE, "DNS timeout");
		break;
	case S_BINDING:
		session_refuse(s, S5_REP_TTL_EXPIRED, "bind: no peer came");
		break;
	case S_CONNECTING:
		/* This address took too long: try the next one. */
		connect_cancel(s);
		s->s_rep = S5_REP_TTL_EXPIRED;
		s->s_refusal = "connect timeout";
		s->s_errno = 0;
		connect_next(s);
		break;
	case S_RELAY:
	case S_UDP:
		session_close(s, CLOSE_IDLE);
		break;
	case S_REPLYING:
		session_close(s, CLOSE_REFUSED);
		break;
	case S_CLOSED:
		break;
	}
}

static void	session_end(struct session *, enum close_reason, const char *);

void
session_close(struct session *s, enum close_reason why)
{
	session_end(s, why, why == CLOSE_REFUSED && s->s_refusal != NULL ?
	    s->s_refusal : close_reason_text[why]);
}

/* From the control socket: admin (sanitised there) ended it. */
void
session_kill(struct session *s, const char *admin)
{
	char	 text[160];

	snprintf(text, sizeof(text), "%s %s", close_reason_text[CLOSE_KILLED],
	    admin);
	session_end(s, CLOSE_KILLED, text);
}

/* The one close path: logs once, releases everything, frees later. */
static void
session_end(struct session *s, enum close_reason why, const char *reason)
{
	struct worker	*w = s->s_worker;
	int		 i;

	if (s->s_state == S_CLOSED)
		return;
	/* Its client's connection carries on (HTTP keep-alive), bytes too. */
	if (why == CLOSE_KEEPALIVE)
		session_next(s);
	session_active(s);
	/* Bytes still buffered will not be relayed: not counted as such. */
	relay_settle(s);
	/* The audit log has the same; journald need not hold it twice. */
	if (w->w_conf->c_log_sessions)
		session_log_close(s, reason);
	session_observe_handshake(s);
	stat_rule(s->s_rule_id);
	if (s->s_cmd != 0)
		STAT_ADD(s->s_allowed ? GW_STAT_ALLOW : GW_STAT_DENY, 1);
	if (s->s_allowed && why == CLOSE_QUOTA)
		STAT_ADD(GW_STAT_QUOTA_CLOSED, 1);
	STAT_ADD(GW_STAT_BYTES_UP, s->s_bytes[SIDE_CLIENT]);
	STAT_ADD(GW_STAT_BYTES_DOWN, s->s_bytes[SIDE_REMOTE]);
	if (s->s_cmd != 0)
		session_audit(s, s->s_audit_open ? AR_END : AR_WHOLE,
		    reason);
	audit_release(s);
	limits_release(s);
	quota_release(s);
	account_detach(s);
	auth_forget(s);
	resolve_cancel(s);
	bind_cancel(s);
	connect_cancel(s);
	if (s->s_bev != NULL) {
		session_wipe_input(s);
		bev_free(s->s_bev);
		s->s_bev = NULL;
	}
	relay_free(s);
	udp_free(s);
	for (i = 0; i < 2; i++) {
		if (s->s_fd[i] != -1) {
			close(s->s_fd[i]);
			s->s_fd[i] = -1;
		}
	}
	session_set_state(s, S_CLOSED);
	TAILQ_REMOVE(&w->w_sessions, s, s_entry);
	w->w_nsessions--;
	atomic_fetch_sub(&gw_nsessions, 1);
	TAILQ_INSERT_TAIL(&w->w_closed, s, s_entry);
	event_active(w->w_reap, EV_TIMEOUT, 0);
}

/* Frees the sessions closed since the last call; from the reap event. */
void
session_reap(struct worker *w)
{
	struct session	*s;

	while ((s = TAILQ_FIRST(&w->w_closed)) != NULL) {
		TAILQ_REMOVE(&w->w_closed, s, s_entry);
		if (s->s_dial.d_cand != &s->s_dst)
			free(s->s_dial.d_cand);
		free(s->s_dst_name);
		free(s->s_reached);
		if (s->s_fe != NULL && s->s_front->fe_free != NULL)
			s->s_front->fe_free(s);
		free(s->s_fe);
		free(s->s_reason);
		free(s->s_user);
		free(s->s_ident);
		while (s->s_ngroups > 0)
			free(s->s_groups[--s->s_ngroups]);
		free(s->s_groups);
		policy_unref(s->s_policy);
		free(s);
	}
}
