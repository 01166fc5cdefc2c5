/*
 * phases.h: the phases of a session after its request, each a file of
 * session/: the policy's verdicts (verdict.c), DNS (resolve.c), connect
 * (connect.c), BIND (bind.c), UDP ASSOCIATE (udp.c), and the cap on
 * silent sockets per client (pending.c).
 */
#ifndef PHASES_H
#define PHASES_H

#include <sys/socket.h>
#include <stdint.h>

#include "session/session.h"

struct audit_rec;
struct bufferevent;
struct conf;
struct event_base;
struct evutil_addrinfo;
struct policy;

/* session.c, session_new.c: the session's client side */
void	 session_client_event(struct bufferevent *, short, void *);
void	 session_next(struct session *);

/* verdict.c: asking the policy about a session */
int	 verdict_name(struct session *);
int	 verdict_udp(struct session *, const char *,
	    const struct sockaddr *, uint16_t);
int	 verdict_address(struct session *, const struct sockaddr *);
int	 verdict_recheck(struct session *, struct policy *);
struct policy *verdict_snapshot(struct session *);
int	 verdict_udp_association(struct session *, struct policy *);

/* resolve.c: evdns, one resolver per worker */
struct resolver *resolver_new(struct event_base *, const struct conf *,
	    char **);
void	 resolver_retire(struct resolver *);
typedef void	 resolve_cb(int, struct evutil_addrinfo *, void *);
struct dns_ticket *resolve_lookup(struct worker *, const char *, int,
	    resolve_cb *, void *);
void	 resolve_abandon(struct dns_ticket *);
void	 resolve_start(struct session *);
void	 resolve_cancel(struct session *);

/* connect.c */
void	 connect_next(struct session *);
void	 connect_cancel(struct session *);
uint8_t	 connect_errno_to_rep(int);

/* bind.c */
int	 bind_start(struct session *);
void	 bind_cancel(struct session *);
int	 bind_advertise(const struct conf *, struct sockaddr_storage *);
int	 bind_local(struct session *, const struct sockaddr *,
	    struct sockaddr_storage *);

/* udp.c */
enum step udp_begin(struct session *, const char *,
	    const struct sockaddr_storage *);
void	 udp_free(struct session *);
void	 udp_record(const struct session *, struct audit_rec *);
void	 udp_policy_changed(struct session *);

/* pending.c: sockets still in their handshake, per client */
int	 pending_enter(const struct sockaddr_storage *, unsigned);
void	 pending_leave(const struct sockaddr_storage *);
unsigned handshake_cap(const struct conf *);

#endif /* PHASES_H */
