/*
 * policy.h: the socksgw rule engine, the only header shared across folders.
 *
 * A policy is an immutable, reference-counted snapshot compiled from the
 * policy database. policy_decide() is pure: no I/O, no globals, the time is
 * passed in, so gatewayd and `socksctl explain` give the same answer for
 * the same request, and tests repeat.
 *
 * Decisions come in two phases for a request by name. Before any DNS query
 * (dst_addr NULL) the answer is DENY when the name alone is denied, so it
 * is never resolved, or RESOLVE. Each resolved address is then decided with
 * both the name and the address, so a name cannot lead to an address a
 * rule denies. Special-purpose destinations (loopback, this network,
 * link-local, multicast, reserved, and the gateway's own addresses) are
 * matched only by allow rules that name a CIDR inside them explicitly.
 */
#ifndef POLICY_H
#define POLICY_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct sqlite3;
struct policy;

enum policy_cmd {
	POLICY_CMD_CONNECT = 1,
	POLICY_CMD_BIND = 2,
	POLICY_CMD_UDP = 3,
};

enum policy_action {
	POLICY_DENY,
	POLICY_ALLOW,
	POLICY_RESOLVE,		/* by name: resolve, then decide per address */
};

struct policy_req {
	const char		*user;		/* authenticated, or NULL */
	const char *const	*groups;	/* the user's system groups */
	size_t			 ngroups;
	const struct sockaddr	*client;
	enum policy_cmd		 cmd;
	const char		*dst_name;	/* as requested, or NULL */
	const struct sockaddr	*dst_addr;	/* NULL before resolution */
	uint16_t		 dst_port;
	time_t			 now;
};

#define POLICY_REASON_MAX	192

struct policy_verdict {
	enum policy_action	 action;
	int64_t			 rule_id;	/* 0: no rule (default deny) */
	char			 reason[POLICY_REASON_MAX];
};

struct policy_options {
	const char		*geoip_db;	/* MaxMind DB file, or NULL */
	const char		*geoip_path;	/* e.g. "country iso_code" */
	/* The gateway's own addresses: special-purpose destinations. */
	const struct sockaddr_storage *self;
	size_t			 nself;
};

#define POLICY_GEOIP_PATH_DEFAULT	"country iso_code"

/* Loading and deciding (compile.c, snapshot.c, decide.c, explain.c). */
struct policy	*policy_load(const char *, const struct policy_options *,
		    char **);
struct policy	*policy_compile(struct sqlite3 *,
		    const struct policy_options *, char **);
void		 policy_decide(const struct policy *, const struct policy_req *,
		    struct policy_verdict *);
void		 policy_decide_any_dst(const struct policy *,
		    const struct policy_req *, struct policy_verdict *);
void		 policy_close(struct policy *, const char *);
void		 policy_ref(struct policy *);
void		 policy_unref(struct policy *);
size_t		 policy_rule_count(const struct policy *);
size_t		 policy_memory(const struct policy *);
int		 policy_user_disabled(const struct policy *, const char *);
/*
 * How many sessions the request's user may hold at once, -1 for no limit
 * (also for a request without a user); from names where the limit is set.
 */
int64_t		 policy_max_sessions(const struct policy *,
		    const struct policy_req *, char *, size_t);
int		 policy_has_limits(const struct policy *);
/* A new-session rate: pr_milli sessions a second x 1000, 0 for none. */
struct policy_rate {
	uint32_t	 pr_milli;
	uint32_t	 pr_burst;
};
int		 policy_rate(const struct policy *, const struct policy_req *,
		    struct policy_rate *, char *, size_t);
int		 policy_client_rate(const struct policy *,
		    struct policy_rate *);
/*
 * Bandwidth caps in bytes a second, each direction, 0 for none: the
 * user's own (shared by its sessions) and its group's (shared by all
 * members' sessions; *group names it).
 */
uint64_t	 policy_user_bandwidth(const struct policy *,
		    const struct policy_req *, char *, size_t);
uint64_t	 policy_group_bandwidth(const struct policy *,
		    const struct policy_req *, const char **);
