/*
 * session.h: the session core. A session is one client connection from
 * accept to close: a protocol front end (front/) reads its request, then
 * the core admits it, asks the policy, resolves, connects (or binds, or
 * associates UDP) and hands it to the relay (relay/). Per-phase state
 * that only one phase reads lives in that phase's own struct.
 */
#ifndef SESSION_H
#define SESSION_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "account/account.h"
#include "auditd/audit.h"

struct account;
struct auth_answer;
struct auth_reply;
struct conf;
struct bufferevent;
struct bw_pool;
struct capped_relay;
struct dns_ticket;
struct event;
struct policy;
struct policy_req;
struct relay;
struct session;
struct udp_assoc;
struct worker;

/* A name resolves to at most this many candidates; the rest are ignored. */
#define GW_MAX_CANDIDATES	16

/* session.c */
enum session_state {
	S_GREETING,
	S_AUTH,
	S_REQUEST,
	S_RESOLVING,
	S_CONNECTING,
	S_BINDING,	/* BIND: waiting for the peer */
	S_UDP,		/* UDP ASSOCIATE: relaying datagrams */
	S_RELAY,
	S_REPLYING,	/* a refusal is being flushed; then close */
	S_CLOSED
};

/*
 * Why a session ended: the audit's close_reason and the close log line
 * (close_reason_text[]). A refused session ends with its refusal's own
 * words (s_refusal); a killed one with the admin who killed it.
 */
enum close_reason {
	CLOSE_REFUSED,
	CLOSE_KILLED,
	CLOSE_CLIENT,
	CLOSE_REMOTE,
	CLOSE_CLIENT_ERROR,
	CLOSE_REMOTE_ERROR,
	CLOSE_CLIENT_HANDSHAKE,
	CLOSE_CLIENT_HANDSHAKE_ERROR,
	CLOSE_HANDSHAKE_TIMEOUT,
	CLOSE_IDLE,
	CLOSE_QUOTA,
	CLOSE_REVOKED,
	CLOSE_SHUTDOWN,
	CLOSE_NO_MEMORY,
	CLOSE_KEEPALIVE,	/* HTTP: answered; the connection carries on */
	CLOSE_MAX
};
extern const char *const close_reason_text[CLOSE_MAX];

/* What a handshake handler did: wait for bytes, go on, or stop. */
enum step { STEP_WAIT, STEP_NEXT, STEP_STOP };

/*
 * A protocol front end: it reads the client's handshake and writes its
 * protocol's replies. The core speaks in SOCKS5 REP codes (socks5.h),
 * which every front end maps to its own (SOCKS4's 0x5a/0x5b, HTTP's
 * status codes); everything after the request is the core's.
 */
struct evbuffer;

struct front {
	/* Bytes arrived while the session is in its handshake. */
	enum step	(*fe_read)(struct session *);
	/* authd answered a login the front end submitted (auth_submit). */
	void		(*fe_authenticated)(struct session *,
			    const struct auth_reply *);
	/* The reply for outcome rep, bound to addr (or none): its length. */
	size_t		(*fe_reply)(const struct session *, uint8_t rep,
			    const struct sockaddr *addr, uint8_t *buf,
			    size_t len);
	/*
	 * Optional. The remote side is connected, the relay not started:
	 * the front end's own success (instead of fe_reply's), such as
	 * HTTP forwarding's request head, put first in the client's
	 * buffered bytes. 0, or -1 (s_errno EPROTO: the client's fault).
	 */
	int		(*fe_connected)(struct session *);
	/*
	 * For a session with front-end state (s_fe): n bytes the client
	 * sent in the relay. How many of them go on (the first ones: the
	 * rest are past the client's message, and dropped), or -1 when
	 * they break its framing.
	 */
	long		(*fe_relay_client)(struct session *, const uint8_t *p,
			    size_t n);
	/*
	 * For a session with front-end state: the server's bytes until the
	 * front end has rebuilt its head. pending holds what came so far
	 * (the relay's); what the client gets goes into out, the rest of
	 * pending too once the head is done. 1 done, 0 more needed, -1 a
	 * head it will not pass on (the session closes), 2 the response is
	 * complete and nothing more of the server's is passed on (the
	 * session ends, CLOSE_KEEPALIVE).
	 */
	int		(*fe_relay_remote)(struct session *, struct evbuffer *pending,
			    struct evbuffer *out);
	/*
	 * Optional: a front end that reads a prefix before any protocol
	 * (a load balancer's PROXY header) has, at accept, its own cap of
	 * silent sockets per host and its own time limit (seconds).
	 */
	unsigned	(*fe_accept_cap)(const struct conf *);
	int		(*fe_accept_timeout)(const struct conf *);
	/*
	 * Optional, for a session with front-end state: the exchange is
	 * complete (fe_relay_remote said 2). 1 when the client's connection
	 * carries another request, with the bytes it sent past this one
	 * moved into next (session_next); 0 when it closes now.
	 */
	int		(*fe_next)(struct session *, struct evbuffer *next);
	void		(*fe_free)(struct session *);	/* optional */
};
#define FRONT_REPLY_MAX	1024	/* the longest reply of any front end */

/*
 * A session is one client connection and, once connected, its remote side.
 * The two directions of a relay are symmetric, so per-side state is kept
 * in arrays indexed by SIDE_CLIENT and SIDE_REMOTE.
 */
#define SIDE_CLIENT	0
#define SIDE_REMOTE	1

/*
 * The outbound phase (resolve.c, connect.c, bind.c): the addresses to try
 * and the event waiting on the socket in progress. Embedded in the
 * session, with no allocation for the common case of one address (a
 * literal: d_cand points at s_dst).
 */
