/*
 * account.h: what a user may still use: live sessions and request rates
 * (limits.c), byte quotas per period (quota.c).
 */
#ifndef ACCOUNT_H
#define ACCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct am_usage;
struct policy_quota;
struct quota_user;
struct session;

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
int	 quota_exhausted(const struct session *);
void	 quota_release(struct session *);
void	 quota_persisted_on(void);
void	 quota_load_row(const struct am_usage *, time_t);
size_t	 quota_collect_usage(struct am_usage **, time_t);
int	 quota_unsaved(void);
int	 quota_account_admit(const char *, const struct policy_quota *, time_t,
	    struct quota_user **);
uint64_t quota_account_grant(struct quota_user *, const struct policy_quota *,
	    uint64_t, time_t);
void	 quota_account_release(struct quota_user *, uint64_t, time_t);
uint64_t quota_account_used(struct quota_user *, int);

#endif /* ACCOUNT_H */
