/*
 * policy_image.c: a fleet node's snapshot files (policy_snapshot, its
 * folder and its .heard), and a policy database from the fleet's store
 * (policy_head's image, policy_follow.c), checked before a node judges by
 * it: checksum,
 * size, SQLite's own soundness check in defensive mode, schema version
 * and change id. Only then does it replace the snapshot, by a rename, so
 * the snapshot is always one whole, checked policy.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <sqlite3.h>

#include "central.h"
#include "conf.h"
#include "log.h"
#include "policy.h"

#include "proxy.h"


/* The change id a policy database holds (its newest change-log entry). */
int64_t
policy_snapshot_change(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int64_t		 id = -1;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM changes",
	    -1, &st, NULL) != SQLITE_OK)
		return (-1);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (id);
}

/* Whether the checked image at tmp is a policy database of change id. */
static int
image_check(const char *tmp, int64_t id, char *why, size_t len)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		*cause = NULL;
	int		 ok = 0, v;

	if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf(why, len, "not a database: %s", sqlite3_errmsg(db));
		sqlite3_close(db);
		return (0);
	}
	/* Bytes from the network: SQLite's own guards for such files. */
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_exec(db, "PRAGMA cell_size_check = ON", NULL, NULL, NULL);
	if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		snprintf(why, len, "not a sound database (quick_check)");
		sqlite3_finalize(st);
		goto done;
	}
	sqlite3_finalize(st);
	if ((v = policy_db_version(db)) < 1 || v > policy_db_latest()) {
		snprintf(why, len, "schema version %d; this build reads 1 to "
		    "%d%s", v, policy_db_latest(), v > policy_db_latest() ?
		    ": upgrade this node" : "");
		goto done;
	}
	/* An older schema is brought up to this build's, as at start. */
	if (policy_db_migrate(db, &cause) == -1) {
		snprintf(why, len, "%s", cause ? cause : "out of memory");
		free(cause);
		goto done;
	}
	if (sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL,
	    NULL) != SQLITE_OK) {
		snprintf(why, len, "%s", sqlite3_errmsg(db));
		goto done;
	}
	if (policy_snapshot_change(db) != id) {
		snprintf(why, len, "its change log does not end at change "
		    "%lld", (long long)id);
		goto done;
	}
	ok = 1;
done:
	sqlite3_close(db);
	return (ok);
}

/*
 * As root, before the privilege drop: the snapshot's folder, root's with
 * the proxy's group allowed to write (root keeps its way in without
 * DAC_OVERRIDE, as under the systemd unit). Everything in it is made and
 * replaced by the proxy, after the drop (policy_snapshot_open).
 */
int
policy_snapshot_prepare(const struct conf *c, gid_t gid, char **cause)
{
	struct stat	 st;
	char		*dir, *slash;
	int		 rc = 0;

	if (c->c_policy_central == NULL)
		return (0);
	if ((dir = strdup(c->c_policy_db)) == NULL) {
		*cause = NULL;
		return (-1);
	}
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0770) == 0) {
			if (geteuid() == 0 && (chown(dir, 0, gid) == -1 ||
			    chmod(dir, 0770) == -1))
				rc = -1;
		} else if (errno != EEXIST || lstat(dir, &st) == -1 ||
		    !S_ISDIR(st.st_mode)) {
			if (errno == EEXIST)
				errno = ENOTDIR;
			rc = -1;
		}
		if (rc == -1 && asprintf(cause, "policy_snapshot: %s: %s", dir,
		    strerror(errno)) < 0)
			*cause = NULL;
	}
	free(dir);
	return (rc);
}

/*
 * After the drop, before the first compile: .heard (made new: 1970, never
 * confirmed) and the snapshot (made empty, every request denied, when
 * there is none; one that does not open is set aside as .bad and made
 * anew, unconfirmed). Fills sf: .heard's time and the image's sha it
 * names, the snapshot's change id.
 */
