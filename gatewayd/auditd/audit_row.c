/*
 * audit_row.c: an audit record as the writer stores it: its columns bound
 * by name to the writer's statements (seq and hash are the writer's), its
 * fields
 * as the hash chain covers them, and a batch's starts folded into their
 * ends. Pure functions of the record: audit_store.c does the writing.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "conf.h"

#include "audit_chain.h"

#include "audit.h"
#include "auditd.h"

/*
 * The columns of records the writer fills. Its statements are built from
 * this table and name each parameter by its column (":user"); where each
 * one landed in a statement is looked up once, when it is prepared.
 */
static const char *const audit_col_names[AC_MAX] = {
	[AC_KIND] = "kind",
	[AC_SESSION_ID] = "session_id",
	[AC_START_MS] = "start_ms",
	[AC_END_MS] = "end_ms",
	[AC_USER] = "user",
	[AC_CLIENT_ADDR] = "client_addr",
	[AC_CLIENT_PORT] = "client_port",
	[AC_COMMAND] = "command",
	[AC_DST_HOST] = "dst_host",
	[AC_DST_ADDR] = "dst_addr",
	[AC_DST_PORT] = "dst_port",
	[AC_DST_COUNTRY] = "dst_country",
	[AC_VERDICT] = "verdict",
	[AC_RULE_ID] = "rule_id",
	[AC_REASON] = "reason",
	[AC_BYTES_UP] = "bytes_up",
	[AC_BYTES_DOWN] = "bytes_down",
	[AC_CLOSE_REASON] = "close_reason",
	[AC_PROTOCOL] = "protocol",
	[AC_IDENT] = "ident",
	[AC_PACKETS_UP] = "packets_up",
	[AC_PACKETS_DOWN] = "packets_down",
	[AC_UDP_DESTINATIONS] = "udp_destinations",
	[AC_UDP_DENIED] = "udp_denied",
	[AC_AUTH_METHOD] = "auth_method",
	[AC_NODE] = "node",
	[AC_SEQ] = "seq",
	[AC_HASH] = "hash",
};

/*
 * The node every record of this writer names (node_name): one per
 * process, set before the first record, never from a record.
 */
static char	 audit_node[GW_NODE_NAME_MAX + 1];

void
audit_set_node(const char *name)
{
	snprintf(audit_node, sizeof(audit_node), "%s", name);
}

/*
 * The writer's three statements: a start row (no seq, no hash), a whole
 * row, and the close of a start row, which sets every column the hash
 * covers (the start row's too: what is stored is what was hashed).
 */
int
audit_stmt_prepare(sqlite3 *db, struct audit_stmt *as, enum audit_stmt_kind k)
{
	char	 cols[1024], vals[1024], sql[2560];
	size_t	 nc = 0, nv = 0;
	int	 c, n;

	cols[0] = vals[0] = '\0';
	for (c = AC_KIND; c < AC_MAX; c++) {
		if (k == AS_START && (c == AC_SEQ || c == AC_HASH))
			continue;
		if (k == AS_FINISH && (c == AC_KIND || c == AC_SESSION_ID))
			continue;
		n = snprintf(cols + nc, sizeof(cols) - nc, "%s%s", nc ? ", " :
		    "", audit_col_names[c]);
		if (n < 0 || (size_t)n >= sizeof(cols) - nc)
			return (-1);
		nc += (size_t)n;
		n = k == AS_FINISH ?
		    snprintf(vals + nv, sizeof(vals) - nv, "%s%s = :%s",
		    nv ? ", " : "", audit_col_names[c], audit_col_names[c]) :
		    snprintf(vals + nv, sizeof(vals) - nv, "%s:%s", nv ? ", " :
		    "", audit_col_names[c]);
		if (n < 0 || (size_t)n >= sizeof(vals) - nv)
			return (-1);
		nv += (size_t)n;
	}
	if (k == AS_FINISH)
		n = snprintf(sql, sizeof(sql), "UPDATE records SET %s WHERE "
		    "session_id = :session_id AND seq IS NULL", vals);
	else
		n = snprintf(sql, sizeof(sql), "INSERT INTO records (%s) "
		    "VALUES (%s)", cols, vals);
	if (n < 0 || (size_t)n >= sizeof(sql) ||
	    sqlite3_prepare_v2(db, sql, -1, &as->as_st, NULL) != SQLITE_OK)
		return (-1);
	/*
	 * Every column the statement is meant to hold has its parameter: one
	 * left out of the close would keep the start's value under a hash of
	 * the end's.
	 */
	for (c = AC_KIND; c < AC_MAX; c++) {
		snprintf(sql, sizeof(sql), ":%s", audit_col_names[c]);
		as->as_param[c] = sqlite3_bind_parameter_index(as->as_st, sql);
		if (as->as_param[c] == 0 && !(k == AS_FINISH && c == AC_KIND) &&
		    !(k == AS_START && (c == AC_SEQ || c == AC_HASH))) {
			sqlite3_finalize(as->as_st);
			as->as_st = NULL;
			return (-1);
		}
	}
	return (0);
}

