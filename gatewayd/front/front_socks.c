/*
 * front_socks.c: the SOCKS5 (RFC 1928; logins RFC 1929 and RFC 1961's
 * GSSAPI, whose layer is socks_gss.c) and SOCKS4/4a front end:
 * each handshake message of one client, parsed with the pure codec of
 * socks5.c and answered in its protocol. It ends in session_begin() with
 * a command and a destination; what follows (policy, DNS, connect, relay,
 * limits, quotas, audit) is the session core's, shared by every protocol.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "socks5.h"
#include "stat.h"

#include "authd/auth.h"
#include "base/stats.h"
#include "auditd/audit.h"
#include "proxy/worker.h"

#include "front.h"

static uint8_t	*socks_input(struct session *, size_t, size_t *);

static enum step
socks_greeting(struct session *s)
{
	static const uint8_t	 socks4_reject[8] = { 0, 0x5b };
	struct s5_greeting	 g;
	size_t			 len;
	uint8_t			 reply[2] = { S5_VERSION, 0 };
	uint8_t			*buf;
	int			 r, auth;

	if ((buf = socks_input(s, S5_GREETING_MAX, &len)) == NULL)
		return (STEP_WAIT);
	r = s5_parse_greeting(buf, len, &g);
	if (r == 0)
		return (STEP_WAIT);
	if (r < 0) {
		/*
		 * A SOCKS4 client understands only a SOCKS4 rejection;
		 * anyone else is told in SOCKS5 that nothing is acceptable.
		 */
		if (r == S5_ERR_VERSION && buf[0] == S4_VERSION &&
		    s->s_worker->w_conf->c_socks4) {
			/* SOCKS4 has no greeting: this is its request. */
			s->s_proto = AUDIT_PROTO_SOCKS4;
			session_set_state(s, S_REQUEST);
			return (STEP_NEXT);
		}
		if (r == S5_ERR_VERSION && buf[0] == S4_VERSION)
			session_refuse_bytes(s, socks4_reject,
			    sizeof(socks4_reject), "SOCKS4 is not enabled");
		else {
			reply[1] = S5_METHOD_UNACCEPTABLE;
			session_refuse_bytes(s, reply, sizeof(reply),
			    s5_strerror(r));
		}
		return (STEP_STOP);
	}
	evbuffer_drain(bufferevent_get_input(s->s_bev), (size_t)r);

	/*
	 * The method comes from the configuration alone: with `auth pam`
	 * username/password is the only one, whether authd is up or not (a
	 * dead authd refuses every login; it never opens the gateway).
	 * GSSAPI (RFC 1961) comes first where both are on and the client
	 * offers it: single sign-on, and no password on the wire.
	 */
	auth = s->s_worker->w_conf->c_auth;
	reply[1] = S5_METHOD_UNACCEPTABLE;
	if (auth & AUTH_GSSAPI)
		reply[1] = s5_select_method(&g, S5_METHOD_GSSAPI);
	if (reply[1] == S5_METHOD_UNACCEPTABLE)
		reply[1] = s5_select_method(&g, (auth & AUTH_PAM) ?
		    S5_METHOD_USERPASS : auth == AUTH_NONE ? S5_METHOD_NONE :
		    S5_METHOD_UNACCEPTABLE);
	if (reply[1] == S5_METHOD_UNACCEPTABLE) {
		session_refuse_bytes(s, reply, sizeof(reply),
		    "no acceptable authentication method");
		return (STEP_STOP);
	}
	if (session_reply(s, reply, sizeof(reply)) == -1) {
		session_close(s, CLOSE_NO_MEMORY);
		return (STEP_STOP);
	}
	if (reply[1] == S5_METHOD_GSSAPI) {
		/* A Kerberos token is larger than any other handshake. */
		s->s_login = AUDIT_AUTH_GSSAPI;
		bufferevent_setwatermark(s->s_bev, EV_READ, 0, S5_GSS_HEADER +
		    AUTH_TOKEN_MAX);
	}
	session_set_state(s, reply[1] == S5_METHOD_NONE ? S_REQUEST : S_AUTH);
	return (STEP_NEXT);
}

/*
 * A login authd could not take (gone, or its channel full): refused
 * either way, with the method's own failure message.
 */
static enum step
socks_auth_unsent(struct session *s, const uint8_t *failure, size_t len)
{
	if (s->s_worker->w_auth_fd == -1) {
		STAT_ADD(GW_STAT_AUTHD_DOWN, 1);
		session_refuse_bytes(s, failure, len, "auth: authd unavailable");
	} else {
		STAT_ADD(GW_STAT_AUTH_BUSY, 1);
		session_refuse_bytes(s, failure, len, "auth: authd busy");
	}
	return (STEP_STOP);
}

