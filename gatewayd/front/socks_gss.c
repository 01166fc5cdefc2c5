/*
 * socks_gss.c: SOCKS5's GSSAPI method (RFC 1961) once authd has accepted
 * the client's Kerberos token: the context authd exported is imported on
 * the worker, the server's token (mutual authentication) goes back, and
 * from then on every byte both ways passes a bufferevent filter over the
 * client's socket, which unwraps what the client sends and wraps what it
 * is sent, the SOCKS request and reply included. The session core and the
 * relay see plain bytes (they ask base/bev.c what is still unsent).
 *
 * DESIGN. The filter agrees the protection level itself: the first
 * message it reads must be the client's level, and it answers before it
 * unwraps a SOCKS byte, so front_socks.c hands over a session waiting
 * for its request and never sees the sub-negotiation. Levels: 1
 * (integrity: wrapped with conf_req FALSE) and 2 (confidentiality: TRUE),
 * as asked; 3 ("selective", per message by local configuration) is
 * answered with 2, every message encrypted, since nothing here could
 * tell which bytes may travel in clear. RFC 1961 has no level without
 * protection, and there is none here.
 *
 * Strict by design: a message not of the type due, a token that does not
 * unwrap, one replayed, out of order or after a gap (GSS-API's
 * supplementary status, with the replay and sequence detection authd
 * required), or one protected other than agreed, ends the session;
 * nothing of it is relayed. UDP ASSOCIATE is refused (front_socks.c):
 * RFC 1961 wraps datagrams too, which is not built.
 *
 * libevent's filters ignore their callbacks' errors and never say when
 * the layer under them has written everything; both are done here (an
 * error event, deferred; a write event when the socket's buffer empties).
 *
 * A session lives as long as the client's ticket: past its end time
 * GSS-API wraps and unwraps nothing more, and the session ends (the
 * client logs in again with a fresh ticket).
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <gssapi/gssapi.h>

#include "log.h"
#include "socks5.h"

#include "authd/auth.h"
#include "proxy/worker.h"

#include "front.h"

/*
 * What the socket's bufferevent may hold unwritten before the filter stops
 * wrapping (the relay's back-pressure then sees the filter's own output),
 * and unread before it stops reading: two of the largest messages.
 */
#define SGSS_UNDER_MAX	(2 * (S5_GSS_HEADER + S5_GSS_TOKEN_MAX))

struct gss_layer {
	gss_ctx_id_t		 gl_ctx;
	struct bufferevent	*gl_bev;	/* the filter */
	struct bufferevent	*gl_under;	/* the socket's, under it */
	struct evbuffer_cb_entry *gl_drain;	/* on gl_under's output */
	uint64_t		 gl_sid;	/* the session, for the log */
	uint8_t			 gl_level;	/* agreed; 0 not yet */
	uint8_t			 gl_failed;
	uint8_t			 gl_busy;	/* in sgss_in */
	OM_uint32		 gl_max;	/* plain bytes one token takes */
};

static void
sgss_free(void *arg)
{
	struct gss_layer	*gl = arg;
	OM_uint32		 minor;

	/* The layer under still exists: the filter holds it until after. */
	if (gl->gl_drain != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_output(gl->gl_under),
		    gl->gl_drain);
	if (gl->gl_ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &gl->gl_ctx, GSS_C_NO_BUFFER);
	free(gl);
}

/*
 * The session breaks off: said once, and the session's own event callback
 * hears an error (deferred: this runs inside libevent's filter).
 */
static enum bufferevent_filter_result
sgss_fail(struct gss_layer *gl, struct evbuffer *src, const char *what,
    OM_uint32 major, OM_uint32 minor)
{
	char	 why[192] = "";

	if (!gl->gl_failed) {
		gl->gl_failed = 1;
		if (major != GSS_S_COMPLETE)
			authd_gss_status(major, minor, why, sizeof(why));
		log_warnx("session %llu: GSSAPI: %s%s%s",
		    (unsigned long long)gl->gl_sid, what, why[0] ? ": " : "",
		    why);
		bufferevent_trigger_event(gl->gl_bev, BEV_EVENT_ERROR,
		    BEV_TRIG_DEFER_CALLBACKS);
	}
	evbuffer_drain(src, evbuffer_get_length(src));
	return (BEV_ERROR);
}

