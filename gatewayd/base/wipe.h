/*
 * wipe.h: bytes that held a password leave no copy behind (wipe.c).
 */
#ifndef WIPE_H
#define WIPE_H

#include <stddef.h>

struct evbuffer;

void	 wipe_drain(struct evbuffer *, size_t);

#endif /* WIPE_H */
