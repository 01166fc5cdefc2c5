/*
 * bareproxy: the least a user-space SOCKS5 relay can do per connection,
 * as a yardstick for the connection-rate rows of bench/peers.sh and
 * bench/ab.sh. It is not a product: no policy, no audit, no login, no
 * limits, IPv4 CONNECT only, and it trusts its client (socksbench) to send
 * whole messages. What it keeps is every trick a fast relay can use on
 * Linux, so its figure is what any user-space proxy, socksgw included,
 * cannot beat on this machine:
 *
 *  - one thread per CPU, pinned, each with its own SO_REUSEPORT listener,
 *    and the listeners steered by a BPF program to the thread of the CPU
 *    whose softirq took the SYN (a connection never changes CPU);
 *  - TCP_DEFER_ACCEPT and TCP_NODELAY on the listener, inherited by each
 *    accepted socket, and the greeting read right after accept4;
 *  - a loopback connect taken as complete when it returns (the handshake
 *    ran inside the call), so the reply goes out in the same turn;
 *  - two epoll_ctl per session (one per socket, level-triggered, never
 *    modified), one read and one write per message, no buffering;
 *  - a socket closed ends its half of the relay with shutdown, and the
 *    session with two close calls.
 *
 *	bareproxy PORT		serves 127.0.0.1:PORT until killed
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS	64

/* One socket of a session: epoll's data points here. */
struct end {
	struct session	*s;
	int		 fd;
	int		 eof;		/* its peer sent FIN */
};

struct session {
	struct end	 client, upstream;
	int		 state;		/* GREETING, REQUEST, RELAY, ENDED */
	struct session	*next_ended;
};

enum { GREETING, REQUEST, RELAY, ENDED };

/* Freed after each epoll batch, which may still name them. */
static __thread struct session	*ended;

static uint16_t		 port;
static int		 nthreads;
static _Atomic int	 listening;	/* threads whose listener is bound */

static void __attribute__((noreturn))
die(const char *what)
{
	perror(what);
	exit(1);
}

static int
listener(int cpu)
{
	struct sockaddr_in	 sin;
	int			 fd, one = 1, defer = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer,
	    sizeof(defer)) == -1 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 4096) == -1)
		die("listen");
	if (cpu == 0) {
		/* The group's index is the CPU that runs the SYN's softirq. */
		struct sock_filter code[] = {
			{ BPF_LD | BPF_W | BPF_ABS, 0, 0,
			    (uint32_t)(SKF_AD_OFF + SKF_AD_CPU) },
			{ BPF_ALU | BPF_MOD | BPF_K, 0, 0, (uint32_t)nthreads },
			{ BPF_RET | BPF_A, 0, 0, 0 },
		};
		struct sock_fprog prog = { 3, code };

		if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF,
		    &prog, sizeof(prog)) == -1)
			die("SO_ATTACH_REUSEPORT_CBPF");
	}
	return (fd);
}

static void
session_end(struct session *s)
{
	close(s->client.fd);
	if (s->upstream.fd != -1)
		close(s->upstream.fd);
	s->state = ENDED;
	s->next_ended = ended;
	ended = s;
}

static int
watch(int ep, struct end *e)
{
	struct epoll_event	 ev = { .events = EPOLLIN, .data.ptr = e };

	return (epoll_ctl(ep, EPOLL_CTL_ADD, e->fd, &ev));
}

/* Writes all of buf; a relay of small echoes almost never waits here. */
static int
send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t	 n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		} else if (n == -1 && errno == EAGAIN) {
			struct pollfd	 p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 5000) != 1)
				return (-1);
		} else if (n == -1 && errno != EINTR)
			return (-1);
	}
	return (0);
}

