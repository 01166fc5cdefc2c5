/*
 * relay_capped.c: the relay of sessions under a bandwidth cap, through a
 * pair of bufferevents whose rate-limit groups are the caps' pools
 * (bandwidth.c). libevent meters each read and write against the group
 * and suspends the members of a group that has used its tick's share.
 *
 * Sessions without a cap keep the raw relay (relay.c), which is faster;
 * this one pays for bufferevents only where libevent's metering is the
 * point, or where the client's bytes pass a filter (SOCKS5 GSSAPI's
 * wrapping, front/socks_gss.c), whose bufferevent it takes over from the
 * handshake: "written" then means through every layer (base/bev.c). The rules are the same: at most relay_buffer bytes wait per
 * direction (reading from the sender stops until the receiver has taken
 * half of them), an EOF is passed on as shutdown(SHUT_WR) once what came
 * before it is written, the session ends when both directions have, and
 * a quota counts every byte relayed.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "account/account.h"
#include "base/bev.h"
#include "base/wipe.h"
#include "proxy/worker.h"
#include "session/session.h"

#include "relay.h"

/* A quota's end waits this long at most for the last bytes to go out. */
#define CAPPED_DRAIN_MS	5000

struct capped_relay {
	struct bufferevent	*cr_bev[2];
	uint8_t			 cr_eof[2];	/* side i sent EOF */
	uint8_t			 cr_shut[2];	/* EOF from side i passed on */
	uint8_t			 cr_ending;	/* quota used up: draining */
	uint8_t			 cr_heading;	/* the front end wants the head */
	struct evbuffer		*cr_head;	/* the server's head so far */
	int64_t			 cr_drain_until; /* ms, worker clock */
};

static void	capped_read(struct bufferevent *, void *);
static void	capped_write(struct bufferevent *, void *);
static void	capped_event(struct bufferevent *, short, void *);

static int
capped_side(const struct session *s, const struct bufferevent *bev)
{
	return (bev == s->s_capped->cr_bev[SIDE_CLIENT] ? SIDE_CLIENT :
	    SIDE_REMOTE);
}

/*
 * Where a side's bandwidth is metered: its socket's bufferevent, under a
 * client's filter when it has one.
 */
static struct bufferevent *
capped_metered(struct bufferevent *bev)
{
	struct bufferevent	*under = bufferevent_get_underlying(bev);

	return (under != NULL ? under : bev);
}

/*
 * Side i's bufferevent: a new one on its socket, or the client's own
 * when it is layered (SOCKS5 GSSAPI), taken over from the handshake with
 * what it holds. The filter's read watermark goes: it unwraps every whole
 * message a read brings, and the relay bounds memory as for any side (it
 * stops reading while the receiver holds relay_buffer).
 */
static struct bufferevent *
capped_side_bev(struct session *s, int i)
{
	struct bufferevent	*bev;

	if (i == SIDE_CLIENT && s->s_bev != NULL &&
	    bufferevent_get_underlying(s->s_bev) != NULL) {
		bev = s->s_bev;
		s->s_bev = NULL;
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		return (bev);
	}
	/* Thread-safe: a pool's refills come from another thread. */
	if ((bev = bufferevent_socket_new(s->s_worker->w_base, s->s_fd[i],
	    BEV_OPT_THREADSAFE)) == NULL)
		return (NULL);
	bufferevent_setwatermark(bev, EV_READ, 0, s->s_worker->w_scratch_len);
	/* As large as the raw relay's reads (libevent: 16 KiB). */
	bufferevent_set_max_single_read(bev, s->s_worker->w_scratch_len);
	bufferevent_set_max_single_write(bev, s->s_worker->w_scratch_len);
	return (bev);
}

int
capped_start(struct session *s)
{
	struct capped_relay			*cr;
	struct bufferevent_rate_limit_group	*g;
	int					 i;

	if ((cr = calloc(1, sizeof(*cr))) == NULL)
		return (-1);
	s->s_capped = cr;
	for (i = 0; i < 2; i++) {
		if ((cr->cr_bev[i] = capped_side_bev(s, i)) == NULL)
			return (-1);
		bufferevent_setcb(cr->cr_bev[i], capped_read, capped_write,
		    capped_event, s);
		if ((g = bandwidth_group(s, i)) != NULL &&
		    bufferevent_add_to_rate_limit_group(capped_metered(
		    cr->cr_bev[i]), g) == -1)
			return (-1);
	}
	s->s_active = s->s_worker->w_now;
	cr->cr_heading = s->s_fe != NULL && s->s_front->fe_relay_remote != NULL;
	for (i = 0; i < 2; i++)
		if (bufferevent_enable(cr->cr_bev[i], EV_READ | EV_WRITE) == -1)
			return (-1);
	return (0);
}

/*
 * A layered client taken over at the start (capped_side_bev): what it
 * sent early is unwrapped now and relayed as any later read is.
 */
void
relay_early(struct session *s)
{
	struct bufferevent	*bev = s->s_capped->cr_bev[SIDE_CLIENT];

	bufferevent_flush(bev, EV_READ, BEV_NORMAL);
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		capped_read(bev, s);
}

