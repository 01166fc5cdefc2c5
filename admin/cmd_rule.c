/*
 * cmd_rule.c: socksctl rule add|list|show|del|move|enable|disable.
 *
 * Positions are 1..N without gaps; adding, deleting and moving renumber
 * the others in the same transaction. (Positions are UNIQUE and SQLite
 * checks that row by row, so a shift goes through a far-off range.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "admin.h"
#include "conf.h"

#define RULE_SHIFT	1000000000

struct cond {
	const char	*c_kind;
	char		 c_value[POLICY_VALUE_MAX];
	const char	*c_ref;		/* user, group or list name to look up */
};

static void
rule_shift(struct ctl *ctl, int64_t from, int64_t delta)
{
	char	 sql[192];

	/* Out of the way first, then back in at their new places. */
	snprintf(sql, sizeof(sql), "UPDATE rules SET position = position + %d "
	    "WHERE position >= ?2 AND position < %d", RULE_SHIFT, RULE_SHIFT);
	sql_exec(ctl, sql, NULL, from);
	snprintf(sql, sizeof(sql), "UPDATE rules SET position = position - "
	    "%lld WHERE position >= %d AND position < %d",
	    (long long)(RULE_SHIFT - delta), RULE_SHIFT, 2 * RULE_SHIFT);
	sql_exec(ctl, sql, NULL, 0);
}

static int64_t
rule_count(struct ctl *ctl)
{
	return (sql_int(ctl, "SELECT count(*) FROM rules", NULL, 0, 0));
}

