/*
 * http.c: the HTTP/1.1 proxy request codec (see http.h): the request line
 * of a CONNECT, a PAC file's GET or a forwarded absolute-form request; the
 * fields (Proxy-Authorization read, a body's length found, the rest
 * checked); Basic credentials (RFC 7617); and the head of a response.
 * What forwarding does with a parsed request: http_forward.c.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "http.h"
#include "http_int.h"
#include "socks5.h"

static const struct {
	int		 code;
	const char	*text;
} http_statuses[] = {
	{ 200, "OK" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 407, "Proxy Authentication Required" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
};

static const struct {
	int		 status;
	const char	*text;
} http_errors[] = {
	[-HTTP_ERR_MALFORMED] = { 400, "malformed HTTP request" },
	[-HTTP_ERR_TOO_LONG] = { 431, "HTTP request head too long" },
	[-HTTP_ERR_METHOD] = { 501, "HTTP method not served" },
	[-HTTP_ERR_VERSION] = { 505, "HTTP version other than 1.0 or 1.1" },
	[-HTTP_ERR_TARGET] = { 400, "HTTP target is not host:port" },
	[-HTTP_ERR_CREDENTIALS] = { 400, "unreadable Basic credentials" },
	[-HTTP_ERR_LENGTH] = { 400, "HTTP body length missing, invalid or "
	    "given twice (Content-Length and Transfer-Encoding)" },
	[-HTTP_ERR_CODING] = { 501, "HTTP transfer coding other than "
	    "chunked" },
	[-HTTP_ERR_URL] = { 400, "only absolute http:// URLs are forwarded "
	    "(https:// goes through CONNECT)" },
};

/* What the fields said, as they are read. */
struct http_fields {
	const uint8_t	*head;		/* where the head starts */
	int	 seen_auth;
	int	 seen_host;
	int	 seen_length;
	int	 seen_coding;
};

const char *
http_status_text(int code)
{
	size_t	 i;

	for (i = 0; i < sizeof(http_statuses) / sizeof(http_statuses[0]); i++)
		if (http_statuses[i].code == code)
			return (http_statuses[i].text);
	return ("Error");
}

int
http_error_status(int err)
{
	return (err < 0 && err >= HTTP_ERR_MIN ? http_errors[-err].status :
	    500);
}

const char *
http_strerror(int err)
{
	return (err < 0 && err >= HTTP_ERR_MIN ? http_errors[-err].text :
	    "unknown HTTP error");
}

/* RFC 9110 section 5.6.2. */
int
http_tchar(uint8_t c)
{
	return ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != 0 && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL));
}

/* A field value's byte (RFC 9110 section 5.5): no control but HTAB. */
int
http_vchar(uint8_t c)
{
	return (c == '\t' || (c >= 0x20 && c != 0x7f));
}

/*
 * Where the head ends (just past its empty line), 0 when it has not come
 * yet, or HTTP_ERR_MALFORMED for a CR or LF out of place, which more
 * bytes cannot mend.
 */
int
http_head_end(const uint8_t *buf, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			return (HTTP_ERR_MALFORMED);
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
			return (HTTP_ERR_MALFORMED);
		if (buf[i] == '\n' && i >= 3 && buf[i - 2] == '\n')
			return ((int)i + 1);
	}
	return (0);
}

/* host:port or [v6]:port; a name as SOCKS would take it. */
static int
http_target(const uint8_t *p, size_t n, struct http_request *req)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&req->hr_addr;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&req->hr_addr;
	const uint8_t		*colon, *hp = p;
	size_t			 hn, i;
	unsigned long		 port = 0;
	char			 text[HTTP_NAME_MAX + 1];

	if (n > 0 && p[0] == '[') {
		if ((colon = memchr(p, ']', n)) == NULL ||
		    colon + 1 >= p + n || colon[1] != ':')
			return (HTTP_ERR_TARGET);
		hp = p + 1;
		hn = (size_t)(colon - hp);
		colon++;
	} else {
		for (colon = p + n; colon > p && colon[-1] != ':'; colon--)
			;
		if (colon == p)
			return (HTTP_ERR_TARGET);
		colon--;
		hn = (size_t)(colon - p);
	}
	if (hn == 0 || hn > HTTP_NAME_MAX)
		return (HTTP_ERR_TARGET);
	for (i = (size_t)(colon - p) + 1; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || port > 65535)
			return (HTTP_ERR_TARGET);
		port = port * 10 + (unsigned long)(p[i] - '0');
	}
	if ((size_t)(colon - p) + 1 == n || port == 0 || port > 65535)
		return (HTTP_ERR_TARGET);
	req->hr_port = (uint16_t)port;
	memcpy(text, hp, hn);
	text[hn] = '\0';
	if (hp != p) {
		if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
			return (HTTP_ERR_TARGET);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(req->hr_port);
		req->hr_is_addr = 1;
		return (0);
	}
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(req->hr_port);
		req->hr_is_addr = 1;
		return (0);
	}
	/* The names SOCKS takes, no others: one matcher reads them all. */
	if (!s5_valid_name((const uint8_t *)text, hn))
		return (HTTP_ERR_TARGET);
	memcpy(req->hr_host, text, hn + 1);
	return (0);
}