/*
 * The session's pools changed (bandwidth_recheck()): each bufferevent
 * leaves the group of its old pool and joins its new one. Before the old
 * pools go.
 */
void
capped_repool(struct session *s, struct bw_pool *old[2])
{
	struct bufferevent_rate_limit_group	*g;
	int					 i;

	for (i = 0; i < 2; i++) {
		if (old[i] == s->s_bw[i])
			continue;
		bufferevent_remove_from_rate_limit_group(capped_metered(
		    s->s_capped->cr_bev[i]));
		if ((g = bandwidth_group(s, i)) != NULL)
			bufferevent_add_to_rate_limit_group(capped_metered(
			    s->s_capped->cr_bev[i]), g);
	}
}

/* Bytes owed to side `to` from before the relay started, in order. */
int
capped_queue(struct session *s, int to, struct evbuffer *data)
{
	return (bufferevent_write_buffer(s->s_capped->cr_bev[to], data));
}

void
capped_free(struct session *s)
{
	struct capped_relay	*cr = s->s_capped;
	int			 i;

	if (cr == NULL)
		return;
	for (i = 0; i < 2; i++) {
		if (cr->cr_bev[i] == NULL)
			continue;
		/*
		 * Out of its group now: libevent would remove it only when
		 * the free is finalized, later, and the pool may go first.
		 */
		bufferevent_remove_from_rate_limit_group(capped_metered(
		    cr->cr_bev[i]));
		bev_free(cr->cr_bev[i]);
	}
	if (cr->cr_head != NULL)
		evbuffer_free(cr->cr_head);
	free(cr);
	s->s_capped = NULL;
}

/* Everything from side `from` is written: pass its EOF on. */
static void
capped_pass_eof(struct session *s, int from)
{
	struct capped_relay	*cr = s->s_capped;

	if (cr->cr_shut[from])
		return;
	cr->cr_shut[from] = 1;
	shutdown(s->s_fd[!from], SHUT_WR);
	if (cr->cr_shut[!from])
		relay_end(s, s->s_first_eof == 1 + SIDE_CLIENT ?
		    CLOSE_CLIENT : CLOSE_REMOTE);
}

/*
 * The user's quota is used up (by this session, or another: the sweep).
 * Nothing more is read; what was read and counted still goes out, at the
 * cap, for up to CAPPED_DRAIN_MS; then the session closes. Called again
 * as outputs drain and by the sweep, until it has closed the session.
 */
void
capped_quota_end(struct session *s, int64_t now)
{
	struct capped_relay	*cr = s->s_capped;
	int			 i;

	if (!cr->cr_ending) {
		cr->cr_ending = 1;
		cr->cr_drain_until = now + CAPPED_DRAIN_MS;
		for (i = 0; i < 2; i++) {
			bufferevent_disable(cr->cr_bev[i], EV_READ);
			bufferevent_setwatermark(cr->cr_bev[i], EV_WRITE, 0, 0);
		}
	}
	if ((bev_unsent(cr->cr_bev[0]) == 0 && bev_unsent(cr->cr_bev[1]) == 0) ||
	    now >= cr->cr_drain_until)
		relay_end(s, CLOSE_QUOTA);
}

/*
 * relay_unsent_client's, for a capped relay: a bufferevent's output may
 * not be drained at its start but by the bufferevent, and this one is
 * about to go.
 */
int
capped_unsent_client(struct session *s, struct evbuffer *dst)
{
	struct evbuffer	*out = bufferevent_get_output(
			    s->s_capped->cr_bev[SIDE_CLIENT]);
	int		 r;

	evbuffer_unfreeze(out, 1);
	r = evbuffer_add_buffer(dst, out);
	evbuffer_freeze(out, 1);
	return (r);
}

/* For the sweep: is the session draining after its quota ended? */
int
capped_draining(const struct session *s)
{
	return (s->s_capped != NULL && s->s_capped->cr_ending);
}

/*
 * Bytes read and counted that never went out (the session is closing):
 * taken off the session's counts and given back to its quota.
 */
void
capped_settle(struct session *s)
{
	struct bufferevent	*to;
	int			 i;

	for (i = 0; i < 2; i++)
		/* A relay that failed to start may lack one. */
		if ((to = s->s_capped->cr_bev[!i]) != NULL)
			relay_uncount(s, i, evbuffer_get_length(
			    bufferevent_get_output(to)));
}

/*
 * The server's head, to the front end until it is done (relay.c's
 * relay_head): what the client gets goes to its output. 0 when reading
 * goes on (the caller applies back-pressure), -1 when this side is over:
 * the session ended, or the server's part did (its EOF is passed on).
 */
