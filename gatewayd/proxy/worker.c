/*
 * worker.c: one event loop per thread. Each worker has its own listening
 * sockets (SO_REUSEPORT: the kernel spreads connections over the workers),
 * its own resolver and its own sessions, so a session lives its whole life
 * on one thread and the hot path takes no lock.
 *
 * The main thread talks to a worker only through w_requests (atomic flags)
 * and a byte on the worker's wakeup pipe. Timeouts of every session are
 * checked by one sweep per worker four times a second against a coarse clock,
 * instead of one timer per session re-armed on every read.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "policy.h"
#include "stat.h"

#include "account/account.h"
#include "authd/auth.h"
#include "base/clock.h"
#include "base/stats.h"
#include "front/front.h"
#include "relay/relay.h"
#include "session/phases.h"

#include "control.h"
#include "proxy.h"
#include "worker.h"

static void	worker_accept(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	worker_accept_proxy(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	worker_accept_error(struct evconnlistener *, void *);
static void	worker_accept_resume(evutil_socket_t, short, void *);
static void	worker_sweep(evutil_socket_t, short, void *);
static void	worker_wakeup(evutil_socket_t, short, void *);
static void	worker_reap(evutil_socket_t, short, void *);
static void	*worker_main(void *);

/* Milliseconds; the coarse clock is a vDSO read, cheap enough per accept. */
int
worker_init(struct worker *w, int id, struct conf *c, const int *fds,
    size_t nfds, int auth_fd, char **cause)
{
	static const struct timeval	 tick = { 0, 250000 };
	size_t				 i;

	memset(w, 0, sizeof(*w));
	w->w_id = id;
	w->w_conf = c;
	conf_ref(c);
	w->w_policy = gwpolicy_get(&w->w_policy_gen);
	w->w_auth_fd = auth_fd;
	w->w_auth_next = -1;
	TAILQ_INIT(&w->w_sessions);
	TAILQ_INIT(&w->w_closed);
	w->w_now = gw_clock_ms();
	if (pipe2(w->w_wakeup_fd, O_NONBLOCK | O_CLOEXEC) == -1) {
		if (asprintf(cause, "worker %d: pipe: %s", id,
		    strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	w->w_scratch_len = c->c_relay_buffer;
	if ((w->w_scratch = malloc(w->w_scratch_len)) == NULL ||
	    (w->w_base = event_base_new()) == NULL)
		goto nomem;
	if ((w->w_resolver = resolver_new(w->w_base, c, cause)) == NULL)
		return (-1);
	for (i = 0; i < nfds; i++) {
		w->w_listeners[i] = evconnlistener_new(w->w_base,
		    c->c_listen[i].cl_proxy ? worker_accept_proxy :
		    worker_accept, w, LEV_OPT_CLOSE_ON_FREE |
		    LEV_OPT_CLOSE_ON_EXEC, 0, fds[i]);
		if (w->w_listeners[i] == NULL)
			goto nomem;
		evconnlistener_set_error_cb(w->w_listeners[i],
		    worker_accept_error);
		w->w_nlisteners++;
	}
	auth_channel_init(w);
	w->w_sweep = event_new(w->w_base, -1, EV_PERSIST, worker_sweep, w);
	w->w_wakeup = event_new(w->w_base, w->w_wakeup_fd[0],
	    EV_READ | EV_PERSIST, worker_wakeup, w);
	w->w_accept_resume = evtimer_new(w->w_base, worker_accept_resume, w);
	w->w_reap = event_new(w->w_base, -1, 0, worker_reap, w);
	if (w->w_sweep == NULL || w->w_wakeup == NULL ||
	    w->w_accept_resume == NULL || w->w_reap == NULL ||
	    event_add(w->w_sweep, &tick) == -1 ||
	    event_add(w->w_wakeup, NULL) == -1)
		goto nomem;
	return (0);
nomem:
	if (asprintf(cause, "worker %d: out of memory", id) < 0)
		*cause = NULL;
	return (-1);
}

int
worker_start(struct worker *w)
{
	return (pthread_create(&w->w_thread, NULL, worker_main, w));
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;

	event_base_dispatch(w->w_base);
	return (NULL);
}

void
worker_join(struct worker *w)
{
	pthread_join(w->w_thread, NULL);
}

/* From the main thread: ask the worker to reload or stop. */
void
worker_request(struct worker *w, unsigned what)
{
	const char	 byte = 0;

	atomic_fetch_or(&w->w_requests, what);
	if (write(w->w_wakeup_fd[1], &byte, 1) == -1 && errno != EAGAIN)
		log_warn("worker %d: wakeup", w->w_id);
}

static void
worker_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct worker	*w = arg;

	(void)l;
	atomic_fetch_add_explicit(&w->w_accepted, 1, memory_order_relaxed);
	session_accept(w, &front_detect, fd, sa, (socklen_t)salen);
}

/*
 * A proxy_protocol listener: only the balancers proxy_trusted names may
 * say who a client is. Anyone else is closed at once, and said at most
 * once a second (a flood must not fill the log); the counter has them all.
 */
static void
worker_accept_proxy(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	static _Atomic int64_t	 said;
	struct worker		*w = arg;
	char			 peer[ADDR_STRLEN];
	int64_t			 now = gw_clock_ms() / 1000, last;

	(void)l;
	atomic_fetch_add_explicit(&w->w_accepted, 1, memory_order_relaxed);
	/* An empty list (a reload that dropped it) trusts no one. */
	if (w->w_conf->c_proxy_trusted.cc_n > 0 &&
	    conf_cidrs_allow(&w->w_conf->c_proxy_trusted, sa)) {
		session_accept(w, &front_proxy, fd, sa, (socklen_t)salen);
		return;
	}
	STAT_ADD(GW_STAT_PROXY_UNTRUSTED, 1);
	close(fd);
	last = atomic_load(&said);
	if (last != now && atomic_compare_exchange_strong(&said, &last, now))
		log_warnx("refused %s on a proxy_protocol listener: not a "
		    "load balancer proxy_trusted names", addr_str(sa, peer,
		    sizeof(peer)));
}

/*
 * Out of descriptors (or memory): the pending connection stays queued and
 * libevent would call us again at once, forever. Pause accepting for a
 * second instead; sessions that end meanwhile free descriptors.
 */
static void
worker_accept_error(struct evconnlistener *l, void *arg)
{
	static const struct timeval	 pause = { 1, 0 };
	struct worker			*w = arg;
	size_t				 i;

	(void)l;
	if (errno != EMFILE && errno != ENFILE && errno != ENOBUFS &&
	    errno != ENOMEM) {
		log_warn("worker %d: accept", w->w_id);
		return;
	}
	log_warn("worker %d: accept paused for 1s", w->w_id);
	for (i = 0; i < w->w_nlisteners; i++)
		evconnlistener_disable(w->w_listeners[i]);
	evtimer_add(w->w_accept_resume, &pause);
}

static void
worker_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	size_t		 i;

	(void)fd;
	(void)what;
	if (w->w_stopping)
		return;
	for (i = 0; i < w->w_nlisteners; i++)
		evconnlistener_enable(w->w_listeners[i]);
}

/* Once the last session of a stopping worker is freed, its loop ends. */
static void
worker_session_gone(struct worker *w)
{
	if (w->w_stopping && TAILQ_EMPTY(&w->w_sessions) &&
	    TAILQ_EMPTY(&w->w_closed))
		event_base_loopbreak(w->w_base);
}

static void
worker_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct session	*s, *next;
	int64_t		 idle = (int64_t)w->w_conf->c_idle_timeout * 1000;

	(void)fd;
	(void)what;
	w->w_now = gw_clock_ms();
	for (s = TAILQ_FIRST(&w->w_sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, s_entry);
		if (w->w_stopping && w->w_now >= w->w_stop_deadline)
			session_close(s, CLOSE_SHUTDOWN);
		else if (s->s_state == S_RELAY || s->s_state == S_UDP) {
			uint64_t total = s->s_bytes[0] + s->s_bytes[1];

			/* Bytes a second over the last tick (250 ms). */
			s->s_rate = (total - s->s_rate_prev) * 4;
			s->s_rate_prev = total;
			if (quota_exhausted(s) || capped_draining(s))
				relay_quota_end(s, w->w_now);
			else if (w->w_now - s->s_active >= idle)
				session_timeout(s);
		} else if (w->w_now >= s->s_deadline)
			session_timeout(s);
	}
	worker_session_gone(w);
}

