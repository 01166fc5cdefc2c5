/*
 * front_forward.c: a forwarded request's exchange, once its server is
 * connected: the client's body framed as it goes (bytes past it kept for
 * the next request, or dropped), the server's head rebuilt, and, on a
 * kept connection, the response's body followed to its end and no
 * further, after which the client's next request goes to a new session
 * (session_next). Started by front_http.c (http_forward).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "addr.h"
#include "http.h"
#include "log.h"

#include "base/wipe.h"

#include "front.h"
#include "front_http_int.h"

/*
 * Bytes the client sent past its request: its next request, kept for the
 * session that will read it (session_next), up to HTTP_NEXT_MAX. More,
 * or a client that asked to close, and they are dropped (wiped by the
 * caller) and the connection closes after this exchange.
 */
static void
http_keep_next(struct session *s, const uint8_t *p, size_t n)
{
	struct front_state	*fs = s->s_fe;

	if (!fs->fs_keep || n == 0)
		return;
	if ((fs->fs_next == NULL && (fs->fs_next = evbuffer_new()) == NULL) ||
	    evbuffer_get_length(fs->fs_next) + n > HTTP_NEXT_MAX ||
	    evbuffer_add(fs->fs_next, p, n) == -1) {
		fs->fs_keep = 0;
		if (fs->fs_next != NULL)
			wipe_drain(fs->fs_next, evbuffer_get_length(
			    fs->fs_next));
	}
}

long
http_relay_client(struct session *s, const uint8_t *p, size_t n)
{
	long	 k;
	int	 ended;

	if ((k = http_body_take(&s->s_fe->fs_body, p, n, &ended)) < 0)
		return (-1);
	if (ended)
		s->s_fe->fs_req_done = 1;
	http_keep_next(s, p + k, n - (size_t)k);
	return (k);
}

/*
 * The server is connected. A tunnel says 200; a forwarded request's head
 * is first in the client's buffered bytes, and of what came after it,
 * only its body goes (the relay frames the rest as it comes).
 */
int
http_connected(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->s_bev), *keep;
	uint8_t		 reply[FRONT_REPLY_MAX], *p;
	size_t		 early, head;
	long		 k;
	int		 ended;

	if (s->s_fe == NULL)
		return (session_reply(s, reply, http_build_response((char *)
		    reply, sizeof(reply), 200, NULL, NULL)));
	head = s->s_fe->fs_head;
	early = evbuffer_get_length(in) - head;
	if (early == 0)
		return (0);
	if ((p = evbuffer_pullup(in, -1)) == NULL)
		return (-1);
	if ((k = http_body_take(&s->s_fe->fs_body, p + head, early,
	    &ended)) < 0) {
		s->s_errno = EPROTO;
		return (-1);
	}
	if (ended)
		s->s_fe->fs_req_done = 1;
	if ((size_t)k == early)
		return (0);
	http_keep_next(s, p + head + k, early - (size_t)k);
	/*
	 * Bytes past the body: kept above for the next request, never sent
	 * on. (A bufferevent's input may not be added to at its end, only at
	 * its start.)
	 */
	if ((keep = evbuffer_new()) == NULL)
		return (-1);
	k = evbuffer_remove_buffer(in, keep, head + (size_t)k) ==
	    (int)(head + (size_t)k) ? 0 : -1;
	wipe_drain(in, evbuffer_get_length(in));	/* credentials, maybe */
	if (k == 0 && evbuffer_prepend_buffer(in, keep) == -1)
		k = -1;
	evbuffer_free(keep);
	return ((int)k);
}

/*
 * A kept response's body, to its end and no further: what the server
 * sends past it is dropped, since the client could only read it as the
 * answer to its next request, which this server never saw. 2 once the
 * response is complete, 0 until then, -1 when its framing breaks.
 */
static int
http_relay_body(struct session *s, struct evbuffer *pending,
    struct evbuffer *out)
{
	size_t	 n = evbuffer_get_length(pending);
	uint8_t	*p = NULL;
	long	 k;
	int	 ended;

