/*
 * policy_int.h: the compiled snapshot, private to policy/.
 *
 * DESIGN. Every enabled rule gets a bit, in position order. For each kind
 * of condition (user, source, source country, destination, destination
 * country, port, command) the snapshot has an index that maps a request's
 * value to the set of rules that kind of condition lets through, as a
 * bitset: the rules without a condition of that kind, plus those whose
 * condition matches the value. A decision looks each value up once, ANDs
 * the sets, and takes the lowest rule left whose time window holds. The
 * cost grows with the number of rules only as bitset width (10,000 rules
 * are 157 words), never as a scan of rule conditions.
 *
 * Indexes: users and groups by name (hash); address prefixes, built in a
 * binary trie per family and then laid out as one hash table per prefix
 * length present (a lookup is one probe per length, instead of one
 * dependent memory load per bit), each prefix carrying the rules naming it
 * and the lists holding it; names in one hash keyed by the name read from its end, so
 * that walking the labels of a.b.example.com from the right yields the
 * hash of every suffix in one pass; ports as sorted boundaries of segments;
 * countries as a 26x26 table. Bitsets live in one pool and are shared where
 * they are equal (an entry of one list points at that list's set).
 */
#ifndef POLICY_INT_H
#define POLICY_INT_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>

#include "policy.h"

/* Condition kinds, also the dimensions of a decision. */
enum pkind {
	PK_USER,	/* user and group conditions together */
	PK_SRC,
	PK_SRC_COUNTRY,
	PK_DST,		/* names, CIDRs and lists together */
	PK_DST_COUNTRY,
	PK_PORT,
	PK_CMD,
	PK_NDIM,
	PK_TIME = PK_NDIM,	/* checked per rule, not indexed */
};

struct pv_cidr {
	uint8_t		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 len;
	uint8_t		 addr[16];
};

struct pv_time {
	uint8_t		 days;		/* bit n: tm_wday n */
	uint16_t	 start;		/* minutes after midnight */
	uint16_t	 end;		/* <= start: ends the next day */
};

/* A rule as explain shows it. */
struct pcond {
	enum pkind	 pc_kind;
	char		*pc_text;	/* as stored, "@name" for lists/groups */
};

struct prule {
	int64_t		 pr_id;
	int		 pr_position;
	int		 pr_allow;
	char		*pr_comment;
	struct pcond	*pr_conds;
	int		 pr_nconds;
	struct pv_time	*pr_times;
	int		 pr_ntimes;
};

/* A string-keyed hash (users, groups): name -> bitset index. */
struct strmap_entry {
	char		*se_key;
	int32_t		 se_bits;
	int32_t		 se_flag;	/* users: disabled */
};
struct strmap {
	struct strmap_entry *sm_slots;
	size_t		 sm_mask;	/* slots - 1; 0: empty map */
	size_t		 sm_count;
};

/* Names: exact and suffix sets of one name. */
struct name_entry {
	uint64_t	 ne_hash;
	uint32_t	 ne_str;	/* offset in nx_strs */
	uint16_t	 ne_len;
	uint8_t		 ne_exact_owned;
	uint8_t		 ne_suffix_owned;
	int32_t		 ne_exact;	/* rules naming it exactly */
	int32_t		 ne_suffix;	/* it or any name under it */
};
struct name_index {
	/* Entry index + 1 in the low half (0: empty), the hash's high half
	 * above: a probe that misses never touches an entry. */
	uint64_t	*nx_slots;
	size_t		 nx_mask;
	struct name_entry *nx_entries;
	size_t		 nx_count;
	size_t		 nx_cap;
	char		*nx_strs;
	size_t		 nx_strlen;
	size_t		 nx_strcap;
};

/* Address tries. */
struct trie_node {
	uint32_t	 tn_child[2];	/* 0: none (node 0 is the root) */
	int32_t		 tn_payload;	/* -1: no prefix ends here */
};
struct tpayload {
	int32_t		 tp_rules;	/* rules naming this prefix */
	int32_t		 tp_lists;	/* rules through lists holding it */
	uint8_t		 tp_lists_owned;
	uint8_t		 tp_special;	/* prefix inside a special range */
};
struct trie {
	struct trie_node *t_nodes;
	size_t		 t_count;
	size_t		 t_cap;
};

/* Prefixes of one length: (address bits, as two big-endian halves). */
struct plen_slot {
	uint64_t	 ps_hi;
	uint64_t	 ps_lo;
	int32_t		 ps_payload;	/* -1: empty */
};
struct plen {
	int		 pl_len;
	size_t		 pl_mask;
	struct plen_slot *pl_slots;
};
struct prefix_index {
	struct plen	*px_lens;
	int		 px_nlens;
};

struct policy_geoip;

struct policy {
	_Atomic int	 p_refs;
	/* Set: every request is denied, with this reason (policy_close). */
	char		 p_closed[POLICY_REASON_MAX];
	size_t		 p_nrules;
	size_t		 p_words;	/* bitset width in 64-bit words */
	struct prule	*p_rules;

