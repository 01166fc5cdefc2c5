/*
 * socksbench: the load generator behind bench/run.sh. Every mode measures
 * the same client code with and without the gateway in between, so the
 * figures compare like with like. Traffic goes to loopback only, and every
 * loop is bounded by a count or a duration.
 *
 *	socksbench serve ECHO_PORT SINK_PORT
 *		echo server (epoll; TCP and UDP on ECHO_PORT) and byte sink (a
 *		thread per connection; answers the byte count as 8 bytes once
 *		the client shuts down)
 *	socksbench udp -t HOST:PORT [-s HOST:PORT] [-c WINDOW] [-d SECONDS]
 *		WINDOW 64-byte datagrams in flight to the UDP echo (through a
 *		UDP ASSOCIATE with -s); prints datagrams/s echoed and loss
 *	socksbench bulk -t HOST:PORT [-s HOST:PORT] [-n STREAMS] [-d SECONDS]
 *		STREAMS connections write 128 KiB blocks to the sink for
 *		SECONDS; prints MB/s of bytes the sink confirmed
 *	socksbench rate -t HOST:PORT [-s HOST:PORT] [-a USER:PASS] [-c CONC]
 *	    [-d SECONDS]
 *		CONC clients in a loop of connect, SOCKS5 handshake, CONNECT,
 *		64-byte echo, close; prints connections/s and latency
 *	socksbench idle -t HOST:PORT -s HOST:PORT -c COUNT [-d SECONDS]
 *		opens COUNT proxied connections (each proven by a 1-byte echo),
 *		holds them SECONDS, prints how many were established
 *
 * -s is the SOCKS5 gateway; without it the client connects directly. -a
 * logs in with RFC 1929 username/password. -H (rate only) speaks HTTP
 * CONNECT to the gateway instead of SOCKS5 (with -a, Basic). -F (rate
 * only) has the gateway forward a plain-HTTP request instead: GET
 * http://TARGET/, whose rebuilt head the echo target sends back as a
 * response's body (checked byte for byte, with the response head the
 * gateway rebuilt) in place of the 64-byte echo.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BULK_BLOCK	(128 * 1024)
#define ECHO_LEN	64

static struct sockaddr_in	 target, gateway;
static int			 use_gateway;
static uint8_t			 login[3 + 255 + 255];	/* RFC 1929 */
static size_t			 login_len;
static int			 use_http;	/* -H: HTTP CONNECT */
static int			 use_forward;	/* -F: a forwarded GET */
static int			 src_spread = 1;
static char			 http_req[1024];
static size_t			 http_req_len;
static char			 fwd_echo[512];	/* -F: the answer it gets */
static size_t			 fwd_echo_len;

static void __attribute__((noreturn))
die(const char *what)
{
	perror(what);
	exit(1);
}

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void
parse_hostport(const char *text, struct sockaddr_in *sin)
{
	char		 host[64];
	const char	*colon = strrchr(text, ':');

	if (colon == NULL || (size_t)(colon - text) >= sizeof(host)) {
		fprintf(stderr, "socksbench: bad address %s\n", text);
		exit(2);
	}
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1 ||
	    (ntohl(sin->sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "socksbench: %s: loopback IPv4 only\n", text);
		exit(2);
	}
}

static void
raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
read_full(int fd, void *buf, size_t len)
{
	size_t	 got = 0;
	ssize_t	 n;

	while (got < len) {
		n = read(fd, (char *)buf + got, len - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return (-1);
		}
		got += (size_t)n;
	}
	return (0);
}

