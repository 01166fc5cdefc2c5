/*
 * cmd_user.c: socksctl user ... and group ... . Passwords are not here:
 * they stay in PAM. A user or group that a rule names cannot be deleted
 * until no rule does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "admin.h"
#include "limit_opts.h"

struct user_opts {
	struct limit_opts u_limits;
	const char	*u_groups[64];
	int		 u_ngroups;
	int		 u_set_groups;
	const char	*u_comment;
	int		 u_enabled;	/* -1: unchanged */
};

static void
user_parse_opts(struct args *a, struct user_opts *o)
{
	const char	*opt;

	memset(o, 0, sizeof(*o));
	o->u_enabled = -1;
	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--group") == 0) {
			if (o->u_ngroups == 64)
				ctl_error("at most 64 groups a user");
			o->u_groups[o->u_ngroups] = args_value(a, opt);
			if (o->u_groups[o->u_ngroups][0] == '@')
				o->u_groups[o->u_ngroups]++;
			o->u_ngroups++;
			o->u_set_groups = 1;
		} else if (strcmp(opt, "--comment") == 0)
			o->u_comment = args_value(a, opt);
		else if (strcmp(opt, "--disabled") == 0)
			o->u_enabled = 0;
		else if (!limit_option(a, opt, &o->u_limits, LIMIT_NUSER))
			ctl_usage_error("user: unknown option '%s'", opt);
	}
}

static int64_t
user_id(struct ctl *ctl, const char *name)
{
	int64_t	 id = sql_int(ctl, "SELECT id FROM users WHERE name = ?1", name,
		    0, 0);

	if (id == 0)
		ctl_error("user %s: no such user", name);
	return (id);
}

static int64_t
group_id(struct ctl *ctl, const char *name)
{
	int64_t	 id = sql_int(ctl, "SELECT id FROM groups WHERE name = ?1",
		    name, 0, 0);

	if (id == 0)
		ctl_error("group %s: no such group", name);
	return (id);
}

static void
user_set_groups(struct ctl *ctl, int64_t uid, const struct user_opts *o)
{
	sqlite3_stmt	*st;
	int		 i;

	sql_exec(ctl, "DELETE FROM user_groups WHERE user_id = ?2", NULL, uid);
	st = sql_prepare(ctl, "INSERT OR IGNORE INTO user_groups (user_id, "
	    "group_id) VALUES (?1, ?2)");
	for (i = 0; i < o->u_ngroups; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, uid);
		sqlite3_bind_int64(st, 2, group_id(ctl, o->u_groups[i]));
		if (sqlite3_step(st) != SQLITE_DONE)
			ctl_sql_error(ctl, "INSERT INTO user_groups");
	}
	sqlite3_finalize(st);
}

static int
user_add(struct ctl *ctl, const char *name, struct args *a, int add)
{
	struct user_opts	 o;
	sqlite3_stmt		*st;
	int64_t			 uid;

	check_name("user", name);
	user_parse_opts(a, &o);
	ctl_begin(ctl);
	if (add) {
		if (sql_int(ctl, "SELECT id FROM users WHERE name = ?1", name, 0,
		    0) != 0)
			ctl_error("user %s: already exists", name);
		st = sql_prepare(ctl, "INSERT INTO users (name, enabled, "
		    "comment) VALUES (?1, ?2, ?3)");
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, o.u_enabled != 0);
		sqlite3_bind_text(st, 3, o.u_comment ? o.u_comment : "", -1,
		    SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			ctl_sql_error(ctl, "INSERT INTO users");
		sqlite3_finalize(st);
		uid = sqlite3_last_insert_rowid(ctl->ctl_db);
	} else {
		uid = user_id(ctl, name);
		if (o.u_comment != NULL) {
			st = sql_prepare(ctl, "UPDATE users SET comment = ?1 "
			    "WHERE id = ?2");
			sqlite3_bind_text(st, 1, o.u_comment, -1,
			    SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, uid);
			if (sqlite3_step(st) != SQLITE_DONE)
				ctl_sql_error(ctl, "UPDATE users");
			sqlite3_finalize(st);
		}
		if (o.u_enabled == 0)
			sql_exec(ctl, "UPDATE users SET enabled = 0 WHERE id = "
			    "?2", NULL, uid);
	}
	if (o.u_set_groups)
		user_set_groups(ctl, uid, &o);
	limit_store(ctl, "users", uid, &o.u_limits);
	ctl_commit(ctl);
	return (0);
}

