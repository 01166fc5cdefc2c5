/*
 * socks5.c: RFC 1928 and RFC 1929 messages, parsed and built without I/O.
 *
 * The parsers check each field as soon as its byte has arrived, so a client
 * that sends a wrong version or command is answered at once rather than
 * after the daemon has waited for a message that will never be valid.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <string.h>

#include "socks5.h"

int
s5_parse_greeting(const uint8_t *buf, size_t len, struct s5_greeting *g)
{
	size_t	 need;

	if (len < 1)
		return (0);
	if (buf[0] != S5_VERSION)
		return (S5_ERR_VERSION);
	if (len < 2)
		return (0);
	if (buf[1] == 0)
		return (S5_ERR_NO_METHODS);
	need = 2 + (size_t)buf[1];
	if (len < need)
		return (0);
	g->nmethods = buf[1];
	memcpy(g->methods, buf + 2, g->nmethods);
	return ((int)need);
}

uint8_t
s5_select_method(const struct s5_greeting *g, uint8_t wanted)
{
	size_t	 i;

	for (i = 0; i < g->nmethods; i++) {
		if (g->methods[i] == wanted)
			return (wanted);
	}
	return (S5_METHOD_UNACCEPTABLE);
}

/*
 * One RFC 1961 message of type mtyp: its token points into buf. An abort
 * from the peer, or another type, is an error, never skipped.
 */
int
s5_parse_gss_frame(const uint8_t *buf, size_t len, uint8_t mtyp,
    struct s5_gss_frame *f)
{
	size_t	 tlen;

	if (len < 1)
		return (0);
	if (buf[0] != S5_GSS_VERSION)
		return (S5_ERR_VERSION);
	if (len < 2)
		return (0);
	if (buf[1] == S5_GSS_ABORT)
		return (S5_ERR_GSS_ABORT);
	if (buf[1] != mtyp)
		return (S5_ERR_GSS_TYPE);
	if (len < S5_GSS_HEADER)
		return (0);
	tlen = (size_t)buf[2] << 8 | buf[3];
	if (len < S5_GSS_HEADER + tlen)
		return (0);
	f->len = (uint16_t)tlen;
	f->token = buf + S5_GSS_HEADER;
	return ((int)(S5_GSS_HEADER + tlen));
}

void
s5_build_gss_header(uint8_t *buf, uint8_t mtyp, uint16_t len)
{
	buf[0] = S5_GSS_VERSION;
	buf[1] = mtyp;
	buf[2] = (uint8_t)(len >> 8);
	buf[3] = (uint8_t)len;
}

/*
 * RFC 1929 says names and passwords are 1 to 255 bytes. An empty one is
 * parsed here all the same: refusing it is the authenticator's job, which
 * answers with a failed status rather than a dropped connection.
 */
int
s5_parse_userpass(const uint8_t *buf, size_t len, struct s5_userpass *up)
{
	size_t	 ulen, plen;

	if (len < 1)
		return (0);
	if (buf[0] != S5_AUTH_VERSION)
		return (S5_ERR_VERSION);
	if (len < 2)
		return (0);
	ulen = buf[1];
	if (len < 2 + ulen + 1)
		return (0);
	plen = buf[2 + ulen];
	if (len < 3 + ulen + plen)
		return (0);
	/*
	 * A NUL would cut the name PAM sees short of the name sent
	 * ("alice\0x" is not "alice"): such a message is malformed.
	 */
	if (memchr(buf + 2, '\0', ulen) != NULL ||
	    memchr(buf + 3 + ulen, '\0', plen) != NULL)
		return (S5_ERR_CREDENTIALS);
	up->ulen = (uint8_t)ulen;
	up->plen = (uint8_t)plen;
	memcpy(up->user, buf + 2, ulen);
	up->user[ulen] = '\0';
	memcpy(up->pass, buf + 3 + ulen, plen);
	up->pass[plen] = '\0';
	return ((int)(3 + ulen + plen));
}

/*
 * A host name that the policy and the resolver read alike: dot-separated
 * labels of 1 to 63 letters, digits, '-' or '_', 253 bytes at most, and
 * at most one trailing dot. Anything else (an empty label, "a..", a
 * control byte, a quote or a bracket) could be read one way by the rule
 * matcher and another by a resolver, a log or a report: it is refused.
 */
int
s5_valid_name(const uint8_t *name, size_t len)
{
	size_t	 i, label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;			/* the root: "example.org." */
	if (len == 0 || len > 253)
		return (0);
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return (0);
			label = 0;
			continue;
		}
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-' ||
		    name[i] == '_') || ++label > 63)
			return (0);
	}
	return (label > 0);
}

