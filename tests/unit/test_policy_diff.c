/*
 * Differential test of the policy engine: random rule sets are written to
 * a real (in-memory) SQLite policy database and compiled, and for random
 * requests the compiled engine must agree with a plain reference evaluator
 * written here from the rules as generated: a straight loop over the rules
 * in order, each condition checked by string and prefix comparison.
 *
 *	test_policy_diff [SETS [REQUESTS_PER_SET [SEED]]]
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sqlite3.h>

#include "policy.h"

#define MAXR	48
#define MAXC	12

enum kind { K_USER, K_GROUP, K_SRC, K_DST, K_DLIST, K_PORT, K_CMD, K_TIME };
static const char *const kind_sql[] = { "user", "group", "src", "dst",
	"dst_list", "port", "cmd", "time" };

struct cond {
	enum kind	 kind;
	const char	*value;
};

struct rule {
	int		 allow;
	int		 enabled;
	struct cond	 c[MAXC];
	int		 nc;
};

static const char *const users[] = { "u0", "u1", "u2", "u3", "u4" };
static const char *const groups[] = { "g0", "g1", "g2", "g3" };
static const char *const src_cidrs[] = { "10.0.0.0/8", "10.1.0.0/16",
	"10.1.2.0/24", "192.168.0.0/16", "2001:db8::/32", "2001:db8:1::/48",
	"0.0.0.0/0" };
static const char *const clients[] = { "10.1.2.3", "10.2.0.1", "192.168.1.1",
	"172.16.0.1", "2001:db8:1::5", "2001:db8:2::1", "::ffff:10.1.2.3" };
static const char *const dst_values[] = { "a.example.com", "example.com",
	"x.test", "*.example.com", "*.a.example.com", "*.test", "127.0.0.0/8",
	"127.0.0.1/32", "198.51.100.0/24", "198.51.100.7/32", "0.0.0.0/0",
	"::/0", "::1/128", "2001:db8::/32", "169.254.169.254/32",
	"192.0.2.254/32" };
static const char *const names[] = { "a.example.com", "b.example.com",
	"example.com", "x.test", "deep.a.example.com", "other.org",
	"Deep.A.Example.COM", "test" };
static const char *const addrs[] = { "127.0.0.1", "198.51.100.7",
	"198.51.100.200", "169.254.169.254", "2001:db8::5", "::1",
	"203.0.113.5", "192.0.2.254", "::ffff:127.0.0.1", "::ffff:198.51.100.7" };
static const char *const ports[] = { "80", "443", "1-1024", "8000-9000" };
static const int req_ports[] = { 22, 80, 443, 8080, 9000, 65535 };
static const char *const cmds[] = { "connect", "bind", "udp" };
static const char *const times[] = { "Mon-Fri 08:00-18:00",
	"Sat,Sun 00:00-24:00", "Fri-Mon 22:00-06:00", "Wed 12:00-13:00" };
static const char *const specials[] = { "0.0.0.0/8", "127.0.0.0/8",
	"169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "100.64.0.0/10",
	"192.0.0.0/24", "198.18.0.0/15", "::/128", "::1/128", "fe80::/10",
	"fec0::/10", "ff00::/8", "64:ff9b:1::/48", "fd00:ec2::254/128" };
static const char *const self_addr = "192.0.2.254";

/* Lists: fixed contents; rules pick among them. */
static const char *const lists[] = { "D1", "D2", "C1", "C2" };
static const char *const list_entries[][3] = {
	{ "example.com", "x.test", NULL },
	{ "a.example.com", "other.org", NULL },
	{ "198.51.100.0/25", "127.0.0.0/8", NULL },
	{ "2001:db8::/32", "169.254.0.0/16", NULL },
};

static int	 membership[5][4];	/* database groups of each user */
static int	 disabled[5];

static unsigned long long rng_state;

static unsigned
rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((unsigned)(rng_state >> 33) % n);
}

#define PICK(a)	((a)[rnd(sizeof(a) / sizeof((a)[0]))])

/* Reference address handling --------------------------------------------- */

struct addr {
	int	 fam;
	uint8_t	 b[16];
};

