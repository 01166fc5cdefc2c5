/*
 * auth_cache.c: the proxy's copy of the logins authd answers from its own
 * cache (auth_cache_ttl), so that a client logging in again is answered on
 * the worker's loop instead of by a round trip to authd: two wake-ups in
 * another process and some 30 us of CPU per login (bench/ab.sh -A "auth
 * pam" -A "auth_cache_ttl 300"), most of what a cached login cost.
 *
 * It never says more than authd would:
 *  - An entry is made only from authd's AUTH_OK to a user name and
 *    password from one client address, and answers only that user, that
 *    password and that address: authd's lock-outs are by user and client
 *    prefix, and an address never answered OK by authd while locked out
 *    can never find an entry.
 *  - It expires when authd's own entry does: authd sends its expiry on
 *    the monotonic clock both processes share (ap_cache_until_ms); one
 *    authd drops early to make room (past 1,024 users) lives on here
 *    until then, never past auth_cache_ttl. authd
 *    keeps one entry per user: an OK PAM has just given (ap_cache_fresh,
 *    a new password perhaps) deletes the user's entries from every
 *    address, as it replaced authd's.
 *  - A login that names a cached user and address with another password
 *    deletes that entry before it goes to authd: a guess is tested
 *    against the copy once, then authd sees every guess and counts it.
 *  - Any refusal from authd (failed, refused, locked out, an error, gone),
 *    even for a session that ended while authd thought, empties it all,
 *    and an OK asked before the emptying is not stored after it (the
 *    generation). "Busy" (authd's queue full) says nothing about anyone's
 *    password and leaves it; emptying it under load would add load.
 *  - It is asked only while authd's channel is up (auth_submit): with
 *    authd gone every login is refused, cached or not. A restarted authd
 *    starts with an empty cache; so does this one.
 *  - It holds a salted SHA-256 of user, address and password, never the
 *    password; the salt is random per process; digests are compared in
 *    constant time. A fast hash is a verifier an intruder in the proxy
 *    could test guesses against offline, for the logins of the last
 *    auth_cache_ttl; the same intruder reads every later password in
 *    clear from RFC 1929. auth_cache_ttl 0 keeps neither.
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

#include "addr.h"

#include "base/clock.h"

#include "auth.h"

#define AUTH_CACHE_SLOTS	1024	/* a power of two; authd keeps 1,024 */
#define AUTH_CACHE_PROBE	8	/* slots tried from a key's hash */

struct auth_cached {
	char			 ac_user[256];	/* the name the client sent */
	char			 ac_client[ADDR_STRLEN];
	unsigned char		 ac_digest[32];
	int64_t			 ac_expires;	/* gw_clock_ms(); 0: free */
	struct auth_answer	 ac_answer;
};

