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
 * A direction that moves bulk data (a read filled the scratch buffer)
 * switches to splice(2) through a pipe of its own: the bytes then go from
 * socket to socket inside the kernel without being copied through the
 * gateway. Pipes cost two descriptors each, so at most splice_max
 * directions use one at a time; the others keep copying.
 *
 * An EOF from one side is passed on as shutdown(SHUT_WR) to the other once
 * everything before it has been written, so half-closed protocols work.
 * The session ends when both directions have ended this way.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "gatewayd.h"

/* Reads per readiness callback: bounded so one busy session cannot starve
 * the others on the worker. */
#define RELAY_READS_PER_EVENT	4

struct relay_dir {
	struct evbuffer	*rd_buf;	/* bytes waiting for the receiver */
	int		 rd_pipe[2];	/* splice: -1 until bulk is seen */
	size_t		 rd_pipe_cap;	/* what the pipe holds */
	size_t		 rd_piped;	/* bytes in the pipe */
	uint8_t		 rd_eof;	/* the sender ended */
	uint8_t		 rd_shut;	/* SHUT_WR sent to the receiver */
	uint8_t		 rd_blocked;	/* waiting for the receiver */
};

struct relay {
	struct event	*r_read[2];	/* side i is readable */
	struct event	*r_write[2];	/* side i is writable */
	struct relay_dir r_dir[2];	/* from side i to side !i */
};

_Atomic int	 relay_pipes;		/* pipes open, all workers */

static void	relay_readable(evutil_socket_t, short, void *);
static void	relay_writable(evutil_socket_t, short, void *);

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
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return (-1);
	s->s_relay = r;
	for (i = 0; i < 2; i++) {
		r->r_dir[i].rd_pipe[0] = r->r_dir[i].rd_pipe[1] = -1;
		r->r_read[i] = event_new(w->w_base, s->s_fd[i],
		    EV_READ | EV_PERSIST, relay_readable, s);
		r->r_write[i] = event_new(w->w_base, s->s_fd[i],
		    EV_WRITE | EV_PERSIST, relay_writable, s);
		if (r->r_read[i] == NULL || r->r_write[i] == NULL)
			return (-1);
	}
	s->s_active = w->w_now;
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

/* The raw relay's own state (events, buffers, pipes). */
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
		if (r->r_dir[i].rd_pipe[0] != -1) {
			close(r->r_dir[i].rd_pipe[0]);
			close(r->r_dir[i].rd_pipe[1]);
			atomic_fetch_sub(&relay_pipes, 1);
		}
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
		relay_uncount(s, i, r->r_dir[i].rd_piped +
		    (r->r_dir[i].rd_buf != NULL ?
		    evbuffer_get_length(r->r_dir[i].rd_buf) : 0));
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
		session_close(s, "limit: quota");
}

void
relay_free(struct session *s)
{
	capped_free(s);
	bandwidth_leave(s);
	relay_free_raw(s);
}