static char *
user_groups_text(struct ctl *ctl, int64_t uid)
{
	sqlite3_stmt	*st;
	struct text	 t;
	FILE		*f;

	st = sql_prepare(ctl, "SELECT g.name FROM user_groups ug JOIN groups g "
	    "ON g.id = ug.group_id WHERE ug.user_id = ?1 ORDER BY g.name");
	sqlite3_bind_int64(st, 1, uid);
	f = text_open(&t);
	while (sqlite3_step(st) == SQLITE_ROW)
		fprintf(f, "%s%s", ftell(f) ? "," : "",
		    sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return (text_close(&t));
}

static int
user_list(struct ctl *ctl, const char *only)
{
	struct policy_req req;
	struct limits_view lv;
	struct policy	*p;
	struct table	*t;
	sqlite3_stmt	*st;
	sqlite3		*audit;
	char		*groups, *rules;
	int		 found = 0;

	/* Caps and quotas as the engine resolves them, usage as recorded. */
	p = ctl_policy(ctl);
	audit = usage_db_open(ctl);
	memset(&req, 0, sizeof(req));
	req.now = time(NULL);
	t = table_new(10, "name", "?enabled", "groups", "~max_sessions",
	    "~rate", "~bandwidth", "~quota", "quota_used", "rules", "comment");
	/* The limits in force, and where they come from when not the user. */
	st = sql_prepare(ctl, "SELECT id, name, enabled, comment, CASE "
	    "WHEN max_sessions IS NOT NULL THEN CAST(max_sessions AS TEXT) "
	    "WHEN gmax IS NOT NULL THEN gmax || ' (group)' "
	    "WHEN dmax IS NOT NULL THEN dmax || ' (default)' ELSE 'none' END, "
	    "CASE WHEN rate IS NOT NULL THEN rate || '/s' || "
	    "coalesce(' burst ' || burst, '') "
	    "WHEN grate IS NOT NULL THEN grate || ' (group)' "
	    "WHEN drate IS NOT NULL THEN drate || ' (default)' ELSE 'none' END "
	    "FROM (SELECT u.*, (SELECT min(g.max_sessions) FROM user_groups ug "
	    "JOIN groups g ON g.id = ug.group_id WHERE ug.user_id = u.id) AS "
	    "gmax, (SELECT CAST(value AS INTEGER) FROM settings WHERE key = "
	    "'max_sessions') AS dmax, (SELECT min(g.rate) || '/s' || "
	    "coalesce(' burst ' || g.burst, '') FROM user_groups ug JOIN "
	    "groups g ON g.id = ug.group_id WHERE ug.user_id = u.id AND "
	    "g.rate IS NOT NULL) AS grate, (SELECT r.value || '/s' || "
	    "coalesce(' burst ' || b.value, '') FROM settings r LEFT JOIN "
	    "settings b ON b.key = 'burst' WHERE r.key = 'rate') AS drate "
	    "FROM users u) WHERE ?1 IS NULL OR name = ?1 ORDER BY name");
	if (only != NULL)
		sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		found = 1;
		groups = user_groups_text(ctl, sqlite3_column_int64(st, 0));
		rules = sql_rules_naming(ctl, "user_id",
		    sqlite3_column_int64(st, 0));
		req.user = (const char *)sqlite3_column_text(st, 1);
		limits_view(p, &req, audit, &lv);
		table_row(t, sqlite3_column_text(st, 1),
		    sqlite3_column_int(st, 2) ? "yes" : "no", groups,
		    sqlite3_column_text(st, 4), sqlite3_column_text(st, 5),
		    lv.lv_bw_text, lv.lv_quota_text, lv.lv_used_text,
		    rules ? rules : "", sqlite3_column_text(st, 3));
		free(groups);
		free(rules);
	}
	sqlite3_finalize(st);
	sqlite3_close(audit);
	policy_unref(p);
	if (only != NULL && !found)
		ctl_error("user %s: no such user", only);
	table_print(t, ctl->ctl_json);
	return (0);
}

