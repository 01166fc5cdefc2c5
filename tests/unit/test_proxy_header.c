/*
 * test_proxy_header.c: the PROXY protocol header (front/proxy_header.c),
 * versions 1 and 2: each prefix waits, the addresses come out as sent,
 * and every out-of-form header is refused, never read leniently.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy_header.h"

/* Every proper prefix waits; the whole header parses to its length. */
static int
parse_whole(const void *msg, size_t len, struct pp_header *h)
{
	size_t	 k;

	for (k = 0; k < len; k++)
		assert_int_equal(pp_parse(msg, k, h), 0);
	return (pp_parse(msg, len, h));
}

static void
assert_addr(const struct sockaddr_storage *ss, const char *ip, int port)
{
	char	 text[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    text, sizeof(text));
		assert_int_equal(ntohs(((const struct sockaddr_in *)ss)->
		    sin_port), port);
	} else {
		assert_int_equal(ss->ss_family, AF_INET6);
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->
		    sin6_addr, text, sizeof(text));
		assert_int_equal(ntohs(((const struct sockaddr_in6 *)ss)->
		    sin6_port), port);
	}
	assert_string_equal(text, ip);
}

static void
test_v1(void **state)
{
	const char	 v4[] = "PROXY TCP4 192.0.2.7 198.51.100.1 51234 1080\r\nX";
	const char	 v6[] = "PROXY TCP6 2001:db8::7 2001:db8::1 0 65535\r\n";
	const char	 unknown[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
	struct pp_header h;

	(void)state;
	assert_int_equal(parse_whole(v4, sizeof(v4) - 2, &h),
	    (int)sizeof(v4) - 2);
	/* What follows the header is not its business. */
	assert_int_equal(pp_parse((const uint8_t *)v4, sizeof(v4) - 1, &h),
	    (int)sizeof(v4) - 2);
	assert_int_equal(h.ph_version, 1);
	assert_int_equal(h.ph_local, 0);
	assert_addr(&h.ph_src, "192.0.2.7", 51234);
	assert_addr(&h.ph_dst, "198.51.100.1", 1080);
	assert_int_equal(parse_whole(v6, sizeof(v6) - 1, &h),
	    (int)sizeof(v6) - 1);
	assert_addr(&h.ph_src, "2001:db8::7", 0);
	assert_addr(&h.ph_dst, "2001:db8::1", 65535);
	/* UNKNOWN: the balancer's own connection, no client named. */
	assert_int_equal(parse_whole(unknown, sizeof(unknown) - 1, &h),
	    (int)sizeof(unknown) - 1);
	assert_int_equal(h.ph_local, 1);
	assert_int_equal(pp_parse((const uint8_t *)"PROXY UNKNOWN\r\n", 15,
	    &h), 15);
}

static void
test_v1_malformed(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234 1080\n",
		"PROXY TCP4 192.0.2.7  198.51.100.1 51234 1080\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 51234 1080 \r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 051234 1080\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 65536 1080\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 +1 1080\r\n",
		"PROXY TCP4 2001:db8::7 198.51.100.1 1 1080\r\n",
		"PROXY TCP6 192.0.2.7 2001:db8::1 1 1080\r\n",
		"PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
		"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
		"PROXY UNKNOWNX\r\n",
		"PROXY TCP4 192.0.2.007 198.51.100.1 1 2\r\n",
	};
	char		 longline[PP_V1_MAX + 8];
	struct pp_header h;
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(pp_parse((const uint8_t *)bad[i], strlen(bad[i]),
		    &h) < 0);
	/* No line end within 107 bytes: never a header. */
	memcpy(longline, "PROXY TCP4 ", 11);
	memset(longline + 11, '1', sizeof(longline) - 11);
	assert_int_equal(pp_parse((uint8_t *)longline, sizeof(longline), &h),
	    PP_ERR_LENGTH);
	/* Not a header at all: SOCKS5's greeting, an HTTP request. */
	assert_int_equal(pp_parse((const uint8_t *)"\x05\x01\x00", 3, &h),
	    PP_ERR_SIGNATURE);
	assert_int_equal(pp_parse((const uint8_t *)"PROXZ", 5, &h),
	    PP_ERR_SIGNATURE);
	assert_int_equal(pp_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16,
	    &h), PP_ERR_SIGNATURE);
	assert_true(pp_maybe((const uint8_t *)"PROX", 4));
	assert_false(pp_maybe((const uint8_t *)"POST", 4));
	assert_string_equal(pp_strerror(PP_ERR_SIGNATURE),
	    "no PROXY protocol header");
}

