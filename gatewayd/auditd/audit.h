/*
 * audit.h: the proxy's side of the audit log: the ring workers put
 * records in, with a reserved place for every admitted session's close
 * (audit_queue.c), and the shipper thread that sends them to auditd
 * (audit.c). auditd's own files are the rest of auditd/.
 */
#ifndef AUDIT_H
#define AUDIT_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

struct conf;
struct session;

/* Session ids: start time in seconds << GW_SID_SHIFT, counting up. */
extern _Atomic uint64_t	 gw_next_sid;
#define GW_SID_SHIFT	21

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
	uint8_t			 ar_proto;	/* AUDIT_PROTO_* */
	uint8_t			 ar_auth;	/* AUDIT_AUTH_* */
};
/* The client's protocol, in ar_proto; its name in the audit log. */
#define AUDIT_PROTO_SOCKS5	5
#define AUDIT_PROTO_SOCKS4	4
#define AUDIT_PROTO_HTTP	1
const char *audit_protocol_name(uint8_t);
uint8_t	 audit_protocol_of(const char *);
/*
 * How the client logged in, in ar_auth (and a session's s_login); its name
 * in the audit log. UNKNOWN (NULL) is a record from before the field, or
 * one no login applies to (a summary of refusals).
 */
#define AUDIT_AUTH_UNKNOWN	0
#define AUDIT_AUTH_NONE		1	/* auth none, SOCKS4 */
#define AUDIT_AUTH_PASSWORD	2	/* SOCKS5 username/password */
#define AUDIT_AUTH_BASIC	3	/* HTTP Basic */
#define AUDIT_AUTH_NEGOTIATE	4	/* HTTP Negotiate (Kerberos) */
#define AUDIT_AUTH_GSSAPI	5	/* SOCKS5 GSSAPI (RFC 1961, Kerberos) */
const char *audit_auth_name(uint8_t);
uint8_t	 audit_auth_of(const char *);
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
size_t	 audit_queue_depth(void);
struct ship_status;
void	 audit_central_status(struct ship_status *);
int	 audit_central_json(char *, size_t);
void	 audit_central_prometheus(FILE *);
uint64_t audit_records_lost(void);

#endif /* AUDIT_H */
