/*
 * decide.c: policy_decide(), and the evaluation policy_explain()
 * (explain.c) shares. Each dimension's set of rules is looked up once
 * (policy_int.h), the sets are ANDed, and the first rule left whose time
 * window holds decides. Explain shows, for each rule before it, the first
 * dimension whose set left the rule out.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "policy_int.h"
#include "eval.h"


/*
 * A dimension starts as a pointer to a bitset of the pool; it is copied
 * into its own buffer only when something has to be added to it, so a
 * dimension that no condition widens costs nothing.
 */
static void
eval_base(struct eval *e, int d, int32_t b)
{
	e->e_dim[d] = bits_at(e->e_p, b);
}

static void
eval_add(struct eval *e, int d, int32_t b)
{
	const uint64_t	*s;
	uint64_t	*t = e->e_buf[d];
	size_t		 i;

	if (b < 0)
		return;
	if (e->e_dim[d] != t) {
		memcpy(t, e->e_dim[d], e->e_words * sizeof(uint64_t));
		e->e_dim[d] = t;
	}
	s = bits_at(e->e_p, b);
	for (i = 0; i < e->e_words; i++)
		t[i] |= s[i];
}

static void
eval_or(struct eval *e, uint64_t *d, int32_t b)
{
	const uint64_t	*s;
	size_t		 i;

	if (b < 0)
		return;
	s = bits_at(e->e_p, b);
	for (i = 0; i < e->e_words; i++)
		d[i] |= s[i];
}

/* Every prefix holding addr: one probe per prefix length present. */
static void
eval_prefixes(struct eval *e, const struct prefix_index *px,
    const uint8_t *addr, int d, uint64_t *special)
{
	const struct tpayload	*tp;
	int32_t			 pi;
	int			 i;

	for (i = 0; i < px->px_nlens; i++) {
		if ((pi = px_find(&px->px_lens[i], addr)) == -1)
			continue;
		tp = &e->e_p->p_payloads[pi];
		eval_add(e, d, tp->tp_rules);
		eval_add(e, d, tp->tp_lists);
		if (special != NULL && tp->tp_special)
			eval_or(e, special, tp->tp_rules);
	}
}

/* The rules a name reaches: exactly, or through any suffix of it. */
static void
eval_name(struct eval *e, const char *name, int d)
{
	const struct name_entry	*ne;
	char			 buf[256];
	uint64_t		 h = 0xcbf29ce484222325ULL;
	size_t			 len, i;

	for (len = 0; name[len] != '\0' && len < sizeof(buf) - 1; len++)
		buf[len] = (char)tolower((unsigned char)name[len]);
	if (len > 0 && buf[len - 1] == '.')
		len--;
	for (i = len; i > 0; i--) {
		h = name_hash_step(h, (unsigned char)buf[i - 1]);
		if (i > 1 && buf[i - 2] != '.')
			continue;
		ne = names_get(&e->e_p->p_names, h, buf + i - 1, len - i + 1);
		if (ne == NULL)
			continue;
		eval_add(e, d, ne->ne_suffix);
		if (i == 1)
			eval_add(e, d, ne->ne_exact);
	}
}

static int
eval_is_self(const struct policy *p, const struct sockaddr *sa)
{
	uint8_t	 a[16], b[16];
	int	 fa, fb;
	size_t	 i;

	if (pv_sockaddr_bytes(sa, a, &fa) == -1)
		return (0);
	for (i = 0; i < p->p_nself; i++) {
		if (pv_sockaddr_bytes((const struct sockaddr *)&p->p_self[i], b,
		    &fb) == 0 && fa == fb &&
		    memcmp(a, b, fa == AF_INET ? 4 : 16) == 0)
			return (1);
	}
	return (0);
}

