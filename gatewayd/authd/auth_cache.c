/*
 * auth_cache.c: the proxy's copy of the logins authd answers from its own
 * cache (auth_cache_ttl), so that a client logging in again is answered on
 * the worker's loop instead of by a round trip to authd: two wake-ups in
 * another process and some 30 us of CPU per login (bench/ab.sh -A "auth
 * pam" -A "auth_cache_ttl 300"), most of what a cached login cost.
 *
 * It never says more than authd would:
 *  - An entry is made only from authd's AUTH_OK to a user name and
 *    password, and lives as long as authd said its own entry would
 *    (ap_cache_s, a second less for the clocks' rounding): a changed
 *    password or a locked account counts within auth_cache_ttl, as before.
 *  - It holds a salted SHA-256 of user and password, never the password.
 *    The proxy reads every password in clear from RFC 1929 anyway; the
 *    salt is random per process, and the digest is compared in constant
 *    time.
 *  - Any refusal from authd (failed, refused, locked out, an error, gone)
 *    empties it: a client guessing passwords gets no answer from it,
 *    authd's lockout counts every guess, and a lockout is never bypassed.
 *    Only "busy" (authd's queue full) leaves it: that says nothing of
 *    anyone's password, and emptying it under load would add load.
 *  - It is asked only while authd's channel is up (auth_submit): with
 *    authd gone every login is refused, cached or not. A restarted authd
 *    starts with an empty cache; so does this one.
 *
 * One cache for the proxy's workers, under a mutex held for a lookup's
 * few hundred nanoseconds: a user's connections land on any worker, and
 * one refusal must empty it for all of them.
 */
#include <sys/random.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/clock.h"

#include "auth.h"

#define AUTH_CACHE_SLOTS	1024	/* a power of two; authd keeps 1,024 */
#define AUTH_CACHE_PROBE	8	/* slots tried from a name's hash */

struct auth_cached {
	char		 ac_user[256];	/* the name the client sent */
	unsigned char	 ac_digest[32];
	int64_t		 ac_expires;	/* gw_clock_ms(); 0: free */
	struct auth_reply_head {	/* what fe_authenticated reads */
		char	 user[256];
		uint8_t	 ngroups;
		char	 groups[AUTH_MAX_GROUPS][AUTH_GROUP_NAME];
	}		 ac_reply;
};

static struct {
	pthread_mutex_t		 lock;
	struct auth_cached	*slots;		/* allocated at the first put */
	unsigned char		 salt[32];
	int			 salted;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Under the lock: every entry gone, its digest wiped. */
static void
auth_cache_empty(void)
{
	if (cache.slots != NULL)
		explicit_bzero(cache.slots, AUTH_CACHE_SLOTS *
		    sizeof(*cache.slots));
}

/* FNV-1a of the user name: where its entry may be. */
static size_t
auth_cache_home(const char *user)
{
	uint32_t	 h = 2166136261u;

	for (; *user != '\0'; user++)
		h = (h ^ (unsigned char)*user) * 16777619u;
	return (h & (AUTH_CACHE_SLOTS - 1));
}

/* Under the lock. 0 when no digest can be made (the cache is not used). */
static int
auth_cache_digest(const char *user, const char *pass, unsigned char out[32])
{
	unsigned char	 buf[32 + 256 + 256];
	size_t		 ul = strlen(user), pl = strlen(pass);
	unsigned int	 len = 32;
	int		 ok;

	if (!cache.salted) {
		if (getrandom(cache.salt, sizeof(cache.salt), 0) !=
		    (ssize_t)sizeof(cache.salt))
			return (0);
		cache.salted = 1;
	}
	if (ul >= 256 || pl >= 256)
		return (0);
	memcpy(buf, cache.salt, 32);
	memcpy(buf + 32, user, ul + 1);
	memcpy(buf + 32 + ul + 1, pass, pl);
	ok = EVP_Digest(buf, 32 + ul + 1 + pl, out, &len, EVP_sha256(),
	    NULL) == 1 && len == 32;
	explicit_bzero(buf, sizeof(buf));
	return (ok);
}

/*
 * A login on its way to authd: its digest, kept by the session (never
 * the password) for auth_cache_put. When the same pair has a live entry,
 * rep gets authd's earlier answer and 1 is returned: no need to ask.
 */
int
auth_cache_find(const char *user, const char *pass, unsigned char digest[32],
    struct auth_reply *rep)
{
	size_t	 home = auth_cache_home(user), i;
	int64_t	 now = gw_clock_ms();
	int	 hit = 0;

