/*
 * quota_lease.c: a fleet node's leaser, the thread that leases bytes of
 * users' quotas from the fleet's store (quota_leases, schema/policy_store)
 * for quota_fleet.c.
 *
 * At each connection it takes a session lock on its node_name (a second
 * node of the same name would share its rows and read back the other's
 * grants: refused) and reads back this node's own rows of current
 * periods (what it already holds, after a restart). Then, whenever
 * quota_fleet.c wants more for a user, it takes a grant in one READ
 * COMMITTED transaction: an advisory lock on the user's period kind, the
 * sum of every node's rows whose period overlaps this node's (a node in
 * another time zone starts its day elsewhere: its day counts too), and
 * this node's row raised by what is left of the quota, at most the grant
 * asked. The lock makes the sum and the raise one step, so nodes leasing
 * at once never pass the quota together. Overlapping periods make the
 * sum conservative: across a change of daylight saving time, or between
 * zones, a user may get less, never more.
 *
 * A request the store did not answer waits for the next connection; what
 * the node holds meanwhile is all it relays (fail closed).
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "central.h"
#include "conf.h"
#include "log.h"

#include "account.h"

#define LEASE_SILENCE_S		15	/* a silent store: reconnect */
#define LEASE_PAUSE_S		2	/* after a statement the store refused */
#define LEASE_IDLE_S		5	/* between rounds with nothing asked */
#define LEASE_RETRY_MAX_S	10

enum { LEASE_OFF, LEASE_CONNECTING, LEASE_UP, LEASE_DOWN };
static const char *const lease_state_names[] = {
	[LEASE_OFF] = "off", [LEASE_CONNECTING] = "connecting",
	[LEASE_UP] = "up", [LEASE_DOWN] = "down",
};

static struct {
	char		*url;
	char		*node;
	int		 stop[2];	/* a byte: stop */
	int		 kick[2];	/* a byte: quota_fleet.c wants more */
	pthread_t	 thread;
	int		 running;
	char		 said[256];	/* the last error logged */
} ql = { .stop = { -1, -1 }, .kick = { -1, -1 } };

static _Atomic int	 ql_state = LEASE_OFF;
static _Atomic int64_t	 ql_granted;	/* bytes leased since the start */
static _Atomic int64_t	 ql_requests;
static _Atomic int64_t	 ql_short;	/* answered with less than asked */

static void
lease_error(const char *why)
{
	if (why[0] == '\0' || strcmp(why, ql.said) == 0)
		return;		/* a stop, or said already */
	snprintf(ql.said, sizeof(ql.said), "%s", why);
	log_warnx("quota leases: %s: users with a quota keep to what this "
	    "node holds", why);
}

static PGresult *
lease_query(PGconn *pg, const char *sql, int n, const char *const *vals,
    const int *lens, const int *fmts, int binary)
{
	PGresult	*r;
	char		 why[256];

	if ((r = central_query_wait(pg, sql, n, vals, lens, fmts, binary,
	    ql.stop[0], LEASE_SILENCE_S, why, sizeof(why))) == NULL)
		lease_error(why);
	return (r);
}

static int64_t
lease_be(const char *p, int len)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < len; i++)
		v = v << 8 | (unsigned char)p[i];
	return ((int64_t)v);
}

/*
 * A new connection: bounded waits for locks and open transactions (a
 * node that vanished mid-lease must not hold a user's lock for hours),
 * this node's name to itself, and its rows of current periods back (what
 * it holds already). -1 when the store failed or the name is taken.
 */
static int
lease_load(PGconn *pg)
{
	char		 since[24];
	const char	*vals[2] = { ql.node, since };
	PGresult	*r;
	char		 user[256];
	int		 i, len, mine;

	if ((r = lease_query(pg, "SELECT set_config('lock_timeout', '5s', "
	    "false), set_config('idle_in_transaction_session_timeout', '30s', "
	    "false)", 0, NULL, NULL, NULL, 0)) == NULL)
		return (-1);
	PQclear(r);
	if ((r = lease_query(pg, "SELECT pg_try_advisory_lock("
	    "hashtextextended('socksgw node ' || $1, 0))", 1, vals, NULL, NULL,
	    0)) == NULL)
		return (-1);
	mine = PQntuples(r) == 1 && PQnfields(r) == 1 &&
	    strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!mine) {
		lease_error("another node named the same (node_name) holds "
		    "this store's leases");
		return (-1);
	}
	/* A month is the longest period: older rows are history. */
	snprintf(since, sizeof(since), "%lld", (long long)time(NULL) -
	    32 * 86400);
	if ((r = lease_query(pg, "SELECT usr, period, start, granted FROM "
	    "quota_leases WHERE node = $1 AND start >= $2", 2, vals, NULL,
	    NULL, 1)) == NULL)
		return (-1);
	for (i = 0; PQnfields(r) == 4 && i < PQntuples(r); i++) {
		len = PQgetlength(r, i, 0);
		if (len <= 0 || len >= (int)sizeof(user) ||
		    PQgetlength(r, i, 1) != 2 || PQgetlength(r, i, 2) != 8 ||
		    PQgetlength(r, i, 3) != 8)
			continue;	/* not a row this build wrote */
		memcpy(user, PQgetvalue(r, i, 0), (size_t)len);
		user[len] = '\0';
		if (strlen(user) != (size_t)len)
			continue;
		quota_lease_loaded(user, (int)lease_be(PQgetvalue(r, i, 1), 2),
		    lease_be(PQgetvalue(r, i, 2), 8),
		    lease_be(PQgetvalue(r, i, 3), 8), time(NULL));
	}
	PQclear(r);
	return (0);
}

