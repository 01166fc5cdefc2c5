/*
 * admin.h: socksctl, the administration CLI. One file per noun (cmd_*.c);
 * this header is the folder's only one.
 *
 * Every command that changes the policy database checks all its arguments
 * first, then makes its change in one transaction: an error leaves the
 * database as it was. Exit codes: 0 success, 1 error (one line on stderr),
 * 2 usage error.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "policy.h"

struct sqlite3;
struct conf;

#define EXIT_USAGE	2

struct args;
struct table;

struct ctl {
	const char	*ctl_conf_path;
	struct conf	*ctl_conf;
	int		 ctl_json;
	struct sqlite3	*ctl_db;	/* the policy database, when opened */
	char		*ctl_cmdline;	/* for the change log */
	char		 ctl_detail[256];	/* what changed, if more to say */
	int		 ctl_batch;	/* import: one transaction for all */
	const char	*ctl_fleet;	/* --fleet FILE: the nodes' sockets */
	/*
	 * What the commands above ctl.c give it (socksctl.c sets them): a
	 * noun's command (import runs a file of them), and the policy as
	 * text (each change keeps a snapshot for rollback).
	 */
	int		(*ctl_run)(struct ctl *, const char *, struct args *);
	char		*(*ctl_export)(struct ctl *, size_t);
};

/* An argument list being taken apart: options may repeat. */
struct args {
	int		 a_argc;
	char		**a_argv;
	int		 a_i;
};

