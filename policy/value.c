/*
 * value.c: the values rules and lists hold, parsed strictly and written
 * back in one canonical form, so that socksctl stores what the engine
 * reads and an operator's typo is an error that says what is wrong.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "policy_int.h"

static int	pv_prefix_match(const uint8_t *, const uint8_t *, int);

static const char *const pv_day_names[7] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};

/* Ranges that only a rule naming them opens (policy.h). */
static const struct {
	const char	*sr_text;
	const char	*sr_name;
} pv_special[] = {
	{ "0.0.0.0/8", "this-network" },
	{ "127.0.0.0/8", "loopback" },
	{ "169.254.0.0/16", "link-local" },
	{ "224.0.0.0/4", "multicast" },
	{ "240.0.0.0/4", "reserved" },
	{ "100.64.0.0/10", "shared-address (CGNAT)" },
	{ "192.0.0.0/24", "IETF protocol assignments" },
	{ "198.18.0.0/15", "benchmarking" },
	{ "::/128", "unspecified" },
	{ "::1/128", "loopback" },
	{ "fe80::/10", "link-local" },
	{ "fec0::/10", "site-local" },
	{ "ff00::/8", "multicast" },
	{ "64:ff9b:1::/48", "local-use NAT64" },
	{ "fd00:ec2::254/128", "cloud metadata" },
};

/*
 * IPv6 forms that carry IPv4 addresses, and where: a destination in one
 * is judged by the IPv4 addresses it carries too (decide.c), so that
 * `deny --dst 10.0.0.0/8` also holds for 64:ff9b::a00:1 on a DNS64
 * network. IPv4-mapped addresses are folded to IPv4 before anything else.
 */
static const struct {
	uint8_t		 ev_prefix[4];
	int		 ev_len;		/* bits of the prefix */
	uint8_t		 ev_at[2][4];		/* byte offsets, one per address */
	int		 ev_n;
	uint8_t		 ev_xor;		/* Teredo obfuscates the client */
	const char	*ev_name;
} pv_embedding[] = {
	{ { 0x00, 0x64, 0xff, 0x9b }, 32, { { 12, 13, 14, 15 } }, 1, 0,
	    "NAT64" },
	{ { 0x00, 0x64, 0xff, 0x9b }, 48, { { 6, 7, 9, 10 } }, 1, 0,
	    "local-use NAT64" },
	{ { 0x20, 0x02 }, 16, { { 2, 3, 4, 5 } }, 1, 0, "6to4" },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, { { 4, 5, 6, 7 },
	    { 12, 13, 14, 15 } }, 2, 0xff, "Teredo" },
	{ { 0 }, 96, { { 12, 13, 14, 15 } }, 1, 0, "IPv4-compatible" },
};

/*
 * The IPv4 addresses the IPv6 address b carries (as 4-byte groups in
 * out), how many (0 to 2), and the form's name.
 */
int
pv_embedded_v4(const uint8_t *b, uint8_t out[2][4], const char **form)
{
	static const uint8_t	 zero[16];
	size_t			 i;
	int			 k, j;

	for (i = 0; i < sizeof(pv_embedding) / sizeof(pv_embedding[0]); i++) {
		/* The local-use NAT64 prefix is 64:ff9b:1::/48. */
		if (pv_embedding[i].ev_len == 48 && (b[4] != 0 || b[5] != 1))
			continue;
		if (pv_embedding[i].ev_len == 96) {
			/* :: and ::1 are IPv6's own, not IPv4-compatible. */
			if (memcmp(b, zero, 15) == 0 && b[15] <= 1)
				continue;
			if (memcmp(b, zero, 12) != 0)
				continue;
		} else if (!pv_prefix_match(b, pv_embedding[i].ev_prefix,
		    pv_embedding[i].ev_len > 32 ? 32 : pv_embedding[i].ev_len))
			continue;
		if (pv_embedding[i].ev_len == 32 &&
		    pv_embedding[i].ev_prefix[0] == 0x00 &&
		    memcmp(b + 4, zero, 8) != 0)
			continue;	/* 64:ff9b::/96: bytes 4-11 are zero */
		for (k = 0; k < pv_embedding[i].ev_n; k++)
			for (j = 0; j < 4; j++)
				out[k][j] = b[pv_embedding[i].ev_at[k][j]] ^
				    (k == 1 ? pv_embedding[i].ev_xor : 0);
		*form = pv_embedding[i].ev_name;
		return (pv_embedding[i].ev_n);
	}
	return (0);
}