/* Seconds of a period kind, at most: the overlap of other zones' ones. */
static int64_t
lease_span(int period)
{
	static const int64_t	 span[] = { 0, 3600, 86400, 7 * 86400,
				    28 * 86400 };

	return (period > 0 && period < (int)(sizeof(span) / sizeof(span[0])) ?
	    span[period] : 0);
}

/*
 * One grant for r, in one transaction; *granted the bytes (0: the quota
 * is all leased). 0, or -1 when a statement failed (nothing granted;
 * the connection is still good when PQstatus says so: rolled back).
 */
static int
lease_one(PGconn *pg, const struct lease_req *r, int64_t *granted)
{
	char		 period[8], start[24], want[24], quota[24], from[24],
			 to[24];
	const char	*vals[6] = { r->lr_user, period, start, ql.node, want,
			    quota };
	const char	*span_vals[5] = { r->lr_user, period, from, to, NULL };
	int		 lens[6] = { (int)strlen(r->lr_user) }, fmts[6] = { 1 };
	PGresult	*res;
	int64_t		 sum = -1;

	snprintf(period, sizeof(period), "%d", r->lr_period);
	snprintf(start, sizeof(start), "%lld", (long long)r->lr_start);
	snprintf(quota, sizeof(quota), "%lld", (long long)r->lr_quota);
	snprintf(from, sizeof(from), "%lld", (long long)(r->lr_start -
	    lease_span(r->lr_period)));
	snprintf(to, sizeof(to), "%lld", (long long)(r->lr_start +
	    lease_span(r->lr_period)));
	*granted = 0;
	if ((res = lease_query(pg, "BEGIN ISOLATION LEVEL READ COMMITTED", 0,
	    NULL, NULL, NULL, 0)) == NULL)
		return (-1);
	PQclear(res);
	/* The user's periods of this kind, one node at a time. */
	if ((res = lease_query(pg, "SELECT pg_advisory_xact_lock("
	    "hashtextextended(encode($1, 'hex') || ':' || $2, "
	    "7308325130572129071))", 2, vals, lens, fmts, 0)) == NULL)
		goto fail;
	PQclear(res);
	if ((res = lease_query(pg, "SELECT coalesce(sum(granted), 0) FROM "
	    "quota_leases WHERE usr = $1 AND period = $2 AND start > $3 AND "
	    "start < $4", 4, span_vals, lens, fmts, 0)) == NULL)
		goto fail;
	if (PQntuples(res) == 1 && PQnfields(res) == 1)
		sum = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (sum < 0) {
		lease_error("the store's sum of leases is not a number of bytes");
		goto fail;
	}
	/* More than the quota leased (a quota lowered since): none left. */
	*granted = sum >= r->lr_quota ? 0 : r->lr_quota - sum < r->lr_want ?
	    r->lr_quota - sum : r->lr_want;
	snprintf(want, sizeof(want), "%lld", (long long)*granted);
	if (*granted > 0 && (res = lease_query(pg, "INSERT INTO quota_leases "
	    "(usr, period, start, node, granted, quota) VALUES ($1, $2, $3, $4, "
	    "$5, $6) ON CONFLICT (usr, period, start, node) DO UPDATE SET "
	    "granted = quota_leases.granted + EXCLUDED.granted, quota = "
	    "EXCLUDED.quota, time = now()", 6, vals, lens, fmts, 0)) == NULL)
		goto fail;
	if (*granted > 0)
		PQclear(res);
	if ((res = lease_query(pg, *granted > 0 ? "COMMIT" : "ROLLBACK", 0,
	    NULL, NULL, NULL, 0)) == NULL)
		goto fail;
	PQclear(res);
	return (0);
fail:
	*granted = 0;
	if (PQstatus(pg) == CONNECTION_OK && PQtransactionStatus(pg) !=
	    PQTRANS_ACTIVE && (res = PQexec(pg, "ROLLBACK")) != NULL)
		PQclear(res);
	return (-1);
}

