/*
 * relay.c: moving bytes between the client and the remote side.
 *
 * DESIGN. The relay works on the two sockets directly, with one read and
 * one write event per socket, because the common case is cheap that way:
 * what is read from one side is written to the other at once, from the
 * worker's scratch buffer, with no event to arm and no copy kept. Only
 * when the receiver cannot take everything is the rest kept in an evbuffer
 * (libevent's buffering); then reading from the sender stops until the
 * receiver's write event has drained it. So a direction holds at most one
 * read's worth of memory (relay_buffer), and an idle session holds none.
 * (bufferevents, used for the handshake, arm and disarm a write event for
 * every message, which costs two epoll_ctl calls and a loop turn each.)
 *
 * There is no splice(2) path: through a pipe of its own per direction it
 * cost two descriptors and a third relay branch, and bench/splice.sh
 * (at the commit that added it) measured it no faster than copying on
 * this machine: 1 stream 1,517 and 1,251 MB/s against 1,407 and 1,398;
 * 4 streams 1,722 and 1,568 against 1,907 and 1,582 (medians, two runs).
 *
 * An EOF from one side is passed on as shutdown(SHUT_WR) to the other once
 * everything before it has been written, so half-closed protocols work.
 * The session ends when both directions have ended this way.
 *
 * A front end may frame what the client sends (fe_relay_client: HTTP
 * forwarding, one request per connection): what the client sends after
 * its message is read and dropped, never sent on (a second request in the
 * same bytes was never judged), and the client's EOF is passed on as
 * ever: the session ends when the server has answered and closed and the
 * client has closed too, or failed. Such a front end also rebuilds the
 * server's head (fe_relay_remote) before the rest of its bytes are relayed
 * as they come.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"

#include "account/account.h"
#include "proxy/worker.h"
#include "session/session.h"

#include "relay.h"

/* Reads per readiness callback: bounded so one busy session cannot starve
 * the others on the worker. */
#define RELAY_READS_PER_EVENT	4

struct relay_dir {
	struct evbuffer	*rd_buf;	/* bytes waiting for the receiver */
	uint8_t		 rd_eof;	/* the sender ended */
	uint8_t		 rd_shut;	/* SHUT_WR sent to the receiver */
	uint8_t		 rd_blocked;	/* waiting for the receiver */
	uint8_t		 rd_heading;	/* the front end wants the head */
	struct evbuffer	*rd_head;	/* the head so far */
};

struct relay {
	struct event	*r_read[2];	/* side i is readable */
	struct event	*r_write[2];	/* side i is writable */
	struct relay_dir r_dir[2];	/* from side i to side !i */
};

static relay_end_cb	*relay_ended;

void
relay_set_end(relay_end_cb *cb)
{
	relay_ended = cb;
}

/* The relay of s is over: the session core closes it. */
void
relay_end(struct session *s, enum close_reason why)
{
	if (relay_ended == NULL)
		fatalx("relay_end: no relay_set_end() before the workers");
	relay_ended(s, why);
}

/* What one read of a direction came to (relay_copy_once). */
enum relay_step {
	RELAY_MOVED,		/* bytes read and written on (or queued) */
	RELAY_EOF,		/* the sender ended */
	RELAY_AGAIN,		/* nothing to read now */
	RELAY_READ_FAILED,	/* the sender's error */
	RELAY_WRITE_FAILED,	/* the receiver's error */
	RELAY_NO_MEMORY,
	RELAY_QUOTA_USED,	/* the user's quota ended inside this read */
	RELAY_DROPPED,		/* past the client's message: not relayed */
	RELAY_DONE,		/* the server's response is complete */
};

static void	relay_readable(evutil_socket_t, short, void *);
static void	relay_writable(evutil_socket_t, short, void *);

/*
 * n bytes from the client, through its front end's framing: how many go
 * on (the first ones; the rest are past its message), -1 (errno EPROTO)
 * when they break the framing. Without front-end state, all of them.
 */