/* -H: the CONNECT head every client sends, Basic from -a's pair. */
static int
http_connect_request(void)
{
	static const char	 b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
	    "klmnopqrstuvwxyz0123456789+/";
	char			 pair[512], cred[700], host[INET_ADDRSTRLEN];
	size_t			 i, n = 0, plen = 0;
	uint32_t		 v;
	int			 r;

	if (login_len) {
		plen = (size_t)snprintf(pair, sizeof(pair), "%.*s:%.*s",
		    login[1], (const char *)login + 2, login[2 + login[1]],
		    (const char *)login + 3 + login[1]);
		for (i = 0; i < plen; i += 3) {
			v = (uint32_t)(uint8_t)pair[i] << 16 |
			    (i + 1 < plen ? (uint32_t)(uint8_t)pair[i + 1] << 8 :
			    0) | (i + 2 < plen ? (uint8_t)pair[i + 2] : 0);
			cred[n++] = b64[v >> 18 & 63];
			cred[n++] = b64[v >> 12 & 63];
			cred[n++] = i + 1 < plen ? b64[v >> 6 & 63] : '=';
			cred[n++] = i + 2 < plen ? b64[v & 63] : '=';
		}
	}
	cred[n] = '\0';
	inet_ntop(AF_INET, &target.sin_addr, host, sizeof(host));
	r = snprintf(http_req, sizeof(http_req), use_forward ?
	    "GET http://%s:%u/ HTTP/1.1\r\nHost: %s:%u\r\n%s%s%s\r\n" :
	    "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n%s%s%s\r\n", host,
	    ntohs(target.sin_port), host, ntohs(target.sin_port), n ?
	    "Proxy-Authorization: Basic " : "", cred, n ? "\r\n" : "");
	if (r < 0 || (size_t)r >= sizeof(http_req))
		return (-1);
	http_req_len = (size_t)r;
	/*
	 * What gatewayd sends the server, which the echo target sends back
	 * as its response's body (http_echo), behind the response head the
	 * gateway rebuilt (the client keeps the connection: no close).
	 */
	r = snprintf(fwd_echo, sizeof(fwd_echo), "HTTP/1.1 200 OK\r\n"
	    "Content-Length: %d\r\nVia: 1.1 socksgw\r\n\r\nGET / HTTP/1.1\r\n"
	    "Host: %s:%u\r\nVia: 1.1 socksgw\r\nConnection: close\r\n\r\n",
	    (int)(strlen("GET / HTTP/1.1\r\nHost: :\r\nVia: 1.1 socksgw\r\n"
	    "Connection: close\r\n\r\n") + strlen(host) + snprintf(NULL, 0,
	    "%u", ntohs(target.sin_port))), host, ntohs(target.sin_port));
	if (r < 0 || (size_t)r >= sizeof(fwd_echo) || r > 256)
		return (-1);
	fwd_echo_len = (size_t)r;
	return (0);
}

/* The SOCKS5 greeting and CONNECT request, as one client would send. */
static size_t
socks_request(uint8_t *out)
{
	out[0] = 5; out[1] = 1; out[2] = 0; out[3] = 1;
	memcpy(out + 4, &target.sin_addr, 4);
	memcpy(out + 8, &target.sin_port, 2);
	return (10);
}

/* A blocking connection to the target, through the gateway if asked. */
static int
open_blocking(void)
{
	uint8_t	 req[10], reply[10];
	int	 fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return (-1);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)(use_gateway ? &gateway : &target),
	    sizeof(target)) == -1)
		goto fail;
	if (use_gateway) {
		if (write(fd, login_len ? "\x05\x01\x02" : "\x05\x01\x00",
		    3) != 3 || read_full(fd, reply, 2) == -1 ||
		    reply[1] != (login_len ? 2 : 0))
			goto fail;
		/* RFC 1929: the status is the second byte of two. */
		if (login_len && (write(fd, login, login_len) !=
		    (ssize_t)login_len || read_full(fd, reply, 2) == -1 ||
		    reply[1] != 0))
			goto fail;
		if (write(fd, req, socks_request(req)) != 10 ||
		    read_full(fd, reply, 10) == -1 || reply[1] != 0)
			goto fail;
	}
	return (fd);
fail:
	close(fd);
	return (-1);
}