static void
eval_dims(struct eval *e)
{
	const struct policy		*p = e->e_p;
	const struct policy_req		*req = e->e_req;
	const struct strmap_entry	*se;
	uint8_t				 a[16] = { 0 };
	size_t				 i, lo, hi, mid;
	int				 fam, ci;

	/* Command. */
	if (req->cmd >= POLICY_CMD_CONNECT && req->cmd <= POLICY_CMD_UDP)
		eval_base(e, PK_CMD, p->p_cmd[req->cmd]);
	else {
		memset(e->e_buf[PK_CMD], 0, e->e_words * sizeof(uint64_t));
		e->e_dim[PK_CMD] = e->e_buf[PK_CMD];
	}

	/* User and groups (the user's database groups are folded in). */
	eval_base(e, PK_USER, p->p_wild[PK_USER]);
	if (req->user != NULL) {
		if ((se = strmap_get(&p->p_users, req->user)) != NULL)
			eval_add(e, PK_USER, se->se_bits);
		for (i = 0; i < req->ngroups; i++)
			if ((se = strmap_get(&p->p_groups, req->groups[i])) !=
			    NULL)
				eval_add(e, PK_USER, se->se_bits);
	}

	/* Source address and country. */
	eval_base(e, PK_SRC, p->p_wild[PK_SRC]);
	eval_base(e, PK_SRC_COUNTRY, p->p_wild[PK_SRC_COUNTRY]);
	if (req->client != NULL &&
	    pv_sockaddr_bytes(req->client, a, &fam) == 0) {
		eval_prefixes(e, &p->p_src_px[fam == AF_INET6], a, PK_SRC,
		    NULL);
		if (p->p_geoip != NULL &&
		    geoip_country(p->p_geoip, req->client, e->e_src_cc)[0] &&
		    (ci = pv_country_index(e->e_src_cc)) != -1)
			eval_add(e, PK_SRC_COUNTRY, p->p_src_country[ci]);
	}

	/* Port. */
	eval_base(e, PK_PORT, p->p_wild[PK_PORT]);
	if (p->p_nports > 0) {
		for (lo = 0, hi = p->p_nports; hi - lo > 1;) {
			mid = (lo + hi) / 2;
			if (p->p_port_lo[mid] <= req->dst_port)
				lo = mid;
			else
				hi = mid;
		}
		eval_add(e, PK_PORT, p->p_port_bits[lo]);
	}

	/* Destination: by name, by address, through lists; and country. */
	eval_base(e, PK_DST, p->p_wild[PK_DST]);
	eval_base(e, PK_DST_COUNTRY, p->p_wild[PK_DST_COUNTRY]);
	if (req->dst_name != NULL)
		eval_name(e, req->dst_name, PK_DST);
	if (req->dst_addr != NULL &&
	    pv_sockaddr_bytes(req->dst_addr, a, &fam) == 0) {
		e->e_special_name = policy_special_range(req->dst_addr);
		if (e->e_special_name == NULL && eval_is_self(p, req->dst_addr))
			e->e_special_name = "gateway's own";
		if (e->e_special_name != NULL)
			memset(e->e_special, 0, e->e_words * sizeof(uint64_t));
		eval_prefixes(e, &p->p_dst_px[fam == AF_INET6], a, PK_DST,
		    e->e_special_name ? e->e_special : NULL);
		if (p->p_geoip != NULL &&
		    geoip_country(p->p_geoip, req->dst_addr, e->e_dst_cc)[0] &&
		    (ci = pv_country_index(e->e_dst_cc)) != -1)
			eval_add(e, PK_DST_COUNTRY, p->p_dst_country[ci]);
	}
}

int
eval_time_ok(struct eval *e, const struct prule *r)
{
	int	 i;

	if (r->pr_ntimes == 0)
		return (1);
	if (!e->e_have_tm) {
		localtime_r(&e->e_req->now, &e->e_tm);
		e->e_have_tm = 1;
	}
	for (i = 0; i < r->pr_ntimes; i++)
		if (pv_time_match(&r->pr_times[i], &e->e_tm))
			return (1);
	return (0);
}

/* The first rule in set whose time window holds, or -1. */
static long
eval_first(struct eval *e, const uint64_t *set)
{
	uint64_t	 w;
	size_t		 i;
	long		 r;

	for (i = 0; i < e->e_words; i++) {
		for (w = set[i]; w != 0; w &= w - 1) {
			r = (long)(i * 64 + (size_t)__builtin_ctzll(w));
			if (eval_time_ok(e, &e->e_p->p_rules[r]))
				return (r);
		}
	}
	return (-1);
}


/*
 * Decides; for explain, also leaves the evaluation in e. Returns the index
 * of the deciding rule (or -1).
 */
