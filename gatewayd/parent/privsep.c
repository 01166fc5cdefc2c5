/*
 * privsep.c: what every child of the privileged parent does to give up
 * what it does not need: close every descriptor it was not handed, and
 * leave root for good for the account its configuration names.
 */
#include <sys/types.h>
#include <sys/prctl.h>

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#include "parent.h"

/*
 * Closes every descriptor but stdin, stdout, stderr and keep[], whatever
 * the parent had open (tests list what is left).
 */
void
privsep_close_all_but(const int *keep, int nkeep)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd, i, self, *open_fds = NULL, n = 0, cap = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		fatal("/proc/self/fd");
	self = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd <= 2 || fd == self)
			continue;
		for (i = 0; i < nkeep && keep[i] != fd; i++)
			;
		if (i < nkeep)
			continue;
		if (n == cap && (open_fds = reallocarray(open_fds,
		    (size_t)(cap = cap ? cap * 2 : 64), sizeof(int))) == NULL)
			fatalx("out of memory");
		open_fds[n++] = fd;
	}
	closedir(d);
	for (i = 0; i < n; i++)
		close(open_fds[i]);
	free(open_fds);
}

/*
 * Whether accounts a and b are one account under two names (one uid):
 * auditd's and the proxy's must not be. Names that do not resolve are
 * left to privsep_drop to refuse.
 */
int
privsep_same_account(const char *a, const char *b)
{
	struct passwd	*pw;
	uid_t		 uid;

	if (a == NULL || b == NULL || (pw = getpwnam(a)) == NULL)
		return (0);
	uid = pw->pw_uid;
	return ((pw = getpwnam(b)) != NULL && pw->pw_uid == uid);
}

/*
 * The account to leave root for: user, named by keyword in the
 * configuration at path, looked up now (before a child closes the
 * descriptors an NSS module may hold open), entered by privsep_become().
 * Every failure is fatal (relayd proc.c). Not started as root: nothing to
 * drop, and a user other than the one running is said to be ignored.
 */
void
privsep_lookup(const char *path, const char *keyword, const char *user,
    struct privsep_account *acct)
{
	struct passwd	*pw;

	memset(acct, 0, sizeof(*acct));
	if (geteuid() != 0) {
		if (user != NULL && ((pw = getpwnam(user)) == NULL ||
		    pw->pw_uid != geteuid()))
			log_warnx("not started as root: '%s %s' ignored",
			    keyword, user);
		return;
	}
	if (user == NULL)
		fatalx("%s: refusing to run as root without '%s'", path,
		    keyword);
	if ((pw = getpwnam(user)) == NULL)
		fatalx("%s: %s %s: no such user", path, keyword, user);
	if (pw->pw_uid == 0)
		fatalx("%s: %s %s: must not be root", path, keyword, user);
	acct->pa_set = 1;
	acct->pa_uid = pw->pw_uid;
	acct->pa_gid = pw->pw_gid;
	snprintf(acct->pa_name, sizeof(acct->pa_name), "%s", user);
}

void
privsep_become(const struct privsep_account *acct)
{
	if (!acct->pa_set)
		return;
	if (setgroups(1, &acct->pa_gid) == -1 ||
	    setresgid(acct->pa_gid, acct->pa_gid, acct->pa_gid) == -1 ||
	    setresuid(acct->pa_uid, acct->pa_uid, acct->pa_uid) == -1)
		fatal("cannot drop privileges to %s", acct->pa_name);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");
	if (getuid() == 0 || geteuid() == 0 || setuid(0) != -1)
		fatalx("still root after dropping privileges");
	log_info("running as %s (uid %u)", acct->pa_name,
	    (unsigned)acct->pa_uid);
}

/* Leaves root for user at once. */
void
privsep_drop(const char *path, const char *keyword, const char *user)
{
	struct privsep_account	 acct;

	privsep_lookup(path, keyword, user, &acct);
	privsep_become(&acct);
}
