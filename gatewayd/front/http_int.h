/*
 * http_int.h: what http.c shares with http_forward.c, inside the codec.
 */
#ifndef HTTP_INT_H
#define HTTP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* The request line's three parts (validated by http_parse_request). */
struct http_line {
	const uint8_t	*method, *target, *version;
	size_t		 mlen, tlen;
};

int	 http_head_end(const uint8_t *, size_t);
int	 http_tchar(uint8_t);
int	 http_vchar(uint8_t);
int	 http_name_is(const uint8_t *, size_t, const char *);
int	 http_request_line(const uint8_t *, const uint8_t *, struct http_line *);
int	 http_url(const uint8_t *, size_t, struct http_request *, size_t *);

#endif /* HTTP_INT_H */
