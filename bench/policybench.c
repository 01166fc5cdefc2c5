/*
 * policybench: the policy engine at enterprise size.
 *
 *	policybench gen DB [RULES [DOMAINS [CIDRS]]]
 *		writes a policy database: RULES rules (default 10,000) over
 *		1,000 users in 50 groups, a domain list of DOMAINS entries
 *		(1,000,000) and a CIDR list of CIDRS entries (100,000); the
 *		last rule allows 127.0.0.0/8, so the gateway bench can run
 *		through it
 *	policybench run DB [DECISIONS]
 *		compiles DB (time, memory) and times DECISIONS (1,000,000)
 *		random decisions one by one: median, p99, max
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "policy.h"

static unsigned long long rng = 88172645463325252ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return ((unsigned)(rng % n));
}

static double
now_s(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

static void
exec(sqlite3 *db, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "policybench: %s\n%s\n", err, sql);
		exit(1);
	}
}

static void
step(sqlite3 *db, sqlite3_stmt *st)
{
	if (sqlite3_step(st) != SQLITE_DONE) {
		fprintf(stderr, "policybench: %s\n", sqlite3_errmsg(db));
		exit(1);
	}
	sqlite3_reset(st);
}

/* The i-th name of the big domain list, and names never in it. */
static void
list_domain(unsigned i, char *out, size_t len)
{
	snprintf(out, len, "site%u.cat%u.example", i, i % 97);
}

static int
gen(const char *path, unsigned rules, unsigned domains, unsigned cidrs)
{
	static const char *const times[] = { "Mon-Fri 08:00-18:00",
		"Sat,Sun 10:00-16:00", "Mon-Sun 22:00-06:00" };
	sqlite3		*db;
	sqlite3_stmt	*ins, *cond;
	char		*cause = NULL, v[300];
	unsigned	 i, pos = 0;
	double		 t0 = now_s();

	unlink(path);
	if ((db = policy_db_open(path, POLICY_DB_CREATE, &cause)) == NULL) {
		fprintf(stderr, "policybench: %s\n", cause);
		return (1);
	}
	exec(db, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; BEGIN");
	for (i = 0; i < 50; i++) {
		snprintf(v, sizeof(v), "INSERT INTO groups (id, name) VALUES "
		    "(%u, 'g%u')", i + 1, i);
		exec(db, v);
	}
	for (i = 0; i < 1000; i++) {
		snprintf(v, sizeof(v), "INSERT INTO users (id, name) VALUES "
		    "(%u, 'u%u'); INSERT INTO user_groups VALUES (%u, %u)",
		    i + 1, i, i + 1, i % 50 + 1);
		exec(db, v);
	}
	exec(db, "INSERT INTO lists (id, name, type) VALUES (1, 'big', "
	    "'domain'), (2, 'nets', 'cidr')");
	sqlite3_prepare_v2(db, "INSERT INTO list_entries VALUES (?1, ?2)", -1,
	    &ins, NULL);
	for (i = 0; i < domains; i++) {
		list_domain(i, v, sizeof(v));
		sqlite3_bind_int(ins, 1, 1);
		sqlite3_bind_text(ins, 2, v, -1, SQLITE_TRANSIENT);
		step(db, ins);
	}
	for (i = 0; i < cidrs; i++) {
		/* /24s: all of 100.64.0.0/10, then from 11.0.0.0 on. */
		snprintf(v, sizeof(v), "%u.%u.%u.0/24", 100, 64 + (i >> 8) % 64,
		    i & 0xff);
		if (i >= 16384)
			snprintf(v, sizeof(v), "%u.%u.%u.0/24", 11 + (i >> 16),
			    (i >> 8) & 0xff, i & 0xff);
		sqlite3_bind_int(ins, 1, 2);
		sqlite3_bind_text(ins, 2, v, -1, SQLITE_TRANSIENT);
		step(db, ins);
	}
	sqlite3_finalize(ins);

	sqlite3_prepare_v2(db, "INSERT INTO rules (id, position, action) "
	    "VALUES (?1, ?1, ?2)", -1, &ins, NULL);
	sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO rule_conditions VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6)", -1, &cond, NULL);
#define COND(kind, value, u, g, l) do {					\
	sqlite3_bind_int(cond, 1, (int)pos);				\
	sqlite3_bind_text(cond, 2, kind, -1, SQLITE_STATIC);		\
	sqlite3_bind_text(cond, 3, value, -1, SQLITE_TRANSIENT);	\
	if (u) sqlite3_bind_int(cond, 4, u); else sqlite3_bind_null(cond, 4); \
	if (g) sqlite3_bind_int(cond, 5, g); else sqlite3_bind_null(cond, 5); \
	if (l) sqlite3_bind_int(cond, 6, l); else sqlite3_bind_null(cond, 6); \
	step(db, cond);							\
} while (0)
#define RULE(action) do {						\
	pos++;								\
	sqlite3_bind_int(ins, 1, (int)pos);				\
	sqlite3_bind_text(ins, 2, action, -1, SQLITE_STATIC);		\
	step(db, ins);							\
} while (0)
	RULE("deny");
	COND("dst_list", "big", 0, 0, 1);
	RULE("deny");
	COND("dst_list", "nets", 0, 0, 2);
	while (pos < rules - 1) {
		unsigned kind = rnd(10), u = rnd(1000), g = rnd(50);

		RULE(rnd(4) ? "allow" : "deny");
		if (kind < 4) {
			snprintf(v, sizeof(v), "u%u", u);
			COND("user", v, u + 1, 0, 0);
			snprintf(v, sizeof(v), "*.dept%u.example", rnd(500));
			COND("dst", v, 0, 0, 0);
			snprintf(v, sizeof(v), "%u", 1 + rnd(65000));
			COND("port", v, 0, 0, 0);
		} else if (kind < 7) {
			snprintf(v, sizeof(v), "g%u", g);
			COND("group", v, 0, g + 1, 0);
			snprintf(v, sizeof(v), "%u-%u", 1000 + rnd(1000),
			    3000 + rnd(3000));
			COND("port", v, 0, 0, 0);
			COND("time", times[rnd(3)], 0, 0, 0);
		} else if (kind < 9) {
			snprintf(v, sizeof(v), "172.%u.%u.0/24", 16 + rnd(16),
			    rnd(256));
			COND("dst", v, 0, 0, 0);
			snprintf(v, sizeof(v), "10.%u.0.0/16", rnd(256));
			COND("src", v, 0, 0, 0);
		} else {
			static const char *const cc[] = { "FR", "DE", "KP",
			    "IR", "BR", "JP" };
			COND("dst_country", cc[rnd(6)], 0, 0, 0);
			COND("cmd", rnd(2) ? "connect" : "udp", 0, 0, 0);
		}
	}
	RULE("allow");
	COND("dst", "127.0.0.0/8", 0, 0, 0);
	sqlite3_finalize(ins);
	sqlite3_finalize(cond);
	exec(db, "COMMIT");
	sqlite3_close(db);
	printf("generated %s: %u rules, %u domains, %u CIDRs in %.1f s\n",
	    path, pos, domains, cidrs, now_s() - t0);
	return (0);
}

