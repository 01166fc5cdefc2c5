/*
 * compile_int.h: what the policy compiler's files share while one
 * snapshot is built: compile.c (rules, conditions, lists, ports; the
 * whole run) and compile_limits.c (users, groups, limits, rates, caps).
 */
#ifndef COMPILE_INT_H
#define COMPILE_INT_H

#include <sqlite3.h>

#include "policy_int.h"

/* A snapshot's rule count is bounded to keep decisions on the stack. */
#define POLICY_MAX_RULES	200000

struct compile {
	struct policy	*cp_p;
	sqlite3		*cp_db;
	char		**cp_cause;
	int64_t		*cp_ids;	/* rule ids sorted, for lookups */
	int		*cp_idx;	/* rule index of cp_ids[i] */
	struct strmap	 cp_lists;	/* list name -> rules; flag: cidr */
	struct {
		uint16_t lo, hi;
		size_t	 rule;
	}		*cp_ports;
	size_t		 cp_nports, cp_portcap;
	uint8_t		*cp_cmds;	/* per rule: bit per command */
};

int	 compile_fail(struct compile *, const char *, const char *);
int	 compile_mark(struct policy *, int32_t *, size_t);
int	 compile_payload(struct policy *, struct trie *, const struct pv_cidr *,
	    struct tpayload **);
/* kinds.c: one condition, by its kind's row of policy_kinds[] */
int	 compile_condition(struct compile *, size_t, const char *,
	    const char *, const char *);
int	 compile_sqlfail(struct compile *, const char *);
int	 compile_users(struct compile *);
int	 compile_limits(struct compile *);
int	 compile_rates(struct compile *);
int	 compile_caps(struct compile *);

#endif
