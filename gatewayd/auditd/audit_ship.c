/*
 * audit_ship.c: the audit shipper (audit_central): a process of auditd's
 * that copies the completed records and signed checkpoints of the local
 * log to the fleet's PostgreSQL, in chain order.
 *
 * DESIGN. The local log stays the first copy: records are written there
 * as before, whether or not the central store answers, so nothing is lost
 * while it is down. The shipper reads the log (read-only, WAL: it never
 * holds the writer up) and sends what the central store lacks, a batch
 * per transaction that also moves the node's cursor (audit_nodes), under
 * a row lock on it. A batch lands whole or not at all, so whatever stops
 * (the shipper, the node, the server, the network), a record arrives
 * exactly once: the next batch starts from the cursor the central store
 * itself holds. (node, session_id) and (node, seq) are keys there too.
 *
 * The central chain must continue the local one: before each batch the
 * record at the cursor must carry, here, the hash the central store has
 * for it. Otherwise another log is writing under this node_name (a second
 * node with the same name, or a log replaced), and the shipper stops and
 * says so rather than mix two chains.
 *
 * A process, not a thread of auditd, because auditd holds the signing key
 * and has no network socket: a flaw in libpq or TLS reached by a hostile
 * server gets an account that can read the log but not sign it. It runs
 * as auditd's account (audit.db is that account's), forked before auditd
 * reads the key, and it ends with auditd (PR_SET_PDEATHSIG), after one
 * last round when auditd closes its channel at a stop.
 *
 * It tells auditd its progress (struct ship_status) after each round;
 * auditd prunes nothing the central store does not have, and passes the
 * progress on to the proxy's stats and metrics.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "central.h"
#include "conf.h"
#include "evidence.h"
#include "log.h"

#include "base/clock.h"
#include "parent/parent.h"

#include "audit_proto.h"
#include "auditd.h"
#include "audit_ship_int.h"

#define SHIP_IDLE_MS	200	/* between rounds with nothing to send */
#define SHIP_RETRY_MS	1000	/* the first retry; doubles up to ... */
#define SHIP_RETRY_MAX	10000
#define SHIP_LAST_MS	1000	/* the last round, once auditd has closed */
#define SHIP_CHECKPOINTS 1000	/* checkpoints per transaction at most */
#define SHIP_NICE	10

static struct {
	const char	*sh_url;
	const char	*sh_node;
	char		 sh_pubpath[PATH_MAX];
	EVP_PKEY	*sh_pub;	/* NULL: sh_puberr */
	char		*sh_puberr;
	int		 sh_fd;		/* to auditd */
	sqlite3		*sh_db;
	PGconn		*sh_pg;
	struct ship_status sh_st;
	int		 sh_said;	/* the last state logged */
} sh;

static void
ship_report(void)
{
	sh.sh_st.ss_time_ms = gw_clock_of(CLOCK_REALTIME);
	/* Best effort: auditd reads it or is gone. */
	(void)send(sh.sh_fd, &sh.sh_st, sizeof(sh.sh_st), MSG_DONTWAIT);
}

/* Says each change of state once. */
static void
ship_state(uint8_t state, const char *why)
{
	sh.sh_st.ss_state = state;
	if (state == sh.sh_said)
		return;
	sh.sh_said = state;
	switch (state) {
	case SHIP_UP:
		log_info("audit_central: shipping to the central store");
		break;
	case SHIP_DOWN:
		log_warnx("audit_central: the central store cannot be reached "
		    "(%s): records are kept here and shipped when it can",
		    why);
		break;
	case SHIP_CONFLICT:
		log_errorx("audit_central: %s: nothing is shipped until an "
		    "administrator resolves it", why);
		break;
	}
}

static void
ship_disconnect(void)
{
	PQfinish(sh.sh_pg);
	sh.sh_pg = NULL;
}

/* Runs a statement of text parameters; 0, or -1 with why. */
static int
ship_exec(const char *sql, int n, const char *const *vals, char *why,
    size_t len)
{
	PGresult	*r = PQexecParams(sh.sh_pg, sql, n, NULL, vals, NULL,
			    NULL, 0);
	int		 ok = central_ok(r, why, len);

	PQclear(r);
	return (ok ? 0 : -1);
}

