/*
 * front_http.c: the HTTP proxy front end: a CONNECT request (RFC 9110
 * section 9.3.6) or an absolute-form request to forward (GET
 * http://host/path: plain-HTTP sites), parsed by the codec of http.c;
 * Basic proxy authentication (RFC 9110 section 11.7, RFC 7617) through
 * authd, with the lock-out and canonical names of SOCKS logins; and every
 * outcome as a status code. It ends in session_begin() like SOCKS: the
 * request is judged by host and port as a CONNECT; policy, DNS, connect,
 * relay, limits, quotas and audit are the session core's.
 *
 * After a CONNECT the connection's bytes are the tunnel's. A forwarded
 * request goes to the server with its head rebuilt (http_forward_head:
 * Host set to the judged target, hop-by-hop fields and credentials left
 * out, Via and Connection: close added) and its body framed by its one
 * length; the server's response head is rebuilt too. When the client may
 * send another request (HTTP/1.1 without Connection: close) and the
 * response says where its body ends, the connection is kept: the body is
 * followed to its end, nothing the server sends past it reaches the
 * client, and the bytes the client sent past its request (its next one)
 * go to a new session on the same connection (session_next), judged,
 * limited and audited on its own, with a connection of its own to its
 * server, holding the login made on the connection. Otherwise the client
 * is told to close, bytes past its request are dropped, and the response
 * passes until the server closes. A refusal closes the connection. The
 * PAC file is served here too (http_pac).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "addr.h"
#include "base64.h"
#include "conf.h"
#include "http.h"
#include "log.h"
#include "socks5.h"
#include "stat.h"

#include "authd/auth.h"
#include "base/stats.h"
#include "base/wipe.h"
#include "proxy/worker.h"

#include "front.h"
#include "front_http_int.h"

#define HTTP_BASIC	"Proxy-Authenticate: Basic realm=\"socksgw\", " \
			"charset=\"UTF-8\"\r\n"
#define HTTP_NEGOTIATE	"Proxy-Authenticate: Negotiate\r\n"

/* A 407 offers the schemes auth names, Negotiate first (RFC 4559). */
static const char *
http_challenge(const struct session *s)
{
	int	 auth = s->s_worker->w_conf->c_auth;

	if ((auth & AUTH_GSSAPI) && (auth & AUTH_PAM))
		return (HTTP_NEGOTIATE HTTP_BASIC);
	return ((auth & AUTH_GSSAPI) ? HTTP_NEGOTIATE : HTTP_BASIC);
}

/* A forwarded request's state: where its body ends. */

/* Refuses with status and a one-line body; why goes to the log. */
static void
http_refuse(struct session *s, int status, const char *extra,
    const char *why)
{
	char	 buf[FRONT_REPLY_MAX], body[160];

	snprintf(body, sizeof(body), "socksgw: %s\n", why);
	session_refuse_bytes(s, (const uint8_t *)buf, http_build_response(buf,
	    sizeof(buf), status, extra, body), why);
}

/* The target parked in the session while authd decides, then begun. */
static enum step
http_begin(struct session *s)
{
	struct sockaddr_storage	 addr;
	char			 name[HTTP_NAME_MAX + 1];
	int			 is_name = s->s_dst_name != NULL;

	memcpy(&addr, &s->s_dst, sizeof(addr));
	if (is_name) {
		snprintf(name, sizeof(name), "%s", s->s_dst_name);
		free(s->s_dst_name);
		s->s_dst_name = NULL;
	}
	return (session_begin(s, S5_CMD_CONNECT, is_name ? name : NULL, &addr,
	    s->s_dst_port, NULL));
}

/*
 * Whether the bytes since the last look can change the parser's answer:
 * only a CR or LF can (a line ended, or a misplaced one), or reaching the
 * bound. So a head sent a byte at a time is parsed a few times per line,
 * not once per byte.
 */
static int
http_worth_parsing(struct session *s, struct evbuffer *in, size_t len)
{
	struct evbuffer_ptr	 at;

	if (len >= HTTP_HEAD_MAX || s->s_fe_seen == 0)
		return (1);
	if (len <= s->s_fe_seen ||
	    evbuffer_ptr_set(in, &at, s->s_fe_seen, EVBUFFER_PTR_SET) == -1)
		return (0);
	/* EOL_ANY: the first CR or LF from there on. */
	return (evbuffer_search_eol(in, &at, NULL, EVBUFFER_EOL_ANY).pos !=
	    -1);
}