/*
 * A reload changed the session's bandwidth pools (bandwidth_recheck()):
 * a capped relay moves its bufferevents between groups; a raw relay that
 * now has a cap becomes a capped relay, with what waits in either
 * direction carried over in order. A session with a half-close or bytes
 * in a splice pipe stays as it is: it is ending, or would lose bytes.
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
		if (r->r_dir[i].rd_eof || r->r_dir[i].rd_shut ||
		    r->r_dir[i].rd_piped > 0)
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
		session_close(s, "out of memory");
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
	session_close(s, side == SIDE_CLIENT ? "client error" : "remote error");
}

/* Both directions ended: the session is done. */
static void
relay_check_done(struct session *s)
{
	struct relay	*r = s->s_relay;

	if (r->r_dir[0].rd_shut && r->r_dir[1].rd_shut)
		session_close(s, s->s_first_eof == 1 + SIDE_CLIENT ?
		    "client closed" : "remote closed");
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
 * Switches a direction to splice once it carries bulk data, if a pipe is
 * to be had; otherwise it keeps copying, which is just slower.
 */
static void
relay_try_splice(struct session *s, struct relay_dir *d)
{
	int	 max = s->s_worker->w_conf->c_splice_max;
	int	 cap;

	/* A quota counts bytes as they pass: they must pass through here. */
	if (d->rd_pipe[0] != -1 || max == 0 || s->s_quota != NULL)
		return;
	if (atomic_fetch_add(&relay_pipes, 1) >= max ||
	    pipe2(d->rd_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		atomic_fetch_sub(&relay_pipes, 1);
		d->rd_pipe[0] = d->rd_pipe[1] = -1;
		return;
	}
	/* As large as a copy-path read, where the kernel allows it. */
	fcntl(d->rd_pipe[1], F_SETPIPE_SZ, (int)s->s_worker->w_scratch_len);
	cap = fcntl(d->rd_pipe[1], F_GETPIPE_SZ);
	d->rd_pipe_cap = cap > 0 ? (size_t)cap : 65536;
	log_debug("session %llu: %s now spliced", (unsigned long long)s->s_id,
	    d == &s->s_relay->r_dir[SIDE_CLIENT] ? "client to remote" :
	    "remote to client");
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
	while (d->rd_piped > 0) {
		n = splice(d->rd_pipe[0], NULL, s->s_fd[to], NULL, d->rd_piped,
		    SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n == -1)
			return (errno == EAGAIN || errno == EINTR ? 0 : -1);
		d->rd_piped -= (size_t)n;
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

/* Copy path: one read into the scratch buffer, written on at once. */
static ssize_t
relay_copy_once(struct session *s, int from)
{
	struct worker		*w = s->s_worker;
	struct relay_dir	*d = &s->s_relay->r_dir[from];
	ssize_t			 n, sent;
	size_t			 allowed;

	n = read(s->s_fd[from], w->w_scratch, w->w_scratch_len);
	if (n <= 0)
		return (n);
	if (s->s_quota != NULL &&
	    (allowed = quota_take(s, (size_t)n)) < (size_t)n) {
		/* The quota ends inside this read: relay up to it, stop.
		 * What the socket does not take is not counted. */
		sent = allowed > 0 ? send(s->s_fd[!from], w->w_scratch,
		    allowed, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
		if (sent < 0)
			sent = 0;
		s->s_bytes[from] += (uint64_t)sent;
		quota_unspend(s, allowed - (size_t)sent);
		return (-4);
	}
	sent = send(s->s_fd[!from], w->w_scratch, (size_t)n,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	if (sent == -1) {
		if (errno != EAGAIN && errno != EINTR)
			return (-2);
		sent = 0;
	}
	if (sent < n) {
		if (d->rd_buf == NULL && (d->rd_buf = evbuffer_new()) == NULL)
			return (-3);
		if (evbuffer_add(d->rd_buf, w->w_scratch + sent,
		    (size_t)(n - sent)) == -1)
			return (-3);
		relay_block(s, from);
	} else if ((size_t)n == w->w_scratch_len)
		relay_try_splice(s, d);
	return (n);
}

/* Splice path: socket to pipe, pipe on to the other socket. */
static ssize_t
relay_splice_once(struct session *s, int from)
{
	struct relay_dir	*d = &s->s_relay->r_dir[from];
	ssize_t			 n;
	int			 r;

	n = splice(s->s_fd[from], NULL, d->rd_pipe[1], NULL, d->rd_pipe_cap,
	    SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	if (n <= 0)
		return (n);
	d->rd_piped += (size_t)n;
	if ((r = relay_flush(s, !from)) == -1)
		return (-2);
	if (r == 0)
		relay_block(s, from);
	return (n);
}

static void
relay_readable(evutil_socket_t fd, short what, void *arg)
{
	struct session		*s = arg;
	int			 from = fd == s->s_fd[SIDE_CLIENT] ?
				    SIDE_CLIENT : SIDE_REMOTE;
	struct relay_dir	*d = &s->s_relay->r_dir[from];
	ssize_t			 n;
	int			 i;

	(void)what;
	s->s_active = s->s_worker->w_now;
	for (i = 0; i < RELAY_READS_PER_EVENT && !d->rd_blocked; i++) {
		n = d->rd_pipe[0] != -1 ? relay_splice_once(s, from) :
		    relay_copy_once(s, from);
		if (n > 0) {
			s->s_bytes[from] += (uint64_t)n;
			/* A short read most likely emptied the socket. */
			if ((size_t)n < (d->rd_pipe[0] != -1 ? d->rd_pipe_cap :
			    s->s_worker->w_scratch_len))
				break;
			continue;
		}
		if (n == 0) {
			/* EOF: no more reading from this side. */
			d->rd_eof = 1;
			if (s->s_first_eof == 0)
				s->s_first_eof = 1 + from;
			event_del(s->s_relay->r_read[from]);
			if (!d->rd_blocked)
				relay_pass_eof(s, from);
			return;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n == -3) {
			session_close(s, "out of memory");
			return;
		}
		if (n == -4) {
			session_close(s, "limit: quota");
			return;
		}
		/* A failed read is the sender's; a failed write, the other. */
		relay_fail(s, n == -1 ? from : !from);
		return;
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