static void
worker_reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_reap(arg);
	worker_session_gone(arg);
}

static void
worker_reload(struct worker *w)
{
	struct conf	*c = gw_conf_get(), *old = w->w_conf;
	struct resolver	*rv;
	char		*cause = NULL;

	/* The resolver's files may have changed: always read them anew. */
	if ((rv = resolver_new(w->w_base, c, &cause)) == NULL) {
		log_warnx("worker %d: reload: %s; keeping the old resolver",
		    w->w_id, cause != NULL ? cause : "out of memory");
		free(cause);
	} else {
		resolver_retire(w->w_resolver);
		w->w_resolver = rv;
	}
	if (c->c_relay_buffer != w->w_scratch_len) {
		uint8_t	*scratch = malloc(c->c_relay_buffer);

		if (scratch == NULL)
			log_warnx("worker %d: reload: relay_buffer stays %zu",
			    w->w_id, w->w_scratch_len);
		else {
			free(w->w_scratch);
			w->w_scratch = scratch;
			w->w_scratch_len = c->c_relay_buffer;
		}
	}
	w->w_conf = c;
	conf_unref(old);
}

static void
worker_stop(struct worker *w)
{
	size_t	 i;

	w->w_stopping = 1;
	w->w_stop_deadline = w->w_now +
	    (int64_t)w->w_conf->c_shutdown_grace * 1000;
	evtimer_del(w->w_accept_resume);
	for (i = 0; i < w->w_nlisteners; i++)
		evconnlistener_free(w->w_listeners[i]);
	w->w_nlisteners = 0;
	if (w->w_nsessions > 0)
		log_info("worker %d: %u sessions open, waiting up to %ds",
		    w->w_id, w->w_nsessions, w->w_conf->c_shutdown_grace);
	worker_session_gone(w);
}

