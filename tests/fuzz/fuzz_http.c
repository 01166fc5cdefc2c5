/*
 * libFuzzer harness for the HTTP request codec (gatewayd/front/http.c).
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
 *  - a response built with any body stays one head and one body.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct http_request	 req, again;
	char			 body[256], buf[1024], *p;
	size_t			 i, n;
	int			 r;

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
	CHECK(req.hr_kind == HTTP_REQ_CONNECT || req.hr_kind == HTTP_REQ_PAC);
	CHECK(req.hr_kind == HTTP_REQ_PAC || req.hr_port > 0);
	if (req.hr_kind == HTTP_REQ_CONNECT && !req.hr_is_addr) {
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
