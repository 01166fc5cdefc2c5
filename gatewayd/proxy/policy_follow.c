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
#define FOLLOW_QUERY_S		15	/* silent so long: reconnect */
#define FOLLOW_RETRY_MAX_S	10	/* reconnecting backs off to this */
#define FOLLOW_SKEW_S		60	/* .heard ahead of the clock: untrusted */
#define FOLLOW_NEVER		INT64_MIN

static const char *const follow_state_names[] = {
	[FOLLOW_OFF] = "off", [FOLLOW_CONNECTING] = "connecting",
	[FOLLOW_UP] = "up", [FOLLOW_DOWN] = "down",
};

static struct {
	char		*url;
	char		*snapshot;	/* policy_snapshot */
	char		*heard_path;	/* its .heard: the time, and the sha */
	int		 heard_fd;
	int		 wake[2];	/* a byte: stop */
	pthread_t	 thread;
	int		 running;
	int64_t		 local;		/* the snapshot's change id ... */
	char		 local_sha[SNAPSHOT_SHA_HEX + 1];	/* ... and image */
	int64_t		 refused;	/* a head refused: not fetched again */
	char		 refused_sha[SNAPSHOT_SHA_HEX + 1];
	pthread_mutex_t	 lock;		/* error, below */
	char		 error[256];	/* why down, or why the head was refused */
} pf = { .heard_fd = -1, .wake = { -1, -1 }, .refused = -1,
    .lock = PTHREAD_MUTEX_INITIALIZER };

static _Atomic int	 pf_state = FOLLOW_OFF;
/*
 * When the store last confirmed that the policy in force is its head, on
 * CLOCK_BOOTTIME (a wall clock set back must not keep a node open, and a
 * suspended machine's sleep counts); FOLLOW_NEVER: not since the
 * snapshot was made.
 */
static _Atomic int64_t	 pf_heard = FOLLOW_NEVER;
static _Atomic int64_t	 pf_change;	/* the snapshot's change id */
static _Atomic int64_t	 pf_installed;	/* snapshots fetched and installed */
static _Atomic int	 pf_max_age;	/* policy_max_age */
static _Atomic int	 pf_fleet;	/* this is a fleet node */

static void
follow_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * .heard's time, kept across a restart by the wall clock, on the boot
 * clock. 1970 is never; so is a time ahead of now (the clock was set back
 * since, and the real age is unknown): closed until the store answers,
 * never open too long.
 */
