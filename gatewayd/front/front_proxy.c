/*
 * front_proxy.c: a connection on a `listen ADDR:PORT proxy_protocol`
 * address, from a load balancer that proxy_trusted names (worker.c closes
 * the others at accept). Its PROXY header (version 1 or 2) names the
 * client, and the session takes that address for everything from then on:
 * the policy, limits, every per-client cap (silent sockets, lock-outs,
 * logins in flight, the UDP client host), the logs and the audit. Then
 * the first-byte detection goes on as for any connection.
 *
 * Until the header, the socket counts against its balancer (proxy_pending
 * of them at most) and has proxy_timeout seconds, not the handshake's. A
 * trusted balancer that sends no header, or a malformed one, is refused:
 * reading the client's bytes as if the balancer were the client would put
 * every client under one address. A health check (v2 LOCAL, v1 UNKNOWN)
 * names no client and is closed.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "proxy_header.h"
#include "stat.h"

#include "base/clock.h"
#include "base/stats.h"
#include "proxy/worker.h"

#include "front.h"

static enum step
proxy_read(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->s_bev);
	struct pp_header	 h;
	char			 from[ADDR_STRLEN], client[ADDR_STRLEN];
	size_t			 len = evbuffer_get_length(in);
	uint8_t			*p;
	int			 r;

	/* A version 2 header with its TLVs is longer than a handshake. */
	bufferevent_setwatermark(s->s_bev, EV_READ, 0, PP_V2_MAX);
	if (len > PP_V2_MAX)
		len = PP_V2_MAX;
	if ((p = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL)
		return (STEP_WAIT);
	if ((r = pp_parse(p, len, &h)) == 0)
		return (STEP_WAIT);
	if (r < 0 || h.ph_local) {
		STAT_ADD(r < 0 ? GW_STAT_PROXY_REFUSED : GW_STAT_PROXY_LOCAL, 1);
		s->s_refusal = r < 0 ? pp_strerror(r) :
		    "PROXY protocol health check (LOCAL)";
		session_close(s, CLOSE_REFUSED);
		return (STEP_STOP);
	}
	evbuffer_drain(in, (size_t)r);
	addr_str((struct sockaddr *)&s->s_peer, from, sizeof(from));
	addr_unmap(&h.ph_src);
	addr_unmap(&h.ph_dst);
	/* The address clients know the gateway by (the generated PAC file). */
	if ((s->s_reached = malloc(sizeof(*s->s_reached))) != NULL)
		memcpy(s->s_reached, &h.ph_dst, sizeof(*s->s_reached));
	if (pending_rename(s, &h.ph_src) == -1) {
		STAT_ADD(GW_STAT_LIMIT_HANDSHAKES, 1);
		s->s_refusal = "handshake_per_client reached (the client "
		    "named by the PROXY header)";
		session_close(s, CLOSE_REFUSED);
		return (STEP_STOP);
	}
	if (log_debug_enabled())
		log_debug("session %llu: client %s through balancer %s "
		    "(PROXY v%u)", (unsigned long long)s->s_id, addr_str(
		    (struct sockaddr *)&s->s_peer, client, sizeof(client)),
		    from, h.ph_version);
	/* The client's handshake has the usual time from now. */
	s->s_deadline = gw_clock_ms() +
	    (int64_t)s->s_worker->w_conf->c_handshake_timeout * 1000;
	s->s_front = &front_detect;
	return (STEP_NEXT);
}

static unsigned
proxy_accept_cap(const struct conf *c)
{
	return ((unsigned)c->c_proxy_pending);
}

static int
proxy_accept_timeout(const struct conf *c)
{
	return (c->c_proxy_timeout);
}

const struct front	 front_proxy = {
	.fe_read = proxy_read,
	.fe_reply = front_silent_reply,	/* to a balancer: nothing */
	.fe_accept_cap = proxy_accept_cap,
	.fe_accept_timeout = proxy_accept_timeout,
};