/* Connects, migrates, and says which key this node signs with. */
static int
ship_connect(char *why, size_t len)
{
	unsigned char	 raw[32];
	size_t		 rawlen = sizeof(raw);
	char		 hex[65], now[24];
	const char	*node_now[2], *key[3];

	if ((sh.sh_pg = central_connect(sh.sh_url, "socksgw-shipper", why,
	    len)) == NULL)
		return (-1);
	if (central_migrate(sh.sh_pg, "central", why, len) == -1)
		goto fail;
	/* The key its checkpoints verify with, for socksctl verify --central. */
	if (sh.sh_pub == NULL)
		log_warnx("audit_central: %s: the central store cannot verify "
		    "this node's checkpoints without it", sh.sh_puberr != NULL ?
		    sh.sh_puberr : "no public key");
	else if (EVP_PKEY_get_raw_public_key(sh.sh_pub, raw, &rawlen) == 1 &&
	    rawlen == 32) {
		evidence_hex(raw, 32, hex);
		snprintf(now, sizeof(now), "%lld",
		    (long long)gw_clock_of(CLOCK_REALTIME));
		node_now[0] = key[0] = sh.sh_node;
		node_now[1] = key[2] = now;
		key[1] = hex;
		if (ship_exec("INSERT INTO audit_nodes VALUES ($1, 0, NULL, 0, "
		    "NULL, 0, $2, $2) ON CONFLICT (node) DO NOTHING", 2,
		    node_now, why, len) == -1 || ship_exec("INSERT INTO "
		    "audit_keys VALUES ($1, decode($2, 'hex'), $3) ON CONFLICT "
		    "DO NOTHING", 3, key, why, len) == -1)
			goto fail;
	}
	return (0);
fail:
	ship_disconnect();
	return (-1);
}

/*
 * Did the store refuse the data itself (SQLSTATE class 22, a data
 * exception, or 23, a key it already holds)? Not a connection's failure:
 * retrying cannot help, and an administrator must look (a conflict).
 */
static int
ship_refused(PGresult *r)
{
	const char	*state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	return (state != NULL && (strncmp(state, "22", 2) == 0 ||
	    strncmp(state, "23", 2) == 0));
}

/*
 * The batch in one COPY (ship_read made its text): a stream, not a
 * statement of thousands of parameters to parse and plan, which is most
 * of what the store spends per record. 0, or -1 with why.
 */
static int
ship_copy(struct ship_rows *b, char *why, size_t len)
{
	PGresult	*r;
	int		 ok;

	r = PQexec(sh.sh_pg, "COPY audit_records (node, id, kind, session_id, "
	    "start_ms, end_ms, \"user\", client_addr, client_port, command, "
	    "dst_host, dst_addr, dst_port, dst_country, verdict, rule_id, "
	    "reason, bytes_up, bytes_down, close_reason, seq, hash, protocol, "
	    "ident, packets_up, packets_down, udp_destinations, udp_denied, "
	    "auth_method, rec_node, shipped_ms) FROM STDIN");
	ok = PQresultStatus(r) == PGRES_COPY_IN;
	if (!ok)
		central_ok(r, why, len);
	PQclear(r);
	if (!ok)
		return (-1);
	if (PQputCopyData(sh.sh_pg, b->buf, (int)b->len) != 1 ||
	    PQputCopyEnd(sh.sh_pg, NULL) != 1) {
		snprintf(why, len, "%s", PQerrorMessage(sh.sh_pg));
		why[strcspn(why, "\n")] = '\0';
		return (-1);
	}
	ok = 1;
	while ((r = PQgetResult(sh.sh_pg)) != NULL) {
		if (PQresultStatus(r) == PGRES_COPY_IN ||
		    PQresultStatus(r) == PGRES_COPY_OUT ||
		    PQresultStatus(r) == PGRES_COPY_BOTH) {
			/* A server that asks for more: it would never end. */
			snprintf(why, len, "the central store answered COPY "
			    "with another COPY");
			PQclear(r);
			ok = 0;
			break;
		}
		if (ok && !central_ok(r, why, len))
			ok = ship_refused(r) ? -2 : 0;
		PQclear(r);
	}
	return (ok == 1 ? 0 : ok == -2 ? -2 : -1);
}

