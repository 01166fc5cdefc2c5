/*
 * sql.c: the few SQLite helpers socksctl needs. Errors name the SQL that
 * failed (fossil's db_err) and end the process, which rolls back any open
 * transaction: a command changes everything or nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "admin.h"

sqlite3_stmt *
sql_prepare(struct ctl *ctl, const char *sql)
{
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v2(ctl_db(ctl), sql, -1, &st, NULL) != SQLITE_OK)
		ctl_sql_error(ctl, sql);
	return (st);
}

/* Runs sql with one text and one integer parameter (either may be unused). */
void
sql_exec(struct ctl *ctl, const char *sql, const char *text, int64_t num)
{
	sqlite3_stmt	*st = sql_prepare(ctl, sql);
	int		 n = sqlite3_bind_parameter_count(st);

	if (n >= 1)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (n >= 2)
		sqlite3_bind_int64(st, 2, num);
	if (sqlite3_step(st) != SQLITE_DONE)
		ctl_sql_error(ctl, sql);
	sqlite3_finalize(st);
}

/* The integer in the first column of sql's first row, or dflt. */
int64_t
sql_int(struct ctl *ctl, const char *sql, const char *text, int64_t num,
    int64_t dflt)
{
	sqlite3_stmt	*st = sql_prepare(ctl, sql);
	int		 n = sqlite3_bind_parameter_count(st), rc;
	int64_t		 v = dflt;

	if (n >= 1)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (n >= 2)
		sqlite3_bind_int64(st, 2, num);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ctl_sql_error(ctl, sql);
	sqlite3_finalize(st);
	return (v);
}

/* The ids (comma-separated) of rules whose condition refers to id. */
char *
sql_rules_naming(struct ctl *ctl, const char *column, int64_t id)
{
	char		 sql[160], *out;
	struct text	 t;
	FILE		*f;
	sqlite3_stmt	*st;
	int		 n = 0;

	snprintf(sql, sizeof(sql), "SELECT DISTINCT rule_id FROM "
	    "rule_conditions WHERE %s = ?1 ORDER BY rule_id", column);
	st = sql_prepare(ctl, sql);
	sqlite3_bind_int64(st, 1, id);
	f = text_open(&t);
	while (sqlite3_step(st) == SQLITE_ROW)
		fprintf(f, "%s%lld", n++ ? ", " : "",
		    (long long)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	out = text_close(&t);
	if (n == 0) {
		free(out);
		return (NULL);
	}
	return (out);
}

/* A name for a user, group or list: 1 to 255 printable bytes, no spaces. */
void
check_name(const char *what, const char *name)
{
	const unsigned char	*p;

	if (name[0] == '\0' || strlen(name) > 255 || name[0] == '@' ||
	    name[0] == '-')
		ctl_error("%s name '%s': 1 to 255 characters, not starting "
		    "with '@' or '-'", what, name);
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f)
			ctl_error("%s name '%s': no spaces or control "
			    "characters", what, name);
}

/*
 * Adds a group or list called name to table ("groups" or "lists"; type only
 * for lists), in a transaction of its own; an existing name is an error.
 */
void
sql_add_named(struct ctl *ctl, const char *what, const char *table,
    const char *name, const char *type, const char *comment)
{
	sqlite3_stmt	*st;
	char		 sql[160];

	ctl_begin(ctl);
	snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE name = ?1", table);
	if (sql_int(ctl, sql, name, 0, 0) != 0)
		ctl_error("%s %s: already exists", what, name);
	snprintf(sql, sizeof(sql), "INSERT INTO %s (name, comment%s) VALUES "
	    "(?1, ?2%s)", table, type ? ", type" : "", type ? ", ?3" : "");
	st = sql_prepare(ctl, sql);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, comment, -1, SQLITE_STATIC);
	if (type != NULL)
		sqlite3_bind_text(st, 3, type, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		ctl_sql_error(ctl, sql);
	sqlite3_finalize(st);
	ctl_commit(ctl);
}

/* Deletes row id of table, unless a rule names it through column. */
void
sql_del_named(struct ctl *ctl, const char *what, const char *table,
    const char *column, const char *name, int64_t id)
{
	char	 sql[96], *rules;

	if ((rules = sql_rules_naming(ctl, column, id)) != NULL)
		ctl_error("%s %s: named by rule %s; change or delete that first",
		    what, name, rules);
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?2", table);
	sql_exec(ctl, sql, NULL, id);
	ctl_commit(ctl);
}
