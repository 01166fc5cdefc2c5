/*
 * http_forward.c: a forwarded request, after http_parse_request took it:
 * its head rebuilt for the server (RFC 9110 section 7.6.1, RFC 9112
 * section 3.2.2), and the end of its body found as its bytes go by, by
 * its one length or its chunked framing (RFC 9112 sections 6.3 and 7.1),
 * so that nothing after it is taken for part of it. Pure functions, in
 * the codec library with http.c.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "http_int.h"

/* Fields a proxy never passes on (RFC 9110 section 7.6.1), and ours. */
static const char *const http_hop_fields[] = {
	"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Upgrade",
	"Proxy-Authorization", "Proxy-Authenticate", "Proxy-Authentication-Info",
	"Host",
};

/* Whether a Connection field of the head names the field name (RFC 9110
 * section 7.6.1: those are hop-by-hop too). */
static int
http_connection_names(const uint8_t *buf, const uint8_t *end,
    const uint8_t *name, size_t nn)
{
	const uint8_t	*p, *eol, *v, *t;

	for (p = (const uint8_t *)memchr(buf, '\n', (size_t)(end - buf)) + 1;
	    p < end; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end - p) + 1);
		if ((size_t)(eol - p) < 11 || strncasecmp((const char *)p,
		    "Connection:", 11) != 0)
			continue;
		for (v = p + 11; v < eol; v = t + 1) {
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			for (t = v; t < eol && *t != ','; t++)
				;
			while (t > v && (t[-1] == ' ' || t[-1] == '\t'))
				t--;
			if ((size_t)(t - v) == nn && strncasecmp((const char *)v,
			    (const char *)name, nn) == 0)
				return (1);
			while (t < eol && *t != ',')
				t++;
		}
	}
	return (0);
}

/* Whether a field is left out of the forwarded head. */
static int
http_hop_field(const uint8_t *buf, const uint8_t *end, const uint8_t *p,
    size_t nn)
{
	size_t	 i;

	for (i = 0; i < sizeof(http_hop_fields) / sizeof(http_hop_fields[0]);
	    i++)
		if (http_name_is(p, nn, http_hop_fields[i]))
			return (1);
	/* The body's framing is ours to keep, whatever Connection says. */
	if (http_name_is(p, nn, "Content-Length") ||
	    http_name_is(p, nn, "Transfer-Encoding"))
		return (0);
	return (http_connection_names(buf, end, p, nn));
}

/* The fields of a head (past its first line) copied to out, but the
 * hop-by-hop ones: the new length, or 0 if out is too small. */
static size_t
http_copy_fields(const uint8_t *buf, const uint8_t *first_eol,
    const uint8_t *end, char *out, size_t o, size_t outlen)
{
	const uint8_t	*p, *eol, *colon;

	for (p = first_eol + 2; p < end; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end - p) + 1);
		colon = memchr(p, ':', (size_t)(eol - p));
		if (http_hop_field(buf, end, p, (size_t)(colon - p)))
			continue;
		if (o + (size_t)(eol - p) + 2 >= outlen)
			return (0);
		memcpy(out + o, p, (size_t)(eol - p) + 2);
		o += (size_t)(eol - p) + 2;
	}
	return (o);
}

size_t
http_forward_head(const uint8_t *buf, size_t head,
    const struct http_request *req, char *out, size_t outlen)
{
	struct http_line l;
	const uint8_t	*eol, *end = buf + head - 2;
	size_t		 o, path, an;
	int		 r;
	const char	*root;

	eol = memchr(buf, '\r', head);
	if (req->hr_kind != HTTP_REQ_FORWARD || eol == NULL ||
	    http_request_line(buf, eol, &l) < 0 ||
	    http_url(l.target, l.tlen, &(struct http_request){ 0 }, &path) < 0)
		return (0);
	an = path - 7;
	/*
	 * An empty path is "/" (RFC 9112 section 3.2.1), so is "?q"; but
	 * OPTIONS of a bare authority asks about the server: "*".
	 */
	root = "";
	if (path == l.tlen)
		root = l.mlen == 7 && memcmp(l.method, "OPTIONS", 7) == 0 ?
		    "*" : "/";
	else if (l.target[path] == '?')
		root = "/";
	r = snprintf(out, outlen, "%.*s %s%.*s HTTP/1.%c\r\nHost: %.*s\r\n",
	    (int)l.mlen, l.method, root, (int)(l.tlen - path), l.target + path,
	    l.version[7], (int)an, l.target + 7);
	if (r < 0 || (size_t)r >= outlen)
		return (0);
	if ((o = http_copy_fields(buf, eol, end, out, (size_t)r, outlen)) == 0)
		return (0);
	r = snprintf(out + o, outlen - o, "Via: 1.%c socksgw\r\n"
	    "Connection: close\r\n\r\n", l.version[7]);
	if (r < 0 || (size_t)r >= outlen - o)
		return (0);
	return (o + (size_t)r);
}

