/*
 * account.c: one account per user that the gateway counts something for
 * (live sessions and their rate in limits.c, byte quotas in quota.c), in
 * one table shared by every worker. A session looks its user's account up
 * once, when a limit or quota of the user first needs it at admission, and
 * holds it until it closes (struct account_hold in account.h); limits.c
 * and quota.c hold it too while they keep state in it (a bucket still
 * refilling, a period's count), so an account lives exactly as long as
 * somebody needs it.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "session/session.h"

#include "account.h"
#include "account_int.h"

#define ACCOUNT_BUCKETS		4096

LIST_HEAD(account_list, account);

static pthread_mutex_t		 account_lock = PTHREAD_MUTEX_INITIALIZER;
static struct account_list	 accounts[ACCOUNT_BUCKETS];
static size_t			 accounts_live;

/* A new reference to user's account, made if needed; NULL: no memory. */
struct account *
account_get(const char *user)
{
	struct account_list	*b;
	struct account		*a;
	size_t			 len = strlen(user);

	b = &accounts[gw_hash(user, len) % ACCOUNT_BUCKETS];
	pthread_mutex_lock(&account_lock);
	LIST_FOREACH(a, b, a_entry)
		if (strcmp(a->a_name, user) == 0)
			break;
	if (a == NULL && (a = calloc(1, sizeof(*a) + len + 1)) != NULL) {
		memcpy(a->a_name, user, len + 1);
		LIST_INSERT_HEAD(b, a, a_entry);
		accounts_live++;
	}
	if (a != NULL)
		a->a_refs++;
	pthread_mutex_unlock(&account_lock);
	return (a);
}

/* Another reference to an account the caller holds one of. */
void
account_hold(struct account *a)
{
	pthread_mutex_lock(&account_lock);
	a->a_refs++;
	pthread_mutex_unlock(&account_lock);
}

/* Drops a reference; the last one frees the account. */
void
account_put(struct account *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&account_lock);
	if (--a->a_refs == 0) {
		LIST_REMOVE(a, a_entry);
		accounts_live--;
		free(a);
	}
	pthread_mutex_unlock(&account_lock);
}

/*
 * The account of a logged-in session's user, looked up the first time a
 * limit or a quota of the user needs it and held until the close: users
 * under no such limit take no lock here. NULL when out of memory.
 */
struct account *
account_of(struct session *s)
{
	if (s->s_hold.ah_account == NULL)
		s->s_hold.ah_account = account_get(s->s_user);
	return (s->s_hold.ah_account);
}

void
account_detach(struct session *s)
{
	account_put(s->s_hold.ah_account);
	s->s_hold.ah_account = NULL;
}

/* How many accounts are held now (for tests and sizing). */
size_t
account_count(void)
{
	size_t	 n;

	pthread_mutex_lock(&account_lock);
	n = accounts_live;
	pthread_mutex_unlock(&account_lock);
	return (n);
}