/*
 * The PAC file (GET or HEAD /proxy.pac or /wpad.dat): pac_file's text,
 * or one that sends URLs to the address this client reached, so a
 * browser pointed at the gateway by policy or WPAD needs nothing else.
 * Served without a login (browsers fetch it without one) to pac_allow's
 * clients only (loopback by default: a site's PAC file names its
 * internal hosts); not a session, so not in the audit log.
 */
static void
http_pac(struct session *s, int head_only)
{
	const struct conf	*c = s->s_worker->w_conf;
	struct sockaddr_storage	 local;
	socklen_t		 llen = sizeof(local);
	char			 here[ADDR_STRLEN], made[512], *buf;
	const char		*pac = c->c_pac;
	size_t			 plen, hlen;
	int			 n;

	if (!conf_cidrs_allow(&c->c_pac_allow, (const struct sockaddr *)
	    &s->s_peer)) {
		http_refuse(s, 403, NULL, "the PAC file is not served to this "
		    "address (pac_allow)");
		return;
	}
	if (pac == NULL) {
		/* Behind a load balancer: the address the client reached. */
		if (s->s_reached != NULL)
			memcpy(&local, s->s_reached, sizeof(local));
		else if (getsockname(s->s_fd[SIDE_CLIENT], (struct sockaddr *)
		    &local, &llen) == -1) {
			http_refuse(s, 503, NULL, "no local address");
			return;
		}
		addr_unmap(&local);
		addr_str((struct sockaddr *)&local, here, sizeof(here));
		snprintf(made, sizeof(made), "// socksgw: every URL through "
		    "this gateway, which judges each request.\n"
		    "function FindProxyForURL(url, host) {\n"
		    "\treturn \"PROXY %s\";\n}\n", here);
		pac = made;
	}
	plen = strlen(pac);
	if ((buf = malloc(plen + 256)) == NULL) {
		http_refuse(s, 503, NULL, "out of memory");
		return;
	}
	n = snprintf(buf, 256, "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/x-ns-proxy-autoconfig\r\nContent-Length: %zu\r\n"
	    "Cache-Control: max-age=300\r\nConnection: close\r\n\r\n", plen);
	hlen = (size_t)n;
	if (!head_only) {
		memcpy(buf + hlen, pac, plen);
		hlen += plen;
	}
	STAT_ADD(GW_STAT_PAC_SERVED, 1);
	/* Sent, then closed as a refusal is, given time to leave. */
	session_refuse_bytes(s, (const uint8_t *)buf, hlen, "PAC file served");
	free(buf);
	if (s->s_state == S_REPLYING)
		s->s_deadline = s->s_worker->w_now +
		    (int64_t)c->c_handshake_timeout * 1000;
}

/*
 * A request to forward: its head is rebuilt in place of the client's (the
 * client's, with its credentials, wiped) and waits, with the first bytes
 * of its body, until the server is connected (http_connected).
 */
static int
http_forward(struct session *s, const struct http_request *req, size_t head)
{
	struct evbuffer	*in = bufferevent_get_input(s->s_bev);
	uint8_t		 buf[HTTP_HEAD_MAX];
	char		 out[HTTP_FORWARD_MAX];
	size_t		 n;
	int		 closes = 1;

	if (evbuffer_copyout(in, buf, head) != (ssize_t)head)
		n = 0;
	else {
		n = http_forward_head(buf, head, req, out, sizeof(out));
		closes = http_request_closes(buf, head, req);
	}
	explicit_bzero(buf, head);
	front_consume(s, head);
	if (n == 0) {
		http_refuse(s, 431, NULL, "HTTP request head too long to "
		    "forward");
		return (-1);
	}
	if ((s->s_fe = calloc(1, sizeof(*s->s_fe))) == NULL ||
	    evbuffer_prepend(in, out, n) == -1) {
		http_refuse(s, 503, NULL, "out of memory");
		return (-1);
	}
	s->s_fe->fs_head = n;
	http_body_begin(&s->s_fe->fs_body, req);
	s->s_fe->fs_keep = !closes;
	s->s_fe->fs_head_only = req->hr_head_only != 0;
	s->s_fe->fs_req_done = req->hr_body == HTTP_BODY_NONE;
	return (0);
}

