/*
 * metrics.c: Prometheus metrics (metrics_listen). The socket is bound
 * while gatewayd is still root; the main thread serves GET /metrics from
 * the counters in stats.c.
 *
 * DESIGN. The endpoint answers one request a connection with a small HTTP
 * responder of its own rather than evhttp: libevent 2.1's evhttp has no
 * bound on connections, and it is the bound that keeps the endpoint from
 * taking the SOCKS service's descriptors. Connections come only from
 * metrics_allow (loopback when not given), at most METRICS_CLIENTS_MAX
 * at once; the request head is bounded in size, and every connection
 * lives at most METRICS_TIMEOUT_S from its accept, however it trickles.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "addr.h"
#include "conf.h"
#include "stat.h"

#include "base/stats.h"
#include "session/session.h"

#include "proxy.h"

#define METRICS_CLIENTS_MAX	16
#define METRICS_HEAD_MAX	8192	/* request line and headers */
#define METRICS_TIMEOUT_S	5

struct metrics_client {
	struct bufferevent	*mc_bev;
	struct event		*mc_deadline;	/* from accept, not idle time */
};

static int			 metrics_fd = -1;
static struct evconnlistener	*metrics_listener;
static int			 metrics_clients;
static struct conf_cidrs	 metrics_allow;

static void	metrics_flushed(struct bufferevent *, void *);
static void	metrics_event(struct bufferevent *, short, void *);

/*
 * In the parent, as root: the listener (metrics_listen), kept across
 * proxy restarts. Its descriptor, -1 with *cause, or -1 without metrics.
 */
int
metrics_bind(const struct conf *c, char **cause)
{
	int	 fd, one = 1;

	*cause = NULL;
	if (!c->c_has_metrics)
		return (-1);
	if ((fd = socket(c->c_metrics.cl_ss.ss_family, SOCK_STREAM |
	    SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (const struct sockaddr *)&c->c_metrics.cl_ss,
	    c->c_metrics.cl_len) == -1 || listen(fd, 16) == -1) {
		if (asprintf(cause, "metrics_listen %s: %s",
		    c->c_metrics.cl_text, strerror(errno)) < 0)
			*cause = NULL;
		if (fd != -1)
			close(fd);
		return (-1);
	}
	return (fd);
}

/* In the proxy: the parent's listener, fd (-1: none). */
void
metrics_init(const struct conf *c, int fd)
{
	metrics_allow = c->c_metrics_allow;
	metrics_fd = fd;
}

/* The whole report, as one HTTP/1.1 response that closes. */
static void
metrics_respond(struct metrics_client *mc, int code, const char *text,
    const char *body, size_t len)
{
	struct evbuffer	*out = bufferevent_get_output(mc->mc_bev);

	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n", code, text,
	    code == 200 ? "text/plain; version=0.0.4" : "text/plain", len);
	evbuffer_add(out, body, len);
	/* Nothing more is read: the response is all this client gets. */
	bufferevent_disable(mc->mc_bev, EV_READ);
	bufferevent_setcb(mc->mc_bev, NULL, metrics_flushed, metrics_event,
	    mc);
	bufferevent_enable(mc->mc_bev, EV_WRITE);
}

static void
metrics_error(struct metrics_client *mc, int code, const char *text)
{
	char	 body[64];
	int	 n = snprintf(body, sizeof(body), "%d %s\n", code, text);

	metrics_respond(mc, code, text, body, (size_t)n);
}

/*
 * One request: its head must arrive whole within METRICS_HEAD_MAX bytes
 * and the timeout; only GET /metrics is answered. A body is never read.
 */
