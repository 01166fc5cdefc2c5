/*
 * IPv6 destinations that carry IPv4 addresses (NAT64, 6to4, Teredo,
 * IPv4-compatible) against a real compiled policy:
 *
 * - a property: for random IPv4 addresses A, every embedding E(A) and
 *   random rule sets naming only IPv4 ranges, the verdict of E(A) equals
 *   the verdict of A (action and rule);
 * - cases: rules naming the IPv6 ranges still hold, the local-use NAT64
 *   prefix is special, Teredo's server is judged too.
 *
 *	test_policy_embedded [SETS [ADDRESSES_PER_SET [SEED]]]
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "policy.h"

static uint64_t	 rng_state;
static int	 failures;

static uint32_t
rnd32(void)
{
	/* xorshift64*: repeatable from the seed. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return ((uint32_t)((rng_state * 0x2545f4914f6cdd1dULL) >> 32));
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

struct rule {
	int		 allow;
	char		 dst[2][24];	/* "" when absent */
	int		 port;		/* 0: any */
};

static struct policy *
compile(const struct rule *rules, int n, const char *const *v6dst)
{
	struct policy_options	 opts;
	struct policy		*p;
	sqlite3			*db;
	char			*cause = NULL, sql[256];
	int			 i, k;

	if ((db = policy_db_open(":memory:", POLICY_DB_CREATE, &cause)) ==
	    NULL) {
		fprintf(stderr, "%s\n", cause);
		exit(1);
	}
	exec(db, "BEGIN");
	for (i = 0; i < n; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO rules (id, position, "
		    "action, enabled) VALUES (%d, %d, '%s', 1)", i + 1, i + 1,
		    rules[i].allow ? "allow" : "deny");
		exec(db, sql);
		for (k = 0; k < 2; k++) {
			if (rules[i].dst[k][0] == '\0')
				continue;
			snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO "
			    "rule_conditions VALUES (%d, 'dst', '%s', NULL, "
			    "NULL, NULL)", i + 1, rules[i].dst[k]);
			exec(db, sql);
		}
		if (v6dst != NULL && v6dst[i] != NULL) {
			snprintf(sql, sizeof(sql), "INSERT INTO rule_conditions "
			    "VALUES (%d, 'dst', '%s', NULL, NULL, NULL)", i + 1,
			    v6dst[i]);
			exec(db, sql);
		}
		if (rules[i].port != 0) {
			snprintf(sql, sizeof(sql), "INSERT INTO rule_conditions "
			    "VALUES (%d, 'port', '%d', NULL, NULL, NULL)", i + 1,
			    rules[i].port);
			exec(db, sql);
		}
	}
	exec(db, "COMMIT");
	memset(&opts, 0, sizeof(opts));
	if ((p = policy_compile(db, &opts, &cause)) == NULL) {
		fprintf(stderr, "compile: %s\n", cause);
		exit(1);
	}
	sqlite3_close(db);
	return (p);
}

static void
decide(const struct policy *p, const struct sockaddr_storage *dst,
    uint16_t port, struct policy_verdict *v)
{
	struct policy_req	 req;
	struct sockaddr_in	 client;

	memset(&client, 0, sizeof(client));
	client.sin_family = AF_INET;
	client.sin_addr.s_addr = htonl(0x0a010203);
	memset(&req, 0, sizeof(req));
	req.client = (struct sockaddr *)&client;
	req.cmd = POLICY_CMD_CONNECT;
	req.dst_addr = (const struct sockaddr *)dst;
	req.dst_port = port;
	req.now = 1795046400;
	policy_decide(p, &req, v);
}

static void
v4(struct sockaddr_storage *ss, uint32_t a)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(a);
}

static void
v6(struct sockaddr_storage *ss, const char *text)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) {
		fprintf(stderr, "bad address %s\n", text);
		exit(1);
	}
}

