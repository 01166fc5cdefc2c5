/*
 * audit.c: the audit log, written by a thread of its own.
 *
 * DESIGN. Workers never touch the database: they put fixed-size records
 * in a bounded queue and go on. The writer thread owns the SQLite
 * connection (WAL mode, so socksctl's reads never block it), reuses its
 * prepared statements, and commits in batches: whenever 512 records are
 * waiting, and at least every 200 ms, so a kill -9 loses at most the
 * records of the last 200 ms (plus one commit). A relayed session gets its
 * row when the relay starts and completes it at the end, so even a crash
 * leaves a trace of who was connected; every other request is one
 * complete row.
 *
 * Each completed row takes the next place (seq) in a hash chain: its hash
 * is SHA-256 over the previous hash and its own fields (audit_chain_hash),
 * so an edited, inserted or deleted row shows in `socksctl audit verify`.
 * Pruning (audit_retention_days) removes the oldest part of the chain in
 * small steps and keeps its last hash as the anchor.
 *
 * When records cannot be written (disk full, locked too long, queue full),
 * `audit_failure block` refuses new sessions until writing works again;
 * the failed batch is kept and retried every second, so nothing already
 * queued is lost. `audit_failure allow` keeps serving and counts, loudly,
 * the records it had to drop.
 *
 * The database is opened, migrated and put in WAL mode while gatewayd is
 * still root, so the -wal and -shm files exist before the privilege drop;
 * the connection stays open for the writer.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "gatewayd.h"
#include "policy.h"

#define AUDIT_BATCH		4096
#define AUDIT_INTERVAL_MS	200
#define AUDIT_RETRY_MS		1000
#define AUDIT_PRUNE_STEP	500
#define AUDIT_PRUNE_EVERY_MS	10000
#define AUDIT_USAGE_EVERY_MS	1000	/* quota usage written (quota.c) */
#define AUDIT_ROLLUP_STEP	20000
#define AUDIT_ROLLUP_EVERY_MS	1000
#define AUDIT_CHECKPOINT_RECORDS 10000	/* a signed checkpoint at least */
#define AUDIT_CHECKPOINT_MS	60000	/* ... this often */

static struct {
	pthread_mutex_t		 au_lock;
	pthread_cond_t		 au_cond;
	struct audit_rec	*au_ring;
	size_t			 au_cap, au_head, au_len;
	size_t			 au_reserved;	/* close records owed */
	size_t			 au_wake;	/* queue fill that wakes the writer */
	uint64_t		 au_summarised;	/* not written one by one */
	int64_t			 au_summary_from;	/* Unix ms */
	int			 au_stop;
	pthread_t		 au_thread;
	int			 au_running;
	_Atomic int		 au_healthy;
	_Atomic uint64_t	 au_lost;	/* audit_failure allow */
	int			 au_block;	/* audit_failure block */
	int			 au_retention_days;
	sqlite3			*au_db;
	sqlite3_stmt		*au_start, *au_finish, *au_insert;
	int64_t			 au_seq;
	uint64_t		 au_last_sid;	/* highest session id at start */
	unsigned char		 au_hash[32];
	int			 au_syslog_fd;
	EVP_MD_CTX		*au_md;
	struct sockaddr_un	 au_syslog;
	EVP_PKEY		*au_key;	/* signs checkpoints */
	int64_t			 au_cp_seq;	/* the last signed head */
	int64_t			 au_cp_at;	/* monotonic ms */
	int			 au_syslog_pen;
	int			 au_syslog_failing;
	char			 au_host[64];
} au = { .au_lock = PTHREAD_MUTEX_INITIALIZER,
	 .au_cond = PTHREAD_COND_INITIALIZER, .au_healthy = 1,
	 .au_syslog_fd = -1 };

static int64_t	audit_clock_ms(clockid_t);

/*
 * Session ids, shared with session.c: gatewayd.c sets the first past the
 * highest on record, so ids never repeat in the log (summary rows too).
 */
_Atomic uint64_t	 gw_next_sid;

/* The chain ------------------------------------------------------------- */

static void
chain_put(EVP_MD_CTX *ctx, const char *s)
{
	unsigned char	 len[4];
	size_t		 n = s ? strlen(s) : 0;

	/* Length-prefixed, NULL distinct from "": no two rows collide. */
	if (s == NULL)
		memset(len, 0xff, 4);
	else {
		len[0] = (unsigned char)(n >> 24);
		len[1] = (unsigned char)(n >> 16);
		len[2] = (unsigned char)(n >> 8);
		len[3] = (unsigned char)n;
	}
	EVP_DigestUpdate(ctx, len, 4);
	if (n > 0)
		EVP_DigestUpdate(ctx, s, n);
}

static void
chain_put_int(EVP_MD_CTX *ctx, int64_t v, int is_null)
{
	char		 buf[24], *p = buf + sizeof(buf) - 1;
	uint64_t	 u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	if (is_null) {
		chain_put(ctx, NULL);
		return;
	}
	/* Decimal, as printf would write it; this runs for every field. */
	*p = '\0';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	chain_put(ctx, p);
}

/* SHA-256 over prev and the fields of a completed record. */
int
audit_chain_hash(void *reuse, const unsigned char prev[32],
    const struct audit_fields *f, unsigned char out[32])
{
	EVP_MD_CTX	*ctx = reuse;
	unsigned int	 len = 32;
	int		 ok;

	/* The writer keeps one context; a one-off call makes its own. */
	if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
		return (-1);
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	EVP_DigestUpdate(ctx, prev, 32);
	chain_put_int(ctx, f->af_seq, 0);
	chain_put(ctx, f->af_kind);
	chain_put_int(ctx, f->af_session_id, 0);
	chain_put_int(ctx, f->af_start_ms, 0);
	chain_put_int(ctx, f->af_end_ms, 0);
	chain_put(ctx, f->af_user);
	chain_put(ctx, f->af_client_addr);
	chain_put_int(ctx, f->af_client_port, 0);
	chain_put(ctx, f->af_command);
	chain_put(ctx, f->af_dst_host);
	chain_put(ctx, f->af_dst_addr);
	chain_put_int(ctx, f->af_dst_port, f->af_dst_port < 0);
	chain_put(ctx, f->af_dst_country);
	chain_put(ctx, f->af_verdict);
	chain_put_int(ctx, f->af_rule_id, 0);
	chain_put(ctx, f->af_reason);
	chain_put_int(ctx, f->af_bytes_up, 0);
	chain_put_int(ctx, f->af_bytes_down, 0);
	chain_put(ctx, f->af_close_reason);
	chain_put(ctx, f->af_protocol);
	chain_put(ctx, f->af_ident);
	chain_put_int(ctx, f->af_packets_up, 0);
	chain_put_int(ctx, f->af_packets_down, 0);
	chain_put_int(ctx, f->af_udp_dests, 0);
	chain_put_int(ctx, f->af_udp_denied, 0);
	ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1;
	if (reuse == NULL)
		EVP_MD_CTX_free(ctx);
	return (ok ? 0 : -1);
}

