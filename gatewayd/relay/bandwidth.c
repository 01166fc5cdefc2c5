/*
 * bandwidth.c: bandwidth caps shared by sessions, as libevent rate-limit
 * groups (bufferevent_rate_limit_group).
 *
 * A pool is one cap and the sessions that share it: "u:NAME" for a
 * user's own cap (or the default one), "g:NAME" for a group's, shared by
 * all its members. A session can be in two pools, so both caps hold:
 * its client-side bufferevent joins the user's pool (reads from the
 * client are the upload, writes to it the download) and its remote-side
 * bufferevent the group's (reads: the download, writes: the upload).
 * Each pool caps both directions at its rate.
 *
 * The sessions of a pool live on any worker, so a pool's group is shared
 * across event bases: libevent locks groups and, with
 * evthread_use_pthreads() and BEV_OPT_THREADSAFE, the member bufferevents,
 * and suspends/unsuspends members from any thread (an event_add on
 * another base wakes that base). The groups' refill timers run on an
 * event base of their own, in a thread of its own, so refills go on
 * while the main loop or a worker is busy or shutting down.
 *
 * Buckets refill every 50 ms with a twentieth of the rate and hold up to
 * 200 ms of it. The reserve is there because libevent's refill wakes the
 * suspended members with a try-lock and, when a member is busy in its own
 * thread at that moment, retries only at the next refill: with a bucket
 * of one refill each such miss was lost (bidirectional traffic measured
 * 25% under the cap), with four it is made up at the next one (within
 * 0-6%). The price is a burst of at most 200 ms of traffic when a pool
 * starts or has been idle.
 */
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "policy.h"

#include "base/clock.h"
#include "proxy/worker.h"
#include "session/session.h"

#include "relay.h"

#define BW_TICK_MS	50
#define BW_BURST_TICKS	4
#define BW_BUCKETS	256

struct bw_pool {
	LIST_ENTRY(bw_pool)	 bp_entry;
	struct bufferevent_rate_limit_group *bp_group;
	struct ev_token_bucket_cfg *bp_cfg;
	uint64_t		 bp_rate;	/* bytes a second */
	int64_t			 bp_refs;	/* sessions in it */
	char			 bp_key[];
};
LIST_HEAD(bw_list, bw_pool);

static pthread_mutex_t	 bw_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bw_list	 bw_pools[BW_BUCKETS];
static struct event_base *bw_base;
static struct event	*bw_keepalive;
static pthread_t	 bw_thread;
static int		 bw_running;
static _Atomic int	 bw_stopping;	/* bandwidth_stop: the thread ends */

static struct ev_token_bucket_cfg *
bw_cfg(uint64_t rate)
{
	struct timeval	 tick = { 0, BW_TICK_MS * 1000 };
	uint64_t	 per_tick = rate * BW_TICK_MS / 1000;

	if (per_tick < 1)
		per_tick = 1;
	if (per_tick > EV_RATE_LIMIT_MAX / BW_BURST_TICKS)
		per_tick = EV_RATE_LIMIT_MAX / BW_BURST_TICKS;
	return (ev_token_bucket_cfg_new((size_t)per_tick,
	    (size_t)per_tick * BW_BURST_TICKS, (size_t)per_tick,
	    (size_t)per_tick * BW_BURST_TICKS, &tick));
}

/* Applies rate to a pool whose cap a reload changed. */
static void
bw_set_rate(struct bw_pool *bp, uint64_t rate)
{
	struct ev_token_bucket_cfg	*cfg;

	if (bp->bp_rate == rate || (cfg = bw_cfg(rate)) == NULL)
		return;
	bufferevent_rate_limit_group_set_cfg(bp->bp_group, cfg);
	ev_token_bucket_cfg_free(bp->bp_cfg);
	bp->bp_cfg = cfg;
	bp->bp_rate = rate;
}

