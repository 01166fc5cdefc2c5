/*
 * quota_fleet.c: a fleet's byte quotas (policy_db postgresql://...), the
 * accounting side. A node relays no more of a user's quota than it holds
 * of it: bytes leased from the fleet's store in grants (quota_lease.c,
 * the thread that asks), for the current period of the quota's kind.
 * Before the store's first answer in a period a node may use one grant,
 * so a user's first session does not wait for the store; every later
 * byte is leased first, grants ahead. So the fleet never passes a
 * quota by more than one grant per node, and a node cut off from the
 * store stops at what it holds: each session that runs into the end of
 * it is cut with "limit: quota" and new ones are refused until a lease
 * comes (a quota used up, or a store with no more, closes all of them).
 *
 * Everything here runs under quota.c's lock.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "policy.h"

#include "account.h"
#include "account_int.h"

#define QUOTA_LEASE_MAX		(64 * 1024 * 1024)	/* a grant, at most */

TAILQ_HEAD(lease_queue, account);

static int		 quota_fleet;		/* leased from the store */
/* For the leaser, held; first come, first asked (a user retrying in a
 * loop waits its turn like the others). */
static struct lease_queue quota_wanted = TAILQ_HEAD_INITIALIZER(quota_wanted);

/*
 * A fleet's grant: what a node may use of a quota before the store first
 * answers in a period (a sixteenth, 256 KiB to 64 MiB). A node asks for
 * more when it holds less than two grants ahead of what it used, and
 * asks for four ahead: a session then has a store's round trip to spend
 * two grants in before it runs into the end of what is held, which would
 * cut it as a used-up quota does.
 */
#define QUOTA_LEASE_LOW		2	/* grants ahead: ask for more */
#define QUOTA_LEASE_AHEAD	4	/* grants ahead: what is asked for */
static uint64_t
quota_lease_chunk(const struct policy_quota *q)
{
	uint64_t	 l = q->pq_bytes / 16;

	return (l < QUOTA_GRANT ? QUOTA_GRANT : l > QUOTA_LEASE_MAX ?
	    QUOTA_LEASE_MAX : l);
}

/*
 * How far a's user may use q on this node now: the quota; in a fleet, no
 * further than this node holds of it (one grant more before the store's
 * first answer this period), so the fleet never passes the quota by more
 * than a grant per node, and a node cut off from the store stops at what
 * it holds. *final: reaching it is the end of the quota for this period
 * (the quota itself, or the store has no more), not a lease on its way.
 */
uint64_t
quota_limit(struct account *a, const struct policy_quota *q, int *final)
{
	struct quota_count	*qc = &a->a_count[q->pq_period];
	uint64_t		 lim;

	*final = 1;
	if (!quota_fleet)
		return (q->pq_bytes);
	lim = qc->qc_leased + (qc->qc_lease_known ? 0 : quota_lease_chunk(q));
	if (lim >= q->pq_bytes)
		return (q->pq_bytes);
	*final = qc->qc_lease_dry == q->pq_bytes;
	return (lim);
}

/*
 * In a fleet, after bytes were granted: asks the leaser for more when
 * what is held runs low, unless the store said it has no more under this
 * quota (a raised quota asks again; a new period starts afresh).
 */
void
quota_lease_check(struct account *a, const struct policy_quota *q)
{
	struct quota_count	*qc = &a->a_count[q->pq_period];

	if (!quota_fleet || (qc->qc_lease_known && (qc->qc_leased >=
	    q->pq_bytes || qc->qc_lease_dry == q->pq_bytes ||
	    qc->qc_leased >= qc->qc_used + QUOTA_LEASE_LOW *
	    quota_lease_chunk(q))))
		return;
	a->a_lease_q = *q;
	if (a->a_lease_wanted)
		return;
	account_hold(a);
	a->a_lease_wanted = 1;
	TAILQ_INSERT_TAIL(&quota_wanted, a, a_lease_entry);
	quota_lease_kick();
}

/* Whether quota.c must keep a's counts: it holds a lease, or waits. */
int
quota_lease_holds(const struct account *a)
{
	int	 k;

	if (a->a_lease_wanted || a->a_lease_asked)
		return (1);
	for (k = 0; k < ACCOUNT_NPERIODS; k++)
		if (a->a_count[k].qc_leased != 0)
			return (1);
	return (0);
}

