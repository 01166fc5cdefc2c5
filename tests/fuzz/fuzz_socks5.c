/*
 * libFuzzer harness for the SOCKS5 / SOCKS4 / RFC 1929 / UDP-header codec
 * and RFC 1961's framing, and the PROXY protocol header (v1 and v2).
 * The first byte picks the parser. Invariants, beyond ASan's "never read
 * past the input" (each call gets a buffer of exactly its length):
 *  - a parser never claims more bytes than it was given;
 *  - every proper prefix of a complete message says "need more" (0);
 *  - an error is one of the codec's own;
 *  - what a parser read is rebuilt and read again to the same fields
 *    (requests and UDP headers round-trip; a reply carries the address).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_header.h"
#include "socks5.h"

#define CHECK(x)	do { if (!(x)) abort(); } while (0)

enum { P_GREETING, P_USERPASS, P_REQUEST, P_SOCKS4, P_UDP, P_GSS, P_PROXY, P_MAX };

static int
parse(int which, const uint8_t *data, size_t len, void *out)
{
	uint8_t	*copy = malloc(len ? len : 1);
	int	 r;

	CHECK(copy != NULL);
	memcpy(copy, data, len);
	switch (which) {
	case P_GREETING:
		r = s5_parse_greeting(copy, len, out);
		break;
	case P_USERPASS:
		r = s5_parse_userpass(copy, len, out);
		break;
	case P_REQUEST:
		r = s5_parse_request(copy, len, out);
		break;
	case P_SOCKS4:
		r = s4_parse_request(copy, len, out);
		break;
	case P_UDP:
		r = s5_parse_udp_header(copy, len, out);
		break;
	case P_PROXY:
		r = pp_parse(copy, len, out);
		break;
	default:
		r = s5_parse_gss_frame(copy, len, S5_GSS_DATA, out);
		/* The token points into the copy, about to be freed. */
		if (r > 0)
			((struct s5_gss_frame *)out)->token = data +
			    S5_GSS_HEADER;
		break;
	}
	free(copy);
	return (r);
}

static void
round_trip_request(const uint8_t *msg, int r, const struct s5_request *req)
{
	uint8_t			 reply[S5_REPLY_MAX];
	size_t			 n;

	if (req->atyp == S5_ATYP_DOMAIN)
		return;
	/* The reply names the same address in the same bytes. */
	n = s5_build_reply(reply, S5_REP_SUCCEEDED,
	    (const struct sockaddr *)&req->addr);
	CHECK(n == (size_t)r);
	CHECK(memcmp(reply + 3, msg + 3, n - 3) == 0);
}

static void
round_trip_udp(const struct s5_udp_header *h)
{
	struct s5_udp_header	 again;
	uint8_t			 buf[S5_REPLY_MAX];
	size_t			 n;

	if (h->atyp == S5_ATYP_DOMAIN)
		return;
	n = s5_build_udp_header(buf, (const struct sockaddr *)&h->addr);
	CHECK(parse(P_UDP, buf, n, &again) == (int)n);
	CHECK(again.atyp == h->atyp && again.port == h->port);
	CHECK(memcmp(&again.addr, &h->addr, sizeof(again.addr)) == 0);
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	union {
		struct s5_greeting	g;
		struct s5_userpass	up;
		struct s5_request	req;
		struct s4_request	s4;
		struct s5_udp_header	udp;
		struct s5_gss_frame	gss;
		struct pp_header	pp;
	} out, scratch;
	int	 which, r, k;

	if (size < 1)
		return (0);
	which = data[0] % P_MAX;
	data++;
	size--;
	memset(&out, 0, sizeof(out));
	r = parse(which, data, size, &out);
	CHECK(r <= (int)size);
	if (r < 0) {
		CHECK(r >= S5_ERR_MIN);
		return (0);
	}
	if (r == 0)
		return (0);
	/* Streams: a prefix waits. (A datagram comes whole: no prefixes.) */
	for (k = 0; k < r && which != P_UDP; k++)
		CHECK(parse(which, data, (size_t)k, &scratch) == 0);
	if (which == P_REQUEST)
		round_trip_request(data, r, &out.req);
	else if (which == P_UDP)
		round_trip_udp(&out.udp);
	else if (which == P_PROXY)
		/* A header names a client, or is the balancer's own. */
		CHECK(out.pp.ph_local || out.pp.ph_src.ss_family == AF_INET ||
		    out.pp.ph_src.ss_family == AF_INET6);
	else if (which == P_GSS) {
		/* The header says the token's length; it rebuilds the same. */
		uint8_t	 h[S5_GSS_HEADER];

		CHECK(r == S5_GSS_HEADER + out.gss.len);
		CHECK(out.gss.token == data + S5_GSS_HEADER);
		s5_build_gss_header(h, S5_GSS_DATA, out.gss.len);
		CHECK(memcmp(h, data, sizeof(h)) == 0);
	}
	else if (which == P_USERPASS)
		CHECK(strlen(out.up.user) == out.up.ulen &&
		    strlen(out.up.pass) == out.up.plen);
	return (0);
}
