/*
 * wipe.c: draining input that may hold a password. The bytes are
 * overwritten in place, chain by chain, before libevent frees or reuses
 * the chains: a pullup would copy them into a new chain and free the old
 * ones unwiped, and a drain alone leaves them in freed memory.
 */
#include <sys/types.h>

#include <string.h>

#include <event2/buffer.h>

#include "wipe.h"

/* Wipes, then drains, the first n bytes of in (all of them if fewer). */
void
wipe_drain(struct evbuffer *in, size_t n)
{
	struct evbuffer_iovec	 v[16];
	struct evbuffer_ptr	 at;
	size_t			 done = 0, k;
	int			 i, nv;

	if (n > evbuffer_get_length(in))
		n = evbuffer_get_length(in);
	while (done < n &&
	    evbuffer_ptr_set(in, &at, done, EVBUFFER_PTR_SET) == 0 &&
	    (nv = evbuffer_peek(in, (ssize_t)(n - done), &at, v, 16)) > 0) {
		for (i = 0; i < nv && i < 16 && done < n; i++) {
			k = v[i].iov_len < n - done ? v[i].iov_len : n - done;
			explicit_bzero(v[i].iov_base, k);
			done += k;
		}
	}
	evbuffer_drain(in, n);
}