/* One token wrapped into dst as a message of type mtyp; -1 on failure. */
static int
sgss_wrap(struct gss_layer *gl, uint8_t mtyp, int conf, const void *p,
    size_t n, struct evbuffer *dst, OM_uint32 *major, OM_uint32 *minor)
{
	gss_buffer_desc	 in, out = GSS_C_EMPTY_BUFFER;
	uint8_t		 h[S5_GSS_HEADER];
	OM_uint32	 min;
	int		 r = -1, done = 0;

	in.value = (void *)p;
	in.length = n;
	*major = gss_wrap(minor, gl->gl_ctx, conf, GSS_C_QOP_DEFAULT, &in,
	    &done, &out);
	/* Encrypted when it was asked to be, or it does not go. */
	if (*major == GSS_S_COMPLETE && out.length <= S5_GSS_TOKEN_MAX &&
	    (!conf || done)) {
		s5_build_gss_header(h, mtyp, (uint16_t)out.length);
		r = evbuffer_add(dst, h, sizeof(h)) == 0 &&
		    evbuffer_add(dst, out.value, out.length) == 0 ? 0 : -1;
	}
	gss_release_buffer(&min, &out);
	return (r);
}

/*
 * The client's protection level (RFC 1961 section 4): answered on the
 * socket at once, wrapped without confidentiality as the RFC says.
 */
static enum bufferevent_filter_result
sgss_agree(struct gss_layer *gl, struct evbuffer *src,
    const struct s5_gss_frame *f)
{
	gss_buffer_desc	 in, out = GSS_C_EMPTY_BUFFER;
	OM_uint32	 major, minor, min;
	uint8_t		 asked = 0, level;

	in.value = (void *)f->token;
	in.length = f->len;
	major = gss_unwrap(&minor, gl->gl_ctx, &in, &out, NULL, NULL);
	if (major == GSS_S_COMPLETE && out.length == 1)
		asked = *(uint8_t *)out.value;
	gss_release_buffer(&min, &out);
	if (major != GSS_S_COMPLETE)
		return (sgss_fail(gl, src, "the protection level message",
		    major, minor));
	if (asked == S5_GSS_INTEGRITY)
		level = S5_GSS_INTEGRITY;
	else if (asked == S5_GSS_CONFIDENTIALITY || asked == S5_GSS_SELECTIVE)
		level = S5_GSS_CONFIDENTIALITY;
	else
		return (sgss_fail(gl, src, "no protection level asked", 0, 0));
	if ((major = gss_wrap_size_limit(&minor, gl->gl_ctx, level ==
	    S5_GSS_CONFIDENTIALITY, GSS_C_QOP_DEFAULT, S5_GSS_TOKEN_MAX,
	    &gl->gl_max)) != GSS_S_COMPLETE || gl->gl_max == 0)
		return (sgss_fail(gl, src, "no wrap size", major, minor));
	if (sgss_wrap(gl, S5_GSS_PROTECTION, 0, &level, 1,
	    bufferevent_get_output(gl->gl_under), &major, &minor) == -1)
		return (sgss_fail(gl, src, "the protection level answer",
		    major, minor));
	gl->gl_level = level;
	log_debug("session %llu: GSSAPI: protection level %u (asked %u)",
	    (unsigned long long)gl->gl_sid, level, asked);
	return (BEV_NEED_MORE);
}

/* One of the client's messages, unwrapped into dst. */
static enum bufferevent_filter_result
sgss_unwrap(struct gss_layer *gl, struct evbuffer *src, struct evbuffer *dst,
    const struct s5_gss_frame *f)
{
	gss_buffer_desc	 in, out = GSS_C_EMPTY_BUFFER;
	OM_uint32	 major, minor, min;
	int		 conf = 0, r;

	in.value = (void *)f->token;
	in.length = f->len;
	/* Exactly COMPLETE: a duplicate, old or out-of-order token is not. */
	major = gss_unwrap(&minor, gl->gl_ctx, &in, &out, &conf, NULL);
	if (major != GSS_S_COMPLETE) {
		gss_release_buffer(&min, &out);
		return (sgss_fail(gl, src, "a message", major, minor));
	}
	if ((conf != 0) != (gl->gl_level == S5_GSS_CONFIDENTIALITY)) {
		gss_release_buffer(&min, &out);
		return (sgss_fail(gl, src, conf ? "an encrypted message at "
		    "integrity level" : "a message in clear at "
		    "confidentiality level", 0, 0));
	}
	r = evbuffer_add(dst, out.value, out.length);
	gss_release_buffer(&min, &out);
	if (r == -1)
		return (sgss_fail(gl, src, "out of memory", 0, 0));
	return (BEV_OK);
}