/* ::ffff:a.b.c.d, on bytes of any alignment. */
static int
pv_is_v4mapped(const uint8_t *b)
{
	static const uint8_t	 prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
				    0xff, 0xff };

	return (memcmp(b, prefix, sizeof(prefix)) == 0);
}

/* The address of sa as bytes (IPv4-mapped IPv6 folded to IPv4). */
int
pv_sockaddr_bytes(const struct sockaddr *sa, uint8_t *out, int *family)
{
	const struct sockaddr_in6	*sin6;

	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = AF_INET;
		return (0);
	}
	if (sa->sa_family != AF_INET6)
		return (-1);
	sin6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(out, &sin6->sin6_addr.s6_addr[12], 4);
		*family = AF_INET;
	} else {
		memcpy(out, &sin6->sin6_addr, 16);
		*family = AF_INET6;
	}
	return (0);
}

static int
pv_prefix_match(const uint8_t *a, const uint8_t *b, int len)
{
	int	 full = len / 8, rest = len % 8;

	if (memcmp(a, b, (size_t)full) != 0)
		return (0);
	if (rest == 0)
		return (1);
	return (((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0);
}

int
pv_cidr_parse(const char *text, struct pv_cidr *c, const char **why)
{
	char		 host[INET6_ADDRSTRLEN + 1];
	const char	*slash = strchr(text, '/');
	size_t		 hlen = slash ? (size_t)(slash - text) : strlen(text);
	uint8_t		 masked[16];
	long		 len;
	char		*ep;
	int		 max, i;

	memset(c, 0, sizeof(*c));
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "not an address";
		return (-1);
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return (-1);
	}
	len = max;
	if (slash != NULL) {
		errno = 0;
		len = strtol(slash + 1, &ep, 10);
		if (slash[1] == '\0' || *ep != '\0' || errno != 0 || len < 0 ||
		    len > max) {
			*why = max == 32 ? "bad prefix length (0 to 32)" :
			    "bad prefix length (0 to 128)";
			return (-1);
		}
	}
	c->len = (uint8_t)len;
	memset(masked, 0, sizeof(masked));
	for (i = 0; i < len / 8; i++)
		masked[i] = c->addr[i];
	if (len % 8)
		masked[len / 8] = c->addr[len / 8] & (0xff << (8 - len % 8));
	if (memcmp(masked, c->addr, (size_t)max / 8) != 0) {
		*why = "host bits set after the prefix length";
		return (-1);
	}
	/* ::ffff:a.b.c.d/N is the IPv4 prefix a.b.c.d/(N-96). */
	if (c->family == AF_INET6 && c->len >= 96 &&
	    pv_is_v4mapped(c->addr)) {
		memmove(c->addr, c->addr + 12, 4);
		memset(c->addr + 4, 0, 12);
		c->family = AF_INET;
		c->len -= 96;
	}
	return (0);
}

int
pv_cidr_contains(const struct pv_cidr *c, const struct sockaddr *sa)
{
	uint8_t	 a[16];
	int	 family;

	if (pv_sockaddr_bytes(sa, a, &family) == -1 || family != c->family)
		return (0);
	return (pv_prefix_match(a, c->addr, c->len));
}

/* Whether every address of the prefix is in a special-purpose range. */
int
pv_cidr_special(const struct pv_cidr *c)
{
	struct pv_cidr	 r;
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(pv_special) / sizeof(pv_special[0]); i++) {
		if (pv_cidr_parse(pv_special[i].sr_text, &r, &why) == -1)
			continue;
		if (r.family == c->family && c->len >= r.len &&
		    pv_prefix_match(c->addr, r.addr, r.len))
			return (1);
	}
	return (0);
}

/* The special-purpose range holding sa, by name, or NULL. */
const char *
policy_special_range(const struct sockaddr *sa)
{
	struct pv_cidr	 r;
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(pv_special) / sizeof(pv_special[0]); i++) {
		if (pv_cidr_parse(pv_special[i].sr_text, &r, &why) == 0 &&
		    pv_cidr_contains(&r, sa))
			return (pv_special[i].sr_name);
	}
	return (NULL);
}

int
policy_parse_cidr(const char *text, char *out, size_t outlen,
    const char **why)
{
	struct pv_cidr	 c;
	char		 ip[INET6_ADDRSTRLEN];

	if (pv_cidr_parse(text, &c, why) == -1)
		return (-1);
	inet_ntop(c.family, c.addr, ip, sizeof(ip));
	snprintf(out, outlen, "%s/%u", ip, c.len);
	return (0);
}

