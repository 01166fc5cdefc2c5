/*
 * gatewayd: the socksgw daemon's declarations, grouped by file (tmux.h
 * style). What socksctl shares is in common/, one header per module, and
 * policy/policy.h; this header includes those for the daemon's files.
 */
#ifndef GATEWAYD_H
#define GATEWAYD_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "socks5.h"

/* The shared library's (common/), which socksctl uses too. */
#include "addr.h"
#include "audit_chain.h"
#include "conf.h"
#include "escape.h"
#include "evidence.h"
#include "log.h"
#include "stat.h"

struct event_base;
struct event;
struct evdns_base;
struct evdns_getaddrinfo_request;
struct evconnlistener;
struct bufferevent;
struct evbuffer;

/* A name resolves to at most this many candidates; the rest are ignored. */
#define GW_MAX_CANDIDATES	16

/*
 * FNV-1a over len bytes: the hash of the per-user tables (limits, quotas,
 * bandwidth pools), which are small and keyed by short names.
 */
static inline uint32_t
gw_hash(const void *p, size_t len)
{
	const uint8_t	*b = p;
	uint32_t	 h = 2166136261u;

	while (len-- > 0)
		h = (h ^ *b++) * 16777619u;
	return (h);
}

/* guard.c */
int	 guard_self_init(const int *, size_t, char **);
void	 guard_self_free(void);
const struct sockaddr_storage *guard_self_addrs(size_t *);
int	 guard_is_listener(const struct sockaddr *);

/* gwpolicy.c: the policy snapshot in force, kept current by a thread */
struct policy;
struct policy_req;
int	 gwpolicy_check(const struct conf *, char **);
int	 gwpolicy_init(const struct conf *, char **);
int	 gwpolicy_watch(void (*)(const struct policy *), char **);
void	 gwpolicy_reload(const struct conf *);
void	 gwpolicy_stop(void);
struct policy *gwpolicy_get(void);

/* worker.c */
struct session;
TAILQ_HEAD(session_list, session);

struct worker {
	int			 w_id;
	pthread_t		 w_thread;
	struct event_base	*w_base;
	struct resolver		*w_resolver;
	struct evconnlistener	*w_listeners[GW_MAX_LISTEN];
	size_t			 w_nlisteners;
	struct event		*w_sweep;
	struct event		*w_wakeup;
	struct event		*w_accept_resume;
	struct event		*w_reap;	/* frees closed sessions */
	struct session_list	 w_closed;
	int			 w_wakeup_fd[2];
	int			 w_auth_fd;	/* to authd, or -1 */
	_Atomic int		 w_auth_next;	/* a new one (WORKER_AUTHD) */
	struct event		*w_auth_ev;
	struct session_list	 w_authing;	/* sessions waiting for authd */
	char			*w_answer;	/* to the control socket */
	int			 w_answered;
	uint8_t			*w_scratch;	/* relay reads land here */
	size_t			 w_scratch_len;
	struct conf		*w_conf;	/* changed on this thread only */
	struct policy		*w_policy;	/* likewise */
	_Atomic(const struct policy *) w_policy_seen;	/* for the main thread */
	_Atomic unsigned	 w_requests;	/* WORKER_* from the main thread */
	struct session_list	 w_sessions;
	unsigned		 w_nsessions;
	int64_t			 w_now;		/* coarse monotonic ms */
	int			 w_stopping;
	int64_t			 w_stop_deadline;
};
#define WORKER_RELOAD	0x1
#define WORKER_STOP	0x2
#define WORKER_POLICY	0x4	/* a new policy snapshot is in force */
#define WORKER_CONTROL	0x8	/* answer the control socket's question */
#define WORKER_AUTHD	0x10	/* a restarted authd's channel: w_auth_next */

int	 worker_init(struct worker *, int, struct conf *, const int *, size_t,
	    int, char **);
int	 worker_start(struct worker *);
void	 worker_request(struct worker *, unsigned);
void	 worker_set_authd(struct worker *, int);
void	 worker_join(struct worker *);
void	 worker_free(struct worker *);
int64_t	 worker_clock(void);
void	 worker_session_gone(struct worker *);