/* RFC 7617: base64 of user-id ":" password, neither with a control. */
static int
http_basic(const uint8_t *p, size_t n, struct http_request *req)
{
	uint8_t		 out[2 * HTTP_CRED_MAX + 2], *colon;
	size_t		 i, o, ulen, plen;
	long		 got;
	int		 r = HTTP_ERR_CREDENTIALS;

	if ((got = b64_decode(p, n, out, sizeof(out))) == -1)
		goto done;
	o = (size_t)got;
	for (i = 0; i < o; i++)
		if (out[i] < 0x20 || out[i] == 0x7f)
			goto done;
	if ((colon = memchr(out, ':', o)) == NULL)
		goto done;
	ulen = (size_t)(colon - out);
	plen = o - ulen - 1;
	if (ulen > HTTP_CRED_MAX || plen > HTTP_CRED_MAX)
		goto done;
	memcpy(req->hr_user, out, ulen);
	req->hr_user[ulen] = '\0';
	memcpy(req->hr_pass, colon + 1, plen);
	req->hr_pass[plen] = '\0';
	req->hr_auth = HTTP_AUTH_BASIC;
	r = 0;
done:
	explicit_bzero(out, sizeof(out));	/* a password */
	return (r);
}

int
http_name_is(const uint8_t *p, size_t n, const char *name)
{
	return (n == strlen(name) && strncasecmp((const char *)p, name, n) ==
	    0);
}

/* name, with '_' read as '-', as CGI servers map both to '_'. */
static int
http_name_like(const uint8_t *p, size_t n, const char *name)
{
	size_t	 i;

	if (n != strlen(name))
		return (0);
	for (i = 0; i < n; i++)
		if ((p[i] == '_' ? '-' : p[i] | 0x20) != (name[i] | 0x20))
			return (0);
	return (1);
}

/* Content-Length (RFC 9110 section 8.6): digits only, one value. */
static int
http_length(const uint8_t *v, size_t n, struct http_request *req)
{
	size_t	 i;

	if (n == 0 || n > 18)
		return (HTTP_ERR_LENGTH);
	req->hr_length = 0;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return (HTTP_ERR_LENGTH);
		req->hr_length = req->hr_length * 10 + (uint64_t)(v[i] - '0');
	}
	return (0);
}

/*
 * A forwarded request's framing fields: one Content-Length or one
 * Transfer-Encoding of exactly chunked, and not both, are the only bodies
 * two readers cannot frame differently (RFC 9112 sections 6.1, 6.3, 11.2).
 */
static int
http_framing(const uint8_t *p, size_t nn, const uint8_t *v, size_t vn,
    struct http_request *req, struct http_fields *f)
{
	if (http_name_is(p, nn, "Content-Length")) {
		if (f->seen_length++ || f->seen_coding)
			return (HTTP_ERR_LENGTH);
		req->hr_body = HTTP_BODY_LENGTH;
		return (http_length(v, vn, req));
	}
	if (http_name_is(p, nn, "Transfer-Encoding")) {
		if (f->seen_coding++ || f->seen_length || req->hr_http10)
			return (HTTP_ERR_LENGTH);
		if (!http_name_is(v, vn, "chunked"))
			return (HTTP_ERR_CODING);
		req->hr_body = HTTP_BODY_CHUNKED;
		return (0);
	}
	if (http_name_is(p, nn, "Host") && f->seen_host++)
		return (HTTP_ERR_MALFORMED);
	/* CGI and WSGI servers read "Content_Length" as Content-Length. */
	if (memchr(p, '_', nn) != NULL && (http_name_like(p, nn,
	    "Content-Length") || http_name_like(p, nn, "Transfer-Encoding")))
		return (HTTP_ERR_LENGTH);
	return (0);
}

/*
 * RFC 4559: a Negotiate token, left where it is (16 KB of base64 at
 * most); the front end decodes it from the head when Kerberos is on, and
 * refuses one that is not base64 or too long then. Otherwise it is a
 * scheme not taken, whatever it holds, and a 407 asks again.
 */