static int
user_del(struct ctl *ctl, const char *name)
{
	int64_t	 uid;

	ctl_begin(ctl);
	uid = user_id(ctl, name);
	sql_del_named(ctl, "user", "users", "user_id", name, uid);
	return (0);
}

int
cmd_user(struct ctl *ctl, struct args *a)
{
	const char	*verb = args_next(a), *name;
	int64_t		 uid;

	if (verb == NULL)
		ctl_usage_error("user: add, set, list, show, del, enable or "
		    "disable expected");
	if (strcmp(verb, "list") == 0) {
		args_done(a);
		return (user_list(ctl, NULL));
	}
	if ((name = args_next(a)) == NULL)
		ctl_usage_error("user %s: user name expected", verb);
	if (strcmp(verb, "add") == 0 || strcmp(verb, "set") == 0)
		return (user_add(ctl, name, a, verb[0] == 'a'));
	args_done(a);
	if (strcmp(verb, "show") == 0)
		return (user_list(ctl, name));
	if (strcmp(verb, "del") == 0)
		return (user_del(ctl, name));
	if (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0) {
		ctl_begin(ctl);
		uid = user_id(ctl, name);
		sql_exec(ctl, verb[0] == 'e' ? "UPDATE users SET enabled = 1 "
		    "WHERE id = ?2" : "UPDATE users SET enabled = 0 WHERE id = "
		    "?2", NULL, uid);
		ctl_commit(ctl);
		return (0);
	}
	ctl_usage_error("user %s: unknown verb", verb);
}

