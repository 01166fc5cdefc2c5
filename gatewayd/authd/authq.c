/*
 * authq.c: authd's admission of logins: lock-out, and the queue in front
 * of the PAM threads. Pure: no threads, no I/O, the time is passed in, so
 * the unit test repeats (authd.c holds the lock around every call).
 *
 * DESIGN. Failures are counted under three keys:
 *  - a (user, client prefix) pair: auth_fail_limit failures within
 *    auth_fail_window lock that pair for auth_lockout seconds, the right
 *    password included. Others behind the same NAT address, and the same
 *    user elsewhere, are not locked.
 *  - a client prefix (IPv4 /32, IPv6 /auth_ipv6_prefix, 64 by default):
 *    auth_client_fail_limit failures, whatever the names, lock it.
 *  - a user, across all prefixes: never locked (anyone could lock anyone
 *    out), but each failure past auth_fail_limit doubles a delay before
 *    that user's next attempt goes to PAM, up to AUTHQ_DELAY_MAX.
 * A Kerberos token names no user before it is accepted, and guesses no
 * secret (a ticket comes from the KDC): its failures count under
 * AQ_TOKEN_PAIR for its client prefix alone, which locks that prefix's
 * Kerberos logins at auth_client_fail_limit failures (an office behind
 * one NAT address shares a prefix: five stale tickets must not lock it
 * out), never its passwords and never another prefix; no per-user delay
 * applies (AQ_TOKEN holds the third place and counts nothing). A valid
 * ticket whose account PAM refuses is not a failure.
 * Attempts in flight count against the limits before PAM answers and are
 * given back when they succeed: a request that could reach a limit waits
 * until those before it are answered, so ten parallel logins with the
 * right password never lock anyone out.
 *
 * Counters are never evicted while they count or lock; an entry goes when
 * its window and lock-out have passed. Memory is bounded by need: at most
 * AUTHQ_KEYS_MAX entries of about 100 bytes plus the key (a user name of
 * up to 255 bytes and an address); a login that would need a new entry
 * when the table is full is refused (fail closed) rather than forget a
 * lock-out.
 *
 * The queue: at most AUTHQ_PENDING_MAX logins wait, at most
 * auth_client_queue of one client prefix; one prefix has at most
 * auth_client_inflight logins in PAM at once, the rest wait. When the
 * queue is full, a newcomer takes the place of the newest login of the
 * prefix that holds the most, so a few addresses cannot keep everyone
 * else out. A free PAM thread takes the waiting login whose client
 * prefix has the fewest recent failures (the oldest among equals), so
 * logins from many failing addresses cannot starve a clean client.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authq.h"

#define AUTHQ_BUCKETS		4096	/* grows by doubling */

enum authq_kind { AQ_PAIR, AQ_PREFIX, AQ_USER, AQ_TOKEN_PAIR, AQ_TOKEN };
/* Each kind's first character in a key's text: kinds never share a key. */
static const char	 authq_kind_char[] = "aPutT";
_Static_assert(sizeof(authq_kind_char) == AQ_TOKEN + 2, "a kind per char");

struct authq_key {
	struct authq_key	*k_next;	/* hash chain */
	uint64_t		 k_hash;
	int64_t			 k_window_ms;	/* start of the window */
	int64_t			 k_locked_ms;	/* locked until */
	int64_t			 k_last_fail_ms;
	uint32_t		 k_fails;	/* in the window */
	uint32_t		 k_held;	/* logins waiting or in PAM */
	uint32_t		 k_queued;	/* logins waiting */
	uint32_t		 k_running;	/* logins in PAM */
	uint8_t			 k_kind;
	char			 k_name[];	/* kind, then text */
};

struct authq_item {
	struct authq_item	*i_next;
	int			 i_channel;
	int64_t			 i_queued_ms;
	struct authq_key	*i_keys[3];	/* pair, prefix, user */
	struct auth_request	 i_req;		/* as long as its token: last */
};