int
policy_snapshot_open(const char *path, struct snapshot_files *sf,
    char **cause)
{
	struct timespec	 never[2] = { { 0, 0 }, { 0, 0 } };
	struct stat	 st;
	sqlite3		*db;
	char		*bad = NULL;
	ssize_t		 n;
	int		 fresh = 0;

	memset(sf, 0, sizeof(*sf));
	if (asprintf(&sf->sf_heard_path, "%s.heard", path) < 0) {
		*cause = NULL;
		return (-1);
	}
	if ((sf->sf_heard_fd = open(sf->sf_heard_path, O_RDWR | O_CREAT |
	    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640)) != -1)
		fresh = 1;
	else if (errno != EEXIST || (sf->sf_heard_fd = open(sf->sf_heard_path,
	    O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) == -1)
		goto fail;
	if (fstat(sf->sf_heard_fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((db = policy_db_open(path, POLICY_DB_CREATE, cause)) == NULL) {
		log_warnx("policy: %s: set aside as .bad; the store's policy is "
		    "fetched anew", *cause ? *cause : "out of memory");
		free(*cause);
		*cause = NULL;
		if (asprintf(&bad, "%s.bad", path) < 0 ||
		    rename(path, bad) == -1 ||
		    (db = policy_db_open(path, POLICY_DB_CREATE, cause)) == NULL) {
			free(bad);
			return (-1);
		}
		free(bad);
		fresh = 1;
	}
	sf->sf_change = policy_snapshot_change(db);
	sqlite3_close(db);
	if (fresh && (ftruncate(sf->sf_heard_fd, 0) == -1 ||
	    futimens(sf->sf_heard_fd, never) == -1 ||
	    fstat(sf->sf_heard_fd, &st) == -1))
		goto fail;
	sf->sf_heard = st.st_mtime;
	/* Which image the snapshot is: the store's sha, as installed. */
	n = pread(sf->sf_heard_fd, sf->sf_sha, SNAPSHOT_SHA_HEX, 0);
	sf->sf_sha[n == SNAPSHOT_SHA_HEX ? n : 0] = '\0';
	return (0);
fail:
	if (asprintf(cause, "%s: %s", sf->sf_heard_path, strerror(errno)) < 0)
		*cause = NULL;
	return (-1);
}

/*
 * Checks image (len bytes, sum its SHA-256 as the store gave it) and puts
 * it in place of snapshot. 0, or -1 with why.
 */
int
policy_image_install(const char *snapshot, const void *image, size_t len,
    const void *sum, size_t sumlen, int64_t id, char *why, size_t whylen)
{
	unsigned char	 own[SHA256_DIGEST_LENGTH];
	char		*tmp;
	int		 fd, ok = 0;

	if (len > CENTRAL_POLICY_MAX) {
		snprintf(why, whylen, "the policy is %zu bytes, over %d", len,
		    CENTRAL_POLICY_MAX);
		return (-1);
	}
	SHA256(image, len, own);
	if (sumlen != sizeof(own) || memcmp(sum, own, sizeof(own)) != 0) {
		snprintf(why, whylen, "the policy does not match its checksum");
		return (-1);
	}
	if (asprintf(&tmp, "%s.XXXXXX", snapshot) < 0) {
		snprintf(why, whylen, "out of memory");
		return (-1);
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return (-1);
	}
	if (write(fd, image, len) != (ssize_t)len || fsync(fd) == -1) {
		snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
		close(fd);
		goto done;
	}
	close(fd);
	if (!image_check(tmp, id, why, whylen))
		goto done;
	if (chmod(tmp, 0640) == -1 || rename(tmp, snapshot) == -1) {
		snprintf(why, whylen, "%s: %s", snapshot, strerror(errno));
		goto done;
	}
	ok = 1;
done:
	if (!ok)
		unlink(tmp);
	free(tmp);
	return (ok ? 0 : -1);
}