int
s5_parse_request(const uint8_t *buf, size_t len, struct s5_request *req)
{
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	size_t			 alen, need;

	if (len < 1)
		return (0);
	if (buf[0] != S5_VERSION)
		return (S5_ERR_VERSION);
	if (len < 2)
		return (0);
	if (buf[1] != S5_CMD_CONNECT && buf[1] != S5_CMD_BIND &&
	    buf[1] != S5_CMD_UDP_ASSOCIATE)
		return (S5_ERR_COMMAND);
	if (len < 3)
		return (0);
	if (buf[2] != 0)
		return (S5_ERR_RESERVED);
	if (len < 4)
		return (0);
	switch (buf[3]) {
	case S5_ATYP_IPV4:
		alen = 4;
		break;
	case S5_ATYP_IPV6:
		alen = 16;
		break;
	case S5_ATYP_DOMAIN:
		if (len < 5)
			return (0);
		if (buf[4] == 0)
			return (S5_ERR_DOMAIN);
		alen = 1 + (size_t)buf[4];
		break;
	default:
		return (S5_ERR_ATYP);
	}
	need = 4 + alen + 2;
	if (len < need)
		return (0);

	memset(req, 0, sizeof(*req));
	req->cmd = buf[1];
	req->atyp = buf[3];
	req->port = (uint16_t)(buf[4 + alen] << 8 | buf[4 + alen + 1]);
	switch (req->atyp) {
	case S5_ATYP_IPV4:
		sin = (struct sockaddr_in *)&req->addr;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, buf + 4, 4);
		sin->sin_port = htons(req->port);
		break;
	case S5_ATYP_IPV6:
		sin6 = (struct sockaddr_in6 *)&req->addr;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, buf + 4, 16);
		sin6->sin6_port = htons(req->port);
		break;
	case S5_ATYP_DOMAIN:
		if (!s5_valid_name(buf + 5, alen - 1))
			return (S5_ERR_DOMAIN);
		memcpy(req->name, buf + 5, alen - 1);
		req->name[alen - 1] = '\0';
		break;
	}
	return ((int)need);
}

/*
 * Writes a reply into out (at least S5_REPLY_MAX bytes) and returns its
 * length. A NULL or non-IP bnd is sent as 0.0.0.0:0, which RFC 1928 allows
 * for failures.
 */
size_t
s5_build_reply(uint8_t *out, uint8_t rep, const struct sockaddr *bnd)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	size_t				 n;

	out[0] = S5_VERSION;
	out[1] = rep;
	out[2] = 0;
	if (bnd != NULL && bnd->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)bnd;
		out[3] = S5_ATYP_IPV6;
		memcpy(out + 4, &sin6->sin6_addr, 16);
		memcpy(out + 20, &sin6->sin6_port, 2);
		n = 22;
	} else if (bnd != NULL && bnd->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)bnd;
		out[3] = S5_ATYP_IPV4;
		memcpy(out + 4, &sin->sin_addr, 4);
		memcpy(out + 8, &sin->sin_port, 2);
		n = 10;
	} else {
		out[3] = S5_ATYP_IPV4;
		memset(out + 4, 0, 6);
		n = 10;
	}
	return (n);
}

/* The reply RFC 1928 gives a request that failed to parse with err. */
uint8_t
s5_error_reply(int err)
{
	switch (err) {
	case S5_ERR_COMMAND:
		return (S5_REP_CMD_UNSUPPORTED);
	case S5_ERR_ATYP:
		return (S5_REP_ATYP_UNSUPPORTED);
	default:
		return (S5_REP_GENERAL_FAILURE);
	}
}

const char *
s5_strerror(int err)
{
	static const char *const why[] = {
		[-S5_ERR_VERSION] = "wrong protocol version",
		[-S5_ERR_NO_METHODS] = "no authentication methods offered",
		[-S5_ERR_RESERVED] = "reserved byte not zero",
		[-S5_ERR_COMMAND] = "unknown command",
		[-S5_ERR_ATYP] = "unknown address type",
		[-S5_ERR_DOMAIN] = "malformed domain name",
		[-S5_ERR_TOO_LONG] = "field longer than 255 bytes",
		[-S5_ERR_CREDENTIALS] = "NUL byte in user name or password",
		[-S5_ERR_GSS_ABORT] = "GSSAPI: the client aborted",
		[-S5_ERR_GSS_TYPE] = "GSSAPI: not the message type expected",
	};

	if (err < 0 && err >= S5_ERR_MIN && why[-err] != NULL)
		return (why[-err]);
	return ("malformed message");
}

const char *
s5_reply_str(uint8_t rep)
{
	static const char *const names[] = {
		"succeeded", "general failure", "not allowed by ruleset",
		"network unreachable", "host unreachable", "connection refused",
		"TTL expired", "command not supported",
		"address type not supported"
	};

	if (rep < sizeof(names) / sizeof(names[0]))
		return (names[rep]);
	return ("unassigned");
}