static int
rule_add(struct ctl *ctl, struct args *a)
{
	struct cond	 conds[256];
	size_t		 n = 0, i, j;
	const char	*action, *opt, *v, *why, *comment = "";
	int64_t		 position = 0, count, id, ref;
	const struct policy_kind *k;
	sqlite3_stmt	*st;
	int		 enabled = 1, dup;

	if ((action = args_next(a)) == NULL ||
	    (strcmp(action, "allow") != 0 && strcmp(action, "deny") != 0))
		ctl_usage_error("rule add: allow or deny expected first");
	while ((opt = args_next(a)) != NULL) {
		struct cond *c = &conds[n];

		memset(c, 0, sizeof(*c));
		if (strcmp(opt, "--position") == 0) {
			position = parse_id(args_value(a, opt), opt);
			continue;
		}
		if (strcmp(opt, "--comment") == 0) {
			comment = args_value(a, opt);
			continue;
		}
		if (strcmp(opt, "--disabled") == 0) {
			enabled = 0;
			continue;
		}
		if (n == sizeof(conds) / sizeof(conds[0]))
			ctl_error("too many conditions in one rule");
		v = args_value(a, opt);
		if ((k = policy_kind_of_option(opt, v)) == NULL) {
			if (policy_kind_of_option(opt, "") == NULL &&
			    policy_kind_of_option(opt, "@") == NULL)
				ctl_usage_error("rule add: unknown option '%s'",
				    opt);
			ctl_error("%s %s: '@' names a group or a list, and %s "
			    "takes neither", opt, v, opt);
		}
		c->c_kind = k->pk_name;
		if (k->pk_parse == NULL) {
			/* It names a user, group or list, looked up below. */
			c->c_ref = v + k->pk_at;
			snprintf(c->c_value, sizeof(c->c_value), "%s", c->c_ref);
		} else if (k->pk_parse(v, c->c_value, sizeof(c->c_value),
		    &why) == -1) {
			if (k->pk_quote)
				ctl_error("%s '%s': %s", opt, v, why);
			if (k->pk_expect != NULL)
				ctl_error("%s %s: %s (%s)", opt, v, k->pk_expect,
				    why);
			ctl_error("%s %s: %s", opt, v, why);
		}
		for (dup = 0, j = 0; j < n; j++)
			if (strcmp(conds[j].c_kind, c->c_kind) == 0 &&
			    strcmp(conds[j].c_value, c->c_value) == 0)
				dup = 1;
		if (!dup)
			n++;
	}

	ctl_begin(ctl);
	count = rule_count(ctl);
	if (position == 0)
		position = count + 1;
	else if (position > count + 1)
		ctl_error("--position %lld: there %s %lld rule%s, so at most "
		    "%lld", (long long)position, count == 1 ? "is" : "are",
		    (long long)count, count == 1 ? "" : "s",
		    (long long)count + 1);
	rule_shift(ctl, position, 1);
	st = sql_prepare(ctl, "INSERT INTO rules (position, action, enabled, "
	    "comment) VALUES (?1, ?2, ?3, ?4)");
	sqlite3_bind_int64(st, 1, position);
	sqlite3_bind_text(st, 2, action, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, enabled);
	sqlite3_bind_text(st, 4, comment, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		ctl_sql_error(ctl, "INSERT INTO rules");
	sqlite3_finalize(st);
	id = sqlite3_last_insert_rowid(ctl->ctl_db);

	st = sql_prepare(ctl, "INSERT INTO rule_conditions (rule_id, kind, "
	    "value, user_id, group_id, list_id) VALUES (?1, ?2, ?3, ?4, ?5, "
	    "?6)");
	for (i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, conds[i].c_kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, conds[i].c_value, -1, SQLITE_STATIC);
		if (conds[i].c_ref != NULL) {
			const char *kn = conds[i].c_kind;
			int col = strcmp(kn, "user") == 0 ? 4 :
			    strcmp(kn, "group") == 0 ? 5 : 6;

			ref = sql_int(ctl, col == 4 ? "SELECT id FROM users "
			    "WHERE name = ?1" : col == 5 ? "SELECT id FROM "
			    "groups WHERE name = ?1" : "SELECT id FROM lists "
			    "WHERE name = ?1", conds[i].c_ref, 0, 0);
			if (ref == 0)
				ctl_error("%s %s%s: no such %s (add it first)",
				    col == 6 ? "--dst" : "--user",
				    col == 4 ? "" : "@", conds[i].c_ref,
				    col == 4 ? "user" : col == 5 ? "group" :
				    "list");
			sqlite3_bind_int64(st, col, ref);
		}
		if (sqlite3_step(st) != SQLITE_DONE)
			ctl_sql_error(ctl, "INSERT INTO rule_conditions");
	}
	sqlite3_finalize(st);
	snprintf(ctl->ctl_detail, sizeof(ctl->ctl_detail), "rule %lld at "
	    "position %lld", (long long)id, (long long)position);
	ctl_commit(ctl);
	/* Kept (the admin may switch auth next), but never silently. */
	for (i = 0; i < n && ctl->ctl_conf->c_auth == AUTH_NONE; i++)
		if (strcmp(conds[i].c_kind, "user") == 0 ||
		    strcmp(conds[i].c_kind, "group") == 0) {
			fprintf(stderr, "socksctl: warning: %s says auth none: "
			    "no request carries a user, so rule %lld cannot "
			    "match (and gatewayd -n fails) until auth pam\n",
			    ctl->ctl_conf_path, (long long)id);
			break;
		}
	if (ctl->ctl_json)
		printf("{\"id\": %lld, \"position\": %lld}\n", (long long)id,
		    (long long)position);
	else
		printf("%lld\n", (long long)id);
	return (0);
}

/*
 * A rule's conditions as the options that would make them, into f: for a
 * listing (a time window in single quotes), or for socksctl export (every
 * value as export_word() writes it).
 */
static void
rule_conditions_write(struct ctl *ctl, int64_t id, FILE *f, int for_export)
{
	sqlite3_stmt	*st;
	size_t		 k;
	int		 n = 0;
	const char	*kind, *value;

	st = sql_prepare(ctl, "SELECT kind, value FROM rule_conditions "
	    "WHERE rule_id = ?1");
	sqlite3_bind_int64(st, 1, id);
	/* In the table's order, whatever order the rows come in. */
	for (k = 0; k < policy_nkinds; k++) {
		sqlite3_reset(st);
		while (sqlite3_step(st) == SQLITE_ROW) {
			kind = (const char *)sqlite3_column_text(st, 0);
			value = (const char *)sqlite3_column_text(st, 1);
			if (strcmp(kind, policy_kinds[k].pk_name) != 0)
				continue;
			fprintf(f, "%s%s %s", n++ > 0 || for_export ? " " : "",
			    policy_kinds[k].pk_option,
			    policy_kinds[k].pk_at ? "@" : "");
			if (for_export)
				export_word(f, value);
			else if (policy_kinds[k].pk_quote)
				fprintf(f, "'%s'", value);
			else
				fprintf(f, "%s", value);
		}
	}
	sqlite3_finalize(st);
}

