/*
 * socks5.h: the RFC 1928 / RFC 1929 codec. Pure functions over byte
 * buffers, no I/O and no allocation, so the unit tests and the fuzzer drive
 * exactly the code the daemon runs. It has its own header because it is a
 * library of its own that tests link without the rest of gatewayd.
 *
 * Every parser returns the number of bytes the message took (> 0), 0 when
 * more bytes are needed, or a negative S5_ERR_* when the bytes can never
 * become a valid message. A parser never reads past len.
 */
#ifndef SOCKS5_H
#define SOCKS5_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#define S5_VERSION		0x05
#define S5_AUTH_VERSION		0x01	/* RFC 1929 sub-negotiation */

#define S5_METHOD_NONE		0x00
#define S5_METHOD_GSSAPI	0x01
#define S5_METHOD_USERPASS	0x02
#define S5_METHOD_UNACCEPTABLE	0xff

#define S5_CMD_CONNECT		0x01
#define S5_CMD_BIND		0x02
#define S5_CMD_UDP_ASSOCIATE	0x03

#define S5_ATYP_IPV4		0x01
#define S5_ATYP_DOMAIN		0x03
#define S5_ATYP_IPV6		0x04

#define S5_REP_SUCCEEDED	0x00
#define S5_REP_GENERAL_FAILURE	0x01
#define S5_REP_NOT_ALLOWED	0x02
#define S5_REP_NET_UNREACHABLE	0x03
#define S5_REP_HOST_UNREACHABLE	0x04
#define S5_REP_CONN_REFUSED	0x05
#define S5_REP_TTL_EXPIRED	0x06
#define S5_REP_CMD_UNSUPPORTED	0x07
#define S5_REP_ATYP_UNSUPPORTED	0x08

/* The largest well-formed message of each kind. */
#define S5_GREETING_MAX		(2 + 255)
#define S5_USERPASS_MAX		(3 + 255 + 255)
#define S5_REQUEST_MAX		(4 + 1 + 255 + 2)
#define S5_REPLY_MAX		(4 + 16 + 2)

/* A host name the policy and a resolver read alike (HTTP's too). */
int	 s5_valid_name(const uint8_t *, size_t);

enum s5_error {
	S5_ERR_VERSION = -1,	/* VER is not 5 (or 1 for RFC 1929) */
	S5_ERR_NO_METHODS = -2,	/* NMETHODS is 0 */
	S5_ERR_RESERVED = -3,	/* RSV is not 0 */
	S5_ERR_COMMAND = -4,	/* CMD is not 1, 2 or 3 */
	S5_ERR_ATYP = -5,	/* ATYP is not 1, 3 or 4 */
	S5_ERR_DOMAIN = -6,	/* empty name, or a NUL or control byte */
	S5_ERR_TOO_LONG = -7,	/* SOCKS4: a field without its NUL */
	S5_ERR_CREDENTIALS = -8,	/* RFC 1929: a NUL in user or password */
	S5_ERR_GSS_ABORT = -9,	/* RFC 1961: the peer aborted */
	S5_ERR_GSS_TYPE = -10,	/* RFC 1961: not the message type due */
	S5_ERR_MIN = S5_ERR_GSS_TYPE
};

struct s5_greeting {
	uint8_t		 nmethods;
	uint8_t		 methods[255];
};

struct s5_userpass {
	uint8_t		 ulen;
	uint8_t		 plen;
	char		 user[256];	/* NUL-terminated */
	char		 pass[256];
};

struct s5_request {
	uint8_t		 cmd;
	uint8_t		 atyp;
	uint16_t	 port;		/* host order */
	/* For IPV4/IPV6: the address with the port set. */
	struct sockaddr_storage addr;
	/* For DOMAIN: the name, NUL-terminated. */
	char		 name[256];
};

/*
 * SOCKS4 and SOCKS4a (no RFC; the de facto protocol): a request is
 * VN=4 CD DSTPORT DSTIP USERID NUL, and for 4a, with DSTIP 0.0.0.x
 * (x != 0), a host name and NUL after the user id. The reply is 8 bytes:
 * 0, 0x5A (granted) or 0x5B (rejected), DSTPORT, DSTIP.
 */
#define S4_VERSION		0x04
#define S4_CMD_CONNECT		0x01
#define S4_CMD_BIND		0x02
#define S4_GRANTED		0x5a
#define S4_REJECTED		0x5b
#define S4_REQUEST_MAX		(8 + 256 + 256)
#define S4_REPLY_LEN		8

struct s4_request {
	uint8_t		 cmd;
	uint16_t	 port;		/* host order */
	struct sockaddr_storage addr;	/* SOCKS4: the address, port set */
	char		 userid[256];
	char		 name[256];	/* SOCKS4a: the host name, or "" */
};

/*
 * RFC 1961 (GSSAPI): every message after the greeting is VER=1 MTYP
 * LEN(2, big-endian) TOKEN, LEN up to 65535; an abort is VER=1 MTYP=0xff
 * alone. The token of a protection message is one wrapped byte, the
 * level.
 */
#define S5_GSS_VERSION		0x01
#define S5_GSS_AUTH		0x01	/* context establishment */
#define S5_GSS_PROTECTION	0x02	/* protection-level subnegotiation */
#define S5_GSS_DATA		0x03	/* encapsulated SOCKS and user data */
#define S5_GSS_ABORT		0xff
#define S5_GSS_HEADER		4
#define S5_GSS_TOKEN_MAX	65535
#define S5_GSS_INTEGRITY	1	/* protection levels */
#define S5_GSS_CONFIDENTIALITY	2
#define S5_GSS_SELECTIVE	3

struct s5_gss_frame {
	uint16_t	 len;
	const uint8_t	*token;		/* into the parsed buffer */
};
int	 s5_parse_gss_frame(const uint8_t *, size_t, uint8_t,
	    struct s5_gss_frame *);
void	 s5_build_gss_header(uint8_t *, uint8_t, uint16_t);

/* RFC 1928 section 7: RSV(2) FRAG ATYP DST.ADDR DST.PORT, then data. */
struct s5_udp_header {
	uint8_t		 frag;
	uint8_t		 atyp;
	uint16_t	 port;		/* host order */
	struct sockaddr_storage addr;	/* IPV4/IPV6, port set */
	char		 name[256];	/* DOMAIN */
};

int		 s5_parse_udp_header(const uint8_t *, size_t,
		    struct s5_udp_header *);
size_t		 s5_build_udp_header(uint8_t *, const struct sockaddr *);

int		 s4_parse_request(const uint8_t *, size_t, struct s4_request *);
void		 s4_build_reply(uint8_t *, uint8_t, const struct sockaddr *);

int		 s5_parse_greeting(const uint8_t *, size_t, struct s5_greeting *);
uint8_t		 s5_select_method(const struct s5_greeting *, uint8_t);
int		 s5_parse_userpass(const uint8_t *, size_t, struct s5_userpass *);
int		 s5_parse_request(const uint8_t *, size_t, struct s5_request *);
size_t		 s5_build_reply(uint8_t *, uint8_t, const struct sockaddr *);
uint8_t		 s5_error_reply(int);
const char	*s5_strerror(int);
const char	*s5_reply_str(uint8_t);
const char	*s5_cmd_str(uint8_t);

#endif /* SOCKS5_H */
