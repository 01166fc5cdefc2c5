/*
 * limits.c: per-user limits on live sessions. The count of a user's
 * sessions is shared by all workers (a user's sessions land on any of
 * them), so it lives in one table under a mutex; the lock is taken only
 * when the policy in force sets a limit at all, so a gateway without
 * limits pays one branch per session.
 *
 * A session is counted from its request until it closes. Lowering a limit
 * by a live reload refuses new sessions beyond it; running ones go on.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gatewayd.h"
#include "policy.h"

#define LIMITS_BUCKETS	4096

struct user_count {
	LIST_ENTRY(user_count)	 uc_entry;
	int64_t			 uc_sessions;
	char			 uc_name[];
};
LIST_HEAD(user_count_list, user_count);

static pthread_mutex_t		 limits_lock = PTHREAD_MUTEX_INITIALIZER;
static struct user_count_list	 limits_table[LIMITS_BUCKETS];

static struct user_count_list *
limits_bucket(const char *name)
{
	uint32_t	 h = 2166136261u;	/* FNV-1a */

	for (; *name != '\0'; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return (&limits_table[h % LIMITS_BUCKETS]);
}

static struct user_count *
limits_find(struct user_count_list *b, const char *name)
{
	struct user_count	*uc;

	LIST_FOREACH(uc, b, uc_entry)
		if (strcmp(uc->uc_name, name) == 0)
			return (uc);
	return (NULL);
}

/*
 * Counts the session against its user's limit: -1 (not counted, why set)
 * when the user already holds as many sessions as allowed.
 */
int
limits_admit(struct session *s, const char **why)
{
	struct policy		*p = s->s_worker->w_policy;
	struct policy_req	 req;
	struct user_count_list	*b;
	struct user_count	*uc;
	int64_t			 max;
	size_t			 len;
	int			 ret = 0;

	if (!s->s_authed || s->s_user == NULL || !policy_has_limits(p))
		return (0);
	memset(&req, 0, sizeof(req));
	req.user = s->s_user;
	req.groups = (const char *const *)s->s_groups;
	req.ngroups = (size_t)s->s_ngroups;
	if ((max = policy_max_sessions(p, &req, NULL, 0)) < 0)
		return (0);

	pthread_mutex_lock(&limits_lock);
	b = limits_bucket(s->s_user);
	if ((uc = limits_find(b, s->s_user)) == NULL && max > 0) {
		len = strlen(s->s_user) + 1;
		if ((uc = calloc(1, sizeof(*uc) + len)) == NULL) {
			*why = "out of memory";
			ret = -1;
			goto out;
		}
		memcpy(uc->uc_name, s->s_user, len);
		LIST_INSERT_HEAD(b, uc, uc_entry);
	}
	if (uc == NULL || uc->uc_sessions >= max) {
		*why = "limit: sessions";
		ret = -1;
		goto out;
	}
	uc->uc_sessions++;
	s->s_limit_counted = 1;
out:
	pthread_mutex_unlock(&limits_lock);
	return (ret);
}

/* Gives the session's place back; from session_close(). */
void
limits_release(struct session *s)
{
	struct user_count	*uc;

	if (!s->s_limit_counted)
		return;
	s->s_limit_counted = 0;
	pthread_mutex_lock(&limits_lock);
	if ((uc = limits_find(limits_bucket(s->s_user), s->s_user)) != NULL &&
	    --uc->uc_sessions == 0) {
		LIST_REMOVE(uc, uc_entry);
		free(uc);
	}
	pthread_mutex_unlock(&limits_lock);
}
