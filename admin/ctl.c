/*
 * ctl.c: what every socksctl command shares: its arguments, the policy
 * database and its transaction with the change log, errors (escaped,
 * with FILE:LINE when import runs a file) and temporary files.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "admin.h"
#include "conf.h"
#include "policy.h"
#include "escape.h"

/* A change-log snapshot larger than this (a list of millions) is not kept. */
#define CTL_SNAPSHOT_MAX	(16 * 1024 * 1024)
/* Changes that keep their snapshot (rollback and revert reach as far). */
#define CTL_SNAPSHOTS_KEPT	"100"

const char	*ctl_where;
const char	*ctl_noun, *ctl_verb;

static struct ctl	*ctl_active;	/* whose transaction an error ends */
static char		*ctl_temps[8];	/* temporary files, unlinked at exit */

static void	ctl_temps_remove(void);

/* ctl is the command's: errors end its transaction, temporaries go. */
void
ctl_start(struct ctl *ctl)
{
	ctl_active = ctl;
	atexit(ctl_temps_remove);
}

/* A temporary file to remove at exit, whatever ends the command. */
void
ctl_temp(const char *path)
{
	size_t	 i;

	for (i = 0; i < sizeof(ctl_temps) / sizeof(ctl_temps[0]); i++)
		if (ctl_temps[i] == NULL) {
			if ((ctl_temps[i] = strdup(path)) == NULL)
				ctl_error("out of memory");
			return;
		}
	ctl_error("too many temporary files");
}

/* Removes slot i's file and its journal, and frees the slot. */
static void
ctl_temp_remove(size_t i)
{
	char	 journal[4200];

	unlink(ctl_temps[i]);
	snprintf(journal, sizeof(journal), "%s-journal", ctl_temps[i]);
	unlink(journal);
	free(ctl_temps[i]);
	ctl_temps[i] = NULL;
}

/* A temporary file done with before the exit: removed now, its slot free. */
void
ctl_temp_done(const char *path)
{
	size_t	 i;

	for (i = 0; i < sizeof(ctl_temps) / sizeof(ctl_temps[0]); i++)
		if (ctl_temps[i] != NULL && strcmp(ctl_temps[i], path) == 0)
			ctl_temp_remove(i);
}

static void
ctl_temps_remove(void)
{
	size_t	 i;

	for (i = 0; i < sizeof(ctl_temps) / sizeof(ctl_temps[0]); i++)
		if (ctl_temps[i] != NULL)
			ctl_temp_remove(i);
}

/*
 * An error ends the command: its transaction is rolled back now, not by
 * the next opener (a hot journal would stop gatewayd's read-only reloads
 * until then), and its temporary files go.
 */
static void __attribute__((noreturn))
ctl_exit(int code)
{
	if (ctl_active != NULL && ctl_active->ctl_db != NULL &&
	    !sqlite3_get_autocommit(ctl_active->ctl_db))
		sqlite3_exec(ctl_active->ctl_db, "ROLLBACK", NULL, NULL, NULL);
	exit(code);
}

/* What an error says, escaped: file contents and names reach it. */
static void
ctl_print_error(const char *msg)
{
	char	 vis[4096];

	esc_log(vis, sizeof(vis), msg);
	fprintf(stderr, "socksctl: %s%s%s", ctl_where ? ctl_where : "",
	    ctl_where ? ": " : "", vis);
}

/*
 * "did you mean --dst?" after an error about an unknown noun, verb or
 * option (the words of help.c's table: a typo is likely one of them).
 */
static void
ctl_hint(const char *msg)
{
	const char	*p, *hint = NULL;
	char		 word[64];
	size_t		 n;

	if ((p = strstr(msg, "unknown option '")) != NULL ||
	    (p = strstr(msg, "unexpected '")) != NULL) {
		p = strchr(p, '\'') + 1;
		n = strcspn(p, "'");
		snprintf(word, sizeof(word), "%.*s", (int)n, p);
		if (word[0] == '-')
			hint = help_suggest(ctl_noun, ctl_verb, word);
	} else if ((p = strstr(msg, "unknown command '")) != NULL) {
		p = strchr(p, '\'') + 1;
		n = strcspn(p, "'");
		snprintf(word, sizeof(word), "%.*s", (int)n, p);
		hint = help_suggest(NULL, NULL, word);
	} else if (strstr(msg, ": unknown verb") != NULL && ctl_noun != NULL &&
	    ctl_verb != NULL)
		hint = help_suggest(ctl_noun, NULL, ctl_verb);
	if (hint != NULL)
		fprintf(stderr, "; did you mean %s?", hint);
}


/* An error ends the command; a usage error also hints at the right word. */
static void __attribute__((noreturn, format(printf, 2, 0)))
ctl_fail(int code, const char *fmt, va_list ap)
{
	char	 msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	ctl_print_error(msg);
	if (code == EXIT_USAGE) {
		ctl_hint(msg);
		fprintf(stderr, " (socksctl help for usage)\n");
	} else
		fprintf(stderr, "\n");
	ctl_exit(code);
}

