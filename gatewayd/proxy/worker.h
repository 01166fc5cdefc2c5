/*
 * worker.h: one event loop per thread of the proxy. A worker owns the
 * sessions it accepted, its resolver and its channel to authd; the main
 * thread asks it things only through worker_request().
 */
#ifndef WORKER_H
#define WORKER_H

#include <sys/queue.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct event_base;
struct event;
struct evconnlistener;
struct policy;
struct resolver;
struct session;
TAILQ_HEAD(session_list, session);

struct worker {
	int			 w_id;
	pthread_t		 w_thread;
	struct event_base	*w_base;
	struct resolver		*w_resolver;
	struct evconnlistener	*w_listeners[GW_MAX_LISTEN];
	size_t			 w_nlisteners;
	struct event		*w_sweep;
	struct event		*w_wakeup;
	struct event		*w_accept_resume;
	struct event		*w_reap;	/* frees closed sessions */
	struct session_list	 w_closed;
	int			 w_wakeup_fd[2];
	int			 w_auth_fd;	/* to authd, or -1 */
	_Atomic int		 w_auth_next;	/* a new one (WORKER_AUTHD) */
	struct event		*w_auth_ev;
	struct event		*w_auth_hits;	/* delivers cached logins */
	struct session_list	 w_auth_hitq;	/* answered by the cache */
	struct session_list	 w_authing;	/* sessions waiting for authd */
	char			*w_answer;	/* to the control socket */
	int			 w_answered;
	uint8_t			*w_scratch;	/* relay reads land here */
	size_t			 w_scratch_len;
	struct conf		*w_conf;	/* changed on this thread only */
	struct policy		*w_policy;	/* likewise: verdict_snapshot() */
	unsigned		 w_policy_gen;	/* gwpolicy_generation() of it */
	_Atomic(const struct policy *) w_policy_seen;	/* for the main thread */
	_Atomic unsigned	 w_requests;	/* WORKER_* from the main thread */
	struct session_list	 w_sessions;
	unsigned		 w_nsessions;
	_Atomic uint64_t	 w_accepted;	/* connections; steer.c reads */
	int64_t			 w_now;		/* coarse monotonic ms */
	int			 w_stopping;
	int64_t			 w_stop_deadline;
};
#define WORKER_RELOAD	0x1
#define WORKER_STOP	0x2
#define WORKER_POLICY	0x4	/* a new policy snapshot is in force */
#define WORKER_CONTROL	0x8	/* answer the control socket's question */
#define WORKER_AUTHD	0x10	/* a restarted authd's channel: w_auth_next */

int	 worker_init(struct worker *, int, struct conf *, const int *, size_t,
	    int, char **);
int	 worker_start(struct worker *);
void	 worker_request(struct worker *, unsigned);
void	 worker_set_authd(struct worker *, int);
void	 worker_join(struct worker *);
void	 worker_free(struct worker *);

#endif /* WORKER_H */
