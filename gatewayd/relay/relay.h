/*
 * relay.h: the bytes of an established session, both ways (relay.c);
 * the relay of sessions under a bandwidth cap, through bufferevents
 * (relay_capped.c); the cap pools those share (bandwidth.c).
 */
#ifndef RELAY_H
#define RELAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "session/session.h"

struct bufferevent_rate_limit_group;
struct bw_pool;
struct evbuffer;

/* relay.c */
/*
 * How a relay ends: the layer above (the session core) closes the
 * session, for a reason; proxy.c tells the relay whom to call, once.
 */
typedef void	 relay_end_cb(struct session *, enum close_reason);
void	 relay_set_end(relay_end_cb *);
void	 relay_end(struct session *, enum close_reason);
int	 relay_start(struct session *);
long	 relay_framed(struct session *, const uint8_t *, size_t);
int	 relay_queue(struct session *, int, struct evbuffer *);
int	 relay_unsent_client(struct session *, struct evbuffer *);
void	 relay_free(struct session *);
void	 relay_repool(struct session *, struct bw_pool *[2]);
void	 relay_uncount(struct session *, int, size_t);
void	 relay_settle(struct session *);
void	 relay_quota_end(struct session *, int64_t);

/* relay_capped.c */
int	 capped_start(struct session *);
void	 relay_early(struct session *);
int	 capped_unsent_client(struct session *, struct evbuffer *);
int	 capped_queue(struct session *, int, struct evbuffer *);
void	 capped_free(struct session *);
void	 capped_repool(struct session *, struct bw_pool *[2]);
void	 capped_quota_end(struct session *, int64_t);
void	 capped_settle(struct session *);
int	 capped_draining(const struct session *);

/* bandwidth.c */
int	 bandwidth_start(char **);
void	 bandwidth_stop(void);
int	 bandwidth_join(struct session *);
void	 bandwidth_leave(struct session *);
void	 bandwidth_recheck(struct session *);
struct bufferevent_rate_limit_group *bandwidth_group(struct session *, int);

#endif /* RELAY_H */
