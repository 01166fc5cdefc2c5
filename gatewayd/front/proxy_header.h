/*
 * proxy_header.h: the PROXY protocol header a load balancer puts before a
 * client's first byte (HAProxy's PROXY protocol, versions 1 and 2): who
 * the client is. A pure parser over a byte buffer, in the codec library
 * with socks5.c and http.c, so the unit tests and the fuzzer drive the
 * code the daemon runs.
 *
 * pp_parse returns the header's length (> 0), 0 while more bytes are
 * needed, or a negative PP_ERR_* when the bytes can never become a
 * header. It never reads past len.
 */
#ifndef PROXY_HEADER_H
#define PROXY_HEADER_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

/* Version 1: one line of at most 107 bytes; version 2: 16 + its length. */
#define PP_V1_MAX		107
#define PP_V2_HEADER		16
/*
 * Version 2's TLVs (ALPN, authority, a cloud's endpoint id) are skipped;
 * a header longer than this is refused rather than buffered.
 */
#define PP_V2_MAX		(PP_V2_HEADER + 2048)

enum pp_error {
	PP_ERR_SIGNATURE = -1,	/* neither version's start */
	PP_ERR_SYNTAX = -2,	/* a version 1 line out of form */
	PP_ERR_VERSION = -3,	/* version 2's version nibble is not 2 */
	PP_ERR_COMMAND = -4,	/* neither LOCAL nor PROXY */
	PP_ERR_FAMILY = -5,	/* not TCP over IPv4 or IPv6 */
	PP_ERR_LENGTH = -6,	/* too short for its addresses, or too long */
	PP_ERR_MIN = PP_ERR_LENGTH
};

struct pp_header {
	/*
	 * 1: a health check of the balancer's own (v2 LOCAL, v1 UNKNOWN),
	 * which names no client; 0: src and dst are set.
	 */
	int			 ph_local;
	uint8_t			 ph_version;	/* 1 or 2 */
	struct sockaddr_storage	 ph_src;	/* the client, port set */
	struct sockaddr_storage	 ph_dst;	/* the address it reached */
};

int		 pp_parse(const uint8_t *, size_t, struct pp_header *);
int		 pp_maybe(const uint8_t *, size_t);
const char	*pp_strerror(int);

#endif /* PROXY_HEADER_H */