static int
connect_upstream(int ep, struct session *s, const uint8_t *req, size_t n)
{
	static const uint8_t	 ok[10] = { 5, 0, 0, 1 };
	struct sockaddr_in	 sin;
	struct sockaddr_storage	 peer;
	socklen_t		 plen = sizeof(peer);
	int			 fd, one = 1;

	if (n < 10 || req[0] != 5 || req[1] != 1 || req[3] != 1)
		return (-1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	memcpy(&sin.sin_addr, req + 4, 4);
	memcpy(&sin.sin_port, req + 8, 2);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		return (-1);
	s->upstream.fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno != EINPROGRESS)
		return (-1);
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) == -1) {
		/* Not loopback after all: wait for it, the slow way. */
		struct pollfd	 p = { .fd = fd, .events = POLLOUT };
		int		 err = 0;
		socklen_t	 elen = sizeof(err);

		if (poll(&p, 1, 5000) != 1 || getsockopt(fd, SOL_SOCKET,
		    SO_ERROR, &err, &elen) == -1 || err != 0)
			return (-1);
	}
	if (watch(ep, &s->upstream) == -1)
		return (-1);
	s->state = RELAY;
	return (send_all(s->client.fd, ok, sizeof(ok)));
}

/* The client's socket is readable: the next handshake step or data. */
static int
on_readable(int ep, struct end *e)
{
	struct session	*s = e->s;
	struct end	*other = e == &s->client ? &s->upstream : &s->client;
	uint8_t		 buf[16384];
	ssize_t		 n;

	if (s->state == ENDED)
		return (0);
	n = recv(e->fd, buf, sizeof(buf), 0);
	if (n == -1)
		return (errno == EAGAIN || errno == EINTR ? 0 : -1);
	switch (s->state) {
	case GREETING:
		if (n < 3 || buf[0] != 5 || (size_t)n != 2u + buf[1] ||
		    memchr(buf + 2, 0, buf[1]) == NULL ||
		    send_all(e->fd, (const uint8_t *)"\5\0", 2) == -1)
			return (-1);
		s->state = REQUEST;
		return (0);
	case REQUEST:
		return (connect_upstream(ep, s, buf, (size_t)n));
	}
	if (n == 0) {
		e->eof = 1;
		if (other->eof)
			return (-1);	/* both ways done */
		/* No more reads from here: stop watching it. */
		epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
		return (shutdown(other->fd, SHUT_WR));
	}
	return (send_all(other->fd, buf, (size_t)n));
}

static void
accept_one(int ep, int lfd)
{
	struct session	*s;
	int		 fd;

	/* One per readiness: level-triggered epoll calls again if more. */
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) == -1)
		return;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(fd);
		return;
	}
	s->client = (struct end){ s, fd, 0 };
	s->upstream = (struct end){ s, -1, 0 };
	s->state = GREETING;
	/* TCP_DEFER_ACCEPT: the greeting is usually here already. */
	if (on_readable(ep, &s->client) == -1 || watch(ep, &s->client) == -1)
		session_end(s);
}

static void *
worker(void *arg)
{
	int			 cpu = (int)(intptr_t)arg, ep, lfd, i, n;
	struct epoll_event	 evs[64];
	struct epoll_event	 lev = { .events = EPOLLIN, .data.ptr = NULL };
	cpu_set_t		 set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		die("pthread_setaffinity_np");
	if ((ep = epoll_create1(0)) == -1)
		die("epoll_create1");
	lfd = listener(cpu);
	listening++;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) == -1)
		die("epoll_ctl");
	for (;;) {
		n = epoll_wait(ep, evs, 64, -1);
		for (i = 0; i < n; i++) {
			struct end	*e = evs[i].data.ptr;

			if (e == NULL)
				accept_one(ep, lfd);
			else if (on_readable(ep, e) == -1)
				session_end(e->s);
		}
		while (ended != NULL) {
			struct session	*s = ended;

			ended = s->next_ended;
			free(s);
		}
	}
	return (NULL);
}

int
main(int argc, char **argv)
{
	pthread_t	 t[MAX_THREADS];
	int		 i;

	if (argc != 2 || (port = (uint16_t)atoi(argv[1])) == 0) {
		fprintf(stderr, "usage: bareproxy PORT\n");
		return (2);
	}
	nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nthreads < 1 || nthreads > MAX_THREADS)
		nthreads = 1;
	/* In order, so that listener i is index i of the group. */
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i))
			die("pthread_create");
		while (listening <= i)
			usleep(1000);
	}
	printf("bareproxy: %d threads on 127.0.0.1:%u\n", nthreads, port);
	fflush(stdout);
	pthread_join(t[0], NULL);
	return (0);
}
