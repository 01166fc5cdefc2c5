/*
 * bev.c: bufferevents through their layers.
 *
 * A filter's output buffer empties as soon as it has wrapped what it was
 * given: the bytes then wait in the buffer under it, not yet in the
 * kernel. Whoever half-closes or closes a socket once "everything is
 * written" must look at every layer, or the last bytes are lost.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bev.h"

/* Bytes written to bev that the kernel has not taken yet, all layers. */
size_t
bev_unsent(struct bufferevent *bev)
{
	size_t	 n = 0;

	for (; bev != NULL; bev = bufferevent_get_underlying(bev))
		n += evbuffer_get_length(bufferevent_get_output(bev));
	return (n);
}

/*
 * Frees bev and the layers under it, whose events go now: the caller
 * closes the socket next, and libevent frees a layer only once the one
 * over it is gone (later, while a callback is pending), when its events
 * would name a descriptor that may be another socket's by then.
 */
void
bev_free(struct bufferevent *bev)
{
	struct bufferevent	*b;

	for (b = bev; b != NULL; b = bufferevent_get_underlying(b))
		bufferevent_disable(b, EV_READ | EV_WRITE);
	bufferevent_free(bev);
}
