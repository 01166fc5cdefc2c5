/*
 * verdict.c: what the policy says about a session. A request by name is
 * judged by name before any DNS query, then every resolved address is
 * judged with the name; a request by address is judged once. The session
 * keeps a reference to the snapshot that judged it, and is judged again
 * whenever a new snapshot comes into force.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"
#include "socks5.h"

#include "phases.h"

#include "proxy/proxy.h"
#include "proxy/worker.h"

/*
 * The snapshot to judge a request by: the newest published. Workers hear
 * of a new one at their own pace (worker_policy() in proxy/worker.c); so a
 * client whose session one worker has just revoked, reconnecting to a
 * worker that has not heard yet, is still judged by the new one.
 */
struct policy *
verdict_snapshot(struct session *s)
{
	struct worker	*w = s->s_worker;
	struct policy	*old = w->w_policy;

	if (gwpolicy_generation() == w->w_policy_gen)
		return (w->w_policy);
	w->w_policy = gwpolicy_get(&w->w_policy_gen);
	policy_unref(old);
	return (w->w_policy);
}

static void
verdict_keep(struct session *s, struct policy *p,
    const struct policy_verdict *v)
{
	if (s->s_policy != p) {
		policy_ref(p);
		policy_unref(s->s_policy);
		s->s_policy = p;
	}
	/*
	 * "Resolve, then judge each address" is no verdict yet: a session
	 * that ends before one (DNS failed, the client left) is recorded
	 * with rule 0 and what happened, never as denied by an allow rule.
	 */
	s->s_rule_id = v->action == POLICY_RESOLVE ? 0 : v->rule_id;
	s->s_allowed = v->action == POLICY_ALLOW;
	free(s->s_reason);
	s->s_reason = v->action == POLICY_RESOLVE ? NULL : strdup(v->reason);
	if (v->action == POLICY_DENY)
		s->s_refusal = s->s_reason != NULL ? s->s_reason :
		    "denied by policy";
}

/* Before DNS: -1 when the name alone is denied (the client is refused). */
int
verdict_name(struct session *s)
{
	struct policy_req	 req;
	struct policy_verdict	 v;
	struct policy		*p;

	session_policy_req(s, NULL, &req);
	p = verdict_snapshot(s);
	policy_decide(p, &req, &v);
	verdict_keep(s, p, &v);
	if (v.action != POLICY_DENY)
		return (0);
	session_refuse(s, S5_REP_NOT_ALLOWED, s->s_refusal);
	return (-1);
}

/*
 * One UDP destination, judged on its own: by name alone (sa NULL), or an
 * address with the name it was reached through (NULL for a bare one).
 * The association's own verdict is left alone: it was granted, and its
 * record counts what each destination got. 0 when the datagram may go
 * (or the name be looked up), -1 when it is dropped.
 */
int
verdict_udp(struct session *s, const char *name, const struct sockaddr *sa,
    uint16_t port)
{
	struct policy_req	 req;
	struct policy_verdict	 v;

	session_policy_req(s, sa, &req);
	req.dst_name = name;
	req.dst_port = port;
	policy_decide(verdict_snapshot(s), &req, &v);
	return (v.action == POLICY_DENY ? -1 : 0);
}

/*
 * UDP ASSOCIATE names no destination: granted when some allow rule could
 * let the user's datagrams through (each destination is judged later);
 * -1, refused, when no rule could or a rule denies whatever the
 * destination (a disabled user, a client denied everything).
 */
int
verdict_udp_association(struct session *s, struct policy *p)
{
	struct policy_req	 req;
	struct policy_verdict	 v;

	session_policy_req(s, NULL, &req);
	req.dst_name = NULL;
	policy_decide_any_dst(p, &req, &v);
	verdict_keep(s, p, &v);
	return (v.action == POLICY_ALLOW ? 0 : -1);
}

/* Whether the session may connect to sa (its name, if any, included). */
int
verdict_address(struct session *s, const struct sockaddr *sa)
{
	struct policy_req	 req;
	struct policy_verdict	 v;
	struct policy		*p;

	session_policy_req(s, sa, &req);
	p = verdict_snapshot(s);
	policy_decide(p, &req, &v);
	verdict_keep(s, p, &v);
	return (v.action == POLICY_ALLOW);
}

/*
 * Judges a session again under a new snapshot: -1 when it is now denied.
 * One that stays allowed moves to the new snapshot, so that old snapshots
 * are released as soon as no session needs them.
 */
int
verdict_recheck(struct session *s, struct policy *p)
{
	struct policy_req	 req;
	struct policy_verdict	 v;

	switch (s->s_state) {
	case S_UDP:
		udp_policy_changed(s);
		return (verdict_udp_association(s, p));
	case S_RESOLVING:
		session_policy_req(s, NULL, &req);
		break;
	case S_CONNECTING:
	case S_BINDING:
	case S_RELAY:
		session_policy_req(s, (const struct sockaddr *)&s->s_dst, &req);
		break;
	default:
		return (0);
	}
	policy_decide(p, &req, &v);
	if (v.action == POLICY_DENY) {
		verdict_keep(s, p, &v);
		return (-1);
	}
	verdict_keep(s, p, &v);
	return (0);
}