long
relay_framed(struct session *s, const uint8_t *p, size_t n)
{
	long	 k;

	if (s->s_fe == NULL)
		return ((long)n);
	if ((k = s->s_front->fe_relay_client(s, p, n)) < 0)
		errno = EPROTO;
	return (k);
}

int
relay_start(struct session *s)
{
	struct worker	*w = s->s_worker;
	struct relay	*r;
	int		 i;

	/* A capped session goes through libevent's rate-limit groups. */
	switch (bandwidth_join(s)) {
	case -1:
		return (-1);
	case 1:
		return (capped_start(s));
	}
	/* A layered client (SOCKS5 GSSAPI) is bufferevents all the way. */
	if (s->s_bev != NULL && bufferevent_get_underlying(s->s_bev) != NULL)
		return (capped_start(s));
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return (-1);
	s->s_relay = r;
	for (i = 0; i < 2; i++) {
		r->r_read[i] = event_new(w->w_base, s->s_fd[i],
		    EV_READ | EV_PERSIST, relay_readable, s);
		r->r_write[i] = event_new(w->w_base, s->s_fd[i],
		    EV_WRITE | EV_PERSIST, relay_writable, s);
		if (r->r_read[i] == NULL || r->r_write[i] == NULL)
			return (-1);
	}
	s->s_active = w->w_now;
	r->r_dir[SIDE_REMOTE].rd_heading = s->s_fe != NULL &&
	    s->s_front->fe_relay_remote != NULL;
	for (i = 0; i < 2; i++)
		if (event_add(r->r_read[i], NULL) == -1)
			return (-1);
	return (0);
}

/*
 * Bytes owed to side `to` from before the relay started (the rest of a
 * reply, or data the client sent early): queued in order, flushed when the
 * socket is writable.
 */
int
relay_queue(struct session *s, int to, struct evbuffer *data)
{
	struct relay_dir	*d;

	if (evbuffer_get_length(data) == 0)
		return (0);
	if (s->s_capped != NULL)
		return (capped_queue(s, to, data));
	d = &s->s_relay->r_dir[!to];
	if (d->rd_buf == NULL && (d->rd_buf = evbuffer_new()) == NULL)
		return (-1);
	if (evbuffer_add_buffer(d->rd_buf, data) == -1)
		return (-1);
	d->rd_blocked = 1;
	event_del(s->s_relay->r_read[!to]);
	return (event_add(s->s_relay->r_write[to], NULL));
}

/* The raw relay's own state (events, buffers). */
static void
relay_free_raw(struct session *s)
{
	struct relay	*r = s->s_relay;
	int		 i;

	if (r == NULL)
		return;
	for (i = 0; i < 2; i++) {
		if (r->r_read[i] != NULL)
			event_free(r->r_read[i]);
		if (r->r_write[i] != NULL)
			event_free(r->r_write[i]);
		if (r->r_dir[i].rd_buf != NULL)
			evbuffer_free(r->r_dir[i].rd_buf);
		if (r->r_dir[i].rd_head != NULL)
			evbuffer_free(r->r_dir[i].rd_head);
	}
	free(r);
	s->s_relay = NULL;
}

/*
 * n bytes read from side `from` will not reach the other side after all
 * (the session closes with them buffered): off the byte counts the audit
 * keeps, and back to the quota that counted them.
 */
void
relay_uncount(struct session *s, int from, size_t n)
{
	if (n > s->s_bytes[from])
		n = (size_t)s->s_bytes[from];	/* not all were counted */
	s->s_bytes[from] -= n;
	quota_unspend(s, n);
}

/* The session is closing: what waits in either direction is dropped. */
void
relay_settle(struct session *s)
{
	struct relay	*r = s->s_relay;
	int		 i;

	if (s->s_capped != NULL) {
		capped_settle(s);
		return;
	}
	if (r == NULL)
		return;
	for (i = 0; i < 2; i++)
		if (r->r_dir[i].rd_buf != NULL)
			relay_uncount(s, i,
			    evbuffer_get_length(r->r_dir[i].rd_buf));
}

