/*
 * cmd_history.c: socksctl rollback --to ID and log revert ID. Every change
 * keeps an export of the policy as it left it (changes.policy, the last
 * 100); rollback imports one of them, and revert undoes one change by a
 * three-way merge (diff3 -m) of the snapshots before and after it with
 * the policy of now, refusing when a later change touched the same or
 * adjacent lines. Both go through the import (cmd_policy.c): one
 * transaction, one change-log entry.
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
#include "conf.h"

/* The snapshot of change id (to free); NULL when id has none. */
static char *
change_snapshot(struct ctl *ctl, int64_t id, int *exists)
{
	sqlite3_stmt	*st;
	char		*text = NULL;

	st = sql_prepare(ctl, "SELECT policy FROM changes WHERE id = ?1");
	sqlite3_bind_int64(st, 1, id);
	*exists = 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*exists = 1;
		if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
		    (text = strdup((const char *)sqlite3_column_text(st, 0))) ==
		    NULL)
			ctl_error("out of memory");
	}
	sqlite3_finalize(st);
	return (text);
}

/* socksctl rollback --to ID: the policy as it was right after change ID. */
int
cmd_rollback(struct ctl *ctl, struct args *a)
{
	const char	*opt;
	char		*text, label[64];
	int64_t		 id = 0;
	int		 exists;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--to") != 0)
			ctl_usage_error("rollback: unknown option '%s'", opt);
		id = parse_id(args_value(a, opt), "--to");
	}
	if (id == 0)
		ctl_usage_error("rollback --to ID (an id of socksctl log)");
	if ((text = change_snapshot(ctl, id, &exists)) == NULL)
		ctl_error(exists ? "change %lld keeps no copy of the policy "
		    "(made before schema 6, over 16 MiB, or more than 100 "
		    "changes ago)" :
		    "change %lld: no such change", (long long)id);
	snprintf(label, sizeof(label), "change %lld", (long long)id);
	policy_import_text(ctl, text, label);
	free(text);
	if (ctl->ctl_json)
		printf("{\"rolled_back_to\": %lld}\n", (long long)id);
	else
		printf("the policy is as it was after change %lld\n",
		    (long long)id);
	return (0);
}


/* Runs argv, stdout to out (or inherited); its exit status, or -1. */
static int
revert_run(char *const argv[], const char *out)
{
	pid_t	 pid;
	int	 status, fd;

	fflush(stdout);
	if ((pid = fork()) == -1)
		return (-1);
	if (pid == 0) {
		if (out != NULL && ((fd = open(out, O_WRONLY | O_TRUNC)) == -1 ||
		    dup2(fd, STDOUT_FILENO) == -1))
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status))
		return (-1);
	return (WEXITSTATUS(status));
}

/*
 * socksctl log revert ID: undoes change ID alone, by a three-way merge
 * (diff3 -m, diffutils): from the policy right after the change to the
 * policy right before it, merged into the policy now, as git revert does.
 * When a later change touched the same or adjacent lines, the merge
 * conflicts and nothing changes (rollback, or an edited export, is the
 * way). The result is imported as a new change.
 */
int
log_revert(struct ctl *ctl, int64_t id)
{
	char		*after, *before = NULL, *now, *text, label[64];
	char		*fb, *fa, *fn, *fp;
	int		 exists, r;
	int64_t		 pid;
	FILE		*f;
	size_t		 len;

	if ((after = change_snapshot(ctl, id, &exists)) == NULL)
		ctl_error(exists ? "change %lld kept no copy of the policy" :
		    "change %lld: no such change", (long long)id);
	pid = sql_int(ctl, "SELECT coalesce(max(id), 0) FROM changes WHERE "
	    "id < ?2", NULL, id, 0);
	if (pid > 0 && (before = change_snapshot(ctl, pid, &exists)) == NULL)
		ctl_error("change %lld kept no copy of the policy, so change "
		    "%lld cannot be undone alone", (long long)pid,
		    (long long)id);
	if (before == NULL && (before = strdup("")) == NULL)
		ctl_error("out of memory");
	/* The write lock first: no change slips in between read and write. */
	ctl_begin(ctl);
	if ((now = policy_export_text(ctl, SIZE_MAX)) == NULL)
		ctl_error("out of memory");
	fb = temp_file("before", before);
	fa = temp_file("after", after);
	fn = temp_file("now", now);
	fp = temp_file("merged", "");
	if (strcmp(before, after) == 0)
		ctl_error("change %lld changed nothing to undo", (long long)id);
	{
		char	*merge[] = { "diff3", "-m", fn, fa, fb, NULL };

		if ((r = revert_run(merge, fp)) != 0)
			ctl_error("change %lld cannot be undone alone: a later "
			    "change touched the same or adjacent lines%s; use "
			    "socksctl rollback --to %lld, or edit an export",
			    (long long)id, r == 1 ? "" : " (or diff3 could not "
			    "run)", (long long)pid);
	}
	if ((f = fopen(fp, "r")) == NULL)
		ctl_error("%s: %s", fp, strerror(errno));
	text = NULL;
	len = 0;
	if (getdelim(&text, &len, '\0', f) == -1 && ferror(f))
		ctl_error("%s: %s", fn, strerror(errno));
	fclose(f);
	snprintf(label, sizeof(label), "the revert of change %lld",
	    (long long)id);
	policy_import_text(ctl, text != NULL ? text : "", label);
	if (ctl->ctl_json)
		printf("{\"reverted\": %lld}\n", (long long)id);
	else
		printf("change %lld undone\n", (long long)id);
	free(text);
	free(fb);
	free(fa);
	free(fn);
	free(fp);
	free(after);
	free(before);
	free(now);
	return (0);
}