static char *
rule_conditions_text(struct ctl *ctl, int64_t id)
{
	struct text	 t;

	rule_conditions_write(ctl, id, text_open(&t), 0);
	return (text_close(&t));
}

/* socksctl export: the rules in the order they are judged. */
void
export_rules(struct ctl *ctl, FILE *f)
{
	sqlite3_stmt	*st;

	st = sql_prepare(ctl, "SELECT id, action, enabled, comment FROM rules "
	    "ORDER BY position");
	while (sqlite3_step(st) == SQLITE_ROW) {
		fprintf(f, "rule add %s", sqlite3_column_text(st, 1));
		rule_conditions_write(ctl, sqlite3_column_int64(st, 0), f, 1);
		if (!sqlite3_column_int(st, 2))
			fprintf(f, " --disabled");
		if (sqlite3_column_bytes(st, 3) > 0) {
			fprintf(f, " --comment ");
			export_word(f, (const char *)sqlite3_column_text(st, 3));
		}
		fprintf(f, "\n");
	}
	sqlite3_finalize(st);
}

/* Decisions per rule from the running gateway: -1 when it does not say. */
struct rule_hit {
	int64_t		 rh_id;
	long long	 rh_hits, rh_last;
};

static size_t
rule_hits(struct ctl *ctl, struct rule_hit **out)
{
	char		*ans, *p;
	size_t		 n = 0, cap = 0;
	struct rule_hit	 h;

	*out = NULL;
	if ((ans = live_try(ctl, "rules")) == NULL)
		return ((size_t)-1);
	/* An error (an older gatewayd, a refusal) says nothing of hits. */
	if (strncmp(ans, "{\"rules\": [", 11) != 0) {
		free(ans);
		return ((size_t)-1);
	}
	for (p = ans; (p = strstr(p, "{\"id\": ")) != NULL; p++) {
		if (sscanf(p, "{\"id\": %lld, \"hits\": %lld, \"last_hit\": "
		    "%lld}", (long long *)&h.rh_id, &h.rh_hits, &h.rh_last) != 3)
			continue;
		if (n == cap && (*out = reallocarray(*out, cap = cap ? cap * 2 :
		    64, sizeof(**out))) == NULL)
			ctl_error("out of memory");
		(*out)[n++] = h;
	}
	free(ans);
	return (n);
}

static int
rule_list(struct ctl *ctl, struct args *a, int64_t only)
{
	struct table	*t;
	sqlite3_stmt	*st;
	struct rule_hit	*hits;
	char		 id[24], pos[24], count[24], last[32], *conds;
	size_t		 nhits, i;
	int		 found = 0;
	int64_t		 rid;
	time_t		 when;
	struct tm	 tm;

	args_done(a);
	/* Since gatewayd started; none when it does not answer. */
	nhits = rule_hits(ctl, &hits);
	t = table_new(8, "#id", "#position", "action", "?enabled",
	    "conditions", "comment", "#hits", "~last_hit");
	st = sql_prepare(ctl, "SELECT id, position, action, enabled, comment "
	    "FROM rules WHERE ?1 = 0 OR id = ?1 ORDER BY position");
	sqlite3_bind_int64(st, 1, only);
	while (sqlite3_step(st) == SQLITE_ROW) {
		found = 1;
		rid = sqlite3_column_int64(st, 0);
		snprintf(id, sizeof(id), "%lld", (long long)rid);
		snprintf(pos, sizeof(pos), "%d", sqlite3_column_int(st, 1));
		count[0] = last[0] = '\0';
		if (nhits != (size_t)-1) {
			snprintf(count, sizeof(count), "0");
			for (i = 0; i < nhits; i++)
				if (hits[i].rh_id == rid) {
					snprintf(count, sizeof(count), "%lld",
					    hits[i].rh_hits);
					when = (time_t)hits[i].rh_last;
					gmtime_r(&when, &tm);
					strftime(last, sizeof(last),
					    "%Y-%m-%dT%H:%M:%SZ", &tm);
				}
		}
		if (!ctl->ctl_json && count[0] == '\0')
			snprintf(count, sizeof(count), "-");
		if (!ctl->ctl_json && last[0] == '\0')
			snprintf(last, sizeof(last), "-");
		conds = rule_conditions_text(ctl, rid);
		table_row(t, id, pos, sqlite3_column_text(st, 2),
		    sqlite3_column_int(st, 3) ? "yes" : "no",
		    conds[0] ? conds : "(any)", sqlite3_column_text(st, 4),
		    count, last);
		free(conds);
	}
	sqlite3_finalize(st);
	if (nhits != (size_t)-1)
		free(hits);
	if (only != 0 && !found)
		ctl_error("rule %lld: no such rule", (long long)only);
	table_print(t, ctl->ctl_json);
	return (0);
}

