/*
 * snapshot.c: a compiled policy's life and the questions it answers
 * besides a decision (decide.c): loading one from a file, references,
 * counts and memory, and the per-user limits and rates the proxy asks at
 * admission.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "policy_int.h"

struct policy *
policy_load(const char *path, const struct policy_options *opts,
    char **cause)
{
	struct policy	*p;
	sqlite3		*db;

	*cause = NULL;
	if ((db = policy_db_open(path, POLICY_DB_READONLY, cause)) == NULL)
		return (NULL);
	p = policy_compile(db, opts, cause);
	sqlite3_close(db);
	return (p);
}

void
policy_ref(struct policy *p)
{
	atomic_fetch_add(&p->p_refs, 1);
}

void
policy_unref(struct policy *p)
{
	size_t	 i;
	int	 k;

	if (p == NULL || atomic_fetch_sub(&p->p_refs, 1) != 1)
		return;
	for (i = 0; i < p->p_nrules; i++) {
		for (k = 0; k < p->p_rules[i].pr_nconds; k++)
			free(p->p_rules[i].pr_conds[k].pc_text);
		free(p->p_rules[i].pr_conds);
		free(p->p_rules[i].pr_times);
		free(p->p_rules[i].pr_comment);
	}
	free(p->p_rules);
	free(p->p_pool);
	strmap_free(&p->p_users);
	strmap_free(&p->p_groups);
	strmap_free(&p->p_user_limits);
	strmap_free(&p->p_group_limits);
	strmap_free(&p->p_user_rates);
	strmap_free(&p->p_usergroup_rates);
	strmap_free(&p->p_group_rates);
	caps_free(p);
	for (k = 0; k < 2; k++) {
		trie_free(&p->p_src[k]);
		trie_free(&p->p_dst[k]);
		px_free(&p->p_src_px[k]);
		px_free(&p->p_dst_px[k]);
	}
	free(p->p_payloads);
	names_free(&p->p_names);
	free(p->p_port_lo);
	free(p->p_port_bits);
	policy_geoip_close(p->p_geoip);
	free(p->p_self);
	free(p);
}

size_t
policy_rule_count(const struct policy *p)
{
	return (p->p_nrules);
}

/* Bytes the snapshot's indexes take (not counting allocator overhead). */
size_t
policy_memory(const struct policy *p)
{
	size_t	 m = sizeof(*p);
	int	 k;

	m += p->p_bitscap * p->p_words * sizeof(uint64_t);
	m += p->p_nrules * sizeof(*p->p_rules);
	m += (p->p_users.sm_mask + 1) * sizeof(struct strmap_entry);
	m += (p->p_groups.sm_mask + 1) * sizeof(struct strmap_entry);
	m += (p->p_user_limits.sm_mask + 1) * sizeof(struct strmap_entry);
	m += (p->p_group_limits.sm_mask + 1) * sizeof(struct strmap_entry);
	m += (p->p_user_rates.sm_mask + 1) * sizeof(struct strmap_entry);
	m += (p->p_usergroup_rates.sm_mask + 1) * sizeof(struct strmap_entry);
	m += (p->p_group_rates.sm_mask + 1) * sizeof(struct strmap_entry);
	for (k = 0; k < 2; k++)
		m += px_memory(&p->p_src_px[k]) + px_memory(&p->p_dst_px[k]);
	m += p->p_payloadcap * sizeof(struct tpayload);
	m += (p->p_names.nx_mask + 1) * sizeof(uint64_t);
	m += p->p_names.nx_cap * sizeof(struct name_entry);
	m += p->p_names.nx_strcap;
	m += p->p_nports * (sizeof(uint32_t) + sizeof(int32_t));
	return (m);
}

int
policy_user_disabled(const struct policy *p, const char *user)
{
	const struct strmap_entry	*e;

	return (user != NULL && (e = strmap_get(&p->p_users, user)) != NULL &&
	    e->se_flag);
}

int
policy_has_limits(const struct policy *p)
{
	return (p->p_user_limits.sm_count > 0 ||
	    p->p_group_limits.sm_count > 0 || p->p_default_max_sessions >= 0 ||
	    p->p_user_rates.sm_count > 0 || p->p_group_rates.sm_count > 0 ||
	    p->p_default_rate.pr_milli > 0 || p->p_client_rate.pr_milli > 0 ||
	    caps_any(p));
}

int64_t
policy_max_sessions(const struct policy *p, const struct policy_req *req,
    char *from, size_t fromlen)
{
	const struct strmap_entry	*e;
	int64_t				 best = -1;
	size_t				 i;

	if (from != NULL && fromlen > 0)
		from[0] = '\0';
	if (req->user == NULL || !policy_has_limits(p))
		return (-1);
	e = strmap_get(&p->p_user_limits, req->user);
	if (e != NULL && e->se_flag >= 0) {
		if (from != NULL)
			snprintf(from, fromlen, "user %s", req->user);
		return (e->se_flag);
	}
	/* Else the strictest of its groups, database and system ones. */
	if (e != NULL && e->se_bits >= 0) {
		best = e->se_bits;
		if (from != NULL)
			snprintf(from, fromlen, "groups of user %s", req->user);
	}
	for (i = 0; i < req->ngroups; i++) {
		e = strmap_get(&p->p_group_limits, req->groups[i]);
		if (e != NULL && e->se_flag >= 0 && (best < 0 ||
		    e->se_flag < best)) {
			best = e->se_flag;
			if (from != NULL)
				snprintf(from, fromlen, "group %s",
				    req->groups[i]);
		}
	}
	if (best >= 0)
		return (best);
	if (p->p_default_max_sessions >= 0 && from != NULL)
		snprintf(from, fromlen, "default");
	return (p->p_default_max_sessions);
}

static void
rate_from_entry(const struct strmap_entry *e, struct policy_rate *out)
{
	out->pr_milli = (uint32_t)e->se_flag;
	out->pr_burst = (uint32_t)e->se_bits;
}

/* The request's user's new-session rate: 0 and out zeroed for none. */
int
policy_rate(const struct policy *p, const struct policy_req *req,
    struct policy_rate *out, char *from, size_t fromlen)
{
	const struct strmap_entry	*e;
	size_t				 i;

	memset(out, 0, sizeof(*out));
	if (from != NULL && fromlen > 0)
		from[0] = '\0';
	if (req->user == NULL)
		return (0);
	if ((e = strmap_get(&p->p_user_rates, req->user)) != NULL) {
		rate_from_entry(e, out);
		if (from != NULL)
			snprintf(from, fromlen, "user %s", req->user);
		return (1);
	}
	if ((e = strmap_get(&p->p_usergroup_rates, req->user)) != NULL) {
		rate_from_entry(e, out);
		if (from != NULL)
			snprintf(from, fromlen, "groups of user %s", req->user);
	}
	for (i = 0; i < req->ngroups; i++) {
		e = strmap_get(&p->p_group_rates, req->groups[i]);
		if (e != NULL && (out->pr_milli == 0 ||
		    (uint32_t)e->se_flag < out->pr_milli)) {
			rate_from_entry(e, out);
			if (from != NULL)
				snprintf(from, fromlen, "group %s",
				    req->groups[i]);
		}
	}
	if (out->pr_milli == 0 && p->p_default_rate.pr_milli > 0) {
		*out = p->p_default_rate;
		if (from != NULL)
			snprintf(from, fromlen, "default");
	}
	return (out->pr_milli > 0);
}

/* The new-session rate of each client address: 0 for none. */
int
policy_client_rate(const struct policy *p, struct policy_rate *out)
{
	*out = p->p_client_rate;
	return (out->pr_milli > 0);
}