/* gatewayd.c: process-wide state shared by the workers */
struct conf	*gw_conf_get(void);
extern _Atomic unsigned	 gw_nsessions;
extern _Atomic uint64_t	 gw_next_sid;
#define GW_SID_SHIFT	21	/* ids: start time in seconds << 21, up */

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
 * A session is one client connection and, once connected, its remote side.
 * The two directions of a relay are symmetric, so per-side state is kept
 * in arrays indexed by SIDE_CLIENT and SIDE_REMOTE.
 */
#define SIDE_CLIENT	0
#define SIDE_REMOTE	1

struct dns_ticket;
struct auth_reply;
struct udp_assoc;

struct relay;
struct quota_user;
struct capped_relay;
struct bw_pool;

struct session {
	TAILQ_ENTRY(session)	 s_entry;
	TAILQ_ENTRY(session)	 s_auth_entry;	/* on w_authing */
	struct worker		*s_worker;
	uint64_t		 s_id;
	enum session_state	 s_state;
	int			 s_fd[2];	/* owned; -1 when not open */
	struct bufferevent	*s_bev;		/* client, during the handshake */
	struct relay		*s_relay;	/* once connected */
	struct udp_assoc	*s_udp;		/* UDP ASSOCIATE */
	uint64_t		 s_packets[2];	/* UDP: datagrams from side i */
	uint32_t		 s_udp_dests;	/* destinations allowed */
	uint32_t		 s_udp_denied;	/* datagrams the policy dropped */
	uint32_t		 s_udp_foreign;	/* from strangers: dropped */
	uint32_t		 s_udp_frag;	/* FRAG != 0: dropped */
	uint64_t		 s_bytes[2];	/* read from side i, relayed */
	uint64_t		 s_rate;	/* bytes/s, both ways, lately */
	uint64_t		 s_rate_prev;
	uint8_t			 s_client_shut;	/* refusal: SHUT_WR sent */
	uint8_t			 s_cmd;
	uint8_t			 s_proto;	/* 5, or 4 for SOCKS4/4a */
	uint8_t			 s_rep;		/* reply to send on failure */
	uint8_t			 s_over_limit;
	uint8_t			 s_pending;	/* counted in pending.c */
	uint8_t			 s_audit_reserved; /* a close record's place */
	uint8_t			 s_first_eof;	/* 1 + the side that ended */
	struct dns_ticket	*s_dns;
	struct event		*s_connect_ev;	/* connect, or bind's accept */
	int			 s_bind_fd;	/* BIND's listener, or -1 */
	int			 s_errno;	/* of the last failure */
	struct sockaddr_storage	*s_cand;	/* connect candidates */
	int			 s_ncand;
	int			 s_icand;
	struct sockaddr_storage	 s_peer;	/* the client */
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
	uint8_t			 s_limit_counted; /* in its user's count */
	struct quota_user	*s_quota;	/* its user's quota count */
	struct capped_relay	*s_capped;	/* relay under a cap */
	struct bw_pool		*s_bw[2];	/* caps: [0] user's, [1] group's */
	uint64_t		 s_quota_grant;	/* bytes it may still relay */
	time_t			 s_quota_granted_at; /* of the last grant */
	struct timespec		 s_auth_sent;
	struct timespec		 s_dns_sent;
	uint8_t			 s_timed;	/* handshake latency observed */
	int64_t			 s_start_ms;	/* wall clock, for the audit */
	uint8_t			 s_audit_open;	/* its start row was queued */
	uint8_t			 s_allowed;	/* the policy said allow */
	struct policy		*s_policy;	/* the snapshot that judged it */
	int64_t			 s_rule_id;	/* the rule that decided */
	char			*s_reason;	/* the policy's reason, if denied */
};

void	 session_accept(struct worker *, int, const struct sockaddr *,
	    socklen_t);
void	 session_refuse(struct session *, uint8_t, const char *);
void	 session_active(struct session *);
void	 session_dst_text(const struct session *, char *, size_t);
void	 session_connected(struct session *, const struct sockaddr *);
int	 session_reply(struct session *, const void *, size_t);
void	 session_authenticated(struct session *, const struct auth_reply *);
void	 session_close(struct session *, const char *);
void	 session_reap(struct worker *);
void	 session_timeout(struct session *);
/* What a handshake handler did: wait for bytes, go on, or stop. */
enum step { STEP_WAIT, STEP_NEXT, STEP_STOP };
void	 session_client_read(struct bufferevent *, void *);
enum step session_begin(struct session *, uint8_t, const char *,
	    const struct sockaddr_storage *, uint16_t, const char *);
