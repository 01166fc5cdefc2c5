/*
 * metrics.c: Prometheus metrics over libevent's evhttp (metrics_listen).
 * The socket is bound while gatewayd is still root; the main thread
 * serves GET /metrics from the counters in stats.c.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "gatewayd.h"

static int		 metrics_fd = -1;
static struct evhttp	*metrics_http;

int
metrics_init(const struct conf *c, char **cause)
{
	int	 one = 1;

	if (!c->c_has_metrics)
		return (0);
	if ((metrics_fd = socket(c->c_metrics.cl_ss.ss_family, SOCK_STREAM |
	    SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(metrics_fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) == -1 ||
	    bind(metrics_fd, (const struct sockaddr *)&c->c_metrics.cl_ss,
	    c->c_metrics.cl_len) == -1 || listen(metrics_fd, 16) == -1) {
		if (asprintf(cause, "metrics_listen %s: %s",
		    c->c_metrics.cl_text, strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

static void
metrics_serve(struct evhttp_request *req, void *arg)
{
	struct evbuffer	*out;
	char		*text = NULL;
	size_t		 len = 0;
	FILE		*f;

	(void)arg;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "GET only");
		return;
	}
	if ((out = evbuffer_new()) == NULL ||
	    (f = open_memstream(&text, &len)) == NULL) {
		if (out != NULL)
			evbuffer_free(out);
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	stat_prometheus(f, (unsigned)gw_nsessions, audit_queue_depth());
	fclose(f);
	evbuffer_add(out, text, len);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

int
metrics_start(struct event_base *base, char **cause)
{
	if (metrics_fd == -1)
		return (0);
	if ((metrics_http = evhttp_new(base)) == NULL ||
	    evhttp_set_cb(metrics_http, "/metrics", metrics_serve, NULL) != 0 ||
	    evhttp_accept_socket(metrics_http, metrics_fd) != 0) {
		if (asprintf(cause, "metrics: cannot serve") < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

void
metrics_stop(void)
{
	if (metrics_http != NULL)
		evhttp_free(metrics_http);	/* closes the socket too */
	metrics_http = NULL;
	metrics_fd = -1;
}
