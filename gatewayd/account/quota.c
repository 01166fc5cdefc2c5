/*
 * quota.c: byte quotas per user and calendar period, counted across
 * workers and across restarts.
 *
 * Counting. A user under a quota has, in its account (account.c), a
 * counter for each kind of period (hour, day, week, month) and where that
 * period started, so a quota changed from 5G/day to 20G/week by a live reload
 * finds the week's bytes already counted. Users without a quota are not
 * counted at all: no lock, no account taken for it.
 *
 * Sessions do not take the lock per read: a session takes a grant of up
 * to QUOTA_GRANT bytes from its user's remaining quota and spends it
 * locally; what is left of a grant goes back when the session ends. A
 * grant is counted as used when it is taken, so the sessions of a user
 * can never relay more than the quota together. When the quota is used
 * up, the read that crossed it is cut at the exact byte, that session is
 * closed with "limit: quota", the user is marked exhausted (each worker's
 * sweep closes the user's other sessions within 250 ms) and new sessions
 * are refused with the same reason until the period ends.
 *
 * Persistence. What each user relayed since the last write is handed to
 * auditd by the audit shipper (audit.c, at least every second, and at
 * shutdown), which adds it to audit.db's usage table; the rows of
 * current periods come back from auditd when a proxy starts. Without an
 * audit database quotas still hold, but only until a restart (logged
 * once).
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "policy.h"

#include "auditd/audit_proto.h"
#include "base/clock.h"
#include "proxy/worker.h"
#include "session/session.h"

#include "account.h"
#include "account_int.h"

#define QUOTA_NPERIODS		ACCOUNT_NPERIODS

LIST_HEAD(account_list, account);

pthread_mutex_t		 quota_lock = PTHREAD_MUTEX_INITIALIZER;
static struct account_list quota_accounts;	/* those with counts */
static int		 quota_persisted;	/* an audit database */
static _Atomic int	 quota_warned;


/* Counts are kept in a: on the list, with a reference of its own. */
void
quota_track(struct account *a)
{
	if (a->a_counted)
		return;
	account_hold(a);
	a->a_counted = 1;
	LIST_INSERT_HEAD(&quota_accounts, a, a_quota_entry);
}

/*
 * Bytes of a period that is over and not yet written: one period's worth
 * is kept per kind (the writer runs every second; losing an older one
 * means it failed for a whole period, and it says so).
 */
static void
quota_carry(struct account *a, int k, time_t start, int64_t bytes)
{
	struct quota_count	*qc = &a->a_count[k];

	if (qc->qc_carry != 0 && qc->qc_carry_start != start) {
		log_warnx("quota: %lld bytes of user %s's %s from %lld were "
		    "never written", (long long)qc->qc_carry, a->a_name,
		    policy_period_name((enum policy_period)k),
		    (long long)qc->qc_carry_start);
		qc->qc_carry = 0;
	}
	qc->qc_carry_start = start;
	qc->qc_carry += bytes;
}

/* Moves every counter to the period holding now; 1 if one rolled over. */
int
quota_roll(struct account *a, time_t now)
{
	struct quota_count	*qc;
	int			 k, rolled = 0;

	for (k = POLICY_PERIOD_HOUR; k < QUOTA_NPERIODS; k++) {
		qc = &a->a_count[k];
		if (now >= qc->qc_start && now < qc->qc_end)
			continue;
		/* The old period's unsaved bytes are written under its key. */
		if (qc->qc_unsaved != 0)
			quota_carry(a, k, qc->qc_start, qc->qc_unsaved);
		qc->qc_unsaved = 0;
		if (policy_period_bounds((enum policy_period)k, now,
		    &qc->qc_start, &qc->qc_end) == -1)
			qc->qc_start = qc->qc_end = 0;
		qc->qc_used = 0;
		qc->qc_leased = 0;	/* a new period: leased anew */
		qc->qc_lease_known = 0;
		qc->qc_lease_dry = 0;
		rolled = 1;
	}
	return (rolled);
}