/*
 * RFC 1961 section 3: the client's first token goes to authd, which
 * accepts it and hands the context back (socks_authenticated). Kerberos
 * takes one token; a mechanism that wants more rounds is refused there.
 */
static enum step
socks_gss_auth(struct session *s)
{
	static const uint8_t	 abort[2] = { S5_GSS_VERSION, S5_GSS_ABORT };
	struct evbuffer		*in = bufferevent_get_input(s->s_bev);
	struct s5_gss_frame	 f;
	size_t			 len = evbuffer_get_length(in), tlen;
	uint8_t			 hdr[S5_GSS_HEADER], tok[AUTH_TOKEN_MAX];
	int			 r;

	if (len > S5_GSS_HEADER)
		len = S5_GSS_HEADER;
	if (evbuffer_copyout(in, hdr, len) != (ssize_t)len)
		return (STEP_WAIT);
	if ((r = s5_parse_gss_frame(hdr, len, S5_GSS_AUTH, &f)) < 0) {
		session_refuse_bytes(s, abort, sizeof(abort), s5_strerror(r));
		return (STEP_STOP);
	}
	if (len < S5_GSS_HEADER)
		return (STEP_WAIT);
	if ((tlen = (size_t)hdr[2] << 8 | hdr[3]) == 0 ||
	    tlen > AUTH_TOKEN_MAX) {
		session_refuse_bytes(s, abort, sizeof(abort), tlen == 0 ?
		    "GSSAPI: an empty token" : "GSSAPI: a token past "
		    "12,000 bytes");
		return (STEP_STOP);
	}
	if (evbuffer_get_length(in) < S5_GSS_HEADER + tlen)
		return (STEP_WAIT);
	evbuffer_drain(in, S5_GSS_HEADER);
	evbuffer_remove(in, tok, tlen);
	r = auth_submit_token(s, tok, tlen, 1);
	explicit_bzero(tok, tlen);
	if (r == -1)
		return (socks_auth_unsent(s, abort, sizeof(abort)));
	bufferevent_disable(s->s_bev, EV_READ);
	return (STEP_STOP);
}

/* RFC 1929: the pair goes to authd; reading stops until it answers. */
static enum step
socks_auth(struct session *s)
{
	static const uint8_t	 failure[2] = { S5_AUTH_VERSION, 0x01 };
	struct evbuffer		*in = bufferevent_get_input(s->s_bev);
	struct s5_userpass	 up;
	size_t			 len = evbuffer_get_length(in);
	uint8_t			 buf[S5_USERPASS_MAX];
	int			 r;

	if (s->s_login == AUDIT_AUTH_GSSAPI)
		return (socks_gss_auth(s));
	/*
	 * Copied out, not pulled up: a pullup would move the password into
	 * a new chain and free the old ones unwiped.
	 */
	if (len > S5_USERPASS_MAX)
		len = S5_USERPASS_MAX;
	if (evbuffer_copyout(in, buf, len) != (ssize_t)len)
		return (STEP_WAIT);
	r = s5_parse_userpass(buf, len, &up);
	explicit_bzero(buf, sizeof(buf));
	if (r == 0)
		return (STEP_WAIT);
	if (r < 0) {
		session_refuse_bytes(s, failure, sizeof(failure),
		    "auth: malformed RFC 1929 request");
		return (STEP_STOP);
	}
	/* The password leaves no copy behind in the input buffer. */
	front_consume(s, (size_t)r);
	s->s_login = AUDIT_AUTH_PASSWORD;
	if (auth_submit(s, up.user, up.pass) == -1) {
		explicit_bzero(&up, sizeof(up));
		return (socks_auth_unsent(s, failure, sizeof(failure)));
	}
	explicit_bzero(&up, sizeof(up));
	bufferevent_disable(s->s_bev, EV_READ);
	return (STEP_STOP);
}

/* authd's answer for this session. */
static void
socks_authenticated(struct session *s, const struct auth_reply *rep)
{
	static const uint8_t	 failure[2] = { S5_AUTH_VERSION, 0x01 };
	static const uint8_t	 success[2] = { S5_AUTH_VERSION, 0x00 };
	static const uint8_t	 abort[2] = { S5_GSS_VERSION, S5_GSS_ABORT };
	const int		 gss = s->s_login == AUDIT_AUTH_GSSAPI;
	const char		*why;

	if ((why = front_auth_answer(s, rep)) != NULL) {
		session_refuse_bytes(s, gss ? abort : failure, 2, why);
		return;
	}
	/* GSSAPI: the server's token, then the layer (socks_gss.c). */
	if (gss ? socks_gss_start(s, rep) : session_reply(s, success,
	    sizeof(success))) {
		if (gss)
			session_refuse_bytes(s, abort, sizeof(abort), "GSSAPI: "
			    "the context could not be taken over");
		else
			session_close(s, CLOSE_NO_MEMORY);
		return;
	}
	session_set_state(s, S_REQUEST);
	bufferevent_enable(s->s_bev, EV_READ);
	/* A request sent along with the pair is waiting already. */
	if (evbuffer_get_length(bufferevent_get_input(s->s_bev)) > 0)
		session_client_read(s->s_bev, s);
}