static int
http_negotiate(const uint8_t *p, size_t n, struct http_request *req,
    size_t at)
{
	(void)p;
	req->hr_auth = HTTP_AUTH_NEGOTIATE;
	req->hr_token_at = at;
	req->hr_token_len = n;
	return (0);
}

/* One field: Proxy-Authorization read, a body's length found, the rest
 * checked. */
static int
http_field(const uint8_t *p, size_t n, struct http_request *req,
    struct http_fields *f)
{
	const uint8_t	*colon, *v, *ve;
	size_t		 i, nn;

	if ((colon = memchr(p, ':', n)) == NULL || colon == p)
		return (HTTP_ERR_MALFORMED);
	nn = (size_t)(colon - p);
	for (i = 0; i < nn; i++)
		if (!http_tchar(p[i]))
			return (HTTP_ERR_MALFORMED);
	for (v = colon + 1; v < p + n && (*v == ' ' || *v == '\t'); v++)
		;
	for (ve = p + n; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
		;
	for (i = 0; v + i < ve; i++)
		if (!http_vchar(v[i]))
			return (HTTP_ERR_MALFORMED);
	if (http_name_is(p, nn, "Proxy-Authorization")) {
		if (f->seen_auth++)
			return (HTTP_ERR_MALFORMED);
		if (ve - v > 6 && strncasecmp((const char *)v, "Basic ", 6) ==
		    0) {
			for (v += 6; v < ve && *v == ' '; v++)
				;
			return (http_basic(v, (size_t)(ve - v), req));
		}
		if (ve - v > 10 && strncasecmp((const char *)v, "Negotiate ",
		    10) == 0) {
			for (v += 10; v < ve && *v == ' '; v++)
				;
			return (http_negotiate(v, (size_t)(ve - v), req,
			    (size_t)(v - f->head)));
		}
		req->hr_auth = HTTP_AUTH_OTHER;
		return (0);
	}
	if (req->hr_kind == HTTP_REQ_FORWARD)
		return (http_framing(p, nn, v, (size_t)(ve - v), req, f));
	/* RFC 9110 section 9.3.6: a CONNECT request has no content. */
	if (http_name_is(p, nn, "Transfer-Encoding") ||
	    (http_name_is(p, nn, "Content-Length") && !(ve - v == 1 &&
	    *v == '0')))
		return (HTTP_ERR_MALFORMED);
	return (0);
}

/*
 * An absolute-form target (RFC 9112 section 3.2.2): http://authority,
 * then a path or query or nothing. The authority is judged as a CONNECT
 * target would be (port 80 when it names none); userinfo and fragments
 * are refused. *path is where the origin-form target starts.
 */
int
http_url(const uint8_t *p, size_t n, struct http_request *req,
    size_t *path)
{
	uint8_t		 hostport[HTTP_NAME_MAX + 16];
	size_t		 an, i;
	int		 has_port = 0;

	if (n < 8 || strncasecmp((const char *)p, "http://", 7) != 0 ||
	    memchr(p, '#', n) != NULL)
		return (HTTP_ERR_URL);
	for (an = 7; an < n && p[an] != '/' && p[an] != '?'; an++)
		;
	*path = an;
	an -= 7;
	p += 7;
	if (an == 0 || an > HTTP_NAME_MAX + 8 || memchr(p, '@', an) != NULL)
		return (HTTP_ERR_URL);
	/* A port: digits after the last colon that is not inside [v6]. */
	for (i = an; i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9'; i--)
		;
	if (i > 0 && i < an && p[i - 1] == ':')
		has_port = 1;
	memcpy(hostport, p, an);
	if (!has_port) {
		if (p[an - 1] == ':')
			an--;		/* "host:" is port 80 too */
		memcpy(hostport + an, ":80", 3);
		an += 3;
	}
	return (http_target(hostport, an, req));
}

/* GET or HEAD of the PAC file, in origin form (RFC 9112 section 3.2.1). */
static int
http_pac(const uint8_t *method, size_t mlen, const uint8_t *target,
    size_t tlen, struct http_request *req)
{
	static const char *const paths[] = { "/proxy.pac", "/wpad.dat" };
	size_t		 i;

	if (!(mlen == 3 && memcmp(method, "GET", 3) == 0) &&
	    !(mlen == 4 && memcmp(method, "HEAD", 4) == 0))
		return (0);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (tlen == strlen(paths[i]) && memcmp(target, paths[i],
		    tlen) == 0) {
			req->hr_kind = HTTP_REQ_PAC;
			return (1);
		}
	return (0);
}

int
http_request_line(const uint8_t *buf, const uint8_t *eol,
    struct http_line *l)
{
	const uint8_t	*p, *sp1, *sp2;

	/* request-line = method SP request-target SP HTTP-version */
	if ((sp1 = memchr(buf, ' ', (size_t)(eol - buf))) == NULL ||
	    sp1 == buf ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1))) == NULL ||
	    sp2 == sp1 + 1)
		return (HTTP_ERR_MALFORMED);
	for (p = buf; p < sp1; p++)
		if (!http_tchar(*p))
			return (HTTP_ERR_MALFORMED);
	for (p = sp1 + 1; p < sp2; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return (HTTP_ERR_MALFORMED);
	if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return (eol - sp2 - 1 >= 5 && memcmp(sp2 + 1, "HTTP/", 5) ==
		    0 ? HTTP_ERR_VERSION : HTTP_ERR_MALFORMED);
	l->method = buf;
	l->mlen = (size_t)(sp1 - buf);
	l->target = sp1 + 1;
	l->tlen = (size_t)(sp2 - sp1 - 1);
	l->version = sp2 + 1;
	return (0);
}