/* Finds or makes pool kind:name at rate (its rate updated); under bw_lock. */
static struct bw_pool *
bw_pool_get(char kind, const char *name, uint64_t rate)
{
	struct bw_list	*b;
	struct bw_pool	*bp;
	size_t		 len = strlen(name);

	b = &bw_pools[(gw_hash(name, len) + (uint8_t)kind) % BW_BUCKETS];
	LIST_FOREACH(bp, b, bp_entry) {
		if (bp->bp_key[0] == kind && strcmp(bp->bp_key + 2, name) == 0) {
			bw_set_rate(bp, rate);
			bp->bp_refs++;
			return (bp);
		}
	}
	if ((bp = calloc(1, sizeof(*bp) + len + 3)) == NULL)
		return (NULL);
	bp->bp_key[0] = kind;
	bp->bp_key[1] = ':';
	memcpy(bp->bp_key + 2, name, len + 1);
	bp->bp_rate = rate;
	bp->bp_refs = 1;
	if ((bp->bp_cfg = bw_cfg(rate)) == NULL ||
	    (bp->bp_group = bufferevent_rate_limit_group_new(bw_base,
	    bp->bp_cfg)) == NULL) {
		if (bp->bp_cfg != NULL)
			ev_token_bucket_cfg_free(bp->bp_cfg);
		free(bp);
		return (NULL);
	}
	LIST_INSERT_HEAD(b, bp, bp_entry);
	return (bp);
}

/* Under bw_lock: the pool's last session left (its bufferevent is gone). */
static void
bw_pool_put(struct bw_pool *bp)
{
	if (--bp->bp_refs > 0)
		return;
	LIST_REMOVE(bp, bp_entry);
	bufferevent_rate_limit_group_free(bp->bp_group);
	ev_token_bucket_cfg_free(bp->bp_cfg);
	free(bp);
}

/*
 * Puts a relayed session into the pools of its caps: 1 when it has one
 * (and must be relayed through bufferevents), 0 when not, -1 on failure.
 */
int
bandwidth_join(struct session *s)
{
	struct policy		*p = s->s_worker->w_policy;
	struct policy_req	 req;
	const char		*group;
	uint64_t		 user_rate, group_rate;

	if (!s->s_authed || s->s_user == NULL || !policy_has_limits(p))
		return (0);
	session_policy_req(s, NULL, &req);
	user_rate = policy_user_bandwidth(p, &req, NULL, 0);
	group_rate = policy_group_bandwidth(p, &req, &group);
	if (user_rate == 0 && group_rate == 0)
		return (0);
	pthread_mutex_lock(&bw_lock);
	if (user_rate > 0)
		s->s_bw[SIDE_CLIENT] = bw_pool_get('u', s->s_user, user_rate);
	if (group_rate > 0)
		s->s_bw[SIDE_REMOTE] = bw_pool_get('g', group, group_rate);
	pthread_mutex_unlock(&bw_lock);
	if ((user_rate > 0 && s->s_bw[SIDE_CLIENT] == NULL) ||
	    (group_rate > 0 && s->s_bw[SIDE_REMOTE] == NULL)) {
		bandwidth_leave(s);
		return (-1);
	}
	return (1);
}

/* The rate-limit group side's bufferevent joins, NULL for none. */
struct bufferevent_rate_limit_group *
bandwidth_group(struct session *s, int side)
{
	return (s->s_bw[side] != NULL ? s->s_bw[side]->bp_group : NULL);
}

/* After the session's bufferevents are freed. */
void
bandwidth_leave(struct session *s)
{
	int	 i;

	if (s->s_bw[0] == NULL && s->s_bw[1] == NULL)
		return;
	pthread_mutex_lock(&bw_lock);
	for (i = 0; i < 2; i++) {
		if (s->s_bw[i] != NULL)
			bw_pool_put(s->s_bw[i]);
		s->s_bw[i] = NULL;
	}
	pthread_mutex_unlock(&bw_lock);
}

/* Is pool bp the one kind:name? */
static int
bw_pool_is(const struct bw_pool *bp, char kind, const char *name)
{
	return (bp != NULL && name != NULL && bp->bp_key[0] == kind &&
	    strcmp(bp->bp_key + 2, name) == 0);
}

