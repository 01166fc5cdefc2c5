/*
 * central.c: connecting to the fleet's PostgreSQL and bringing its schema
 * up to date.
 *
 * The URL is libpq's (postgresql://user@host:port/db?...), but never with a
 * password in it: gatewayd.conf is readable by more accounts than the
 * audit shipper's, and libpq reads the password from a passfile of mode
 * 0600 (passfile=..., or ~/.pgpass of the account that connects). What the
 * URL leaves unset gets bounds a gateway needs: a connect timeout, TCP
 * keepalives and a statement timeout, so a server that stops answering
 * costs seconds, never a stuck shipper; and, over TCP, TLS that checks
 * the server's certificate (sslmode verify-full).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "central.h"
#include "schema.h"

/* Keys a URL may leave unset, with the value a gateway uses then. */
static const struct {
	const char	*cd_key;
	const char	*cd_value;
} central_defaults[] = {
	{ "connect_timeout", "5" },
	{ "keepalives", "1" },
	{ "keepalives_idle", "10" },
	{ "keepalives_interval", "5" },
	{ "keepalives_count", "3" },
	{ "tcp_user_timeout", "20000" },
	{ "options", "-c statement_timeout=30000" },
	/* TLS or nothing, as sslmode says: not a Kerberos ticket lying about */
	{ "gssencmode", "disable" },
};
#define CENTRAL_NDEFAULTS \
	(sizeof(central_defaults) / sizeof(central_defaults[0]))

/* 0, or -1 with why: the URL does not parse, or carries a password. */
int
central_url_check(const char *url, char *why, size_t len)
{
	PQconninfoOption	*opts, *o;
	char			*err = NULL;
	int			 rc = 0;

	if (strncmp(url, "postgresql://", 13) != 0 &&
	    strncmp(url, "postgres://", 11) != 0) {
		snprintf(why, len, "a postgresql:// URL expected");
		return (-1);
	}
	if ((opts = PQconninfoParse(url, &err)) == NULL) {
		/* libpq's message names the part it could not read. */
		snprintf(why, len, "%s", err != NULL ? err : "out of memory");
		why[strcspn(why, "\n")] = '\0';
		PQfreemem(err);
		return (-1);
	}
	for (o = opts; o->keyword != NULL; o++)
		if ((strcmp(o->keyword, "password") == 0 ||
		    strcmp(o->keyword, "sslpassword") == 0) && o->val != NULL &&
		    o->val[0] != '\0') {
			snprintf(why, len, "a %s in the URL: put a password in "
			    "a libpq passfile of mode 0600 (passfile=PATH), and "
			    "use a client key without one", o->keyword);
			rc = -1;
		}
	PQconninfoFree(opts);
	return (rc);
}

/* A server's notices ("already exists, skipping") are nobody's business. */
static void
central_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * Does the URL reach the server only through Unix sockets (a host that is
 * a path, or none)? Only then may it go without TLS by default: on TCP,
 * even to 127.0.0.1, any local account can listen on the port while the
 * server is down, ask for the password in clear and acknowledge records
 * it throws away.
 */
static int
central_local(const PQconninfoOption *opts)
{
	const PQconninfoOption	*o;
	const char		*p, *end;

	for (o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "hostaddr") == 0 && o->val != NULL &&
		    o->val[0] != '\0')
			return (0);
		if (strcmp(o->keyword, "host") != 0 || o->val == NULL)
			continue;
		for (p = o->val; *p != '\0'; p = *end ? end + 1 : end) {
			end = p + strcspn(p, ",");
			if (p[0] != '/' && p[0] != '@')
				return (0);
		}
	}
	return (1);	/* none named: the Unix socket */
}

/*
 * The connection parameters for url (keys and vals, NULL-terminated, of
 * CENTRAL_NPARAMS at most): the URL's own, and the defaults it leaves.
 */
#define CENTRAL_NPARAMS	(CENTRAL_NDEFAULTS + 4)
static int
central_params(const char *url, const char *app, const char **keys,
    const char **vals, char *why, size_t len)
{
	PQconninfoOption	*opts, *o;
	size_t			 i, n = 0;

	if (central_url_check(url, why, len) == -1)
		return (-1);
	if ((opts = PQconninfoParse(url, NULL)) == NULL) {
		snprintf(why, len, "out of memory");
		return (-1);
	}
	keys[n] = "dbname";
	vals[n++] = url;
	for (i = 0; i < CENTRAL_NDEFAULTS; i++) {
		for (o = opts; o->keyword != NULL; o++)
			if (strcmp(o->keyword, central_defaults[i].cd_key) == 0)
				break;
		if (o->keyword != NULL && o->val != NULL)
			continue;	/* the URL's own */
		keys[n] = central_defaults[i].cd_key;
		vals[n++] = central_defaults[i].cd_value;
	}
	/*
	 * Over TCP: TLS with the certificate checked against the host name,
	 * unless the URL says otherwise (sslmode=...): libpq's default,
	 * "prefer", lets anyone on the path pose as the store, take the
	 * records and acknowledge them, or hand out a policy of its own.
	 */
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "sslmode") == 0)
			break;
	if (o->keyword != NULL && o->val == NULL && !central_local(opts)) {
		keys[n] = "sslmode";
		vals[n++] = "verify-full";
	}
	keys[n] = "application_name";
	vals[n++] = app;
	keys[n] = NULL;
	vals[n] = NULL;
	PQconninfoFree(opts);
	return (0);
}

