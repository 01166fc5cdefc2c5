/*
 * kinds.c: every kind of rule condition, one row of policy_kinds[]: its
 * name in rule_conditions, the socksctl option that makes it, its value's
 * parser (the canonical text socksctl stores), the index dimension it
 * joins and how the compiler puts a value of it into the snapshot. A new
 * kind is a migration widening the schema's CHECK, a row here with its
 * parser and compile function, and the reference evaluator's case in
 * tests/unit/test_policy_diff.c.
 *
 * The compile functions return 0, -1 when out of memory, or -2 with *why
 * set for a value the schema should have kept out.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile_int.h"

static int
parse_dst(const char *v, char *out, size_t len, const char **why)
{
	const char	*why2;

	if (policy_parse_cidr(v, out, len, why) == 0)
		return (0);
	if (strchr(v, '/') == NULL && policy_parse_domain(v, out, len,
	    &why2) == 0)
		return (0);
	if (strchr(v, '/') == NULL && strchr(v, ':') == NULL)
		*why = why2;
	return (-1);
}

static int
parse_cmd(const char *v, char *out, size_t len, const char **why)
{
	enum policy_cmd	 cmd;

	if (policy_parse_cmd(v, &cmd) == -1) {
		*why = "expected connect, bind or udp";
		return (-1);
	}
	snprintf(out, len, "%s", policy_cmd_name(cmd));
	return (0);
}

/* A user's or a group's name: the rules that name it, in map. */
static int
compile_name(struct compile *cp, size_t i, struct strmap *map,
    const char *value)
{
	struct strmap_entry	*se;

	if (strmap_put(map, value, &se) == -1 ||
	    compile_mark(cp->cp_p, &se->se_bits, i) == -1)
		return (-1);
	return (0);
}

static int
compile_user(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	(void)k;
	(void)list_type;
	(void)why;
	return (compile_name(cp, i, &cp->cp_p->p_users, value));
}

static int
compile_group(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	(void)k;
	(void)list_type;
	(void)why;
	return (compile_name(cp, i, &cp->cp_p->p_groups, value));
}

static int
compile_src(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	struct policy	*p = cp->cp_p;
	struct tpayload	*tp;
	struct pv_cidr	 c;

	(void)k;
	(void)list_type;
	if (pv_cidr_parse(value, &c, why) == -1)
		return (-2);
	if (compile_payload(p, &p->p_src[c.family == AF_INET6], &c, &tp) ==
	    -1 || compile_mark(p, &tp->tp_rules, i) == -1)
		return (-1);
	return (0);
}

static int
compile_country(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	struct policy	*p = cp->cp_p;
	int		 ci;

	(void)list_type;
	if ((ci = pv_country_index(value)) == -1) {
		*why = "not a country code";
		return (-2);
	}
	if (compile_mark(p, k->pk_dim == PK_SRC_COUNTRY ?
	    &p->p_src_country[ci] : &p->p_dst_country[ci], i) == -1)
		return (-1);
	if (k->pk_dim == PK_DST_COUNTRY)
		bits_set(p, p->p_addr_rules, i);
	return (0);
}

static int
compile_dst(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	struct policy		*p = cp->cp_p;
	struct name_entry	*ne;
	struct tpayload		*tp;
	struct pv_cidr		 c;

	(void)k;
	(void)list_type;
	if (pv_cidr_parse(value, &c, why) == 0) {
		if (compile_payload(p, &p->p_dst[c.family == AF_INET6], &c,
		    &tp) == -1 || compile_mark(p, &tp->tp_rules, i) == -1)
			return (-1);
		bits_set(p, p->p_addr_rules, i);
	} else if (strncmp(value, "*.", 2) == 0) {
		if (names_put(&p->p_names, value + 2, &ne) == -1)
			return (-1);
		if (ne->ne_suffix != -1 && !ne->ne_suffix_owned &&
		    (ne->ne_suffix = bits_copy(p, ne->ne_suffix)) == -1)
			return (-1);
		ne->ne_suffix_owned = 1;
		if (compile_mark(p, &ne->ne_suffix, i) == -1)
			return (-1);
	} else {
		if (names_put(&p->p_names, value, &ne) == -1 ||
		    compile_mark(p, &ne->ne_exact, i) == -1)
			return (-1);
		ne->ne_exact_owned = 1;
	}
	return (0);
}

static int
compile_dst_list(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	struct policy		*p = cp->cp_p;
	struct strmap_entry	*se;

	(void)k;
	(void)why;
	if (strmap_put(&cp->cp_lists, value, &se) == -1 ||
	    compile_mark(p, &se->se_bits, i) == -1)
		return (-1);
	se->se_flag = list_type != NULL && strcmp(list_type, "cidr") == 0;
	if (se->se_flag)
		bits_set(p, p->p_addr_rules, i);
	return (0);
}

static int
compile_port(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	void	*np;
	size_t	 cap;

	(void)k;
	(void)list_type;
	if (cp->cp_nports == cp->cp_portcap) {
		cap = cp->cp_portcap ? cp->cp_portcap * 2 : 64;
		if ((np = reallocarray(cp->cp_ports, cap,
		    sizeof(*cp->cp_ports))) == NULL)
			return (-1);
		cp->cp_ports = np;
		cp->cp_portcap = cap;
	}
	if (pv_port_parse(value, &cp->cp_ports[cp->cp_nports].lo,
	    &cp->cp_ports[cp->cp_nports].hi, why) == -1)
		return (-2);
	cp->cp_ports[cp->cp_nports++].rule = i;
	return (0);
}