void	 session_refuse_bytes(struct session *, const uint8_t *, size_t,
	    const char *);
void	 session_set_state(struct session *, enum session_state);
const char *session_state_name(enum session_state);

/* relay.c */
extern _Atomic int	 relay_pipes;
int	 relay_start(struct session *);
int	 relay_queue(struct session *, int, struct evbuffer *);
void	 relay_free(struct session *);
void	 relay_repool(struct session *, struct bw_pool *[2]);
void	 relay_uncount(struct session *, int, size_t);
void	 relay_settle(struct session *);
void	 relay_quota_end(struct session *, int64_t);

/* resolve.c */
struct resolver;
struct resolver *resolver_new(struct event_base *, const struct conf *,
	    char **);
void	 resolver_retire(struct resolver *);
struct evutil_addrinfo;
typedef void	 resolve_cb(int, struct evutil_addrinfo *, void *);
struct dns_ticket *resolve_lookup(struct worker *, const char *, int,
	    resolve_cb *, void *);
void	 resolve_abandon(struct dns_ticket *);
void	 resolve_start(struct session *);
void	 resolve_cancel(struct session *);

/*
 * authd.c / auth.c: RFC 1929 checks through PAM, in a process of their own.
 * Messages are fixed-size structs over a SOCK_SEQPACKET socketpair per
 * worker, one message per send, keyed by session id (never pointers).
 */
#define AUTH_MAX_GROUPS		32
#define AUTH_GROUP_NAME		64
enum auth_status {
	AUTH_OK,
	AUTH_FAILED,		/* wrong password, unknown user, ... */
	AUTH_REFUSED,		/* account disallowed by the account stack */
	AUTH_LOCKED,		/* too many failures: not asked to PAM */
	AUTH_ERROR,		/* PAM or authd broke */
	AUTH_BUSY,		/* authd's queue had no room, or it expired */
	AUTH_GONE,		/* the proxy's own: authd is not there */
};
/*
 * The channel between a worker and authd carries typed messages (chan.h):
 * a method with several round trips (GSSAPI, Negotiate) is more types
 * under the same session id.
 */
enum auth_msg {
	AUTH_MSG_PASSWORD = 1,	/* worker -> authd: struct auth_request */
	AUTH_MSG_RESULT,	/* authd -> worker: struct auth_reply */
};
struct auth_request {
	uint64_t		 ar_sid;
	char			 ar_client[ADDR_STRLEN];
	char			 ar_user[256];
	char			 ar_pass[256];
};
struct auth_reply {
	uint64_t		 ap_sid;
	uint8_t			 ap_status;
	uint8_t			 ap_ngroups;
	uint32_t		 ap_usec;	/* time authd spent on it */
	char			 ap_groups[AUTH_MAX_GROUPS][AUTH_GROUP_NAME];
	char			 ap_msg[128];
	char			 ap_user[256];	/* PAM_USER: the canonical name */
};
pid_t	 authd_start(const struct conf *, int *, int, char **);
/* authd_pam.c: one login checked (PAM, the cache, NSS groups) */
void	 authd_pam_init(const char *, int);
void	 authd_pam_check(struct auth_request *, struct auth_reply *);

/* authq.c: lock-out and the queue in front of authd's PAM threads */
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
const char *auth_status_str(enum auth_status);
void	 auth_channel_init(struct worker *);
void	 auth_channel_replace(struct worker *, int);
int	 auth_submit(struct session *, const struct s5_userpass *);
void	 auth_forget(struct session *);