static int
parse_addr(const char *s, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->b) == 1) {
		a->fam = AF_INET;
		return (0);
	}
	if (inet_pton(AF_INET6, s, a->b) != 1)
		return (-1);
	a->fam = AF_INET6;
	if (memcmp(a->b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		memmove(a->b, a->b + 12, 4);
		memset(a->b + 4, 0, 12);
		a->fam = AF_INET;
	}
	return (0);
}

static int
cidr_contains(const char *cidr, const struct addr *a, int *plen)
{
	char		 host[64];
	const char	*slash = strchr(cidr, '/');
	struct addr	 net;
	int		 len, i;

	snprintf(host, sizeof(host), "%.*s", (int)(slash - cidr), cidr);
	if (parse_addr(host, &net) == -1)
		return (0);
	len = atoi(slash + 1);
	if (plen != NULL)
		*plen = len;
	if (net.fam != a->fam)
		return (0);
	for (i = 0; i < len; i++)
		if (((net.b[i / 8] ^ a->b[i / 8]) >> (7 - i % 8)) & 1)
			return (0);
	return (1);
}

/* Whether every address of cidr lies in a special range. */
static int
cidr_is_special(const char *cidr)
{
	char		 host[64];
	const char	*slash = strchr(cidr, '/');
	struct addr	 net;
	size_t		 i;
	int		 len, slen;

	snprintf(host, sizeof(host), "%.*s", (int)(slash - cidr), cidr);
	parse_addr(host, &net);
	len = atoi(slash + 1);
	if (strcmp(host, self_addr) == 0 && len == 32)
		return (1);
	for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		if (cidr_contains(specials[i], &net, &slen) && len >= slen)
			return (1);
	return (0);
}

