/*
 * escape.c: attacker-chosen text (user names, SOCKS4 idents, destination
 * names, PAM messages) made safe for one sink each. Text is escaped where
 * it is written, for that sink, never once "at the door": what is safe in
 * a log line is not safe in a CSV cell.
 *
 * Every sink keeps valid UTF-8 as it is, except for characters that steer
 * a terminal or a reader: C0 and C1 controls, DEL, and the bidirectional
 * overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make text
 * read differently from what it holds. Invalid UTF-8 is never passed on.
 *
 * Each function writes at most len bytes including the terminating NUL,
 * never cuts an escape or a character in two, and returns the length
 * written (without the NUL).
 */
#include <stdio.h>
#include <string.h>

#include "escape.h"

/*
 * The length of the valid UTF-8 sequence at p (1 to 4), or 0. Overlong
 * forms, surrogates and code points past U+10FFFF are invalid; *cp gets
 * the code point.
 */
static size_t
utf8_seq(const unsigned char *p, unsigned *cp)
{
	size_t		 n, i;
	unsigned	 c = p[0], min;

	if (c < 0x80) {
		*cp = c;
		return (1);
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return (0);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (0);	/* also stops at the NUL */
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return (0);
	*cp = c;
	return (n);
}

/* Characters no sink shows as themselves. */
static int
esc_is_control(unsigned cp)
{
	return (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069));
}

/* Appends piece (n bytes) if it fits whole; 0 when it does not. */
static int
esc_put(char *out, size_t len, size_t *at, const char *piece, size_t n)
{
	if (*at + n >= len)
		return (0);
	memcpy(out + *at, piece, n);
	*at += n;
	return (1);
}

#define ESC_SD	0x1	/* RFC 5424 PARAM-VALUE: also '"' and ']' */

/*
 * C style, as vis(3) with VIS_CSTYLE writes it: a backslash is doubled,
 * \n \r \t are named, every other control or invalid byte is \xNN.
 */
static size_t
esc_vis(char *out, size_t len, const char *text, int flags)
{
	const unsigned char	*p = (const unsigned char *)text;
	char			 piece[16];
	size_t			 at = 0, n, i;
	unsigned		 cp;

	if (len == 0)
		return (0);
	while (*p != '\0') {
		n = utf8_seq(p, &cp);
		if (n == 0 || esc_is_control(cp)) {
			/* Each byte of it, so nothing is lost. */
			if (n == 0)
				n = 1;
			piece[0] = '\0';
			for (i = 0; i < n; i++) {
				if (p[i] == '\n')
					strcat(piece, "\\n");
				else if (p[i] == '\r')
					strcat(piece, "\\r");
				else if (p[i] == '\t')
					strcat(piece, "\\t");
				else
					snprintf(piece + strlen(piece),
					    sizeof(piece) - strlen(piece),
					    "\\x%02x", p[i]);
			}
			if (!esc_put(out, len, &at, piece, strlen(piece)))
				break;
		} else if (cp == '\\' || ((flags & ESC_SD) &&
		    (cp == '"' || cp == ']'))) {
			piece[0] = '\\';
			piece[1] = (char)cp;
			if (!esc_put(out, len, &at, piece, 2))
				break;
		} else if (!esc_put(out, len, &at, (const char *)p, n))
			break;
		p += n;
	}
	out[at] = '\0';
	return (at);
}

/* A log line, or a cell of a table on the admin's terminal. */
size_t
esc_log(char *out, size_t len, const char *text)
{
	return (esc_vis(out, len, text, 0));
}

/* An RFC 5424 structured-data parameter value (section 6.3.3). */
size_t
esc_sd(char *out, size_t len, const char *text)
{
	return (esc_vis(out, len, text, ESC_SD));
}

/*
 * A JSON string, quotes included: always valid UTF-8 (RFC 8259). Invalid
 * bytes become U+FFFD, controls \u00XX; U+2028 and U+2029 are escaped too,
 * so that the text is also valid JavaScript.
 */
size_t
esc_json(char *out, size_t len, const char *text)
{
	const unsigned char	*p = (const unsigned char *)text;
	char			 piece[16];
	size_t			 at = 0, n;
	unsigned		 cp;

	if (len < 3) {
		if (len > 0)
			out[0] = '\0';
		return (0);
	}
	out[at++] = '"';
	len--;		/* room for the closing quote */
	while (*p != '\0') {
		n = utf8_seq(p, &cp);
		if (n == 0) {
			n = 1;
			snprintf(piece, sizeof(piece), "\\ufffd");
		} else if (cp == '"' || cp == '\\')
			snprintf(piece, sizeof(piece), "\\%c", (char)cp);
		else if (cp == '\n')
			snprintf(piece, sizeof(piece), "\\n");
		else if (cp == '\t')
			snprintf(piece, sizeof(piece), "\\t");
		else if (esc_is_control(cp) || cp == 0x2028 || cp == 0x2029)
			snprintf(piece, sizeof(piece), "\\u%04x", cp);
		else {
			memcpy(piece, p, n);
			piece[n] = '\0';
		}
		if (!esc_put(out, len, &at, piece, strlen(piece)))
			break;
		p += n;
	}
	out[at++] = '"';
	out[at] = '\0';
	return (at);
}

/*
 * A CSV field (RFC 4180): quoted when it holds a separator or a quote.
 * Controls and invalid UTF-8 are written as in a log line first, so no
 * field holds a line break. A field a spreadsheet would run as a formula
 * (a leading '=', '+', '-' or '@') gets a leading apostrophe, OWASP's
 * advice against CSV injection.
 */
size_t
esc_csv(char *out, size_t len, const char *text)
{
	char		 vis[ESC_FIELD_MAX];
	size_t		 at = 0, i, n;
	unsigned	 cp;
	int		 formula;

	if (len < 3) {
		if (len > 0)
			out[0] = '\0';
		return (0);
	}
	esc_log(vis, sizeof(vis), text);
	formula = vis[0] != '\0' && strchr("=+-@", vis[0]) != NULL;
	if (!formula && strpbrk(vis, ",\"") == NULL)
		return (esc_log(out, len, text));	/* cut safely */
	if (len < 4) {		/* no room for a quoted field */
		out[0] = '\0';
		return (0);
	}
	out[at++] = '"';
	len--;		/* room for the closing quote */
	if (formula)
		out[at++] = '\'';
	for (i = 0; vis[i] != '\0'; i += n) {
		/* vis is valid UTF-8: whole characters are copied. */
		if ((n = utf8_seq((const unsigned char *)vis + i, &cp)) == 0)
			n = 1;
		if (!esc_put(out, len, &at, vis[i] == '"' ? "\"\"" : vis + i,
		    vis[i] == '"' ? 2 : n))
			break;
	}
	out[at++] = '"';
	out[at] = '\0';
	return (at);
}