struct dial {
	struct sockaddr_storage	*d_cand;	/* candidates, in order */
	int			 d_ncand;
	int			 d_icand;	/* the next one to try */
	struct event		*d_ev;		/* connect, or BIND's accept */
	int			 d_bind_fd;	/* BIND's listener, or -1 */
};

struct session {
	TAILQ_ENTRY(session)	 s_entry;
	TAILQ_ENTRY(session)	 s_auth_entry;	/* on w_authing */
	struct worker		*s_worker;
	const struct front	*s_front;	/* its protocol */
	uint16_t		 s_fe_seen;	/* input its front end has seen */
	struct front_state	*s_fe;		/* its front end's: one block */
	uint64_t		 s_id;
	enum session_state	 s_state;
	int			 s_fd[2];	/* owned; -1 when not open */
	struct bufferevent	*s_bev;		/* client, during the handshake */
	struct relay		*s_relay;	/* once connected */
	struct udp_assoc	*s_udp;		/* UDP ASSOCIATE */
	uint64_t		 s_bytes[2];	/* read from side i, relayed */
	uint64_t		 s_rate;	/* bytes/s, both ways, lately */
	uint64_t		 s_rate_prev;
	uint8_t			 s_client_shut;	/* refusal: SHUT_WR sent */
	uint8_t			 s_cmd;
	uint8_t			 s_proto;	/* AUDIT_PROTO_* */
	uint8_t			 s_rep;		/* reply to send on failure */
	uint8_t			 s_over_limit;
	uint8_t			 s_pending;	/* counted in pending.c */
	uint8_t			 s_audit_reserved; /* a close record's place */
	uint8_t			 s_first_eof;	/* 1 + the side that ended */
	struct dns_ticket	*s_dns;
	struct dial		 s_dial;	/* connect or BIND's wait */
	int			 s_errno;	/* of the last failure */
	struct sockaddr_storage	 s_peer;	/* the client */
	/* PROXY: where the client reached the load balancer, or NULL */
	struct sockaddr_storage	*s_reached;
	struct sockaddr_storage	 s_dst;		/* address tried or used */
	char			*s_dst_name;	/* name as requested, or NULL */
	uint16_t		 s_dst_port;
	int64_t			 s_deadline;	/* of the current phase, ms */
	int64_t			 s_active;	/* last relay traffic, ms */
	struct timespec		 s_started;
	const char		*s_refusal;	/* why, for the close log */
	char			*s_user;	/* authenticated, or NULL */
	char			*s_ident;	/* SOCKS4 USERID, unverified */
	char			**s_groups;	/* the user's system groups */
	int			 s_ngroups;
	uint8_t			 s_authing;	/* on w_authing */
	uint8_t			 s_authed;	/* s_user passed PAM */
	uint8_t			 s_login;	/* AUDIT_AUTH_*, 0: none tried */
	int64_t			 s_login_until;	/* Kerberos: its ticket's end, ms */
	struct account_hold	 s_hold;	/* of its user's account */
	struct capped_relay	*s_capped;	/* relay under a cap */
	struct bw_pool		*s_bw[2];	/* caps: [0] user's, [1] group's */
	struct timespec		 s_auth_sent;
	/* A login asked of authd: its salted digest, for auth_cache.c. */
	unsigned char		 s_auth_digest[32];
	uint8_t			 s_auth_digest_set;
	uint64_t		 s_auth_gen;	/* the cache's, when asked */
	struct auth_answer	*s_auth_hit;	/* the cache's, to deliver */
	TAILQ_ENTRY(session)	 s_hit_entry;	/* on w_auth_hitq */
	struct timespec		 s_dns_sent;
	uint8_t			 s_timed;	/* handshake latency observed */
	int64_t			 s_start_ms;	/* wall clock, for the audit */
	uint8_t			 s_audit_open;	/* its start row was queued */
	uint8_t			 s_allowed;	/* the policy said allow */
	struct policy		*s_policy;	/* the snapshot that judged it */
	int64_t			 s_rule_id;	/* the rule that decided */
	char			*s_reason;	/* the policy's reason, if denied */
};

extern _Atomic unsigned	 gw_nsessions;	/* open, all workers */

/* session.c */
void	 session_accept(struct worker *, const struct front *, int,
	    const struct sockaddr *, socklen_t);
void	 session_client_read(struct bufferevent *, void *);
enum step session_begin(struct session *, uint8_t, const char *,
	    const struct sockaddr_storage *, uint16_t, const char *);
void	 session_set_state(struct session *, enum session_state);
const char *session_state_name(enum session_state);
int	 session_reply(struct session *, const void *, size_t);
void	 session_refuse(struct session *, uint8_t, const char *);
void	 session_refuse_bytes(struct session *, const uint8_t *, size_t,
	    const char *);
void	 session_connected(struct session *, const struct sockaddr *);
void	 session_active(struct session *);
void	 session_timeout(struct session *);
void	 session_close(struct session *, enum close_reason);
void	 session_kill(struct session *, const char *);
void	 session_reap(struct worker *);

/* session_record.c: what a session leaves: audit, log line, latency */
void	 session_dst_text(const struct session *, char *, size_t);
void	 session_audit(struct session *, enum audit_type, const char *);
void	 session_log_close(struct session *, const char *);
void	 session_observe_handshake(struct session *);

/* pending.c: a client named by a load balancer (front_proxy.c) */
int	 pending_rename(struct session *, const struct sockaddr_storage *);

/* session_req.c: the policy request of a session (to a destination) */
void	 session_policy_req(const struct session *, const struct sockaddr *,
	    struct policy_req *);

#endif /* SESSION_H */
