/*
 * account.h: what a user may still use, kept in one account per user
 * (account.c): live sessions and request rates (limits.c), byte quotas
 * per period (quota.c).
 */
#ifndef ACCOUNT_H
#define ACCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct account;
struct am_usage;
struct policy_quota;
struct session;

/*
 * What one session holds of its user's account, embedded in the session
 * (no allocation per connection) and touched by account/ alone: the
 * account (account_of(), given back by account_detach()), its place in
 * the user's session count (limits_admit(), limits_release()) and its
 * quota grant (quota_admit(), quota_take(), quota_release()).
 */
struct account_hold {
	struct account	*ah_account;	/* its user's, or NULL */
	uint64_t	 ah_grant;	/* quota bytes it may still relay */
	time_t		 ah_granted_at;	/* of the last grant */
	uint8_t		 ah_counted;	/* in its user's session count */
	uint8_t		 ah_quota;	/* under its user's quota */
};

/* account.c: a user's account, shared by limits.c and quota.c */
struct account *account_get(const char *);
void	 account_put(struct account *);
struct account *account_of(struct session *);
void	 account_detach(struct session *);
size_t	 account_count(void);

/* limits.c */
enum limit_verdict {
	LIMIT_OK,
	LIMIT_RATE,		/* the client's or the user's request rate */
	LIMIT_SESSIONS,		/* the user's max_sessions */
	LIMIT_NO_MEMORY,
	LIMIT_MAX
};
extern const char *const limit_text[LIMIT_MAX];
enum limit_verdict limits_admit(struct session *);
void	 limits_release(struct session *);

/* quota.c */
int	 quota_admit(struct session *);
size_t	 quota_take(struct session *, size_t);
void	 quota_unspend(struct session *, size_t);
int	 quota_take_all(struct session *, size_t);
int	 quota_exhausted(const struct session *);
void	 quota_release(struct session *);
void	 quota_persisted_on(void);
void	 quota_load_row(const struct am_usage *, time_t);
size_t	 quota_collect_usage(struct am_usage **, time_t);
int	 quota_unsaved(void);
int	 quota_account_admit(struct account *, const struct policy_quota *,
	    time_t);
uint64_t quota_account_grant(struct account *, const struct policy_quota *,
	    uint64_t, time_t);
void	 quota_account_release(struct account *, uint64_t, time_t);
uint64_t quota_account_used(struct account *, int);

/*
 * A fleet's quotas (policy_db postgresql://...): what quota.c tells the
 * leaser (quota_lease.c), and the leaser's answers.
 */
struct lease_req {
	struct account	*lr_account;	/* held */
	const char	*lr_user;	/* the account's name */
	int		 lr_period;
	int64_t		 lr_start;
	int64_t		 lr_quota;
	int64_t		 lr_want;	/* bytes asked for */
};
void	 quota_fleet_on(void);
int	 quota_lease_next(struct lease_req *);
void	 quota_lease_done(struct lease_req *, int64_t, int);
void	 quota_lease_loaded(const char *, int, int64_t, int64_t, time_t);
/* quota_lease.c */
struct conf;
int	 quota_lease_start(const struct conf *, char **);
void	 quota_lease_stop(void);
void	 quota_lease_kick(void);
int	 quota_lease_json(char *, size_t);

#endif /* ACCOUNT_H */