struct authq {
	struct authq_limits	 q_lim;
	struct authq_key	**q_table;
	size_t			 q_buckets;
	size_t			 q_nkeys;
	size_t			 q_sweep;	/* next bucket to sweep */
	struct authq_item	*q_head, **q_tail;
	size_t			 q_pending;
};

static uint64_t
authq_hash(const char *s)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (h);
}

static void	authq_unlink(struct authq *, struct authq_item **);

struct authq *
authq_new(const struct authq_limits *lim)
{
	struct authq	*q;

	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->q_table = calloc(AUTHQ_BUCKETS, sizeof(*q->q_table))) ==
	    NULL) {
		free(q);
		return (NULL);
	}
	q->q_lim = *lim;
	q->q_buckets = AUTHQ_BUCKETS;
	q->q_tail = &q->q_head;
	return (q);
}

static void
authq_item_free(struct authq_item *it)
{
	explicit_bzero(&it->i_req, AUTH_REQUEST_LEN(&it->i_req));
	free(it);
}

void
authq_free(struct authq *q)
{
	struct authq_item	*it;
	struct authq_key	*k;
	size_t			 i;

	if (q == NULL)
		return;
	while ((it = q->q_head) != NULL) {
		q->q_head = it->i_next;
		authq_item_free(it);
	}
	for (i = 0; i < q->q_buckets; i++)
		while ((k = q->q_table[i]) != NULL) {
			q->q_table[i] = k->k_next;
			free(k);
		}
	free(q->q_table);
	free(q);
}

/* Whether k still counts, locks or is in use at now. */
static int
authq_key_live(const struct authq *q, const struct authq_key *k,
    int64_t now)
{
	return (k->k_held > 0 || k->k_locked_ms > now ||
	    (k->k_fails > 0 && now - k->k_window_ms <
	    (int64_t)q->q_lim.al_window * 1000));
}

/* Frees dead entries of a few buckets: the table follows the need. */
static void
authq_sweep(struct authq *q, int64_t now, size_t nbuckets)
{
	struct authq_key	**kp, *k;

	while (nbuckets-- > 0) {
		kp = &q->q_table[q->q_sweep];
		while ((k = *kp) != NULL) {
			if (authq_key_live(q, k, now)) {
				kp = &k->k_next;
				continue;
			}
			*kp = k->k_next;
			free(k);
			q->q_nkeys--;
		}
		q->q_sweep = (q->q_sweep + 1) % q->q_buckets;
	}
}