/*
 * Connects: blocking, within connect_timeout; or, with start, only begun
 * (PQconnectPoll goes on), for a caller that must stay able to stop at
 * once. NULL with why. app names the connection in pg_stat_activity.
 */
static PGconn *
central_open(const char *url, const char *app, int start, char *why,
    size_t len)
{
	const char	*keys[CENTRAL_NPARAMS], *vals[CENTRAL_NPARAMS];
	PGconn		*pg;

	if (central_params(url, app, keys, vals, why, len) == -1)
		return (NULL);
	pg = start ? PQconnectStartParams(keys, vals, 1) :
	    PQconnectdbParams(keys, vals, 1);
	if (pg == NULL || PQstatus(pg) == CONNECTION_BAD ||
	    (!start && PQstatus(pg) != CONNECTION_OK)) {
		snprintf(why, len, "%s", pg != NULL ? PQerrorMessage(pg) :
		    "out of memory");
		why[strcspn(why, "\n")] = '\0';
		PQfinish(pg);
		return (NULL);
	}
	PQsetNoticeProcessor(pg, central_notice, NULL);
	return (pg);
}

PGconn *
central_connect(const char *url, const char *app, char *why, size_t len)
{
	return (central_open(url, app, 0, why, len));
}

PGconn *
central_connect_start(const char *url, const char *app, char *why,
    size_t len)
{
	return (central_open(url, app, 1, why, len));
}

/* Did the statement work? 1, or 0 with the server's first line in why. */
int
central_ok(PGresult *r, char *why, size_t len)
{
	int	 ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
		    PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok) {
		snprintf(why, len, "%s", r != NULL ? PQresultErrorMessage(r) :
		    "out of memory");
		why[strcspn(why, "\n")] = '\0';
	}
	return (ok);
}

static int
central_exec(PGconn *pg, const char *sql, char *why, size_t len)
{
	PGresult	*r = PQexec(pg, sql);
	int		 ok = central_ok(r, why, len);

	PQclear(r);
	return (ok ? 0 : -1);
}

/*
 * Brings one part of the store (name: "central", the audit trail, or
 * "policy", the fleet's policy; each with its own version, so that a node
 * of an older build keeps shipping its audit to a store that holds a
 * policy too) to this build's version, in one transaction under an
 * advisory lock (nodes starting together migrate once). A part newer than
 * this build is refused: its records may carry fields this build would
 * not ship.
 */
int
central_migrate(PGconn *pg, const char *name, char *why, size_t len)
{
	const struct schema_migration	*m, *set;
	PGresult			*r;
	const char			*param[1] = { name };
	char				 sql[200];
	int				 have = 0, want = 0;

	set = strcmp(name, "policy") == 0 ? schema_policy_store :
	    schema_central;
	for (m = set; m->sm_sql != NULL; m++)
		want = m->sm_version;
	if (central_exec(pg, "BEGIN; SELECT pg_advisory_xact_lock("
	    "7308325130572129069); CREATE TABLE IF NOT EXISTS socksgw_schema ("
	    "name text PRIMARY KEY, version integer NOT NULL)", why, len) == -1)
		goto fail;
	r = PQexecParams(pg, "SELECT version FROM socksgw_schema WHERE name = "
	    "$1", 1, NULL, param, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    PQnfields(r) == 1)	/* a server's answer is checked, not trusted */
		have = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (have > want) {
		snprintf(why, len, "the store's %s schema is at version %d; "
		    "this build knows %d: upgrade it", name, have, want);
		goto fail;
	}
	for (m = set; m->sm_sql != NULL; m++) {
		if (m->sm_version <= have)
			continue;
		if (central_exec(pg, m->sm_sql, why, len) == -1)
			goto fail;
	}
	snprintf(sql, sizeof(sql), "INSERT INTO socksgw_schema VALUES "
	    "('%s', %d) ON CONFLICT (name) DO UPDATE SET version = %d",
	    set == schema_policy_store ? "policy" : "central", want, want);
	if (central_exec(pg, sql, why, len) == -1 ||
	    central_exec(pg, "COMMIT", why, len) == -1)
		goto fail;
	return (0);
fail:
	central_exec(pg, "ROLLBACK", sql, sizeof(sql));
	return (-1);
}