/* The user's quota under the policy in force: 0 for none. */
static int
quota_of(struct session *s, struct policy_quota *q)
{
	struct policy_req	 req;

	if (s->s_user == NULL || !s->s_authed)
		return (0);
	session_policy_req(s, NULL, &req);
	return (policy_quota(s->s_worker->w_policy, &req, q, NULL, 0));
}

/*
 * The accounting itself, on a user's account at a given time, so that a test
 * can drive it with a fixed clock (tests/unit/test_quota.c); the session
 * functions below call it with the wall clock.
 *
 * Admits one more session of a's user under q at now: 0, or -1 when the
 * quota of the current period is used up.
 */
int
quota_account_admit(struct account *a, const struct policy_quota *q,
    time_t now)
{
	int	 ret = -1, final;

	pthread_mutex_lock(&quota_lock);
	quota_track(a);
	quota_roll(a, now);
	if (a->a_count[q->pq_period].qc_used < quota_limit(a, q, &final)) {
		/* Room again (a new period, a raised quota, grants given
		 * back): the user's sessions may run. */
		atomic_store(&a->a_exhausted, 0);
		a->a_quota_sessions++;
		ret = 0;
	}
	pthread_mutex_unlock(&quota_lock);
	return (ret);
}

/*
 * Takes up to want bytes (at least QUOTA_GRANT if there is room) from the
 * user's remaining quota at now, counted as used in every period kind: the
 * bytes granted. Fewer than want: the quota is used up, and the user's
 * sessions are marked to close.
 */
uint64_t
quota_account_grant(struct account *a, const struct policy_quota *q,
    uint64_t want, time_t now)
{
	uint64_t	 left, grant;
	int		 k, final;

	pthread_mutex_lock(&quota_lock);
	if (quota_roll(a, now))
		atomic_store(&a->a_exhausted, 0);
	left = quota_limit(a, q, &final);
	left = left > a->a_count[q->pq_period].qc_used ?
	    left - a->a_count[q->pq_period].qc_used : 0;
	grant = want > QUOTA_GRANT ? want : QUOTA_GRANT;
	if (grant > left)
		grant = left;
	for (k = POLICY_PERIOD_HOUR; k < QUOTA_NPERIODS; k++) {
		a->a_count[k].qc_used += grant;
		a->a_count[k].qc_unsaved += quota_persisted ?
		    (int64_t)grant : 0;
	}
	/*
	 * Used up: every session of the user closes. Short of a lease on its
	 * way (a fleet's), only the session that asked is cut.
	 */
	if (grant < want && final)
		atomic_store(&a->a_exhausted, 1);
	quota_lease_check(a, q);
	pthread_mutex_unlock(&quota_lock);
	return (grant);
}

/*
 * A session of the user ended with back bytes of its grant unspent, the
 * grant taken at granted_at: they go back to the periods that counted
 * them, also when one has ended since (then to what is written for it).
 */
void
quota_account_release(struct account *a, uint64_t back,
    time_t granted_at)
{
	struct quota_count	*qc;
	time_t			 start, end;
	int			 k;

	pthread_mutex_lock(&quota_lock);
	for (k = POLICY_PERIOD_HOUR; back > 0 && k < QUOTA_NPERIODS; k++) {
		qc = &a->a_count[k];
		if (granted_at >= qc->qc_start) {
			qc->qc_used -= back <= qc->qc_used ? back : qc->qc_used;
			qc->qc_unsaved -= quota_persisted ? (int64_t)back : 0;
		} else if (quota_persisted && policy_period_bounds(
		    (enum policy_period)k, granted_at, &start, &end) == 0)
			quota_carry(a, k, start, -(int64_t)back);
	}
	a->a_quota_sessions--;
	/* The entry stays: it holds the period's count. */
	pthread_mutex_unlock(&quota_lock);
}

