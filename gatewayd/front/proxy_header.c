/*
 * proxy_header.c: the PROXY protocol header (versions 1 and 2, as HAProxy
 * documents them), parsed strictly: a header names the client's address,
 * which every rule, cap and audit record will take as true, so anything
 * out of form is refused rather than read leniently.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>

#include "proxy_header.h"

static const uint8_t	 pp_v2_sig[12] = "\r\n\r\n\0\r\nQUIT\n";
static const char	 pp_v1_sig[] = "PROXY ";

/* Whether the first len bytes agree with the start of sig. */
static int
pp_prefix(const uint8_t *buf, size_t len, const void *sig, size_t siglen)
{
	return (memcmp(buf, sig, len < siglen ? len : siglen) == 0);
}

/* Whether buf may begin a header of either version (for a clear error). */
int
pp_maybe(const uint8_t *buf, size_t len)
{
	return (len > 0 && (pp_prefix(buf, len, pp_v1_sig,
	    sizeof(pp_v1_sig) - 1) || pp_prefix(buf, len, pp_v2_sig,
	    sizeof(pp_v2_sig))));
}

/* A version 1 port: 0 to 65535 in decimal, no sign, no leading zero. */
static int
pp_v1_port(const char *p, size_t n, uint16_t *port)
{
	unsigned long	 v = 0;
	size_t		 i;

	if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
		return (-1);
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return (-1);
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > 65535)
		return (-1);
	*port = (uint16_t)v;
	return (0);
}

/* An address of family af from a field of n bytes, port set after. */
static int
pp_v1_addr(int af, const char *p, size_t n, struct sockaddr_storage *ss)
{
	char	 text[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(text))
		return (-1);
	memcpy(text, p, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)af;
	if (af == AF_INET)
		return (inet_pton(AF_INET, text,
		    &((struct sockaddr_in *)ss)->sin_addr) == 1 ? 0 : -1);
	return (inet_pton(AF_INET6, text,
	    &((struct sockaddr_in6 *)ss)->sin6_addr) == 1 ? 0 : -1);
}