/* Parameter 0 (a column the statement lacks) binds nothing. */
static void
audit_bind_text(const struct audit_stmt *as, enum audit_col c, const char *s)
{
	if (s == NULL || s[0] == '\0')
		sqlite3_bind_null(as->as_st, as->as_param[c]);
	else
		sqlite3_bind_text(as->as_st, as->as_param[c], s, -1,
		    SQLITE_STATIC);
}

static void
audit_bind_int(const struct audit_stmt *as, enum audit_col c, int64_t v)
{
	sqlite3_bind_int64(as->as_st, as->as_param[c], v);
}

/* Binds every column of a record but seq and hash (audit_bind_link). */
void
audit_bind(const struct audit_stmt *as, const struct audit_rec *r)
{
	sqlite3_stmt	*st = as->as_st;

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	audit_bind_text(as, AC_KIND, r->ar_type == AR_AUTH ? "auth" :
	    "session");
	audit_bind_int(as, AC_SESSION_ID, (int64_t)r->ar_sid);
	audit_bind_int(as, AC_START_MS, r->ar_start_ms);
	if (r->ar_type != AR_START)
		audit_bind_int(as, AC_END_MS, r->ar_end_ms);
	audit_bind_text(as, AC_USER, r->ar_user);
	sqlite3_bind_text(st, as->as_param[AC_CLIENT_ADDR], r->ar_client, -1,
	    SQLITE_STATIC);
	audit_bind_int(as, AC_CLIENT_PORT, r->ar_client_port);
	audit_bind_text(as, AC_COMMAND, r->ar_cmd);
	audit_bind_text(as, AC_DST_HOST, r->ar_dst_host);
	audit_bind_text(as, AC_DST_ADDR, r->ar_dst_addr);
	if (r->ar_dst_port)
		audit_bind_int(as, AC_DST_PORT, r->ar_dst_port);
	audit_bind_text(as, AC_DST_COUNTRY, r->ar_country);
	audit_bind_text(as, AC_VERDICT, r->ar_allow ? "allow" : "deny");
	audit_bind_int(as, AC_RULE_ID, r->ar_rule);
	sqlite3_bind_text(st, as->as_param[AC_REASON], r->ar_reason, -1,
	    SQLITE_STATIC);
	audit_bind_int(as, AC_BYTES_UP, (int64_t)r->ar_up);
	audit_bind_int(as, AC_BYTES_DOWN, (int64_t)r->ar_down);
	audit_bind_text(as, AC_CLOSE_REASON, r->ar_close);
	audit_bind_text(as, AC_PROTOCOL, audit_protocol_name(r->ar_proto));
	audit_bind_text(as, AC_IDENT, r->ar_ident);
	audit_bind_int(as, AC_PACKETS_UP, (int64_t)r->ar_packets[0]);
	audit_bind_int(as, AC_PACKETS_DOWN, (int64_t)r->ar_packets[1]);
	audit_bind_int(as, AC_UDP_DESTINATIONS, r->ar_udp_dests);
	audit_bind_int(as, AC_UDP_DENIED, r->ar_udp_denied);
	audit_bind_text(as, AC_AUTH_METHOD, audit_auth_name(r->ar_auth));
	audit_bind_text(as, AC_NODE, audit_node);
}

/* The record's place in the chain: its seq and hash. */
void
audit_bind_link(const struct audit_stmt *as, int64_t seq,
    const uint8_t hash[32])
{
	audit_bind_int(as, AC_SEQ, seq);
	sqlite3_bind_blob(as->as_st, as->as_param[AC_HASH], hash, 32,
	    SQLITE_STATIC);
}

/*
 * A session that starts and ends within one batch needs one row, not an
 * insert and an update: its start is dropped and its end written whole.
 * Most sessions are that short, so this halves the writer's work.
 */
