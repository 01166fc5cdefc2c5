/*
 * account_int.h: a user's account as the files of account/ share it.
 * account.c keeps the table and the references (under its own lock, the
 * innermost: limits.c and quota.c may take it while they hold theirs);
 * limits.c and quota.c keep their fields, each under its own lock.
 * Nothing outside account/ includes this.
 */
#ifndef ACCOUNT_INT_H
#define ACCOUNT_INT_H

#include <sys/queue.h>

#include <pthread.h>

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "policy.h"

#define ACCOUNT_NPERIODS	(POLICY_PERIOD_MONTH + 1)

/* A token bucket: rate tokens a second, up to burst. */
struct bucket {
	double		 b_tokens;
	int64_t		 b_ms;		/* when b_tokens was right */
	struct policy_rate b_rate;	/* as last applied */
};

/* One kind of period's count: the period, and its bytes. */
struct quota_count {
	time_t		 qc_start;	/* the period counted */
	time_t		 qc_end;
	uint64_t	 qc_used;	/* bytes, grants included */
	int64_t		 qc_unsaved;	/* not yet in the database */
	time_t		 qc_carry_start; /* the last period's unsaved bytes */
	int64_t		 qc_carry;
	/* A fleet's (quota_fleet.c): bytes this node holds of the quota */
	uint64_t	 qc_leased;
	int		 qc_lease_known;	/* the store answered, this period */
	uint64_t	 qc_lease_dry;	/* all leased under this quota: ask not */
};

struct account {
	LIST_ENTRY(account)	 a_entry;	/* account.c's table */
	int64_t			 a_refs;	/* account.c's lock */

	/* limits.c's, under its lock; a_limited: on its list, with a ref */
	LIST_ENTRY(account)	 a_limit_entry;
	int			 a_limited;
	int64_t			 a_sessions;
	int			 a_rated;
	struct bucket		 a_bucket;

	/* quota.c's, under its lock; a_counted: on its list, with a ref */
	LIST_ENTRY(account)	 a_quota_entry;
	int			 a_counted;
	int64_t			 a_quota_sessions;
	struct quota_count	 a_count[ACCOUNT_NPERIODS];
	_Atomic int		 a_exhausted;	/* sessions are to close */
	/* quota.c's too: waiting for the leaser, with a ref; or asked */
	TAILQ_ENTRY(account)	 a_lease_entry;
	int			 a_lease_wanted;
	int			 a_lease_asked;	/* a request in flight */
	struct policy_quota	 a_lease_q;	/* the quota to lease under */

	char			 a_name[];
};

void	 account_hold(struct account *);

/* quota.c's lock and bookkeeping, shared with quota_fleet.c */
#define QUOTA_GRANT		(256 * 1024)	/* bytes a session spends */
extern pthread_mutex_t	 quota_lock;
void	 quota_track(struct account *);
int	 quota_roll(struct account *, time_t);
int	 quota_is_persisted(void);
/* quota_fleet.c, under quota_lock */
uint64_t quota_limit(struct account *, const struct policy_quota *, int *);
void	 quota_lease_check(struct account *, const struct policy_quota *);
int	 quota_lease_holds(const struct account *);

#endif /* ACCOUNT_INT_H */