/* Byte quotas: bytes both ways per calendar period, counted per user. */
enum policy_period {
	POLICY_PERIOD_NONE,
	POLICY_PERIOD_HOUR,
	POLICY_PERIOD_DAY,
	POLICY_PERIOD_WEEK,
	POLICY_PERIOD_MONTH,
};
struct policy_quota {
	uint64_t		 pq_bytes;
	enum policy_period	 pq_period;
};
int		 policy_quota(const struct policy *, const struct policy_req *,
		    struct policy_quota *, char *, size_t);
const char	*policy_period_name(enum policy_period);
enum policy_period policy_period_parse(const char *);
int		 policy_period_bounds(enum policy_period, time_t, time_t *,
		    time_t *);
int		 policy_bytes_parse(const char *, uint64_t *);
void		 policy_bytes_format(uint64_t, char *, size_t);

/*
 * Explain: calls back once per enabled rule before the deciding one (and
 * for the deciding one), with why it did or did not match (explain.c).
 */
typedef void	 policy_explain_cb(int64_t, int, const char *, int,
		    const char *, void *);
void		 policy_explain(const struct policy *,
		    const struct policy_req *, struct policy_verdict *,
		    policy_explain_cb *, void *);

/* GeoIP (geoip.c): the country of an address, "" when unknown. */
const char	*policy_country(const struct policy *, const struct sockaddr *,
		    char [3]);
struct policy_geoip;
struct policy_geoip *policy_geoip_open(const char *, const char *, char **);
void		 policy_geoip_close(struct policy_geoip *);
const char	*policy_geoip_lookup(const struct policy_geoip *,
		    const struct sockaddr *, char [3]);

/* The policy database (db.c). */
#define POLICY_DB_READONLY	0x1
#define POLICY_DB_CREATE	0x2
struct sqlite3	*policy_db_open(const char *, int, char **);
int		 policy_db_version(struct sqlite3 *);
const char	*policy_db_errmsg(const char *, struct sqlite3 *);
int		 policy_db_latest(void);
int		 policy_db_migrate(struct sqlite3 *, char **);
/* The same for any of the embedded schemas (the audit log's too). */
enum db_schema { DB_SCHEMA_POLICY, DB_SCHEMA_AUDIT };
int		 db_schema_latest(enum db_schema);
int		 db_schema_migrate(struct sqlite3 *, enum db_schema, char **);

/*
 * Values as rules and lists hold them (value.c): each parser returns 0 and
 * writes the canonical text to out, or -1 with *why set.
 */
#define POLICY_VALUE_MAX	272
int	 policy_parse_cidr(const char *, char *, size_t, const char **);
int	 policy_parse_domain(const char *, char *, size_t, const char **);
int	 policy_parse_port(const char *, char *, size_t, const char **);
int	 policy_parse_country(const char *, char *, size_t, const char **);
int	 policy_parse_time(const char *, char *, size_t, const char **);
int	 policy_parse_cmd(const char *, enum policy_cmd *);
const char *policy_cmd_name(enum policy_cmd);

/*
 * The kinds of rule condition (kinds.c), one row each, in the order
 * socksctl lists them: what rule_conditions.kind holds, the socksctl
 * option that makes one (two kinds share an option where the value's
 * leading '@' names a group or a list), the value's parser (NULL: the
 * value names a user, group or list), the index dimension, and how the
 * compiler takes it.
 */
struct compile;
struct policy_kind {
	const char	*pk_name;
	const char	*pk_option;
	int		 pk_at;
	int		 pk_dim;
	int		(*pk_parse)(const char *, char *, size_t,
			    const char **);
	const char	*pk_expect;	/* an error's words before the why */
	int		 pk_quote;	/* shown in single quotes (spaces) */
	int		(*pk_compile)(struct compile *, size_t,
			    const struct policy_kind *, const char *,
			    const char *, const char **);
};
extern const struct policy_kind	 policy_kinds[];
extern const size_t		 policy_nkinds;
const struct policy_kind *policy_kind_named(const char *);
const struct policy_kind *policy_kind_of_option(const char *, const char *);
const char *policy_special_range(const struct sockaddr *);

#endif /* POLICY_H */
