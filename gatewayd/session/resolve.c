/*
 * resolve.c: asynchronous name resolution with libevent's evdns. The hosts
 * file is consulted first, then the nameservers of resolv_conf; nothing
 * here ever blocks the event loop.
 *
 * Lifetimes. A request's callback can run after the session that asked was
 * closed (evdns delivers a cancelled request's callback later), so the
 * callback's argument is a small ticket, not the session: closing the
 * session clears ticket->dt_session and the late callback finds nobody.
 * A reload that changes the resolver's files builds a new resolver; the old
 * one lives on, retired, until its last request has called back.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "socks5.h"
#include "stat.h"

#include "base/clock.h"
#include "base/stats.h"
#include "proxy/worker.h"

#include "phases.h"

struct resolver {
	struct event_base	*rv_base;
	struct evdns_base	*rv_dns;
	unsigned		 rv_pending;	/* callbacks still to come */
	int			 rv_retired;
};

struct dns_ticket {
	resolve_cb		*dt_cb;
	void			*dt_arg;	/* NULL once abandoned */
	struct resolver		*dt_resolver;
	struct evdns_getaddrinfo_request *dt_req;
};

static void	resolve_done(int, struct evutil_addrinfo *, void *);
static void	resolve_session_done(int, struct evutil_addrinfo *, void *);

struct resolver *
resolver_new(struct event_base *base, const struct conf *c, char **cause)
{
	struct resolver	*rv;
	int		 r;

	if ((rv = calloc(1, sizeof(*rv))) == NULL ||
	    (rv->rv_dns = evdns_base_new(base, 0)) == NULL) {
		free(rv);
		if (asprintf(cause, "resolver: out of memory") < 0)
			*cause = NULL;
		return (NULL);
	}
	rv->rv_base = base;
	/*
	 * The hosts file is ours to name, not resolv.conf's default. The
	 * search list is never taken: a client's name is absolute, and the
	 * name resolved must be exactly the name the policy judged (with
	 * `search blocked.example`, "intranet" would become
	 * "intranet.blocked.example" after the policy judged "intranet").
	 */
	r = evdns_base_resolv_conf_parse(rv->rv_dns, DNS_OPTIONS_ALL &
	    ~(DNS_OPTION_HOSTSFILE | DNS_OPTION_SEARCH), c->c_resolv_conf);
	if (r != 0 && r != 6) {		/* 6: no nameserver, see below */
		if (asprintf(cause, "resolv_conf %s: cannot be read (evdns "
		    "error %d)", c->c_resolv_conf, r) < 0)
			*cause = NULL;
		goto fail;
	}
	if (r == 6)
		log_warnx("resolv_conf %s names no nameserver; using "
		    "127.0.0.1", c->c_resolv_conf);
	evdns_base_search_clear(rv->rv_dns);
	if (evdns_base_load_hosts(rv->rv_dns, c->c_hosts_file) != 0) {
		if (asprintf(cause, "hosts_file %s: cannot be read",
		    c->c_hosts_file) < 0)
			*cause = NULL;
		goto fail;
	}
	return (rv);
fail:
	evdns_base_free(rv->rv_dns, 0);
	free(rv);
	return (NULL);
}

static void
resolver_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolver	*rv = arg;

	(void)fd;
	(void)what;
	evdns_base_free(rv->rv_dns, 1);
	free(rv);
}

/* Called when rv is no longer used for new requests. */
void
resolver_retire(struct resolver *rv)
{
	static const struct timeval	 now = { 0, 0 };

	rv->rv_retired = 1;
	if (rv->rv_pending > 0)
		return;
	/* Never free an evdns base from inside one of its own callbacks. */
	if (event_base_once(rv->rv_base, -1, EV_TIMEOUT, resolver_free_cb, rv,
	    &now) == -1)
		log_warnx("resolver: cannot schedule its release; leaked");
}

/*
 * Looks name up; cb(result, addresses, arg) runs once, and owns the
 * addresses. A name from the hosts file or a numeric one is answered
 * before this returns, which then returns NULL; otherwise the ticket,
 * for resolve_abandon().
 */
