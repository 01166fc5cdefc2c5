/*
 * policy_follow_view.c: how a fleet node stands with its policy store
 * (policy_follow.c), in `socksctl stats` and in the metrics. Nothing here
 * on a gateway with a policy file of its own.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>

#include "escape.h"

#include "proxy.h"

/* `, "policy_store": {...}` for the stats answer; "" when not a node. */
int
policy_follow_json(char *buf, size_t len)
{
	struct follow_status	 fs;
	char			 err[sizeof(fs.fs_error) * 6 + 3];

	policy_follow_status(&fs);
	if (fs.fs_state == FOLLOW_OFF) {
		buf[0] = '\0';
		return (0);
	}
	esc_json(err, sizeof(err), fs.fs_error);
	return (snprintf(buf, len, ", \"policy_store\": {\"state\": \"%s\", "
	    "\"change_id\": %lld, \"heard_age_s\": %lld, \"max_age_s\": %d, "
	    "\"closed\": %s, \"installed_total\": %lld, \"error\": %s}",
	    policy_follow_state_name(fs.fs_state), (long long)fs.fs_change,
	    (long long)fs.fs_heard_age,
	    fs.fs_max_age, gwpolicy_closed() ? "true" : "false",
	    (long long)fs.fs_installed, err));
}

void
policy_follow_prometheus(FILE *f)
{
	struct follow_status	 fs;
	int			 s;

	policy_follow_status(&fs);
	if (fs.fs_state == FOLLOW_OFF)
		return;
	fprintf(f, "# HELP socksgw_policy_store_state The connection to the "
	    "fleet's policy store: 1 for the state it is in.\n"
	    "# TYPE socksgw_policy_store_state gauge\n");
	for (s = FOLLOW_CONNECTING; s <= FOLLOW_DOWN; s++)
		fprintf(f, "socksgw_policy_store_state{state=\"%s\"} %d\n",
		    policy_follow_state_name(s), fs.fs_state == s);
	fprintf(f, "# HELP socksgw_policy_store_closed 1 while every request "
	    "is refused: no word from the policy store within "
	    "policy_max_age.\n# TYPE socksgw_policy_store_closed gauge\n"
	    "socksgw_policy_store_closed %d\n"
	    "# HELP socksgw_policy_store_change_id The policy change this "
	    "node judges by.\n# TYPE socksgw_policy_store_change_id gauge\n"
	    "socksgw_policy_store_change_id %lld\n",
	    gwpolicy_closed(), (long long)fs.fs_change);
	if (fs.fs_heard_age >= 0)
		fprintf(f, "# HELP socksgw_policy_store_heard_age_seconds Since "
		    "the policy store last confirmed this node's policy.\n"
		    "# TYPE socksgw_policy_store_heard_age_seconds gauge\n"
		    "socksgw_policy_store_heard_age_seconds %lld\n",
		    (long long)fs.fs_heard_age);
}
