/*
 * socksctl.c: command line, configuration, database access and errors
 * shared by every command.
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
#include "escape.h"
#include "log.h"

#define CTL_DEFAULT_CONF	"/etc/socksgw/gatewayd.conf"
/* A change-log snapshot larger than this (a list of millions) is not kept. */
#define CTL_SNAPSHOT_MAX	(16 * 1024 * 1024)
/* Changes that keep their snapshot (rollback and revert reach as far). */
#define CTL_SNAPSHOTS_KEPT	"100"

static const struct {
	const char	*name;
	int		(*fn)(struct ctl *, struct args *);
} ctl_nouns[] = {
	{ "init", cmd_init },
	{ "rule", cmd_rule },
	{ "user", cmd_user },
	{ "group", cmd_group },
	{ "defaults", cmd_defaults },
	{ "list", cmd_list },
	{ "explain", cmd_explain },
	{ "geoip", cmd_geoip },
	{ "sessions", cmd_sessions },
	{ "reload", cmd_reload },
	{ "stats", cmd_stats },
	{ "log", cmd_log },
	{ "audit", cmd_audit },
	{ "export", cmd_export },
	{ "import", cmd_import },
	{ "test", cmd_test },
	{ "rollback", cmd_rollback },
};

const char	*ctl_where;
const char	*ctl_noun, *ctl_verb;

static struct ctl	*ctl_active;	/* whose transaction an error ends */
static char		*ctl_temps[8];	/* temporary files, unlinked at exit */

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