static int64_t
follow_heard_from(time_t mtime)
{
	time_t	 now = time(NULL);

	if (mtime <= 0 || mtime > now + FOLLOW_SKEW_S)
		return (FOLLOW_NEVER);
	return (central_now() - (mtime > now ? 0 : (int64_t)(now - mtime)));
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
 * After the drop, before the first compile: the snapshot and .heard
 * (policy_snapshot_open), and so what the store's word was.
 */
int
policy_follow_open(const struct conf *c, char **cause)
{
	struct snapshot_files	 sf;

	if (c->c_policy_central == NULL)
		return (0);
	if (policy_snapshot_open(c->c_policy_db, &sf, cause) == -1)
		return (-1);
	pf.heard_path = sf.sf_heard_path;
	pf.heard_fd = sf.sf_heard_fd;
	pf.local = sf.sf_change;
	snprintf(pf.local_sha, sizeof(pf.local_sha), "%s", sf.sf_sha);
	atomic_store(&pf_change, pf.local);
	atomic_store(&pf_heard, follow_heard_from(sf.sf_heard));
	atomic_store(&pf_max_age, c->c_policy_max_age);
	atomic_store(&pf_fleet, 1);
	atomic_store(&pf_state, FOLLOW_CONNECTING);
	return (0);
}

static PGconn *
follow_connect(void)
{
	PGconn	*pg;
	char	 why[256];

	if ((pg = central_connect_wait(pf.url, "gatewayd policy", pf.wake[0],
	    FOLLOW_QUERY_S, why, sizeof(why))) == NULL && why[0] != '\0')
		follow_error("%s", why);
	return (pg);
}

/* One statement (central_query_wait); NULL: said, and reconnect. */
static PGresult *
follow_query(PGconn *pg, const char *sql, int binary)
{
	PGresult	*r;
	char		 why[256];

	if ((r = central_query_wait(pg, sql, 0, NULL, NULL, NULL, binary,
	    pf.wake[0], FOLLOW_QUERY_S, why, sizeof(why))) == NULL &&
	    why[0] != '\0')
		follow_error("%s", why);
	return (r);
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

/* The sha's hex, for .heard and the store's encode(sha256, 'hex'). */
static void
follow_hex(const unsigned char *sha, int len, char *out)
{
	int	 i;

	for (i = 0; i < len && i < SNAPSHOT_SHA_HEX / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", sha[i]);
	out[2 * i] = '\0';
}

/*
 * The store's head, fetched, checked and put in place of the snapshot;
 * .heard then names its sha. The change id installed, or -1. A head
 * that fails a check is remembered and not fetched again until it moves.
 */
static int64_t
follow_install(PGconn *pg)
{
	PGresult	*r;
	char		 why[256], sha[SNAPSHOT_SHA_HEX + 1];
	int64_t		 id = -1;

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
	follow_hex((const unsigned char *)PQgetvalue(r, 0, 2),
	    PQgetlength(r, 0, 2), sha);
	if (policy_image_install(pf.snapshot, PQgetvalue(r, 0, 1),
	    (size_t)PQgetlength(r, 0, 1), PQgetvalue(r, 0, 2),
	    (size_t)PQgetlength(r, 0, 2), id, why, sizeof(why)) == -1) {
		follow_error("change %lld refused: %s", (long long)id, why);
		pf.refused = id;
		snprintf(pf.refused_sha, sizeof(pf.refused_sha), "%s", sha);
		id = -1;
		goto done;
	}
	pf.local = id;
	snprintf(pf.local_sha, sizeof(pf.local_sha), "%s", sha);
	if (pwrite(pf.heard_fd, sha, strlen(sha), 0) != (ssize_t)strlen(sha) ||
	    ftruncate(pf.heard_fd, (off_t)strlen(sha)) == -1)
		log_warn("%s", pf.heard_path);
	atomic_store(&pf_change, id);
	atomic_fetch_add(&pf_installed, 1);
	log_info("policy store: change %lld received (%d bytes)",
	    (long long)id, PQgetlength(r, 0, 1));
done:
	PQclear(r);
	return (id);
}

/*
 * Whether the policy in force is compiled from change id: the watcher
 * is told at once and compiles within milliseconds; waited for up to a
 * second, so that the confirmation that follows is of what judges.
 */
static int
follow_in_force(int64_t id)
{
	int	 i;

	gwpolicy_poke();
	for (i = 0; i < 100 && gwpolicy_change() != id; i++)
		usleep(10000);
	return (gwpolicy_change() == id);
}

/*
 * Is the policy in force the store's head (its change id and its sha)?
 * Fetches the head when not. 0 when it is (the store's word, kept in
 * .heard), 1 when not (said), -1 when the connection failed.
 */
static int
follow_sync(PGconn *pg)
{
	PGresult	*r;
	const char	*sha;
	int64_t		 head, size;

	if ((r = follow_query(pg, "SELECT change_id, encode(sha256, 'hex'), "
	    "octet_length(image) FROM policy_head", 0)) == NULL)
		return (-1);
	if (PQntuples(r) != 1 || PQnfields(r) != 3) {
		follow_error("the store holds no policy yet (socksctl init)");
		PQclear(r);
		return (1);
	}
	head = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	size = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	sha = PQgetvalue(r, 0, 1);
	if (head == pf.refused && strcmp(sha, pf.refused_sha) == 0) {
		PQclear(r);
		return (1);	/* said when refused; not fetched again */
	}
	if (size > CENTRAL_POLICY_MAX) {
		follow_error("change %lld refused: the policy is %lld bytes, "
		    "over %d", (long long)head, (long long)size,
		    CENTRAL_POLICY_MAX);
		PQclear(r);
		return (1);
	}
	if (head != pf.local || strcmp(sha, pf.local_sha) != 0) {
		PQclear(r);
		/* Fetched: the head as of that fetch, if it moved since. */
		if ((head = follow_install(pg)) == -1)
			return (PQstatus(pg) == CONNECTION_OK ? 1 : -1);
	} else
		PQclear(r);
	if (!follow_in_force(head)) {
		follow_error("change %lld is not in force (see the policy "
		    "watcher's message)", (long long)head);
		return (1);
	}
	atomic_store(&pf_heard, central_now());
	if (futimens(pf.heard_fd, NULL) == -1)
		log_warn("%s", pf.heard_path);
	follow_clear_error();
	gwpolicy_poke();	/* open again, if it was closed: now */
	return (0);
}

/*
 * Connected: checks now, on each notification and every few seconds.
 * Returns when the connection is no longer usable, or on a stop.
 */
static void
follow_session(PGconn *pg)
{
	PGresult	*r;
	PGnotify	*n;
	int		 w, heard, rc;

	if ((r = follow_query(pg, "LISTEN socksgw_policy", 0)) == NULL)
		return;
	PQclear(r);
	for (;;) {
		if ((rc = follow_sync(pg)) == -1)
			return;
		atomic_store(&pf_state, rc == 0 ? FOLLOW_UP : FOLLOW_DOWN);
		/* Notifications that came with the answers: at once. */
		for (heard = 0; (n = PQnotifies(pg)) != NULL; heard = 1)
			PQfreemem(n);
		if (heard)
			continue;
		w = central_wait(pf.wake[0], PQsocket(pg), POLLIN,
		    central_now() + FOLLOW_CHECK_S);
		if (w == -1)
			return;
		if (w == 1 && !PQconsumeInput(pg)) {
			follow_error("the connection ended");
			return;
		}
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
		if (central_wait(pf.wake[0], -1, 0, central_now() + backoff) == -1)
			break;
		if (backoff < FOLLOW_RETRY_MAX_S)
			backoff *= 2;
	}
	return (NULL);
}

/* After policy_follow_open: the thread, when policy_db is a URL. */
int
policy_follow_start(const struct conf *c, char **cause)
{
	if (c->c_policy_central == NULL)
		return (0);
	if ((pf.url = strdup(c->c_policy_central)) == NULL ||
	    (pf.snapshot = strdup(c->c_policy_db)) == NULL) {
		*cause = NULL;
		return (-1);
	}
	if (pipe2(pf.wake, O_CLOEXEC) == -1 ||
	    (errno = pthread_create(&pf.thread, NULL, follow_main, NULL)) !=
	    0) {
		if (asprintf(cause, "policy follower: %s", strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	pf.running = 1;
	return (0);
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
	int64_t	 heard;

	memset(fs, 0, sizeof(*fs));
	fs->fs_state = atomic_load(&pf_state);
	heard = atomic_load(&pf_heard);
	fs->fs_heard_age = heard == FOLLOW_NEVER ? -1 : central_now() - heard;
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

int
policy_follow_is_node(void)
{
	return (atomic_load(&pf_fleet));
}

/* For a reload: the store followed is url's (set once, before threads). */
int
policy_follow_same_url(const char *url)
{
	return (pf.url != NULL && strcmp(pf.url, url) == 0);
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
	if (heard == FOLLOW_NEVER) {
		snprintf(why, len, "the fleet's policy store has not confirmed "
		    "this node's policy yet: every request is refused");
		return (1);
	}
	if ((age = central_now() - heard) <= max_age)
		return (0);
	snprintf(why, len, "no word from the fleet's policy store for %lld s "
	    "(policy_max_age %d): every request is refused", (long long)age,
	    max_age);
	return (1);
}
