/*
 * escape.h: attacker-chosen text, escaped for one sink each (log lines and
 * terminals, RFC 5424 structured data, JSON, CSV).
 */
#ifndef ESCAPE_H
#define ESCAPE_H

#include <stddef.h>

#define ESC_FIELD_MAX	2048	/* longest escaped field a sink writes */

size_t	esc_log(char *, size_t, const char *);
size_t	esc_sd(char *, size_t, const char *);
size_t	esc_json(char *, size_t, const char *);
size_t	esc_csv(char *, size_t, const char *);

#endif