const char *
s5_cmd_str(uint8_t cmd)
{
	static const char *const names[] = {
		[S5_CMD_CONNECT] = "connect",
		[S5_CMD_BIND] = "bind",
		[S5_CMD_UDP_ASSOCIATE] = "udp",
	};

	if (cmd < sizeof(names) / sizeof(names[0]) && names[cmd] != NULL)
		return (names[cmd]);
	return ("-");
}

/* SOCKS4 / SOCKS4a ---------------------------------------------------------- */

/* A NUL-terminated field of at most 255 bytes starting at p; its length. */
static int
s4_field(const uint8_t *p, size_t avail, size_t *flen)
{
	const uint8_t	*nul = memchr(p, 0, avail < 256 ? avail : 256);

	if (nul == NULL)
		return (avail >= 256 ? S5_ERR_TOO_LONG : 0);
	*flen = (size_t)(nul - p);
	return (1);
}

int
s4_parse_request(const uint8_t *buf, size_t len, struct s4_request *req)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&req->addr;
	size_t			 ulen, nlen = 0, need;
	int			 r, is4a;

	if (len < 1)
		return (0);
	if (buf[0] != S4_VERSION)
		return (S5_ERR_VERSION);
	if (len < 2)
		return (0);
	if (buf[1] != S4_CMD_CONNECT && buf[1] != S4_CMD_BIND)
		return (S5_ERR_COMMAND);
	if (len < 8)
		return (0);
	if ((r = s4_field(buf + 8, len - 8, &ulen)) <= 0)
		return (r);
	need = 8 + ulen + 1;
	/* 0.0.0.x with x != 0: SOCKS4a, a host name follows. */
	is4a = buf[4] == 0 && buf[5] == 0 && buf[6] == 0 && buf[7] != 0;
	if (is4a) {
		if ((r = s4_field(buf + need, len - need, &nlen)) <= 0)
			return (r);
		if (nlen == 0 || !s5_valid_name(buf + need, nlen))
			return (S5_ERR_DOMAIN);
		need += nlen + 1;
	}
	memset(req, 0, sizeof(*req));
	req->cmd = buf[1];
	req->port = (uint16_t)(buf[2] << 8 | buf[3]);
	memcpy(req->userid, buf + 8, ulen);
	if (is4a)
		memcpy(req->name, buf + 8 + ulen + 1, nlen);
	else {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, buf + 4, 4);
		sin->sin_port = htons(req->port);
	}
	return ((int)need);
}

void
s4_build_reply(uint8_t *out, uint8_t cd, const struct sockaddr *bnd)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)bnd;

	memset(out, 0, S4_REPLY_LEN);
	out[1] = cd;
	/* Only IPv4 fits a SOCKS4 reply; clients ignore it for CONNECT. */
	if (bnd != NULL && bnd->sa_family == AF_INET) {
		memcpy(out + 2, &sin->sin_port, 2);
		memcpy(out + 4, &sin->sin_addr, 4);
	}
}

/* UDP ---------------------------------------------------------------------- */

/*
 * A datagram's header: its length (> 0), or a negative S5_ERR_* when the
 * datagram cannot be relayed. A datagram comes whole, so a short one is
 * an error, not a wait.
 */
int
s5_parse_udp_header(const uint8_t *buf, size_t len, struct s5_udp_header *h)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&h->addr;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&h->addr;
	size_t			 alen;

	if (len < 4)
		return (S5_ERR_TOO_LONG);
	memset(h, 0, sizeof(*h));
	h->frag = buf[2];
	h->atyp = buf[3];
	switch (buf[3]) {
	case S5_ATYP_IPV4:
		alen = 4;
		break;
	case S5_ATYP_IPV6:
		alen = 16;
		break;
	case S5_ATYP_DOMAIN:
		if (len < 5 || buf[4] == 0)
			return (S5_ERR_DOMAIN);
		alen = 1 + (size_t)buf[4];
		break;
	default:
		return (S5_ERR_ATYP);
	}
	if (len < 4 + alen + 2)
		return (S5_ERR_TOO_LONG);
	h->port = (uint16_t)(buf[4 + alen] << 8 | buf[5 + alen]);
	if (h->atyp == S5_ATYP_IPV4) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, buf + 4, 4);
		sin->sin_port = htons(h->port);
	} else if (h->atyp == S5_ATYP_IPV6) {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, buf + 4, 16);
		sin6->sin6_port = htons(h->port);
	} else {
		if (!s5_valid_name(buf + 5, alen - 1))
			return (S5_ERR_DOMAIN);
		memcpy(h->name, buf + 5, alen - 1);
	}
	return ((int)(4 + alen + 2));
}

/* The header naming sa (a reply's source); out holds S5_REPLY_MAX. */
size_t
s5_build_udp_header(uint8_t *out, const struct sockaddr *sa)
{
	/* The same layout as a reply, with RSV RSV FRAG for VER REP RSV. */
	size_t	 n = s5_build_reply(out, 0, sa);

	out[0] = out[1] = out[2] = 0;
	return (n);
}
