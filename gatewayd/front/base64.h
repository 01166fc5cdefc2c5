/*
 * base64.h: base64 (RFC 4648), strict, in the codec library.
 */
#ifndef BASE64_H
#define BASE64_H

#include <stddef.h>
#include <stdint.h>

/* A character's value, or -1 outside the alphabet ('=' included). */
int	 b64_value(uint8_t);
/* The decoded length, -1 for text that is not base64 or out too small. */
long	 b64_decode(const uint8_t *, size_t, uint8_t *, size_t);
/* The encoded length (out NUL-terminated), -1 if out is too small. */
long	 b64_encode(const uint8_t *, size_t, char *, size_t);

#endif /* BASE64_H */