/* E(A): the embeddings of a, with random bits where a form has them. */
#define NFORMS	4
static void
embed(int form, uint32_t a, struct sockaddr_storage *ss)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	uint8_t			*b = sin6->sin6_addr.s6_addr;
	uint8_t			 ab[4] = { a >> 24, a >> 16, a >> 8, a };
	int			 i;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	switch (form) {
	case 0:		/* NAT64, 64:ff9b::/96 */
		b[1] = 0x64;
		b[2] = 0xff;
		b[3] = 0x9b;
		memcpy(b + 12, ab, 4);
		break;
	case 1:		/* 6to4, 2002:AABB:CCDD::/48, any subnet and host */
		b[0] = 0x20;
		b[1] = 0x02;
		memcpy(b + 2, ab, 4);
		for (i = 6; i < 16; i++)
			b[i] = (uint8_t)rnd32();
		break;
	case 2:		/* Teredo: a as both server and (obfuscated) client */
		b[0] = 0x20;
		b[1] = 0x01;
		memcpy(b + 4, ab, 4);
		for (i = 8; i < 12; i++)
			b[i] = (uint8_t)rnd32();
		for (i = 0; i < 4; i++)
			b[12 + i] = ab[i] ^ 0xff;
		break;
	default:	/* IPv4-compatible, ::a.b.c.d */
		memcpy(b + 12, ab, 4);
		break;
	}
}

static void
expect(const char *what, const struct policy_verdict *v, int action,
    int64_t rule)
{
	if ((int)v->action == action && v->rule_id == rule)
		return;
	fprintf(stderr, "%s: got %d rule %lld (%s), want %d rule %lld\n",
	    what, v->action, (long long)v->rule_id, v->reason, action,
	    (long long)rule);
	failures++;
}

/* Rules naming IPv4 ranges only; the property over random addresses. */
static long
property(int sets, int per)
{
	static const uint32_t	 bases[] = { 0x0a000000, 0x7f000000,
				    0xc0000200, 0xc6336400, 0xcb007100,
				    0x64400000, 0x08080808, 0 };
	struct rule		 rules[24];
	struct policy_verdict	 va, ve;
	struct sockaddr_storage	 sa, se;
	struct policy		*p;
	char			 what[160], ip[INET6_ADDRSTRLEN];
	long			 checked = 0;
	uint32_t		 a, base, mask;
	uint16_t		 port;
	int			 s, i, k, n, len, f;

	for (s = 0; s < sets; s++) {
		n = 1 + (int)(rnd32() % 24);
		for (i = 0; i < n; i++) {
			memset(&rules[i], 0, sizeof(rules[i]));
			rules[i].allow = rnd32() % 3 != 0;
			for (k = 0; k < 2; k++) {
				if (rnd32() % 3 == 0)
					continue;
				base = bases[rnd32() % 8];
				len = (int)(rnd32() % 33);
				mask = len == 0 ? 0 : 0xffffffffU << (32 - len);
				base = (base | (rnd32() & ~mask & 0xffff)) &
				    mask;
				snprintf(rules[i].dst[k], sizeof(rules[i].dst[k]),
				    "%u.%u.%u.%u/%d", base >> 24,
				    (base >> 16) & 0xff, (base >> 8) & 0xff,
				    base & 0xff, len);
			}
			if (rnd32() % 4 == 0)
				rules[i].port = rnd32() % 2 ? 443 : 80;
		}
		p = compile(rules, n, NULL);
		for (i = 0; i < per; i++) {
			a = rnd32() % 2 ? rnd32() : bases[rnd32() % 8] |
			    (rnd32() & 0xffff);
			if (a < 2)
				continue;	/* ::, ::1 are IPv6's own */
			port = rnd32() % 2 ? 443 : 80;
			v4(&sa, a);
			decide(p, &sa, port, &va);
			for (f = 0; f < NFORMS; f++) {
				embed(f, a, &se);
				decide(p, &se, port, &ve);
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)
				    &se)->sin6_addr, ip, sizeof(ip));
				snprintf(what, sizeof(what), "set %d: %s for "
				    "%u.%u.%u.%u", s, ip, a >> 24,
				    (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
				expect(what, &ve, va.action, va.rule_id);
				checked++;
			}
		}
		policy_unref(p);
		if (failures > 10)
			break;
	}
	return (checked);
}