static void
metrics_read(struct bufferevent *bev, void *arg)
{
	struct metrics_client	*mc = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 end;
	char			 line[64];
	char			*text = NULL;
	size_t			 len = 0;
	FILE			*f;

	end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos == -1)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos == -1) {
		if (evbuffer_get_length(in) >= METRICS_HEAD_MAX)
			metrics_error(mc, 431, "Request Header Fields Too Large");
		return;
	}
	memset(line, 0, sizeof(line));
	evbuffer_copyout(in, line, sizeof(line) - 1);
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "GET ", 4) != 0) {
		metrics_error(mc, 405, "Method Not Allowed");
		return;
	}
	if (strcmp(line, "GET /metrics HTTP/1.1") != 0 &&
	    strcmp(line, "GET /metrics HTTP/1.0") != 0) {
		metrics_error(mc, 404, "Not Found");
		return;
	}
	if ((f = open_memstream(&text, &len)) == NULL) {
		metrics_error(mc, 500, "Internal Server Error");
		return;
	}
	stat_prometheus(f, (unsigned)gw_nsessions, audit_queue_depth(),
	    audit_records_lost());
	audit_central_prometheus(f);
	policy_follow_prometheus(f);
	procstat_prometheus(f);
	fclose(f);
	metrics_respond(mc, 200, "OK", text, len);
	free(text);
}

static void
metrics_client_free(struct metrics_client *mc)
{
	if (mc->mc_deadline != NULL)
		event_free(mc->mc_deadline);
	bufferevent_free(mc->mc_bev);
	free(mc);
	metrics_clients--;
}

/* A client that trickles its request a byte at a time goes all the same. */
static void
metrics_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	metrics_client_free(arg);
}

static void
metrics_flushed(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		metrics_client_free(arg);
}

static void
metrics_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	metrics_client_free(arg);	/* EOF, error or timeout */
}

/*
 * A scraper connects: from an allowed address, and while fewer than
 * METRICS_CLIENTS_MAX are served, or it is closed at once. So a flood of
 * idle connections costs a few descriptors, never the SOCKS service's.
 */
static void
metrics_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	static const struct timeval	 timeout = { METRICS_TIMEOUT_S, 0 };
	struct metrics_client		*mc;
	struct sockaddr_storage		 peer;
	int				 ok;

	(void)arg;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, sa, (size_t)salen < sizeof(peer) ? (size_t)salen :
	    sizeof(peer));
	addr_unmap(&peer);
	/* Without metrics_allow, this machine only (secure by default). */
	ok = conf_cidrs_allow(&metrics_allow, (struct sockaddr *)&peer);
	if (!ok || metrics_clients >= METRICS_CLIENTS_MAX ||
	    (mc = calloc(1, sizeof(*mc))) == NULL) {
		STAT_ADD(GW_STAT_METRICS_REFUSED, 1);
		close(fd);
		return;
	}
	if ((mc->mc_bev = bufferevent_socket_new(evconnlistener_get_base(l),
	    fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		free(mc);
		return;
	}
	metrics_clients++;
	if ((mc->mc_deadline = evtimer_new(evconnlistener_get_base(l),
	    metrics_expired, mc)) == NULL ||
	    evtimer_add(mc->mc_deadline, &timeout) == -1) {
		metrics_client_free(mc);
		return;
	}
	bufferevent_setcb(mc->mc_bev, metrics_read, NULL, metrics_event, mc);
	bufferevent_setwatermark(mc->mc_bev, EV_READ, 0, METRICS_HEAD_MAX);
	bufferevent_set_timeouts(mc->mc_bev, &timeout, &timeout);
	bufferevent_enable(mc->mc_bev, EV_READ);
}

int
metrics_start(struct event_base *base, char **cause)
{
	if (metrics_fd == -1)
		return (0);
	if ((metrics_listener = evconnlistener_new(base, metrics_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE, 0, metrics_fd)) == NULL) {
		if (asprintf(cause, "metrics: cannot serve") < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

void
metrics_stop(void)
{
	if (metrics_listener != NULL)
		evconnlistener_free(metrics_listener);	/* closes the socket */
	metrics_listener = NULL;
	metrics_fd = -1;
}