/*
 * The user's quota is used up (the sweep saw it): a capped session
 * drains what it counted, a raw one closes (it holds at most what the
 * receiver could not take, which is not counted: relay_settle()).
 */
void
relay_quota_end(struct session *s, int64_t now)
{
	if (s->s_capped != NULL)
		capped_quota_end(s, now);
	else
		relay_end(s, CLOSE_QUOTA);
}

void
relay_free(struct session *s)
{
	capped_free(s);
	bandwidth_leave(s);
	relay_free_raw(s);
}

/*
 * Bytes read from the server and counted that still wait for the client,
 * moved to dst in order: its connection carries on in another session
 * (session_next), which sends them first.
 */
int
relay_unsent_client(struct session *s, struct evbuffer *dst)
{
	struct evbuffer	*b = NULL;

	if (s->s_capped != NULL)
		return (capped_unsent_client(s, dst));
	if (s->s_relay != NULL)
		b = s->s_relay->r_dir[SIDE_REMOTE].rd_buf;
	return (b == NULL ? 0 : evbuffer_add_buffer(dst, b));
}

/*
 * A reload changed the session's bandwidth pools (bandwidth_recheck()):
 * a capped relay moves its bufferevents between groups; a raw relay that
 * now has a cap becomes a capped relay, with what waits in either
 * direction carried over in order. A session with a half-close stays as
 * it is: it is ending.
 */
void
relay_repool(struct session *s, struct bw_pool *old[2])
{
	struct relay		*r = s->s_relay;
	struct evbuffer		*waiting[2] = { NULL, NULL };
	int			 i;

	if (s->s_capped != NULL) {
		capped_repool(s, old);
		return;
	}
	if (r == NULL || (s->s_bw[0] == NULL && s->s_bw[1] == NULL))
		return;
	for (i = 0; i < 2; i++)
		if (r->r_dir[i].rd_eof || r->r_dir[i].rd_shut)
			return;
	for (i = 0; i < 2; i++) {
		waiting[i] = r->r_dir[i].rd_buf;
		r->r_dir[i].rd_buf = NULL;
	}
	relay_free_raw(s);
	if (capped_start(s) == -1 ||
	    (waiting[0] != NULL && capped_queue(s, SIDE_REMOTE,
	    waiting[0]) == -1) ||
	    (waiting[1] != NULL && capped_queue(s, SIDE_CLIENT,
	    waiting[1]) == -1)) {
		/* What did not move into the new relay is dropped. */
		for (i = 0; i < 2; i++)
			if (waiting[i] != NULL)
				relay_uncount(s, i,
				    evbuffer_get_length(waiting[i]));
		relay_end(s, CLOSE_NO_MEMORY);
	} else
		log_debug("session %llu: now under a bandwidth cap",
		    (unsigned long long)s->s_id);
	for (i = 0; i < 2; i++)
		if (waiting[i] != NULL)
			evbuffer_free(waiting[i]);
}

static void
relay_fail(struct session *s, int side)
{
	s->s_errno = errno;
	relay_end(s, side == SIDE_CLIENT ? CLOSE_CLIENT_ERROR : CLOSE_REMOTE_ERROR);
}

/* Both directions ended: the session is done. */
static void
relay_check_done(struct session *s)
{
	struct relay	*r = s->s_relay;

	if (r->r_dir[0].rd_shut && r->r_dir[1].rd_shut)
		relay_end(s, s->s_first_eof == 1 + SIDE_CLIENT ?
		    CLOSE_CLIENT : CLOSE_REMOTE);
}

/* The sender `from` ended and everything before is out: pass EOF on. */
static void
relay_pass_eof(struct session *s, int from)
{
	struct relay_dir	*d = &s->s_relay->r_dir[from];

	if (d->rd_shut)
		return;
	d->rd_shut = 1;
	shutdown(s->s_fd[!from], SHUT_WR);
	relay_check_done(s);
}