	pthread_mutex_lock(&cache.lock);
	if (!auth_cache_digest(user, pass, digest)) {
		pthread_mutex_unlock(&cache.lock);
		memset(digest, 0, 32);
		return (0);
	}
	for (i = 0; cache.slots != NULL && i < AUTH_CACHE_PROBE; i++) {
		struct auth_cached *c = &cache.slots[(home + i) &
		    (AUTH_CACHE_SLOTS - 1)];

		if (c->ac_expires <= now || strcmp(c->ac_user, user) != 0)
			continue;
		if (CRYPTO_memcmp(c->ac_digest, digest, 32) == 0) {
			memset(rep, 0, offsetof(struct auth_reply, ap_data));
			rep->ap_status = AUTH_OK;
			memcpy(rep->ap_user, c->ac_reply.user,
			    sizeof(rep->ap_user));
			rep->ap_ngroups = c->ac_reply.ngroups;
			memcpy(rep->ap_groups, c->ac_reply.groups,
			    sizeof(rep->ap_groups));
			snprintf(rep->ap_msg, sizeof(rep->ap_msg), "cached");
			hit = 1;
		}
		break;		/* one entry per user, as in authd */
	}
	pthread_mutex_unlock(&cache.lock);
	return (hit);
}

/* authd's answer to the login whose digest auth_cache_find made. */
void
auth_cache_answer(const char *user, const unsigned char digest[32],
    const struct auth_reply *rep)
{
	struct auth_cached	*slot = NULL;
	size_t			 home = auth_cache_home(user), i;
	int64_t			 now = gw_clock_ms();

	pthread_mutex_lock(&cache.lock);
	if (rep->ap_status != AUTH_OK && rep->ap_status != AUTH_BUSY) {
		/* A refusal of any kind: nothing is answered here for now. */
		auth_cache_empty();
		goto out;
	}
	/* Not one authd will answer again without PAM, or a Kerberos one. */
	if (rep->ap_cache_s <= 1 || rep->ap_outlen != 0 ||
	    rep->ap_ctxlen != 0 || rep->ap_valid_s != 0 ||
	    strlen(user) >= sizeof(slot->ac_user))
		goto out;
	if (cache.slots == NULL && (cache.slots = calloc(AUTH_CACHE_SLOTS,
	    sizeof(*cache.slots))) == NULL)
		goto out;	/* no memory: authd answers, as without it */
	for (i = 0; i < AUTH_CACHE_PROBE; i++) {
		struct auth_cached *c = &cache.slots[(home + i) &
		    (AUTH_CACHE_SLOTS - 1)];

		if (strcmp(c->ac_user, user) == 0) {
			slot = c;	/* the user's entry, replaced */
			break;
		}
		if (slot == NULL || c->ac_expires < slot->ac_expires)
			slot = c;	/* free, expired, or the oldest */
	}
	memset(slot, 0, sizeof(*slot));
	memcpy(slot->ac_user, user, strlen(user) + 1);
	memcpy(slot->ac_digest, digest, 32);
	memcpy(slot->ac_reply.user, rep->ap_user, sizeof(rep->ap_user));
	slot->ac_reply.user[sizeof(slot->ac_reply.user) - 1] = '\0';
	slot->ac_reply.ngroups = rep->ap_ngroups > AUTH_MAX_GROUPS ?
	    AUTH_MAX_GROUPS : rep->ap_ngroups;
	memcpy(slot->ac_reply.groups, rep->ap_groups,
	    sizeof(slot->ac_reply.groups));
	slot->ac_expires = now + ((int64_t)rep->ap_cache_s - 1) * 1000;
out:
	pthread_mutex_unlock(&cache.lock);
}

/* A new authd: its cache is empty, and so is this one. */
void
auth_cache_clear(void)
{
	pthread_mutex_lock(&cache.lock);
	auth_cache_empty();
	pthread_mutex_unlock(&cache.lock);
}