/* The login a kept connection brought along is not this request's. */
static void
http_forget_login(struct session *s)
{
	free(s->s_user);
	s->s_user = NULL;
	while (s->s_ngroups > 0)
		free(s->s_groups[--s->s_ngroups]);
	free(s->s_groups);
	s->s_groups = NULL;
	s->s_authed = 0;
	s->s_login = 0;
}

/*
 * A request read: forwarded, the PAC file, or a tunnel, once the client
 * has logged in as auth asks. Its credentials (req, tok) are the
 * caller's to wipe, whatever the outcome.
 */
static enum step
http_take(struct session *s, const struct http_request *req, size_t head,
    const uint8_t *tok, size_t toklen)
{
	int	 auth = s->s_worker->w_conf->c_auth, r;

	if (req->hr_kind == HTTP_REQ_FORWARD && http_forward(s, req, head) ==
	    -1)
		return (STEP_STOP);
	if (req->hr_kind != HTTP_REQ_FORWARD)
		front_consume(s, head);
	bufferevent_setwatermark(s->s_bev, EV_READ, 0, HTTP_EARLY_MAX +
	    (s->s_fe != NULL ? s->s_fe->fs_head : 0));
	if (req->hr_kind == HTTP_REQ_PAC) {
		http_pac(s, req->hr_head_only);
		return (STEP_STOP);
	}
	s->s_dst_port = req->hr_port;
	if (req->hr_is_addr)
		memcpy(&s->s_dst, &req->hr_addr, sizeof(s->s_dst));
	else if ((s->s_dst_name = strdup(req->hr_host)) == NULL) {
		http_refuse(s, 503, NULL, "out of memory");
		return (STEP_STOP);
	}
	/*
	 * A later request on a kept connection holds the login made on it
	 * (session_next), as browsers expect of Negotiate, unless it brings
	 * credentials of its own: those are checked as if it had none.
	 */
	if (auth == AUTH_NONE || (s->s_authed && req->hr_auth ==
	    HTTP_AUTH_NONE))
		return (http_begin(s));
	if (s->s_authed)
		http_forget_login(s);
	if (req->hr_auth == HTTP_AUTH_NEGOTIATE && (auth & AUTH_GSSAPI)) {
		s->s_login = AUDIT_AUTH_NEGOTIATE;
		r = auth_submit_token(s, tok, toklen, 0);
	} else if (req->hr_auth == HTTP_AUTH_BASIC && (auth & AUTH_PAM)) {
		s->s_login = AUDIT_AUTH_BASIC;
		r = auth_submit(s, req->hr_user, req->hr_pass);
	} else {
		/* The usual first request of a browser: no record of it. */
		http_refuse(s, 407, http_challenge(s), "proxy authentication "
		    "required");
		return (STEP_STOP);
	}
	if (r == -1) {
		STAT_ADD(s->s_worker->w_auth_fd == -1 ? GW_STAT_AUTHD_DOWN :
		    GW_STAT_AUTH_BUSY, 1);
		http_refuse(s, 503, NULL, s->s_worker->w_auth_fd == -1 ?
		    "auth: authd unavailable" : "auth: authd busy");
		return (STEP_STOP);
	}
	session_set_state(s, S_AUTH);
	bufferevent_disable(s->s_bev, EV_READ);
	return (STEP_STOP);
}