struct dns_ticket *
resolve_lookup(struct worker *w, const char *name, int socktype,
    resolve_cb *cb, void *arg)
{
	struct resolver		*rv = w->w_resolver;
	struct evutil_addrinfo	 hints;
	struct dns_ticket	*dt;
	struct evdns_getaddrinfo_request *req;

	if ((dt = calloc(1, sizeof(*dt))) == NULL) {
		cb(EVUTIL_EAI_MEMORY, NULL, arg);
		return (NULL);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_protocol = socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
	dt->dt_cb = cb;
	dt->dt_arg = arg;
	dt->dt_resolver = rv;
	rv->rv_pending++;
	req = evdns_getaddrinfo(rv->rv_dns, name, NULL, &hints, resolve_done,
	    dt);
	if (req == NULL)
		return (NULL);	/* answered already; dt is gone */
	dt->dt_req = req;
	return (dt);
}

/* The callback will find nobody; its addresses are freed. */
void
resolve_abandon(struct dns_ticket *dt)
{
	dt->dt_arg = NULL;
	if (dt->dt_req != NULL)
		evdns_getaddrinfo_cancel(dt->dt_req);
}

void
resolve_start(struct session *s)
{
	struct worker		*w = s->s_worker;

	session_set_state(s, S_RESOLVING);
	w->w_now = gw_clock_ms();
	s->s_deadline = w->w_now +
	    (int64_t)w->w_conf->c_connect_timeout * 1000;
	clock_gettime(CLOCK_MONOTONIC, &s->s_dns_sent);
	s->s_dns = resolve_lookup(w, s->s_dst_name, SOCK_STREAM,
	    resolve_session_done, s);
}

/* Abandons the session's request; its callback will find nobody. */
void
resolve_cancel(struct session *s)
{
	if (s->s_dns == NULL)
		return;
	resolve_abandon(s->s_dns);
	s->s_dns = NULL;
}

static void
resolve_done(int result, struct evutil_addrinfo *res, void *arg)
{
	struct dns_ticket	*dt = arg;
	struct resolver		*rv = dt->dt_resolver;
	resolve_cb		*cb = dt->dt_cb;
	void			*cbarg = dt->dt_arg;

	free(dt);
	if (--rv->rv_pending == 0 && rv->rv_retired)
		resolver_retire(rv);
	if (cbarg == NULL) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	cb(result, res, cbarg);
}

static void
resolve_session_done(int result, struct evutil_addrinfo *res, void *arg)
{
	struct session		*s = arg;
	struct evutil_addrinfo	*ai;
	struct timespec		 now;
	int			 n;

	s->s_dns = NULL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	stat_observe(HIST_DNS, (double)(now.tv_sec - s->s_dns_sent.tv_sec) *
	    1e3 + (double)(now.tv_nsec - s->s_dns_sent.tv_nsec) / 1e6);
	if (result != 0 || res == NULL) {
		STAT_ADD(GW_STAT_DNS_FAILURES, 1);
		s->s_errno = 0;
		session_refuse(s, S5_REP_HOST_UNREACHABLE,
		    result == EVUTIL_EAI_NONAME || result == EVUTIL_EAI_NODATA ?
		    "DNS: no such name" : "DNS: lookup failed");
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	for (n = 0, ai = res; ai != NULL && n < GW_MAX_CANDIDATES;
	    ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			n++;
	if (n == 0) {
		evutil_freeaddrinfo(res);
		session_refuse(s, S5_REP_HOST_UNREACHABLE, "DNS: no address");
		return;
	}
	if ((s->s_dial.d_cand = calloc((size_t)n,
	    sizeof(*s->s_dial.d_cand))) == NULL) {
		evutil_freeaddrinfo(res);
		session_refuse(s, S5_REP_GENERAL_FAILURE, "out of memory");
		return;
	}
	for (n = 0, ai = res; ai != NULL && n < GW_MAX_CANDIDATES;
	    ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		memcpy(&s->s_dial.d_cand[n], ai->ai_addr, ai->ai_addrlen);
		addr_set_port(&s->s_dial.d_cand[n], s->s_dst_port);
		addr_unmap(&s->s_dial.d_cand[n]);
		n++;
	}
	s->s_dial.d_ncand = n;
	s->s_dial.d_icand = 0;
	evutil_freeaddrinfo(res);
	connect_next(s);
}