/*
 * A new policy, for a relayed session: a changed cap applies to its pool
 * at once; a cap added, taken away or moved to another group moves the
 * session's bufferevents between pools, and a session relayed raw until
 * now is switched to the capped relay (relay_repool()).
 */
void
bandwidth_recheck(struct session *s)
{
	struct policy		*p = s->s_worker->w_policy;
	struct policy_req	 req;
	struct bw_pool		*old[2] = { NULL, NULL };
	const char		*name[2] = { NULL, NULL };
	uint64_t		 rate[2] = { 0, 0 };
	int			 i, moved = 0;
	static const char	 kind[2] = { 'u', 'g' };

	if (s->s_state != S_RELAY || (!policy_has_limits(p) &&
	    s->s_bw[0] == NULL && s->s_bw[1] == NULL))
		return;
	if (s->s_authed && s->s_user != NULL) {
		session_policy_req(s, NULL, &req);
		rate[SIDE_CLIENT] = policy_user_bandwidth(p, &req, NULL, 0);
		rate[SIDE_REMOTE] = policy_group_bandwidth(p, &req, &name[1]);
		name[0] = s->s_user;
	}
	pthread_mutex_lock(&bw_lock);
	for (i = 0; i < 2; i++) {
		if (rate[i] > 0 && bw_pool_is(s->s_bw[i], kind[i], name[i])) {
			bw_set_rate(s->s_bw[i], rate[i]);
			continue;
		}
		if (rate[i] == 0 && s->s_bw[i] == NULL)
			continue;
		/* Out of memory for a new pool: the session runs uncapped. */
		old[i] = s->s_bw[i];
		s->s_bw[i] = rate[i] > 0 ? bw_pool_get(kind[i], name[i],
		    rate[i]) : NULL;
		moved = 1;
	}
	pthread_mutex_unlock(&bw_lock);
	if (!moved)
		return;
	relay_repool(s, old);
	pthread_mutex_lock(&bw_lock);
	for (i = 0; i < 2; i++)
		if (old[i] != NULL)
			bw_pool_put(old[i]);
	pthread_mutex_unlock(&bw_lock);
}

static void
bw_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/*
 * Until bandwidth_stop says so. Not event_base_loopbreak(): a break asked
 * before the loop has begun is forgotten when it begins (libevent clears
 * it), and the thread then slept on its one-day timer while the proxy
 * waited to join it: a gateway told to stop right after it started hung
 * (about one start in 70 under load).
 */
static void *
bw_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&bw_stopping))
		if (event_base_loop(bw_base, EVLOOP_ONCE) == -1)
			break;
	return (NULL);
}

/* After evthread_use_pthreads(): the refill timers' loop and thread. */
int
bandwidth_start(char **cause)
{
	struct timeval	 day = { 86400, 0 };

	/* The loop runs even with no group: a persistent timer holds it. */
	if ((bw_base = event_base_new()) == NULL ||
	    (bw_keepalive = event_new(bw_base, -1, EV_PERSIST,
	    bw_keepalive_cb, NULL)) == NULL ||
	    event_add(bw_keepalive, &day) == -1) {
		if (asprintf(cause, "bandwidth: cannot make its event loop") <
		    0)
			*cause = NULL;
		return (-1);
	}
	if ((errno = pthread_create(&bw_thread, NULL, bw_main, NULL)) != 0) {
		if (asprintf(cause, "bandwidth: %s", strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	bw_running = 1;
	return (0);
}

/* After the workers are gone (no session, so no pool, is left). */
void
bandwidth_stop(void)
{
	if (bw_running) {
		/* Seen before its next wait, or woken from it. */
		atomic_store(&bw_stopping, 1);
		event_active(bw_keepalive, EV_TIMEOUT, 0);
		pthread_join(bw_thread, NULL);
		bw_running = 0;
	}
	atomic_store(&bw_stopping, 0);
	if (bw_keepalive != NULL)
		event_free(bw_keepalive);
	bw_keepalive = NULL;
	if (bw_base != NULL)
		event_base_free(bw_base);
	bw_base = NULL;
}
