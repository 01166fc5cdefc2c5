/*
 * relay.c: moving bytes between the client and the remote side.
 *
 * What one side sends is moved (not copied: evbuffer_add_buffer hands the
 * chains over) into the other side's output. When that output reaches
 * relay_buffer bytes, reading from the sender stops; it resumes when the
 * output has drained to half (libevent's sample/le-proxy.c pattern). So a
 * fast sender and a slow receiver cost at most relay_buffer bytes of
 * memory per direction, and an idle session holds no buffer memory at all.
 *
 * An EOF from one side is passed on as shutdown(SHUT_WR) to the other once
 * everything before it has been written, so half-closed protocols work.
 * The session ends when both directions have ended this way.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "gatewayd.h"

static void	relay_read(struct bufferevent *, void *);
static void	relay_written(struct bufferevent *, void *);
static void	relay_event(struct bufferevent *, short, void *);

static int
relay_side(const struct session *s, const struct bufferevent *bev)
{
	return (bev == s->s_bev[SIDE_CLIENT] ? SIDE_CLIENT : SIDE_REMOTE);
}

int
relay_start(struct session *s)
{
	struct worker	*w = s->s_worker;
	size_t		 max = w->w_conf->c_relay_buffer;
	int		 i;

	s->s_active = w->w_now;
	for (i = 0; i < 2; i++) {
		struct bufferevent *bev = s->s_bev[i];

		bufferevent_setcb(bev, relay_read, relay_written, relay_event,
		    s);
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		bufferevent_setwatermark(bev, EV_WRITE, max / 2, 0);
		/* libevent's 16 KiB default costs a syscall per 16 KiB. */
		if (bufferevent_set_max_single_read(bev, max / 2) == -1 ||
		    bufferevent_set_max_single_write(bev, max / 2) == -1 ||
		    bufferevent_enable(bev, EV_READ | EV_WRITE) == -1)
			return (-1);
	}
	/* Bytes the client sent ahead of the reply go out first. */
	if (evbuffer_get_length(bufferevent_get_input(s->s_bev[SIDE_CLIENT])))
		relay_read(s->s_bev[SIDE_CLIENT], s);
	return (0);
}

static void
relay_read(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	int		 from = relay_side(s, bev);
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct evbuffer	*out = bufferevent_get_output(s->s_bev[!from]);
	size_t		 n = evbuffer_get_length(in);

	s->s_bytes[from] += n;
	s->s_active = s->s_worker->w_now;
	if (evbuffer_add_buffer(out, in) == -1) {
		session_close(s, "out of memory");
		return;
	}
	if (evbuffer_get_length(out) >= s->s_worker->w_conf->c_relay_buffer) {
		/*
		 * We are handing the other side data faster than it takes it.
		 * Stop reading here until its output drains to half.
		 */
		s->s_paused[from] = 1;
		bufferevent_disable(bev, EV_READ);
	}
}

/* bev's output went below its low watermark (or empty, after an EOF). */
static void
relay_written(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	int		 to = relay_side(s, bev);
	int		 from = !to;

	if (s->s_paused[from]) {
		s->s_paused[from] = 0;
		bufferevent_enable(s->s_bev[from], EV_READ);
	}
	if (s->s_eof[from] && !s->s_shut[to] &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		s->s_shut[to] = 1;
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		if (s->s_shut[!to])
			session_close(s, s->s_first_eof == 1 + SIDE_CLIENT ?
			    "client closed" : "remote closed");
	}
}

static void
relay_event(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;
	int		 from = relay_side(s, bev);
	struct bufferevent *to = s->s_bev[!from];

	if (what & BEV_EVENT_EOF) {
		s->s_eof[from] = 1;
		if (s->s_first_eof == 0)
			s->s_first_eof = 1 + from;
		/* Tell the other side once everything before EOF is out. */
		bufferevent_setwatermark(to, EV_WRITE, 0, 0);
		relay_written(to, s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		s->s_errno = errno;
		session_close(s, from == SIDE_CLIENT ? "client error" :
		    "remote error");
	}
}