static enum bufferevent_filter_result sgss_in_messages(struct gss_layer *,
		    struct evbuffer *, struct evbuffer *, ev_ssize_t, size_t);

/* The filter's input side: whole messages from src, plain bytes to dst. */
static enum bufferevent_filter_result
sgss_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct gss_layer		*gl = arg;
	enum bufferevent_filter_result	 res;
	size_t				 before = evbuffer_get_length(dst);

	(void)mode;
	if (gl->gl_failed)
		return (sgss_fail(gl, src, "", 0, 0));
	/*
	 * libevent runs the input filter again from inside evbuffer_add to
	 * dst once a watermark stopped it (its input-buffer callback): the
	 * message under way is not drained yet, and unwrapping it twice
	 * would read as a replay. The outer call goes on with the rest.
	 */
	if (gl->gl_busy)
		return (BEV_NEED_MORE);
	gl->gl_busy = 1;
	res = sgss_in_messages(gl, src, dst, limit, before);
	gl->gl_busy = 0;
	return (res);
}

/* sgss_in's loop: every whole message while dst may take more. */
static enum bufferevent_filter_result
sgss_in_messages(struct gss_layer *gl, struct evbuffer *src,
    struct evbuffer *dst, ev_ssize_t limit, size_t before)
{
	struct s5_gss_frame		 f;
	enum bufferevent_filter_result	 res = BEV_NEED_MORE, r;
	size_t				 n, want;
	uint8_t				*p, type;
	int				 k;

	while ((n = evbuffer_get_length(src)) > 0) {
		if (limit >= 0 && evbuffer_get_length(dst) - before >=
		    (size_t)limit)
			break;
		type = gl->gl_level ? S5_GSS_DATA : S5_GSS_PROTECTION;
		/* The header first: a wrong one fails before its token. */
		want = n < S5_GSS_HEADER ? n : S5_GSS_HEADER;
		if ((p = evbuffer_pullup(src, (ev_ssize_t)want)) == NULL)
			return (sgss_fail(gl, src, "out of memory", 0, 0));
		if ((k = s5_parse_gss_frame(p, want, type, &f)) < 0)
			return (sgss_fail(gl, src, s5_strerror(k), 0, 0));
		if (want < S5_GSS_HEADER ||
		    (want += (size_t)p[2] << 8 | p[3]) > n)
			break;
		if ((p = evbuffer_pullup(src, (ev_ssize_t)want)) == NULL)
			return (sgss_fail(gl, src, "out of memory", 0, 0));
		if (s5_parse_gss_frame(p, want, type, &f) != (int)want)
			return (sgss_fail(gl, src, "a malformed message", 0, 0));
		r = gl->gl_level ? sgss_unwrap(gl, src, dst, &f) :
		    sgss_agree(gl, src, &f);
		if (r == BEV_ERROR)
			return (r);
		if (r == BEV_OK)
			res = BEV_OK;
		evbuffer_drain(src, want);
	}
	return (res);
}

/* The filter's output side: plain bytes from src, wrapped into dst. */
static enum bufferevent_filter_result
sgss_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct gss_layer	*gl = arg;
	size_t			 n, added = 0, before;
	OM_uint32		 major, minor;
	uint8_t			*p;

	(void)mode;
	if (gl->gl_failed)
		return (sgss_fail(gl, src, "", 0, 0));
	/* No SOCKS byte leaves before the level is agreed. */
	if (gl->gl_level == 0)
		return (BEV_NEED_MORE);
	while ((n = evbuffer_get_length(src)) > 0 &&
	    (limit < 0 || added < (size_t)limit)) {
		if (n > gl->gl_max)
			n = gl->gl_max;
		if ((p = evbuffer_pullup(src, (ev_ssize_t)n)) == NULL)
			return (sgss_fail(gl, src, "out of memory", 0, 0));
		before = evbuffer_get_length(dst);
		if (sgss_wrap(gl, S5_GSS_DATA, gl->gl_level ==
		    S5_GSS_CONFIDENTIALITY, p, n, dst, &major, &minor) == -1)
			return (sgss_fail(gl, src, "wrapping", major, minor));
		added += evbuffer_get_length(dst) - before;
		evbuffer_drain(src, n);
	}
	return (BEV_OK);
}

/*
 * The socket's buffer emptied: once the filter's is empty too, everything
 * written has left, which the filter's user hears as a write event (the
 * refusal's half-close, the relay's EOF passed on).
 */