/* audit.c, audit_queue.c: the audit log, shipped by a thread of its own */
enum audit_type {
	AR_START,	/* a relayed session began: its row, still open */
	AR_END,		/* it ended: the row is completed and chained */
	AR_WHOLE,	/* a request that never relayed: one complete row */
	AR_AUTH,	/* a failed authentication or a lock-out */
	AR_SKIP,	/* the writer's: a start merged into its end */
};
struct audit_rec {
	uint8_t			 ar_type;
	uint8_t			 ar_allow;
	uint16_t		 ar_client_port;
	uint16_t		 ar_dst_port;
	uint64_t		 ar_sid;
	int64_t			 ar_start_ms;	/* Unix ms */
	int64_t			 ar_end_ms;
	int64_t			 ar_rule;
	int64_t			 ar_seq;	/* the writer's */
	uint64_t		 ar_up;
	uint64_t		 ar_down;
	char			 ar_user[256];
	char			 ar_client[INET6_ADDRSTRLEN];
	char			 ar_cmd[8];
	char			 ar_dst_host[256];
	char			 ar_dst_addr[INET6_ADDRSTRLEN];
	char			 ar_country[3];
	char			 ar_reason[192];
	char			 ar_close[96];
	char			 ar_ident[256];	/* SOCKS4 USERID */
	uint64_t		 ar_packets[2];	/* UDP datagrams up, down */
	uint32_t		 ar_udp_dests;
	uint32_t		 ar_udp_denied;
	uint8_t			 ar_proto;	/* 5 or 4 */
};
int	 audit_init(const struct conf *, int, int, char **);
void	 audit_channel(int);
int	 audit_start(char **);
void	 audit_stop_begin(void);
int	 audit_stopped(void);
void	 audit_stop(void);
int	 audit_enabled(void);
int	 audit_admit(struct session *);
void	 audit_push(const struct audit_rec *, int);
void	 audit_release(struct session *);
int	 audit_offer(const struct audit_rec *);

/* front_socks.c: the SOCKS5 and SOCKS4/4a handshake of one client */
enum step socks_greeting(struct session *);
enum step socks_auth(struct session *);
enum step socks_request(struct session *);

/* session_record.c: what a session leaves: audit, log line, latency */
void	 session_audit(struct session *, enum audit_type, const char *);
void	 session_log_close(struct session *, const char *);
void	 session_observe_handshake(struct session *);

/* control.c: the control socket, and the counters it reports */
extern _Atomic uint64_t	 gw_stats[GW_STAT_MAX];
#define STAT_ADD(k, n)	atomic_fetch_add_explicit(&gw_stats[k], (n), \
			    memory_order_relaxed)
enum control_verb { CV_SESSIONS, CV_KILL, CV_KILL_USER, CV_RELOAD,
	CV_STATS, CV_RULES };
struct control_cmd {
	enum control_verb	 cc_verb;
	uint64_t		 cc_id;
	char			 cc_user[256];
};
int	 control_parse(const char *, size_t, struct control_cmd *,
	    const char **);
struct control_query {
	char			 cq_user[256];
	uint64_t		 cq_id;
	int			 cq_kill;
	char			 cq_admin[64];
	int			 cq_count;
};
struct control_ctx {
	struct worker		*cx_workers;
	int			 cx_nworkers;
	/* NULL, or why it was refused; restart: what waits for one */
	char			*(*cx_reload)(char *restart, size_t);
};
enum hist_kind { HIST_HANDSHAKE, HIST_DNS, HIST_MAX };
#define HIST_BUCKETS	10
struct histogram {
	_Atomic uint64_t	 h_bucket[HIST_BUCKETS];
	_Atomic uint64_t	 h_count;
	_Atomic uint64_t	 h_sum_us;
};
void	 stat_rule(int64_t);
struct rule_hits {
	int64_t		 rh_rule;
	uint64_t	 rh_hits;
	int64_t		 rh_last;	/* Unix seconds */
};
size_t	 stat_rules(struct rule_hits *, size_t);
void	 stat_observe(enum hist_kind, double);
void	 stat_prometheus(FILE *, unsigned, size_t, uint64_t);
void	 procstat_prometheus(FILE *);
int	 metrics_bind(const struct conf *, char **);
void	 metrics_init(const struct conf *, int);
int	 metrics_start(struct event_base *, char **);
void	 metrics_stop(void);
int	 control_init(const struct conf *, char **);
int	 control_start(struct event_base *, struct control_ctx *, char **);
void	 control_stop(void);
void	 control_answer(struct worker *);
size_t	 audit_queue_depth(void);
uint64_t audit_records_lost(void);

/* listen.c: the listening sockets, [worker][listen address] */
int	 listeners_open(const struct conf *, int, int *, char **);

