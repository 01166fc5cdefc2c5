/*
 * policy_follow.c: a fleet node's copy of the fleet's one policy
 * (`policy_db postgresql://...`), kept current by a thread of the proxy.
 *
 * The thread LISTENs on socksgw_policy and asks the store for its head's
 * change id at start, on every notification and every few seconds. When
 * the head is not the snapshot's change, it fetches the head's image (the
 * SQLite policy database socksctl stored, policy_store.c), checks its
 * checksum, its integrity, its schema and its change id, and puts it in
 * place of policy_snapshot with a rename; gwpolicy.c sees the new file
 * and compiles it, as it does for any policy database replaced whole.
 *
 * Whenever the store has confirmed that the snapshot is its head, the
 * time is kept (the mtime of policy_snapshot.heard, so it outlives a
 * restart). A node that cannot reach the store judges by the snapshot
 * for policy_max_age after that, then refuses every request
 * (gwpolicy.c closes the snapshot) until the store answers again: the
 * admins' last change may be a revocation the node never heard of.
 *
 * Every wait (connecting, each query, between checks) is a poll() that a
 * stop request ends at once: a store that stopped answering never holds
 * up the proxy's exit.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "central.h"
#include "conf.h"
#include "log.h"
#include "policy.h"

#include "proxy.h"

#define FOLLOW_CHECK_S		5	/* the head asked for at least so often */
#define FOLLOW_QUERY_S		15	/* a query unanswered so long: reconnect */
#define FOLLOW_RETRY_MAX_S	10	/* reconnecting backs off to this */

static const char *const follow_state_names[] = {
	[FOLLOW_OFF] = "off", [FOLLOW_CONNECTING] = "connecting",
	[FOLLOW_UP] = "up", [FOLLOW_DOWN] = "down",
};

static struct {
	char		*url;
	char		*snapshot;	/* policy_snapshot */
	char		*heard_path;	/* its .heard */
	int		 heard_fd;
	int		 wake[2];	/* a byte: stop */
	pthread_t	 thread;
	int		 running;
	int64_t		 local;		/* the snapshot's change id */
	pthread_mutex_t	 lock;		/* error, below */
	char		 error[256];	/* why down, or why the head was refused */
} pf = { .heard_fd = -1, .wake = { -1, -1 },
    .lock = PTHREAD_MUTEX_INITIALIZER };

static _Atomic int	 pf_state = FOLLOW_OFF;
/*
 * When the store last confirmed the snapshot, on the monotonic clock (a
 * wall clock set back must not keep a node open); FOLLOW_NEVER: not since
 * this node's snapshot was made.
 */
#define FOLLOW_NEVER	INT64_MIN
#define FOLLOW_SKEW_S	60	/* .heard in the future by more: not trusted */
static _Atomic int64_t	 pf_heard = FOLLOW_NEVER;
static _Atomic int64_t	 pf_change;	/* the snapshot's change id */
static _Atomic int64_t	 pf_installed;	/* snapshots fetched and installed */
static _Atomic int	 pf_max_age;	/* policy_max_age */
static _Atomic int	 pf_fleet;	/* this is a fleet node (prepared) */

static void
follow_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int64_t
follow_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec);
}

/*
 * .heard's time, kept across a restart by the wall clock, on the
 * monotonic one. 1970 is never; so is a time ahead of now (the clock was
 * set back since, and the real age is unknown): closed until the store
 * answers, never open too long.
 */
static int64_t
follow_heard_from(time_t mtime)
{
	time_t	 now = time(NULL);

	if (mtime <= 0 || mtime > now + FOLLOW_SKEW_S)
		return (FOLLOW_NEVER);
	return (follow_now() - (mtime > now ? 0 : (int64_t)(now - mtime)));
}

/* Says why the node is not current (logged when it is news). */
static void
follow_error(const char *fmt, ...)
{
	char	 msg[sizeof(pf.error)];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&pf.lock);
	if (strcmp(msg, pf.error) != 0) {
		snprintf(pf.error, sizeof(pf.error), "%s", msg);
		pthread_mutex_unlock(&pf.lock);
		log_warnx("policy store: %s", msg);
		return;
	}
	pthread_mutex_unlock(&pf.lock);
}

static void
follow_clear_error(void)
{
	pthread_mutex_lock(&pf.lock);
	pf.error[0] = '\0';
	pthread_mutex_unlock(&pf.lock);
}

/*
 * As root, before the privilege drop: the snapshot's folder, the
 * snapshot (empty, every request denied, when there is none yet) and
 * its .heard, all the proxy account's, which replaces them. A snapshot
 * created here has never been confirmed: .heard says 1970.
 */
