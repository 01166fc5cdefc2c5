/*
 * limits.c: per-user limits on live sessions and on the rate of new ones,
 * and the rate of new sessions per client address. The state is shared by
 * all workers (a user's sessions land on any of them): a user's count and
 * bucket are in the user's account (account.c), a client address's bucket
 * in a table here, all under one mutex; the lock is taken only when the
 * policy in force sets a limit at all, so a gateway without limits pays
 * one branch.
 *
 * A session is counted from its request until it closes. Rates are token
 * buckets (libevent's own are for bytes on bufferevents, not for
 * sessions): rate tokens a second, up to burst, one taken per request.
 * Lowering a limit by a live reload refuses new sessions beyond it;
 * running ones go on.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

#include "base/clock.h"
#include "proxy/worker.h"
#include "session/session.h"

#include "account.h"
#include "account_int.h"

#define LIMITS_BUCKETS		4096
#define LIMITS_SWEEP_MS		1000	/* drop full buckets */

struct client_limit {
	LIST_ENTRY(client_limit) cl_entry;
	struct bucket		 cl_bucket;
	uint8_t			 cl_addr[16];	/* IPv4 in the first 4 */
	sa_family_t		 cl_family;
};
LIST_HEAD(client_limit_list, client_limit);

static pthread_mutex_t		 limits_lock = PTHREAD_MUTEX_INITIALIZER;
static struct client_limit_list	 limits_clients[LIMITS_BUCKETS];
static int64_t			 limits_swept_ms;
LIST_HEAD(account_list, account);
static struct account_list	 limits_accounts;	/* a_limited */

static void	limits_user_tidy(struct account *, int64_t);

static uint32_t
limits_hash(const uint8_t *p, size_t len)
{
	return (gw_hash(p, len) % LIMITS_BUCKETS);
}

/* The tokens in b now, under rate r. */
static double
bucket_level(const struct bucket *b, const struct policy_rate *r,
    int64_t now)
{
	double	 t = b->b_tokens + (double)(now - b->b_ms) * r->pr_milli / 1e6;

	return (t > r->pr_burst ? r->pr_burst : t);
}

static void
bucket_fill(struct bucket *b, const struct policy_rate *r, int64_t now)
{
	b->b_tokens = r->pr_burst;
	b->b_ms = now;
	b->b_rate = *r;
}

/* Takes a token: -1 when there is none. */
static int
bucket_take(struct bucket *b, const struct policy_rate *r, int64_t now)
{
	b->b_tokens = bucket_level(b, r, now);
	b->b_ms = now;
	b->b_rate = *r;
	if (b->b_tokens < 1)
		return (-1);
	b->b_tokens -= 1;
	return (0);
}

static int
bucket_full(const struct bucket *b, int64_t now)
{
	return (bucket_level(b, &b->b_rate, now) >= b->b_rate.pr_burst);
}

static size_t
client_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return (4);
	}
	memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	return (16);
}

/*
 * Drops the client buckets that are full again, and lets go of the
 * accounts of users without sessions whose buckets are: they hold no
 * state.
 */
static void
limits_sweep(int64_t now)
{
	struct client_limit	*cl, *next;
	struct account		*a, *anext;
	size_t			 i;

	limits_swept_ms = now;
	for (a = LIST_FIRST(&limits_accounts); a != NULL; a = anext) {
		anext = LIST_NEXT(a, a_limit_entry);
		limits_user_tidy(a, now);
	}
	for (i = 0; i < LIMITS_BUCKETS; i++) {
		for (cl = LIST_FIRST(&limits_clients[i]); cl != NULL;
		    cl = next) {
			next = LIST_NEXT(cl, cl_entry);
			if (bucket_full(&cl->cl_bucket, now)) {
				LIST_REMOVE(cl, cl_entry);
				free(cl);
			}
		}
	}
}

