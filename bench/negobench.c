/*
 * negobench: HTTP proxy logins per second, Negotiate (Kerberos) or Basic,
 * as browsers make them: CONC client threads, each a loop of a fresh
 * token (gss_init_sec_context for SERVICE@HOST from the ticket cache in
 * KRB5CCNAME: a new authenticator every time, or the replay cache would
 * refuse it), connect, CONNECT with Proxy-Authorization, the 200, a
 * 64-byte echo through the tunnel, close. Every login is a new one: no
 * connection is reused. Bounded by SECONDS; loopback only.
 *
 *	negobench -s HOST:PORT -t HOST:PORT (-n SERVICE@HOST | -b USER:PASS)
 *	    [-c CONC] [-d SECONDS]
 *
 * Prints logins/s, refusals, the median and 99th percentile of a login
 * (connect to the 200), and what making tokens cost the clients (so the
 * gateway's share can be told from the load generator's).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gssapi/gssapi.h>

#define ECHO_LEN	64
#define MAX_SAMPLES	(1 << 20)

static struct sockaddr_in	 gateway, target;
static const char		*service;	/* -n */
static char			 basic[1024];	/* -b, in base64 */
static int			 seconds = 5;
static int64_t			 deadline;
static pthread_mutex_t		 lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t			 ok, refused, token_us;
static uint32_t			*samples;
static size_t			 nsamples;

static gss_OID_desc	 spnego = { 6, (void *)"\x2b\x06\x01\x05\x05\x02" };

static int64_t
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

static void
b64(const uint8_t *p, size_t n, char *out)
{
	static const char	 abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t			 i, o = 0;
	uint32_t		 v;

	for (i = 0; i < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 :
		    0) | (i + 2 < n ? p[i + 2] : 0);
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = i + 1 < n ? abc[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? abc[v & 63] : '=';
	}
	out[o] = '\0';
}

/* A fresh SPNEGO token for service, in base64; -1 if GSS-API failed. */
static int
make_token(gss_name_t name, char *out, size_t len)
{
	gss_ctx_id_t	 ctx = GSS_C_NO_CONTEXT;
	gss_buffer_desc	 tok = GSS_C_EMPTY_BUFFER;
	OM_uint32	 major, minor;
	int		 r = -1;

	major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &ctx, name,
	    &spnego, 0, 0, GSS_C_NO_CHANNEL_BINDINGS, GSS_C_NO_BUFFER, NULL,
	    &tok, NULL, NULL);
	if (!GSS_ERROR(major) && (tok.length + 2) / 3 * 4 + 1 <= len) {
		b64(tok.value, tok.length, out);
		r = 0;
	}
	gss_release_buffer(&minor, &tok);
	if (ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
	return (r);
}

static int
read_head(int fd, char *buf, size_t len)
{
	size_t	 got = 0;
	ssize_t	 n;

	while (got + 1 < len) {
		if ((n = read(fd, buf + got, len - 1 - got)) <= 0)
			return (-1);
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			return (0);
	}
	return (-1);
}

static int
read_full(int fd, uint8_t *buf, size_t len)
{
	size_t	 got = 0;
	ssize_t	 n;

	while (got < len) {
		if ((n = read(fd, buf + got, len - got)) <= 0)
			return (-1);
		got += (size_t)n;
	}
	return (0);
}

/* One login and a 64-byte echo through its tunnel: 0, or -1 if refused. */
static int
one_login(gss_name_t name, int64_t *tok_us)
{
	static __thread char	 req[24576], tok[20000], head[4096];
	uint8_t			 echo[ECHO_LEN], back[ECHO_LEN];
	char			 host[INET_ADDRSTRLEN];
	int64_t			 t0 = now_us();
	int			 fd, one = 1, n, r = -1;

	if (service != NULL) {
		if (make_token(name, tok, sizeof(tok)) == -1) {
			fprintf(stderr, "negobench: no token (kinit?)\n");
			exit(1);
		}
	} else
		memcpy(tok, basic, strlen(basic) + 1);
	*tok_us = now_us() - t0;
	inet_ntop(AF_INET, &target.sin_addr, host, sizeof(host));
	n = snprintf(req, sizeof(req), "CONNECT %s:%u HTTP/1.1\r\nHost: "
	    "%s:%u\r\nProxy-Authorization: %s %s\r\n\r\n", host,
	    ntohs(target.sin_port), host, ntohs(target.sin_port),
	    service != NULL ? "Negotiate" : "Basic", tok);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return (-1);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(echo, 'e', sizeof(echo));
	if (connect(fd, (struct sockaddr *)&gateway, sizeof(gateway)) == 0 &&
	    write(fd, req, (size_t)n) == n &&
	    read_head(fd, head, sizeof(head)) == 0 &&
	    strncmp(head, "HTTP/1.1 200", 12) == 0 &&
	    write(fd, echo, sizeof(echo)) == (ssize_t)sizeof(echo) &&
	    read_full(fd, back, sizeof(back)) == 0 &&
	    memcmp(echo, back, sizeof(echo)) == 0)
		r = 0;
	close(fd);
	return (r);
}

