/*
 * session_req.c: a session as the policy sees it (struct policy_req). Its
 * own file: the accounting (limits.c, quota.c, bandwidth.c) needs it
 * without the rest of verdict.c, and the unit tests link it alone.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <string.h>
#include <time.h>

#include "policy.h"

#include "session.h"

/*
 * The one place a session becomes a policy request: who (the user only
 * once authenticated, and its groups), from where, what, to where (addr:
 * an address, or NULL before there is one), and when. Limits, quotas and
 * caps read the same request for the user and its groups.
 */
void
session_policy_req(const struct session *s, const struct sockaddr *addr,
    struct policy_req *req)
{
	memset(req, 0, sizeof(*req));
	req->user = s->s_authed ? s->s_user : NULL;	/* auth none */
	req->groups = (const char *const *)s->s_groups;
	req->ngroups = (size_t)s->s_ngroups;
	req->client = (const struct sockaddr *)&s->s_peer;
	/* RFC 1928's command numbers are the policy's. */
	req->cmd = (enum policy_cmd)s->s_cmd;
	req->dst_name = s->s_dst_name;
	req->dst_addr = addr;
	req->dst_port = s->s_dst_port;
	req->now = time(NULL);
}