static enum step
http_read(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->s_bev);
	struct http_request	 req;
	uint8_t			 buf[HTTP_HEAD_MAX], tok[HTTP_TOKEN_MAX];
	size_t			 len = evbuffer_get_length(in);
	long			 toklen = 0;
	enum step		 step = STEP_STOP;
	int			 r, decoded = 0;

	if (s->s_state != S_GREETING)
		return (STEP_WAIT);
	s->s_proto = AUDIT_PROTO_HTTP;
	/* A head is longer than a SOCKS message: read up to its bound. */
	bufferevent_setwatermark(s->s_bev, EV_READ, 0, HTTP_HEAD_MAX);
	if (len > sizeof(buf))
		len = sizeof(buf);
	r = http_worth_parsing(s, in, len);
	s->s_fe_seen = (uint16_t)len;
	if (!r)
		return (STEP_WAIT);
	/* Copied out, not pulled up: no password left in a freed chain. */
	if (evbuffer_copyout(in, buf, len) != (ssize_t)len)
		return (STEP_WAIT);
	r = http_parse_request(buf, len, &req);
	/*
	 * A Negotiate token stays in the head: decoded before it is wiped,
	 * when Kerberos is on (otherwise a 407 asks for what is).
	 */
	if (r > 0 && req.hr_auth == HTTP_AUTH_NEGOTIATE &&
	    (s->s_worker->w_conf->c_auth & AUTH_GSSAPI)) {
		decoded = 1;
		if ((toklen = b64_decode(buf + req.hr_token_at,
		    req.hr_token_len, tok, sizeof(tok))) <= 0)
			r = HTTP_ERR_CREDENTIALS;
	}
	explicit_bzero(buf, len);
	if (r == 0)
		step = STEP_WAIT;
	else if (r < 0)
		http_refuse(s, http_error_status(r), NULL, http_strerror(r));
	else
		step = http_take(s, &req, (size_t)r, tok, toklen > 0 ?
		    (size_t)toklen : 0);
	/* Every way out: credentials read before a later line failed too. */
	explicit_bzero(&req, sizeof(req));
	if (decoded)
		explicit_bzero(tok, sizeof(tok));
	return (step);
}

static void
http_authenticated(struct session *s, const struct auth_reply *rep)
{
	const char	*why;

	if ((why = front_auth_answer(s, rep)) != NULL) {
		/* A wrong password asks again; a lock-out or authd does not. */
		if (rep->ap_status == AUTH_FAILED ||
		    rep->ap_status == AUTH_REFUSED)
			http_refuse(s, 407, http_challenge(s), why);
		else
			http_refuse(s, rep->ap_status == AUTH_LOCKED ? 403 :
			    503, NULL, why);
		return;
	}
	bufferevent_enable(s->s_bev, EV_READ);
	http_begin(s);
}

/*
 * The core's outcome as a status: 200 opens the tunnel; a refusal says
 * why in one line, the rule that denied it included.
 */
static size_t
http_reply(const struct session *s, uint8_t rep, const struct sockaddr *sa,
    uint8_t *buf, size_t len)
{
	char	 body[640], dst[ADDR_STRLEN + HTTP_NAME_MAX];
	int	 status;

	(void)sa;
	if (rep == S5_REP_SUCCEEDED)
		return (http_build_response((char *)buf, len, 200, NULL, NULL));
	session_dst_text(s, dst, sizeof(dst));
	switch (rep) {
	case S5_REP_NOT_ALLOWED:
		status = 403;
		/* The rule's number; its reason is the admins' to read. */
		if (!s->s_allowed && s->s_rule_id > 0)
			snprintf(body, sizeof(body), "socksgw: %s denied by "
			    "rule %lld\n", dst, (long long)s->s_rule_id);
		else
			snprintf(body, sizeof(body), "socksgw: %s refused: "
			    "%s\n", dst, s->s_refusal ? s->s_refusal :
			    "no rule allows it");
		break;
	case S5_REP_NET_UNREACHABLE:
	case S5_REP_HOST_UNREACHABLE:
	case S5_REP_CONN_REFUSED:
		status = 502;
		snprintf(body, sizeof(body), "socksgw: cannot connect to %s\n",
		    dst);
		break;
	case S5_REP_TTL_EXPIRED:
		status = 504;
		snprintf(body, sizeof(body), "socksgw: %s did not answer in "
		    "time\n", dst);
		break;
	default:
		status = 503;
		snprintf(body, sizeof(body), "socksgw: %s\n", s->s_refusal ?
		    s->s_refusal : "the request could not be served");
		break;
	}
	return (http_build_response((char *)buf, len, status, NULL, body));
}

const struct front	 front_http = {
	.fe_read = http_read,
	.fe_authenticated = http_authenticated,
	.fe_reply = http_reply,
	.fe_connected = http_connected,
	.fe_relay_client = http_relay_client,
	.fe_relay_remote = http_relay_remote,
	.fe_next = http_next,
	.fe_free = http_free,
};