static long
rss_kb(void)
{
	FILE	*f = fopen("/proc/self/status", "r");
	char	 line[256];
	long	 kb = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atol(line + 6);
	if (f != NULL)
		fclose(f);
	return (kb);
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

static int
run(const char *path, unsigned n)
{
	struct policy_verdict	 v;
	struct policy_req	 req;
	struct sockaddr_in	 cl, dst;
	struct policy		*p;
	char			*cause = NULL, name[300], user[16];
	double			*lat, t0, t1;
	long			 rss0 = rss_kb(), counts[3] = { 0 };
	unsigned		 i;

	t0 = now_s();
	if ((p = policy_load(path, NULL, &cause)) == NULL) {
		fprintf(stderr, "policybench: %s\n", cause);
		return (1);
	}
	t1 = now_s();
	printf("compile: %.2f s, %zu rules; snapshot %zu MiB by its own "
	    "count, process RSS +%ld MiB\n", t1 - t0, policy_rule_count(p),
	    policy_memory(p) >> 20, (rss_kb() - rss0) >> 10);
	if ((lat = calloc(n, sizeof(*lat))) == NULL)
		return (1);
	memset(&cl, 0, sizeof(cl));
	cl.sin_family = AF_INET;
	memset(&dst, 0, sizeof(dst));
	dst.sin_family = AF_INET;
	for (i = 0; i < n; i++) {
		memset(&req, 0, sizeof(req));
		snprintf(user, sizeof(user), "u%u", rnd(1200));
		req.user = user;
		cl.sin_addr.s_addr = htonl(0x0a000000 | rnd(1 << 24));
		req.client = (struct sockaddr *)&cl;
		req.cmd = POLICY_CMD_CONNECT;
		req.dst_port = (uint16_t)(1 + rnd(65000));
		req.now = 1795046400 + (time_t)rnd(7 * 86400);
		switch (rnd(4)) {
		case 0:		/* a listed name: denied before DNS */
			list_domain(rnd(1000000), name, sizeof(name));
			req.dst_name = name;
			break;
		case 1:		/* an unlisted name, before DNS */
			snprintf(name, sizeof(name), "www.dept%u.example",
			    rnd(1000));
			req.dst_name = name;
			break;
		case 2:		/* a name and its address */
			snprintf(name, sizeof(name), "host%u.dept%u.example",
			    rnd(100), rnd(1000));
			req.dst_name = name;
			dst.sin_addr.s_addr = htonl(rnd(2) ? 0xac100000 |
			    rnd(1 << 20) : 0x0b000000 | rnd(1 << 24));
			req.dst_addr = (struct sockaddr *)&dst;
			break;
		default:	/* an address */
			dst.sin_addr.s_addr = htonl(0x64400000 | rnd(1 << 22));
			req.dst_addr = (struct sockaddr *)&dst;
			break;
		}
		t0 = now_s();
		policy_decide(p, &req, &v);
		lat[i] = now_s() - t0;
		counts[v.action]++;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("decisions: %u (%ld allow, %ld deny, %ld resolve): median %.2f "
	    "us, p99 %.2f us, max %.1f us\n", n, counts[POLICY_ALLOW],
	    counts[POLICY_DENY], counts[POLICY_RESOLVE], lat[n / 2] * 1e6,
	    lat[(size_t)n * 99 / 100] * 1e6, lat[n - 1] * 1e6);
	free(lat);
	policy_unref(p);
	return (0);
}

int
main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "gen") == 0)
		return (gen(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 10000,
		    argc > 4 ? (unsigned)atoi(argv[4]) : 1000000,
		    argc > 5 ? (unsigned)atoi(argv[5]) : 100000));
	if (argc >= 3 && strcmp(argv[1], "run") == 0)
		return (run(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) :
		    1000000));
	fprintf(stderr, "usage: policybench gen DB [RULES [DOMAINS [CIDRS]]]\n"
	    "       policybench run DB [DECISIONS]\n");
	return (2);
}
