/*
 * auditbench: the audit log at scale.
 *
 *	auditbench write DB [RECORDS]
 *		pushes RECORDS (default 1,000,000) complete session records
 *		through gatewayd's own path (the proxy's queue and shipper,
 *		the channel, an auditd process: batches, hash chain) into DB,
 *		and prints records per second
 *	auditbench gen DB [RECORDS]
 *		writes RECORDS (default 10,000,000) records straight into DB,
 *		over 30 days and 5,000 users, for timing socksctl's queries
 */
#include <sys/wait.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gatewayd.h"
#include "auditd.h"
#include "policy.h"

_Atomic unsigned	 gw_nsessions;

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static int
write_bench(const char *path, long n)
{
	struct conf	*c = conf_default();
	struct audit_rec r;
	char		*cause = NULL;
	double		 t0, t1;
	long		 i;
	pid_t		 pid;
	int		 fd;

	/* An existing DB is written on: the rate on a large, old log. */
	c->c_audit_db = strdup(path);
	if ((pid = auditd_start(c, &fd, &cause)) == -1 ||
	    auditd_wait_ready(fd, &cause) == -1 ||
	    audit_init(c, fd, 0, &cause) == -1 || audit_start(&cause) == -1) {
		fprintf(stderr, "auditbench: %s\n", cause);
		return (1);
	}
	memset(&r, 0, sizeof(r));
	r.ar_type = AR_WHOLE;
	r.ar_allow = 1;
	r.ar_rule = 42;
	snprintf(r.ar_client, sizeof(r.ar_client), "10.1.2.3");
	snprintf(r.ar_cmd, sizeof(r.ar_cmd), "connect");
	snprintf(r.ar_reason, sizeof(r.ar_reason), "rule 42 allows");
	snprintf(r.ar_close, sizeof(r.ar_close), "client closed");
	t0 = now_s();
	for (i = 0; i < n; i++) {
		r.ar_sid = (uint64_t)i + 1;
		r.ar_start_ms = 1795771679000 + i;
		r.ar_end_ms = r.ar_start_ms + 20;
		r.ar_client_port = (uint16_t)(1024 + i % 60000);
		snprintf(r.ar_user, sizeof(r.ar_user), "user%ld", i % 5000);
		snprintf(r.ar_dst_host, sizeof(r.ar_dst_host),
		    "www%ld.example.com", i % 997);
		snprintf(r.ar_dst_addr, sizeof(r.ar_dst_addr), "192.0.2.%ld",
		    i % 250);
		r.ar_dst_port = 443;
		r.ar_up = (uint64_t)i;
		r.ar_down = (uint64_t)i * 3;
		/* A full queue: let the writer have the CPU. */
		while (audit_offer(&r) == -1)
			usleep(200);
	}
	audit_stop();		/* returns when every record is committed */
	waitpid(pid, NULL, 0);
	t1 = now_s();
	printf("audit writer: %ld records in %.2f s: %.0f records/s\n", n,
	    t1 - t0, (double)n / (t1 - t0));
	conf_unref(c);
	return (0);
}

static int
gen(const char *path, long n)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		*cause = NULL, user[32], host[64];
	int64_t		 now = (int64_t)time(NULL) * 1000;
	double		 t0 = now_s();
	long		 i;

	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    db_schema_migrate(db, DB_SCHEMA_AUDIT, &cause) == -1) {
		fprintf(stderr, "auditbench: %s\n", cause ? cause :
		    sqlite3_errmsg(db));
		return (1);
	}
	sqlite3_exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; "
	    "BEGIN", NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO records (kind, session_id, start_ms, "
	    "end_ms, user, client_addr, client_port, command, dst_host, "
	    "dst_addr, dst_port, verdict, rule_id, reason, bytes_up, "
	    "bytes_down, close_reason, seq, hash) VALUES ('session', ?1, ?2, "
	    "?3, ?4, '10.1.2.3', 40000, 'connect', ?5, '192.0.2.1', 443, ?6, "
	    "?7, 'rule', ?8, ?9, 'client closed', ?1, zeroblob(32))", -1, &st,
	    NULL);
	for (i = 0; i < n; i++) {
		/* 30 days back to now, in order. */
		int64_t	 start = now - 30LL * 86400000 + i * (30LL * 86400000 /
		    n);

		snprintf(user, sizeof(user), "user%ld", (i * 7919) % 5000);
		snprintf(host, sizeof(host), "www%ld.example.com", i % 997);
		sqlite3_bind_int64(st, 1, i + 1);
		sqlite3_bind_int64(st, 2, start);
		sqlite3_bind_int64(st, 3, start + 1500);
		sqlite3_bind_text(st, 4, user, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 5, host, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 6, i % 10 ? "allow" : "deny", -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, i % 10 ? 1 + i % 50 : 0);
		sqlite3_bind_int64(st, 8, i % 100000);
		sqlite3_bind_int64(st, 9, i % 1000000);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "auditbench: %s\n", sqlite3_errmsg(db));
			return (1);
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sqlite3_exec(db, "COMMIT; PRAGMA journal_mode = WAL", NULL, NULL, NULL);
	sqlite3_close(db);
	printf("generated %s: %ld records in %.0f s\n", path, n, now_s() - t0);
	return (0);
}

int
main(int argc, char **argv)
{
	log_init(0, "auditbench");
	if (argc >= 3 && strcmp(argv[1], "write") == 0)
		return (write_bench(argv[2], argc > 3 ? atol(argv[3]) :
		    1000000));
	if (argc >= 3 && strcmp(argv[1], "gen") == 0)
		return (gen(argv[2], argc > 3 ? atol(argv[3]) : 10000000));
	fprintf(stderr, "usage: auditbench write|gen DB [RECORDS]\n");
	return (2);
}