static void
ctl_temps_remove(void)
{
	char	 journal[4200];
	size_t	 i;

	for (i = 0; i < sizeof(ctl_temps) / sizeof(ctl_temps[0]); i++)
		if (ctl_temps[i] != NULL) {
			unlink(ctl_temps[i]);
			snprintf(journal, sizeof(journal), "%s-journal",
			    ctl_temps[i]);
			unlink(journal);
			free(ctl_temps[i]);
			ctl_temps[i] = NULL;
		}
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

/* Runs noun's command on a (the words after the noun); exits on errors. */
int
ctl_run_noun(struct ctl *ctl, const char *noun, struct args *a)
{
	size_t	 i;

	for (i = 0; i < sizeof(ctl_nouns) / sizeof(ctl_nouns[0]); i++)
		if (strcmp(ctl_nouns[i].name, noun) == 0)
			return (ctl_nouns[i].fn(ctl, a));
	ctl_usage_error("unknown command '%s'", noun);
}

static void __attribute__((noreturn))
ctl_help(FILE *f, int code)
{
	fprintf(f, "usage: socksctl [-c FILE] [--json] NOUN VERB [ARGS]\n"
	    "       socksctl NOUN [VERB] --help | socksctl --version\n\n");
	help_usage(f, NULL);
	fprintf(f, "\nThe configuration (default %s) names the databases. "
	    "man socksctl says more.\n", CTL_DEFAULT_CONF);
	exit(code);
}

/*
 * Whether the words after the noun ask for help: NOUN --help or NOUN VERB
 * --help. Not further on, where --help may be an option's value
 * (user add bob --comment --help adds bob).
 */
static int
ctl_wants_help(int argc, char **argv, int k)
{
	int	 i;

	for (i = k; i < argc && i < k + 2; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return (1);
	return (0);
}

void
ctl_usage_error(const char *fmt, ...)
{
	va_list	 ap;

	char	 msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_print_error(msg);
	ctl_hint(msg);
	fprintf(stderr, " (socksctl help for usage)\n");
	ctl_exit(EXIT_USAGE);
}

void
ctl_error(const char *fmt, ...)
{
	va_list	 ap;

	char	 msg[2048];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_print_error(msg);
	fprintf(stderr, "\n");
	ctl_exit(1);
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
	snapshot = policy_export_text(ctl, CTL_SNAPSHOT_MAX);
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

/* The command as typed, for the change log (quoted where it needs it). */
static char *
ctl_join(int argc, char **argv)
{
	char	*out = NULL;
	size_t	 len = 0;
	FILE	*f;
	int	 i;

	if ((f = open_memstream(&out, &len)) == NULL)
		ctl_error("out of memory");
	fprintf(f, "socksctl");
	for (i = 0; i < argc; i++)
		fprintf(f, strpbrk(argv[i], " \t'\"") ? " '%s'" : " %s",
		    argv[i]);
	fclose(f);
	return (out);
}

int
main(int argc, char **argv)
{
	struct ctl	 ctl;
	struct args	 a;
	const char	*noun;
	char		*cause = NULL;
	size_t		 i;
	int		 k, n, rc;

	memset(&ctl, 0, sizeof(ctl));
	ctl.ctl_conf_path = CTL_DEFAULT_CONF;
	ctl_active = &ctl;
	atexit(ctl_temps_remove);
	log_init(0, "socksctl");
	/* The databases it creates are nobody else's to read. */
	umask(027);
	/* --json may stand anywhere; -c only before the noun. */
	for (k = n = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			ctl.ctl_json = 1;
		else
			argv[n++] = argv[k];
	}
	argc = n;
	for (k = 1; k < argc && argv[k][0] == '-'; k++) {
		if (strcmp(argv[k], "-c") == 0 && k + 1 < argc)
			ctl.ctl_conf_path = argv[++k];
		else if (strcmp(argv[k], "-h") == 0 ||
		    strcmp(argv[k], "--help") == 0)
			ctl_help(stdout, 0);
		else if (strcmp(argv[k], "-V") == 0 ||
		    strcmp(argv[k], "--version") == 0) {
			printf("socksctl %s\n", SOCKSGW_VERSION);
			return (0);
		}
		else
			ctl_usage_error("unknown option '%s'", argv[k]);
	}
	if (k == argc)
		ctl_help(stderr, EXIT_USAGE);
	noun = argv[k++];
	ctl_noun = noun;
	if (k < argc && argv[k][0] != '-')
		ctl_verb = argv[k];
	if (strcmp(noun, "help") == 0)
		ctl_help(stdout, 0);
	for (i = 0; i < sizeof(ctl_nouns) / sizeof(ctl_nouns[0]); i++)
		if (strcmp(ctl_nouns[i].name, noun) == 0)
			break;
	if (i == sizeof(ctl_nouns) / sizeof(ctl_nouns[0]))
		ctl_usage_error("unknown command '%s'", noun);
	/* A mistyped verb is named before any of its arguments is read. */
	if (ctl_verb != NULL && help_is_verb(noun, ctl_verb) == 0 &&
	    !ctl_wants_help(argc, argv, k))
		ctl_usage_error("%s %s: unknown verb", noun, ctl_verb);
	if (ctl_wants_help(argc, argv, k)) {
		if (help_verb(stdout, noun, k < argc && argv[k][0] != '-' ?
		    argv[k] : NULL) == -1)
			ctl_usage_error("%s %s: unknown verb", noun, argv[k]);
		return (0);
	}
	if ((ctl.ctl_conf = conf_load(ctl.ctl_conf_path, &cause)) == NULL) {
		fprintf(stderr, "%s\n", cause ? cause : "out of memory");
		return (1);
	}
	if (ctl.ctl_conf->c_timezone != NULL)
		setenv("TZ", ctl.ctl_conf->c_timezone, 1);
	tzset();
	ctl.ctl_cmdline = ctl_join(argc - k + 1, argv + k - 1);
	a.a_argc = argc;
	a.a_argv = argv;
	a.a_i = k;
	rc = ctl_nouns[i].fn(&ctl, &a);
	if (ctl.ctl_db != NULL)
		sqlite3_close(ctl.ctl_db);
	conf_unref(ctl.ctl_conf);
	free(ctl.ctl_cmdline);
	return (rc);
}