long
eval_decide(struct eval *e, struct policy_verdict *v)
{
	const struct policy	*p = e->e_p;
	const struct policy_req	*req = e->e_req;
	uint64_t		*acc = e->e_acc;
	size_t			 i;
	long			 r, r0;

	memset(v, 0, sizeof(*v));
	v->action = POLICY_DENY;
	if (policy_user_disabled(p, req->user)) {
		snprintf(v->reason, sizeof(v->reason), "user %s is disabled",
		    req->user);
		return (-1);
	}
	e->e_phase1 = req->dst_addr == NULL && req->dst_name != NULL;
	eval_dims(e);
	{
		const uint64_t	*cmd = e->e_dim[PK_CMD];
		const uint64_t	*user = e->e_dim[PK_USER];
		const uint64_t	*src = e->e_dim[PK_SRC];
		const uint64_t	*srcc = e->e_dim[PK_SRC_COUNTRY];
		const uint64_t	*port = e->e_dim[PK_PORT];
		const uint64_t	*dst = e->e_dim[PK_DST];
		const uint64_t	*dstc = e->e_dim[PK_DST_COUNTRY];
		const uint64_t	*addr = bits_at(p, p->p_addr_rules);

		/* Before DNS, the address could still match: see above. */
		for (i = 0; i < e->e_words; i++)
			acc[i] = cmd[i] & user[i] & src[i] & srcc[i] &
			    port[i] & (e->e_phase1 ? dst[i] | addr[i] :
			    dst[i] & dstc[i]);
	}

	if (e->e_phase1) {
		/* Before DNS: only a definite deny stops here. */
		r = eval_first(e, acc);
		if (r == -1) {
			snprintf(v->reason, sizeof(v->reason),
			    "no rule matched: default deny");
			return (-1);
		}
		v->rule_id = p->p_rules[r].pr_id;
		if (bit_is_set(e->e_dim[PK_DST], r) &&
		    bit_is_set(e->e_dim[PK_DST_COUNTRY], r)) {
			if (!p->p_rules[r].pr_allow) {
				snprintf(v->reason, sizeof(v->reason),
				    "rule %lld denies", (long long)v->rule_id);
				return (r);
			}
			v->action = POLICY_RESOLVE;
			snprintf(v->reason, sizeof(v->reason), "rule %lld allows "
			    "the name; each address is checked",
			    (long long)v->rule_id);
		} else {
			v->action = POLICY_RESOLVE;
			snprintf(v->reason, sizeof(v->reason), "rule %lld "
			    "decides by address", (long long)v->rule_id);
		}
		return (r);
	}

	r0 = -1;
	if (e->e_special_name != NULL) {
		/* Allow rules reach such an address only by naming it. */
		r0 = eval_first(e, acc);
		for (i = 0; i < e->e_words; i++)
			acc[i] &= bits_at(p, p->p_deny)[i] | e->e_special[i];
	}
	r = eval_first(e, acc);
	if (r == -1) {
		if (r0 != -1)
			snprintf(v->reason, sizeof(v->reason), "%s destination: "
			    "no allow rule names it", e->e_special_name);
		else
			snprintf(v->reason, sizeof(v->reason),
			    "no rule matched: default deny");
		return (-1);
	}
	v->rule_id = p->p_rules[r].pr_id;
	v->action = p->p_rules[r].pr_allow ? POLICY_ALLOW : POLICY_DENY;
	snprintf(v->reason, sizeof(v->reason), "rule %lld %s",
	    (long long)v->rule_id, p->p_rules[r].pr_allow ? "allows" :
	    "denies");
	return (r);
}


/*
 * An IPv6 destination that carries IPv4 addresses (NAT64, 6to4, Teredo,
 * IPv4-compatible; value.c) is refused when any address it carries is
 * special or denied, and when a rule naming its IPv6 range denies it
 * (`deny --dst 2002::/16` holds); otherwise it gets the verdict of the
 * IPv4 address it carries (Teredo: its client). So rules written for
 * IPv4 hold on a DNS64 network, and the two can never disagree.
 * e holds the IPv6 evaluation, r its deciding rule, v its verdict.
 */
int
eval_fold(struct eval *e, long r, struct policy_verdict *v,
    struct sockaddr_in *decided)
{
	const struct policy	*p = e->e_p;
	struct policy_req	 req4 = *e->e_req;
	struct policy_verdict	 w;
	struct sockaddr_in	 sin;
	uint8_t			 a[16], v4[2][4];
	const char		*form;
	char			 text[INET_ADDRSTRLEN];
	int			 fam, n, k;

