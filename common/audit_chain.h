/*
 * audit_chain.h: an audit row as its hash covers it, the chain hash, and
 * the hourly rollups; auditd writes them, socksctl verifies and reports.
 */
#ifndef AUDIT_CHAIN_H
#define AUDIT_CHAIN_H

#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;

/* A completed record's fields as they are hashed (NULL: SQL NULL). */
struct audit_fields {
	int64_t			 af_seq;
	const char		*af_kind;
	int64_t			 af_session_id;
	int64_t			 af_start_ms;
	int64_t			 af_end_ms;
	const char		*af_user;
	const char		*af_client_addr;
	int64_t			 af_client_port;
	const char		*af_command;
	const char		*af_dst_host;
	const char		*af_dst_addr;
	int64_t			 af_dst_port;	/* -1: NULL */
	const char		*af_dst_country;
	const char		*af_verdict;
	int64_t			 af_rule_id;
	const char		*af_reason;
	int64_t			 af_bytes_up;
	int64_t			 af_bytes_down;
	const char		*af_close_reason;
	const char		*af_protocol;
	const char		*af_ident;
	int64_t			 af_packets_up;
	int64_t			 af_packets_down;
	int64_t			 af_udp_dests;
	int64_t			 af_udp_denied;
	/* NULL in records older than the field: then not hashed at all */
	const char		*af_auth_method;
	const char		*af_node;	/* audit schema 9 */
};

/* A completed row's columns as the chain covers them (seq 19, hash 20). */
#define AUDIT_ROW_COLUMNS "id, kind, session_id, start_ms, end_ms, user, " \
	"client_addr, client_port, command, dst_host, dst_addr, dst_port, " \
	"dst_country, verdict, rule_id, reason, bytes_up, bytes_down, " \
	"close_reason, seq, hash, protocol, ident, packets_up, packets_down, " \
	"udp_destinations, udp_denied, auth_method, node"

int	 audit_chain_hash(void *, const unsigned char [32],
	    const struct audit_fields *, unsigned char [32]);
void	 audit_fields_row(struct sqlite3_stmt *, struct audit_fields *);
int64_t	 audit_rollup(struct sqlite3 *, int64_t, char **);

#endif