/* What the user used in the current period of kind per (for tests). */
uint64_t
quota_account_used(struct account *a, int per)
{
	uint64_t	 used;

	pthread_mutex_lock(&quota_lock);
	used = a->a_count[per].qc_used;
	pthread_mutex_unlock(&quota_lock);
	return (used);
}

/*
 * Admits a request under its user's quota: -1 when the quota of the
 * current period is used up, -2 when out of memory. An admitted session
 * is counted in.
 */
int
quota_admit(struct session *s)
{
	struct policy_quota	 q;

	if (!policy_has_limits(s->s_worker->w_policy) || !quota_of(s, &q))
		return (0);
	if (!quota_persisted && atomic_exchange(&quota_warned, 1) == 0)
		log_warnx("quotas are counted in memory only: without an "
		    "audit_db their usage starts again at a restart");
	if (account_of(s) == NULL)
		return (-2);
	if (quota_account_admit(s->s_hold.ah_account, &q, time(NULL)) == -1)
		return (-1);
	s->s_hold.ah_quota = 1;
	return (0);
}

/*
 * Bytes the client sent before the relay (early data, or a forwarded HTTP
 * request's head and first body bytes) are relayed too: all of them are
 * taken, or none and -1. Without this they went out
 * unpaid, and relay_settle() gave back what was still queued at a close.
 */
int
quota_take_all(struct session *s, size_t n)
{
	size_t	 taken;

	if ((taken = quota_take(s, n)) == n)
		return (0);
	quota_unspend(s, taken);
	return (-1);
}

/*
 * The session read n bytes: how many of them it may relay. Fewer than n
 * means the quota is used up with those bytes.
 */
size_t
quota_take(struct session *s, size_t n)
{
	struct policy_quota	 q;

	if (!s->s_hold.ah_quota || s->s_hold.ah_grant >= n) {
		if (s->s_hold.ah_quota)
			s->s_hold.ah_grant -= n;
		return (n);
	}
	if (!quota_of(s, &q)) {
		/* A reload took the quota away: the session runs free. */
		quota_release(s);
		return (n);
	}
	s->s_hold.ah_granted_at = time(NULL);
	s->s_hold.ah_grant += quota_account_grant(s->s_hold.ah_account, &q,
	    n - s->s_hold.ah_grant, s->s_hold.ah_granted_at);
	if (s->s_hold.ah_grant >= n) {
		s->s_hold.ah_grant -= n;
		return (n);
	}
	n = (size_t)s->s_hold.ah_grant;
	s->s_hold.ah_grant = 0;
	return (n);
}

/*
 * Gives back n bytes quota_take() allowed but that were not relayed (a
 * datagram relays whole or not at all): they stay the session's to spend,
 * and go back to the user when it ends.
 */
void
quota_unspend(struct session *s, size_t n)
{
	if (s->s_hold.ah_quota)
		s->s_hold.ah_grant += n;
}

/* For the sweep: has another session used up this session's quota? */
int
quota_exhausted(const struct session *s)
{
	return (s->s_hold.ah_quota &&
	    atomic_load(&s->s_hold.ah_account->a_exhausted));
}

/* The session ends: the unspent grant goes back to its user. */
void
quota_release(struct session *s)
{
	if (!s->s_hold.ah_quota)
		return;
	s->s_hold.ah_quota = 0;
	quota_account_release(s->s_hold.ah_account, s->s_hold.ah_grant,
	    s->s_hold.ah_granted_at);
	s->s_hold.ah_grant = 0;
}

/* Usage is kept in audit.db (through auditd): counts survive restarts. */
void
quota_persisted_on(void)
{
	quota_persisted = 1;
}

int
quota_is_persisted(void)
{
	return (quota_persisted);
}

/*
 * At start, from auditd: one user's count of a period, kept if that
 * period is the one now current (other rows are history for reports).
 */