static void
authq_grow(struct authq *q)
{
	struct authq_key	**t, *k;
	size_t			 n = q->q_buckets * 2, i;

	if ((t = calloc(n, sizeof(*t))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < q->q_buckets; i++)
		while ((k = q->q_table[i]) != NULL) {
			q->q_table[i] = k->k_next;
			k->k_next = t[k->k_hash % n];
			t[k->k_hash % n] = k;
		}
	free(q->q_table);
	q->q_table = t;
	q->q_buckets = n;
	q->q_sweep = 0;
}

/* The entry for name (kind-prefixed), made if need be; NULL when full. */
static struct authq_key *
authq_key(struct authq *q, enum authq_kind kind, const char *name)
{
	struct authq_key	*k;
	char			 text[AUTHQ_KEY_MAX];
	uint64_t		 h;
	size_t			 len;

	snprintf(text, sizeof(text), "%c%s", authq_kind_char[kind], name);
	h = authq_hash(text);
	for (k = q->q_table[h % q->q_buckets]; k != NULL; k = k->k_next)
		if (k->k_hash == h && strcmp(k->k_name, text) == 0)
			return (k);
	if (q->q_nkeys >= AUTHQ_KEYS_MAX)
		return (NULL);
	len = strlen(text) + 1;
	if ((k = calloc(1, sizeof(*k) + len)) == NULL)
		return (NULL);
	memcpy(k->k_name, text, len);
	k->k_hash = h;
	k->k_kind = (uint8_t)kind;
	k->k_next = q->q_table[h % q->q_buckets];
	q->q_table[h % q->q_buckets] = k;
	if (++q->q_nkeys > q->q_buckets * 2)
		authq_grow(q);
	return (k);
}

/*
 * The client prefix of an address as authd receives it ("192.0.2.1" or
 * "2001:db8::1"): IPv4 whole, IPv6 cut to prefix6 bits, so that every
 * address of one IPv6 host's /64 is one client.
 */
void
authq_prefix(const char *client, int prefix6, char *out, size_t len)
{
	struct in6_addr	 a6;
	char		 text[INET6_ADDRSTRLEN];
	int		 i;

	if (strchr(client, ':') == NULL ||
	    inet_pton(AF_INET6, client, &a6) != 1) {
		snprintf(out, len, "%s", client);
		return;
	}
	for (i = 0; i < 16; i++) {
		if (i * 8 >= prefix6)
			a6.s6_addr[i] = 0;
		else if (i * 8 + 8 > prefix6)
			a6.s6_addr[i] &= (uint8_t)(0xff << (8 - prefix6 % 8));
	}
	inet_ntop(AF_INET6, &a6, text, sizeof(text));
	snprintf(out, len, "%s/%d", text, prefix6);
}

/*
 * Queues a login from channel. Returns AUTHQ_QUEUED, or AUTHQ_BUSY when
 * its client has too many waiting, or the queue is full of logins of
 * clients that hold fewer, or the table is full (the caller refuses it:
 * fail closed). A login pushed out to make room is left in *evicted (the
 * caller answers it and hands it to authq_done()). The request is
 * copied; the caller wipes its own copy.
 */
int
authq_push(struct authq *q, const struct auth_request *req, int channel,
    int64_t now, struct authq_item **evicted)
{
	struct authq_item	*it, **ip, **newest = NULL;
	struct authq_key	*most = NULL;
	char			 prefix[64], user[256];
	char			 pair[sizeof(prefix) + 1 + sizeof(user)];
	size_t			 i;

	*evicted = NULL;
	authq_sweep(q, now, 16);
	/* Names differing in case count as one (sssd, AD). */
	for (i = 0; req->ar_user[i] != '\0' && i < sizeof(user) - 1; i++)
		user[i] = (char)tolower((unsigned char)req->ar_user[i]);
	user[i] = '\0';
	authq_prefix(req->ar_client, q->q_lim.al_prefix6, prefix,
	    sizeof(prefix));
	snprintf(pair, sizeof(pair), "%s %s", prefix, user);
	/*
	 * As long as its request, rounded up to the struct's alignment: the
	 * largest token then fills the struct, its tail padding too.
	 */
	if (req->ar_toklen > sizeof(req->ar_token) || (it = calloc(1,
	    offsetof(struct authq_item, i_req) + ((AUTH_REQUEST_LEN(req) +
	    _Alignof(struct authq_item) - 1) &
	    ~(_Alignof(struct authq_item) - 1)))) == NULL)
		return (AUTHQ_BUSY);
	/* A Kerberos token: keyed by its prefix alone (see DESIGN). */
	if (req->ar_toklen > 0) {
		it->i_keys[0] = authq_key(q, AQ_TOKEN_PAIR, prefix);
		it->i_keys[2] = authq_key(q, AQ_TOKEN, prefix);
	} else {
		it->i_keys[0] = authq_key(q, AQ_PAIR, pair);
		it->i_keys[2] = authq_key(q, AQ_USER, user);
	}
	if (it->i_keys[0] == NULL || it->i_keys[2] == NULL ||
	    (it->i_keys[1] = authq_key(q, AQ_PREFIX, prefix)) == NULL ||
	    it->i_keys[1]->k_queued >= (uint32_t)q->q_lim.al_queue) {
		free(it);
		return (AUTHQ_BUSY);
	}
	if (q->q_pending >= AUTHQ_PENDING_MAX) {
		/* The newest login of the client that holds the most. */
		for (ip = &q->q_head; *ip != NULL; ip = &(*ip)->i_next)
			if (most == NULL ||
			    (*ip)->i_keys[1]->k_queued > most->k_queued)
				most = (*ip)->i_keys[1];
		for (ip = &q->q_head; *ip != NULL; ip = &(*ip)->i_next)
			if ((*ip)->i_keys[1] == most)
				newest = ip;
		if (most == NULL || newest == NULL ||
		    most->k_queued <= it->i_keys[1]->k_queued + 1) {
			free(it);
			return (AUTHQ_BUSY);
		}
		*evicted = *newest;
		authq_unlink(q, newest);
	}
	memcpy(&it->i_req, req, AUTH_REQUEST_LEN(req));
	it->i_channel = channel;
	it->i_queued_ms = now;
	/* Waiting logins keep their keys alive (not swept). */
	for (i = 0; i < 3; i++)
		it->i_keys[i]->k_held++;
	it->i_keys[1]->k_queued++;
	*q->q_tail = it;
	q->q_tail = &it->i_next;
	q->q_pending++;
	return (AUTHQ_QUEUED);
}

/* The window of k has passed: its failures no longer count. */
static void
authq_window(const struct authq *q, struct authq_key *k, int64_t now)
{
	if (k->k_fails > 0 && now - k->k_window_ms >=
	    (int64_t)q->q_lim.al_window * 1000)
		k->k_fails = 0;
}

/* How long a user with n failures waits before its next attempt. */
static int64_t
authq_user_delay(const struct authq *q, uint32_t n)
{
	uint32_t	 past;

	if (q->q_lim.al_pair_limit == 0 || n < (uint32_t)q->q_lim.al_pair_limit)
		return (0);
	past = n - (uint32_t)q->q_lim.al_pair_limit;
	if (past >= 16 || ((int64_t)AUTHQ_DELAY_BASE << past) > AUTHQ_DELAY_MAX)
		return (AUTHQ_DELAY_MAX);
	return ((int64_t)AUTHQ_DELAY_BASE << past);
}

static void
authq_unlink(struct authq *q, struct authq_item **ip)
{
	struct authq_item	*it = *ip;

	*ip = it->i_next;
	if (q->q_tail == &it->i_next)
		q->q_tail = ip;
	q->q_pending--;
	it->i_keys[1]->k_queued--;
}

/*
 * The next thing for a PAM thread: AUTHQ_RUN (ask PAM), AUTHQ_LOCKED or
 * AUTHQ_EXPIRED (answer at once, without PAM), or AUTHQ_NONE with
 * *wait_ms how long nothing can change by itself (-1: until a push or a
 * done). The item is the caller's until authq_done().
 */
int
authq_next(struct authq *q, int64_t now, struct authq_item **out,
    int64_t *wait_ms)
{
	struct authq_item	**ip, **best = NULL, *it;
	struct authq_key	*pair, *pfx, *usr;
	const struct authq_limits *lim = &q->q_lim;
	int64_t			 until, wait = -1;
	int			 i;

	for (ip = &q->q_head; (it = *ip) != NULL; ip = &it->i_next) {
		pair = it->i_keys[0];
		pfx = it->i_keys[1];
		usr = it->i_keys[2];
		for (i = 0; i < 3; i++)
			authq_window(q, it->i_keys[i], now);
		if (now - it->i_queued_ms >= (int64_t)lim->al_expire * 1000) {
			authq_unlink(q, ip);
			*out = it;
			return (AUTHQ_EXPIRED);
		}
		if (pair->k_locked_ms > now || pfx->k_locked_ms > now) {
			authq_unlink(q, ip);
			*out = it;
			return (AUTHQ_LOCKED);
		}
		/* Those in PAM count as failures until they are known. */
		if (lim->al_pair_limit > 0 && (pair->k_fails +
		    pair->k_running >= (uint32_t)(pair->k_kind ==
		    AQ_TOKEN_PAIR ? lim->al_prefix_limit : lim->al_pair_limit) ||
		    pfx->k_fails + pfx->k_running >=
		    (uint32_t)lim->al_prefix_limit))
			continue;
		if (pfx->k_running >= (uint32_t)lim->al_inflight)
			continue;
		until = usr->k_kind == AQ_TOKEN ? 0 : usr->k_last_fail_ms +
		    authq_user_delay(q, usr->k_fails);
		if (until > now) {
			if (wait == -1 || until - now < wait)
				wait = until - now;
			continue;
		}
		if (best == NULL || pfx->k_fails < (*best)->i_keys[1]->k_fails)
			best = ip;
	}
	if (best == NULL) {
		/* Expiry is a change that comes by itself too. */
		if (q->q_head != NULL) {
			until = q->q_head->i_queued_ms +
			    (int64_t)lim->al_expire * 1000 - now;
			if (wait == -1 || until < wait)
				wait = until < 0 ? 0 : until;
		}
		*wait_ms = wait;
		return (AUTHQ_NONE);
	}
	it = *best;
	authq_unlink(q, best);
	for (i = 0; i < 3; i++)
		it->i_keys[i]->k_running++;
	*out = it;
	return (AUTHQ_RUN);
}

/* Counts one failure under k; 1 when it starts a lock-out. */
static int
authq_fail(const struct authq *q, struct authq_key *k, int limit,
    int64_t now)
{
	authq_window(q, k, now);
	if (k->k_fails == 0)
		k->k_window_ms = now;
	k->k_fails++;
	k->k_last_fail_ms = now;
	if (limit > 0 && k->k_kind != AQ_USER && k->k_kind != AQ_TOKEN &&
	    k->k_fails >=
	    (uint32_t)limit) {
		k->k_locked_ms = now + (int64_t)q->q_lim.al_lockout * 1000;
		k->k_fails = 0;
		return (1);
	}
	return (0);
}

/*
 * The answer for an item from authq_next(): what PAM said (or AUTH_LOCKED
 * for one refused without it). Failures are counted, in-flight counts
 * given back; *locked gets which lock-outs this started (AUTHQ_LOCK_*).
 * Frees the item, wiping its password.
 */
void
authq_done(struct authq *q, struct authq_item *it, int ran,
    enum auth_status st, int64_t now, int *locked)
{
	const struct authq_limits *lim = &q->q_lim;
	int			 i;

	*locked = 0;
	for (i = 0; i < 3; i++) {
		it->i_keys[i]->k_held--;
		if (ran)
			it->i_keys[i]->k_running--;
	}
	if (ran && it->i_req.ar_toklen > 0) {
		/*
		 * A token: its prefix's Kerberos logins alone (DESIGN); a
		 * ticket the KDC issued and PAM then refused guesses nothing
		 * and is not counted.
		 */
		if (st == AUTH_FAILED && authq_fail(q, it->i_keys[0],
		    lim->al_pair_limit > 0 ? lim->al_prefix_limit : 0, now))
			*locked |= AUTHQ_LOCK_PAIR;
		else if (st == AUTH_OK)
			it->i_keys[0]->k_fails = 0;
	} else if (ran && (st == AUTH_FAILED || st == AUTH_REFUSED)) {
		if (authq_fail(q, it->i_keys[0], lim->al_pair_limit, now))
			*locked |= AUTHQ_LOCK_PAIR;
		if (authq_fail(q, it->i_keys[1], lim->al_pair_limit > 0 ?
		    lim->al_prefix_limit : 0, now))
			*locked |= AUTHQ_LOCK_PREFIX;
		authq_fail(q, it->i_keys[2], 0, now);
	} else if (ran && st == AUTH_OK)
		it->i_keys[0]->k_fails = 0;	/* the typos are forgiven */
	authq_item_free(it);
}

const struct auth_request *
authq_request(const struct authq_item *it, int *channel)
{
	*channel = it->i_channel;
	return (&it->i_req);
}

size_t
authq_pending(const struct authq *q)
{
	return (q->q_pending);
}

size_t
authq_keys(const struct authq *q)
{
	return (q->q_nkeys);
}
