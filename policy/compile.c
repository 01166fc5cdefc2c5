/*
 * compile.c: from the policy database to an immutable snapshot
 * (policy_int.h explains the indexes). Everything is read inside one read
 * transaction, so a snapshot never mixes two versions of the policy. Only
 * enabled rules are compiled, and only the lists those rules name.
 * compile_limits.c adds the per-user part; snapshot.c answers for the
 * result.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "compile_int.h"

int
compile_fail(struct compile *cp, const char *what, const char *detail)
{
	if (asprintf(cp->cp_cause, "compiling the policy: %s%s%s", what,
	    detail ? ": " : "", detail ? detail : "") < 0)
		*cp->cp_cause = NULL;
	return (-1);
}

int
compile_sqlfail(struct compile *cp, const char *sql)
{
	char	 what[512];

	snprintf(what, sizeof(what), "%s (SQL: %s)", sqlite3_errmsg(cp->cp_db),
	    sql);
	return (compile_fail(cp, "database error", what));
}

/* Adds bitset src to the bitset at *slot, copying it first if shared. */
static int
compile_merge(struct policy *p, int32_t *slot, uint8_t *owned, int32_t src)
{
	if (*slot == -1) {
		*slot = src;
		*owned = 0;
		return (0);
	}
	if (!*owned) {
		if ((*slot = bits_copy(p, *slot)) == -1)
			return (-1);
		*owned = 1;
	}
	bits_or(p, *slot, src);
	return (0);
}

/* Sets rule's bit in the bitset at *slot, making an owned one if needed. */
int
compile_mark(struct policy *p, int32_t *slot, size_t rule)
{
	if (*slot == -1 && (*slot = bits_new(p)) == -1)
		return (-1);
	bits_set(p, *slot, rule);
	return (0);
}

/* A host prefix of one of the gateway's own addresses. */
static int
compile_is_self(const struct policy *p, const struct pv_cidr *c)
{
	uint8_t	 a[16];
	int	 fam;
	size_t	 i;

	if (c->len != (c->family == AF_INET ? 32 : 128))
		return (0);
	for (i = 0; i < p->p_nself; i++)
		if (pv_sockaddr_bytes((const struct sockaddr *)&p->p_self[i], a,
		    &fam) == 0 && fam == c->family &&
		    memcmp(a, c->addr, fam == AF_INET ? 4 : 16) == 0)
			return (1);
	return (0);
}

int
compile_payload(struct policy *p, struct trie *t, const struct pv_cidr *c,
    struct tpayload **out)
{
	struct tpayload	*np;
	uint32_t	 node;
	size_t		 cap;

	if (trie_insert(t, c->addr, c->len, &node) == -1)
		return (-1);
	if (t->t_nodes[node].tn_payload == -1) {
		if (p->p_npayloads == p->p_payloadcap) {
			cap = p->p_payloadcap ? p->p_payloadcap * 2 : 256;
			if ((np = reallocarray(p->p_payloads, cap,
			    sizeof(*np))) == NULL)
				return (-1);
			p->p_payloads = np;
			p->p_payloadcap = cap;
		}
		np = &p->p_payloads[p->p_npayloads];
		np->tp_rules = np->tp_lists = -1;
		np->tp_lists_owned = 0;
		np->tp_special = (uint8_t)(pv_cidr_special(c) ||
		    compile_is_self(p, c));
		t->t_nodes[node].tn_payload = (int32_t)p->p_npayloads++;
	}
	*out = &p->p_payloads[t->t_nodes[node].tn_payload];
	return (0);
}

