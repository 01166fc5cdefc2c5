/*
 * cmd_policy.c: socksctl export and import, the policy as code.
 *
 * DESIGN. The exported file is socksctl's own commands, one a line, in an
 * order that applies (defaults, groups, users, lists with their entries
 * indented below them, rules in the order they are judged), with no id and
 * no time in it: export, import into an empty database and export again
 * give the same bytes, so a policy kept in git diffs as its meaning does.
 *
 * Import runs those lines through the very commands an admin types (the
 * same checks, the same errors, each prefixed with FILE:LINE), inside one
 * transaction that first empties the policy: the database ends as the file
 * says, or, at the first error, as it was. One change-log entry records it.
 * --dry-run applies the file to a copy of the database and prints the
 * difference between the two exports (diff -u), changing nothing.
 * Rolling back and reverting changes: cmd_history.c.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "admin.h"

#define IMPORT_WORDS_MAX	4096	/* words on one line (a rule of 256 conditions: 520) */

/* The commands a policy file may hold: what export writes. */
static const struct {
	const char	*ic_noun;
	const char	*ic_verb;	/* NULL: the noun takes options only */
} import_commands[] = {
	{ "defaults", NULL },
	{ "group", "add" },
	{ "user", "add" },
	{ "list", "create" },
	{ "rule", "add" },
};

/*
 * Splits line into words (export_word's quoting undone; # outside quotes
 * ends the line). Returns the number of words, or -1 and why.
 */