/*
 * A host name: lower-cased, without a trailing dot, labels of letters,
 * digits, '-' and '_' (1 to 63 bytes, 253 in all). "*.example.com" is
 * kept as such: it stands for example.com and every name under it.
 */
int
policy_parse_domain(const char *text, char *out, size_t outlen,
    const char **why)
{
	const char	*p = text;
	size_t		 n = 0, label = 0;
	int		 wild = 0;

	if (strncmp(p, "*.", 2) == 0) {
		wild = 1;
		p += 2;
	}
	if (outlen < 256) {
		*why = "internal: buffer too small";
		return (-1);
	}
	if (wild) {
		memcpy(out, "*.", 2);
		n = 2;
	}
	for (; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)tolower((unsigned char)*p);

		if (ch == '.') {
			if (label == 0) {
				*why = "empty label";
				return (-1);
			}
			if (p[1] == '\0')
				break;		/* a trailing dot is dropped */
			label = 0;
		} else if (isalnum(ch) || ch == '-' || ch == '_') {
			if (++label > 63) {
				*why = "label longer than 63 bytes";
				return (-1);
			}
		} else {
			*why = strchr(p, '*') ? "'*' only as a leading '*.'" :
			    "not a host name (letters, digits, '-', '_', '.')";
			return (-1);
		}
		if (n >= 255) {
			*why = "longer than 253 bytes";
			return (-1);
		}
		out[n++] = (char)ch;
	}
	if (n == (size_t)(wild ? 2 : 0)) {
		*why = "empty host name";
		return (-1);
	}
	if (n - (wild ? 2 : 0) > 253) {
		*why = "longer than 253 bytes";
		return (-1);
	}
	out[n] = '\0';
	return (0);
}

int
pv_port_parse(const char *text, uint16_t *lo, uint16_t *hi, const char **why)
{
	unsigned long	 a, b;
	char		*ep;

	errno = 0;
	a = strtoul(text, &ep, 10);
	if (ep == text || errno != 0 || a < 1 || a > 65535) {
		*why = "ports are 1 to 65535";
		return (-1);
	}
	b = a;
	if (*ep == '-') {
		text = ep + 1;
		b = strtoul(text, &ep, 10);
		if (ep == text || errno != 0 || b < 1 || b > 65535) {
			*why = "ports are 1 to 65535";
			return (-1);
		}
		if (b < a) {
			*why = "range ends before it starts";
			return (-1);
		}
	}
	if (*ep != '\0') {
		*why = "expected a port or a range N-M";
		return (-1);
	}
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return (0);
}

int
policy_parse_port(const char *text, char *out, size_t outlen,
    const char **why)
{
	uint16_t	 lo, hi;

	if (pv_port_parse(text, &lo, &hi, why) == -1)
		return (-1);
	if (lo == hi)
		snprintf(out, outlen, "%u", lo);
	else
		snprintf(out, outlen, "%u-%u", lo, hi);
	return (0);
}

int
pv_country_index(const char *cc)
{
	if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' ||
	    cc[2] != '\0')
		return (-1);
	return ((cc[0] - 'A') * 26 + (cc[1] - 'A'));
}

int
policy_parse_country(const char *text, char *out, size_t outlen,
    const char **why)
{
	char	 cc[3];

	if (strlen(text) != 2 || !isalpha((unsigned char)text[0]) ||
	    !isalpha((unsigned char)text[1])) {
		*why = "expected a two-letter ISO 3166 country code";
		return (-1);
	}
	cc[0] = (char)toupper((unsigned char)text[0]);
	cc[1] = (char)toupper((unsigned char)text[1]);
	cc[2] = '\0';
	snprintf(out, outlen, "%s", cc);
	return (0);
}

static int
pv_day(const char *p, size_t len)
{
	int	 i;

	if (len != 3)
		return (-1);
	for (i = 0; i < 7; i++)
		if (strncasecmp(p, pv_day_names[i], 3) == 0)
			return (i);
	return (-1);
}

