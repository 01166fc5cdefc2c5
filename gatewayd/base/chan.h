/*
 * chan.h: typed messages on the channels between gatewayd's processes.
 *
 * Every message is one SOCK_SEQPACKET record: a fixed header (its type,
 * the length of what follows, the session it concerns) and a payload of
 * exactly that length. A method with several round trips (GSSAPI,
 * Negotiate) is a sequence of messages under one session id; a reader
 * checks the length before it looks at a payload, so a short, long or
 * truncated message is refused as a whole.
 */
#ifndef CHAN_H
#define CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct chan_hdr {
	uint16_t	 ch_type;
	uint16_t	 ch_flags;
	uint32_t	 ch_len;	/* payload bytes after the header */
	uint64_t	 ch_sid;	/* the session, or 0 */
};

#define CHAN_MAX	(256 * 1024)	/* the largest message, header too */

/* As root: room for bursts past wmem_max; both ends of a pair. */
void	 chan_bufsize(int, int);
/* One message: 0, or -1 with errno (EAGAIN with MSG_DONTWAIT). */
int	 chan_send(int, uint16_t, uint64_t, const void *, size_t, int);
/*
 * The next message into hdr and buf (at most cap bytes of payload): the
 * payload length, or -1 with errno 0 at the end of the channel, EAGAIN
 * (MSG_DONTWAIT), EBADMSG (malformed or too long: the channel is not to
 * be trusted further), or a socket error.
 */
ssize_t	 chan_recv(int, struct chan_hdr *, void *, size_t, int);

#endif