/* The checkpoints after id cp that lie within the shipped chain. */
static int
ship_checkpoints(int64_t cp, int64_t upto, int64_t *lastcp, char *why,
    size_t len)
{
	sqlite3_stmt	*st;
	PGresult	*r;
	const char	*v[7];
	int		 l[7] = { 0 }, f[7] = { 0 }, rc = 0;
	char		 id[24], seq[24], tms[24];

	if (sqlite3_prepare_v2(sh.sh_db, "SELECT id, kind, seq, hash, time_ms, "
	    "signature FROM checkpoints WHERE id > ?1 ORDER BY id LIMIT ?2", -1,
	    &st, NULL) != SQLITE_OK)
		return (0);
	sqlite3_bind_int64(st, 1, cp);
	sqlite3_bind_int(st, 2, SHIP_CHECKPOINTS);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		/* In id order: one ahead of the records waits, and all after. */
		if (sqlite3_column_int64(st, 2) > upto)
			break;
		snprintf(id, sizeof(id), "%lld", sqlite3_column_int64(st, 0));
		snprintf(seq, sizeof(seq), "%lld", sqlite3_column_int64(st, 2));
		snprintf(tms, sizeof(tms), "%lld", sqlite3_column_int64(st, 4));
		v[0] = sh.sh_node;
		v[1] = id;
		v[2] = (const char *)sqlite3_column_text(st, 1);
		v[3] = seq;
		v[4] = sqlite3_column_blob(st, 3);
		l[4] = sqlite3_column_bytes(st, 3);
		f[4] = 1;
		v[5] = tms;
		v[6] = sqlite3_column_blob(st, 5);
		l[6] = sqlite3_column_bytes(st, 5);
		f[6] = 1;
		if (v[2] == NULL || v[4] == NULL || v[6] == NULL) {
			/* Skipped, it would leave a gap verify calls deletion. */
			snprintf(why, len, "checkpoint %s of the local log is "
			    "damaged (a field is NULL): socksctl audit verify "
			    "says more", id);
			rc = -2;
			break;
		}
		r = PQexecParams(sh.sh_pg, "INSERT INTO audit_checkpoints VALUES "
		    "($1, $2, $3, $4, $5, $6, $7)", 7, NULL, v, l, f, 0);
		if (!central_ok(r, why, len))
			rc = ship_refused(r) ? -2 : -1;
		PQclear(r);
		*lastcp = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return (rc);
}

/*
 * One round: a batch in one central transaction. Returns the records
 * shipped, -1 (the connection failed: why) or -2 (a conflict: why).
 */