static int
compile_cmd(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	enum policy_cmd	 cmd;

	(void)k;
	(void)list_type;
	if (policy_parse_cmd(value, &cmd) == -1) {
		*why = "unknown command";
		return (-2);
	}
	cp->cp_cmds[i] |= (uint8_t)(1 << cmd);
	return (0);
}

/* A time window is checked per rule, not indexed. */
static int
compile_time(struct compile *cp, size_t i, const struct policy_kind *k,
    const char *value, const char *list_type, const char **why)
{
	struct prule	*r = &cp->cp_p->p_rules[i];
	struct pv_time	*t;

	(void)k;
	(void)list_type;
	if ((t = reallocarray(r->pr_times, (size_t)r->pr_ntimes + 1,
	    sizeof(*t))) == NULL)
		return (-1);
	r->pr_times = t;
	if (pv_time_parse(value, &t[r->pr_ntimes], why) == -1)
		return (-2);
	r->pr_ntimes++;
	cp->cp_p->p_uses_time = 1;
	return (0);
}

/*
 * In the order socksctl lists a rule's conditions. Two kinds share an
 * option where an '@' tells them apart (--user @group, --dst @list).
 */
const struct policy_kind policy_kinds[] = {
	{ "user", "--user", 0, PK_USER, NULL, NULL, 0, compile_user },
	{ "group", "--user", 1, PK_USER, NULL, NULL, 0, compile_group },
	{ "src", "--src", 0, PK_SRC, policy_parse_cidr, NULL, 0,
	    compile_src },
	{ "src_country", "--src-country", 0, PK_SRC_COUNTRY,
	    policy_parse_country, NULL, 0, compile_country },
	{ "dst", "--dst", 0, PK_DST, parse_dst,
	    "not a CIDR, host name, *.domain or @list", 0, compile_dst },
	{ "dst_list", "--dst", 1, PK_DST, NULL, NULL, 0, compile_dst_list },
	{ "dst_country", "--country", 0, PK_DST_COUNTRY,
	    policy_parse_country, NULL, 0, compile_country },
	{ "port", "--port", 0, PK_PORT, policy_parse_port, NULL, 0,
	    compile_port },
	{ "cmd", "--cmd", 0, PK_CMD, parse_cmd, NULL, 0, compile_cmd },
	{ "time", "--time", 0, PK_TIME, policy_parse_time, NULL, 1,
	    compile_time },
};
const size_t policy_nkinds = sizeof(policy_kinds) / sizeof(policy_kinds[0]);

const struct policy_kind *
policy_kind_named(const char *name)
{
	size_t	 i;

	for (i = 0; i < policy_nkinds; i++)
		if (strcmp(policy_kinds[i].pk_name, name) == 0)
			return (&policy_kinds[i]);
	return (NULL);
}

/* The kind an option's value makes: "--dst @ads" is a dst_list. */
const struct policy_kind *
policy_kind_of_option(const char *option, const char *value)
{
	size_t	 i;

	for (i = 0; i < policy_nkinds; i++)
		if (strcmp(policy_kinds[i].pk_option, option) == 0 &&
		    policy_kinds[i].pk_at == (value[0] == '@'))
			return (&policy_kinds[i]);
	return (NULL);
}

static int
compile_add_cond(struct prule *r, enum pkind kind, const char *text)
{
	struct pcond	*c;

	if ((c = reallocarray(r->pr_conds, (size_t)r->pr_nconds + 1,
	    sizeof(*c))) == NULL)
		return (-1);
	r->pr_conds = c;
	c[r->pr_nconds].pc_kind = kind;
	if ((c[r->pr_nconds].pc_text = strdup(text)) == NULL)
		return (-1);
	r->pr_nconds++;
	return (0);
}

/* One condition of rule i, kind and value as stored: its kind's row. */
int
compile_condition(struct compile *cp, size_t i, const char *kind,
    const char *value, const char *list_type)
{
	struct policy			*p = cp->cp_p;
	struct prule			*r = &p->p_rules[i];
	const struct policy_kind	*k;
	const char			*why = "unknown kind";
	char				 text[POLICY_VALUE_MAX + 1];
	int				 rc = -2;

	if ((k = policy_kind_named(kind)) != NULL &&
	    (rc = k->pk_compile(cp, i, k, value, list_type, &why)) == 0) {
		snprintf(text, sizeof(text), "%s%s", k->pk_at ? "@" : "",
		    value);
		/*
		 * An indexed kind: the rule is no longer one without it. A
		 * time window is checked per rule (pr_times), and no other
		 * kind may go unindexed: it would be ignored, and a rule
		 * would match more than it says.
		 */
		if (k->pk_dim < PK_NDIM)
			bits_at(p, p->p_wild[k->pk_dim])[i / 64] &=
			    ~((uint64_t)1 << (i % 64));
		else if (k->pk_dim != PK_TIME) {
			why = "kind with no index dimension";
			rc = -2;
			goto bad;
		}
		return (compile_add_cond(r, (enum pkind)k->pk_dim, text));
	}
	if (rc == -1)
		return (-1);
bad:
	/* The schema's checks and socksctl keep this from happening. */
	errno = EINVAL;
	if (asprintf(cp->cp_cause, "compiling the policy: rule %lld: %s %s: "
	    "%s", (long long)r->pr_id, kind, value, why) < 0)
		*cp->cp_cause = NULL;
	return (-2);
}
