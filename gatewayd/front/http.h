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
 * Proxy-Authorization at most, and a CONNECT carries no body. A
 * forwarded request's body has one length or none (section 6.3): both
 * Transfer-Encoding and Content-Length, two lengths, a coding other than
 * chunked, and an unreadable length are refused, never guessed at.
 */
#ifndef HTTP_H
#define HTTP_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A request line and fields: 20 KiB, room for a Kerberos token of
 * AUTH_TOKEN_MAX bytes (Active Directory's ticket with the user's groups)
 * in base64 beside a browser's usual fields.
 */
#define HTTP_HEAD_MAX		20480
#define HTTP_FIELDS_MAX		64
#define HTTP_NAME_MAX		255	/* a CONNECT's host */
#define HTTP_CRED_MAX		255	/* a Basic user id or password */
#define HTTP_TOKEN_MAX		12000	/* a Negotiate token, decoded */
/* A forwarded head: the client's, minus hop-by-hop fields, plus these. */
#define HTTP_FORWARD_MAX	(HTTP_HEAD_MAX + 512)
#define HTTP_CHUNK_LINE_MAX	4096	/* a chunk's size line, a trailer's */
#define HTTP_RESPONSE_MAX	16384	/* a server's response head */

enum http_error {
	HTTP_ERR_MALFORMED = -1,	/* 400 */
	HTTP_ERR_TOO_LONG = -2,		/* 431: head past HTTP_HEAD_MAX */
	HTTP_ERR_METHOD = -3,		/* 501: not CONNECT, not the PAC file */
	HTTP_ERR_VERSION = -4,		/* 505: not HTTP/1.0 or 1.1 */
	HTTP_ERR_TARGET = -5,		/* 400: not host:port */
	HTTP_ERR_CREDENTIALS = -6,	/* 400: Basic credentials unreadable */
	HTTP_ERR_LENGTH = -7,		/* 400: no single, valid body length */
	HTTP_ERR_CODING = -8,		/* 501: a transfer coding not chunked */
	HTTP_ERR_URL = -9,		/* 400: not an http:// URL we forward */
	HTTP_ERR_MIN = HTTP_ERR_URL
};

enum http_kind {
	HTTP_REQ_CONNECT,		/* a tunnel: hr_host or hr_addr, port */
	HTTP_REQ_PAC,			/* GET or HEAD /proxy.pac, /wpad.dat */
	HTTP_REQ_FORWARD,		/* an absolute-form http:// request */
};

/* How a forwarded request's body ends (RFC 9112 section 6.3). */
enum http_body {
	HTTP_BODY_NONE,
	HTTP_BODY_LENGTH,		/* Content-Length: hr_length bytes */
	HTTP_BODY_CHUNKED		/* Transfer-Encoding: chunked */
};

enum http_auth {
	HTTP_AUTH_NONE,			/* no Proxy-Authorization */
	HTTP_AUTH_BASIC,		/* hr_user, hr_pass set */
	HTTP_AUTH_NEGOTIATE,		/* hr_token_at, hr_token_len set */
	HTTP_AUTH_OTHER			/* a scheme not taken */
};

struct http_request {
	enum http_kind		 hr_kind;
	int			 hr_head_only;	/* HEAD: an answer without body */
	char			 hr_host[HTTP_NAME_MAX + 1];	/* a name */
	struct sockaddr_storage	 hr_addr;	/* or an address and port */
	int			 hr_is_addr;
	uint16_t		 hr_port;
	enum http_auth		 hr_auth;
	char			 hr_user[HTTP_CRED_MAX + 1];
	char			 hr_pass[HTTP_CRED_MAX + 1];
	/* Negotiate (RFC 4559): where its base64 token is in the head. */
	size_t			 hr_token_at;
	size_t			 hr_token_len;
	/* HTTP_REQ_FORWARD: where the body ends; the head is rebuilt by
	 * http_forward_head() from the same bytes. */
	enum http_body		 hr_body;
	uint64_t		 hr_length;
	int			 hr_http10;	/* HTTP/1.0: sent on as 1.0 */
};

/*
 * Where a forwarded body ends, followed as its bytes go by: a length
 * counted down, or a chunked body's framing read (sizes, the CRLF after
 * each chunk, the last chunk, the trailer section) without holding any of
 * it. Bytes past the end belong to no request this one let through.
 */
struct http_body_scan {
	enum http_body		 hb_kind;
	uint8_t			 hb_state;	/* chunked: where in the frame */
	uint8_t			 hb_digits;
	uint16_t		 hb_line;	/* bytes of the current line */
	uint32_t		 hb_trailer;	/* bytes of trailer fields */
	uint64_t		 hb_left;	/* of the length, or the chunk */
};

/*
 * A request's head (a CONNECT, or a PAC file's GET): its length (> 0), 0
 * when more bytes are needed, or a negative HTTP_ERR_*. The caller wipes
 * req (a password).
 */
int	 http_parse_request(const uint8_t *, size_t, struct http_request *);
/*
 * A forwarded request's head, from the same bytes http_parse_request()
 * took (head is its length): origin-form request line, Host set to the
 * judged authority, hop-by-hop fields (RFC 9110 section 7.6.1) and
 * Proxy-Authorization left out, Via and Connection: close added. Its
 * length, 0 if out is too small.
 */
size_t	 http_forward_head(const uint8_t *, size_t, const struct http_request *,
	    char *, size_t);
/*
 * A server's response head to a forwarded request, rebuilt for the
 * client: the status line as it came, hop-by-hop fields (Connection and
 * the fields it names, Keep-Alive, Proxy-Connection, Upgrade, TE,
 * Proxy-Authenticate) left out, Via added, and Connection: close unless
 * keep (the gateway then knows where the body ends: http_response_body).
 * Returns the length of the head taken from buf (> 0; *outn bytes written
 * to out, *status its code), 0 when more bytes are needed, or -1 for a
 * head that is malformed or longer than HTTP_RESPONSE_MAX, or out too
 * small.
 */
int	 http_response_head(const uint8_t *, size_t, char *, size_t, size_t *,
	    int *, int);
int	 http_response_body(const uint8_t *, size_t, int, int,
	    struct http_body_scan *);
int	 http_request_closes(const uint8_t *, size_t,
	    const struct http_request *);
void	 http_body_begin(struct http_body_scan *, const struct http_request *);
/*
 * n more bytes after the head: how many belong to the body (all of them,
 * or fewer when it ends among them; *ended set when it has), or -1 when
 * the framing is broken.
 */
long	 http_body_take(struct http_body_scan *, const uint8_t *, size_t,
	    int *);
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