/* Takes a token of the client address's bucket; -1: none left. */
static int
limits_client_take(const struct sockaddr_storage *peer,
    const struct policy_rate *r, int64_t now)
{
	struct client_limit_list *b;
	struct client_limit	*cl;
	uint8_t			 key[16];
	size_t			 len = client_key(peer, key);

	if (now - limits_swept_ms >= LIMITS_SWEEP_MS)
		limits_sweep(now);
	b = &limits_clients[limits_hash(key, len)];
	LIST_FOREACH(cl, b, cl_entry)
		if (cl->cl_family == peer->ss_family &&
		    memcmp(cl->cl_addr, key, sizeof(key)) == 0)
			break;
	if (cl == NULL) {
		if ((cl = calloc(1, sizeof(*cl))) == NULL)
			return (0);	/* no memory: no state to refuse by */
		memcpy(cl->cl_addr, key, sizeof(key));
		cl->cl_family = peer->ss_family;
		bucket_fill(&cl->cl_bucket, r, now);
		LIST_INSERT_HEAD(b, cl, cl_entry);
	}
	return (bucket_take(&cl->cl_bucket, r, now));
}

/* limits.c keeps a's bucket and count: it holds a reference meanwhile. */
static void
limits_user_keep(struct account *a, const struct policy_rate *r, int64_t now)
{
	if (a->a_limited)
		return;
	account_hold(a);
	a->a_limited = 1;
	LIST_INSERT_HEAD(&limits_accounts, a, a_limit_entry);
	a->a_sessions = 0;
	bucket_fill(&a->a_bucket, r, now);
}

/* Lets a go when it holds no session and a full bucket. */
static void
limits_user_tidy(struct account *a, int64_t now)
{
	if (a->a_limited && a->a_sessions == 0 && (!a->a_rated ||
	    bucket_full(&a->a_bucket, now))) {
		a->a_limited = 0;
		LIST_REMOVE(a, a_limit_entry);
		account_put(a);
	}
}

const char *const limit_text[LIMIT_MAX] = {
	[LIMIT_OK] = "within the limits",
	[LIMIT_RATE] = "limit: rate",
	[LIMIT_SESSIONS] = "limit: sessions",
	[LIMIT_NO_MEMORY] = "out of memory",
};

/*
 * Admits a request under the limits in force, or says which it is beyond
 * (the session is then not counted).
 */
enum limit_verdict
limits_admit(struct session *s)
{
	struct policy		*p = s->s_worker->w_policy;
	struct policy_req	 req;
	struct policy_rate	 client, user;
	struct account		*a;
	int64_t			 max, now;
	enum limit_verdict	 ret = LIMIT_OK;
	int			 rated;

	if (!policy_has_limits(p))
		return (LIMIT_OK);
	now = gw_mono_ms();
	if (policy_client_rate(p, &client)) {
		pthread_mutex_lock(&limits_lock);
		rated = limits_client_take(&s->s_peer, &client, now);
		pthread_mutex_unlock(&limits_lock);
		if (rated == -1)
			return (LIMIT_RATE);
	}
	if (!s->s_authed || s->s_user == NULL)
		return (LIMIT_OK);
	memset(&user, 0, sizeof(user));
	session_policy_req(s, NULL, &req);
	max = policy_max_sessions(p, &req, NULL, 0);
	rated = policy_rate(p, &req, &user, NULL, 0);
	if (max < 0 && !rated)
		return (LIMIT_OK);
	if ((a = account_of(s)) == NULL)
		return (LIMIT_NO_MEMORY);

	pthread_mutex_lock(&limits_lock);
	if (now - limits_swept_ms >= LIMITS_SWEEP_MS)
		limits_sweep(now);
	limits_user_keep(a, &user, now);
	a->a_rated = rated;
	if (max >= 0 && a->a_sessions >= max)
		ret = LIMIT_SESSIONS;
	else if (rated && bucket_take(&a->a_bucket, &user, now) == -1)
		ret = LIMIT_RATE;
	else {
		a->a_sessions++;
		s->s_hold.ah_counted = 1;
	}
	limits_user_tidy(a, now);
	pthread_mutex_unlock(&limits_lock);
	return (ret);
}

/* Gives the session's place back; from session_close(). */
void
limits_release(struct session *s)
{
	int64_t	 now;

	if (!s->s_hold.ah_counted)
		return;
	s->s_hold.ah_counted = 0;
	now = gw_mono_ms();
	pthread_mutex_lock(&limits_lock);
	s->s_hold.ah_account->a_sessions--;
	limits_user_tidy(s->s_hold.ah_account, now);
	pthread_mutex_unlock(&limits_lock);
}
