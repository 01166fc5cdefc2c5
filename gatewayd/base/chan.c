/*
 * chan.c: typed messages on the channels between gatewayd's processes
 * (chan.h). Used by the proxy and auditd; the payload's meaning is the
 * caller's.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <string.h>

#include "log.h"

#include "chan.h"

/*
 * Room for a burst of messages. As root with CAP_NET_ADMIN, past
 * net.core.wmem_max; without it (the systemd unit's bounding set leaves
 * it out) the kernel's limit holds, and a small one is said once, with
 * the setting that lifts it, since bursts of logins or audit records
 * would meet a full channel sooner than designed.
 */
void
chan_bufsize(int fd, int bytes)
{
	static int	 warned;
	int		 got;
	socklen_t	 len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes,
	    sizeof(bytes)) == 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	/* The kernel reports twice what it grants (its bookkeeping). */
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) == 0 &&
	    got / 2 < bytes / 2 && !warned) {
		warned = 1;
		log_warnx("channel buffers are %d KiB, not %d (no CAP_NET_ADMIN "
		    "to pass net.core.wmem_max): sysctl net.core.wmem_max=%d "
		    "gives bursts of logins and audit records room",
		    got / 2 / 1024, bytes / 1024, bytes);
	}
}

int
chan_send(int fd, uint16_t type, uint64_t sid, const void *p, size_t len,
    int flags)
{
	struct chan_hdr	 h;
	struct iovec	 iov[2];
	struct msghdr	 msg;
	ssize_t		 n;

	if (len > CHAN_MAX - sizeof(h)) {
		errno = EMSGSIZE;
		return (-1);
	}
	memset(&h, 0, sizeof(h));
	h.ch_type = type;
	h.ch_len = (uint32_t)len;
	h.ch_sid = sid;
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)(uintptr_t)p;
	iov[1].iov_len = len;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = len > 0 ? 2 : 1;
	do
		n = sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return (-1);
	if ((size_t)n != sizeof(h) + len) {	/* SEQPACKET: all or none */
		errno = EPROTO;
		return (-1);
	}
	return (0);
}

/*
 * Returns the payload length (0 is a valid empty payload: check
 * hdr->ch_type), or -1: errno 0 at the end of the channel, else as in
 * chan.h.
 */
ssize_t
chan_recv(int fd, struct chan_hdr *h, void *buf, size_t cap, int flags)
{
	struct iovec	 iov[2];
	struct msghdr	 msg;
	ssize_t		 n;

	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(*h);
	iov[1].iov_base = buf;
	iov[1].iov_len = cap;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 2;
	do
		n = recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == 0) {
		errno = 0;
		return (-1);
	}
	if (n == -1)
		return (-1);
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    (size_t)n < sizeof(*h) || h->ch_len != (size_t)n - sizeof(*h)) {
		errno = EBADMSG;
		return (-1);
	}
	return ((ssize_t)h->ch_len);
}