/* A field line of a server's head: name, colon, value, nothing else. */
static int
http_response_field(const uint8_t *p, const uint8_t *eol)
{
	const uint8_t	*q;

	for (q = p; q < eol && http_tchar(*q); q++)
		;
	if (q == p || q == eol || *q != ':')
		return (-1);
	for (q++; q < eol; q++)
		if (!http_vchar(*q))
			return (-1);
	return (0);
}

int
http_response_head(const uint8_t *buf, size_t len, char *out, size_t outlen,
    size_t *outn, int *status, int keep)
{
	const uint8_t	*p, *eol, *end;
	size_t		 o;
	int		 head;

	if ((head = http_head_end(buf, len < HTTP_RESPONSE_MAX ? len :
	    HTTP_RESPONSE_MAX)) < 0)
		return (-1);
	if (head == 0)
		return (len >= HTTP_RESPONSE_MAX ? -1 : 0);
	end = buf + head - 2;
	eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
	/* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] */
	if (eol - buf < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
	    (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' ||
	    buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9' || (eol - buf > 12 && buf[12] != ' '))
		return (-1);
	for (p = buf + 12; p < eol; p++)
		if (!http_vchar(*p))
			return (-1);
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + buf[11] - '0';
	for (p = eol + 2; p < end; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end - p) + 1);
		if (http_response_field(p, eol) == -1)
			return (-1);	/* obs-fold included */
	}
	eol = memchr(buf, '\r', (size_t)(end - buf) + 1);
	if ((size_t)(eol - buf) + 2 >= outlen)
		return (-1);
	memcpy(out, buf, (size_t)(eol - buf) + 2);
	if ((o = http_copy_fields(buf, eol, end, out, (size_t)(eol - buf) + 2,
	    outlen)) == 0 || o + 64 >= outlen)
		return (-1);
	/* A 1xx is interim: the final head follows, and says how it ends. */
	if (*status >= 200)
		o += (size_t)snprintf(out + o, outlen - o, "Via: 1.%c socksgw\r\n"
		    "%s", buf[7], keep ? "" : "Connection: close\r\n");
	memcpy(out + o, "\r\n", 2);
	*outn = o + 2;
	return (head);
}

/*
 * Whether the client's connection ends with this request: it said
 * Connection: close (RFC 9112 section 9.6), or speaks HTTP/1.0, whose
 * connections close unless told otherwise.
 */
int
http_request_closes(const uint8_t *buf, size_t head,
    const struct http_request *req)
{
	return (req->hr_http10 || http_connection_names(buf, buf + head - 2,
	    (const uint8_t *)"close", 5));
}

/*
 * Where a response's body ends (RFC 9112 section 6.3), from the server's
 * final head (head bytes of buf, checked by http_response_head): none
 * (204, 304, an answer to HEAD), one Content-Length, or chunked alone.
 * 1 with b set; 0 when only the server's close can end it (no length,
 * another coding, a length twice, or both fields), and the client's
 * connection closes after it: nothing the server sends later can then be
 * read by the client as the answer to another request.
 */
int
http_response_body(const uint8_t *buf, size_t head, int status,
    int head_only, struct http_body_scan *b)
{
	const uint8_t	*p, *eol, *end = buf + head - 2, *v, *ve, *colon;
	uint64_t	 len = 0;
	int		 lengths = 0, codings = 0;

	memset(b, 0, sizeof(*b));
	if (head_only || status == 204 || status == 304) {
		b->hb_kind = HTTP_BODY_NONE;
		return (1);
	}
	for (p = (const uint8_t *)memchr(buf, '\n', (size_t)(end - buf)) + 1;
	    p < end; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end - p) + 1);
		colon = memchr(p, ':', (size_t)(eol - p));
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if (http_name_is(p, (size_t)(colon - p), "Content-Length")) {
			if (lengths++ || ve == v || ve - v > 18)
				return (0);
			for (len = 0; v < ve; v++) {
				if (*v < '0' || *v > '9')
					return (0);
				len = len * 10 + (uint64_t)(*v - '0');
			}
		} else if (http_name_is(p, (size_t)(colon - p),
		    "Transfer-Encoding") && (codings++ ||
		    !http_name_is(v, (size_t)(ve - v), "chunked")))
			return (0);
	}
	if (lengths + codings != 1)
		return (0);
	b->hb_kind = codings ? HTTP_BODY_CHUNKED : HTTP_BODY_LENGTH;
	b->hb_left = codings ? 0 : len;
	return (1);
}

/*
 * Where a chunked body's reader is (http_body_take). Stricter than RFC
 * 9112 section 7.1 allows, where servers are known to read it in
 * different ways: no whitespace after a size, extensions of token bytes
 * only (no quoted strings), sizes below 2^31 (a server that keeps 32 bits
 * of a larger one would find its end elsewhere), trailer lines of a name,
 * a colon and a value. The bytes go on as they came, so the server reads
 * what was checked here.
 */