	if (e->e_phase1 || e->e_req->dst_addr == NULL ||
	    pv_sockaddr_bytes(e->e_req->dst_addr, a, &fam) == -1 ||
	    fam != AF_INET6 || (n = pv_embedded_v4(a, v4, &form)) == 0)
		return (0);
	/* Denied as IPv6: special, or by a rule that names its range. */
	if (v->action == POLICY_DENY && (r == -1 ? e->e_special_name != NULL :
	    !bit_is_set(bits_at(p, p->p_wild[PK_DST]), r)))
		return (0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(e->e_req->dst_port);
	req4.dst_addr = (const struct sockaddr *)&sin;
	for (k = 0; k < n; k++) {
		memcpy(&sin.sin_addr, v4[k], 4);
		policy_decide(p, &req4, &w);
		inet_ntop(AF_INET, v4[k], text, sizeof(text));
		v->action = w.action;
		v->rule_id = w.rule_id;
		snprintf(v->reason, sizeof(v->reason), "%s carries %s: %.150s",
		    form, text, w.reason);
		if (decided != NULL)
			*decided = sin;
		if (w.action == POLICY_DENY)
			break;
	}
	return (1);
}

/* A closed snapshot's verdict, whatever the request: 1 when it is one. */
static int
decide_closed(const struct policy *p, struct policy_verdict *v)
{
	if (p->p_closed[0] == '\0')
		return (0);
	memset(v, 0, sizeof(*v));
	v->action = POLICY_DENY;
	snprintf(v->reason, sizeof(v->reason), "%s", p->p_closed);
	return (1);
}

/*
 * Closes a snapshot not yet shared (a fleet node that has not heard from
 * its policy store for too long): it denies every request with reason.
 */
void
policy_close(struct policy *p, const char *reason)
{
	snprintf(p->p_closed, sizeof(p->p_closed), "%s", reason);
}

void
policy_decide(const struct policy *p, const struct policy_req *req,
    struct policy_verdict *v)
{
	long	 r;

	if (decide_closed(p, v))
		return;
	EVAL_SETUP(e, p, req, buf);
	r = eval_decide(&e, v);
	eval_fold(&e, r, v, NULL);
}

/*
 * A request that names no destination yet (UDP ASSOCIATE): ALLOW when an
 * allow rule matching the user, client, command and time comes before
 * any deny rule that holds whatever the destination and port; DENY
 * otherwise. Each destination is then judged on its own.
 */
void
policy_decide_any_dst(const struct policy *p, const struct policy_req *req,
    struct policy_verdict *v)
{
	struct policy_req	 any = *req;
	const uint64_t		*dw, *cw, *pw;
	uint64_t		 w;
	size_t			 i;
	long			 r;

	if (decide_closed(p, v))
		return;
	any.dst_name = NULL;
	any.dst_addr = NULL;
	{
		EVAL_SETUP(e, p, &any, buf);
		memset(v, 0, sizeof(*v));
		v->action = POLICY_DENY;
		if (policy_user_disabled(p, req->user)) {
			snprintf(v->reason, sizeof(v->reason), "user %s is "
			    "disabled", req->user);
			return;
		}
		eval_dims(&e);
		dw = bits_at(p, p->p_wild[PK_DST]);
		cw = bits_at(p, p->p_wild[PK_DST_COUNTRY]);
		pw = bits_at(p, p->p_wild[PK_PORT]);
		for (i = 0; i < e.e_words; i++) {
			w = e.e_dim[PK_CMD][i] & e.e_dim[PK_USER][i] &
			    e.e_dim[PK_SRC][i] & e.e_dim[PK_SRC_COUNTRY][i];
			for (; w != 0; w &= w - 1) {
				r = (long)(i * 64 + (size_t)__builtin_ctzll(w));
				if (!eval_time_ok(&e, &p->p_rules[r]))
					continue;
				if (p->p_rules[r].pr_allow) {
					v->action = POLICY_ALLOW;
					v->rule_id = p->p_rules[r].pr_id;
					snprintf(v->reason, sizeof(v->reason),
					    "rule %lld may allow it; each "
					    "destination is judged",
					    (long long)v->rule_id);
					return;
				}
				if (bit_is_set(dw, r) && bit_is_set(cw, r) &&
				    bit_is_set(pw, r)) {
					v->rule_id = p->p_rules[r].pr_id;
					snprintf(v->reason, sizeof(v->reason),
					    "rule %lld denies",
					    (long long)v->rule_id);
					return;
				}
			}
		}
		snprintf(v->reason, sizeof(v->reason), "no rule could allow it: "
		    "default deny");
	}
}