static int
import_words(char *line, char **words, int max, const char **why)
{
	char	*in = line, *out;
	int	 n = 0, quoted;

	for (;;) {
		while (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n')
			in++;
		if (*in == '\0' || *in == '#')
			return (n);
		if (n == max) {
			*why = "too many words on one line";
			return (-1);
		}
		words[n++] = out = in;
		quoted = 0;
		while (*in != '\0' && (quoted || (*in != ' ' && *in != '\t' &&
		    *in != '\r' && *in != '\n'))) {
			if (*in == '"') {
				quoted = !quoted;
				in++;
			} else if (quoted && *in == '\\' && in[1] == 'x' &&
			    isxdigit((unsigned char)in[2]) &&
			    isxdigit((unsigned char)in[3])) {
				char	 hex[3] = { in[2], in[3], '\0' };

				*out++ = (char)strtol(hex, NULL, 16);
				in += 4;
			} else if (quoted && *in == '\\' && in[1] != '\0') {
				*out++ = in[1];
				in += 2;
			} else
				*out++ = *in++;
		}
		if (quoted) {
			*why = "a quote is not closed";
			return (-1);
		}
		if (*in != '\0')
			in++;
		*out = '\0';
	}
}

/* The whole policy, as commands. */
static void
export_write(struct ctl *ctl, FILE *f)
{
	fprintf(f, "# socksgw policy (socksctl export, schema %d).\n"
	    "# socksctl import FILE makes the policy this; import --dry-run "
	    "FILE\n# shows the difference first.\n\n",
	    policy_db_version(ctl_db(ctl)));
	export_people(ctl, f);
	fprintf(f, "\n");
	export_lists(ctl, f);
	fprintf(f, "\n");
	export_rules(ctl, f);
}

/*
 * The policy as export writes it (to free), for the change log's
 * snapshot; NULL when it is larger than max (lists of millions).
 */
char *
policy_export_text(struct ctl *ctl, size_t max)
{
	struct text	 t;
	char		*text;

	export_write(ctl, text_open(&t));
	text = text_close(&t);
	if (t.t_len > max) {
		free(text);
		return (NULL);
	}
	return (text);
}

int
cmd_export(struct ctl *ctl, struct args *a)
{
	const char	*opt, *output = NULL;
	char		*tmp;
	FILE		*f;
	int		 fd;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--output") != 0)
			ctl_usage_error("export: unknown option '%s'", opt);
		output = args_value(a, opt);
	}
	/* A read transaction: one consistent policy, however long it is. */
	if (sqlite3_exec(ctl_db(ctl), "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		ctl_sql_error(ctl, "BEGIN");
	if (output == NULL) {
		export_write(ctl, stdout);
		sqlite3_exec(ctl->ctl_db, "COMMIT", NULL, NULL, NULL);
		return (fflush(stdout) == 0 ? 0 : 1);
	}
	/* Beside the target, then renamed: never half a file. */
	if (asprintf(&tmp, "%s.XXXXXX", output) < 0)
		ctl_error("out of memory");
	if ((fd = mkstemp(tmp)) == -1)
		ctl_error("%s: %s", output, strerror(errno));
	ctl_temp(tmp);
	if ((f = fdopen(fd, "w")) == NULL)
		ctl_error("%s: %s", output, strerror(errno));
	export_write(ctl, f);
	sqlite3_exec(ctl->ctl_db, "COMMIT", NULL, NULL, NULL);
	if (fchmod(fd, 0640) == -1 || fflush(f) != 0 || fsync(fd) == -1 ||
	    fclose(f) != 0 || rename(tmp, output) == -1) {
		unlink(tmp);
		ctl_error("%s: %s", output, strerror(errno));
	}
	free(tmp);
	return (0);
}

/* One command of the file, or the entries below a list create. */
struct import_line {
	int		 il_line;
	int		 il_argc;
	char		**il_argv;	/* il_argc words, then NULL */
	int		 il_entry;	/* an indented list entry */
};

/*
 * Reads and splits the whole file before anything changes: a syntax error
 * or a command that does not belong costs nothing.
 */
static struct import_line *
import_read(const char *path, const char *label, size_t *count, char ***bufs)
{
	static char		*words[IMPORT_WORDS_MAX];
	struct import_line	*lines = NULL;
	FILE			*f;
	char			*line = NULL, *copy;
	const char		*why;
	size_t			 cap = 0, n = 0, alloc = 0, i;
	ssize_t			 len;
	int			 lineno = 0, w, in_list = 0;

	if ((f = fopen(path, "r")) == NULL)
		ctl_error("%s: %s", path, strerror(errno));
	*bufs = NULL;
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 256;
			if ((lines = reallocarray(lines, alloc,
			    sizeof(*lines))) == NULL || (*bufs = reallocarray(
			    *bufs, alloc, sizeof(**bufs))) == NULL)
				ctl_error("out of memory");
		}
		if ((copy = strdup(line)) == NULL)
			ctl_error("out of memory");
		memset(&lines[n], 0, sizeof(lines[n]));
		lines[n].il_line = lineno;
		lines[n].il_entry = line[0] == ' ' || line[0] == '\t';
		if ((w = import_words(copy, words, IMPORT_WORDS_MAX,
		    &why)) == -1)
			ctl_error("%s:%d: %s", label, lineno, why);
		if (w == 0) {
			free(copy);
			continue;
		}
		/* Each line as long as it is (a list may have millions). */
		if ((lines[n].il_argv = calloc((size_t)w + 1,
		    sizeof(char *))) == NULL)
			ctl_error("out of memory");
		memcpy(lines[n].il_argv, words, (size_t)w * sizeof(char *));
		lines[n].il_argc = w;
		(*bufs)[n] = copy;
		if (lines[n].il_entry) {
			if (!in_list)
				ctl_error("%s:%d: an indented line is a list "
				    "entry, and no list create comes before it",
				    label, lineno);
			if (w != 1)
				ctl_error("%s:%d: one list entry a line", label,
				    lineno);
			n++;
			continue;
		}
		for (i = 0; i < sizeof(import_commands) /
		    sizeof(import_commands[0]); i++)
			if (strcmp(lines[n].il_argv[0],
			    import_commands[i].ic_noun) == 0 &&
			    (import_commands[i].ic_verb == NULL || (w > 1 &&
			    strcmp(lines[n].il_argv[1],
			    import_commands[i].ic_verb) == 0)))
				break;
		if (i == sizeof(import_commands) / sizeof(import_commands[0]))
			ctl_error("%s:%d: '%s%s%s' does not belong in a policy "
			    "file (defaults, group add, user add, list create "
			    "and rule add do)", label, lineno,
			    lines[n].il_argv[0], w > 1 ? " " : "",
			    w > 1 ? lines[n].il_argv[1] : "");
		in_list = strcmp(lines[n].il_argv[0], "list") == 0;
		n++;
	}
	if (ferror(f))
		ctl_error("%s: %s", path, strerror(errno));
	fclose(f);
	free(line);
	*count = n;
	return (lines);
}

