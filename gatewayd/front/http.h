/*
 * http.h: the HTTP/1.1 proxy request codec (RFC 9110, RFC 9112): a
 * request's head parsed, a response's head built. Pure functions over
 * byte buffers, no I/O and no allocation, in the codec library beside
 * socks5.c, so the unit tests and the fuzzer drive exactly what the
 * daemon runs.
 *
 * The parser is strict where leniency has let requests be read two ways
 * (RFC 9112 section 11): lines end in CRLF, no whitespace before a
 * field's colon, no folded lines, no control bytes in a value, one
 * Proxy-Authorization at most, and a CONNECT carries no body.
 */
#ifndef HTTP_H
#define HTTP_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX		8192	/* request line and fields */
#define HTTP_FIELDS_MAX		64
#define HTTP_NAME_MAX		255	/* a CONNECT's host */
#define HTTP_CRED_MAX		255	/* a Basic user id or password */

enum http_error {
	HTTP_ERR_MALFORMED = -1,	/* 400 */
	HTTP_ERR_TOO_LONG = -2,		/* 431: head past HTTP_HEAD_MAX */
	HTTP_ERR_METHOD = -3,		/* 501: not CONNECT, not the PAC file */
	HTTP_ERR_VERSION = -4,		/* 505: not HTTP/1.0 or 1.1 */
	HTTP_ERR_TARGET = -5,		/* 400: not host:port */
	HTTP_ERR_CREDENTIALS = -6,	/* 400: Basic credentials unreadable */
	HTTP_ERR_MIN = HTTP_ERR_CREDENTIALS
};

enum http_kind {
	HTTP_REQ_CONNECT,		/* a tunnel: hr_host or hr_addr, port */
	HTTP_REQ_PAC,			/* GET or HEAD /proxy.pac, /wpad.dat */
};

enum http_auth {
	HTTP_AUTH_NONE,			/* no Proxy-Authorization */
	HTTP_AUTH_BASIC,		/* hr_user, hr_pass set */
	HTTP_AUTH_OTHER			/* a scheme not taken (yet) */
};

struct http_request {
	enum http_kind		 hr_kind;
	int			 hr_head_only;	/* HEAD */
	char			 hr_host[HTTP_NAME_MAX + 1];	/* a name */
	struct sockaddr_storage	 hr_addr;	/* or an address and port */
	int			 hr_is_addr;
	uint16_t		 hr_port;
	enum http_auth		 hr_auth;
	char			 hr_user[HTTP_CRED_MAX + 1];
	char			 hr_pass[HTTP_CRED_MAX + 1];
};

/*
 * A request's head (a CONNECT, or a PAC file's GET): its length (> 0), 0
 * when more bytes are needed, or a negative HTTP_ERR_*. The caller wipes
 * req (a password).
 */
int	 http_parse_request(const uint8_t *, size_t, struct http_request *);
int	 http_error_status(int);
const char *http_strerror(int);
const char *http_status_text(int);
/*
 * A response head with extra (a block of "Name: value\r\n" lines, or
 * NULL) and a text/plain body (or NULL): its length, 0 if it does not
 * fit. Bytes of body that are not printable ASCII are sent as '?'.
 */
size_t	 http_build_response(char *, size_t, int, const char *,
	    const char *);

#endif /* HTTP_H */