static struct {
	pthread_mutex_t		 lock;
	struct auth_cached	*slots;		/* allocated at the first put */
	uint64_t		 gen;		/* emptyings so far */
	unsigned char		 salt[32];
	int			 salted;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Under the lock: every entry gone, its digest wiped. */
static void
auth_cache_empty(void)
{
	cache.gen++;
	if (cache.slots != NULL)
		explicit_bzero(cache.slots, AUTH_CACHE_SLOTS *
		    sizeof(*cache.slots));
}

/* Where the entry of user at client may be. */
static size_t
auth_cache_home(const char *user, const char *client)
{
	uint32_t	 h = gw_hash(user, strlen(user)) * 31u +
			    gw_hash(client, strlen(client));

	return (h & (AUTH_CACHE_SLOTS - 1));
}

/* Under the lock: the live entry of user at client, or NULL. */
static struct auth_cached *
auth_cache_entry(const char *user, const char *client, int64_t now)
{
	size_t	 home = auth_cache_home(user, client), i;

	for (i = 0; cache.slots != NULL && i < AUTH_CACHE_PROBE; i++) {
		struct auth_cached *c = &cache.slots[(home + i) &
		    (AUTH_CACHE_SLOTS - 1)];

		if (c->ac_expires > now && strcmp(c->ac_user, user) == 0 &&
		    strcmp(c->ac_client, client) == 0)
			return (c);
	}
	return (NULL);
}

/* Under the lock. 0 when no digest can be made (the cache is not used). */
static int
auth_cache_digest(const char *user, const char *client, const char *pass,
    unsigned char out[32])
{
	unsigned char	 buf[32 + 256 + ADDR_STRLEN + 256];
	size_t		 ul = strlen(user), cl = strlen(client);
	size_t		 pl = strlen(pass), n = 0;
	unsigned int	 len = 32;
	int		 ok;

	if (!cache.salted) {
		if (getrandom(cache.salt, sizeof(cache.salt), 0) !=
		    (ssize_t)sizeof(cache.salt))
			return (0);
		cache.salted = 1;
	}
	if (ul >= 256 || cl >= ADDR_STRLEN || pl >= 256)
		return (0);
	memcpy(buf, cache.salt, 32);
	n = 32;
	memcpy(buf + n, user, ul + 1);
	n += ul + 1;
	memcpy(buf + n, client, cl + 1);
	n += cl + 1;
	memcpy(buf + n, pass, pl);
	n += pl;
	ok = EVP_Digest(buf, n, out, &len, EVP_sha256(), NULL) == 1 &&
	    len == 32;
	explicit_bzero(buf, sizeof(buf));
	return (ok);
}

/*
 * A login on its way to authd: 1 when the same user, address and
 * password have a live entry (ans gets authd's earlier answer), 0 when
 * authd must be asked (digest and gen are what auth_cache_answer wants
 * with its answer), -1 when no digest could be made (nothing to store).
 */
int
auth_cache_find(const char *user, const char *client, const char *pass,
    unsigned char digest[32], uint64_t *gen, struct auth_answer *ans)
{
	struct auth_cached	*c;
	int			 r;

	pthread_mutex_lock(&cache.lock);
	if (!auth_cache_digest(user, client, pass, digest)) {
		pthread_mutex_unlock(&cache.lock);
		explicit_bzero(digest, 32);
		return (-1);
	}
	*gen = cache.gen;
	r = 0;
	if ((c = auth_cache_entry(user, client, gw_clock_ms())) != NULL) {
		if (CRYPTO_memcmp(c->ac_digest, digest, 32) == 0) {
			*ans = c->ac_answer;
			r = 1;
		} else	/* another password: authd judges, and counts */
			explicit_bzero(c, sizeof(*c));
	}
	pthread_mutex_unlock(&cache.lock);
	return (r);
}

/* authd's AUTH_OK to the login auth_cache_find gave digest and gen to. */
void
auth_cache_answer(const char *user, const char *client,
    const unsigned char digest[32], uint64_t gen,
    const struct auth_reply *rep)
{
	struct auth_cached	*slot = NULL;
	size_t			 home = auth_cache_home(user, client), i;
	int64_t			 now = gw_clock_ms();

	/* Not one authd will answer again without PAM, or a Kerberos one. */
	if (rep->ap_status != AUTH_OK || rep->ap_cache_until_ms <= now ||
	    rep->ap_outlen != 0 || rep->ap_ctxlen != 0 ||
	    rep->ap_valid_s != 0 || strlen(user) >= sizeof(slot->ac_user) ||
	    strlen(client) >= sizeof(slot->ac_client))
		return;
	pthread_mutex_lock(&cache.lock);
	/* A refusal came since it was asked: it may have been the cause. */
	if (gen != cache.gen)
		goto out;
	for (i = 0; rep->ap_cache_fresh && cache.slots != NULL &&
	    i < AUTH_CACHE_SLOTS; i++)
		if (strcmp(cache.slots[i].ac_user, user) == 0)
			explicit_bzero(&cache.slots[i], sizeof(cache.slots[i]));
	if (cache.slots == NULL && (cache.slots = calloc(AUTH_CACHE_SLOTS,
	    sizeof(*cache.slots))) == NULL)
		goto out;	/* no memory: authd answers, as without it */
	for (i = 0; i < AUTH_CACHE_PROBE; i++) {
		struct auth_cached *c = &cache.slots[(home + i) &
		    (AUTH_CACHE_SLOTS - 1)];

		if (strcmp(c->ac_user, user) == 0 &&
		    strcmp(c->ac_client, client) == 0) {
			slot = c;	/* its entry, replaced */
			break;
		}
		if (slot == NULL || c->ac_expires < slot->ac_expires)
			slot = c;	/* free, expired, or the oldest */
	}
	memset(slot, 0, sizeof(*slot));
	memcpy(slot->ac_user, user, strlen(user) + 1);
	memcpy(slot->ac_client, client, strlen(client) + 1);
	memcpy(slot->ac_digest, digest, 32);
	memcpy(slot->ac_answer.an_user, rep->ap_user,
	    sizeof(slot->ac_answer.an_user));
	slot->ac_answer.an_user[sizeof(slot->ac_answer.an_user) - 1] = '\0';
	slot->ac_answer.an_ngroups = rep->ap_ngroups > AUTH_MAX_GROUPS ?
	    AUTH_MAX_GROUPS : rep->ap_ngroups;
	memcpy(slot->ac_answer.an_groups, rep->ap_groups,
	    sizeof(slot->ac_answer.an_groups));
	/* A coarse tick (4 ms) within authd's own expiry. */
	slot->ac_expires = rep->ap_cache_until_ms - 10;
out:
	pthread_mutex_unlock(&cache.lock);
}

/* Emptyings so far: a hit found before one is not delivered after it. */
uint64_t
auth_cache_generation(void)
{
	uint64_t	 gen;

	pthread_mutex_lock(&cache.lock);
	gen = cache.gen;
	pthread_mutex_unlock(&cache.lock);
	return (gen);
}

/* A refusal from authd, or a new authd: nothing is answered here now. */
void
auth_cache_clear(void)
{
	pthread_mutex_lock(&cache.lock);
	auth_cache_empty();
	pthread_mutex_unlock(&cache.lock);
}
