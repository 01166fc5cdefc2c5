/*
 * base64.c: base64 (RFC 4648, the standard alphabet, padded) for the
 * HTTP front end: Basic credentials and Negotiate tokens in, a Negotiate
 * token out. Strict: a character outside the alphabet, padding anywhere
 * but at the end, or a length that is not a multiple of four is refused.
 */
#include <stddef.h>
#include <stdint.h>

#include "base64.h"

int
b64_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return (c - 'A');
	if (c >= 'a' && c <= 'z')
		return (c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (c - '0' + 52);
	return (c == '+' ? 62 : c == '/' ? 63 : -1);
}

long
b64_decode(const uint8_t *p, size_t n, uint8_t *out, size_t max)
{
	size_t		 i, o = 0, pad = 0;
	uint32_t	 acc = 0;
	int		 v;

	while (n > 0 && p[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if ((n + pad) % 4 != 0 || n == 0 || (pad > 0 && n % 4 != 4 - pad) ||
	    n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1) > max)
		return (-1);
	for (i = 0; i < n; i++) {
		if ((v = b64_value(p[i])) == -1)
			return (-1);
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			out[o++] = (uint8_t)(acc >> 16);
			out[o++] = (uint8_t)(acc >> 8);
			out[o++] = (uint8_t)acc;
			acc = 0;
		}
	}
	if (pad == 2)
		out[o++] = (uint8_t)(acc >> 4);
	else if (pad == 1) {
		out[o++] = (uint8_t)(acc >> 10);
		out[o++] = (uint8_t)(acc >> 2);
	}
	return ((long)o);
}

long
b64_encode(const uint8_t *p, size_t n, char *out, size_t max)
{
	static const char	 abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 i, o = 0;
	uint32_t		 acc;

	if ((n + 2) / 3 * 4 + 1 > max)
		return (-1);
	for (i = 0; i < n; i += 3) {
		acc = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			acc |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			acc |= p[i + 2];
		out[o++] = abc[acc >> 18 & 63];
		out[o++] = abc[acc >> 12 & 63];
		out[o++] = i + 1 < n ? abc[acc >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? abc[acc & 63] : '=';
	}
	out[o] = '\0';
	return ((long)o);
}