static int
compile_rules(struct compile *cp)
{
	static const char sql[] = "SELECT id, position, action, comment "
	    "FROM rules WHERE enabled = 1 ORDER BY position";
	struct policy	*p = cp->cp_p;
	sqlite3_stmt	*st;
	size_t		 n = 0, cap = 0, i, j;
	struct prule	*r;
	int		 rc;

	if (sqlite3_prepare_v2(cp->cp_db, sql, -1, &st, NULL) != SQLITE_OK)
		return (compile_sqlfail(cp, sql));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == POLICY_MAX_RULES) {
			sqlite3_finalize(st);
			return (compile_fail(cp, "too many enabled rules",
			    NULL));
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((r = reallocarray(p->p_rules, cap,
			    sizeof(*r))) == NULL)
				goto nomem;
			p->p_rules = r;
		}
		r = &p->p_rules[n++];
		memset(r, 0, sizeof(*r));
		r->pr_id = sqlite3_column_int64(st, 0);
		r->pr_position = sqlite3_column_int(st, 1);
		r->pr_allow = strcmp((const char *)sqlite3_column_text(st, 2),
		    "allow") == 0;
		if ((r->pr_comment = strdup((const char *)
		    sqlite3_column_text(st, 3))) == NULL)
			goto nomem;
		p->p_nrules = n;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return (compile_sqlfail(cp, sql));

	p->p_words = n > 0 ? (n + 63) / 64 : 1;
	if ((cp->cp_ids = calloc(n + 1, sizeof(*cp->cp_ids))) == NULL ||
	    (cp->cp_idx = calloc(n + 1, sizeof(*cp->cp_idx))) == NULL ||
	    (cp->cp_cmds = calloc(n + 1, 1)) == NULL)
		goto nomem;
	/* Insertion into id order; ids mostly ascend with positions. */
	for (i = 0; i < n; i++) {
		for (j = i; j > 0 && cp->cp_ids[j - 1] > p->p_rules[i].pr_id;
		    j--) {
			cp->cp_ids[j] = cp->cp_ids[j - 1];
			cp->cp_idx[j] = cp->cp_idx[j - 1];
		}
		cp->cp_ids[j] = p->p_rules[i].pr_id;
		cp->cp_idx[j] = (int)i;
	}
	for (i = 0; i < PK_NDIM; i++) {
		if ((p->p_wild[i] = bits_new(p)) == -1)
			goto nomem;
		for (j = 0; j < n; j++)
			bits_set(p, p->p_wild[i], j);
	}
	if ((p->p_deny = bits_new(p)) == -1 ||
	    (p->p_addr_rules = bits_new(p)) == -1)
		goto nomem;
	for (j = 0; j < n; j++)
		if (!p->p_rules[j].pr_allow)
			bits_set(p, p->p_deny, j);
	return (0);
nomem:
	sqlite3_finalize(st);
	return (compile_fail(cp, "out of memory", NULL));
}

static int
compile_rule_index(struct compile *cp, int64_t id)
{
	size_t	 lo = 0, hi = cp->cp_p->p_nrules, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (cp->cp_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < cp->cp_p->p_nrules && cp->cp_ids[lo] == id ?
	    cp->cp_idx[lo] : -1);
}

static int
compile_conditions(struct compile *cp)
{
	static const char sql[] = "SELECT c.rule_id, c.kind, c.value, l.type "
	    "FROM rule_conditions c JOIN rules r ON r.id = c.rule_id "
	    "LEFT JOIN lists l ON l.id = c.list_id WHERE r.enabled = 1";
	sqlite3_stmt	*st;
	int		 rc, i, r;

	if (sqlite3_prepare_v2(cp->cp_db, sql, -1, &st, NULL) != SQLITE_OK)
		return (compile_sqlfail(cp, sql));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((i = compile_rule_index(cp, sqlite3_column_int64(st, 0))) ==
		    -1)
			continue;
		r = compile_condition(cp, (size_t)i,
		    (const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2),
		    (const char *)sqlite3_column_text(st, 3));
		if (r != 0) {
			sqlite3_finalize(st);
			return (r == -2 ? -1 : compile_fail(cp, "out of memory",
			    NULL));
		}
	}
	sqlite3_finalize(st);
	return (rc == SQLITE_DONE ? 0 : compile_sqlfail(cp, sql));
}

/* The entries of every list an enabled rule names. */
static int
compile_lists(struct compile *cp)
{
	static const char sql[] = "SELECT e.value FROM list_entries e "
	    "JOIN lists l ON l.id = e.list_id WHERE l.name = ?1";
	struct policy		*p = cp->cp_p;
	struct strmap_entry	*se;
	struct name_entry	*ne;
	struct tpayload		*tp;
	struct pv_cidr		 c;
	sqlite3_stmt		*st;
	const char		*v, *why;
	size_t			 k;
	int			 rc;

	if (sqlite3_prepare_v2(cp->cp_db, sql, -1, &st, NULL) != SQLITE_OK)
		return (compile_sqlfail(cp, sql));
	for (k = 0; cp->cp_lists.sm_mask && k <= cp->cp_lists.sm_mask; k++) {
		se = &cp->cp_lists.sm_slots[k];
		if (se->se_key == NULL)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, se->se_key, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			v = (const char *)sqlite3_column_text(st, 0);
			if (se->se_flag) {
				if (pv_cidr_parse(v, &c, &why) == -1)
					continue;	/* checked on import */
				if (compile_payload(p,
				    &p->p_dst[c.family == AF_INET6], &c,
				    &tp) == -1 || compile_merge(p,
				    &tp->tp_lists, &tp->tp_lists_owned,
				    se->se_bits) == -1)
					goto nomem;
			} else {
				if (strncmp(v, "*.", 2) == 0)
					v += 2;
				if (names_put(&p->p_names, v, &ne) == -1 ||
				    compile_merge(p, &ne->ne_suffix,
				    &ne->ne_suffix_owned, se->se_bits) == -1)
					goto nomem;
			}
		}
		if (rc != SQLITE_DONE) {
			sqlite3_finalize(st);
			return (compile_sqlfail(cp, sql));
		}
	}
	sqlite3_finalize(st);
	return (0);
