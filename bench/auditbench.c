/*
 * auditbench: the audit log at scale.
 *
 *	auditbench write DB [RECORDS]
 *		pushes RECORDS (default 1,000,000) complete session records
 *		through gatewayd's own path (the proxy's queue and shipper,
 *		the channel, an auditd process: batches, hash chain) into DB,
 *		and prints records per second
 *	auditbench gen DB [RECORDS]
 *		writes RECORDS (default 10,000,000) records into DB with
 *		auditd's own store (a real chain, signed checkpoints, the
 *		rollups), over the last 30 days and 5,000 users: for timing
 *		socksctl's queries, and for soaks that start from a large log
 */
#include <sys/wait.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit_chain.h"
#include "conf.h"
#include "log.h"
#include "policy.h"

#include "auditd/audit.h"
#include "auditd/auditd.h"
#include "base/clock.h"

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
	r.ar_auth = AUDIT_AUTH_PASSWORD;
	snprintf(r.ar_client, sizeof(r.ar_client), "10.1.2.3");
	snprintf(r.ar_cmd, sizeof(r.ar_cmd), "connect");
	snprintf(r.ar_reason, sizeof(r.ar_reason), "rule 42 allows");
	snprintf(r.ar_close, sizeof(r.ar_close), "client closed");
	{
		struct timespec	 ts;	/* as main.c starts them */

		clock_gettime(CLOCK_REALTIME, &ts);
		if (gw_next_sid < (uint64_t)ts.tv_sec << GW_SID_SHIFT)
			gw_next_sid = (uint64_t)ts.tv_sec << GW_SID_SHIFT;
	}
	t0 = now_s();
	for (i = 0; i < n; i++) {
		/* As the proxy numbers them: above every id on record. */
		r.ar_sid = atomic_fetch_add(&gw_next_sid, 1);
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
	/*
	 * Each commit writes every page it touched, and records of 5,000
	 * users touch a leaf of the user index each: the larger the batch,
	 * the fewer times a leaf is written. Checkpoints (one per batch) stay
	 * within a prune step (AUDIT_PRUNE_STEP, 20,000) of each other.
	 */
	static struct audit_rec	 batch[16384];
	struct conf		*c = conf_default();
	sqlite3			*db;
	char			*cause = NULL;
	int64_t			 now = (int64_t)time(NULL) * 1000, rolled;
	double			 t0 = now_s();
	long			 i;
	size_t			 k = 0;

	unlink(path);
	c->c_audit_db = strdup(path);
	/* A leaf of the user index for each of the 5,000 users. */
	c->c_audit_cache_size = 256UL * 1024 * 1024;
	if (store_open(c, &cause) == -1) {
		fprintf(stderr, "auditbench: %s\n", cause ? cause : "?");
		return (1);
	}
	/*
	 * Written by auditd's own store (audit_store.c): a real chain, signed
	 * checkpoints every 10,000 records with the key beside DB, the pages
	 * and indexes auditd makes, so a soak can go on from it and prune it.
	 */
	for (i = 0; i < n; i++) {
		/* 30 days back to now, in order. */
		int64_t	 start = now - 30LL * 86400000 + i * (30LL * 86400000 /
		    n);
		struct audit_rec *r = &batch[k++];

		memset(r, 0, sizeof(*r));
		r->ar_type = AR_WHOLE;
		r->ar_sid = (uint64_t)i + 1;
		r->ar_start_ms = start;
		r->ar_end_ms = start + 1500;
		r->ar_proto = 5;
		r->ar_auth = AUDIT_AUTH_PASSWORD;	/* users log in */
		snprintf(r->ar_user, sizeof(r->ar_user), "user%ld",
		    (i * 7919) % 5000);
		snprintf(r->ar_client, sizeof(r->ar_client), "10.1.2.3");
		r->ar_client_port = 40000;
		snprintf(r->ar_cmd, sizeof(r->ar_cmd), "connect");
		snprintf(r->ar_dst_host, sizeof(r->ar_dst_host),
		    "www%ld.example.com", i % 997);
		snprintf(r->ar_dst_addr, sizeof(r->ar_dst_addr), "192.0.2.1");
		r->ar_dst_port = 443;
		r->ar_allow = i % 10 != 0;
		r->ar_rule = i % 10 ? 1 + i % 50 : 0;
		snprintf(r->ar_reason, sizeof(r->ar_reason), "rule");
		r->ar_up = (uint64_t)(i % 100000);
		r->ar_down = (uint64_t)(i % 1000000);
		snprintf(r->ar_close, sizeof(r->ar_close), "client closed");
		if (k == sizeof(batch) / sizeof(batch[0]) || i == n - 1) {
			if (store_write(batch, k, 0, 0) == -1) {
				fprintf(stderr, "auditbench: writing failed\n");
				return (1);
			}
			store_checkpoint(gw_mono_ms(), 0);
			k = 0;
		}
	}
	store_checkpoint(gw_mono_ms(), 1);
	store_close();
	/* The hourly rollups the reports read, all at once. */
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    (rolled = audit_rollup(db, INT64_MAX, &cause)) == -1) {
		fprintf(stderr, "auditbench: %s\n", cause ? cause : "rollup");
		return (1);
	}
	sqlite3_close(db);
	conf_unref(c);
	printf("generated %s: %ld records in %.0f s (%lld rolled up)\n", path,
	    n, now_s() - t0, (long long)rolled);
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