int
cmd_group(struct ctl *ctl, struct args *a)
{
	const char	*verb = args_next(a), *name, *opt, *comment = NULL;
	struct table	*t;
	sqlite3_stmt	*st;
	struct limit_opts lo;
	int64_t		 gid;
	char		*rules, members[24], bw[32], quota[32];

	if (verb == NULL)
		ctl_usage_error("group: add, set, del or list expected");
	if (strcmp(verb, "list") == 0) {
		args_done(a);
		t = table_new(8, "name", "#members", "~max_sessions", "~rate",
		    "~bandwidth", "~quota", "rules", "comment");
		st = sql_prepare(ctl, "SELECT g.id, g.name, (SELECT count(*) "
		    "FROM user_groups ug WHERE ug.group_id = g.id), g.comment, "
		    "coalesce(g.max_sessions, 'none'), coalesce(g.rate || '/s' "
		    "|| coalesce(' burst ' || g.burst, ''), 'none'), "
		    "g.bandwidth, g.quota, g.quota_period FROM groups g "
		    "ORDER BY g.name");
		while (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(members, sizeof(members), "%d",
			    sqlite3_column_int(st, 2));
			rules = sql_rules_naming(ctl, "group_id",
			    sqlite3_column_int64(st, 0));
			limit_text(&limit_defs[LIMIT_BANDWIDTH], st, 6, bw,
			    sizeof(bw));
			limit_text(&limit_defs[LIMIT_QUOTA], st, 7, quota,
			    sizeof(quota));
			table_row(t, sqlite3_column_text(st, 1), members,
			    sqlite3_column_text(st, 4),
			    sqlite3_column_text(st, 5), bw, quota,
			    rules ? rules : "", sqlite3_column_text(st, 3));
			free(rules);
		}
		sqlite3_finalize(st);
		table_print(t, ctl->ctl_json);
		return (0);
	}
	if ((name = args_next(a)) == NULL)
		ctl_usage_error("group %s: group name expected", verb);
	if (name[0] == '@')
		name++;
	if (strcmp(verb, "add") == 0 || strcmp(verb, "set") == 0) {
		check_name("group", name);
		memset(&lo, 0, sizeof(lo));
		while ((opt = args_next(a)) != NULL) {
			if (strcmp(opt, "--comment") == 0)
				comment = args_value(a, opt);
			else if (!limit_option(a, opt, &lo, LIMIT_NUSER))
				ctl_usage_error("group %s: unknown option "
				    "'%s'", verb, opt);
		}
		ctl_begin(ctl);
		if (verb[0] == 'a' && sql_int(ctl, "SELECT id FROM groups "
		    "WHERE name = ?1", name, 0, 0) != 0)
			ctl_error("group %s: already exists", name);
		if (verb[0] == 'a' || comment != NULL) {
			st = sql_prepare(ctl, verb[0] == 'a' ? "INSERT INTO "
			    "groups (comment, name) VALUES (?1, ?2)" :
			    "UPDATE groups SET comment = ?1 WHERE name = ?2");
			sqlite3_bind_text(st, 1, comment != NULL ? comment : "",
			    -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				ctl_sql_error(ctl, "groups");
			sqlite3_finalize(st);
		}
		gid = group_id(ctl, name);
		limit_store(ctl, "groups", gid, &lo);
		ctl_commit(ctl);
		return (0);
	}
	args_done(a);
	if (strcmp(verb, "del") == 0) {
		ctl_begin(ctl);
		gid = group_id(ctl, name);
		sql_del_named(ctl, "group", "groups", "group_id", name, gid);
		return (0);
	}
	ctl_usage_error("group %s: unknown verb", verb);
}

/* The default quota's period, a settings key of its own; NULL: none. */
static void
defaults_period(struct ctl *ctl, const char *period)
{
	sqlite3_stmt	*st;

	st = sql_prepare(ctl, period == NULL ? "DELETE FROM settings WHERE "
	    "key = 'quota_period'" : "INSERT OR REPLACE INTO settings (key, "
	    "value) VALUES ('quota_period', ?1)");
	if (period != NULL)
		sqlite3_bind_text(st, 1, period, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		ctl_sql_error(ctl, "settings");
	sqlite3_finalize(st);
}

/*
 * The limits of users that neither they nor their groups set, and the
 * new-session rate of each client address.
 */
int
cmd_defaults(struct ctl *ctl, struct args *a)
{
	struct limit_opts lo;
	const char	*opt;
	struct table	*t;
	sqlite3_stmt	*st;
	size_t		 i;
	int		 any = 0;
	char		 text[64];

	memset(&lo, 0, sizeof(lo));
	while ((opt = args_next(a)) != NULL) {
		if (!limit_option(a, opt, &lo, LIMIT_NALL))
			ctl_usage_error("defaults: unknown option '%s'", opt);
		any = 1;
	}
	if (any) {
		ctl_begin(ctl);
		for (i = 0; i < LIMIT_NALL; i++) {
			if (!lo.lo_set[i])
				continue;
			/* "none": no row, so nothing is set. */
			st = sql_prepare(ctl, lo.lo_value[i] < 0 ? "DELETE FROM "
			    "settings WHERE key = ?1" : "INSERT OR REPLACE INTO "
			    "settings (key, value) VALUES (?1, CAST(?2 AS TEXT))");
			sqlite3_bind_text(st, 1, limit_defs[i].ld_name, -1,
			    SQLITE_STATIC);
			limit_bind(st, 2, lo.lo_value[i]);
			if (sqlite3_step(st) != SQLITE_DONE)
				ctl_sql_error(ctl, "settings");
			sqlite3_finalize(st);
			if (limit_defs[i].ld_kind == LK_QUOTA)
				defaults_period(ctl, lo.lo_value[i] < 0 ? NULL :
				    lo.lo_period[i]);
		}
		ctl_commit(ctl);
		return (0);
	}
	t = table_new(2, "limit", "~default");
	st = sql_prepare(ctl, DEFAULT_LIMIT_SQL);
	for (i = 0; i < LIMIT_NALL; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, limit_defs[i].ld_name, -1,
		    SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			limit_text(&limit_defs[i], st, 0, text, sizeof(text));
		else
			snprintf(text, sizeof(text), "none");
		table_row(t, limit_defs[i].ld_name, text);
	}
	sqlite3_finalize(st);
	table_print(t, ctl->ctl_json);
	return (0);
}

/*
 * Column col of st as export writes it: exactly what is stored, so that
 * an import gives back the same value (a listing's "1.46K" would not):
 * bytes in the largest unit that divides them, counts and rates as
 * stored.
 */
static void
export_limit_text(const struct limit_def *ld, sqlite3_stmt *st, int col,
    char *out, size_t outlen)
{
	static const char	 units[] = "KMGT";
	uint64_t		 n;
	int			 u = -1;

	if (ld->ld_kind != LK_BYTES && ld->ld_kind != LK_QUOTA) {
		snprintf(out, outlen, "%s", sqlite3_column_text(st, col));
		return;
	}
	n = (uint64_t)sqlite3_column_int64(st, col);
	while (u < 3 && n >= 1024 && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	snprintf(out, outlen, "%llu%.*s%s%s", (unsigned long long)n,
	    u >= 0 ? 1 : 0, u >= 0 ? &units[u] : "",
	    ld->ld_kind == LK_QUOTA ? "/" : "", ld->ld_kind == LK_QUOTA ?
	    (sqlite3_column_text(st, col + 1) ? (const char *)
	    sqlite3_column_text(st, col + 1) : "?") : "");
}

/* The limit options of row st (columns from col on, LIMIT_NUSER of them,
 * a quota's period after the quota), those that are set. */
static void
export_limits(FILE *f, sqlite3_stmt *st, int col)
{
	char	 text[64];
	size_t	 i;
	int	 c;

	for (i = 0, c = col; i < LIMIT_NUSER; i++, c++) {
		if (sqlite3_column_type(st, c) != SQLITE_NULL) {
			export_limit_text(&limit_defs[i], st, c, text,
			    sizeof(text));
			fprintf(f, " %s %s", limit_defs[i].ld_opt, text);
		}
		if (limit_defs[i].ld_kind == LK_QUOTA)
			c++;
	}
}

#define EXPORT_LIMIT_COLUMNS	"max_sessions, rate, burst, bandwidth, " \
				"quota, quota_period"

/* socksctl export: the defaults, the groups and the users, as commands. */
void
export_people(struct ctl *ctl, FILE *f)
{
	sqlite3_stmt	*st, *gs;
	char		 text[64];
	size_t		 i;
	int		 any = 0;

	st = sql_prepare(ctl, DEFAULT_LIMIT_SQL);
	for (i = 0; i < LIMIT_NALL; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, limit_defs[i].ld_name, -1,
		    SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW)
			continue;
		export_limit_text(&limit_defs[i], st, 0, text, sizeof(text));
		fprintf(f, "%s %s %s", any++ ? "" : "defaults",
		    limit_defs[i].ld_opt, text);
	}
	sqlite3_finalize(st);
	if (any)
		fprintf(f, "\n\n");

	st = sql_prepare(ctl, "SELECT name, comment, " EXPORT_LIMIT_COLUMNS
	    " FROM groups ORDER BY name");
	while (sqlite3_step(st) == SQLITE_ROW) {
		fprintf(f, "group add ");
		export_word(f, (const char *)sqlite3_column_text(st, 0));
		if (sqlite3_column_bytes(st, 1) > 0) {
			fprintf(f, " --comment ");
			export_word(f, (const char *)sqlite3_column_text(st, 1));
		}
		export_limits(f, st, 2);
		fprintf(f, "\n");
	}
	sqlite3_finalize(st);

	gs = sql_prepare(ctl, "SELECT g.name FROM user_groups ug JOIN groups "
	    "g ON g.id = ug.group_id WHERE ug.user_id = ?1 ORDER BY g.name");
	st = sql_prepare(ctl, "SELECT id, name, enabled, comment, "
	    EXPORT_LIMIT_COLUMNS " FROM users ORDER BY name");
	while (sqlite3_step(st) == SQLITE_ROW) {
		fprintf(f, "user add ");
		export_word(f, (const char *)sqlite3_column_text(st, 1));
		sqlite3_reset(gs);
		sqlite3_bind_int64(gs, 1, sqlite3_column_int64(st, 0));
		while (sqlite3_step(gs) == SQLITE_ROW) {
			fprintf(f, " --group ");
			export_word(f, (const char *)sqlite3_column_text(gs, 0));
		}
		if (sqlite3_column_bytes(st, 3) > 0) {
			fprintf(f, " --comment ");
			export_word(f, (const char *)sqlite3_column_text(st, 3));
		}
		if (!sqlite3_column_int(st, 2))
			fprintf(f, " --disabled");
		export_limits(f, st, 4);
		fprintf(f, "\n");
	}
	sqlite3_finalize(st);
	sqlite3_finalize(gs);
}