/*
 * A new policy is in force: every session past its request is judged
 * again, and those it denies are closed.
 */
static void
worker_policy(struct worker *w)
{
	struct policy	*p, *old = w->w_policy;
	struct session	*s, *next;
	unsigned	 revoked = 0;

	if ((p = gwpolicy_get(&w->w_policy_gen)) == NULL)
		return;
	w->w_policy = p;
	for (s = TAILQ_FIRST(&w->w_sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, s_entry);
		if (verdict_recheck(s, p) == -1) {
			session_close(s, CLOSE_REVOKED);
			revoked++;
		} else
			bandwidth_recheck(s);
	}
	if (revoked > 0)
		log_info("worker %d: %u sessions closed by the new policy",
		    w->w_id, revoked);
	atomic_store(&w->w_policy_seen, p);
	policy_unref(old);
}

static void
worker_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	char		 buf[64];
	unsigned	 req;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	req = atomic_exchange(&w->w_requests, 0);
	if (req & WORKER_RELOAD)
		worker_reload(w);
	if (req & WORKER_POLICY)
		worker_policy(w);
	if (req & WORKER_CONTROL)
		control_answer(w);
	if (req & WORKER_AUTHD)
		auth_channel_replace(w, atomic_exchange(&w->w_auth_next, -1));
	if ((req & WORKER_STOP) && !w->w_stopping)
		worker_stop(w);
}

/* From the main thread: authd was restarted, fd is this worker's channel. */
void
worker_set_authd(struct worker *w, int fd)
{
	int	 old = atomic_exchange(&w->w_auth_next, fd);

	if (old != -1)
		close(old);	/* a restart the worker has not seen yet */
	worker_request(w, WORKER_AUTHD);
}

/* After the thread has ended: everything the worker still holds. */
void
worker_free(struct worker *w)
{
	struct session	*s;
	size_t		 i;

	for (i = 0; i < w->w_nlisteners; i++)
		evconnlistener_free(w->w_listeners[i]);
	w->w_nlisteners = 0;
	while ((s = TAILQ_FIRST(&w->w_sessions)) != NULL)
		session_close(s, CLOSE_SHUTDOWN);
	session_reap(w);
	if (w->w_resolver != NULL) {
		/*
		 * Delivers the callbacks of requests cancelled just now, then
		 * runs the release that resolver_retire schedules.
		 */
		event_base_loop(w->w_base, EVLOOP_NONBLOCK);
		resolver_retire(w->w_resolver);
		event_base_loop(w->w_base, EVLOOP_NONBLOCK);
	}
	if (w->w_sweep != NULL)
		event_free(w->w_sweep);
	if (w->w_wakeup != NULL)
		event_free(w->w_wakeup);
	if (w->w_accept_resume != NULL)
		event_free(w->w_accept_resume);
	if (w->w_reap != NULL)
		event_free(w->w_reap);
	if (w->w_auth_ev != NULL)
		event_free(w->w_auth_ev);
	if (w->w_auth_hits != NULL)
		event_free(w->w_auth_hits);
	if (w->w_auth_fd != -1)
		close(w->w_auth_fd);
	if (w->w_base != NULL)
		event_base_free(w->w_base);
	free(w->w_scratch);
	free(w->w_answer);
	policy_unref(w->w_policy);
	close(w->w_wakeup_fd[0]);
	close(w->w_wakeup_fd[1]);
	conf_unref(w->w_conf);
}