/*
 * The first bytes of the client's input, at most max of them, in one
 * piece (*len: how many); NULL until there are any.
 */
static uint8_t *
socks_input(struct session *s, size_t max, size_t *len)
{
	struct evbuffer	*in = bufferevent_get_input(s->s_bev);

	if ((*len = evbuffer_get_length(in)) > max)
		*len = max;
	return (evbuffer_pullup(in, (ssize_t)*len));
}

/* SOCKS4 and 4a: the user id is recorded, never trusted. */
static enum step
socks_request4(struct session *s)
{
	struct s4_request	 req;
	size_t			 len;
	uint8_t			*buf;
	int			 r;

	if ((buf = socks_input(s, S4_REQUEST_MAX, &len)) == NULL)
		return (STEP_WAIT);
	if ((r = s4_parse_request(buf, len, &req)) == 0)
		return (STEP_WAIT);
	if (r < 0) {
		session_refuse(s, S5_REP_GENERAL_FAILURE, s5_strerror(r));
		return (STEP_STOP);
	}
	evbuffer_drain(bufferevent_get_input(s->s_bev), (size_t)r);
	return (session_begin(s, req.cmd == S4_CMD_CONNECT ? S5_CMD_CONNECT :
	    S5_CMD_BIND, req.name[0] ? req.name : NULL, &req.addr, req.port,
	    req.userid));
}

static enum step
socks_request(struct session *s)
{
	struct s5_request	 req;
	size_t			 len;
	uint8_t			*buf;
	int			 r;

	if (s->s_proto == AUDIT_PROTO_SOCKS4)
		return (socks_request4(s));
	if ((buf = socks_input(s, S5_REQUEST_MAX, &len)) == NULL)
		return (STEP_WAIT);
	r = s5_parse_request(buf, len, &req);
	if (r == 0)
		return (STEP_WAIT);
	if (r < 0) {
		session_refuse(s, s5_error_reply(r), s5_strerror(r));
		return (STEP_STOP);
	}
	evbuffer_drain(bufferevent_get_input(s->s_bev), (size_t)r);
	if (req.cmd == S5_CMD_UDP_ASSOCIATE && s->s_login == AUDIT_AUTH_GSSAPI) {
		/* RFC 1961 wraps datagrams too: not built, so not relayed bare. */
		session_refuse(s, S5_REP_CMD_UNSUPPORTED, "UDP ASSOCIATE with "
		    "GSSAPI protection is not supported");
		return (STEP_STOP);
	}
	return (session_begin(s, req.cmd, req.atyp == S5_ATYP_DOMAIN ?
	    req.name : NULL, &req.addr, req.port, NULL));
}

/* The handshake message the session's state waits for. */
static enum step
socks_read(struct session *s)
{
	switch (s->s_state) {
	case S_GREETING:
		return (socks_greeting(s));
	case S_AUTH:
		return (socks_auth(s));
	case S_REQUEST:
		return (socks_request(s));
	default:
		return (STEP_WAIT);
	}
}

/*
 * The reply for outcome rep, in the session's protocol. SOCKS4 knows
 * only granted and rejected, and replies with an address only when
 * granted.
 */
static size_t
socks_reply(const struct session *s, uint8_t rep, const struct sockaddr *sa,
    uint8_t *buf, size_t len)
{
	if (len < S5_REPLY_MAX)
		return (0);
	if (s->s_proto == AUDIT_PROTO_SOCKS4) {
		/*
		 * A BIND's reply says where the peer is to connect: an IPv6
		 * address does not fit, and 0.0.0.0:0 would be a lie. The
		 * caller refuses instead (a CONNECT's address is ignored).
		 */
		if (rep == S5_REP_SUCCEEDED && s->s_cmd == S5_CMD_BIND &&
		    (sa == NULL || sa->sa_family != AF_INET))
			return (0);
		if (rep == S5_REP_SUCCEEDED)
			s4_build_reply(buf, S4_GRANTED, sa);
		else
			s4_build_reply(buf, S4_REJECTED, NULL);
		return (S4_REPLY_LEN);
	}
	return (s5_build_reply(buf, rep, sa));
}

const struct front	 front_socks = {
	.fe_read = socks_read,
	.fe_authenticated = socks_authenticated,
	.fe_reply = socks_reply,
};