static int
pv_minutes(const char *p, size_t len, int allow_24)
{
	int	 h, m;

	if (len != 5 || !isdigit((unsigned char)p[0]) ||
	    !isdigit((unsigned char)p[1]) || p[2] != ':' ||
	    !isdigit((unsigned char)p[3]) || !isdigit((unsigned char)p[4]))
		return (-1);
	h = (p[0] - '0') * 10 + (p[1] - '0');
	m = (p[3] - '0') * 10 + (p[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
		return (-1);
	return (h * 60 + m);
}

/*
 * "Mon-Fri 08:00-18:00", "Sat,Sun 10:00-14:00", "Fri-Mon 22:00-06:00"
 * (a window that ends at or before it starts runs into the next day).
 */
int
pv_time_parse(const char *text, struct pv_time *t, const char **why)
{
	const char	*sp = strchr(text, ' '), *p, *end, *dash, *tdash;
	int		 a, b, d;

	memset(t, 0, sizeof(*t));
	if (sp == NULL) {
		*why = "expected DAYS HH:MM-HH:MM, e.g. 'Mon-Fri 08:00-18:00'";
		return (-1);
	}
	for (p = text; p < sp; p = end + 1) {
		end = memchr(p, ',', (size_t)(sp - p));
		if (end == NULL)
			end = sp;
		dash = memchr(p, '-', (size_t)(end - p));
		a = pv_day(p, (size_t)((dash ? dash : end) - p));
		b = dash ? pv_day(dash + 1, (size_t)(end - dash - 1)) : a;
		if (a == -1 || b == -1) {
			*why = "days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, "
			    "as a list (Sat,Sun) or range (Mon-Fri)";
			return (-1);
		}
		for (d = a;; d = (d + 1) % 7) {
			t->days |= (uint8_t)(1 << d);
			if (d == b)
				break;
		}
		if (end == sp)
			break;
	}
	p = sp + 1;
	tdash = strchr(p, '-');
	if (tdash == NULL ||
	    (a = pv_minutes(p, (size_t)(tdash - p), 0)) == -1 ||
	    (b = pv_minutes(tdash + 1, strlen(tdash + 1), 1)) == -1) {
		*why = "hours are HH:MM-HH:MM, from 00:00 to 24:00";
		return (-1);
	}
	if (a == b) {
		*why = "the window is empty (start equals end)";
		return (-1);
	}
	t->start = (uint16_t)a;
	t->end = (uint16_t)b;
	return (0);
}

int
pv_time_match(const struct pv_time *t, const struct tm *tm)
{
	int	 now = tm->tm_hour * 60 + tm->tm_min;
	int	 yesterday = (tm->tm_wday + 6) % 7;

	if (t->start < t->end)
		return ((t->days & (1 << tm->tm_wday)) && now >= t->start &&
		    now < t->end);
	return (((t->days & (1 << tm->tm_wday)) && now >= t->start) ||
	    ((t->days & (1 << yesterday)) && now < t->end));
}

int
policy_parse_time(const char *text, char *out, size_t outlen,
    const char **why)
{
	static const int	 order[7] = { 1, 2, 3, 4, 5, 6, 0 };
	struct pv_time		 t;
	size_t			 n = 0;
	int			 i, j;

	if (pv_time_parse(text, &t, why) == -1)
		return (-1);
	/* Days in week order, runs of three or more as ranges. */
	for (i = 0; i < 7; i = j) {
		if (!(t.days & (1 << order[i]))) {
			j = i + 1;
			continue;
		}
		for (j = i; j < 7 && (t.days & (1 << order[j])); j++)
			;
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? "," : "",
		    pv_day_names[order[i]]);
		if (j - i == 2)
			n += (size_t)snprintf(out + n, outlen - n, ",%s",
			    pv_day_names[order[j - 1]]);
		else if (j - i > 2)
			n += (size_t)snprintf(out + n, outlen - n, "-%s",
			    pv_day_names[order[j - 1]]);
	}
	snprintf(out + n, outlen - n, " %02u:%02u-%02u:%02u", t.start / 60,
	    t.start % 60, t.end / 60, t.end % 60);
	return (0);
}

int
policy_parse_cmd(const char *text, enum policy_cmd *cmd)
{
	if (strcmp(text, "connect") == 0)
		*cmd = POLICY_CMD_CONNECT;
	else if (strcmp(text, "bind") == 0)
		*cmd = POLICY_CMD_BIND;
	else if (strcmp(text, "udp") == 0)
		*cmd = POLICY_CMD_UDP;
	else
		return (-1);
	return (0);
}

const char *
policy_cmd_name(enum policy_cmd cmd)
{
	switch (cmd) {
	case POLICY_CMD_CONNECT:
		return ("connect");
	case POLICY_CMD_BIND:
		return ("bind");
	case POLICY_CMD_UDP:
		return ("udp");
	}
	return ("-");
}