static void
pp_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n", or "PROXY UNKNOWN...\r\n". */
static int
pp_parse_v1(const uint8_t *buf, size_t len, struct pp_header *h)
{
	const char	*p = (const char *)buf, *f[6], *eol;
	size_t		 fl[6], i, n;
	uint16_t	 sport, dport;
	int		 af;

	/* Printable bytes up to the CR: a bare LF or a control is no line. */
	for (eol = p; eol < p + len && eol < p + PP_V1_MAX && *eol != '\r';
	    eol++)
		if (*eol < 0x20 || *eol > 0x7e)
			return (PP_ERR_SYNTAX);
	if (eol == p + len || eol == p + PP_V1_MAX)
		return (len >= PP_V1_MAX ? PP_ERR_LENGTH : 0);
	if ((size_t)(eol - p) + 1 == len)
		return (0);			/* the LF may follow */
	if (eol[1] != '\n')
		return (PP_ERR_SYNTAX);
	n = (size_t)(eol - p);
	memset(h, 0, sizeof(*h));
	h->ph_version = 1;
	/* UNKNOWN: the balancer's own connection; the rest is ignored. */
	if (n >= 13 && memcmp(p + 6, "UNKNOWN", 7) == 0 && (n == 13 ||
	    p[13] == ' ')) {
		h->ph_local = 1;
		return ((int)n + 2);
	}
	/* Six fields, each one space apart: no more, no fewer. */
	for (i = 0, f[0] = p; i < 6; i++) {
		const char	*sp = memchr(f[i], ' ', (size_t)(eol - f[i]));

		fl[i] = (size_t)((sp != NULL && i < 5 ? sp : eol) - f[i]);
		if (i < 5) {
			if (sp == NULL)
				return (PP_ERR_SYNTAX);
			f[i + 1] = sp + 1;
		} else if (sp != NULL)
			return (PP_ERR_SYNTAX);
	}
	if (fl[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
		af = AF_INET;
	else if (fl[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return (PP_ERR_FAMILY);
	if (pp_v1_addr(af, f[2], fl[2], &h->ph_src) == -1 ||
	    pp_v1_addr(af, f[3], fl[3], &h->ph_dst) == -1 ||
	    pp_v1_port(f[4], fl[4], &sport) == -1 ||
	    pp_v1_port(f[5], fl[5], &dport) == -1)
		return (PP_ERR_SYNTAX);
	pp_set_port(&h->ph_src, sport);
	pp_set_port(&h->ph_dst, dport);
	return ((int)n + 2);
}

/* The binary header: signature, version and command, family, length. */
static int
pp_parse_v2(const uint8_t *buf, size_t len, struct pp_header *h)
{
	struct sockaddr_in	*s4, *d4;
	struct sockaddr_in6	*s6, *d6;
	size_t			 n;

	if (len < PP_V2_HEADER)
		return (0);
	if ((buf[12] >> 4) != 2)
		return (PP_ERR_VERSION);
	if ((buf[12] & 0x0f) > 1)
		return (PP_ERR_COMMAND);
	n = (size_t)buf[14] << 8 | buf[15];
	if (PP_V2_HEADER + n > PP_V2_MAX)
		return (PP_ERR_LENGTH);
	if (len < PP_V2_HEADER + n)
		return (0);
	memset(h, 0, sizeof(*h));
	h->ph_version = 2;
	if ((buf[12] & 0x0f) == 0) {
		/* LOCAL: a health check; whatever family it says is unused. */
		h->ph_local = 1;
		return ((int)(PP_V2_HEADER + n));
	}
	buf += PP_V2_HEADER;
	switch (buf[-3]) {
	case 0x11:			/* TCP over IPv4 */
		if (n < 12)
			return (PP_ERR_LENGTH);
		s4 = (struct sockaddr_in *)&h->ph_src;
		d4 = (struct sockaddr_in *)&h->ph_dst;
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, buf, 4);
		memcpy(&d4->sin_addr, buf + 4, 4);
		memcpy(&s4->sin_port, buf + 8, 2);
		memcpy(&d4->sin_port, buf + 10, 2);
		break;
	case 0x21:			/* TCP over IPv6 */
		if (n < 36)
			return (PP_ERR_LENGTH);
		s6 = (struct sockaddr_in6 *)&h->ph_src;
		d6 = (struct sockaddr_in6 *)&h->ph_dst;
		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, buf, 16);
		memcpy(&d6->sin6_addr, buf + 16, 16);
		memcpy(&s6->sin6_port, buf + 32, 2);
		memcpy(&d6->sin6_port, buf + 34, 2);
		break;
	default:
		return (PP_ERR_FAMILY);
	}
	return ((int)(PP_V2_HEADER + n));
}

int
pp_parse(const uint8_t *buf, size_t len, struct pp_header *h)
{
	if (len == 0)
		return (0);
	if (pp_prefix(buf, len, pp_v2_sig, sizeof(pp_v2_sig)))
		return (pp_parse_v2(buf, len, h));
	if (!pp_prefix(buf, len, pp_v1_sig, sizeof(pp_v1_sig) - 1))
		return (PP_ERR_SIGNATURE);
	if (len < sizeof(pp_v1_sig) - 1)
		return (0);
	return (pp_parse_v1(buf, len, h));
}

const char *
pp_strerror(int err)
{
	static const char *const why[] = {
		[-PP_ERR_SIGNATURE] = "no PROXY protocol header",
		[-PP_ERR_SYNTAX] = "a malformed PROXY protocol v1 line",
		[-PP_ERR_VERSION] = "a PROXY protocol v2 header of another "
		    "version",
		[-PP_ERR_COMMAND] = "a PROXY protocol v2 command other than "
		    "LOCAL or PROXY",
		[-PP_ERR_FAMILY] = "a PROXY protocol header for neither TCP "
		    "over IPv4 nor IPv6",
		[-PP_ERR_LENGTH] = "a PROXY protocol header of a wrong length",
	};

	if (err < 0 && err >= PP_ERR_MIN && why[-err] != NULL)
		return (why[-err]);
	return ("a malformed PROXY protocol header");
}
