/*
 * audit_row.c: an audit record as the writer stores it: its columns bound
 * to the INSERT (?20 and ?21, seq and hash, are the writer's), its fields
 * as the hash chain covers them, and a batch's starts folded into their
 * ends. Pure functions of the record: audit_store.c does the writing.
 */
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "audit_chain.h"

#include "audit.h"
#include "auditd.h"

static void
audit_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL || s[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Binds every column of a record; ?20 and ?21 are seq and hash. */
void
audit_bind(sqlite3_stmt *st, const struct audit_rec *r)
{
	sqlite3_bind_text(st, 1, r->ar_type == AR_AUTH ? "auth" : "session",
	    -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)r->ar_sid);
	sqlite3_bind_int64(st, 3, r->ar_start_ms);
	if (r->ar_type == AR_START)
		sqlite3_bind_null(st, 4);
	else
		sqlite3_bind_int64(st, 4, r->ar_end_ms);
	audit_bind_text(st, 5, r->ar_user);
	sqlite3_bind_text(st, 6, r->ar_client, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 7, r->ar_client_port);
	audit_bind_text(st, 8, r->ar_cmd);
	audit_bind_text(st, 9, r->ar_dst_host);
	audit_bind_text(st, 10, r->ar_dst_addr);
	if (r->ar_dst_port)
		sqlite3_bind_int(st, 11, r->ar_dst_port);
	else
		sqlite3_bind_null(st, 11);
	audit_bind_text(st, 12, r->ar_country);
	sqlite3_bind_text(st, 13, r->ar_allow ? "allow" : "deny", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, 14, r->ar_rule);
	sqlite3_bind_text(st, 15, r->ar_reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 16, (int64_t)r->ar_up);
	sqlite3_bind_int64(st, 17, (int64_t)r->ar_down);
	audit_bind_text(st, 18, r->ar_close);
	sqlite3_bind_text(st, 19, r->ar_proto == 4 ? "socks4" : "socks5", -1,
	    SQLITE_STATIC);
	audit_bind_text(st, 22, r->ar_ident);
	sqlite3_bind_int64(st, 23, (int64_t)r->ar_packets[0]);
	sqlite3_bind_int64(st, 24, (int64_t)r->ar_packets[1]);
	sqlite3_bind_int64(st, 25, r->ar_udp_dests);
	sqlite3_bind_int64(st, 26, r->ar_udp_denied);
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
	f->af_protocol = r->ar_proto == 4 ? "socks4" : "socks5";
	f->af_ident = nz(r->ar_ident);
	f->af_packets_up = (int64_t)r->ar_packets[0];
	f->af_packets_down = (int64_t)r->ar_packets[1];
	f->af_udp_dests = r->ar_udp_dests;
	f->af_udp_denied = r->ar_udp_denied;
}