int
policy_follow_prepare(const struct conf *c, uid_t uid, gid_t gid,
    char **cause)
{
	struct timespec	 never[2] = { { 0, 0 }, { 0, 0 } };
	struct stat	 st;
	sqlite3		*db;
	char		*dir, *slash;
	int		 fd, fresh;

	if (c->c_policy_central == NULL)
		return (0);
	if ((dir = strdup(c->c_policy_db)) == NULL)
		goto oom;
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) == 0) {
			if (chown(dir, uid, gid) == -1)
				log_warn("%s: chown", dir);
		} else if (errno != EEXIST) {
			if (asprintf(cause, "policy_snapshot: %s: %s", dir,
			    strerror(errno)) < 0)
				*cause = NULL;
			free(dir);
			return (-1);
		}
	}
	free(dir);
	fresh = lstat(c->c_policy_db, &st) == -1 && errno == ENOENT;
	if ((db = policy_db_open(c->c_policy_db, POLICY_DB_CREATE, cause)) ==
	    NULL)
		return (-1);
	sqlite3_close(db);
	if (asprintf(&pf.heard_path, "%s.heard", c->c_policy_db) < 0)
		goto oom;
	if ((fd = open(c->c_policy_db, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) ==
	    -1 || fchown(fd, uid, gid) == -1 || close(fd) == -1)
		goto fail;
	if ((fd = open(pf.heard_path, O_WRONLY | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0640)) == -1 || fchown(fd, uid, gid) == -1 ||
	    (fresh && futimens(fd, never) == -1) || fstat(fd, &st) == -1 ||
	    close(fd) == -1)
		goto fail;
	/* Known before the first snapshot is published (policy_follow_closed) */
	atomic_store(&pf_heard, follow_heard_from(st.st_mtime));
	atomic_store(&pf_max_age, c->c_policy_max_age);
	atomic_store(&pf_fleet, 1);
	atomic_store(&pf_state, FOLLOW_CONNECTING);
	return (0);
fail:
	if (asprintf(cause, "policy_snapshot: %s: %s", c->c_policy_db,
	    strerror(errno)) < 0)
		*cause = NULL;
	return (-1);
oom:
	*cause = NULL;
	return (-1);
}

/* Waits for fd (or a stop) until deadline; 1 ready, 0 time, -1 stop. */
static int
follow_wait(int fd, short events, time_t deadline)
{
	struct pollfd	 p[2] = { { .fd = pf.wake[0], .events = POLLIN },
			    { .fd = fd, .events = events } };
	time_t		 now;
	int		 n;

	for (;;) {
		now = time(NULL);
		if (now >= deadline)
			return (0);
		n = poll(p, fd >= 0 ? 2 : 1, (int)(deadline - now) * 1000);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || (p[0].revents & POLLIN))
			return (-1);
		if (n > 0)
			return (1);
	}
}

static PGconn *
follow_connect(void)
{
	PGconn			*pg;
	PostgresPollingStatusType s = PGRES_POLLING_WRITING;
	char			 why[256];
	time_t			 deadline = time(NULL) + FOLLOW_QUERY_S;
	int			 r;

	if ((pg = central_connect_start(pf.url, "gatewayd policy", why,
	    sizeof(why))) == NULL) {
		follow_error("%s", why);
		return (NULL);
	}
	while (s != PGRES_POLLING_OK && s != PGRES_POLLING_FAILED) {
		r = follow_wait(PQsocket(pg), s == PGRES_POLLING_READING ?
		    POLLIN : POLLOUT, deadline);
		if (r <= 0) {
			if (r == 0)
				follow_error("connecting: no answer in %d s",
				    FOLLOW_QUERY_S);
			PQfinish(pg);
			return (NULL);
		}
		s = PQconnectPoll(pg);
	}
	if (s == PGRES_POLLING_FAILED) {
		snprintf(why, sizeof(why), "%s", PQerrorMessage(pg));
		why[strcspn(why, "\n")] = '\0';
		follow_error("%s", why);
		PQfinish(pg);
		return (NULL);
	}
	return (pg);
}

/*
 * One statement, waited for as follow_wait waits; its last result (to
 * PQclear), or NULL: failed (said), timed out or stopped.
 */