static const char *
nz(const char *s)
{
	return (s[0] != '\0' ? s : NULL);
}

static void
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

/*
 * A completed row as AUDIT_ROW_COLUMNS selects it, as its hash covers it
 * (socksctl audit verify and the writer's own check before pruning).
 */
void
audit_fields_row(sqlite3_stmt *st, struct audit_fields *f)
{
	memset(f, 0, sizeof(*f));
	f->af_seq = sqlite3_column_int64(st, 19);
	f->af_kind = (const char *)sqlite3_column_text(st, 1);
	f->af_session_id = sqlite3_column_int64(st, 2);
	f->af_start_ms = sqlite3_column_int64(st, 3);
	f->af_end_ms = sqlite3_column_int64(st, 4);
	f->af_user = (const char *)sqlite3_column_text(st, 5);
	f->af_client_addr = (const char *)sqlite3_column_text(st, 6);
	f->af_client_port = sqlite3_column_int64(st, 7);
	f->af_command = (const char *)sqlite3_column_text(st, 8);
	f->af_dst_host = (const char *)sqlite3_column_text(st, 9);
	f->af_dst_addr = (const char *)sqlite3_column_text(st, 10);
	f->af_dst_port = sqlite3_column_type(st, 11) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(st, 11);
	f->af_dst_country = (const char *)sqlite3_column_text(st, 12);
	f->af_verdict = (const char *)sqlite3_column_text(st, 13);
	f->af_rule_id = sqlite3_column_int64(st, 14);
	f->af_reason = (const char *)sqlite3_column_text(st, 15);
	f->af_bytes_up = sqlite3_column_int64(st, 16);
	f->af_bytes_down = sqlite3_column_int64(st, 17);
	f->af_close_reason = (const char *)sqlite3_column_text(st, 18);
	f->af_protocol = (const char *)sqlite3_column_text(st, 21);
	f->af_ident = (const char *)sqlite3_column_text(st, 22);
	f->af_packets_up = sqlite3_column_int64(st, 23);
	f->af_packets_down = sqlite3_column_int64(st, 24);
	f->af_udp_dests = sqlite3_column_int64(st, 25);
	f->af_udp_denied = sqlite3_column_int64(st, 26);
}

/* The queue -------------------------------------------------------------- */

/*
 * Whether a new session may start. With audit_failure block, admission
 * reserves a place in the queue for the session's close record, so that
 * record can always be queued: nothing that was admitted goes unrecorded,
 * at any audit_queue. max_sessions is kept within the queue (conf.c), so
 * the reserve is never what refuses a session; an unhealthy writer is.
 */
int
audit_admit(struct session *s)
{
	int	 ok;

	if (au.au_ring == NULL || !au.au_block)
		return (1);
	pthread_mutex_lock(&au.au_lock);
	ok = au.au_healthy && au.au_len + au.au_reserved + 1 < au.au_cap;
	if (ok) {
		/* Its start record (a relayed session) and its close. */
		au.au_reserved += 2;
		s->s_audit_reserved = 2;
	}
	pthread_mutex_unlock(&au.au_lock);
	return (ok);
}

size_t
audit_queue_depth(void)
{
	size_t	 n;

	pthread_mutex_lock(&au.au_lock);
	n = au.au_len;
	pthread_mutex_unlock(&au.au_lock);
	return (n);
}

int
audit_enabled(void)
{
	return (au.au_ring != NULL);
}

/* Under au_lock: appends r; wakes the writer once the queue fills. */
static void
audit_append(const struct audit_rec *r)
{
	au.au_ring[(au.au_head + au.au_len) % au.au_cap] = *r;
	if (++au.au_len >= au.au_wake)
		pthread_cond_signal(&au.au_cond);
}

/*
 * Queues r: with reserved, in the place its session's admission kept
 * (always room); otherwise only where no reserved place is needed, or it
 * is counted for a summary row (audit_failure block) or as lost (allow).
 * Refusals and failed logins so never take a close record's place.
 */
void
audit_push(const struct audit_rec *r, int reserved)
{
	pthread_mutex_lock(&au.au_lock);
	if (reserved && au.au_reserved > 0) {
		au.au_reserved--;		/* one of the session's places */
		audit_append(r);
		pthread_mutex_unlock(&au.au_lock);
		return;
	}
	if (au.au_len + au.au_reserved < au.au_cap) {
		audit_append(r);
		pthread_mutex_unlock(&au.au_lock);
		return;
	}
	if (au.au_block) {
		if (au.au_summarised++ == 0)
			au.au_summary_from = r->ar_end_ms;
		pthread_mutex_unlock(&au.au_lock);
		return;
	}
	pthread_mutex_unlock(&au.au_lock);
	if (atomic_fetch_add(&au.au_lost, 1) % 1000 == 0)
		log_warnx("audit: queue full, records lost so far: %llu",
		    (unsigned long long)au.au_lost);
}

/* Queues r if there is room beyond the reserve: 0, or -1 (the bench). */
int
audit_offer(const struct audit_rec *r)
{
	int	 ok;

	pthread_mutex_lock(&au.au_lock);
	if ((ok = au.au_len + au.au_reserved < au.au_cap))
		audit_append(r);
	pthread_mutex_unlock(&au.au_lock);
	return (ok ? 0 : -1);
}