void
quota_load_row(const struct am_usage *u, time_t now)
{
	struct account		*a;
	struct quota_count	*qc;
	enum policy_period	 per = (enum policy_period)u->au_period;
	time_t			 start, end;

	if (per <= POLICY_PERIOD_NONE || per > POLICY_PERIOD_MONTH ||
	    u->au_bytes < 0 || policy_period_bounds(per, now, &start, &end) ==
	    -1 || u->au_start != (int64_t)start)
		return;
	if ((a = account_get(u->au_user)) != NULL) {
		pthread_mutex_lock(&quota_lock);
		quota_track(a);
		quota_roll(a, now);	/* a lease of the last period is not this one's */
		qc = &a->a_count[per];
		qc->qc_start = start;
		qc->qc_end = end;
		qc->qc_used += (uint64_t)u->au_bytes;
		pthread_mutex_unlock(&quota_lock);
		account_put(a);
	} else
		log_warnx("quota: out of memory loading %s's usage",
		    u->au_user);
}

/* Whether any user has bytes not yet taken for auditd (at shutdown). */
int
quota_unsaved(void)
{
	struct account		*a;
	int			 k, any = 0;

	pthread_mutex_lock(&quota_lock);
	LIST_FOREACH(a, &quota_accounts, a_quota_entry)
		for (k = POLICY_PERIOD_HOUR; k < QUOTA_NPERIODS; k++)
			any |= a->a_count[k].qc_unsaved != 0 ||
			    a->a_count[k].qc_carry != 0;
	pthread_mutex_unlock(&quota_lock);
	return (any);
}

static int
quota_delta_add(struct am_usage **d, size_t *n, size_t *cap,
    const char *user, int k, time_t start, int64_t bytes)
{
	struct am_usage	*nd;

	if (strlen(user) >= sizeof((*d)->au_user))
		return (-1);		/* RFC 1929 names are shorter */
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if ((nd = reallocarray(*d, *cap, sizeof(**d))) == NULL)
			return (-1);
		*d = nd;
	}
	memset(&(*d)[*n], 0, sizeof(**d));
	memcpy((*d)[*n].au_user, user, strlen(user));
	(*d)[*n].au_period = (uint8_t)k;
	(*d)[*n].au_start = (int64_t)start;
	(*d)[*n].au_bytes = bytes;
	(*n)++;
	return (0);
}

/*
 * From the audit shipper: takes every user's bytes not yet handed to
 * auditd, under the lock, and forgets users with nothing left to count:
 * no session, nothing unwritten, nothing used this month (every shorter
 * period lies inside the month). Returns how many deltas are in *d.
 */
size_t
quota_collect_usage(struct am_usage **d, time_t now)
{
	struct account		*a, *next;
	struct quota_count	*qc;
	size_t			 n = 0, cap = 0;
	int			 k;

	*d = NULL;
	pthread_mutex_lock(&quota_lock);
	for (a = LIST_FIRST(&quota_accounts); a != NULL; a = next) {
		next = LIST_NEXT(a, a_quota_entry);
		quota_roll(a, now);
		for (k = POLICY_PERIOD_HOUR; k < QUOTA_NPERIODS; k++) {
			qc = &a->a_count[k];
			if (qc->qc_carry != 0 && quota_delta_add(d, &n, &cap,
			    a->a_name, k, qc->qc_carry_start, qc->qc_carry) ==
			    0)
				qc->qc_carry = 0;
			if (qc->qc_unsaved != 0 && quota_delta_add(d, &n, &cap,
			    a->a_name, k, qc->qc_start, qc->qc_unsaved) == 0)
				qc->qc_unsaved = 0;
		}
		qc = &a->a_count[POLICY_PERIOD_MONTH];
		if (a->a_quota_sessions == 0 && qc->qc_used == 0 &&
		    qc->qc_unsaved == 0 && qc->qc_carry == 0 &&
		    !quota_lease_holds(a)) {
			/* Nothing left to count: quota.c lets a go. */
			LIST_REMOVE(a, a_quota_entry);
			memset(a->a_count, 0, sizeof(a->a_count));
			a->a_counted = 0;
			account_put(a);
		}
	}
	pthread_mutex_unlock(&quota_lock);
	return (n);
}