static PGresult *
follow_query(PGconn *pg, const char *sql, int binary)
{
	PGresult	*r, *last = NULL;
	char		 why[256];
	time_t		 deadline = time(NULL) + FOLLOW_QUERY_S;
	int		 w;

	if (!PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, binary))
		goto fail;
	for (;;) {
		if (!PQconsumeInput(pg))
			goto fail;
		while (!PQisBusy(pg)) {
			if ((r = PQgetResult(pg)) == NULL) {
				if (last != NULL && !central_ok(last, why,
				    sizeof(why))) {
					follow_error("%s", why);
					PQclear(last);
					return (NULL);
				}
				return (last);
			}
			PQclear(last);
			last = r;
		}
		if ((w = follow_wait(PQsocket(pg), POLLIN, deadline)) <= 0) {
			if (w == 0)
				follow_error("no answer in %d s", FOLLOW_QUERY_S);
			PQclear(last);
			return (NULL);
		}
	}
fail:
	snprintf(why, sizeof(why), "%s", PQerrorMessage(pg));
	why[strcspn(why, "\n")] = '\0';
	follow_error("%s", why);
	PQclear(last);
	return (NULL);
}

static uint64_t
follow_be(const char *p, int len)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < len; i++)
		v = v << 8 | (unsigned char)p[i];
	return (v);
}

/* The store's head, fetched, checked and put in place of the snapshot. */
static int
follow_install(PGconn *pg)
{
	PGresult	*r;
	char		 why[256];
	int64_t		 id;
	int		 rc = -1;

	if ((r = follow_query(pg, "SELECT change_id, image, sha256 FROM "
	    "policy_head", 1)) == NULL)
		return (-1);
	if (PQntuples(r) != 1 || PQnfields(r) != 3 ||
	    PQgetlength(r, 0, 0) != 8 || PQgetisnull(r, 0, 1)) {
		follow_error("the store's policy_head is not what this build "
		    "reads");
		goto done;
	}
	id = (int64_t)follow_be(PQgetvalue(r, 0, 0), 8);
	if (policy_image_install(pf.snapshot, PQgetvalue(r, 0, 1),
	    (size_t)PQgetlength(r, 0, 1), PQgetvalue(r, 0, 2),
	    (size_t)PQgetlength(r, 0, 2), id, why, sizeof(why)) == -1) {
		follow_error("change %lld refused: %s", (long long)id, why);
		goto done;
	}
	pf.local = id;
	atomic_store(&pf_change, id);
	atomic_fetch_add(&pf_installed, 1);
	log_info("policy store: change %lld received (%d bytes)",
	    (long long)id, PQgetlength(r, 0, 1));
	rc = 0;
done:
	PQclear(r);
	return (rc);
}

/*
 * Is the snapshot the store's head? Fetches it when not. 0 when the
 * snapshot is current (the store's word, kept in .heard), -1 when not.
 */
static int
follow_sync(PGconn *pg)
{
	PGresult	*r;
	int64_t		 head;

	if ((r = follow_query(pg, "SELECT change_id FROM policy_head", 0)) ==
	    NULL)
		return (-1);
	if (PQntuples(r) != 1 || PQnfields(r) != 1) {
		follow_error("the store holds no policy yet (socksctl init)");
		PQclear(r);
		return (-1);
	}
	head = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (head != pf.local && follow_install(pg) == -1)
		return (-1);
	if (pf.local != head)	/* moved on meanwhile: the next round */
		return (-1);
	atomic_store(&pf_heard, follow_now());
	if (futimens(pf.heard_fd, NULL) == -1)
		log_warn("%s", pf.heard_path);
	follow_clear_error();
	gwpolicy_poke();	/* a new snapshot, or open again: now */
	return (0);
}

/* Connected: checks now, on each notification and every few seconds. */
static void
follow_session(PGconn *pg)
{
	PGresult	*r;
	PGnotify	*n;
	int		 w;

	if ((r = follow_query(pg, "LISTEN socksgw_policy", 0)) == NULL)
		return;
	PQclear(r);
	atomic_store(&pf_state, FOLLOW_UP);
	for (;;) {
		if (follow_sync(pg) == -1) {
			if (PQstatus(pg) != CONNECTION_OK)
				return;
			atomic_store(&pf_state, FOLLOW_DOWN);
		} else
			atomic_store(&pf_state, FOLLOW_UP);
		w = follow_wait(PQsocket(pg), POLLIN, time(NULL) +
		    FOLLOW_CHECK_S);
		if (w == -1)
			return;
		if (w == 1 && !PQconsumeInput(pg)) {
			follow_error("the connection ended");
			return;
		}
		while ((n = PQnotifies(pg)) != NULL)
			PQfreemem(n);
	}
}