/* A version 2 header: the signature, then command, family, length. */
static size_t
v2(uint8_t *buf, uint8_t cmd, uint8_t fam, const void *addrs, size_t n,
    size_t tlv)
{
	memcpy(buf, "\r\n\r\n\0\r\nQUIT\n", 12);
	buf[12] = cmd;
	buf[13] = fam;
	buf[14] = (uint8_t)((n + tlv) >> 8);
	buf[15] = (uint8_t)(n + tlv);
	memcpy(buf + 16, addrs, n);
	memset(buf + 16 + n, 0xee, tlv);
	return (16 + n + tlv);
}

static void
test_v2(void **state)
{
	const uint8_t	 a4[12] = { 192, 0, 2, 7, 198, 51, 100, 1, 0xc8, 0x22,
			    0x04, 0x38 };
	uint8_t		 a6[36], buf[PP_V2_MAX + 16];
	struct pp_header h;
	size_t		 n;

	(void)state;
	/* PROXY, TCP over IPv4, with a TLV after the addresses. */
	n = v2(buf, 0x21, 0x11, a4, sizeof(a4), 20);
	assert_int_equal(parse_whole(buf, n, &h), (int)n);
	assert_int_equal(h.ph_version, 2);
	assert_int_equal(h.ph_local, 0);
	assert_addr(&h.ph_src, "192.0.2.7", 51234);
	assert_addr(&h.ph_dst, "198.51.100.1", 1080);
	/* TCP over IPv6. */
	memset(a6, 0, sizeof(a6));
	inet_pton(AF_INET6, "2001:db8::7", a6);
	inet_pton(AF_INET6, "2001:db8::1", a6 + 16);
	a6[33] = 80;
	a6[35] = 81;
	n = v2(buf, 0x21, 0x21, a6, sizeof(a6), 0);
	assert_int_equal(parse_whole(buf, n, &h), (int)n);
	assert_addr(&h.ph_src, "2001:db8::7", 80);
	assert_addr(&h.ph_dst, "2001:db8::1", 81);
	/* LOCAL (a health check): no client, whatever the family says. */
	n = v2(buf, 0x20, 0x00, a4, 0, 0);
	assert_int_equal(parse_whole(buf, n, &h), (int)n);
	assert_int_equal(h.ph_local, 1);
	/* Refused: version 1 nibble, command 2, UDP, UNIX, short, long. */
	n = v2(buf, 0x11, 0x11, a4, sizeof(a4), 0);
	assert_int_equal(pp_parse(buf, n, &h), PP_ERR_VERSION);
	n = v2(buf, 0x22, 0x11, a4, sizeof(a4), 0);
	assert_int_equal(pp_parse(buf, n, &h), PP_ERR_COMMAND);
	n = v2(buf, 0x21, 0x12, a4, sizeof(a4), 0);
	assert_int_equal(pp_parse(buf, n, &h), PP_ERR_FAMILY);
	n = v2(buf, 0x21, 0x31, a4, sizeof(a4), 0);
	assert_int_equal(pp_parse(buf, n, &h), PP_ERR_FAMILY);
	n = v2(buf, 0x21, 0x11, a4, 8, 0);
	assert_int_equal(pp_parse(buf, n, &h), PP_ERR_LENGTH);
	n = v2(buf, 0x21, 0x21, a6, 12, 0);
	assert_int_equal(pp_parse(buf, n, &h), PP_ERR_LENGTH);
	n = v2(buf, 0x21, 0x11, a4, sizeof(a4), PP_V2_MAX - 16 - 12 + 1);
	assert_int_equal(pp_parse(buf, 16, &h), PP_ERR_LENGTH);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_v2),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