/* Before the workers start: quotas are leased from the fleet's store. */
void
quota_fleet_on(void)
{
	quota_fleet = 1;
}

/*
 * For the leaser: the next account that wants more of its quota, held,
 * and how much (enough to hold QUOTA_LEASE_AHEAD grants beyond what it
 * used). 0 when none waits.
 */
int
quota_lease_next(struct lease_req *r)
{
	struct account		*a;
	struct quota_count	*qc;
	uint64_t		 target;

	pthread_mutex_lock(&quota_lock);
	while ((a = TAILQ_FIRST(&quota_wanted)) != NULL) {
		TAILQ_REMOVE(&quota_wanted, a, a_lease_entry);
		a->a_lease_wanted = 0;
		qc = &a->a_count[a->a_lease_q.pq_period];
		target = qc->qc_used + QUOTA_LEASE_AHEAD *
		    quota_lease_chunk(&a->a_lease_q);
		if (target > a->a_lease_q.pq_bytes)
			target = a->a_lease_q.pq_bytes;
		if (qc->qc_start == 0 || (qc->qc_lease_known &&
		    target <= qc->qc_leased)) {
			account_put(a);		/* nothing to ask now */
			continue;
		}
		a->a_lease_asked = 1;
		r->lr_account = a;		/* the list's ref, now r's */
		r->lr_user = a->a_name;
		r->lr_period = a->a_lease_q.pq_period;
		r->lr_start = (int64_t)qc->qc_start;
		r->lr_quota = (int64_t)a->a_lease_q.pq_bytes;
		r->lr_want = (int64_t)(target > qc->qc_leased ?
		    target - qc->qc_leased : 0);
		pthread_mutex_unlock(&quota_lock);
		return (1);
	}
	pthread_mutex_unlock(&quota_lock);
	return (0);
}

/*
 * The store's answer to r: granted bytes more (ok; fewer than asked: the
 * store has no more under this quota this period), or none and the
 * request waits its turn again (!ok).
 */
void
quota_lease_done(struct lease_req *r, int64_t granted, int ok)
{
	struct account		*a = r->lr_account;
	struct quota_count	*qc = &a->a_count[r->lr_period];

	pthread_mutex_lock(&quota_lock);
	a->a_lease_asked = 0;
	if (ok && (int64_t)qc->qc_start == r->lr_start) {
		qc->qc_leased += (uint64_t)granted;
		qc->qc_lease_known = 1;
		if (granted < r->lr_want)
			qc->qc_lease_dry = (uint64_t)r->lr_quota;
	}
	if (!ok && !a->a_lease_wanted) {
		a->a_lease_wanted = 1;		/* r's ref, the queue's again */
		TAILQ_INSERT_TAIL(&quota_wanted, a, a_lease_entry);
		a = NULL;
	}
	pthread_mutex_unlock(&quota_lock);
	if (a != NULL)
		account_put(a);
}

/*
 * At each connection, from the store: what this node holds of user's
 * quota for a period (its own row), so that a restart leases nothing
 * twice. Rows of periods no longer current are history. Without an
 * audit_db the node's usage did not outlive its restart: all it held
 * counts as used (never relayed twice; what was not used is lost).
 */
void
quota_lease_loaded(const char *user, int period, int64_t start,
    int64_t granted, time_t now)
{
	struct account		*a;
	struct quota_count	*qc;

	if (period <= POLICY_PERIOD_NONE || period > POLICY_PERIOD_MONTH ||
	    granted < 0 || (a = account_get(user)) == NULL)
		return;
	pthread_mutex_lock(&quota_lock);
	quota_track(a);
	quota_roll(a, now);
	qc = &a->a_count[period];
	if ((int64_t)qc->qc_start == start) {
		/* A store that lost grants (a restore) does not lower them. */
		if ((uint64_t)granted > qc->qc_leased)
			qc->qc_leased = (uint64_t)granted;
		qc->qc_lease_known = 1;
		/* Usage not kept over a restart: what was held counts used. */
		if (!quota_is_persisted() && qc->qc_used < qc->qc_leased)
			qc->qc_used = qc->qc_leased;
	}
	pthread_mutex_unlock(&quota_lock);
	account_put(a);
}