static int
addr_is_special(const struct addr *a)
{
	struct addr	 self;
	size_t		 i;

	parse_addr(self_addr, &self);
	if (a->fam == self.fam && memcmp(a->b, self.b, 4) == 0)
		return (1);
	for (i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		if (cidr_contains(specials[i], a, NULL))
			return (1);
	return (0);
}

/* Reference evaluator ----------------------------------------------------- */

struct req {
	const char	*user;
	const char	*sysgroups[2];
	int		 nsys;
	const char	*client;
	int		 cmd;
	const char	*name;
	const char	*addr;
	int		 port;
	time_t		 now;
};

static int
name_in(const char *name, const char *dom)
{
	size_t	 n = strlen(name), d = strlen(dom);

	if (strcasecmp(name, dom) == 0)
		return (1);
	return (n > d && name[n - d - 1] == '.' &&
	    strcasecmp(name + n - d, dom) == 0);
}

static int
is_cidr(const char *v)
{
	return (strchr(v, '/') != NULL);
}

static int
list_index(const char *name)
{
	int	 i;

	for (i = 0; i < 4; i++)
		if (strcmp(lists[i], name) == 0)
			return (i);
	return (-1);
}

static int
time_match(const char *spec, time_t now)
{
	struct tm	 tm;
	int		 days = 0, start, end, mins, wd, yd;

	gmtime_r(&now, &tm);
	mins = tm.tm_hour * 60 + tm.tm_min;
	wd = tm.tm_wday;
	yd = (wd + 6) % 7;
	if (strcmp(spec, times[0]) == 0) {
		days = 0x3e; start = 480; end = 1080;
	} else if (strcmp(spec, times[1]) == 0) {
		days = 0x41; start = 0; end = 1440;
	} else if (strcmp(spec, times[2]) == 0) {
		days = 0x63; start = 1320; end = 360;	/* Fri, Sat, Sun, Mon */
	} else {
		days = 0x08; start = 720; end = 780;
	}
	if (start < end)
		return ((days >> wd & 1) && mins >= start && mins < end);
	return (((days >> wd & 1) && mins >= start) ||
	    ((days >> yd & 1) && mins < end));
}

enum m { NO, YES, MAYBE };

static enum m
ref_match(const struct rule *r, const struct req *q, const struct addr *dst,
    int *names_special)
{
	struct addr	 cl;
	int		 has[8] = { 0 }, ok[8] = { 0 }, maybe_dst = 0;
	int		 i, j, k, li, u;

	*names_special = 0;
	parse_addr(q->client, &cl);
	for (i = 0; i < r->nc; i++) {
		const struct cond *c = &r->c[i];
		enum kind kk = c->kind == K_GROUP ? K_USER :
		    c->kind == K_DLIST ? K_DST : c->kind;

		has[kk] = 1;
		switch (c->kind) {
		case K_USER:
			if (q->user && strcmp(q->user, c->value) == 0)
				ok[kk] = 1;
			break;
		case K_GROUP:
			if (q->user == NULL)
				break;
			u = q->user[1] - '0';
			if (membership[u][c->value[1] - '0'])
				ok[kk] = 1;
			for (j = 0; j < q->nsys; j++)
				if (strcmp(q->sysgroups[j], c->value) == 0)
					ok[kk] = 1;
			break;
		case K_SRC:
			if (cidr_contains(c->value, &cl, NULL))
				ok[kk] = 1;
			break;
		case K_DST:
			if (is_cidr(c->value)) {
				if (dst == NULL)
					maybe_dst = 1;
				else if (cidr_contains(c->value, dst, NULL)) {
					ok[kk] = 1;
					if (cidr_is_special(c->value))
						*names_special = 1;
				}
			} else if (q->name != NULL) {
				if (strncmp(c->value, "*.", 2) == 0 ?
				    name_in(q->name, c->value + 2) :
				    strcasecmp(q->name, c->value) == 0)
					ok[kk] = 1;
			}
			break;
		case K_DLIST:
			li = list_index(c->value);
			for (k = 0; list_entries[li][k] != NULL; k++) {
				const char *e = list_entries[li][k];

				if (is_cidr(e)) {
					if (dst == NULL)
						maybe_dst = 1;
					else if (cidr_contains(e, dst, NULL))
						ok[kk] = 1;
				} else if (q->name && name_in(q->name, e))
					ok[kk] = 1;
			}
			break;
		case K_PORT: {
			int lo = atoi(c->value), hi = lo;
			const char *d = strchr(c->value, '-');

			if (d)
				hi = atoi(d + 1);
			if (q->port >= lo && q->port <= hi)
				ok[kk] = 1;
			break;
		}
		case K_CMD:
			if (strcmp(cmds[q->cmd - 1], c->value) == 0)
				ok[kk] = 1;
			break;
		case K_TIME:
			if (time_match(c->value, q->now))
				ok[kk] = 1;
			break;
		}
	}
	for (i = 0; i < 8; i++) {
		if (i == K_DST)
			continue;
		if (has[i] && !ok[i])
			return (NO);
	}
	if (has[K_DST] && !ok[K_DST])
		return (maybe_dst ? MAYBE : NO);
	return (YES);
}

static void
ref_decide(const struct rule *rules, int n, const struct req *q, int *action,
    int *rule)
{
	struct addr	 dst;
	int		 i, special = 0, ns;
	enum m		 m;

	*action = POLICY_DENY;
	*rule = 0;
	if (q->user != NULL && disabled[q->user[1] - '0'])
		return;
	if (q->addr != NULL) {
		parse_addr(q->addr, &dst);
		special = addr_is_special(&dst);
	}
	for (i = 0; i < n; i++) {
		if (!rules[i].enabled)
			continue;
		m = ref_match(&rules[i], q, q->addr ? &dst : NULL, &ns);
		if (m == NO)
			continue;
		if (q->addr == NULL && q->name != NULL) {
			*rule = i + 1;
			*action = m == YES && !rules[i].allow ? POLICY_DENY :
			    POLICY_RESOLVE;
			return;
		}
		if (special && rules[i].allow && !ns)
			continue;
		*rule = i + 1;
		*action = rules[i].allow ? POLICY_ALLOW : POLICY_DENY;
		return;
	}
}

/* Generation --------------------------------------------------------------- */

static void
gen_rules(struct rule *rules, int n)
{
	int	 i, k, reps;

	for (i = 0; i < n; i++) {
		struct rule *r = &rules[i];

		memset(r, 0, sizeof(*r));
		r->allow = rnd(3) != 0;
		r->enabled = rnd(10) != 0;
		for (k = 0; k <= K_TIME; k++) {
			if (rnd(100) >= (k == K_DST ? 50 : 22))
				continue;
			for (reps = 1 + (int)rnd(2); reps > 0; reps--) {
				const char *v = NULL;

				switch (k) {
				case K_USER: v = PICK(users); break;
				case K_GROUP: v = PICK(groups); break;
				case K_SRC: v = PICK(src_cidrs); break;
				case K_DST: v = PICK(dst_values); break;
				case K_DLIST: v = PICK(lists); break;
				case K_PORT: v = PICK(ports); break;
				case K_CMD: v = PICK(cmds); break;
				case K_TIME: v = PICK(times); break;
				}
				r->c[r->nc].kind = (enum kind)k;
				r->c[r->nc].value = v;
				r->nc++;
			}
		}
	}
}

static void
exec(sqlite3 *db, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "SQL error: %s\n%s\n", err, sql);
		exit(1);
	}
}