/*
 * Writes what waits for side `to`. Returns 1 when everything is out, 0 when
 * the socket is full, -1 on error (errno set).
 */
static int
relay_flush(struct session *s, int to)
{
	struct relay_dir	*d = &s->s_relay->r_dir[!to];
	ssize_t			 n;

	if (d->rd_buf != NULL && evbuffer_get_length(d->rd_buf) > 0) {
		n = evbuffer_write(d->rd_buf, s->s_fd[to]);
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return (-1);
		if (evbuffer_get_length(d->rd_buf) > 0)
			return (0);
	}
	return (1);
}

/* The receiver could not take everything: wait for it, stop reading. */
static void
relay_block(struct session *s, int from)
{
	struct relay	*r = s->s_relay;

	r->r_dir[from].rd_blocked = 1;
	event_del(r->r_read[from]);
	event_add(r->r_write[!from], NULL);
}

/*
 * n bytes of the server's head, read into the scratch buffer: the front
 * end rebuilds it (fe_relay_remote); what the client gets waits in the
 * direction's buffer and is flushed as any other.
 */
static enum relay_step
relay_head(struct session *s, struct relay_dir *d, int from, size_t n)
{
	size_t	 allowed;
	int	 r;

	if ((allowed = quota_take(s, n)) < n) {
		quota_unspend(s, allowed);
		return (RELAY_QUOTA_USED);
	}
	if ((d->rd_head == NULL && (d->rd_head = evbuffer_new()) == NULL) ||
	    (d->rd_buf == NULL && (d->rd_buf = evbuffer_new()) == NULL) ||
	    evbuffer_add(d->rd_head, s->s_worker->w_scratch, n) == -1)
		return (RELAY_NO_MEMORY);
	if ((r = s->s_front->fe_relay_remote(s, d->rd_head, d->rd_buf)) < 0) {
		errno = EPROTO;
		return (RELAY_READ_FAILED);
	}
	/*
	 * Complete: what waits for the client goes with its next session;
	 * or, the client having ended its side, the server's part is over
	 * as if it had closed (nothing more of it passes).
	 */
	if (r == 2 && !s->s_relay->r_dir[SIDE_CLIENT].rd_eof)
		return (RELAY_DONE);
	if (r == 2) {
		s->s_bytes[from] += n;	/* read, as RELAY_MOVED counts */
		if (evbuffer_get_length(d->rd_buf) > 0)
			relay_block(s, from);
		return (RELAY_EOF);
	}
	if (r == 1) {
		d->rd_heading = 0;
		evbuffer_free(d->rd_head);
		d->rd_head = NULL;
	}
	if (evbuffer_get_length(d->rd_buf) > 0)
		relay_block(s, from);
	return (RELAY_MOVED);
}

/*
 * One read into the worker's scratch buffer, written on at once; what the
 * receiver cannot take waits in the direction's buffer. *moved is what
 * was read.
 */