/* A session that was admitted but writes no close record gives it back. */
void
audit_release(struct session *s)
{
	if (!s->s_audit_reserved)
		return;
	pthread_mutex_lock(&au.au_lock);
	au.au_reserved -= s->s_audit_reserved;
	pthread_mutex_unlock(&au.au_lock);
	s->s_audit_reserved = 0;
}

/*
 * The records that found no room one by one (refusals, failed logins
 * while the queue was full) become one row, so the log says how many and
 * when: kind session, verdict deny, close reason "summary".
 */
static int
audit_summary(struct audit_rec *r)
{
	uint64_t	 n;
	int64_t		 from;

	pthread_mutex_lock(&au.au_lock);
	n = au.au_summarised;
	from = au.au_summary_from;
	au.au_summarised = 0;
	pthread_mutex_unlock(&au.au_lock);
	if (n == 0)
		return (0);
	memset(r, 0, sizeof(*r));
	r->ar_type = AR_WHOLE;
	r->ar_sid = atomic_fetch_add(&gw_next_sid, 1);
	r->ar_start_ms = from;
	r->ar_end_ms = audit_clock_ms(CLOCK_REALTIME);
	r->ar_proto = 5;
	snprintf(r->ar_client, sizeof(r->ar_client), "-");
	snprintf(r->ar_reason, sizeof(r->ar_reason), "%llu refusals and "
	    "failed logins not written one by one: the audit queue was full",
	    (unsigned long long)n);	/* only those have no place kept */
	snprintf(r->ar_close, sizeof(r->ar_close), "summary");
	log_warnx("audit: %s", r->ar_reason);
	return (1);
}

/* Rollups ---------------------------------------------------------------- */

/*
 * Rolls up to max completed records (by seq) past the 'rollup' mark into
 * the hourly tables, in one transaction. Returns how many were rolled up
 * (0: up to date), or -1 with *cause set.
 */
int64_t
audit_rollup(sqlite3 *db, int64_t max, char **cause)
{
	static const char *const steps[] = {
		"INSERT INTO hourly_users SELECT start_ms / 3600000, "
		"coalesce(user, ''), count(*), sum(verdict = 'allow'), "
		"sum(verdict = 'deny'), sum(bytes_up), sum(bytes_down) FROM "
		"records WHERE seq > ?1 AND seq <= ?2 GROUP BY 1, 2 "
		"ON CONFLICT (hour, user) DO UPDATE SET "
		"sessions = sessions + excluded.sessions, "
		"allowed = allowed + excluded.allowed, "
		"denied = denied + excluded.denied, "
		"bytes_up = bytes_up + excluded.bytes_up, "
		"bytes_down = bytes_down + excluded.bytes_down",
		"INSERT INTO hourly_destinations SELECT start_ms / 3600000, "
		"coalesce(dst_host, dst_addr, '-'), verdict, "
		"count(*), sum(bytes_up + bytes_down) FROM records WHERE "
		"kind = 'session' AND seq > ?1 AND seq <= ?2 GROUP BY 1, 2, 3 "
		"ON CONFLICT (hour, destination, verdict) DO UPDATE SET "
		"sessions = sessions + excluded.sessions, "
		"bytes = bytes + excluded.bytes",
		"INSERT INTO hourly_denials SELECT start_ms / 3600000, rule_id, "
		"coalesce(user, ''), count(*), max(reason) FROM records WHERE "
		"verdict = 'deny' AND seq > ?1 AND seq <= ?2 GROUP BY 1, 2, 3 "
		"ON CONFLICT (hour, rule_id, user) DO UPDATE SET "
		"denials = denials + excluded.denials",
	};
	sqlite3_stmt	*st;
	int64_t		 from = 0, top = 0, to;
	size_t		 i;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(db, "SELECT (SELECT seq FROM chain WHERE name = "
	    "'rollup'), (SELECT max(seq) FROM records)", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		from = sqlite3_column_int64(st, 0);
		top = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	to = top - from > max ? from + max : top;
	if (to <= from) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		return (0);
	}
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (sqlite3_prepare_v2(db, steps[i], -1, &st, NULL) !=
		    SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(st, 1, from);
		sqlite3_bind_int64(st, 2, to);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			goto fail;
		}
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO chain (name, seq, "
	    "hash) VALUES ('rollup', ?1, x'')", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, to);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		goto fail;
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return (to - from);
fail:
	if (asprintf(cause, "audit rollup: %s", sqlite3_errmsg(db)) < 0)
		*cause = NULL;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return (-1);
}

/* The writer ------------------------------------------------------------- */