static sqlite3 *
write_db(const struct rule *rules, int n)
{
	sqlite3		*db;
	char		*cause = NULL, sql[512];
	int		 i, k;

	if ((db = policy_db_open(":memory:", POLICY_DB_CREATE, &cause)) ==
	    NULL) {
		fprintf(stderr, "%s\n", cause);
		exit(1);
	}
	exec(db, "BEGIN");
	for (i = 0; i < 5; i++) {
		disabled[i] = rnd(6) == 0;
		snprintf(sql, sizeof(sql), "INSERT INTO users (id, name, enabled) "
		    "VALUES (%d, 'u%d', %d)", i + 1, i, !disabled[i]);
		exec(db, sql);
	}
	for (k = 0; k < 4; k++) {
		snprintf(sql, sizeof(sql), "INSERT INTO groups (id, name) "
		    "VALUES (%d, 'g%d')", k + 1, k);
		exec(db, sql);
		for (i = 0; i < 5; i++) {
			membership[i][k] = rnd(3) == 0;
			if (!membership[i][k])
				continue;
			snprintf(sql, sizeof(sql), "INSERT INTO user_groups "
			    "VALUES (%d, %d)", i + 1, k + 1);
			exec(db, sql);
		}
	}
	for (k = 0; k < 4; k++) {
		snprintf(sql, sizeof(sql), "INSERT INTO lists (id, name, type) "
		    "VALUES (%d, '%s', '%s')", k + 1, lists[k],
		    k < 2 ? "domain" : "cidr");
		exec(db, sql);
		for (i = 0; list_entries[k][i] != NULL; i++) {
			snprintf(sql, sizeof(sql), "INSERT INTO list_entries "
			    "VALUES (%d, '%s')", k + 1, list_entries[k][i]);
			exec(db, sql);
		}
	}
	for (i = 0; i < n; i++) {
		/* Ids run against positions, as after moves. */
		snprintf(sql, sizeof(sql), "INSERT INTO rules (id, position, "
		    "action, enabled) VALUES (%d, %d, '%s', %d)", 1000 - i,
		    i + 1, rules[i].allow ? "allow" : "deny", rules[i].enabled);
		exec(db, sql);
		for (k = 0; k < rules[i].nc; k++) {
			const struct cond *c = &rules[i].c[k];
			char ref[64] = "NULL, NULL, NULL";

			if (c->kind == K_USER)
				snprintf(ref, sizeof(ref), "%d, NULL, NULL",
				    c->value[1] - '0' + 1);
			else if (c->kind == K_GROUP)
				snprintf(ref, sizeof(ref), "NULL, %d, NULL",
				    c->value[1] - '0' + 1);
			else if (c->kind == K_DLIST)
				snprintf(ref, sizeof(ref), "NULL, NULL, %d",
				    list_index(c->value) + 1);
			snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO "
			    "rule_conditions VALUES (%d, '%s', '%s', %s)",
			    1000 - i, kind_sql[c->kind], c->value, ref);
			exec(db, sql);
		}
	}
	exec(db, "COMMIT");
	return (db);
}