/* parent.c: the privileged parent, supervising authd and the proxy */
#define PARENT_MSG_READY	"ready"
#define PARENT_MSG_RELOADED	"reloaded"	/* after a SIGHUP */
#define PARENT_MSG_REFUSED	"reload-refused"	/* the same, refused */
#define PARENT_MSG_SESSIONS	"sessions"	/* "sessions N": open now */
#define PARENT_MSG_AUTHD	"authd"
#define PARENT_MSG_AUDITD	"auditd"
/* What the parent hands each proxy it starts. */
struct proxy_args {
	int		*px_listen;	/* [worker][listen], bound as root */
	int		 px_metrics;	/* metrics_listen's, or -1 */
	int		*px_auth;	/* authd's channels, one a worker */
	int		 px_audit;	/* auditd's channel, or -1 */
	int		 px_ctl;	/* to the parent */
	int		 px_restarted;
};
typedef int	 proxy_main_fn(struct conf *, struct proxy_args *);
int	 parent_run(struct conf *, int, int *, int, proxy_main_fn *);

/* runtime.c: the runtime folder and the one-instance lock */
const char *runtime_dir(const struct conf *, char *, size_t);
/* privsep.c: what a child of the parent gives up */
void	 privsep_close_all_but(const int *, int);
void	 privsep_drop(const char *, const char *, const char *);
int	 privsep_same_account(const char *, const char *);
int	 runtime_lock(const struct conf *, char **);
void	 runtime_lock_close(void);
int	 runtime_lock_descriptor(void);

/* pending.c: sockets still in their handshake, per client */
int	 pending_enter(const struct sockaddr_storage *, unsigned);
void	 pending_leave(const struct sockaddr_storage *);
unsigned handshake_cap(const struct conf *);

/* limits.c: per-user limits on live sessions */
int	 limits_admit(struct session *, const char **);
void	 limits_release(struct session *);

/* bandwidth.c, relay_capped.c: caps shared by sessions */
struct bufferevent_rate_limit_group;
int	 bandwidth_start(char **);
void	 bandwidth_stop(void);
int	 bandwidth_join(struct session *);
void	 bandwidth_leave(struct session *);
void	 bandwidth_recheck(struct session *);
struct bufferevent_rate_limit_group *bandwidth_group(struct session *, int);
int	 capped_start(struct session *);
int	 capped_queue(struct session *, int, struct evbuffer *);
void	 capped_free(struct session *);
void	 capped_repool(struct session *, struct bw_pool *[2]);
void	 capped_quota_end(struct session *, int64_t);
void	 capped_settle(struct session *);
int	 capped_draining(const struct session *);

/* quota.c: byte quotas per user and period */
struct sqlite3;
int	 quota_admit(struct session *);
size_t	 quota_take(struct session *, size_t);
void	 quota_unspend(struct session *, size_t);
int	 quota_exhausted(const struct session *);
void	 quota_release(struct session *);
struct am_usage;
void	 quota_persisted_on(void);
void	 quota_load_row(const struct am_usage *, time_t);
size_t	 quota_collect_usage(struct am_usage **, time_t);
int	 quota_unsaved(void);
struct policy_quota;
int	 quota_account_admit(const char *, const struct policy_quota *, time_t,
	    struct quota_user **);
uint64_t quota_account_grant(struct quota_user *, const struct policy_quota *,
	    uint64_t, time_t);
void	 quota_account_release(struct quota_user *, uint64_t, time_t);
uint64_t quota_account_used(struct quota_user *, int);

/* session_req.c, verdict.c: asking the policy about a session */
void	 session_policy_req(const struct session *, const struct sockaddr *,
	    struct policy_req *);
int	 verdict_name(struct session *);
int	 verdict_udp(struct session *, const char *,
	    const struct sockaddr *, uint16_t);
int	 verdict_address(struct session *, const struct sockaddr *);
int	 verdict_recheck(struct session *, struct policy *);
int	 verdict_udp_association(struct session *, struct policy *);

/* udp.c */
enum step udp_begin(struct session *, const char *,
	    const struct sockaddr_storage *);
int	 udp_start(struct session *, uint16_t);
void	 udp_free(struct session *);
void	 udp_policy_changed(struct session *);

/* bind.c */
int	 bind_start(struct session *);
void	 bind_cancel(struct session *);

/* connect.c */
void	 connect_next(struct session *);
void	 connect_cancel(struct session *);
uint8_t	 connect_errno_to_rep(int);

#endif /* GATEWAYD_H */