static void
audit_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL || s[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

/* Binds every column of a record; ?20 and ?21 are seq and hash. */
static void
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
 * One RFC 5424 message per record. Every text field is attacker-chosen or
 * carries attacker-chosen text: each is escaped for structured data
 * (section 6.3.3: '"', '\\' and ']'), and the free-text MSG as a log
 * line, so no name can close the SD element and forge a parameter.
 */
static void
audit_syslog(const struct audit_rec *r, int64_t seq)
{
	char		 line[4096], ts[40];
	char		 user[768], cmd[32], dst[768], via[160], client[160];
	char		 close_[300], reason[600];
	struct tm	 tm;
	time_t		 t = (time_t)(r->ar_end_ms / 1000);
	int		 n;

	if (au.au_syslog_fd == -1)
		return;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	esc_sd(user, sizeof(user), r->ar_user[0] ? r->ar_user : "-");
	esc_sd(client, sizeof(client), r->ar_client);
	esc_sd(cmd, sizeof(cmd), r->ar_cmd[0] ? r->ar_cmd : "-");
	esc_sd(dst, sizeof(dst), r->ar_dst_host[0] ? r->ar_dst_host : "-");
	esc_sd(via, sizeof(via), r->ar_dst_addr[0] ? r->ar_dst_addr : "-");
	esc_sd(close_, sizeof(close_), r->ar_close);
	esc_log(reason, sizeof(reason), r->ar_reason);
	/* RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG. */
	n = snprintf(line, sizeof(line), "<%d>1 %s.%03dZ %s gatewayd %d %s "
	    "[socksgw@%d seq=\"%lld\" sid=\"%llu\" user=\"%s\" "
	    "client=\"%s\" cmd=\"%s\" dst=\"%s\" via=\"%s\" port=\"%u\" "
	    "verdict=\"%s\" rule=\"%lld\" up=\"%llu\" down=\"%llu\" "
	    "close=\"%s\"] %s", 16 * 8 + (r->ar_allow ? 6 : 4), ts,
	    (int)(r->ar_end_ms % 1000), au.au_host, (int)getpid(),
	    r->ar_type == AR_AUTH ? "auth" : "session", au.au_syslog_pen,
	    (long long)seq, (unsigned long long)r->ar_sid, user, client, cmd,
	    dst, via, r->ar_dst_port, r->ar_allow ? "allow" : "deny",
	    (long long)r->ar_rule, (unsigned long long)r->ar_up,
	    (unsigned long long)r->ar_down, close_, reason);
	if (n <= 0)
		return;
	if (sendto(au.au_syslog_fd, line, (size_t)n < sizeof(line) ?
	    (size_t)n : sizeof(line) - 1, MSG_DONTWAIT,
	    (struct sockaddr *)&au.au_syslog, sizeof(au.au_syslog)) == -1) {
		/* Counted always; said once until a send works again. */
		STAT_ADD(GW_STAT_SYSLOG_FAILED, 1);
		if (!au.au_syslog_failing)
			log_warn("audit_syslog %s: records not sent",
			    au.au_syslog.sun_path);
		au.au_syslog_failing = 1;
	} else if (au.au_syslog_failing) {
		log_info("audit_syslog %s: sending again",
		    au.au_syslog.sun_path);
		au.au_syslog_failing = 0;
	}
}

/*
 * A session that starts and ends within one batch needs one row, not an
 * insert and an update: its start is dropped and its end written whole.
 * Most sessions are that short, so this halves the writer's work.
 */
static void
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

/*
 * A record the database refuses for good (a constraint: a duplicate
 * session id, a trigger an operator added): retrying it would block the
 * log, and with audit_failure block the gateway, forever. It is left out
 * of the chain (which stays intact) and logged with what identifies it;
 * the rest of the batch is written. Counted with the lost records.
 */
static void
audit_refused(struct audit_rec *r)
{
	log_warnx("audit: the database refused the record of session %llu "
	    "(user %s, client %s, %s %s:%u, %s): %s; left out",
	    (unsigned long long)r->ar_sid, r->ar_user[0] ? r->ar_user : "-",
	    r->ar_client, r->ar_cmd[0] ? r->ar_cmd : "-", r->ar_dst_host,
	    r->ar_dst_port, r->ar_allow ? "allow" : "deny",
	    sqlite3_errmsg(au.au_db));
	atomic_fetch_add(&au.au_lost, 1);
	r->ar_type = AR_SKIP;
}

/* Writes one batch in one transaction; -1 (rolled back) on failure. */
static int
audit_write(struct audit_rec *batch, size_t n)
{
	struct audit_fields	 f;
	unsigned char		 hash[32], prev[32];
	sqlite3_stmt		*st;
	int64_t			 seq = au.au_seq;
	size_t			 i;
	int			 rc;

	memcpy(prev, au.au_hash, 32);
	audit_coalesce(batch, n);
	if (sqlite3_exec(au.au_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		return (-1);
	for (i = 0; i < n; i++) {
		struct audit_rec *r = &batch[i];

		if (r->ar_type == AR_SKIP)
			continue;
		st = r->ar_type == AR_START ? au.au_start :
		    r->ar_type == AR_END ? au.au_finish : au.au_insert;
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		audit_bind(st, r);
		if (r->ar_type != AR_START) {
			audit_fields_of(r, seq + 1, &f);
			if (audit_chain_hash(au.au_md, prev, &f, hash) == -1)
				goto fail;
			sqlite3_bind_int64(st, 20, seq + 1);
			sqlite3_bind_blob(st, 21, hash, 32, SQLITE_STATIC);
		}
		if ((rc = sqlite3_step(st)) == SQLITE_DONE &&
		    r->ar_type == AR_END && sqlite3_changes(au.au_db) == 0) {
			/* Its start was never written (audit was down): whole. */
			sqlite3_reset(au.au_insert);
			sqlite3_clear_bindings(au.au_insert);
			audit_bind(au.au_insert, r);
			sqlite3_bind_int64(au.au_insert, 20, seq + 1);
			sqlite3_bind_blob(au.au_insert, 21, hash, 32,
			    SQLITE_STATIC);
			rc = sqlite3_step(au.au_insert);
		}
		if (rc == SQLITE_CONSTRAINT) {
			audit_refused(r);
			continue;
		}
		if (rc != SQLITE_DONE)
			goto fail;
		if (r->ar_type != AR_START) {
			r->ar_seq = ++seq;
			memcpy(prev, hash, 32);
		}
	}
	if (sqlite3_exec(au.au_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	au.au_seq = seq;
	memcpy(au.au_hash, prev, 32);
	for (i = 0; i < n; i++)
		if (batch[i].ar_type != AR_START && batch[i].ar_type != AR_SKIP)
			audit_syslog(&batch[i], batch[i].ar_seq);
	return (0);
fail:
	log_warnx("audit: writing %s: %s", au.au_db ? "records" : "",
	    sqlite3_errmsg(au.au_db));
	sqlite3_exec(au.au_db, "ROLLBACK", NULL, NULL, NULL);
	return (-1);
}

/*
 * Signs cp and stores it (in the caller's transaction, if one is open);
 * also to syslog. 0, or -1.
 */
static int
audit_sign(struct checkpoint *cp)
{
	unsigned char	 sig[EVIDENCE_SIG_LEN];
	sqlite3_stmt	*st;
	char		 line[512], ts[40], hex[65], sighex[129];
	struct tm	 tm;
	time_t		 t;
	int		 rc, n;

	if (evidence_sign(au.au_key, cp, sig) == -1) {
		log_warnx("audit: cannot sign the %s at %lld", cp->cp_kind,
		    (long long)cp->cp_seq);
		return (-1);
	}
	if (sqlite3_prepare_v2(au.au_db, "INSERT INTO checkpoints (kind, seq, "
	    "hash, time_ms, signature) VALUES (?1, ?2, ?3, ?4, ?5)", -1, &st,
	    NULL) != SQLITE_OK)
		return (-1);
	sqlite3_bind_text(st, 1, cp->cp_kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cp->cp_seq);
	sqlite3_bind_blob(st, 3, cp->cp_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, cp->cp_time_ms);
	sqlite3_bind_blob(st, 5, sig, sizeof(sig), SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return (-1);
	/* A copy off the machine is what makes deleting the newest seen. */
	if (au.au_syslog_fd != -1) {
		t = (time_t)(cp->cp_time_ms / 1000);
		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		evidence_hex(cp->cp_hash, 32, hex);
		evidence_hex(sig, sizeof(sig), sighex);
		n = snprintf(line, sizeof(line), "<%d>1 %s.%03dZ %s gatewayd %d "
		    "checkpoint [socksgw@%d kind=\"%s\" seq=\"%lld\" "
		    "hash=\"%s\" time_ms=\"%lld\" sig=\"%s\"]", 16 * 8 + 5, ts,
		    (int)(cp->cp_time_ms % 1000), au.au_host, (int)getpid(),
		    au.au_syslog_pen, cp->cp_kind, (long long)cp->cp_seq, hex,
		    (long long)cp->cp_time_ms, sighex);
		if (n > 0 && (size_t)n < sizeof(line) && sendto(au.au_syslog_fd,
		    line, (size_t)n, MSG_DONTWAIT,
		    (struct sockaddr *)&au.au_syslog, sizeof(au.au_syslog)) ==
		    -1)
			STAT_ADD(GW_STAT_SYSLOG_FAILED, 1);
	}
	return (0);
}

/* Signs the chain's head if it moved: 10,000 records, 60 s, or now. */
static void
audit_checkpoint(int64_t now, int force)
{
	struct checkpoint	 cp;

	if (au.au_key == NULL || au.au_seq <= au.au_cp_seq || (!force &&
	    au.au_seq - au.au_cp_seq < AUDIT_CHECKPOINT_RECORDS &&
	    now - au.au_cp_at < AUDIT_CHECKPOINT_MS))
		return;
	memset(&cp, 0, sizeof(cp));
	cp.cp_kind = "checkpoint";
	cp.cp_seq = au.au_seq;
	memcpy(cp.cp_hash, au.au_hash, 32);
	cp.cp_time_ms = audit_clock_ms(CLOCK_REALTIME);
	if (audit_sign(&cp) == -1) {
		log_warnx("audit: checkpoint at %lld not stored: %s",
		    (long long)cp.cp_seq, sqlite3_errmsg(au.au_db));
		return;
	}
	au.au_cp_seq = au.au_seq;
	au.au_cp_at = now;
}

/*
 * Where pruning may cut: the newest checkpoint this key signed within the
 * next AUDIT_PRUNE_STEP records, below every record younger than cutoff,
 * and only when the chain recomputed from the anchor reaches exactly the
 * hash that checkpoint signed. So the writer never signs a cut over rows
 * someone edited, backdated or rewrote: it signs only what it had signed
 * already. Returns the place (cp gets the prune record), or 0.
 */
static int64_t
audit_prune_point(int64_t cutoff, struct checkpoint *cp)
{
	struct audit_fields	 f;
	struct checkpoint	 point;
	unsigned char		 prev[32], h[32];
	sqlite3_stmt		*st;
	int64_t			 base = 0, young = INT64_MAX, expect, upto = 0;
	int			 ok = 1;

	memset(prev, 0, sizeof(prev));
	if (sqlite3_prepare_v2(au.au_db, "SELECT seq, hash FROM chain WHERE "
	    "name = 'anchor'", -1, &st, NULL) != SQLITE_OK)
		return (0);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 1) ==
	    32) {
		base = sqlite3_column_int64(st, 0);
		memcpy(prev, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(au.au_db, "SELECT min(seq) FROM records WHERE "
	    "seq IS NOT NULL AND end_ms >= ?1", -1, &st, NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, cutoff);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) !=
	    SQLITE_NULL)
		young = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* The newest checkpoint in reach whose signature holds. */
	memset(&point, 0, sizeof(point));
	if (sqlite3_prepare_v2(au.au_db, "SELECT seq, hash, time_ms, signature "
	    "FROM checkpoints WHERE kind = 'checkpoint' AND seq > ?1 AND "
	    "seq <= ?2 AND seq < ?3 ORDER BY seq DESC", -1, &st, NULL) !=
	    SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, base + AUDIT_PRUNE_STEP);
	sqlite3_bind_int64(st, 3, young);
	while (upto == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 1) != 32)
			continue;
		point.cp_kind = "checkpoint";
		point.cp_seq = sqlite3_column_int64(st, 0);
		point.cp_time_ms = sqlite3_column_int64(st, 2);
		memcpy(point.cp_hash, sqlite3_column_blob(st, 1), 32);
		if (evidence_verify(au.au_key, &point,
		    sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st,
		    3)))
			upto = point.cp_seq;
	}
	sqlite3_finalize(st);
	if (upto == 0)
		return (0);
	/* The chain from the anchor must reach that signed hash. */
	if (sqlite3_prepare_v2(au.au_db, "SELECT " AUDIT_ROW_COLUMNS " FROM "
	    "records WHERE seq > ?1 AND seq <= ?2 ORDER BY seq", -1, &st,
	    NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, base);
	sqlite3_bind_int64(st, 2, upto);
	for (expect = base + 1; ok && sqlite3_step(st) == SQLITE_ROW;
	    expect++) {
		audit_fields_row(st, &f);
		ok = f.af_seq == expect && audit_chain_hash(au.au_md, prev, &f,
		    h) == 0 && sqlite3_column_bytes(st, 20) == 32 &&
		    memcmp(h, sqlite3_column_blob(st, 20), 32) == 0;
		memcpy(prev, h, 32);
	}
	sqlite3_finalize(st);
	if (!ok || expect != upto + 1 || memcmp(prev, point.cp_hash, 32) != 0) {
		log_errorx("audit: the chain does not reach the checkpoint "
		    "signed at %lld: records were altered; not pruning",
		    (long long)upto);
		return (0);
	}
	memset(cp, 0, sizeof(*cp));
	cp->cp_kind = "prune";
	cp->cp_seq = upto;
	memcpy(cp->cp_hash, point.cp_hash, 32);
	cp->cp_time_ms = audit_clock_ms(CLOCK_REALTIME);
	return (upto);
}

/*
 * Removes the oldest completed records, a step at a time. The chain's
 * last removed link becomes its anchor, and the cut is signed (a prune
 * record), so an anchor set by anyone else shows in verify.
 */
static void
audit_prune(void)
{
	struct checkpoint	 cp;
	int64_t			 cutoff, upto = 0;
	char			*err = NULL;
	char			 sql[512];

	if (au.au_retention_days <= 0 || au.au_key == NULL)
		return;
	cutoff = (int64_t)time(NULL) * 1000 -
	    (int64_t)au.au_retention_days * 86400000;
	if ((upto = audit_prune_point(cutoff, &cp)) <= 0)
		return;
	/* Only a prefix of the chain goes, and its last hash stays. */
	snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO chain (name, seq, "
	    "hash) SELECT 'anchor', seq, hash FROM records WHERE seq = %lld; "
	    "DELETE FROM records WHERE seq <= %lld AND seq IS NOT NULL;",
	    (long long)upto, (long long)upto);
	if (sqlite3_exec(au.au_db, "BEGIN IMMEDIATE", NULL, NULL, &err) !=
	    SQLITE_OK || (au.au_key != NULL && audit_sign(&cp) == -1) ||
	    sqlite3_exec(au.au_db, sql, NULL, NULL, &err) != SQLITE_OK ||
	    sqlite3_exec(au.au_db, "COMMIT", NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("audit: pruning: %s", err != NULL ? err :
		    sqlite3_errmsg(au.au_db));
		sqlite3_free(err);
		sqlite3_exec(au.au_db, "ROLLBACK", NULL, NULL, NULL);
	}
}

/* Milliseconds on clock id: MONOTONIC for intervals, REALTIME for rows. */
static int64_t
audit_clock_ms(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static const char	*audit_orphans_why = "gateway restarted";

/* What closes the rows the last run left open (a restarted proxy). */
void
audit_orphan_reason(const char *why)
{
	audit_orphans_why = why;
}

static void
audit_text(sqlite3_stmt *st, int col, char *out, size_t len)
{
	const unsigned char	*t = sqlite3_column_text(st, col);

	snprintf(out, len, "%s", t != NULL ? (const char *)t : "");
}

/*
 * Rows a crash left open (a relayed session's start, never completed)
 * are closed at the next start, as what they are: "gateway restarted",
 * with the time of that start, and chained like any completed row.
 */
static void
audit_close_orphans(struct audit_rec *batch)
{
	sqlite3_stmt	*st;
	int64_t		 now = audit_clock_ms(CLOCK_REALTIME), total = 0;
	size_t		 n;

	for (;;) {
		if (sqlite3_prepare_v2(au.au_db, "SELECT kind, session_id, "
		    "start_ms, user, client_addr, client_port, command, "
		    "dst_host, dst_addr, dst_port, dst_country, verdict, "
		    "rule_id, reason, bytes_up, bytes_down, protocol, ident, "
		    "packets_up, packets_down, udp_destinations, udp_denied "
		    "FROM records WHERE seq IS NULL ORDER BY id LIMIT 4096",
		    -1, &st, NULL) != SQLITE_OK)
			return;
		for (n = 0; n < AUDIT_BATCH && sqlite3_step(st) == SQLITE_ROW;
		    n++) {
			struct audit_rec	*r = &batch[n];

			memset(r, 0, sizeof(*r));
			r->ar_type = AR_END;
			r->ar_sid = (uint64_t)sqlite3_column_int64(st, 1);
			r->ar_start_ms = sqlite3_column_int64(st, 2);
			r->ar_end_ms = now;
			audit_text(st, 3, r->ar_user, sizeof(r->ar_user));
			audit_text(st, 4, r->ar_client, sizeof(r->ar_client));
			r->ar_client_port = (uint16_t)sqlite3_column_int(st, 5);
			audit_text(st, 6, r->ar_cmd, sizeof(r->ar_cmd));
			audit_text(st, 7, r->ar_dst_host,
			    sizeof(r->ar_dst_host));
			audit_text(st, 8, r->ar_dst_addr,
			    sizeof(r->ar_dst_addr));
			r->ar_dst_port = (uint16_t)sqlite3_column_int(st, 9);
			audit_text(st, 10, r->ar_country, sizeof(r->ar_country));
			r->ar_allow = strcmp((const char *)
			    sqlite3_column_text(st, 11), "allow") == 0;
			r->ar_rule = sqlite3_column_int64(st, 12);
			audit_text(st, 13, r->ar_reason, sizeof(r->ar_reason));
			r->ar_up = (uint64_t)sqlite3_column_int64(st, 14);
			r->ar_down = (uint64_t)sqlite3_column_int64(st, 15);
			r->ar_proto = strcmp((const char *)
			    sqlite3_column_text(st, 16), "socks4") == 0 ? 4 : 5;
			audit_text(st, 17, r->ar_ident, sizeof(r->ar_ident));
			r->ar_packets[0] = (uint64_t)sqlite3_column_int64(st,
			    18);
			r->ar_packets[1] = (uint64_t)sqlite3_column_int64(st,
			    19);
			r->ar_udp_dests = (uint32_t)sqlite3_column_int(st, 20);
			r->ar_udp_denied = (uint32_t)sqlite3_column_int(st, 21);
			snprintf(r->ar_close, sizeof(r->ar_close), "%s",
			    audit_orphans_why);
		}
		sqlite3_finalize(st);
		if (n == 0 || audit_write(batch, n) == -1)
			break;
		total += (int64_t)n;
	}
	if (total > 0)
		log_warnx("audit: %lld sessions left open by the last run "
		    "closed as \"%s\"", (long long)total, audit_orphans_why);
}

static void *
audit_main(void *arg)
{
	struct audit_rec	*batch;
	struct timespec		 ts;
	size_t			 n = 0, i;
	int64_t			 retry_at = 0, prune_at = 0, now;
	int64_t			 rollup_at = 0, usage_at = 0;
	int			 stop;

	(void)arg;
	if ((batch = calloc(AUDIT_BATCH, sizeof(*batch))) == NULL ||
	    (au.au_md = EVP_MD_CTX_new()) == NULL)
		fatalx("audit: out of memory");
	au.au_cp_at = audit_clock_ms(CLOCK_MONOTONIC);
	audit_close_orphans(batch);
	/* Where this run starts from is signed before anything else. */
	audit_checkpoint(au.au_cp_at, 1);
	for (;;) {
		pthread_mutex_lock(&au.au_lock);
		if (au.au_len < au.au_wake && !au.au_stop) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += AUDIT_INTERVAL_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&au.au_cond, &au.au_lock, &ts);
		}
		/* A failed batch is kept until it is written. */
		for (; n < AUDIT_BATCH && au.au_len > 0; n++) {
			batch[n] = au.au_ring[au.au_head];
			au.au_head = (au.au_head + 1) % au.au_cap;
			au.au_len--;
		}
		stop = au.au_stop && au.au_len == 0;
		pthread_mutex_unlock(&au.au_lock);
		/* Room in the batch: the summary of what found none before. */
		if (n < AUDIT_BATCH && au.au_healthy && audit_summary(&batch[n]))
			n++;

		now = audit_clock_ms(CLOCK_MONOTONIC);
		if (n > 0 && now >= retry_at) {
			if (audit_write(batch, n) == 0) {
				if (!au.au_healthy)
					log_warnx("audit: writing works again");
				au.au_healthy = 1;
				n = 0;
				audit_checkpoint(now, 0);
			} else {
				if (au.au_healthy)
					log_warnx("audit: cannot write records; "
					    "%s until it can", au.au_block ?
					    "new sessions are refused" :
					    "serving on, records are kept");
				au.au_healthy = 0;
				retry_at = now + AUDIT_RETRY_MS;
			}
		}
		if (now >= usage_at || stop) {
			quota_persist(au.au_db, audit_clock_ms(CLOCK_REALTIME));
			usage_at = now + AUDIT_USAGE_EVERY_MS;
		}
		if (n == 0 && now >= prune_at) {
			audit_prune();
			prune_at = now + AUDIT_PRUNE_EVERY_MS;
		}
		/* Rollups when there is time: a bounded step a second. */
		if (n == 0 && au.au_len < AUDIT_BATCH && now >= rollup_at) {
			char	*cause = NULL;

			if (audit_rollup(au.au_db, AUDIT_ROLLUP_STEP, &cause) ==
			    -1) {
				log_warnx("%s", cause ? cause : "audit rollup");
				free(cause);
			}
			rollup_at = now + AUDIT_ROLLUP_EVERY_MS;
		}
		if (n == 0)
			audit_checkpoint(now, stop);
		if (stop && n == 0)
			break;
		if (stop && now < retry_at) {
			/* Shutting down with a batch that cannot be written. */
			log_warnx("audit: %zu records could not be written "
			    "at shutdown", n);
			break;
		}
	}
	for (i = 0; i < AUDIT_BATCH; i++)
		explicit_bzero(&batch[i], sizeof(batch[i]));
	free(batch);
	EVP_MD_CTX_free(au.au_md);
	au.au_md = NULL;
	return (NULL);
}

/*
 * As root, before the privilege drop: opens (creating, migrating) the
 * audit database in WAL mode and prepares the writer.
 */
int
audit_init(const struct conf *c, char **cause)
{
	static const char cols[] = "kind, session_id, start_ms, end_ms, user, "
	    "client_addr, client_port, command, dst_host, dst_addr, dst_port, "
	    "dst_country, verdict, rule_id, reason, bytes_up, bytes_down, "
	    "close_reason, protocol, ident, packets_up, packets_down, "
	    "udp_destinations, udp_denied";
	char		 sql[1024];
	sqlite3_stmt	*st;
	const void	*h;

	if (c->c_audit_db == NULL)
		return (0);
	if (sqlite3_open_v2(c->c_audit_db, &au.au_db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_busy_timeout(au.au_db, 2000);
	/*
	 * WAL with synchronous NORMAL: a commit is durable against a crash of
	 * gatewayd (the kill -9 bound), and is synced at checkpoints.
	 */
	/* Larger pages: fewer splits in the indexes, fewer WAL frames. */
	if (sqlite3_exec(au.au_db, "PRAGMA page_size = 16384; "
	    "PRAGMA journal_mode = WAL; "
	    "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 8192; "
	    "PRAGMA cache_size = -65536",
	    NULL, NULL, NULL) != SQLITE_OK)
		goto sqlfail;
	if (db_schema_migrate(au.au_db, DB_SCHEMA_AUDIT, cause) == -1 ||
	    quota_load(au.au_db, time(NULL), cause) == -1)
		goto fail;
	snprintf(sql, sizeof(sql), "INSERT INTO records (%s) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
	    "?18, ?19, ?22, ?23, ?24, ?25, ?26)", cols);
	if (sqlite3_prepare_v2(au.au_db, sql, -1, &au.au_start, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	snprintf(sql, sizeof(sql), "INSERT INTO records (%s, seq, hash) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
	    "?16, ?17, ?18, ?19, ?22, ?23, ?24, ?25, ?26, ?20, ?21)", cols);
	if (sqlite3_prepare_v2(au.au_db, sql, -1, &au.au_insert, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	/* The fields a start row already has are in the hash as sent now. */
	if (sqlite3_prepare_v2(au.au_db, "UPDATE records SET end_ms = ?4, "
	    "dst_addr = ?10, dst_country = ?12, verdict = ?13, rule_id = ?14, "
	    "reason = ?15, bytes_up = ?16, bytes_down = ?17, close_reason = "
	    "?18, seq = ?20, hash = ?21, protocol = ?19, ident = ?22, "
	    "packets_up = ?23, packets_down = ?24, udp_destinations = ?25, "
	    "udp_denied = ?26, dst_host = ?9, dst_port = ?11 WHERE "
	    "session_id = ?2 AND seq IS NULL",
	    -1, &au.au_finish, NULL) != SQLITE_OK)
		goto sqlfail;
	/* The chain continues from its last link (or the anchor). */
	if (sqlite3_prepare_v2(au.au_db, "SELECT seq, hash FROM records WHERE "
	    "seq = (SELECT max(seq) FROM records) UNION ALL SELECT seq, hash "
	    "FROM chain WHERE name = 'anchor' ORDER BY 1 DESC LIMIT 1", -1,
	    &st, NULL) != SQLITE_OK)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		au.au_seq = sqlite3_column_int64(st, 0);
		if ((h = sqlite3_column_blob(st, 1)) != NULL &&
		    sqlite3_column_bytes(st, 1) == 32)
			memcpy(au.au_hash, h, 32);
	}
	sqlite3_finalize(st);
	/*
	 * The signing key, read (or made) as root before the privilege drop:
	 * the proxy's account holds it in memory only, and audit.key is
	 * readable by root alone.
	 */
	{
		char	 keypath[PATH_MAX], pubpath[PATH_MAX];

		int	 signed_before = 0;

		evidence_paths(c->c_audit_db, keypath, pubpath,
		    sizeof(keypath));
		if (sqlite3_prepare_v2(au.au_db, "SELECT count(*) FROM "
		    "checkpoints", -1, &st, NULL) != SQLITE_OK)
			goto sqlfail;
		if (sqlite3_step(st) == SQLITE_ROW)
			signed_before = sqlite3_column_int64(st, 0) > 0;
		sqlite3_finalize(st);
		/*
		 * A log signed before but no key now: a new key would let a
		 * rewritten log verify under it. Fail closed.
		 */
		if (signed_before && access(keypath, F_OK) == -1) {
			if (asprintf(cause, "audit: %s is missing but %s holds "
			    "signed checkpoints: restore the key, or move the "
			    "log away to start a new one", keypath,
			    c->c_audit_db) < 0)
				*cause = NULL;
			goto fail;
		}
		if ((au.au_key = evidence_key(keypath, pubpath, cause)) ==
		    NULL)
			goto fail;
	}
	/*
	 * Nothing in the database says where the last checkpoint was (a
	 * planted row could stop all signing): the head is signed again as
	 * soon as the writer runs.
	 */
	au.au_cp_seq = 0;
	/* The highest session id on record (audit_last_session_id()). */
	if (sqlite3_prepare_v2(au.au_db, "SELECT max(session_id) FROM records",
	    -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW)
		au.au_last_sid = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	au.au_cap = (size_t)c->c_audit_queue;
	au.au_wake = au.au_cap / 4 < AUDIT_BATCH ? au.au_cap / 4 : AUDIT_BATCH;
	if (au.au_wake == 0)
		au.au_wake = 1;
	if ((au.au_ring = calloc(au.au_cap, sizeof(*au.au_ring))) == NULL) {
		if (asprintf(cause, "audit: out of memory") < 0)
			*cause = NULL;
		goto fail;
	}
	au.au_block = c->c_audit_block;
	au.au_retention_days = c->c_audit_retention_days;
	if (c->c_audit_syslog) {
		au.au_syslog.sun_family = AF_UNIX;
		snprintf(au.au_syslog.sun_path, sizeof(au.au_syslog.sun_path),
		    "%s", c->c_audit_syslog_socket ? c->c_audit_syslog_socket :
		    "/dev/log");
		au.au_syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		au.au_syslog_pen = c->c_audit_syslog_pen;
		gethostname(au.au_host, sizeof(au.au_host) - 1);
	}
	return (0);
sqlfail:
	if (asprintf(cause, "audit_db %s: %s", c->c_audit_db,
	    au.au_db ? sqlite3_errmsg(au.au_db) : "out of memory") < 0)
		*cause = NULL;
fail:
	sqlite3_close(au.au_db);
	au.au_db = NULL;
	return (-1);
}

/* So that a clock set back cannot make session ids repeat. */
uint64_t
audit_last_session_id(void)
{
	return (au.au_last_sid);
}

int
audit_start(char **cause)
{
	if (au.au_ring == NULL)
		return (0);
	if ((errno = pthread_create(&au.au_thread, NULL, audit_main, NULL)) !=
	    0) {
		if (asprintf(cause, "audit: %s", strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	au.au_running = 1;
	return (0);
}

/* After the workers have stopped: writes what is queued, then closes. */
void
audit_stop(void)
{
	if (au.au_running) {
		pthread_mutex_lock(&au.au_lock);
		au.au_stop = 1;
		pthread_cond_signal(&au.au_cond);
		pthread_mutex_unlock(&au.au_lock);
		pthread_join(au.au_thread, NULL);
		au.au_running = 0;
	}
	if (au.au_lost > 0)
		log_warnx("audit: %llu records were lost",
		    (unsigned long long)au.au_lost);
	sqlite3_finalize(au.au_start);
	sqlite3_finalize(au.au_insert);
	sqlite3_finalize(au.au_finish);
	sqlite3_close(au.au_db);
	au.au_db = NULL;
	free(au.au_ring);
	au.au_ring = NULL;
	if (au.au_syslog_fd != -1)
		close(au.au_syslog_fd);
	EVP_PKEY_free(au.au_key);
	au.au_key = NULL;
	au.au_syslog_fd = -1;
}