static void
sgss_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct gss_layer	*gl = arg;

	if (info->n_deleted > 0 && evbuffer_get_length(buf) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(gl->gl_bev)) == 0)
		bufferevent_trigger(gl->gl_bev, EV_WRITE,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* The server's token for the client (often none): -1 if it cannot go. */
static int
sgss_send_token(struct session *s, const struct auth_reply *rep)
{
	uint8_t	*msg;
	int	 r;

	if (rep->ap_outlen == 0)
		return (0);
	if ((msg = malloc(S5_GSS_HEADER + rep->ap_outlen)) == NULL)
		return (-1);
	s5_build_gss_header(msg, S5_GSS_AUTH, rep->ap_outlen);
	memcpy(msg + S5_GSS_HEADER, rep->ap_data, rep->ap_outlen);
	r = session_reply(s, msg, S5_GSS_HEADER + rep->ap_outlen);
	free(msg);
	return (r);
}

/*
 * The layer over the client's socket, in place of the handshake's
 * bufferevent: a new one under it, thread-safe since a bandwidth cap's
 * pool refills from another thread (relay_capped.c), with the bytes the
 * old one held, in order.
 */
static int
sgss_layer(struct session *s, struct gss_layer *gl)
{
	struct bufferevent	*old = s->s_bev, *bev = NULL;
	bufferevent_data_cb	 rcb, wcb;
	bufferevent_event_cb	 ecb;
	size_t			 low, high;
	void			*arg;

	if ((gl->gl_under = bufferevent_socket_new(s->s_worker->w_base,
	    s->s_fd[SIDE_CLIENT], BEV_OPT_THREADSAFE)) == NULL)
		return (-1);
	if (evbuffer_add_buffer(bufferevent_get_input(gl->gl_under),
	    bufferevent_get_input(old)) == -1 ||
	    evbuffer_add_buffer(bufferevent_get_output(gl->gl_under),
	    bufferevent_get_output(old)) == -1 ||
	    (gl->gl_drain = evbuffer_add_cb(bufferevent_get_output(
	    gl->gl_under), sgss_drained, gl)) == NULL ||
	    (bev = bufferevent_filter_new(gl->gl_under, sgss_in, sgss_out,
	    BEV_OPT_THREADSAFE | BEV_OPT_CLOSE_ON_FREE, sgss_free, gl)) ==
	    NULL) {
		/* Its buffers go with it, the callback entry too. */
		bufferevent_free(gl->gl_under);
		gl->gl_under = NULL;
		gl->gl_drain = NULL;
		return (-1);
	}
	gl->gl_bev = bev;
	bufferevent_setwatermark(gl->gl_under, EV_READ | EV_WRITE, 0,
	    SGSS_UNDER_MAX);
	/* The handshake's bounds and callbacks, on the filter now. */
	bufferevent_getwatermark(old, EV_READ, &low, &high);
	bufferevent_setwatermark(bev, EV_READ, low, high);
	bufferevent_getcb(old, &rcb, &wcb, &ecb, &arg);
	bufferevent_setcb(bev, rcb, wcb, ecb, arg);
	bufferevent_free(old);
	s->s_bev = bev;
	return (0);
}

/*
 * authd accepted the client's token and exported the context: the
 * session takes it over and waits for the protection level, then its
 * request, both through the layer. -1 (the session is the caller's to
 * refuse) if it cannot.
 */
int
socks_gss_start(struct session *s, const struct auth_reply *rep)
{
	struct gss_layer	*gl;
	gss_buffer_desc		 ex;
	OM_uint32		 major, minor;
	char			 why[192];

	if (rep->ap_ctxlen == 0 || (gl = calloc(1, sizeof(*gl))) == NULL)
		return (-1);
	gl->gl_sid = s->s_id;
	ex.value = (void *)(rep->ap_data + rep->ap_outlen);
	ex.length = rep->ap_ctxlen;
	if ((major = gss_import_sec_context(&minor, &ex, &gl->gl_ctx)) !=
	    GSS_S_COMPLETE) {
		authd_gss_status(major, minor, why, sizeof(why));
		log_warnx("session %llu: GSSAPI: importing the context: %s",
		    (unsigned long long)s->s_id, why);
		free(gl);
		return (-1);
	}
	if (sgss_send_token(s, rep) == -1 || sgss_layer(s, gl) == -1) {
		sgss_free(gl);
		return (-1);
	}
	if (bufferevent_enable(s->s_bev, EV_READ | EV_WRITE) == -1)
		return (-1);
	/* Messages that came with the token's: unwrapped now. */
	bufferevent_flush(s->s_bev, EV_READ, BEV_NORMAL);
	return (0);
}