/* Connected: every request, as they come; -1 when the store failed. */
static int
lease_session(PGconn *pg)
{
	struct lease_req	 r;
	char			 drain[64];
	int64_t			 granted;
	int			 w;

	if (lease_load(pg) == -1)
		return (-1);
	atomic_store(&ql_state, LEASE_UP);
	ql.said[0] = '\0';
	for (;;) {
		while (quota_lease_next(&r)) {
			atomic_fetch_add(&ql_requests, 1);
			if (lease_one(pg, &r, &granted) == -1) {
				quota_lease_done(&r, 0, 0);
				if (PQstatus(pg) != CONNECTION_OK ||
				    PQtransactionStatus(pg) != PQTRANS_IDLE)
					return (-1);
				/* Refused (a lock not had in 5 s): a pause,
				 * the others' turn, then this one again. */
				if (central_wait(ql.stop[0], -1, 0,
				    central_now() + LEASE_PAUSE_S) == -1)
					return (0);
				continue;
			}
			atomic_fetch_add(&ql_granted, granted);
			if (granted < r.lr_want)
				atomic_fetch_add(&ql_short, 1);
			quota_lease_done(&r, granted, 1);
		}
		w = central_wait(ql.stop[0], ql.kick[0], POLLIN, central_now() +
		    LEASE_IDLE_S);
		if (w == -1)
			return (0);
		while (read(ql.kick[0], drain, sizeof(drain)) > 0)
			;
	}
}

static void *
lease_main(void *arg)
{
	PGconn	*pg;
	char	 why[256];
	int	 backoff = 1, rc;

	(void)arg;
	for (;;) {
		if ((pg = central_connect_wait(ql.url, "gatewayd quota",
		    ql.stop[0], LEASE_SILENCE_S, why, sizeof(why))) != NULL) {
			backoff = 1;
			rc = lease_session(pg);
			PQfinish(pg);
			if (rc == 0)
				break;		/* stopped */
		} else
			lease_error(why);
		atomic_store(&ql_state, LEASE_DOWN);
		if (central_wait(ql.stop[0], -1, 0, central_now() + backoff) ==
		    -1)
			break;
		if (backoff < LEASE_RETRY_MAX_S)
			backoff *= 2;
	}
	return (NULL);
}

/* Before the workers: a fleet node's quotas are leased (policy_db URL). */
int
quota_lease_start(const struct conf *c, char **cause)
{
	if (c->c_policy_central == NULL)
		return (0);
	if ((ql.url = strdup(c->c_policy_central)) == NULL ||
	    (ql.node = strdup(c->c_node_name)) == NULL) {
		*cause = NULL;
		return (-1);
	}
	if (pipe2(ql.stop, O_CLOEXEC) == -1 ||
	    pipe2(ql.kick, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    (errno = pthread_create(&ql.thread, NULL, lease_main, NULL)) != 0) {
		if (asprintf(cause, "quota leaser: %s", strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	ql.running = 1;
	atomic_store(&ql_state, LEASE_CONNECTING);
	quota_fleet_on();
	return (0);
}

/* quota_fleet.c wants more (under its lock): a byte, never a wait. */
void
quota_lease_kick(void)
{
	if (ql.kick[1] != -1 && write(ql.kick[1], "k", 1) == -1 &&
	    errno != EAGAIN)
		log_warn("quota leaser");
}

void
quota_lease_stop(void)
{
	int	 i;
	struct lease_req	 r;

	if (ql.running) {
		if (write(ql.stop[1], "x", 1) != 1)
			log_warn("quota leaser: stop");
		pthread_join(ql.thread, NULL);
		ql.running = 0;
	}
	/* The workers are gone: what still waits lets its accounts go. */
	while (quota_lease_next(&r))
		quota_lease_done(&r, 0, 1);
	for (i = 0; i < 2; i++) {
		if (ql.stop[i] != -1)
			close(ql.stop[i]);
		if (ql.kick[i] != -1)
			close(ql.kick[i]);
		ql.stop[i] = ql.kick[i] = -1;
	}
	free(ql.url);
	free(ql.node);
	ql.url = ql.node = NULL;
	atomic_store(&ql_state, LEASE_OFF);
}

/* `, "quota_leases": {...}` for the stats answer; "" when not a node. */
int
quota_lease_json(char *buf, size_t len)
{
	int	 s = atomic_load(&ql_state);

	if (s == LEASE_OFF) {
		buf[0] = '\0';
		return (0);
	}
	return (snprintf(buf, len, ", \"quota_leases\": {\"state\": \"%s\", "
	    "\"requests\": %lld, \"short\": %lld, \"granted_bytes\": %lld}",
	    lease_state_names[s], (long long)atomic_load(&ql_requests),
	    (long long)atomic_load(&ql_short),
	    (long long)atomic_load(&ql_granted)));
}
