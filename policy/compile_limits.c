/*
 * compile_limits.c: the per-user part of a snapshot: which rules name
 * each user (directly or through its groups) and who is disabled, the
 * session limits, connection rates, and bandwidth caps and quotas
 * (caps.c), read in compile.c's transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "compile_int.h"

/*
 * Users: the rules naming a user plus those naming any of its groups in
 * the database, folded into one set per user; and who is disabled.
 */
int
compile_users(struct compile *cp)
{
	static const char sql[] = "SELECT u.name, u.enabled, g.name FROM users u "
	    "LEFT JOIN user_groups ug ON ug.user_id = u.id "
	    "LEFT JOIN groups g ON g.id = ug.group_id";
	struct policy			*p = cp->cp_p;
	struct strmap_entry		*ue;
	const struct strmap_entry	*ge;
	sqlite3_stmt			*st;
	const char			*group;
	int				 rc;

	if (sqlite3_prepare_v2(cp->cp_db, sql, -1, &st, NULL) != SQLITE_OK)
		return (compile_sqlfail(cp, sql));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		group = (const char *)sqlite3_column_text(st, 2);
		ge = group ? strmap_get(&p->p_groups, group) : NULL;
		if (sqlite3_column_int(st, 1) && ge == NULL)
			continue;	/* nothing to know about this one */
		if (strmap_put(&p->p_users, (const char *)
		    sqlite3_column_text(st, 0), &ue) == -1)
			goto nomem;
		if (!sqlite3_column_int(st, 1))
			ue->se_flag = 1;
		if (ge != NULL && ge->se_bits != -1) {
			if (ue->se_bits == -1 && (ue->se_bits = bits_new(p)) ==
			    -1)
				goto nomem;
			bits_or(p, ue->se_bits, ge->se_bits);
		}
	}
	sqlite3_finalize(st);
	return (rc == SQLITE_DONE ? 0 : compile_sqlfail(cp, sql));
nomem:
	sqlite3_finalize(st);
	return (compile_fail(cp, "out of memory", NULL));
}

/* Limits of users, groups and the default (schema 0003). */
int
compile_limits(struct compile *cp)
{
	static const char users_sql[] = "SELECT u.name, u.max_sessions, "
	    "(SELECT min(g.max_sessions) FROM user_groups ug JOIN groups g ON "
	    "g.id = ug.group_id WHERE ug.user_id = u.id) AS gmax FROM users u "
	    "WHERE u.max_sessions IS NOT NULL OR gmax IS NOT NULL";
	static const char groups_sql[] = "SELECT name, max_sessions FROM "
	    "groups WHERE max_sessions IS NOT NULL";
	static const char default_sql[] = "SELECT CAST(value AS INTEGER) FROM "
	    "settings WHERE key = 'max_sessions'";
	struct policy		*p = cp->cp_p;
	struct strmap_entry	*e;
	sqlite3_stmt		*st;
	const char		*sql;
	int			 rc, users;

	p->p_default_max_sessions = -1;
	for (users = 1; users >= 0; users--) {
		sql = users ? users_sql : groups_sql;
		if (sqlite3_prepare_v2(cp->cp_db, sql, -1, &st, NULL) !=
		    SQLITE_OK)
			return (compile_sqlfail(cp, sql));
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (strmap_put(users ? &p->p_user_limits :
			    &p->p_group_limits, (const char *)
			    sqlite3_column_text(st, 0), &e) == -1) {
				sqlite3_finalize(st);
				return (compile_fail(cp, "out of memory", NULL));
			}
			e->se_flag = sqlite3_column_type(st, 1) == SQLITE_NULL ?
			    -1 : sqlite3_column_int(st, 1);
			if (users)
				e->se_bits = sqlite3_column_type(st, 2) ==
				    SQLITE_NULL ? -1 : sqlite3_column_int(st, 2);
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return (compile_sqlfail(cp, sql));
	}
	if (sqlite3_prepare_v2(cp->cp_db, default_sql, -1, &st, NULL) !=
	    SQLITE_OK)
		return (compile_sqlfail(cp, default_sql));
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		p->p_default_max_sessions = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 :
	    compile_sqlfail(cp, default_sql));
}

/* A rate from the database (a missing burst: the rate rounded up). */
static void
compile_rate(sqlite3_stmt *st, int col, struct policy_rate *out)
{
	double	 rate = sqlite3_column_double(st, col);

	out->pr_milli = (uint32_t)(rate * 1000 + 0.5);
	if (out->pr_milli < 1)
		out->pr_milli = 1;
	out->pr_burst = sqlite3_column_type(st, col + 1) == SQLITE_NULL ?
	    (rate < 1 ? 1 : (uint32_t)(rate + 0.999)) :
	    (uint32_t)sqlite3_column_int(st, col + 1);
}

int
compile_rates(struct compile *cp)
{
	struct policy		*p = cp->cp_p;
	const struct {
		struct strmap	*map;
		const char	*sql;
	} q[] = {
		{ &p->p_user_rates, "SELECT name, rate, burst FROM users "
		    "WHERE rate IS NOT NULL" },
		/*
		 * The strictest group: the lowest rate (SQLite takes the
		 * bare burst column from the row min() chose).
		 */
		{ &p->p_usergroup_rates, "SELECT u.name, min(g.rate), g.burst "
		    "FROM users u JOIN user_groups ug ON ug.user_id = u.id JOIN "
		    "groups g ON g.id = ug.group_id WHERE g.rate IS NOT NULL "
		    "GROUP BY u.id" },
		{ &p->p_group_rates, "SELECT name, rate, burst FROM groups "
		    "WHERE rate IS NOT NULL" },
		/* The defaults, as rows of the same shape. */
		{ NULL, "SELECT 'rate', r.value, b.value FROM settings r LEFT "
		    "JOIN settings b ON b.key = 'burst' WHERE r.key = 'rate' "
		    "UNION ALL SELECT 'client', r.value, b.value FROM settings "
		    "r LEFT JOIN settings b ON b.key = 'client_burst' WHERE "
		    "r.key = 'client_rate'" },
	};
	struct strmap_entry	*e;
	struct policy_rate	 r;
	sqlite3_stmt		*st;
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		if (sqlite3_prepare_v2(cp->cp_db, q[i].sql, -1, &st, NULL) !=
		    SQLITE_OK)
			return (compile_sqlfail(cp, q[i].sql));
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			compile_rate(st, 1, &r);
			if (q[i].map == NULL) {
				if (sqlite3_column_text(st, 0)[0] == 'r')
					p->p_default_rate = r;
				else
					p->p_client_rate = r;
				continue;
			}
			if (strmap_put(q[i].map, (const char *)
			    sqlite3_column_text(st, 0), &e) == -1) {
				sqlite3_finalize(st);
				return (compile_fail(cp, "out of memory", NULL));
			}
			e->se_flag = (int32_t)r.pr_milli;
			e->se_bits = (int32_t)r.pr_burst;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return (compile_sqlfail(cp, q[i].sql));
	}
	return (0);
}

int
compile_caps(struct compile *cp)
{
	const char	*sql;

	if (caps_compile(cp->cp_p, cp->cp_db, &sql) == 0)
		return (0);
	return (sql ? compile_sqlfail(cp, sql) :
	    compile_fail(cp, "out of memory", NULL));
}