/* What the request line asks for: a tunnel, the PAC file, forwarding. */
static int
http_request_kind(const struct http_line *l, struct http_request *req)
{
	size_t	 path;

	if (http_pac(l->method, l->mlen, l->target, l->tlen, req))
		return (0);
	if (l->mlen == 7 && memcmp(l->method, "CONNECT", 7) == 0)
		return (http_target(l->target, l->tlen, req));
	/* Origin-form to a proxy is a request for the proxy itself. */
	if (l->target[0] == '/' || l->target[0] == '*')
		return (HTTP_ERR_METHOD);
	req->hr_kind = HTTP_REQ_FORWARD;
	req->hr_http10 = l->version[7] == '0';
	return (http_url(l->target, l->tlen, req, &path));
}

int
http_parse_request(const uint8_t *buf, size_t len, struct http_request *req)
{
	struct http_fields	 f;
	struct http_line	 l;
	const uint8_t		*p, *eol, *end;
	int			 head, r, nfields = 0;

	memset(req, 0, sizeof(*req));
	memset(&f, 0, sizeof(f));
	f.head = buf;
	if ((head = http_head_end(buf, len < HTTP_HEAD_MAX ? len :
	    HTTP_HEAD_MAX)) < 0)
		return (head);
	if (head == 0)
		return (len >= HTTP_HEAD_MAX ? HTTP_ERR_TOO_LONG : 0);
	end = buf + head - 2;		/* the empty line's CRLF */
	eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
	if ((r = http_request_line(buf, eol, &l)) < 0 ||
	    (r = http_request_kind(&l, req)) < 0)
		return (r);
	/* HEAD: its response has no body, whatever its length says. */
	req->hr_head_only = l.mlen == 4 && memcmp(l.method, "HEAD", 4) == 0;
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end - p) + 1);
		/* obs-fold (RFC 9112 section 5.2) is refused. */
		if (*p == ' ' || *p == '\t')
			return (HTTP_ERR_MALFORMED);
		if (++nfields > HTTP_FIELDS_MAX)
			return (HTTP_ERR_TOO_LONG);
		if ((r = http_field(p, (size_t)(eol - p), req, &f)) < 0)
			return (r);
	}
	if (req->hr_body == HTTP_BODY_LENGTH && req->hr_length == 0)
		req->hr_body = HTTP_BODY_NONE;
	return (head);
}

size_t
http_build_response(char *buf, size_t len, int status, const char *extra,
    const char *body)
{
	size_t	 n, blen, i;
	int	 r;

	if (status / 100 == 2 && body == NULL)
		/* RFC 9110 section 9.3.6: no content fields on a tunnel. */
		r = snprintf(buf, len, "HTTP/1.1 %d Connection established\r\n"
		    "\r\n", status);
	else {
		blen = body != NULL ? strlen(body) : 0;
		r = snprintf(buf, len, "HTTP/1.1 %d %s\r\nContent-Type: "
		    "text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n%s\r\n", status,
		    http_status_text(status), blen, extra != NULL ? extra : "");
		if (r >= 0 && (size_t)r + blen < len) {
			for (i = 0; i < blen; i++)
				buf[r + i] = (body[i] == '\n' ||
				    (body[i] >= 0x20 && body[i] < 0x7f)) ?
				    body[i] : '?';
			buf[r + blen] = '\0';
			r += (int)blen;
		} else
			r = -1;
	}
	if (r < 0 || (size_t)r >= len)
		return (0);
	n = (size_t)r;
	return (n);
}
