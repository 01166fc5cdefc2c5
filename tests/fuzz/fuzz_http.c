/*
 * libFuzzer harness for the HTTP request codec (gatewayd/front/http.c,
 * http_forward.c).
 * Invariants, beyond ASan's "never read past the input" (each call gets a
 * buffer of exactly its length):
 *  - the parser never claims more bytes than it was given, nor more than
 *    HTTP_HEAD_MAX;
 *  - every proper prefix of a head it accepts says "need more" (0), so a
 *    request split across reads is read the same;
 *  - an error is one of the codec's own, with a status from 400 to 505;
 *  - what it read is well-formed: a name of at most HTTP_NAME_MAX
 *    characters from the allowed set or an address, a port above 0,
 *    credentials without control bytes;
 *  - a response built with any body stays one head and one body;
 *  - a forwarded request's rebuilt head is one head (one empty line, at
 *    its end; every line ends in CRLF), names the judged host, and holds
 *    no Proxy-Authorization;
 *  - the end of its body (the bytes after the head) is found at the same
 *    place whatever the reads' sizes, and never past what was given;
 *  - the same bytes read as a server's response head, rebuilt: one head,
 *    no hop-by-hop field left, and a final one says Connection: close.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <strings.h>

#include "http.h"

#define CHECK(x)	do { if (!(x)) abort(); } while (0)

static int
parse(const uint8_t *data, size_t len, struct http_request *req)
{
	uint8_t	*copy = malloc(len ? len : 1);
	int	 r;

	CHECK(copy != NULL);
	memcpy(copy, data, len);
	r = http_parse_request(copy, len, req);
	free(copy);
	return (r);
}

/* The body after the head, in reads of step bytes: where it ended. */
static long
body_end(const uint8_t *body, size_t len, const struct http_request *req,
    size_t step, int *ended)
{
	struct http_body_scan	 b;
	size_t			 at = 0, n;
	long			 k, total = 0;

	http_body_begin(&b, req);
	*ended = 0;
	k = http_body_take(&b, NULL, 0, ended);
	CHECK(k == 0);
	while (at < len && !*ended) {
		n = len - at < step ? len - at : step;
		if ((k = http_body_take(&b, body + at, n, ended)) < 0)
			return (-1);
		CHECK((size_t)k <= n);
		CHECK((size_t)k == n || *ended);
		total += k;
		at += n;
	}
	return (total);
}

static void
forwarded(const uint8_t *data, size_t head, size_t len,
    const struct http_request *req)
{
	char	 out[HTTP_FORWARD_MAX + 1], *p, *end;
	size_t	 n;
	long	 whole, split;
	int	 ended, ended2;

	n = http_forward_head(data, head, req, out, sizeof(out) - 1);
	CHECK(n > 0 && n <= HTTP_FORWARD_MAX);
	out[n] = '\0';
	CHECK(strlen(out) == n);
	end = strstr(out, "\r\n\r\n");
	CHECK(end != NULL && end + 4 == out + n);
	for (p = out; p < out + n; p++)
		CHECK(*p != '\n' || (p > out && p[-1] == '\r'));
	CHECK(strncasecmp(strstr(out, "\r\n") + 2, "Host: ", 6) == 0);
	for (p = strstr(out, "\r\n"); p != NULL && p < end;
	    p = strstr(p + 2, "\r\n"))
		CHECK(strncasecmp(p + 2, "Proxy-Authorization:", 20) != 0);
	whole = body_end(data + head, len - head, req, len + 1, &ended);
	split = body_end(data + head, len - head, req, 3, &ended2);
	CHECK(whole == split && ended == ended2);
	CHECK(whole <= (long)(len - head));
}

static void
response(const uint8_t *data, size_t len)
{
	static char	 out[HTTP_RESPONSE_MAX + 257];
	char		*p, *end;
	uint8_t		*copy = malloc(len ? len : 1);
	size_t		 n;
	int		 r, status;

	CHECK(copy != NULL);
	memcpy(copy, data, len);
	r = http_response_head(copy, len, out, sizeof(out) - 1, &n, &status,
	    0);
	if (r > 0 && status >= 200) {
		/* Its framing, read from the same bytes: never past them. */
		struct http_body_scan	 b;

		CHECK(http_response_body(copy, (size_t)r, status, 0, &b) >= 0);
	}
	free(copy);
	CHECK(r >= -1 && (size_t)(r > 0 ? r : 0) <= len);
	if (r <= 0)
		return;
	CHECK(status >= 100 && status <= 599 && n < sizeof(out));
	out[n] = '\0';
	end = strstr(out, "\r\n\r\n");
	CHECK(end != NULL && end + 4 == out + n);
	for (p = strstr(out, "\r\n"); p != NULL && p < end;
	    p = strstr(p + 2, "\r\n"))
		CHECK(strncasecmp(p + 2, "Keep-Alive:", 11) != 0 &&
		    strncasecmp(p + 2, "Proxy-Connection:", 17) != 0 &&
		    (strncasecmp(p + 2, "Connection:", 11) != 0 ||
		    strcmp(p + 2, "Connection: close\r\n\r\n") == 0));
	CHECK(status < 200 || strstr(out, "\r\nConnection: close\r\n\r\n") ==
	    end - 19);
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct http_request	 req, again;
	char			 body[256], buf[1024], *p;
	size_t			 i, n;
	int			 r;

	response(data, len);
	r = parse(data, len, &req);
	if (r < 0) {
		CHECK(r >= HTTP_ERR_MIN);
		CHECK(http_error_status(r) >= 400 &&
		    http_error_status(r) <= 505);
		return (0);
	}
	CHECK((size_t)r <= len && r <= HTTP_HEAD_MAX);
	if (r == 0)
		return (0);
	CHECK(req.hr_kind == HTTP_REQ_PAC || req.hr_port > 0);
	if (req.hr_kind == HTTP_REQ_FORWARD)
		forwarded(data, (size_t)r, len, &req);
	if (req.hr_kind != HTTP_REQ_PAC && !req.hr_is_addr) {
		CHECK(req.hr_host[0] != '\0');
		CHECK(strlen(req.hr_host) <= HTTP_NAME_MAX);
		CHECK(strspn(req.hr_host, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") ==
		    strlen(req.hr_host));
	}
	for (p = req.hr_user; *p != '\0'; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	for (p = req.hr_pass; *p != '\0'; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	/* Split anywhere before its end, the head is "need more". */
	for (i = 0; i < (size_t)r; i += 1 + i / 16)
		CHECK(parse(data, i, &again) == 0);
	/* Any body stays a body: no CR, no control byte. */
	n = len < sizeof(body) - 1 ? len : sizeof(body) - 1;
	memcpy(body, data, n);
	body[n] = '\0';
	if ((n = http_build_response(buf, sizeof(buf), 403, NULL, body)) > 0) {
		p = strstr(buf, "\r\n\r\n");
		CHECK(p != NULL);
		for (p += 4; p < buf + n; p++)
			CHECK(*p == '\n' || (*p >= 0x20 && *p < 0x7f));
	}
	return (0);
}