static int64_t
rule_position(struct ctl *ctl, int64_t id)
{
	int64_t	 pos = sql_int(ctl, "SELECT position FROM rules WHERE id = ?2",
		    NULL, id, 0);

	if (pos == 0)
		ctl_error("rule %lld: no such rule", (long long)id);
	return (pos);
}

static int
rule_del(struct ctl *ctl, int64_t id)
{
	int64_t	 pos;

	ctl_begin(ctl);
	pos = rule_position(ctl, id);
	sql_exec(ctl, "DELETE FROM rules WHERE id = ?2", NULL, id);
	rule_shift(ctl, pos + 1, -1);
	ctl_commit(ctl);
	return (0);
}

static int
rule_move(struct ctl *ctl, int64_t id, int64_t to)
{
	int64_t	 from, count;

	ctl_begin(ctl);
	from = rule_position(ctl, id);
	count = rule_count(ctl);
	if (to > count)
		ctl_error("position %lld: there are %lld rules", (long long)to,
		    (long long)count);
	sql_exec(ctl, "UPDATE rules SET position = 2100000000 WHERE id = ?2",
	    NULL, id);
	rule_shift(ctl, from + 1, -1);
	rule_shift(ctl, to, 1);
	sql_exec(ctl, "UPDATE rules SET position = ?2 WHERE position = "
	    "2100000000", NULL, to);
	ctl_commit(ctl);
	return (0);
}

static int
rule_enable(struct ctl *ctl, int64_t id, int enabled)
{
	ctl_begin(ctl);
	rule_position(ctl, id);
	sql_exec(ctl, enabled ? "UPDATE rules SET enabled = 1 WHERE id = ?2" :
	    "UPDATE rules SET enabled = 0 WHERE id = ?2", NULL, id);
	ctl_commit(ctl);
	return (0);
}

int
cmd_rule(struct ctl *ctl, struct args *a)
{
	const char	*verb = args_next(a), *v;
	int64_t		 id, pos;

	if (verb == NULL)
		ctl_usage_error("rule: add, list, show, del, move, enable or "
		    "disable expected");
	if (strcmp(verb, "add") == 0)
		return (rule_add(ctl, a));
	if (strcmp(verb, "list") == 0)
		return (rule_list(ctl, a, 0));
	if ((v = args_next(a)) == NULL)
		ctl_usage_error("rule %s: rule id expected", verb);
	id = parse_id(v, "rule id");
	if (strcmp(verb, "show") == 0)
		return (rule_list(ctl, a, id));
	if (strcmp(verb, "move") == 0) {
		if ((v = args_next(a)) == NULL)
			ctl_usage_error("rule move ID POSITION");
		pos = parse_id(v, "position");
		args_done(a);
		return (rule_move(ctl, id, pos));
	}
	args_done(a);
	if (strcmp(verb, "del") == 0)
		return (rule_del(ctl, id));
	if (strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0)
		return (rule_enable(ctl, id, verb[0] == 'e'));
	ctl_usage_error("rule %s: unknown verb", verb);
}