/* Everything of the policy goes; the change log stays. */
static void
import_empty(struct ctl *ctl)
{
	static const char *const sql[] = {
		"DELETE FROM rule_conditions", "DELETE FROM rules",
		"DELETE FROM user_groups", "DELETE FROM users",
		"DELETE FROM groups", "DELETE FROM list_entries",
		"DELETE FROM lists", "DELETE FROM settings",
	};
	size_t	 i;

	for (i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
		if (sqlite3_exec(ctl->ctl_db, sql[i], NULL, NULL, NULL) !=
		    SQLITE_OK)
			ctl_sql_error(ctl, sql[i]);
}

/* The entries below list `name`, from lines[from] on: checked, added. */
static size_t
import_entries(struct ctl *ctl, const char *path, struct import_line *lines,
    size_t from, size_t n, const char *name)
{
	char		 canon[POLICY_VALUE_MAX], **entries;
	const char	*why;
	size_t		 i, k = 0;
	int		 is_cidr = list_is_cidr(ctl, name);

	for (i = from; i < n && lines[i].il_entry; i++)
		;
	if ((entries = calloc(i - from + 1, sizeof(*entries))) == NULL)
		ctl_error("out of memory");
	for (i = from; i < n && lines[i].il_entry; i++) {
		if (list_entry_canon(lines[i].il_argv[0], is_cidr, canon,
		    sizeof(canon), &why) == -1)
			ctl_error("%s:%d: %s: %s", path, lines[i].il_line,
			    lines[i].il_argv[0], why);
		if ((entries[k++] = strdup(canon)) == NULL)
			ctl_error("out of memory");
	}
	list_add_entries(ctl, name, entries, k);
	while (k > 0)
		free(entries[--k]);
	free(entries);
	return (i - from);
}

/*
 * Applies the file to ctl's database in one transaction; counts what it
 * made into detail. Commands print nothing meanwhile (stdout is parked).
 */
static void
import_apply(struct ctl *ctl, const char *path, const char *label,
    char *detail, size_t len)
{
	struct import_line	*lines;
	struct args		 a;
	char			 where[300], **bufs;
	size_t			 n, i, entries = 0, counts[5] = { 0 };
	int			 saved, devnull, k;

	lines = import_read(path, label, &n, &bufs);
	ctl_begin(ctl);
	import_empty(ctl);
	fflush(stdout);
	if ((saved = dup(STDOUT_FILENO)) == -1 ||
	    (devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1 ||
	    dup2(devnull, STDOUT_FILENO) == -1)
		ctl_error("cannot park standard output: %s", strerror(errno));
	close(devnull);
	ctl->ctl_batch = 1;
	for (i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "%s:%d", label, lines[i].il_line);
		ctl_where = where;
		ctl_noun = lines[i].il_argv[0];
		ctl_verb = lines[i].il_argc > 1 &&
		    lines[i].il_argv[1][0] != '-' ? lines[i].il_argv[1] : NULL;
		a.a_argc = lines[i].il_argc;
		a.a_argv = lines[i].il_argv;
		a.a_i = 1;
		if (ctl->ctl_run(ctl, lines[i].il_argv[0], &a) != 0)
			ctl_error("the command failed");
		fflush(stdout);
		for (k = 0; k < 5; k++)
			if (strcmp(lines[i].il_argv[0],
			    import_commands[k].ic_noun) == 0)
				counts[k]++;
		ctl_where = NULL;	/* the entries name their own lines */
		if (strcmp(lines[i].il_argv[0], "list") == 0)
			entries += import_entries(ctl, label, lines, i + 1, n,
			    lines[i].il_argv[2] + (lines[i].il_argv[2][0] ==
			    '@'));
		while (i + 1 < n && lines[i + 1].il_entry)
			i++;
	}
	ctl_where = NULL;
	ctl->ctl_batch = 0;
	fflush(stdout);
	if (dup2(saved, STDOUT_FILENO) == -1)
		ctl_error("cannot restore standard output: %s",
		    strerror(errno));
	close(saved);
	snprintf(detail, len, "%zu rules, %zu users, %zu groups, %zu lists "
	    "(%zu entries)%s", counts[4], counts[2], counts[1], counts[3],
	    entries, counts[0] ? ", defaults" : "");
	for (i = 0; i < n; i++) {
		free(bufs[i]);
		free(lines[i].il_argv);
	}
	free(bufs);
	free(lines);
}

/* Writes text to a new temporary file (removed at exit); its path. */
char *
temp_file(const char *what, const char *text)
{
	char	*path;
	FILE	*f;
	int	 fd;

	if (asprintf(&path, "/tmp/socksctl-%s-XXXXXX", what) < 0)
		ctl_error("out of memory");
	if ((fd = mkstemp(path)) == -1)
		ctl_error("%s: %s", path, strerror(errno));
	ctl_temp(path);
	if ((f = fdopen(fd, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) != 0)
		ctl_error("%s: %s", path, strerror(errno));
	return (path);
}

/* Exports the policy into a new temporary file; its path (to free). */
static char *
import_export_to(struct ctl *ctl, const char *what)
{
	char	*text, *path;

	if ((text = policy_export_text(ctl, SIZE_MAX)) == NULL)
		ctl_error("out of memory");
	path = temp_file(what, text);
	free(text);
	return (path);
}

/*
 * import --dry-run: the file applied to a copy of the database (SQLite's
 * backup), and the two exports compared with diff -u. Exit 0 either way;
 * a file with errors fails as a real import would.
 */
static int
import_dry_run(struct ctl *ctl, const char *path)
{
	sqlite3		*copy, *orig = ctl_db(ctl);
	sqlite3_backup	*b;
	char		*before, *after, *dbpath, detail[256];
	pid_t		 pid;
	int		 status, fd;

	before = import_export_to(ctl, "before");
	if (asprintf(&dbpath, "/tmp/socksctl-dry-XXXXXX") < 0 ||
	    (fd = mkstemp(dbpath)) == -1)
		ctl_error("cannot make a copy of the database");
	ctl_temp(dbpath);
	close(fd);
	if (sqlite3_open(dbpath, &copy) != SQLITE_OK ||
	    (b = sqlite3_backup_init(copy, "main", orig, "main")) == NULL ||
	    sqlite3_backup_step(b, -1) != SQLITE_DONE ||
	    sqlite3_backup_finish(b) != SQLITE_OK)
		ctl_error("cannot copy the database: %s", sqlite3_errmsg(copy));
	sqlite3_exec(copy, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	ctl->ctl_db = copy;
	import_apply(ctl, path, path, detail, sizeof(detail));
	if (sqlite3_exec(copy, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		ctl_sql_error(ctl, "COMMIT");
	after = import_export_to(ctl, "after");
	ctl->ctl_db = orig;
	sqlite3_close(copy);
	unlink(dbpath);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		execlp("diff", "diff", "-u", "--label", "database",
		    "--label", path, before, after, (char *)NULL);
		_exit(127);
	}
	status = 0;
	if (pid == -1 || waitpid(pid, &status, 0) == -1 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) > 1)
		fprintf(stderr, "socksctl: cannot run diff\n");
	else if (WEXITSTATUS(status) == 0)
		printf("no difference: %s is the policy in the database\n",
		    path);
	unlink(before);
	unlink(after);
	free(before);
	free(after);
	free(dbpath);
	return (0);
}

int
cmd_import(struct ctl *ctl, struct args *a)
{
	const char	*opt, *path = NULL;
	char		 detail[256];
	int		 dry = 0;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--dry-run") == 0)
			dry = 1;
		else if (path == NULL && opt[0] != '-')
			path = opt;
		else
			ctl_usage_error("import: unexpected '%s'", opt);
	}
	if (path == NULL)
		ctl_usage_error("import FILE [--dry-run]");
	if (dry)
		return (import_dry_run(ctl, path));
	import_apply(ctl, path, path, detail, sizeof(detail));
	snprintf(ctl->ctl_detail, sizeof(ctl->ctl_detail), "%s", detail);
	ctl_commit(ctl);
	if (ctl->ctl_json) {
		printf("{\"imported\": ");
		json_string(path);
		printf(", \"detail\": ");
		json_string(detail);
		printf("}\n");
	} else
		printf("%s: imported: %s\n", path, detail);
	return (0);
}

/*
 * Makes the policy what text says (an export), in one transaction with
 * one change-log entry; label names it in errors ("change 12").
 */
int
policy_import_text(struct ctl *ctl, const char *text, const char *label)
{
	char	*path, detail[256];

	path = temp_file("policy", text);
	import_apply(ctl, path, label, detail, sizeof(detail));
	snprintf(ctl->ctl_detail, sizeof(ctl->ctl_detail), "%s", detail);
	ctl_commit(ctl);
	free(path);
	return (0);
}