static void *
follow_main(void *arg)
{
	PGconn	*pg;
	int	 backoff = 1;

	(void)arg;
	for (;;) {
		if ((pg = follow_connect()) != NULL) {
			backoff = 1;
			follow_session(pg);
			PQfinish(pg);
		}
		atomic_store(&pf_state, FOLLOW_DOWN);
		if (follow_wait(-1, 0, time(NULL) + backoff) == -1)
			break;
		if (backoff < FOLLOW_RETRY_MAX_S)
			backoff *= 2;
	}
	return (NULL);
}

/* After the privilege drop: the thread, when policy_db is a URL. */
int
policy_follow_start(const struct conf *c, char **cause)
{
	struct stat	 st;
	sqlite3		*db;

	if (c->c_policy_central == NULL)
		return (0);
	if ((pf.url = strdup(c->c_policy_central)) == NULL ||
	    (pf.snapshot = strdup(c->c_policy_db)) == NULL ||
	    (pf.heard_path == NULL && asprintf(&pf.heard_path, "%s.heard",
	    c->c_policy_db) < 0))
		goto oom;
	if ((pf.heard_fd = open(pf.heard_path, O_WRONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fstat(pf.heard_fd, &st) == -1) {
		if (asprintf(cause, "%s: %s", pf.heard_path,
		    strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	atomic_store(&pf_heard, follow_heard_from(st.st_mtime));
	if ((db = policy_db_open(pf.snapshot, POLICY_DB_READONLY, cause)) ==
	    NULL)
		return (-1);
	pf.local = policy_snapshot_change(db);
	sqlite3_close(db);
	atomic_store(&pf_change, pf.local);
	if (pipe2(pf.wake, O_CLOEXEC) == -1)
		goto fail;
	atomic_store(&pf_state, FOLLOW_CONNECTING);
	if ((errno = pthread_create(&pf.thread, NULL, follow_main, NULL)) != 0)
		goto fail;
	pf.running = 1;
	return (0);
fail:
	if (asprintf(cause, "policy follower: %s", strerror(errno)) < 0)
		*cause = NULL;
	return (-1);
oom:
	*cause = NULL;
	return (-1);
}

void
policy_follow_stop(void)
{
	if (pf.running) {
		if (write(pf.wake[1], "x", 1) != 1)
			log_warn("policy follower: stop");
		pthread_join(pf.thread, NULL);
		pf.running = 0;
	}
	if (pf.wake[0] != -1) {
		close(pf.wake[0]);
		close(pf.wake[1]);
		pf.wake[0] = pf.wake[1] = -1;
	}
	if (pf.heard_fd != -1)
		close(pf.heard_fd);
	pf.heard_fd = -1;
	free(pf.url);
	free(pf.snapshot);
	free(pf.heard_path);
	pf.url = pf.snapshot = pf.heard_path = NULL;
	atomic_store(&pf_state, FOLLOW_OFF);
}

/* How a node stands with its policy store, for stats and gwpolicy.c. */
void
policy_follow_status(struct follow_status *fs)
{
	memset(fs, 0, sizeof(*fs));
	fs->fs_state = atomic_load(&pf_state);
	fs->fs_heard_age = atomic_load(&pf_heard) == FOLLOW_NEVER ? -1 :
	    follow_now() - atomic_load(&pf_heard);
	fs->fs_change = atomic_load(&pf_change);
	fs->fs_installed = atomic_load(&pf_installed);
	fs->fs_max_age = atomic_load(&pf_max_age);
	pthread_mutex_lock(&pf.lock);
	snprintf(fs->fs_error, sizeof(fs->fs_error), "%s", pf.error);
	pthread_mutex_unlock(&pf.lock);
}

const char *
policy_follow_state_name(int state)
{
	return (state >= FOLLOW_OFF && state <= FOLLOW_DOWN ?
	    follow_state_names[state] : "off");
}

void
policy_follow_reload(const struct conf *c)
{
	atomic_store(&pf_max_age, c->c_policy_max_age);
}

/*
 * Whether the node must refuse every request: the store has not confirmed
 * its snapshot within policy_max_age (or ever). 1 with why, or 0.
 */
int
policy_follow_closed(char *why, size_t len)
{
	int64_t	 heard = atomic_load(&pf_heard), age;
	int	 max_age = atomic_load(&pf_max_age);

	if (!atomic_load(&pf_fleet))
		return (0);	/* not a fleet node */
	age = follow_now() - heard;
	if (heard != FOLLOW_NEVER && age <= max_age)
		return (0);
	if (heard == FOLLOW_NEVER)
		snprintf(why, len, "the fleet's policy store has not confirmed "
		    "this node's policy yet: every request is refused");
	else
		snprintf(why, len, "no word from the fleet's policy store for "
		    "%lld s (policy_max_age %d): every request is refused",
		    (long long)age, max_age);
	return (1);
}