	uint64_t	*p_pool;	/* every bitset, p_words each */
	size_t		 p_nbits;
	size_t		 p_bitscap;

	int32_t		 p_wild[PK_NDIM];	/* rules without that kind */
	int32_t		 p_cmd[4];		/* by enum policy_cmd */
	int32_t		 p_deny;		/* deny rules */
	int32_t		 p_addr_rules;		/* rules with CIDR dst */

	struct strmap	 p_users;	/* rules of the user and its groups */
	struct strmap	 p_groups;	/* rules naming @group */
	/*
	 * Limits, -1 where none is set. Users: se_flag is the user's own
	 * max_sessions, se_bits the lowest of its database groups'. Groups
	 * (matched by name against the user's system groups too): se_flag.
	 */
	struct strmap	 p_user_limits;
	struct strmap	 p_group_limits;
	int32_t		 p_default_max_sessions;	/* -1: none */
	/*
	 * Rates: se_flag is the rate in sessions a second x 1000, se_bits
	 * the burst. A user's own pair, its strictest database group's, and
	 * each group's by name.
	 */
	struct strmap	 p_user_rates;
	struct strmap	 p_usergroup_rates;
	struct strmap	 p_group_rates;
	struct policy_rate p_default_rate;
	struct policy_rate p_client_rate;
	/*
	 * Bandwidth caps and quotas (caps.c): se_bits indexes the bandwidth
	 * cap in p_caps, se_flag the quota, -1 for none. Users: their own;
	 * usergroup: a user's strictest database group's; groups: by name.
	 */
	struct strmap	 p_user_caps;
	struct strmap	 p_usergroup_caps;
	struct strmap	 p_group_caps;
	struct policy_cap *p_caps;
	size_t		 p_ncaps;
	size_t		 p_capscap;
	int32_t		 p_default_bw;		/* -1: none */
	int32_t		 p_default_quota;	/* -1: none */
	struct trie	 p_src[2];	/* [0] IPv4, [1] IPv6; compile only */
	struct trie	 p_dst[2];
	struct prefix_index p_src_px[2];
	struct prefix_index p_dst_px[2];
	struct tpayload	*p_payloads;
	size_t		 p_npayloads;
	size_t		 p_payloadcap;
	struct name_index p_names;
	int32_t		 p_src_country[26 * 26];
	int32_t		 p_dst_country[26 * 26];
	uint32_t	*p_port_lo;	/* segment i is [lo[i], lo[i+1]) */
	int32_t		*p_port_bits;
	size_t		 p_nports;
	int		 p_uses_time;

	struct policy_geoip *p_geoip;
	struct sockaddr_storage *p_self;
	size_t		 p_nself;
};

/* A bandwidth cap (bytes a second) or a quota (bytes per period). */
struct policy_cap {
	uint64_t	 pc_value;
	uint8_t		 pc_period;	/* enum policy_period; quotas */
	char		*pc_group;	/* a group's cap: its name */
};

/* caps.c */
int	 caps_compile(struct policy *, struct sqlite3 *, const char **);
void	 caps_free(struct policy *);
int	 caps_any(const struct policy *);

/* index.c */
int32_t	 bits_new(struct policy *);
int32_t	 bits_copy(struct policy *, int32_t);
void	 bits_set(struct policy *, int32_t, size_t);
void	 bits_or(struct policy *, int32_t, int32_t);
int	 strmap_put(struct strmap *, const char *, struct strmap_entry **);
const struct strmap_entry *strmap_get(const struct strmap *, const char *);
void	 strmap_free(struct strmap *);
uint64_t name_hash_step(uint64_t, unsigned char);
int	 names_put(struct name_index *, const char *, struct name_entry **);
const struct name_entry *names_get(const struct name_index *, uint64_t,
	    const char *, size_t);
void	 names_free(struct name_index *);
int	 trie_insert(struct trie *, const uint8_t *, int, uint32_t *);
void	 trie_free(struct trie *);
int	 px_build(struct prefix_index *, const struct trie *, int);
int32_t	 px_find(const struct plen *, const uint8_t *);
void	 px_free(struct prefix_index *);
size_t	 px_memory(const struct prefix_index *);

/* value.c */
int	 pv_cidr_parse(const char *, struct pv_cidr *, const char **);
int	 pv_cidr_contains(const struct pv_cidr *, const struct sockaddr *);
int	 pv_time_parse(const char *, struct pv_time *, const char **);
int	 pv_time_match(const struct pv_time *, const struct tm *);
int	 pv_port_parse(const char *, uint16_t *, uint16_t *, const char **);
int	 pv_sockaddr_bytes(const struct sockaddr *, uint8_t *, int *);
int	 pv_cidr_special(const struct pv_cidr *);
int	 pv_embedded_v4(const uint8_t *, uint8_t [2][4], const char **);
int	 pv_country_index(const char *);

/* geoip.c */
const char *geoip_country(const struct policy_geoip *, const struct sockaddr *,
	    char [3]);

static inline uint64_t *
bits_at(const struct policy *p, int32_t b)
{
	return (p->p_pool + (size_t)b * p->p_words);
}

#endif /* POLICY_INT_H */