void
audit_coalesce(struct audit_rec *batch, size_t n)
{
	static uint32_t	 slots[2 * AUDIT_BATCH];	/* index + 1 of a START */
	size_t		 mask = 2 * AUDIT_BATCH - 1, i, h;

	memset(slots, 0, sizeof(slots));
	for (i = 0; i < n; i++) {
		h = (size_t)(batch[i].ar_sid * 0x9e3779b97f4a7c15ULL >> 40) &
		    mask;
		if (batch[i].ar_type == AR_START) {
			while (slots[h] != 0)
				h = (h + 1) & mask;
			slots[h] = (uint32_t)i + 1;
			continue;
		}
		if (batch[i].ar_type != AR_END)
			continue;
		for (; slots[h] != 0; h = (h + 1) & mask) {
			if (batch[slots[h] - 1].ar_sid != batch[i].ar_sid)
				continue;
			batch[slots[h] - 1].ar_type = AR_SKIP;
			batch[i].ar_type = AR_WHOLE;
			break;
		}
	}
}

static const struct {
	uint8_t		 proto;
	const char	*name;
} audit_protocols[] = {
	{ AUDIT_PROTO_SOCKS5, "socks5" },	/* first: the default */
	{ AUDIT_PROTO_SOCKS4, "socks4" },
	{ AUDIT_PROTO_HTTP, "http" },
};

static const char *const audit_auths[] = {
	[AUDIT_AUTH_UNKNOWN] = NULL,
	[AUDIT_AUTH_NONE] = "none",
	[AUDIT_AUTH_PASSWORD] = "password",
	[AUDIT_AUTH_BASIC] = "basic",
	[AUDIT_AUTH_NEGOTIATE] = "negotiate",
	[AUDIT_AUTH_GSSAPI] = "gssapi",
};

/* The name of a login method; NULL (stored as NULL) for UNKNOWN. */
const char *
audit_auth_name(uint8_t auth)
{
	return (auth < sizeof(audit_auths) / sizeof(audit_auths[0]) ?
	    audit_auths[auth] : NULL);
}

uint8_t
audit_auth_of(const char *name)
{
	uint8_t	 i;

	for (i = 1; name != NULL && i < sizeof(audit_auths) /
	    sizeof(audit_auths[0]); i++)
		if (strcmp(audit_auths[i], name) == 0)
			return (i);
	return (AUDIT_AUTH_UNKNOWN);
}

/* The name of a protocol; anything unknown reads as SOCKS5. */
const char *
audit_protocol_name(uint8_t proto)
{
	size_t	 i;

	for (i = 0; i < sizeof(audit_protocols) / sizeof(audit_protocols[0]);
	    i++)
		if (audit_protocols[i].proto == proto)
			return (audit_protocols[i].name);
	return (audit_protocols[0].name);
}

uint8_t
audit_protocol_of(const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < sizeof(audit_protocols) /
	    sizeof(audit_protocols[0]); i++)
		if (strcmp(audit_protocols[i].name, name) == 0)
			return (audit_protocols[i].proto);
	return (audit_protocols[0].proto);
}

static const char *
nz(const char *s)
{
	return (s[0] != '\0' ? s : NULL);
}

void
audit_fields_of(const struct audit_rec *r, int64_t seq, struct audit_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->af_seq = seq;
	f->af_kind = r->ar_type == AR_AUTH ? "auth" : "session";
	f->af_session_id = (int64_t)r->ar_sid;
	f->af_start_ms = r->ar_start_ms;
	f->af_end_ms = r->ar_end_ms;
	f->af_user = nz(r->ar_user);
	f->af_client_addr = r->ar_client;
	f->af_client_port = r->ar_client_port;
	f->af_command = nz(r->ar_cmd);
	f->af_dst_host = nz(r->ar_dst_host);
	f->af_dst_addr = nz(r->ar_dst_addr);
	f->af_dst_port = r->ar_dst_port ? r->ar_dst_port : -1;
	f->af_dst_country = nz(r->ar_country);
	f->af_verdict = r->ar_allow ? "allow" : "deny";
	f->af_rule_id = r->ar_rule;
	f->af_reason = r->ar_reason;
	f->af_bytes_up = (int64_t)r->ar_up;
	f->af_bytes_down = (int64_t)r->ar_down;
	f->af_close_reason = nz(r->ar_close);
	f->af_protocol = audit_protocol_name(r->ar_proto);
	f->af_ident = nz(r->ar_ident);
	f->af_packets_up = (int64_t)r->ar_packets[0];
	f->af_packets_down = (int64_t)r->ar_packets[1];
	f->af_udp_dests = r->ar_udp_dests;
	f->af_udp_denied = r->ar_udp_denied;
	f->af_auth_method = audit_auth_name(r->ar_auth);
	f->af_node = audit_node;
}