/* serve ------------------------------------------------------------- */

static void *
sink_conn(void *arg)
{
	int		 fd = (int)(intptr_t)arg;
	static __thread char buf[BULK_BLOCK];
	uint64_t	 total = 0;
	ssize_t		 n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (uint64_t)n;
	if (write(fd, &total, sizeof(total)) != sizeof(total))
		perror("sink: write");
	close(fd);
	return (NULL);
}

static void *
sink_accept(void *arg)
{
	int		 lfd = (int)(intptr_t)arg, fd;
	pthread_t	 t;

	for (;;) {
		if ((fd = accept(lfd, NULL, NULL)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("sink: accept");
		}
		if (pthread_create(&t, NULL, sink_conn,
		    (void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(t);
	}
	return (NULL);
}

static int
listen_on(uint16_t port)
{
	struct sockaddr_in	 sin;
	int			 fd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 4096) == -1)
		die("listen");
	return (fd);
}

/*
 * A forwarded GET (-F) as the echo target answers it: a response whose
 * body is the request as it came, so the client can check the head the
 * gateway rebuilt. The new length of buf.
 */
static ssize_t
http_echo(char *buf, size_t n, size_t size)
{
	char	 head[64];
	int	 h;

	h = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: "
	    "%zu\r\n\r\n", n);
	if (h < 0 || (size_t)h + n > size)
		return (-1);
	memmove(buf + h, buf, n);
	memcpy(buf, head, (size_t)h);
	return ((ssize_t)h + (ssize_t)n);
}

/*
 * The echo: TCP (and UDP on the first thread) on one epoll loop per
 * thread, all accepting from one listener (EPOLLEXCLUSIVE wakes one of
 * them), so the target is never what limits a direct run.
 */
static void *
echo_loop(void *arg)
{
	struct epoll_event	 ev, evs[256];
	char			 buf[16384];
	struct sockaddr_in	 from;
	socklen_t		 flen;
	int			 efd, lfd, ufd, fd, n, i, one = 1;
	ssize_t			 r;
	uint32_t		 both = (uint32_t)(uintptr_t)arg;

	lfd = (int)(both & 0xffff);
	ufd = (int)(both >> 16) - 1;
	if ((efd = epoll_create1(0)) == -1)
		die("epoll_create1");
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = lfd;
	epoll_ctl(efd, EPOLL_CTL_ADD, lfd, &ev);
	ev.events = EPOLLIN;
	if (ufd != -1) {
		ev.data.fd = ufd;
		epoll_ctl(efd, EPOLL_CTL_ADD, ufd, &ev);
	}
	for (;;) {
		n = epoll_wait(efd, evs, 256, -1);
		for (i = 0; i < n; i++) {
			fd = evs[i].data.fd;
			if (fd == ufd) {
				flen = sizeof(from);
				while ((r = recvfrom(ufd, buf, sizeof(buf), 0,
				    (struct sockaddr *)&from, &flen)) > 0) {
					sendto(ufd, buf, (size_t)r, 0,
					    (struct sockaddr *)&from, flen);
					flen = sizeof(from);
				}
				continue;
			}
			if (fd == lfd) {
				while ((fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK)) != -1) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.fd = fd;
					epoll_ctl(efd, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			/* Echo payloads are small: one write takes them. */
			r = read(fd, buf, sizeof(buf) / 2);
			if (r > 4 && memcmp(buf, "GET ", 4) == 0 &&
			    (r = http_echo(buf, (size_t)r, sizeof(buf))) > 0 &&
			    write(fd, buf, (size_t)r) == r)
				continue;
			if (r > 0 && write(fd, buf, (size_t)r) == r)
				continue;
			if (r < 0 && errno == EAGAIN)
				continue;
			close(fd);
		}
	}
	return (NULL);
}

static int
serve(uint16_t echo_port, uint16_t sink_port)
{
	pthread_t		 t;
	struct sockaddr_in	 sin;
	long			 ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int			 ufd, i, lfd;

	raise_nofile();
	if (pthread_create(&t, NULL, sink_accept,
	    (void *)(intptr_t)listen_on(sink_port)) != 0)
		die("pthread_create");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(echo_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ufd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(ufd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("udp echo");
	i = listen_on(echo_port);
	if (fcntl(i, F_SETFL, O_NONBLOCK) == -1)
		die("fcntl");
	for (lfd = 1; lfd < ncpu && lfd < 64; lfd++)
		if (pthread_create(&t, NULL, echo_loop, (void *)(uintptr_t)
		    (uint32_t)i) != 0)
			die("pthread_create");
	printf("serving\n");
	fflush(stdout);
	echo_loop((void *)(uintptr_t)((uint32_t)(ufd + 1) << 16 |
	    (uint32_t)i));
	return (0);
}

/* bulk -------------------------------------------------------------- */

struct bulk_stream {
	pthread_t	 bs_thread;
	double		 bs_seconds;
	uint64_t	 bs_confirmed;
	uint64_t	 bs_written;
	double		 bs_elapsed;
	int		 bs_error;
	int		 bs_unconfirmed;	/* no count came back */
};

static void *
bulk_stream(void *arg)
{
	struct bulk_stream	*bs = arg;
	static __thread char	 block[BULK_BLOCK];
	double			 t0, end;
	uint64_t		 confirmed;
	int			 fd;

	memset(block, 'x', sizeof(block));
	if ((fd = open_blocking()) == -1) {
		bs->bs_error = 1;
		return (NULL);
	}
	t0 = now_s();
	end = t0 + bs->bs_seconds;
	while (now_s() < end) {
		if (write(fd, block, sizeof(block)) <= 0) {
			bs->bs_error = 1;
			break;
		}
		bs->bs_written += sizeof(block);
	}
	bs->bs_elapsed = now_s() - t0;
	shutdown(fd, SHUT_WR);
	/*
	 * A proxy that closes both ways at the client's half-close
	 * (microsocks) never brings the sink's count back: the bytes
	 * written stand in for it then (high by what the buffers hold).
	 */
	if (read_full(fd, &confirmed, sizeof(confirmed)) == -1)
		bs->bs_unconfirmed = 1;
	else {
		bs->bs_confirmed = confirmed;
		bs->bs_elapsed = now_s() - t0;
	}
	close(fd);
	return (NULL);
}

static int
bulk(int streams, double seconds)
{
	struct bulk_stream	*bs = calloc((size_t)streams, sizeof(*bs));
	double			 mbps = 0;
	int			 i, errors = 0, unconfirmed = 0;

	for (i = 0; i < streams; i++) {
		bs[i].bs_seconds = seconds;
		if (pthread_create(&bs[i].bs_thread, NULL, bulk_stream,
		    &bs[i]) != 0)
			die("pthread_create");
	}
	for (i = 0; i < streams; i++) {
		pthread_join(bs[i].bs_thread, NULL);
		errors += bs[i].bs_error;
		unconfirmed += bs[i].bs_unconfirmed;
		if (!bs[i].bs_error)
			mbps += (double)(bs[i].bs_unconfirmed ?
			    bs[i].bs_written : bs[i].bs_confirmed) /
			    bs[i].bs_elapsed / 1e6;
	}
	printf("bulk streams=%d MB/s=%.1f errors=%d unconfirmed=%d\n", streams,
	    mbps, errors, unconfirmed);
	free(bs);
	return (errors ? 1 : 0);
}

/* rate and idle: one epoll loop of non-blocking client state machines */

enum cstate { C_CONNECTING, C_METHOD, C_AUTH, C_REPLY, C_HTTP, C_ECHO,
    C_HOLD };

#define HTTP_200	"HTTP/1.1 200 Connection established\r\n\r\n"

struct client {
	int		 fd;
	enum cstate	 state;
	size_t		 have;
	double		 t0;
	uint8_t		 buf[256];	/* an echo, a reply, -F's answer */
};

struct loop {
	int		 efd;
	size_t		 echo_len;	/* ECHO_LEN, or 1 for idle */
	int		 hold;		/* idle: keep connections open */
	uint64_t	 done;
	uint64_t	 errors;
	uint32_t	 spread;		/* the next source address */
	double		*lat;
	size_t		 nlat, caplat;
};

static int
client_start(struct loop *lp, struct client *c)
{
	struct epoll_event	 ev;
	int			 one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd == -1)
		return (-1);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/*
	 * From one of many loopback addresses: a million connections a
	 * minute from 127.0.0.1 alone would leave the kernel searching a
	 * port range full of TIME_WAIT at every connect, and that search,
	 * not the server, would be what is measured.
	 */
	if (src_spread) {
		struct sockaddr_in	 src;

		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(0x7f000000 | (uint32_t)(2 +
		    (++lp->spread % 250)) << 8 | 1);
		setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
		bind(c->fd, (struct sockaddr *)&src, sizeof(src));
	}
	c->t0 = now_s();
	c->have = 0;
	c->state = C_CONNECTING;
	if (connect(c->fd, (struct sockaddr *)(use_gateway ? &gateway :
	    &target), sizeof(target)) == -1 && errno != EINPROGRESS) {
		close(c->fd);
		c->fd = -1;
		return (-1);
	}
	ev.events = EPOLLOUT | EPOLLIN;
	ev.data.ptr = c;
	epoll_ctl(lp->efd, EPOLL_CTL_ADD, c->fd, &ev);
	return (0);
}

static void
client_send_payload(struct loop *lp, struct client *c)
{
	memset(c->buf, 'p', lp->echo_len);
	c->state = C_ECHO;
	c->have = 0;
	if (write(c->fd, c->buf, lp->echo_len) != (ssize_t)lp->echo_len)
		c->state = C_HOLD;	/* counted as an error below */
}

/* Advances c; returns 1 when its cycle is over (success or failure). */
static int
client_step(struct loop *lp, struct client *c, uint32_t events, int *ok)
{
	uint8_t		 req[10];
	size_t		 want;
	ssize_t		 n;
	int		 err = 0;
	socklen_t	 len = sizeof(err);
	struct epoll_event ev;

	*ok = 0;
	if (c->state == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 ||
		    err != 0 || !(events & EPOLLOUT))
			return (1);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		epoll_ctl(lp->efd, EPOLL_CTL_MOD, c->fd, &ev);
		if (use_gateway && use_http) {
			c->state = C_HTTP;
			if (write(c->fd, http_req, http_req_len) !=
			    (ssize_t)http_req_len)
				return (1);
		} else if (use_gateway) {
			c->state = C_METHOD;
			if (write(c->fd, login_len ? "\x05\x01\x02" :
			    "\x05\x01\x00", 3) != 3)
				return (1);
		} else
			client_send_payload(lp, c);
		return (0);
	}
	if (c->state == C_HOLD)
		return (1);
	want = c->state == C_METHOD || c->state == C_AUTH ? 2 :
	    c->state == C_REPLY ? 10 : c->state == C_HTTP ? (use_forward ?
	    fwd_echo_len : sizeof(HTTP_200) - 1) : lp->echo_len;
	n = read(c->fd, c->buf + c->have, want - c->have);
	if (n < 0 && errno == EAGAIN)
		return (0);
	if (n <= 0)
		return (1);
	c->have += (size_t)n;
	if (c->have < want)
		return (0);
	switch (c->state) {
	case C_METHOD:
		if (c->buf[0] != 5 || c->buf[1] != (login_len ? 2 : 0))
			return (1);
		c->have = 0;
		if (login_len) {
			c->state = C_AUTH;
			if (write(c->fd, login, login_len) != (ssize_t)login_len)
				return (1);
			return (0);
		}
		c->state = C_REPLY;
		if (write(c->fd, req, socks_request(req)) != 10)
			return (1);
		return (0);
	case C_AUTH:
		if (c->buf[0] != 1 || c->buf[1] != 0)
			return (1);
		c->state = C_REPLY;
		c->have = 0;
		if (write(c->fd, req, socks_request(req)) != 10)
			return (1);
		return (0);
	case C_REPLY:
		if (c->buf[1] != 0)
			return (1);
		client_send_payload(lp, c);
		return (0);
	case C_HTTP:
		if (use_forward) {
			*ok = memcmp(c->buf, fwd_echo, fwd_echo_len) == 0;
			return (1);
		}
		if (memcmp(c->buf, HTTP_200, sizeof(HTTP_200) - 1) != 0)
			return (1);
		client_send_payload(lp, c);
		return (0);
	default:
		*ok = 1;
		return (1);
	}
}

static void
record_latency(struct loop *lp, double secs)
{
	if (lp->nlat == lp->caplat) {
		lp->caplat = lp->caplat ? lp->caplat * 2 : 65536;
		if ((lp->lat = realloc(lp->lat, lp->caplat *
		    sizeof(*lp->lat))) == NULL)
			die("realloc");
	}
	lp->lat[lp->nlat++] = secs;
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

/* One thread's share of the clients, on its own epoll loop. */
struct rate_job {
	pthread_t	 rj_thread;
	struct loop	 rj_lp;
	int		 rj_conc;
	double		 rj_end;
};

static void *
rate_thread(void *arg)
{
	struct rate_job		*rj = arg;
	struct loop		*lp = &rj->rj_lp;
	struct client		*cs = calloc((size_t)rj->rj_conc, sizeof(*cs));
	struct epoll_event	 evs[512];
	int			 i, n, ok, active = 0;

	if (cs == NULL || (lp->efd = epoll_create1(0)) == -1)
		die("rate: setup");
	lp->echo_len = ECHO_LEN;
	for (i = 0; i < rj->rj_conc; i++) {
		if (client_start(lp, &cs[i]) == -1)
			lp->errors++;
		else
			active++;
	}
	while (active > 0) {
		n = epoll_wait(lp->efd, evs, 512, 1000);
		for (i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;

			if (!client_step(lp, c, evs[i].events, &ok))
				continue;
			close(c->fd);
			c->fd = -1;
			if (ok) {
				lp->done++;
				record_latency(lp, now_s() - c->t0);
			} else
				lp->errors++;
			if (now_s() < rj->rj_end && client_start(lp, c) == 0)
				continue;
			active--;
		}
		if (now_s() > rj->rj_end + 10)
			break;		/* stragglers count as errors */
	}
	lp->errors += (uint64_t)active;
	for (i = 0; i < rj->rj_conc; i++)
		if (cs[i].fd > 0)
			close(cs[i].fd);
	free(cs);
	close(lp->efd);
	return (NULL);
}

/*
 * CONC clients spread over one epoll thread per CPU, so that the direct
 * baseline is as fast as this machine allows (a single-threaded load
 * generator would flatter every proxy's ratio).
 */
static int
rate(int conc, double seconds)
{
	struct rate_job	*rj;
	struct loop	 all;
	double		 t0, elapsed;
	long		 ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int		 i, nt;

	nt = ncpu < 1 ? 1 : ncpu > conc ? conc : (int)ncpu;
	if ((rj = calloc((size_t)nt, sizeof(*rj))) == NULL)
		die("calloc");
	memset(&all, 0, sizeof(all));
	t0 = now_s();
	for (i = 0; i < nt; i++) {
		rj[i].rj_conc = conc / nt + (i < conc % nt);
		rj[i].rj_end = t0 + seconds;
		if (pthread_create(&rj[i].rj_thread, NULL, rate_thread,
		    &rj[i]) != 0)
			die("pthread_create");
	}
	for (i = 0; i < nt; i++) {
		pthread_join(rj[i].rj_thread, NULL);
		all.done += rj[i].rj_lp.done;
		all.errors += rj[i].rj_lp.errors;
		while (rj[i].rj_lp.nlat > 0)
			record_latency(&all,
			    rj[i].rj_lp.lat[--rj[i].rj_lp.nlat]);
		free(rj[i].rj_lp.lat);
	}
	elapsed = now_s() - t0;
	qsort(all.lat, all.nlat, sizeof(*all.lat), cmp_double);
	printf("rate concurrency=%d conn/s=%.0f median_us=%.0f p99_us=%.0f "
	    "errors=%llu threads=%d\n", conc, (double)all.done / elapsed,
	    all.nlat ? all.lat[all.nlat / 2] * 1e6 : 0,
	    all.nlat ? all.lat[all.nlat * 99 / 100] * 1e6 : 0,
	    (unsigned long long)all.errors, nt);
	free(all.lat);
	free(rj);
	return (all.errors ? 1 : 0);
}

/* UDP: datagrams per second through an association, and loss. */
static int
udp(int window, double seconds)
{
	struct sockaddr_in	 relay = target;
	struct pollfd		 pfd;
	uint8_t			 req[10], reply[10], pkt[128];
	size_t			 hl = 0;
	double			 t0, end;
	uint64_t		 sent = 0, got = 0, lost = 0;
	int			 ctl = -1, u, i, inflight = 0;
	ssize_t			 n;

	if (use_gateway) {
		/* The control connection: UDP ASSOCIATE from anywhere. */
		if ((ctl = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
		    connect(ctl, (struct sockaddr *)&gateway,
		    sizeof(gateway)) == -1 ||
		    write(ctl, "\x05\x01\x00", 3) != 3 ||
		    read_full(ctl, reply, 2) == -1)
			die("udp: associate");
		memcpy(req, "\x05\x03\x00\x01\0\0\0\0\0\0", 10);
		if (write(ctl, req, 10) != 10 || read_full(ctl, reply, 10) ==
		    -1 || reply[1] != 0)
			die("udp: associate refused");
		memcpy(&relay.sin_addr, reply + 4, 4);
		memcpy(&relay.sin_port, reply + 8, 2);
		/* Every datagram carries the target's header. */
		memcpy(pkt, "\0\0\0\x01", 4);
		memcpy(pkt + 4, &target.sin_addr, 4);
		memcpy(pkt + 8, &target.sin_port, 2);
		hl = 10;
	}
	if ((u = socket(AF_INET, SOCK_DGRAM, 0)) == -1 ||
	    connect(u, (struct sockaddr *)&relay, sizeof(relay)) == -1)
		die("udp: socket");
	memset(pkt + hl, 'd', 64);
	pfd.fd = u;
	pfd.events = POLLIN;
	t0 = now_s();
	end = t0 + seconds;
	while (now_s() < end) {
		for (; inflight < window; inflight++, sent++)
			if (send(u, pkt, hl + 64, 0) == -1)
				break;
		if (poll(&pfd, 1, 100) <= 0) {
			/* Nothing for 100 ms: what is out there is lost. */
			lost += (uint64_t)inflight;
			inflight = 0;
			continue;
		}
		for (i = 0; i < window; i++) {
			n = recv(u, pkt + 64 + hl, 128 - 64 - hl, MSG_DONTWAIT);
			if (n <= 0)
				break;
			got++;
			inflight--;
		}
	}
	lost += (uint64_t)inflight;
	printf("udp window=%d datagrams/s=%.0f loss=%.2f%% errors=0\n", window,
	    (double)got / (now_s() - t0), sent ? 100.0 * (double)lost /
	    (double)sent : 0);
	close(u);
	if (ctl != -1)
		close(ctl);
	return (0);
}

static int
idle(int count, double hold)
{
	struct loop		 lp;
	struct client		*cs = calloc((size_t)count, sizeof(*cs));
	struct epoll_event	 evs[512];
	double			 deadline;
	int			 i, n, ok, started = 0, pending = 0;
	int			 established = 0;

	memset(&lp, 0, sizeof(lp));
	lp.echo_len = 1;
	if ((lp.efd = epoll_create1(0)) == -1)
		die("epoll_create1");
	deadline = now_s() + 120;
	/* At most 256 handshakes at once, like a burst of real clients. */
	while ((started < count || pending > 0) && now_s() < deadline) {
		while (started < count && pending < 256) {
			if (client_start(&lp, &cs[started]) == -1)
				lp.errors++;
			else
				pending++;
			started++;
		}
		n = epoll_wait(lp.efd, evs, 512, 1000);
		for (i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;

			if (c->state == C_HOLD)
				continue;
			if (!client_step(&lp, c, evs[i].events, &ok))
				continue;
			pending--;
			if (ok) {
				established++;
				c->state = C_HOLD;
				epoll_ctl(lp.efd, EPOLL_CTL_DEL, c->fd, NULL);
			} else {
				lp.errors++;
				close(c->fd);
				c->fd = -1;
			}
		}
	}
	printf("idle established=%d errors=%llu\n", established,
	    (unsigned long long)(lp.errors + (uint64_t)pending));
	fflush(stdout);
	usleep((useconds_t)(hold * 1e6));
	for (i = 0; i < count; i++)
		if (cs[i].fd > 0)
			close(cs[i].fd);
	free(cs);
	return (established == count ? 0 : 1);
}

int
main(int argc, char **argv)
{
	const char	*mode;
	double		 seconds = 5;
	int		 ch, n = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: socksbench serve|bulk|rate|idle ...\n");
		return (2);
	}
	mode = argv[1];
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(mode, "serve") == 0) {
		if (argc != 4)
			return (2);
		return (serve((uint16_t)atoi(argv[2]), (uint16_t)atoi(argv[3])));
	}
	optind = 2;
	while ((ch = getopt(argc, argv, "FHa:t:s:n:c:d:")) != -1) {
		switch (ch) {
		case 'F':
			use_forward = use_http = 1;
			break;
		case 'H':
			use_http = 1;
			break;
		case 'a': {
			char	*colon = strchr(optarg, ':');
			size_t	 ul, pl;

			if (colon == NULL || (ul = (size_t)(colon - optarg)) >
			    255 || (pl = strlen(colon + 1)) > 255)
				return (2);
			login[0] = 1;
			login[1] = (uint8_t)ul;
			memcpy(login + 2, optarg, ul);
			login[2 + ul] = (uint8_t)pl;
			memcpy(login + 3 + ul, colon + 1, pl);
			login_len = 3 + ul + pl;
			break;
		}
		case 't':
			parse_hostport(optarg, &target);
			break;
		case 's':
			parse_hostport(optarg, &gateway);
			use_gateway = 1;
			break;
		case 'n':
		case 'c':
			n = atoi(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		default:
			return (2);
		}
	}
	if (target.sin_family == 0 || n < 1 || seconds <= 0 || seconds > 7200) {
		fprintf(stderr, "socksbench: -t is required; -d 0 to 7200\n");
		return (2);
	}
	if (use_http && http_connect_request() == -1)
		return (2);
	raise_nofile();
	if (strcmp(mode, "bulk") == 0)
		return (bulk(n, seconds));
	if (strcmp(mode, "rate") == 0)
		return (rate(n, seconds));
	if (strcmp(mode, "udp") == 0)
		return (udp(n, seconds));
	if (strcmp(mode, "idle") == 0 && use_gateway)
		return (idle(n, seconds));
	fprintf(stderr, "socksbench: unknown mode %s\n", mode);
	return (2);
}
