/*
 * authq.h: authd's lock-out and the queue in front of its PAM threads:
 * failures counted per (user, client prefix) and per prefix, and logins
 * in flight and waiting capped per prefix.
 */
#ifndef AUTHQ_H
#define AUTHQ_H

#include <stddef.h>
#include <stdint.h>

#include "authd/auth.h"

#define AUTHQ_KEYS_MAX		262144	/* counters kept at most */
#define AUTHQ_PENDING_MAX	4096	/* logins waiting at most */
#define AUTHQ_KEY_MAX		336
#define AUTHQ_DELAY_BASE	250	/* ms: a user's first delay */
#define AUTHQ_DELAY_MAX		8000	/* ms */
enum { AUTHQ_QUEUED, AUTHQ_BUSY, AUTHQ_RUN, AUTHQ_LOCKED, AUTHQ_EXPIRED,
	AUTHQ_NONE };
#define AUTHQ_LOCK_PAIR		0x1
#define AUTHQ_LOCK_PREFIX	0x2
struct authq_limits {
	int		 al_pair_limit;		/* 0: no lock-out */
	int		 al_prefix_limit;
	int		 al_window;		/* seconds */
	int		 al_lockout;		/* seconds */
	int		 al_inflight;		/* per prefix, in PAM at once */
	int		 al_queue;		/* per prefix, waiting */
	int		 al_prefix6;		/* IPv6 client prefix length */
	int		 al_expire;		/* seconds a login may wait */
};
struct authq;
struct authq_item;
struct authq	*authq_new(const struct authq_limits *);
void		 authq_free(struct authq *);
void		 authq_prefix(const char *, int, char *, size_t);
int		 authq_push(struct authq *, const struct auth_request *, int,
		    int64_t, struct authq_item **);
int		 authq_next(struct authq *, int64_t, struct authq_item **,
		    int64_t *);
void		 authq_done(struct authq *, struct authq_item *, int,
		    enum auth_status, int64_t, int *);
const struct auth_request *authq_request(const struct authq_item *, int *);
size_t		 authq_pending(const struct authq *);
size_t		 authq_keys(const struct authq *);

#endif /* AUTHQ_H */
