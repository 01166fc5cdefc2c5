/*
 * runtime.c: the runtime folder (runtime_dir, default /run/socksgw) and
 * the lock that makes one gatewayd per configuration.
 *
 * The lock is taken first, before a listener is bound or the control
 * socket touched: a second `gatewayd -c same.conf` says who holds it and
 * exits, leaving the running one's socket alone. Locks are per
 * configuration file (by its real path), so gatewayds with different
 * configurations (tests, the quick start) share the folder.
 *
 * The folder is made without path races: created if missing, then
 * checked through a descriptor opened with O_NOFOLLOW (a real folder,
 * not a link; as root, owned by root and writable by nobody else), and
 * the lock file is opened relative to that descriptor.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

#include "base/clock.h"

#include "parent.h"

static int	 runtime_lock_fd = -1;

/* runtime_dir, or as a user other than root a folder of that user's. */
const char *
runtime_dir(const struct conf *c, char *buf, size_t len)
{
	if (c->c_runtime_dir != NULL)
		return (c->c_runtime_dir);
	if (geteuid() == 0)
		return (GW_RUNTIME_DIR);
	snprintf(buf, len, "/tmp/socksgw-%u", (unsigned)geteuid());
	return (buf);
}

/* The real path of path, which may not exist yet (its folder does). */
static void
runtime_lock_key(const char *path, char *out, size_t len)
{
	char		 dir[PATH_MAX], real[PATH_MAX];
	const char	*slash;

	if (realpath(path, real) != NULL) {
		snprintf(out, len, "%s", real);
		return;
	}
	if ((slash = strrchr(path, '/')) == NULL) {
		snprintf(dir, sizeof(dir), ".");
		slash = path - 1;
	} else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (realpath(dir[0] != '\0' ? dir : "/", real) == NULL)
		snprintf(out, len, "%s", path);
	else if ((size_t)snprintf(out, len, "%s/%s", real, slash + 1) >= len)
		snprintf(out, len, "%s", path);	/* too long: as written */
}

int
runtime_lock(const struct conf *c, char **cause)
{
	struct stat	 st;
	char		 real[PATH_MAX], name[64], pid[32], dirbuf[64];
	const char	*dir = runtime_dir(c, dirbuf, sizeof(dirbuf));
	int		 dfd, fd, n;
	ssize_t		 got;

	/*
	 * What must not have two writers names the lock: the audit database
	 * (two writers would fork its chain), else the control socket, else
	 * the configuration file. A copy of the configuration is no way
	 * around it.
	 */
	runtime_lock_key(c->c_audit_db != NULL ? c->c_audit_db :
	    c->c_control_socket != NULL ? c->c_control_socket : c->c_path,
	    real, sizeof(real));
	if (mkdir(dir, geteuid() == 0 ? 0755 : 0700) == -1 &&
	    errno != EEXIST)
		goto fail;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		goto fail;
	if (fstat(dfd, &st) == -1 || (st.st_mode & 022) != 0 ||
	    st.st_uid != geteuid()) {
		close(dfd);
		if (asprintf(cause, "runtime_dir %s: must be a folder of "
		    "uid %u that no one else can write", dir,
		    (unsigned)geteuid()) < 0)
			*cause = NULL;
		return (-1);
	}
	snprintf(name, sizeof(name), "gatewayd-%016llx.lock",
	    (unsigned long long)gw_hash(real, strlen(real)));
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	close(dfd);
	if (fd == -1)
		goto fail;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		got = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[got > 0 ? got : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (asprintf(cause, "another gatewayd (pid %s) runs with %s; "
		    "it holds %s/%s", pid[0] ? pid : "?", real, dir, name) < 0)
			*cause = NULL;
		return (-1);
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("runtime lock %s/%s", dir, name);
	runtime_lock_fd = fd;
	return (0);
fail:
	if (asprintf(cause, "runtime_dir %s: %s", dir, strerror(errno)) < 0)
		*cause = NULL;
	return (-1);
}

/*
 * In a child: its copy of the lock goes (the parent holds the lock; a
 * child with a copy could release it for everyone).
 */
/*
 * The lock's descriptor, for auditd to keep: the lock holds until the
 * last writer of the audit log has ended, so no second instance can
 * start a second writer while an orphaned auditd still writes.
 */
int
runtime_lock_descriptor(void)
{
	return (runtime_lock_fd);
}

void
runtime_lock_close(void)
{
	if (runtime_lock_fd != -1)
		close(runtime_lock_fd);
	runtime_lock_fd = -1;
}