	if (n > 0 && (p = evbuffer_pullup(pending, -1)) == NULL)
		return (-1);
	if ((k = http_body_take(&s->s_fe->fs_resp, p, n, &ended)) < 0 ||
	    evbuffer_remove_buffer(pending, out, (size_t)k) != (int)k)
		return (-1);
	if (!ended)
		return (0);
	if (evbuffer_get_length(pending) > 0) {
		log_debug("session %llu: %zu bytes past the response dropped",
		    (unsigned long long)s->s_id, evbuffer_get_length(pending));
		evbuffer_drain(pending, evbuffer_get_length(pending));
	}
	return (2);
}

/*
 * The server's response head, rebuilt (http_response_head). When the
 * client may send another request and the response says where its body
 * ends, the connection is kept: the body is followed to its end
 * (http_relay_body) and the client's next request goes to a new session,
 * judged on its own, with a new connection to its server (never this
 * one: a request for another site must not reach this server). Else the
 * client is told to close, and the rest passes as it comes until the
 * server closes. Interim (1xx) heads pass, rebuilt, before the final one.
 * A server that answers as a proxy would (407) or switches protocols
 * (101, though Upgrade was never sent on) is cut off: the client gets no
 * answer rather than that one.
 */
int
http_relay_remote(struct session *s, struct evbuffer *pending,
    struct evbuffer *out)
{
	struct front_state	*fs = s->s_fe;
	char			 head[HTTP_RESPONSE_MAX + 256];
	char			 dst[ADDR_STRLEN + HTTP_NAME_MAX];
	uint8_t			*p;
	size_t			 len, n;
	int			 r, status;

	for (;;) {
		if (fs->fs_in_body)
			return (http_relay_body(s, pending, out));
		len = evbuffer_get_length(pending);
		if (len > HTTP_RESPONSE_MAX)
			len = HTTP_RESPONSE_MAX;
		if ((p = evbuffer_pullup(pending, (ssize_t)len)) == NULL &&
		    len > 0)
			return (-1);
		if ((r = http_response_head(p, len, head, sizeof(head), &n,
		    &status, 0)) <= 0)
			return (r);
		if (status == 407 || status == 101) {
			session_dst_text(s, dst, sizeof(dst));
			log_warnx("session %llu: %s answered %d, which a "
			    "server must not: cut off", (unsigned long long)
			    s->s_id, dst, status);
			return (-1);
		}
		if (status >= 200 && fs->fs_keep && http_response_body(p,
		    (size_t)r, status, fs->fs_head_only, &fs->fs_resp) == 1 &&
		    http_response_head(p, len, head, sizeof(head), &n, &status,
		    1) == r)
			fs->fs_in_body = 1;
		else if (status >= 200)
			fs->fs_keep = 0;
		if (evbuffer_add(out, head, n) == -1 ||
		    evbuffer_drain(pending, (size_t)r) == -1)
			return (-1);
		if (status >= 200 && !fs->fs_in_body)
			return (evbuffer_add_buffer(out, pending) == 0 ? 1 :
			    -1);
	}
}

/*
 * The exchange is complete (http_relay_body said 2): the connection
 * carries the client's next request when the client may send one, its
 * request's body has ended, and the response's end was known; with what
 * it sent already.
 */
int
http_next(struct session *s, struct evbuffer *next)
{
	struct front_state	*fs = s->s_fe;

	if (!fs->fs_keep || !fs->fs_req_done || !fs->fs_in_body)
		return (0);
	return (fs->fs_next == NULL || evbuffer_add_buffer(next,
	    fs->fs_next) == 0);
}

void
http_free(struct session *s)
{
	struct front_state	*fs = s->s_fe;

	if (fs->fs_next != NULL) {
		/* It may hold the next request's credentials. */
		wipe_drain(fs->fs_next, evbuffer_get_length(fs->fs_next));
		evbuffer_free(fs->fs_next);
		fs->fs_next = NULL;
	}
}