static int
capped_head(struct session *s, struct evbuffer *in, struct evbuffer *out)
{
	struct capped_relay	*cr = s->s_capped;
	size_t			 n = evbuffer_get_length(in), allowed;
	int			 r;

	if ((allowed = quota_take(s, n)) < n) {
		quota_unspend(s, allowed);
		relay_end(s, CLOSE_QUOTA);
		return (-1);
	}
	s->s_bytes[SIDE_REMOTE] += n;
	if ((cr->cr_head == NULL && (cr->cr_head = evbuffer_new()) == NULL) ||
	    evbuffer_remove_buffer(in, cr->cr_head, n) != (int)n) {
		relay_end(s, CLOSE_NO_MEMORY);
		return (-1);
	}
	if ((r = s->s_front->fe_relay_remote(s, cr->cr_head, out)) < 0) {
		s->s_errno = EPROTO;
		relay_end(s, CLOSE_REMOTE_ERROR);
		return (-1);
	}
	/*
	 * Complete: what waits for the client goes with its next session;
	 * or, the client having ended its side, the server's part is over
	 * as if it had closed (nothing more of it passes), and the rest
	 * goes out before the session ends.
	 */
	if (r == 2 && !cr->cr_eof[SIDE_CLIENT]) {
		relay_end(s, CLOSE_KEEPALIVE);
		return (-1);
	}
	if (r == 2) {
		capped_event(cr->cr_bev[SIDE_REMOTE], BEV_EVENT_EOF, s);
		return (-1);
	}
	if (r == 1) {
		cr->cr_heading = 0;
		evbuffer_free(cr->cr_head);
		cr->cr_head = NULL;
	}
	return (0);
}

static void
capped_read(struct bufferevent *bev, void *arg)
{
	struct session		*s = arg;
	struct capped_relay	*cr = s->s_capped;
	int			 from = capped_side(s, bev);
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer		*out = bufferevent_get_output(cr->cr_bev[!from]);
	size_t			 n = evbuffer_get_length(in), allowed, past = 0;
	uint8_t			*p;
	long			 k;

	s->s_active = s->s_worker->w_now;
	if (from == SIDE_REMOTE && cr->cr_heading) {
		/* A kept response's body goes this way too: pressure below. */
		if (capped_head(s, in, out) == -1)
			return;
		goto pressure;
	}
	if (from == SIDE_CLIENT && s->s_fe != NULL) {
		/* The client's message, through its front end's framing. */
		if ((p = evbuffer_pullup(in, -1)) == NULL) {
			relay_end(s, CLOSE_NO_MEMORY);
			return;
		}
		if ((k = relay_framed(s, p, n)) < 0) {
			s->s_errno = EPROTO;
			relay_end(s, CLOSE_CLIENT_ERROR);
			return;
		}
		past = n - (size_t)k;	/* past its message: dropped below */
		n = (size_t)k;
	}
	allowed = quota_take(s, n);
	if (evbuffer_remove_buffer(in, out, allowed) != (int)allowed) {
		relay_end(s, CLOSE_NO_MEMORY);
		return;
	}
	s->s_bytes[from] += allowed;
	if (allowed < n) {
		/* The quota ends inside this read: the rest is dropped, what
		 * was counted goes out (at the cap), then the session ends. */
		wipe_drain(in, evbuffer_get_length(in));
		capped_quota_end(s, s->s_worker->w_now);
		return;
	}
	wipe_drain(in, past);	/* it may be a request, credentials and all */
pressure:
	/* Back-pressure: the receiver takes half before reading goes on. */
	if (evbuffer_get_length(out) >= s->s_worker->w_scratch_len) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(cr->cr_bev[!from], EV_WRITE,
		    s->s_worker->w_scratch_len / 2, 0);
	}
}

/* Side `to`'s output went down to its low watermark. */
static void
capped_write(struct bufferevent *bev, void *arg)
{
	struct session		*s = arg;
	struct capped_relay	*cr = s->s_capped;
	int			 to = capped_side(s, bev);

	if (cr->cr_ending) {
		capped_quota_end(s, s->s_worker->w_now);
		return;
	}
	if (cr->cr_eof[!to]) {
		if (bev_unsent(bev) == 0)
			capped_pass_eof(s, !to);
		return;
	}
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(cr->cr_bev[!to], EV_READ);
}

static void
capped_event(struct bufferevent *bev, short what, void *arg)
{
	struct session		*s = arg;
	struct capped_relay	*cr = s->s_capped;
	int			 side = capped_side(s, bev);

	if (what & BEV_EVENT_EOF) {
		cr->cr_eof[side] = 1;
		if (s->s_first_eof == 0)
			s->s_first_eof = 1 + side;
		bufferevent_disable(bev, EV_READ);
		/* Passed on when the other side's output is empty. */
		bufferevent_setwatermark(cr->cr_bev[!side], EV_WRITE, 0, 0);
		if (bev_unsent(cr->cr_bev[!side]) == 0)
			capped_pass_eof(s, side);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		s->s_errno = EVUTIL_SOCKET_ERROR();
		/* A failed read is the sender's, a failed write the receiver's:
		 * either way this side's. */
		relay_end(s, side == SIDE_CLIENT ? CLOSE_CLIENT_ERROR :
		    CLOSE_REMOTE_ERROR);
	}
}