static enum relay_step
relay_copy_once(struct session *s, int from, size_t *moved)
{
	struct worker		*w = s->s_worker;
	struct relay_dir	*d = &s->s_relay->r_dir[from];
	ssize_t			 n, sent;
	size_t			 allowed;
	long			 k;

	n = read(s->s_fd[from], w->w_scratch, w->w_scratch_len);
	if (n == 0)
		return (RELAY_EOF);
	if (n == -1)
		return (errno == EAGAIN || errno == EINTR ? RELAY_AGAIN :
		    RELAY_READ_FAILED);
	if (d->rd_heading) {
		*moved = (size_t)n;
		return (relay_head(s, d, from, (size_t)n));
	}
	if (from == SIDE_CLIENT && s->s_fe != NULL) {
		if ((k = relay_framed(s, w->w_scratch, (size_t)n)) < 0)
			return (RELAY_READ_FAILED);
		/* Past the client's message: dropped, and wiped (it may be
		 * a request with its credentials). */
		explicit_bzero(w->w_scratch + k, (size_t)(n - k));
		if ((n = k) == 0) {
			*moved = 0;
			return (RELAY_DROPPED);
		}
	}
	if ((allowed = quota_take(s, (size_t)n)) < (size_t)n) {
		/* The quota ends inside this read: relay up to it, stop.
		 * What the socket does not take is not counted. */
		sent = allowed > 0 ? send(s->s_fd[!from], w->w_scratch,
		    allowed, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
		if (sent < 0)
			sent = 0;
		s->s_bytes[from] += (uint64_t)sent;
		quota_unspend(s, allowed - (size_t)sent);
		return (RELAY_QUOTA_USED);
	}
	sent = send(s->s_fd[!from], w->w_scratch, (size_t)n,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sent == -1) {
		if (errno != EAGAIN && errno != EINTR)
			return (RELAY_WRITE_FAILED);
		sent = 0;
	}
	if (sent < n) {
		if (d->rd_buf == NULL && (d->rd_buf = evbuffer_new()) == NULL)
			return (RELAY_NO_MEMORY);
		if (evbuffer_add(d->rd_buf, w->w_scratch + sent,
		    (size_t)(n - sent)) == -1)
			return (RELAY_NO_MEMORY);
		relay_block(s, from);
	}
	*moved = (size_t)n;
	return (RELAY_MOVED);
}

static void
relay_readable(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	int			 from = fd == s->s_fd[SIDE_CLIENT] ?
				    SIDE_CLIENT : SIDE_REMOTE;
	struct relay_dir	*d = &s->s_relay->r_dir[from];
	size_t			 n = 0;
	int64_t			 was = s->s_active;
	int			 i;

	(void)what;
	s->s_active = s->s_worker->w_now;
	for (i = 0; i < RELAY_READS_PER_EVENT && !d->rd_blocked; i++) {
		switch (relay_copy_once(s, from, &n)) {
		case RELAY_MOVED:
			s->s_bytes[from] += (uint64_t)n;
			/* A short read most likely emptied the socket. */
			if (n < s->s_worker->w_scratch_len)
				return;
			continue;
		case RELAY_EOF:
			/* No more reading from this side. */
			d->rd_eof = 1;
			if (s->s_first_eof == 0)
				s->s_first_eof = 1 + from;
			event_del(s->s_relay->r_read[from]);
			if (!d->rd_blocked)
				relay_pass_eof(s, from);
			return;
		case RELAY_AGAIN:
			return;
		case RELAY_DROPPED:
			/* Not activity: it would keep a session from idling. */
			s->s_active = was;
			return;
		case RELAY_NO_MEMORY:
			relay_end(s, CLOSE_NO_MEMORY);
			return;
		case RELAY_QUOTA_USED:
			relay_end(s, CLOSE_QUOTA);
			return;
		case RELAY_DONE:
			s->s_bytes[from] += (uint64_t)n;
			relay_end(s, CLOSE_KEEPALIVE);
			return;
		case RELAY_READ_FAILED:		/* the sender's */
			relay_fail(s, from);
			return;
		case RELAY_WRITE_FAILED:	/* the receiver's */
			relay_fail(s, !from);
			return;
		}
	}
}

static void
relay_writable(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	int			 to = fd == s->s_fd[SIDE_CLIENT] ?
				    SIDE_CLIENT : SIDE_REMOTE;
	struct relay_dir	*d = &s->s_relay->r_dir[!to];
	int			 r;

	(void)what;
	if ((r = relay_flush(s, to)) == -1) {
		relay_fail(s, to);
		return;
	}
	if (r == 0)
		return;
	event_del(s->s_relay->r_write[to]);
	d->rd_blocked = 0;
	if (d->rd_eof)
		relay_pass_eof(s, !to);
	else
		event_add(s->s_relay->r_read[!to], NULL);
}