enum {
	HB_SIZE,		/* chunk-size's hex digits */
	HB_EXT,			/* a chunk extension, to the line's end */
	HB_SIZE_LF,
	HB_DATA,		/* hb_left bytes of chunk data */
	HB_DATA_CR,
	HB_DATA_LF,
	HB_TRAILER,		/* a trailer line's first byte, or CR */
	HB_TRAILER_NAME,
	HB_TRAILER_FIELD,	/* its value */
	HB_TRAILER_LF,
	HB_END_LF		/* the last LF of the body */
};
#define HB_SIZE_DIGITS	8	/* and below 2^31 */

void
http_body_begin(struct http_body_scan *b, const struct http_request *req)
{
	memset(b, 0, sizeof(*b));
	b->hb_kind = req->hr_body;
	b->hb_left = req->hr_body == HTTP_BODY_LENGTH ? req->hr_length : 0;
	b->hb_state = HB_SIZE;
}

static int
http_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return ((c | 0x20) - 'a' + 10);
	return (-1);
}

/* One byte of a chunk's size line or the trailer: 0, or -1 broken. */
static int
http_chunk_byte(struct http_body_scan *b, uint8_t c)
{
	int	 d;

	if (b->hb_state != HB_DATA_CR && b->hb_state != HB_DATA_LF &&
	    ++b->hb_line > HTTP_CHUNK_LINE_MAX)
		return (-1);
	switch (b->hb_state) {
	case HB_SIZE:
		if ((d = http_hex(c)) != -1) {
			if (++b->hb_digits > HB_SIZE_DIGITS ||
			    (b->hb_left << 4 | (uint64_t)d) > 0x7fffffff)
				return (-1);
			b->hb_left = b->hb_left << 4 | (uint64_t)d;
			return (0);
		}
		if (b->hb_digits == 0)
			return (-1);
		b->hb_state = c == '\r' ? HB_SIZE_LF : c == ';' ? HB_EXT : 0xff;
		break;
	case HB_EXT:
		if (c == '\r')
			b->hb_state = HB_SIZE_LF;
		else if (!http_tchar(c) && c != ';' && c != '=')
			return (-1);
		break;
	case HB_SIZE_LF:
		if (c != '\n')
			return (-1);
		b->hb_state = b->hb_left == 0 ? HB_TRAILER : HB_DATA;
		b->hb_line = 0;
		break;
	case HB_DATA_CR:
		b->hb_state = c == '\r' ? HB_DATA_LF : 0xff;
		break;
	case HB_DATA_LF:
		b->hb_state = c == '\n' ? HB_SIZE : 0xff;
		b->hb_digits = 0;
		b->hb_line = 0;
		break;
	case HB_TRAILER:
		/* No obs-fold, no field without a name. */
		b->hb_state = c == '\r' ? HB_END_LF : http_tchar(c) ?
		    HB_TRAILER_NAME : 0xff;
		break;
	case HB_TRAILER_NAME:
		if (c == ':')
			b->hb_state = HB_TRAILER_FIELD;
		else if (!http_tchar(c))
			return (-1);
		break;
	case HB_TRAILER_FIELD:
		if (++b->hb_trailer > HTTP_HEAD_MAX)
			return (-1);
		if (c == '\r')
			b->hb_state = HB_TRAILER_LF;
		else if (!http_vchar(c))
			return (-1);
		break;
	case HB_TRAILER_LF:
		if (c != '\n')
			return (-1);
		b->hb_state = HB_TRAILER;
		b->hb_line = 0;
		break;
	default:
		return (-1);
	}
	return (b->hb_state == 0xff ? -1 : 0);
}

long
http_body_take(struct http_body_scan *b, const uint8_t *p, size_t n,
    int *ended)
{
	size_t	 i = 0, k;

	*ended = 0;
	switch (b->hb_kind) {
	case HTTP_BODY_NONE:
		*ended = 1;
		return (0);
	case HTTP_BODY_LENGTH:
		k = n < b->hb_left ? n : (size_t)b->hb_left;
		b->hb_left -= k;
		*ended = b->hb_left == 0;
		return ((long)k);
	case HTTP_BODY_CHUNKED:
		break;
	}
	while (i < n) {
		if (b->hb_state == HB_DATA) {
			k = n - i < b->hb_left ? n - i : (size_t)b->hb_left;
			b->hb_left -= k;
			i += k;
			if (b->hb_left == 0)
				b->hb_state = HB_DATA_CR;
			continue;
		}
		if (b->hb_state == HB_END_LF) {
			if (p[i] != '\n')
				return (-1);
			b->hb_kind = HTTP_BODY_NONE;	/* ended */
			*ended = 1;
			return ((long)i + 1);
		}
		if (http_chunk_byte(b, p[i]) == -1)
			return (-1);
		i++;
	}
	return ((long)i);
}