static int
ship_round(struct ship_rows *b, char *why, size_t len)
{
	PGresult	*r;
	unsigned char	 hash[32] = { 0 }, lasthash[32], ahash[32] = { 0 };
	char		 seqs[24], cps[24], hex[65], now[24], anc[24];
	const char	*v[5];
	int64_t		 seq, cp, last, lastcp, aseq;
	int		 rc = -1, fresh = 0;

	snprintf(now, sizeof(now), "%lld", (long long)gw_clock_of(
	    CLOCK_REALTIME));
	v[0] = sh.sh_node;
	if (ship_exec("BEGIN", 0, NULL, why, len) == -1)
		return (-1);
	r = PQexecParams(sh.sh_pg, "SELECT shipped_seq, encode(shipped_hash, "
	    "'hex'), shipped_cp FROM audit_nodes WHERE node = $1 FOR UPDATE",
	    1, NULL, v, NULL, NULL, 0);
	if (!central_ok(r, why, len)) {
		PQclear(r);
		goto fail;
	}
	if (PQnfields(r) != 3) {
		snprintf(why, len, "the central store answered %d columns, 3 "
		    "asked", PQnfields(r));
		PQclear(r);
		goto fail;
	}
	if (PQntuples(r) == 1) {
		seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		cp = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
		fresh = PQgetisnull(r, 0, 1) || evidence_unhex(PQgetvalue(r, 0,
		    1), hash, 32) == -1;
	} else {
		seq = cp = 0;
		fresh = 1;
	}
	PQclear(r);
	if (sqlite3_exec(sh.sh_db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(why, len, "%s", sqlite3_errmsg(sh.sh_db));
		goto fail;
	}
	if (seq == 0 && cp == 0 && fresh) {
		/* New here: the chain starts at the local anchor. */
		aseq = ship_anchor(sh.sh_db, ahash);
		evidence_hex(ahash, 32, hex);
		snprintf(anc, sizeof(anc), "%lld", (long long)aseq);
		v[1] = anc;
		v[2] = aseq > 0 ? hex : NULL;
		v[3] = now;
		if (ship_exec("INSERT INTO audit_nodes VALUES ($1, $2, decode($3, "
		    "'hex'), $2, decode($3, 'hex'), 0, $4, $4) ON CONFLICT (node) "
		    "DO UPDATE SET anchor_seq = $2, anchor_hash = decode($3, "
		    "'hex'), shipped_seq = $2, shipped_hash = decode($3, 'hex')",
		    4, v, why, len) == -1)
			goto fail_local;
		seq = aseq;
		memcpy(hash, ahash, 32);
	} else if (!ship_continues(sh.sh_db, sh.sh_node, seq, fresh ? NULL :
	    hash, why, len)) {
		rc = -2;
		goto fail_local;
	}
	last = seq;
	lastcp = cp;
	if (ship_read(sh.sh_db, b, sh.sh_node, now, seq, &last,
	    lasthash) == -1) {
		snprintf(why, len, "reading the local log: %s",
		    sqlite3_errmsg(sh.sh_db));
		goto fail_local;
	}
	/* -1 or -2 from either; -1 for any failure after. */
	if ((b->n > 0 && (rc = ship_copy(b, why, len)) != 0) ||
	    (rc = ship_checkpoints(cp, last, &lastcp, why, len)) != 0)
		goto fail_local;
	rc = -1;
	if (b->n > 0 || lastcp != cp) {
		snprintf(seqs, sizeof(seqs), "%lld", (long long)last);
		snprintf(cps, sizeof(cps), "%lld", (long long)lastcp);
		evidence_hex(b->n > 0 ? lasthash : hash, 32, hex);
		v[1] = seqs;
		v[2] = hex;
		v[3] = cps;
		v[4] = now;
		if (ship_exec("UPDATE audit_nodes SET shipped_seq = $2, "
		    "shipped_hash = decode($3, 'hex'), shipped_cp = $4, "
		    "last_ms = $5 WHERE node = $1", 5, v, why, len) == -1)
			goto fail_local;
	}
	if (ship_exec("COMMIT", 0, NULL, why, len) == -1)
		goto fail_local;
	sqlite3_exec(sh.sh_db, "COMMIT", NULL, NULL, NULL);
	sh.sh_st.ss_shipped_seq = (uint64_t)last;
	sh.sh_st.ss_known = 1;
	sh.sh_st.ss_shipped_total += (uint64_t)b->n;
	return (b->n);
fail_local:
	sqlite3_exec(sh.sh_db, "ROLLBACK", NULL, NULL, NULL);
fail:
	if (PQstatus(sh.sh_pg) == CONNECTION_OK) {
		r = PQexec(sh.sh_pg, "ROLLBACK");
		PQclear(r);
	}
	return (rc);
}

/* Waits up to ms for auditd's channel to close: 1 when it has. */
static int
ship_wait(int ms)
{
	struct pollfd	 pfd = { .fd = sh.sh_fd, .events = POLLIN };
	char		 c;
	ssize_t		 n;

	if (poll(&pfd, 1, ms) <= 0)
		return (0);
	if ((n = recv(sh.sh_fd, &c, 1, MSG_DONTWAIT)) == -1)
		return (errno != EAGAIN && errno != EINTR);
	return (n == 0);
}

static int
ship_loop(void)
{
	struct ship_rows	*b;
	char			 why[512];
	int64_t			 last_round = 0, retry = SHIP_RETRY_MS;
	int			 n, closing = 0;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return (1);
	for (;;) {
		if (closing && gw_mono_ms() >= last_round)
			break;
		n = 0;
		if (sh.sh_pg == NULL && ship_connect(why, sizeof(why)) == -1)
			n = -1;
		else if ((n = ship_round(b, why, sizeof(why))) == -1)
			ship_disconnect();
		if (n >= 0) {
			ship_state(SHIP_UP, NULL);
			retry = SHIP_RETRY_MS;
		} else
			ship_state(n == -2 ? SHIP_CONFLICT : SHIP_DOWN, why);
		ship_lag(sh.sh_db, &sh.sh_st);
		ship_report();
		if (closing && n >= 0 && n < SHIP_BATCH)
			break;		/* all shipped */
		if (closing) {
			if (n < 0)
				break;	/* no store: the next shipper's work */
			continue;
		}
		if (n == SHIP_BATCH)
			closing = ship_wait(0);
		else if (n >= 0)
			closing = ship_wait(SHIP_IDLE_MS);
		else {
			closing = ship_wait((int)retry);
			retry = retry * 2 > SHIP_RETRY_MAX ? SHIP_RETRY_MAX :
			    retry * 2;
		}
		if (closing)
			last_round = gw_mono_ms() + SHIP_LAST_MS;
	}
	ship_disconnect();
	sqlite3_close(sh.sh_db);
	ship_rows_free(b);
	free(b);
	return (0);
}

/*
 * As root, once auditd has opened (made, migrated) the log and says so:
 * the log read-only, with its WAL files (which SQLite opens at the first
 * read and keeps: they are root's like the log, and the shipper's account
 * could not open them later), and the public key. -1 when auditd ended
 * first or the log does not open.
 */
static int
ship_open(const struct conf *c)
{
	char	 ready, key[PATH_MAX];

	if (recv(sh.sh_fd, &ready, 1, 0) != 1)
		return (-1);
	evidence_paths(c->c_audit_db, key, sh.sh_pubpath, sizeof(key));
	if (sqlite3_open_v2(c->c_audit_db, &sh.sh_db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK || sqlite3_exec(sh.sh_db,
	    "SELECT count(*) FROM chain", NULL, NULL, NULL) != SQLITE_OK) {
		log_warnx("audit_central: %s: %s; nothing is shipped",
		    c->c_audit_db, sqlite3_errmsg(sh.sh_db));
		return (-1);
	}
	sqlite3_busy_timeout(sh.sh_db, 2000);
	sh.sh_pub = evidence_pubkey_load(sh.sh_pubpath, &sh.sh_puberr);
	return (0);
}

/*
 * Forks the shipper (auditd, as root, before it reads the signing key);
 * *fd gets auditd's end of their channel. 0 without audit_central.
 */
pid_t
ship_start(const struct conf *c, const struct privsep_account *acct,
    int *fd)
{
	int	 pair[2];
	pid_t	 pid, auditd = getpid();

	*fd = -1;
	if (c->c_audit_central == NULL || c->c_audit_db == NULL)
		return (0);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == -1)
		return (-1);
	if ((pid = fork()) == -1) {
		close(pair[0]);
		close(pair[1]);
		return (-1);
	}
	if (pid > 0) {
		close(pair[1]);
		*fd = pair[0];
		return (pid);
	}
	log_init(log_debug_enabled(), "gatewayd[shipper]");
	prctl(PR_SET_NAME, "socksgw-shipper", 0, 0, 0);
	/*
	 * Background work: on a saturated node the sessions come first, and
	 * the lag (in the metrics) grows instead; the records are safe here.
	 */
	setpriority(PRIO_PROCESS, 0, SHIP_NICE);
	privsep_close_all_but(&pair[1], 1);	/* not the proxy's channel */
	sh.sh_fd = pair[1];
	sh.sh_url = c->c_audit_central;
	sh.sh_node = c->c_node_name;
	if (ship_open(c) == -1)
		_exit(0);
	privsep_become(acct);
	/* After the drop, which clears it: ends with auditd, whatever. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != auditd)
		_exit(0);		/* auditd is already gone */
	_exit(ship_loop());
}