/* socksctl.c */
extern const char *ctl_where;	/* FILE:LINE that errors name, or NULL */
extern const char *ctl_noun, *ctl_verb;	/* of the command line, for hints */
void	 ctl_start(struct ctl *);
void	 ctl_temp(const char *);
void	 ctl_temp_done(const char *);
void	 ctl_usage_error(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 ctl_error(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
struct sqlite3 *ctl_db(struct ctl *);
void	 ctl_begin(struct ctl *);
void	 ctl_commit(struct ctl *);
void	 ctl_sql_error(struct ctl *, const char *) __attribute__((noreturn));
const char *args_next(struct args *);
const char *args_value(struct args *, const char *);
void	 args_done(struct args *);
int64_t	 parse_id(const char *, const char *);

/* cmd_explain.c */
void	 geoip_attribution(const char *, char *, size_t);
const char *term_text(const char *);

/* cmd_policy.c: export and import */
int	 cmd_export(struct ctl *, struct args *);
int	 cmd_import(struct ctl *, struct args *);
void	 export_word(FILE *, const char *);
/* A text built with stdio; out of memory ends the command (ctl_error). */
struct text {
	char		*t_buf;
	size_t		 t_len;
	FILE		*t_f;
};
FILE	*text_open(struct text *);
char	*text_close(struct text *);
char	*policy_export_text(struct ctl *, size_t);
int	 policy_import_text(struct ctl *, const char *, const char *);
char	*temp_file(const char *, const char *);
/* cmd_history.c: the change log's snapshots */
int	 cmd_rollback(struct ctl *, struct args *);
int	 log_revert(struct ctl *, int64_t);
/* ... and what each noun's file exports of the policy */
void	 export_people(struct ctl *, FILE *);
void	 export_lists(struct ctl *, FILE *);
void	 export_rules(struct ctl *, FILE *);
int	 list_entry_canon(const char *, int, char *, size_t, const char **);
size_t	 list_add_entries(struct ctl *, const char *, char **, size_t);
int	 list_is_cidr(struct ctl *, const char *);

/* cmd_live.c */
char	*live_try(struct ctl *, const char *);
char	*live_try_at(const char *, const char *);
void	 live_field(const char *, const char *, char *, size_t);
void	 live_session_rows(char *, struct table *, const char *);
void	 live_sessions_request(struct args *, const char *, char *, size_t);

/* cmd_fleet.c: --fleet FILE sessions|stats, every node's control socket */
int	 fleet_run(struct ctl *, const char *, struct args *);

/* cmd_test.c */
int	 cmd_test(struct ctl *, struct args *);

/* help.c */
void	 help_usage(FILE *, const char *);
int	 help_verb(FILE *, const char *, const char *);
const char *help_suggest(const char *, const char *, const char *);
int	 help_is_verb(const char *, const char *);

/* sql.c */
struct sqlite3_stmt;
struct sqlite3_stmt *sql_prepare(struct ctl *, const char *);
void	 sql_exec(struct ctl *, const char *, const char *, int64_t);
int64_t	 sql_int(struct ctl *, const char *, const char *, int64_t, int64_t);
char	*sql_rules_naming(struct ctl *, const char *, int64_t);
void	 check_name(const char *, const char *);
void	 sql_add_named(struct ctl *, const char *, const char *, const char *,
	    const char *, const char *);
void	 sql_del_named(struct ctl *, const char *, const char *, const char *,
	    const char *, int64_t);

/* output.c: aligned tables for people, JSON for scripts */
struct table;
struct table *table_new(int, ...);
void	 table_row(struct table *, ...);
void	 table_print(struct table *, int);
void	 json_string(const char *);
void	 out_kv(int, const char *, const char *, int);

/* cmd_*.c */
int	 cmd_init(struct ctl *, struct args *);
int	 cmd_rule(struct ctl *, struct args *);
int	 cmd_user(struct ctl *, struct args *);
int	 cmd_group(struct ctl *, struct args *);
int	 cmd_defaults(struct ctl *, struct args *);
int	 cmd_list(struct ctl *, struct args *);
int	 cmd_explain(struct ctl *, struct args *);
int	 cmd_geoip(struct ctl *, struct args *);
int	 cmd_audit(struct ctl *, struct args *);
int	 cmd_sessions(struct ctl *, struct args *);
int	 cmd_reload(struct ctl *, struct args *);
int	 cmd_stats(struct ctl *, struct args *);
int	 cmd_log(struct ctl *, struct args *);
struct sqlite3	*audit_db(struct ctl *);

/* limits_view.c */
struct limits_view {
	uint64_t	 lv_bandwidth;		/* own or default; 0: none */
	char		 lv_bw_from[POLICY_REASON_MAX];
	uint64_t	 lv_group_bandwidth;	/* shared by lv_bw_group */
	const char	*lv_bw_group;
	struct policy_quota lv_quota;
	char		 lv_quota_from[POLICY_REASON_MAX];
	time_t		 lv_period_start;
	int64_t		 lv_used;		/* -1: unknown */
	char		 lv_bw_text[POLICY_REASON_MAX + 64];
	char		 lv_quota_text[64];
	char		 lv_used_text[128];
};
struct policy	*ctl_policy(struct ctl *);
struct sqlite3	*usage_db_open(struct ctl *);
void		 limits_view(const struct policy *, const struct policy_req *,
		    struct sqlite3 *, struct limits_view *);
int64_t	 parse_when(const char *, const char *);
int	 audit_report(struct ctl *, struct args *);
int	 audit_verify(struct ctl *, struct args *);
struct verify_result {
	int64_t		 vr_records, vr_points, vr_outside, vr_restarted;
};
struct evp_pkey_st;
int	 audit_verify_db(struct sqlite3 *, struct evp_pkey_st *, const char *,
	    int, struct verify_result *);
/* audit list's filters (NULL, INT64_MIN/MAX, -1: none) */
struct audit_filter {
	const char	*af_user, *af_verdict, *af_dst, *af_client, *af_node;
	int64_t		 af_since, af_until, af_limit, af_rule, af_session;
};
struct table	*audit_list_table(void);
void	 audit_list_row(struct table *, const char *const *);
/* policy_store.c: the fleet's policy in PostgreSQL (policy_db URL) */
struct sqlite3	*policy_store_open(struct ctl *);
void		 policy_store_finish(struct ctl *);
int		 policy_store_init(struct ctl *);

/* cmd_central.c: the fleet's central audit store (audit_central) */
int	 central_list(struct ctl *, const struct audit_filter *);
int	 central_verify(struct ctl *, const char *, const char *);
int	 central_nodes(struct ctl *, struct args *);
char	*central_report_log(struct ctl *, int64_t, int64_t, const char *);

#endif /* ADMIN_H */