static void *
client(void *arg)
{
	gss_buffer_desc	 nb;
	gss_name_t	 name = GSS_C_NO_NAME;
	OM_uint32	 minor;
	int64_t		 t0, tu;
	int		 r;

	(void)arg;
	if (service != NULL) {
		nb.value = (void *)service;
		nb.length = strlen(service);
		if (gss_import_name(&minor, &nb, GSS_C_NT_HOSTBASED_SERVICE,
		    &name) != GSS_S_COMPLETE) {
			fprintf(stderr, "negobench: bad service %s\n", service);
			exit(1);
		}
	}
	while ((t0 = now_us()) < deadline) {
		r = one_login(name, &tu);
		t0 = now_us() - t0;
		pthread_mutex_lock(&lock);
		if (r == 0) {
			ok++;
			if (nsamples < MAX_SAMPLES)
				samples[nsamples++] = (uint32_t)(t0 - tu);
		} else
			refused++;
		token_us += (uint64_t)tu;
		pthread_mutex_unlock(&lock);
	}
	if (name != GSS_C_NO_NAME)
		gss_release_name(&minor, &name);
	return (NULL);
}

static void
parse_addr(const char *text, struct sockaddr_in *sin)
{
	char	 host[64];
	const char *colon = strrchr(text, ':');

	if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
		goto bad;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1)
		return;
bad:
	fprintf(stderr, "negobench: %s: expected IPv4:PORT\n", text);
	exit(2);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	 x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x < y ? -1 : x > y);
}

int
main(int argc, char *argv[])
{
	pthread_t	 t[256];
	int		 ch, conc = 1, i, have_s = 0, have_t = 0;

	while ((ch = getopt(argc, argv, "s:t:n:b:c:d:")) != -1) {
		switch (ch) {
		case 's':
			parse_addr(optarg, &gateway);
			have_s = 1;
			break;
		case 't':
			parse_addr(optarg, &target);
			have_t = 1;
			break;
		case 'n':
			service = optarg;
			break;
		case 'b':
			if (strlen(optarg) > 600)
				return (2);
			b64((const uint8_t *)optarg, strlen(optarg), basic);
			break;
		case 'c':
			conc = atoi(optarg);
			break;
		case 'd':
			seconds = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (!have_s || !have_t || (service == NULL) == (basic[0] == '\0') ||
	    conc < 1 || conc > 256 || seconds < 1 || seconds > 600)
		goto usage;
	if ((samples = calloc(MAX_SAMPLES, sizeof(*samples))) == NULL)
		return (1);
	deadline = now_us() + (int64_t)seconds * 1000000;
	for (i = 0; i < conc; i++)
		if (pthread_create(&t[i], NULL, client, NULL) != 0)
			return (1);
	for (i = 0; i < conc; i++)
		pthread_join(t[i], NULL);
	qsort(samples, nsamples, sizeof(*samples), cmp_u32);
	printf("%.0f logins/s, %llu refused, login median %u us p99 %u us, "
	    "tokens %.0f us each on the client\n", (double)ok / seconds,
	    (unsigned long long)refused, nsamples ? samples[nsamples / 2] : 0,
	    nsamples ? samples[nsamples * 99 / 100] : 0,
	    ok + refused ? (double)token_us / (double)(ok + refused) : 0.0);
	free(samples);
	return (ok > 0 ? 0 : 1);
usage:
	fprintf(stderr, "usage: negobench -s HOST:PORT -t HOST:PORT "
	    "(-n SERVICE@HOST | -b USER:PASS) [-c CONC] [-d SECONDS]\n");
	return (2);
}
