/*
 * cmd_list.c: socksctl list create|import|show|list|del. Named lists of
 * domains or CIDRs that rules refer to as @NAME. An import is checked
 * whole before anything is written: one bad line (reported with its line
 * number) and nothing is imported.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "admin.h"

#define LIST_ERRORS_SHOWN	20

static int64_t
list_lookup(struct ctl *ctl, const char *name, int *is_cidr)
{
	sqlite3_stmt	*st;
	int64_t		 id = 0;

	st = sql_prepare(ctl, "SELECT id, type FROM lists WHERE name = ?1");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		if (is_cidr != NULL)
			*is_cidr = strcmp((const char *)
			    sqlite3_column_text(st, 1), "cidr") == 0;
	}
	sqlite3_finalize(st);
	if (id == 0)
		ctl_error("list %s: no such list", name);
	return (id);
}

/*
 * The canonical form of one entry of a domain or a CIDR list, or -1 and
 * why. An address looks like a host name (digits and dots) and a name is
 * no address: either in the wrong list would never match, so both are
 * errors that say where it belongs.
 */
int
list_entry_canon(const char *text, int is_cidr, char *canon, size_t len,
    const char **why)
{
	if (!is_cidr && policy_parse_cidr(text, canon, len, why) == 0) {
		*why = "an address, and this list holds names (put addresses "
		    "in a --type cidr list)";
		return (-1);
	}
	if (is_cidr && policy_parse_cidr(text, canon, len, why) == -1 &&
	    policy_parse_domain(text, canon, len, why) == 0) {
		*why = "a host name, and this list holds addresses (put names "
		    "in a --type domain list)";
		return (-1);
	}
	return (is_cidr ? policy_parse_cidr(text, canon, len, why) :
	    policy_parse_domain(text, canon, len, why));
}

/* Canonical entries of FILE, one a line, or exit listing the bad lines. */
static char **
list_read(const char *path, int is_cidr, size_t *count)
{
	FILE		*f;
	char		*line = NULL, *p, *end, **out = NULL;
	char		 canon[POLICY_VALUE_MAX];
	const char	*why;
	size_t		 cap = 0, n = 0, outcap = 0;
	ssize_t		 len;
	long		 lineno = 0, bad = 0;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "r")) == NULL)
		ctl_error("%s: %s", path, strerror(errno));
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		for (end = p + strlen(p); end > p && (end[-1] == '\n' ||
		    end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		if (*p == '\0')
			continue;
		if (list_entry_canon(p, is_cidr, canon, sizeof(canon),
		    &why) == -1) {
			if (bad++ < LIST_ERRORS_SHOWN)
				fprintf(stderr, "%s:%ld: %s: %s\n", path, lineno,
				    term_text(p), why);
			continue;
		}
		if (n == outcap) {
			outcap = outcap ? outcap * 2 : 1024;
			if ((out = reallocarray(out, outcap,
			    sizeof(*out))) == NULL)
				ctl_error("out of memory");
		}
		if ((out[n++] = strdup(canon)) == NULL)
			ctl_error("out of memory");
	}
	if (ferror(f))
		ctl_error("%s: %s", path, strerror(errno));
	free(line);
	if (f != stdin)
		fclose(f);
	if (bad > 0)
		ctl_error("%s: %ld bad line%s%s; nothing imported", path, bad,
		    bad == 1 ? "" : "s", bad > LIST_ERRORS_SHOWN ?
		    " (the first 20 shown)" : "");
	*count = n;
	return (out);
}

static int
list_import(struct ctl *ctl, const char *name, struct args *a)
{
	const char	*file = NULL, *opt;
	char		**entries;
	size_t		 n, i, added;
	int64_t		 id;
	int		 is_cidr = 0, replace = 0;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--replace") == 0)
			replace = 1;
		else if (file == NULL && (opt[0] != '-' || opt[1] == '\0'))
			file = opt;
		else
			ctl_usage_error("list import: unexpected '%s'", opt);
	}
	if (file == NULL)
		ctl_usage_error("list import NAME FILE [--replace]");
	list_lookup(ctl, name, &is_cidr);
	entries = list_read(file, is_cidr, &n);

	ctl_begin(ctl);
	id = list_lookup(ctl, name, &is_cidr);
	if (replace)
		sql_exec(ctl, "DELETE FROM list_entries WHERE list_id = ?2",
		    NULL, id);
	added = list_add_entries(ctl, name, entries, n);
	snprintf(ctl->ctl_detail, sizeof(ctl->ctl_detail), "%zu entries read, "
	    "%zu added%s", n, added, replace ? ", the others removed" : "");
	ctl_commit(ctl);
	if (ctl->ctl_json) {
		printf("{\"list\": ");
		json_string(name);
		printf(", \"read\": %zu, \"added\": %zu}\n", n, added);
	}
	else
		printf("%s: %zu entries read, %zu added\n", name, n, added);
	for (i = 0; i < n; i++)
		free(entries[i]);
	free(entries);
	return (0);
}