void
ctl_usage_error(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	ctl_fail(EXIT_USAGE, fmt, ap);
}

void
ctl_error(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	ctl_fail(1, fmt, ap);
}

/* Any error inside a transaction ends the process: SQLite rolls back. */
void
ctl_sql_error(struct ctl *ctl, const char *sql)
{
	ctl_error("database error: %s (SQL: %s)", sqlite3_errmsg(ctl->ctl_db),
	    sql);
}

sqlite3 *
ctl_db(struct ctl *ctl)
{
	char	*cause = NULL;

	if (ctl->ctl_db != NULL)
		return (ctl->ctl_db);
	if (ctl->ctl_conf->c_policy_central != NULL)
		return (policy_store_open(ctl));
	if (access(ctl->ctl_conf->c_policy_db, F_OK) == -1)
		ctl_error("%s: %s%s", ctl->ctl_conf->c_policy_db,
		    strerror(errno), errno == ENOENT ? " (run socksctl init)" :
		    errno == EACCES ? " (root and the control_group's members "
		    "may change the policy)" : "");
	ctl->ctl_db = policy_db_open(ctl->ctl_conf->c_policy_db, 0, &cause);
	if (ctl->ctl_db == NULL)
		ctl_error("%s", cause ? cause : "out of memory");
	return (ctl->ctl_db);
}

void
ctl_begin(struct ctl *ctl)
{
	/* Inside an import's transaction, or one begun before (revert). */
	if (ctl->ctl_batch || !sqlite3_get_autocommit(ctl_db(ctl)))
		return;
	if (sqlite3_exec(ctl_db(ctl), "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		ctl_sql_error(ctl, "BEGIN IMMEDIATE");
}

/* Who is changing the policy: the OS user, and who ran sudo. */
static void
ctl_os_user(char *out, size_t len)
{
	struct passwd	*pw = getpwuid(getuid());
	const char	*sudo = getenv("SUDO_USER");

	snprintf(out, len, "%s", pw != NULL ? pw->pw_name : "?");
	if (sudo != NULL && getuid() == 0)
		snprintf(out + strlen(out), len - strlen(out), " (sudo by %s)",
		    sudo);
}

/* Every change ends here: its change log row goes in the same commit. */
void
ctl_commit(struct ctl *ctl)
{
	static const char sql[] = "INSERT INTO changes (os_user, command, "
	    "detail, policy) VALUES (?1, ?2, ?3, ?4)";
	sqlite3_stmt	*st;
	char		 who[160], *snapshot;

	if (ctl->ctl_batch)	/* the import commits once, logged once */
		return;
	ctl_os_user(who, sizeof(who));
	st = sql_prepare(ctl, sql);
	sqlite3_bind_text(st, 1, who, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ctl->ctl_cmdline, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ctl->ctl_detail, -1, SQLITE_STATIC);
	/* The policy as it is after this change: rollback and revert. */
	snapshot = ctl->ctl_export(ctl, CTL_SNAPSHOT_MAX);
	if (snapshot != NULL)
		sqlite3_bind_text(st, 4, snapshot, -1, free);
	if (sqlite3_step(st) != SQLITE_DONE)
		ctl_sql_error(ctl, sql);
	sqlite3_finalize(st);
	/* Snapshots of the last CTL_SNAPSHOTS_KEPT changes: the log stays. */
	if (sqlite3_exec(ctl->ctl_db, "UPDATE changes SET policy = NULL WHERE "
	    "policy IS NOT NULL AND id <= (SELECT max(id) FROM changes) - "
	    CTL_SNAPSHOTS_KEPT, NULL, NULL, NULL) != SQLITE_OK)
		ctl_sql_error(ctl, "UPDATE changes");
	if (sqlite3_exec(ctl->ctl_db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		ctl_sql_error(ctl, "COMMIT");
}

const char *
args_next(struct args *a)
{
	return (a->a_i < a->a_argc ? a->a_argv[a->a_i++] : NULL);
}

/* The value of option opt, which must follow it. */
const char *
args_value(struct args *a, const char *opt)
{
	const char	*v = args_next(a);

	if (v == NULL)
		ctl_usage_error("%s needs a value", opt);
	return (v);
}

void
args_done(struct args *a)
{
	if (a->a_i < a->a_argc)
		ctl_usage_error("unexpected argument '%s'", a->a_argv[a->a_i]);
}

int64_t
parse_id(const char *text, const char *what)
{
	char		*ep;
	long long	 v;

	errno = 0;
	v = strtoll(text, &ep, 10);
	if (text[0] == '\0' || *ep != '\0' || errno != 0 || v < 1)
		ctl_usage_error("%s '%s': expected a positive number", what,
		    text);
	return ((int64_t)v);
}
