/*
 * front_http_int.h: what the HTTP front end's files share: a forwarded
 * request's exchange (front_forward.c), which front_http.c starts.
 */
#ifndef FRONT_HTTP_INT_H
#define FRONT_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct evbuffer;
struct session;

#define HTTP_EARLY_MAX	1024	/* bytes buffered after the head */

/* A forwarded request's exchange (s_fe). */
struct front_state {
	struct http_body_scan	 fs_body;	/* the request's body */
	struct http_body_scan	 fs_resp;	/* the response's, when kept */
	struct evbuffer		*fs_next;	/* the client's bytes past it */
	size_t			 fs_head;	/* the rebuilt head's length */
	uint8_t			 fs_keep;	/* another request may follow */
	uint8_t			 fs_head_only;	/* HEAD: a response, no body */
	uint8_t			 fs_req_done;	/* the request's body ended */
	uint8_t			 fs_in_body;	/* past the final response head */
};
/* What a client may send past its request while it waits: a next head. */
#define HTTP_NEXT_MAX	(HTTP_HEAD_MAX + HTTP_EARLY_MAX)

/* front_forward.c */
long	 http_relay_client(struct session *, const uint8_t *, size_t);
int	 http_connected(struct session *);
int	 http_relay_remote(struct session *, struct evbuffer *,
	    struct evbuffer *);
int	 http_next(struct session *, struct evbuffer *);
void	 http_free(struct session *);

#endif /* FRONT_HTTP_INT_H */