nomem:
	sqlite3_finalize(st);
	return (compile_fail(cp, "out of memory", NULL));
}

static int
compile_cmp_u32(const void *a, const void *b)
{
	uint32_t	 x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x < y ? -1 : x > y);
}

/* Port ranges as segments between their boundaries. */
static int
compile_ports(struct compile *cp)
{
	struct policy	*p = cp->cp_p;
	uint32_t	*b;
	size_t		 n = 0, i, k, lo, hi, mid;
	int		 c;

	for (c = POLICY_CMD_CONNECT; c <= POLICY_CMD_UDP; c++) {
		if ((p->p_cmd[c] = bits_copy(p, p->p_wild[PK_CMD])) == -1)
			return (-1);
		for (i = 0; i < p->p_nrules; i++)
			if (cp->cp_cmds[i] & (1 << c))
				bits_set(p, p->p_cmd[c], i);
	}
	if (cp->cp_nports == 0)
		return (0);
	if ((b = calloc(cp->cp_nports * 2 + 1, sizeof(*b))) == NULL)
		return (-1);
	b[n++] = 0;
	for (i = 0; i < cp->cp_nports; i++) {
		b[n++] = cp->cp_ports[i].lo;
		b[n++] = (uint32_t)cp->cp_ports[i].hi + 1;
	}
	qsort(b, n, sizeof(*b), compile_cmp_u32);
	for (i = k = 0; i < n; i++)
		if (k == 0 || b[k - 1] != b[i])
			b[k++] = b[i];
	p->p_port_lo = b;
	p->p_nports = k;
	if ((p->p_port_bits = calloc(k, sizeof(*p->p_port_bits))) == NULL)
		return (-1);
	for (i = 0; i < k; i++)
		p->p_port_bits[i] = -1;
	for (i = 0; i < cp->cp_nports; i++) {
		for (lo = 0, hi = k; lo < hi;) {
			mid = (lo + hi) / 2;
			if (b[mid] < cp->cp_ports[i].lo)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < k && b[lo] <= cp->cp_ports[i].hi; lo++)
			if (compile_mark(p, &p->p_port_bits[lo],
			    cp->cp_ports[i].rule) == -1)
				return (-1);
	}
	return (0);
}

static void
compile_free(struct compile *cp)
{
	free(cp->cp_ids);
	free(cp->cp_idx);
	free(cp->cp_cmds);
	free(cp->cp_ports);
	strmap_free(&cp->cp_lists);
}

struct policy *
policy_compile(sqlite3 *db, const struct policy_options *opts, char **cause)
{
	struct compile	 cp;
	struct policy	*p;
	size_t		 i;
	int		 ok;

	*cause = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		if (asprintf(cause, "out of memory") < 0)
			*cause = NULL;
		return (NULL);
	}
	p->p_refs = 1;
	p->p_default_bw = p->p_default_quota = -1;
	for (i = 0; i < 26 * 26; i++)
		p->p_src_country[i] = p->p_dst_country[i] = -1;
	memset(&cp, 0, sizeof(cp));
	cp.cp_p = p;
	cp.cp_db = db;
	cp.cp_cause = cause;

	if (opts != NULL && opts->nself > 0) {
		if ((p->p_self = calloc(opts->nself, sizeof(*p->p_self))) ==
		    NULL) {
			policy_unref(p);
			if (asprintf(cause, "out of memory") < 0)
				*cause = NULL;
			return (NULL);
		}
		memcpy(p->p_self, opts->self, opts->nself * sizeof(*p->p_self));
		p->p_nself = opts->nself;
	}

	/* One read transaction: one consistent version of the policy. */
	ok = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	if (!ok)
		compile_sqlfail(&cp, "BEGIN");
	else {
		ok = compile_rules(&cp) == 0 && compile_conditions(&cp) == 0 &&
		    compile_lists(&cp) == 0 && compile_users(&cp) == 0 &&
		    compile_limits(&cp) == 0 && compile_rates(&cp) == 0 &&
		    compile_caps(&cp) == 0;
		if (ok && compile_ports(&cp) == -1)
			ok = compile_fail(&cp, "out of memory", NULL) == 0;
		for (i = 0; ok && i < 2; i++) {
			if (px_build(&p->p_src_px[i], &p->p_src[i],
			    i ? 128 : 32) == -1 || px_build(&p->p_dst_px[i],
			    &p->p_dst[i], i ? 128 : 32) == -1)
				ok = compile_fail(&cp, "out of memory",
				    NULL) == 0;
			trie_free(&p->p_src[i]);
			trie_free(&p->p_dst[i]);
		}
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	compile_free(&cp);
	if (ok && opts != NULL && opts->geoip_db != NULL &&
	    (p->p_geoip = policy_geoip_open(opts->geoip_db, opts->geoip_path,
	    cause)) == NULL)
		ok = 0;
	if (!ok) {
		policy_unref(p);
		return (NULL);
	}
	return (p);
}
