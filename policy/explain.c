/*
 * explain.c: policy_explain(), for socksctl explain and test. The same
 * evaluation as policy_decide() (eval.h), then, for each rule up to the
 * deciding one, the first condition whose dimension left it out, with
 * the request's value for it ("dst 10.0.0.1 is not in 192.0.2.0/24").
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

static void
explain_conds(const struct prule *r, enum pkind kind, char *out, size_t len)
{
	size_t	 n = 0;
	int	 i;

	out[0] = '\0';
	for (i = 0; i < r->pr_nconds && n < len; i++)
		if (r->pr_conds[i].pc_kind == kind)
			n += (size_t)snprintf(out + n, len - n, "%s%s",
			    n ? ", " : "", r->pr_conds[i].pc_text);
}

static void
explain_value(struct eval *e, enum pkind kind, char *out, size_t len)
{
	const struct policy_req	*req = e->e_req;
	char			 a[INET6_ADDRSTRLEN] = "-";
	uint8_t			 b[16];
	int			 fam;

	switch (kind) {
	case PK_CMD:
		snprintf(out, len, "command %s", policy_cmd_name(req->cmd));
		break;
	case PK_USER:
		if (req->user == NULL)
			snprintf(out, len, "an anonymous client");
		else
			snprintf(out, len, "user %s", req->user);
		break;
	case PK_SRC:
		if (req->client != NULL &&
		    pv_sockaddr_bytes(req->client, b, &fam) == 0)
			inet_ntop(fam, b, a, sizeof(a));
		snprintf(out, len, "client %s", a);
		break;
	case PK_SRC_COUNTRY:
		snprintf(out, len, "client country %s",
		    e->e_src_cc[0] ? e->e_src_cc : "unknown");
		break;
	case PK_DST:
		if (req->dst_addr != NULL &&
		    pv_sockaddr_bytes(req->dst_addr, b, &fam) == 0)
			inet_ntop(fam, b, a, sizeof(a));
		if (req->dst_name != NULL && req->dst_addr != NULL)
			snprintf(out, len, "destination %s (%s)", req->dst_name,
			    a);
		else
			snprintf(out, len, "destination %s",
			    req->dst_name ? req->dst_name : a);
		break;
	case PK_DST_COUNTRY:
		snprintf(out, len, "destination country %s",
		    e->e_dst_cc[0] ? e->e_dst_cc : "unknown");
		break;
	case PK_PORT:
		snprintf(out, len, "port %u", req->dst_port);
		break;
	default:
		snprintf(out, len, "-");
	}
}

static void
explain_rule(struct eval *e, long r, char *why, size_t len)
{
	static const enum pkind	 order[] = { PK_CMD, PK_USER, PK_SRC,
				    PK_SRC_COUNTRY, PK_DST, PK_DST_COUNTRY,
				    PK_PORT };
	const struct policy	*p = e->e_p;
	const struct prule	*pr = &p->p_rules[r];
	char			 val[320], conds[512];
	size_t			 i;
	int			 in;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (e->e_phase1 && order[i] == PK_DST_COUNTRY)
			continue;
		in = bit_is_set(e->e_dim[order[i]], r) || (e->e_phase1 &&
		    order[i] == PK_DST && bit_is_set(bits_at(p,
		    p->p_addr_rules), r));
		if (in)
			continue;
		explain_value(e, order[i], val, sizeof(val));
		explain_conds(pr, order[i], conds, sizeof(conds));
		if (order[i] == PK_CMD && conds[0] == '\0')
			snprintf(why, len, "%s not allowed", val);
		else
			snprintf(why, len, "%s is not %s", val, conds);
		return;
	}
	if (!eval_time_ok(e, pr)) {
		explain_conds(pr, PK_TIME, conds, sizeof(conds));
		strftime(val, sizeof(val), "%a %H:%M", &e->e_tm);
		snprintf(why, len, "time %s is outside %s", val, conds);
		return;
	}
	if (!e->e_phase1 && e->e_special_name != NULL && pr->pr_allow &&
	    !bit_is_set(e->e_special, r)) {
		snprintf(why, len, "allows %s destinations only if it names "
		    "them", e->e_special_name);
		return;
	}
	snprintf(why, len, "matches");
}

void
policy_explain(const struct policy *p, const struct policy_req *req,
    struct policy_verdict *v, policy_explain_cb *cb, void *arg)
{
	struct sockaddr_in	 carried;
	char			 why[1024];
	long			 r, last, i;

	EVAL_SETUP(e, p, req, buf);
	r = eval_decide(&e, v);
	if (eval_fold(&e, r, v, &carried)) {
		/* The rules as they judged the IPv4 address that decided. */
		struct policy_req	 req4 = *req;
		struct policy_verdict	 w;

		req4.dst_addr = (const struct sockaddr *)&carried;
		policy_explain(p, &req4, &w, cb, arg);
		return;
	}
	if (policy_user_disabled(p, req->user))
		return;
	last = r == -1 ? (long)p->p_nrules - 1 : r;
	for (i = 0; i <= last; i++) {
		explain_rule(&e, i, why, sizeof(why));
		if (i == r && e.e_phase1 &&
		    !(bit_is_set(e.e_dim[PK_DST], r) &&
		    bit_is_set(e.e_dim[PK_DST_COUNTRY], r)))
			snprintf(why, sizeof(why), "may match once the "
			    "address is known");
		cb(p->p_rules[i].pr_id, p->p_rules[i].pr_position,
		    p->p_rules[i].pr_allow ? "allow" : "deny", i == r, why,
		    arg);
	}
}