static void
cases(void)
{
	struct rule		 rules[3];
	const char		*v6dst[3] = { NULL, NULL, NULL };
	struct policy_verdict	 v;
	struct sockaddr_storage	 ss;
	struct policy		*p;

	/* deny 10/8, allow everything: DNS64 cannot reach 10.0.0.1. */
	memset(rules, 0, sizeof(rules));
	snprintf(rules[0].dst[0], sizeof(rules[0].dst[0]), "10.0.0.0/8");
	rules[1].allow = 1;
	p = compile(rules, 2, NULL);
	v6(&ss, "64:ff9b::a00:1");
	decide(p, &ss, 443, &v);
	expect("64:ff9b::a00:1 under deny 10/8", &v, POLICY_DENY, 1);
	if (strstr(v.reason, "NAT64 carries 10.0.0.1") == NULL) {
		fprintf(stderr, "reason does not show the folding: %s\n",
		    v.reason);
		failures++;
	}
	v6(&ss, "2002:0a00:0001::1");
	decide(p, &ss, 443, &v);
	expect("6to4 of 10.0.0.1", &v, POLICY_DENY, 1);
	/* Teredo: server 10.0.0.1 denied, client 8.8.8.8 allowed. */
	v6(&ss, "2001:0:a00:1:0:0:f7f7:f7f7");
	decide(p, &ss, 443, &v);
	expect("Teredo via a denied server", &v, POLICY_DENY, 1);
	/* Special IPv4 inside: loopback through NAT64 needs naming 127/8. */
	v6(&ss, "64:ff9b::7f00:1");
	decide(p, &ss, 443, &v);
	expect("NAT64 of 127.0.0.1", &v, POLICY_DENY, 0);
	v6(&ss, "64:ff9b::808:808");
	decide(p, &ss, 443, &v);
	expect("NAT64 of 8.8.8.8", &v, POLICY_ALLOW, 2);
	/* The local-use NAT64 prefix is special: denied unless named. */
	v6(&ss, "64:ff9b:1:808:8:800::");
	decide(p, &ss, 443, &v);
	expect("local-use NAT64, not named", &v, POLICY_DENY, 0);
	policy_unref(p);

	/* A rule naming an IPv6 range still holds on what it names. */
	memset(rules, 0, sizeof(rules));
	v6dst[0] = "2002::/16";
	rules[1].allow = 1;
	p = compile(rules, 2, v6dst);
	v6(&ss, "2002:808:808::1");
	decide(p, &ss, 443, &v);
	expect("deny --dst 2002::/16", &v, POLICY_DENY, 1);
	v6(&ss, "64:ff9b::808:808");
	decide(p, &ss, 443, &v);
	expect("NAT64 beside deny 2002::/16", &v, POLICY_ALLOW, 2);
	policy_unref(p);

	/* Named, the local-use prefix gets its IPv4 address's verdict. */
	memset(rules, 0, sizeof(rules));
	v6dst[0] = "64:ff9b:1::/48";
	rules[0].allow = 1;
	snprintf(rules[1].dst[0], sizeof(rules[1].dst[0]), "8.8.8.0/24");
	rules[1].allow = 1;
	p = compile(rules, 2, v6dst);
	v6(&ss, "64:ff9b:1:808:8:800::");
	decide(p, &ss, 443, &v);
	expect("local-use NAT64 of 8.8.8.8, named", &v, POLICY_ALLOW, 2);
	v6(&ss, "64:ff9b:1:909:9:900::");
	decide(p, &ss, 443, &v);
	expect("local-use NAT64 of 9.9.9.9, named", &v, POLICY_DENY, 0);
	policy_unref(p);
}

int
main(int argc, char **argv)
{
	int	 sets = argc > 1 ? atoi(argv[1]) : 1000;
	int	 per = argc > 2 ? atoi(argv[2]) : 40;
	long	 checked;

	rng_state = argc > 3 ? strtoull(argv[3], NULL, 10) : 20261201;
	cases();
	checked = property(sets, per);
	printf("%ld embeddings judged like the IPv4 address they carry\n",
	    checked);
	printf("%ld passed, %d failed\n", checked - failures, failures);
	return (failures ? 1 : 0);
}