static int
list_show(struct ctl *ctl, const char *name, struct args *a)
{
	struct table	*t;
	sqlite3_stmt	*st;
	const char	*opt;
	int64_t		 id, limit = -1;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--limit") != 0)
			ctl_usage_error("list show: unknown option '%s'", opt);
		limit = parse_id(args_value(a, opt), "--limit");
	}
	id = list_lookup(ctl, name, NULL);
	t = table_new(1, "entry");
	st = sql_prepare(ctl, "SELECT value FROM list_entries WHERE "
	    "list_id = ?1 ORDER BY value LIMIT ?2");
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, limit);
	while (sqlite3_step(st) == SQLITE_ROW)
		table_row(t, sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	table_print(t, ctl->ctl_json);
	return (0);
}

static int
list_list(struct ctl *ctl)
{
	struct table	*t;
	sqlite3_stmt	*st;
	char		 count[24], *rules;

	t = table_new(5, "name", "type", "#entries", "rules", "comment");
	st = sql_prepare(ctl, "SELECT l.id, l.name, l.type, (SELECT count(*) "
	    "FROM list_entries e WHERE e.list_id = l.id), l.comment "
	    "FROM lists l ORDER BY l.name");
	while (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(count, sizeof(count), "%lld",
		    sqlite3_column_int64(st, 3));
		rules = sql_rules_naming(ctl, "list_id",
		    sqlite3_column_int64(st, 0));
		table_row(t, sqlite3_column_text(st, 1),
		    sqlite3_column_text(st, 2), count, rules ? rules : "",
		    sqlite3_column_text(st, 4));
		free(rules);
	}
	sqlite3_finalize(st);
	table_print(t, ctl->ctl_json);
	return (0);
}

int
cmd_list(struct ctl *ctl, struct args *a)
{
	const char	*verb = args_next(a), *name, *opt, *type = NULL;
	const char	*comment = "";
	int64_t		 id;

	if (verb == NULL)
		ctl_usage_error("list: create, import, show, list or del "
		    "expected");
	if (strcmp(verb, "list") == 0) {
		args_done(a);
		return (list_list(ctl));
	}
	if ((name = args_next(a)) == NULL)
		ctl_usage_error("list %s: list name expected", verb);
	if (name[0] == '@')
		name++;
	if (strcmp(verb, "import") == 0)
		return (list_import(ctl, name, a));
	if (strcmp(verb, "show") == 0)
		return (list_show(ctl, name, a));
	if (strcmp(verb, "create") == 0) {
		check_name("list", name);
		while ((opt = args_next(a)) != NULL) {
			if (strcmp(opt, "--type") == 0)
				type = args_value(a, opt);
			else if (strcmp(opt, "--comment") == 0)
				comment = args_value(a, opt);
			else
				ctl_usage_error("list create: unknown option "
				    "'%s'", opt);
		}
		if (type == NULL || (strcmp(type, "domain") != 0 &&
		    strcmp(type, "cidr") != 0))
			ctl_usage_error("list create NAME --type domain|cidr");
		sql_add_named(ctl, "list", "lists", name, type, comment);
		return (0);
	}
	args_done(a);
	if (strcmp(verb, "del") == 0) {
		ctl_begin(ctl);
		id = list_lookup(ctl, name, NULL);
		sql_del_named(ctl, "list", "lists", "list_id", name, id);
		return (0);
	}
	ctl_usage_error("list %s: unknown verb", verb);
}

/* Entries (canonical already) added to list name; how many were new. */
size_t
list_add_entries(struct ctl *ctl, const char *name, char **entries,
    size_t n)
{
	sqlite3_stmt	*st;
	int64_t		 id = list_lookup(ctl, name, NULL);
	size_t		 i, added = 0;

	st = sql_prepare(ctl, "INSERT OR IGNORE INTO list_entries (list_id, "
	    "value) VALUES (?1, ?2)");
	for (i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, entries[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			ctl_sql_error(ctl, "INSERT INTO list_entries");
		added += (size_t)sqlite3_changes(ctl->ctl_db);
	}
	sqlite3_finalize(st);
	return (added);
}

/* Whether list name holds addresses (1) or names (0). */
int
list_is_cidr(struct ctl *ctl, const char *name)
{
	int	 is_cidr = 0;

	list_lookup(ctl, name, &is_cidr);
	return (is_cidr);
}

/* socksctl export: each list, then its entries, indented, one a line. */
void
export_lists(struct ctl *ctl, FILE *f)
{
	sqlite3_stmt	*st, *es;

	es = sql_prepare(ctl, "SELECT value FROM list_entries WHERE list_id = "
	    "?1 ORDER BY value");
	st = sql_prepare(ctl, "SELECT id, name, type, comment FROM lists "
	    "ORDER BY name");
	while (sqlite3_step(st) == SQLITE_ROW) {
		fprintf(f, "list create ");
		export_word(f, (const char *)sqlite3_column_text(st, 1));
		fprintf(f, " --type %s", sqlite3_column_text(st, 2));
		if (sqlite3_column_bytes(st, 3) > 0) {
			fprintf(f, " --comment ");
			export_word(f, (const char *)sqlite3_column_text(st, 3));
		}
		fprintf(f, "\n");
		sqlite3_reset(es);
		sqlite3_bind_int64(es, 1, sqlite3_column_int64(st, 0));
		while (sqlite3_step(es) == SQLITE_ROW)
			fprintf(f, "\t%s\n", sqlite3_column_text(es, 0));
	}
	sqlite3_finalize(st);
	sqlite3_finalize(es);
}