static void
gen_req(struct req *q)
{
	memset(q, 0, sizeof(*q));
	q->user = rnd(5) == 0 ? NULL : PICK(users);
	q->nsys = (int)rnd(3);
	q->sysgroups[0] = PICK(groups);
	q->sysgroups[1] = PICK(groups);
	q->client = PICK(clients);
	q->cmd = 1 + (int)rnd(3);
	q->port = PICK(req_ports);
	/* Any minute of a week in November 2026 (UTC). */
	q->now = 1795046400 + (time_t)rnd(7 * 24 * 60) * 60;
	switch (rnd(3)) {
	case 0:
		q->addr = PICK(addrs);
		break;
	case 1:
		q->name = PICK(names);
		break;
	default:
		q->name = PICK(names);
		q->addr = PICK(addrs);
		break;
	}
}

static void
to_sockaddr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1)
		ss->ss_family = AF_INET;
	else if (inet_pton(AF_INET6, s,
	    &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
		ss->ss_family = AF_INET6;
}

static void
ignore_row(int64_t id, int pos, const char *act, int dec, const char *why,
    void *arg)
{
	(void)id; (void)pos; (void)act; (void)dec; (void)why; (void)arg;
}

int
main(int argc, char **argv)
{
	struct rule		 rules[MAXR];
	struct policy_options	 opts;
	struct sockaddr_storage	 self, cl, da;
	struct policy_req	 pr;
	struct policy_verdict	 v, ve;
	struct policy		*p;
	struct req		 q;
	sqlite3			*db;
	char			*cause = NULL;
	int			 sets = argc > 1 ? atoi(argv[1]) : 2000;
	int			 per = argc > 2 ? atoi(argv[2]) : 60;
	int			 s, i, n, act, rule, bad = 0;
	long			 checked = 0, resolves = 0, allows = 0;

	rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) : 20261127;
	setenv("TZ", "UTC", 1);
	tzset();
	to_sockaddr(self_addr, &self);
	memset(&opts, 0, sizeof(opts));
	opts.self = &self;
	opts.nself = 1;
	for (s = 0; s < sets && bad < 10; s++) {
		n = 1 + (int)rnd(MAXR);
		gen_rules(rules, n);
		db = write_db(rules, n);
		if ((p = policy_compile(db, &opts, &cause)) == NULL) {
			fprintf(stderr, "compile: %s\n", cause);
			return (1);
		}
		for (i = 0; i < per; i++) {
			gen_req(&q);
			ref_decide(rules, n, &q, &act, &rule);
			memset(&pr, 0, sizeof(pr));
			pr.user = q.user;
			pr.groups = q.sysgroups;
			pr.ngroups = (size_t)q.nsys;
			to_sockaddr(q.client, &cl);
			pr.client = (struct sockaddr *)&cl;
			pr.cmd = (enum policy_cmd)q.cmd;
			pr.dst_name = q.name;
			if (q.addr != NULL) {
				to_sockaddr(q.addr, &da);
				pr.dst_addr = (struct sockaddr *)&da;
			}
			pr.dst_port = (uint16_t)q.port;
			pr.now = q.now;
			policy_decide(p, &pr, &v);
			policy_explain(p, &pr, &ve, ignore_row, NULL);
			checked++;
			resolves += act == POLICY_RESOLVE;
			allows += act == POLICY_ALLOW;
			if ((int)v.action == act && v.rule_id == (rule ?
			    1000 - (rule - 1) : 0) && ve.action == v.action &&
			    ve.rule_id == v.rule_id)
				continue;
			fprintf(stderr, "set %d request %d: user=%s client=%s "
			    "cmd=%d name=%s addr=%s port=%d now=%lld: engine "
			    "%d rule %lld (%s), reference %d rule %d\n", s, i,
			    q.user ? q.user : "-", q.client, q.cmd,
			    q.name ? q.name : "-", q.addr ? q.addr : "-",
			    q.port, (long long)q.now, v.action,
			    (long long)v.rule_id, v.reason, act,
			    rule ? 1000 - (rule - 1) : 0);
			bad++;
		}
		policy_unref(p);
		sqlite3_close(db);
	}
	printf("%ld decisions over %d rule sets: %ld allow, %ld resolve, "
	    "%ld deny\n", checked, s, allows, resolves,
	    checked - allows - resolves);
	printf("%ld passed, %d failed\n", checked - bad, bad);
	return (bad ? 1 : 0);
}
