/*
 * gwpolicy.c: the policy snapshot in force, and the thread that keeps it
 * current.
 *
 * Four times a second the thread asks SQLite whether the policy database
 * changed (PRAGMA data_version, which moves when another connection such
 * as socksctl commits; and the file's identity, for a database replaced
 * wholesale). When it did, or on SIGHUP, the thread compiles a new
 * snapshot, off the event loops, and swaps it in; the workers then judge
 * their sessions again under it. A snapshot that fails to compile leaves
 * the one in force in place.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "conf.h"
#include "log.h"
#include "policy.h"

#include "base/guard.h"

#include "proxy.h"

#define GWPOLICY_POLL_MS	250

static pthread_mutex_t	 gp_lock = PTHREAD_MUTEX_INITIALIZER;
/* The GeoIP settings, changed by SIGHUP while the watcher may compile. */
static pthread_mutex_t	 gp_opt_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 gp_cond = PTHREAD_COND_INITIALIZER;
static struct policy	*gp_current;
/*
 * Moves with every snapshot published: a worker compares it with the one
 * it judges by before each decision (worker_policy_now), so that once any
 * worker has revoked a session, no worker admits the same request again.
 */
static _Atomic unsigned	 gp_generation;
static pthread_t	 gp_thread;
static int		 gp_running;
static int		 gp_stop;
static int		 gp_reload;	/* SIGHUP: compile even if unchanged */
static void		(*gp_notify)(const struct policy *);

/* The watcher thread's own state. */
static char		*gp_path;
static char		*gp_geoip_db;
static char		*gp_geoip_path;
static sqlite3		*gp_db;
static sqlite3_stmt	*gp_version_st;
static int		 gp_version;
static dev_t		 gp_dev;
static double		 gp_compile_ms;
static _Atomic int	 gp_closed;	/* the snapshot in force denies all */
static _Atomic int64_t	 gp_change = -1;	/* the change compiled last */
static int		 gp_poke;	/* look now, not in GWPOLICY_POLL_MS */
static ino_t		 gp_ino;

static void
gwpolicy_options(const struct conf *c, struct policy_options *o)
{
	memset(o, 0, sizeof(*o));
	o->geoip_db = c->c_geoip_db;
	o->geoip_path = c->c_geoip_path;
	o->self = guard_self_addrs(&o->nself);
}

/*
 * Enabled rules that name users or groups, which no request carries under
 * auth none: they can never match, and an admin would think they do. One
 * error naming them all, or 0.
 */
static int
gwpolicy_check_users(const struct conf *c, char **cause)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		*ids = NULL;
	size_t		 len = 0;
	FILE		*f;
	int		 n = 0;

	if (c->c_auth != AUTH_NONE)
		return (0);
	if ((db = policy_db_open(c->c_policy_db, POLICY_DB_READONLY,
	    cause)) == NULL)
		return (-1);
	if (sqlite3_prepare_v2(db, "SELECT DISTINCT r.id FROM rules r JOIN "
	    "rule_conditions k ON k.rule_id = r.id WHERE r.enabled AND "
	    "k.kind IN ('user', 'group') ORDER BY r.position", -1, &st,
	    NULL) != SQLITE_OK || (f = open_memstream(&ids, &len)) == NULL) {
		if (asprintf(cause, "%s: %s", c->c_policy_db,
		    sqlite3_errmsg(db)) < 0)
			*cause = NULL;
		sqlite3_close(db);
		return (-1);
	}
	while (sqlite3_step(st) == SQLITE_ROW)
		fprintf(f, "%s%lld", n++ > 0 ? ", " : "",
		    (long long)sqlite3_column_int64(st, 0));
	fclose(f);
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (n > 0 && asprintf(cause, "%s: auth none, but rule%s %s name%s "
	    "users or groups: no request carries a user, so %s can never "
	    "match (set auth pam, or disable %s)", c->c_path, n > 1 ? "s" : "",
	    ids, n > 1 ? "" : "s", n > 1 ? "they" : "it",
	    n > 1 ? "them" : "it") < 0)
		*cause = NULL;
	free(ids);
	return (n > 0 ? -1 : 0);
}

/*
 * For -n: the GeoIP file (probed for its country codes, with or without a
 * policy database yet), and the database, if it exists: it opens,
 * compiles, and names no user that auth none would never see.
 */
int
gwpolicy_check(const struct conf *c, char **cause)
{
	struct policy_options	 o;
	struct policy_geoip	*g;
	struct policy		*p;
	struct stat		 st;

	if (c->c_geoip_db != NULL) {
		if ((g = policy_geoip_open(c->c_geoip_db, c->c_geoip_path,
		    cause)) == NULL)
			return (-1);
		policy_geoip_close(g);
	}
	if (stat(c->c_policy_db, &st) == -1 && errno == ENOENT)
		return (0);	/* created, empty, on first start */
	/*
	 * A fleet node's snapshot is the store's, checked when it came and
	 * migrated at start: not this configuration's to pass or fail.
	 */
	if (c->c_policy_central != NULL)
		return (0);
	gwpolicy_options(c, &o);
	if ((p = policy_load(c->c_policy_db, &o, cause)) == NULL)
		return (-1);
	policy_unref(p);
	return (gwpolicy_check_users(c, cause));
}

static void
gwpolicy_publish(struct policy *p)
{
	struct policy	*old;

	pthread_mutex_lock(&gp_lock);
	old = gp_current;
	gp_current = p;
	atomic_fetch_add_explicit(&gp_generation, 1, memory_order_release);
	pthread_mutex_unlock(&gp_lock);
	policy_unref(old);
}

/* A new reference to the snapshot in force, and its generation. */
struct policy *
gwpolicy_get(unsigned *generation)
{
	struct policy	*p;

	pthread_mutex_lock(&gp_lock);
	p = gp_current;
	policy_ref(p);
	if (generation != NULL)
		*generation = atomic_load(&gp_generation);
	pthread_mutex_unlock(&gp_lock);
	return (p);
}

/* Cheap enough for every decision: one atomic load. */
unsigned
gwpolicy_generation(void)
{
	return (atomic_load_explicit(&gp_generation, memory_order_acquire));
}

static int
gwpolicy_data_version(void)
{
	int	 v = -1;

	if (sqlite3_step(gp_version_st) == SQLITE_ROW)
		v = sqlite3_column_int(gp_version_st, 0);
	sqlite3_reset(gp_version_st);
	return (v);
}

static int
gwpolicy_open(char **cause)
{
	struct stat	 st;

	if (gp_db != NULL) {
		sqlite3_finalize(gp_version_st);
		sqlite3_close(gp_db);
		gp_db = NULL;
	}
	/*
	 * The identity first: a file replaced between the two is seen as
	 * replaced at the next look, never the other way round.
	 */
	if (stat(gp_path, &st) == 0) {
		gp_dev = st.st_dev;
		gp_ino = st.st_ino;
	}
	if ((gp_db = policy_db_open(gp_path, POLICY_DB_READONLY, cause)) ==
	    NULL)
		return (-1);
	if (sqlite3_prepare_v2(gp_db, "PRAGMA data_version", -1,
	    &gp_version_st, NULL) != SQLITE_OK) {
		if (asprintf(cause, "%s: %s", gp_path,
		    sqlite3_errmsg(gp_db)) < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

static struct policy *
gwpolicy_compile(char **cause)
{
	struct policy_options	 o;
	struct timespec		 t0, t1;
	struct policy		*p;
	char			*geoip_db, *geoip_path;

	pthread_mutex_lock(&gp_opt_lock);
	geoip_db = gp_geoip_db ? strdup(gp_geoip_db) : NULL;
	geoip_path = gp_geoip_path ? strdup(gp_geoip_path) : NULL;
	pthread_mutex_unlock(&gp_opt_lock);
	memset(&o, 0, sizeof(o));
	o.geoip_db = geoip_db;
	o.geoip_path = geoip_path;
	o.self = guard_self_addrs(&o.nself);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	p = policy_compile(gp_db, &o, cause);
	free(geoip_db);
	free(geoip_path);
	if (p == NULL)
		return (NULL);
	gp_version = gwpolicy_data_version();
	/* Which change of a fleet's store this is (its follower asks). */
	atomic_store(&gp_change, policy_snapshot_change(gp_db));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	gp_compile_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	return (p);
}

/* Said once every worker judges by p: "in force" means in force. */
static void
gwpolicy_log_in_force(const struct policy *p)
{
	char	 why[POLICY_REASON_MAX];

	if (gp_closed && policy_follow_closed(why, sizeof(why))) {
		log_warnx("policy: %s", why);
		return;
	}
	log_info("policy: %zu rules in force, compiled in %.0f ms, %zu KiB",
	    policy_rule_count(p), gp_compile_ms, policy_memory(p) / 1024);
	if (policy_rule_count(p) == 0)
		log_warnx("policy: no enabled rule, every request is denied");
}

static void
gwpolicy_set_conf(const struct conf *c)
{
	free(gp_path);
	free(gp_geoip_db);
	free(gp_geoip_path);
	gp_path = strdup(c->c_policy_db);
	gp_geoip_db = c->c_geoip_db ? strdup(c->c_geoip_db) : NULL;
	gp_geoip_path = c->c_geoip_path ? strdup(c->c_geoip_path) : NULL;
	if (gp_path == NULL)
		fatalx("out of memory");
}

/*
 * The snapshot of a fleet node that must refuse everything: an empty
 * policy, closed with why, compiled without the snapshot, so that
 * nothing wrong with the snapshot (or GeoIP, or memory for its lists)
 * can keep the node open. NULL only when out of memory.
 */
static struct policy *
gwpolicy_closed_policy(const char *why)
{
	struct policy	*p = NULL;
	sqlite3		*db;
	char		*cause = NULL;

	if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	    policy_db_migrate(db, &cause) == 0 &&
	    (p = policy_compile(db, NULL, &cause)) != NULL)
		policy_close(p, why);
	else
		log_warnx("policy: cannot close: %s", cause ? cause :
		    "out of memory");
	free(cause);
	sqlite3_close(db);
	return (p);
}

/*
 * At start, as root (a fleet node: as the proxy's account, after
 * policy_follow_open): creates the database if it is absent (empty: every
 * request denied), brings its schema up to date, compiles the first
 * snapshot. A database newer than this build is refused.
 */
int
gwpolicy_init(const struct conf *c, char **cause)
{
	sqlite3		*db;
	struct policy	*p;
	char		 why[POLICY_REASON_MAX];

	gwpolicy_set_conf(c);
	if ((db = policy_db_open(gp_path, POLICY_DB_CREATE, cause)) == NULL)
		return (-1);
	sqlite3_close(db);
	if (gwpolicy_open(cause) == -1 || (p = gwpolicy_compile(cause)) ==
	    NULL)
		return (-1);
	/* A fleet node that may not judge by its snapshot yet, or now. */
	gp_closed = policy_follow_closed(why, sizeof(why));
	if (gp_closed) {
		policy_unref(p);
		if ((p = gwpolicy_closed_policy(why)) == NULL)
			return (-1);
	}
	gwpolicy_publish(p);
	gwpolicy_log_in_force(p);
	return (0);
}

/*
 * The snapshot compiled anew, or NULL (said) when it does not compile:
 * the one in force stays, unless closed.
 */
static struct policy *
gwpolicy_recompile(int v)
{
	struct policy	*p;
	char		*cause = NULL;

	if (policy_db_version(gp_db) != policy_db_latest()) {
		log_warnx("policy: %s: schema version %d, this build needs %d; "
		    "the policy in force stays", gp_path,
		    policy_db_version(gp_db), policy_db_latest());
		gp_version = v;
		return (NULL);
	}
	if ((p = gwpolicy_compile(&cause)) == NULL) {
		log_warnx("policy: %s; the policy in force stays",
		    cause ? cause : "out of memory");
		free(cause);
		gp_version = v;		/* not again until it changes */
	}
	return (p);
}

static void
gwpolicy_check_change(int force)
{
	struct policy	*p = NULL;
	struct stat	 st;
	char		*cause = NULL, why[POLICY_REASON_MAX];
	int		 v = -1, closed;

	/* Closing or opening again, for a fleet node, is a new snapshot. */
	closed = policy_follow_closed(why, sizeof(why));
	if (closed != gp_closed)
		force = 1;
	if (stat(gp_path, &st) == 0 && (st.st_dev != gp_dev ||
	    st.st_ino != gp_ino)) {
		/* Replaced: follow the new file. */
		if (gwpolicy_open(&cause) == -1) {
			log_warnx("policy: %s; the policy in force stays",
			    cause ? cause : "out of memory");
			free(cause);
		}
		force = 1;
	}
	if (gp_db != NULL)
		v = gwpolicy_data_version();
	if (!force && v == gp_version)
		return;
	/* Even closed: the follower asks which change compiles. */
	if (gp_db != NULL)
		p = gwpolicy_recompile(v);
	if (closed) {
		policy_unref(p);
		if ((p = gwpolicy_closed_policy(why)) == NULL)
			return;
	} else if (p == NULL)
		return;
	gp_closed = closed;
	gwpolicy_publish(p);
	gp_notify(p);
	gwpolicy_log_in_force(p);
}

static void *
gwpolicy_main(void *arg)
{
	struct timespec	 ts;
	int		 force;

	(void)arg;
	pthread_mutex_lock(&gp_lock);
	while (!gp_stop) {
		clock_gettime(CLOCK_MONOTONIC, &ts);	/* gp_cond's clock */
		ts.tv_nsec += GWPOLICY_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!gp_reload && !gp_poke)
			pthread_cond_timedwait(&gp_cond, &gp_lock, &ts);
		gp_poke = 0;
		if (gp_stop)
			break;
		force = gp_reload;
		gp_reload = 0;
		pthread_mutex_unlock(&gp_lock);
		gwpolicy_check_change(force);
		pthread_mutex_lock(&gp_lock);
	}
	pthread_mutex_unlock(&gp_lock);
	return (NULL);
}

/* After the privilege drop: watch for changes; notify() tells workers. */
int
gwpolicy_watch(void (*notify)(const struct policy *), char **cause)
{
	pthread_condattr_t	 attr;

	gp_notify = notify;
	/* A wall clock set back must not stall the watcher (and closing). */
	if (pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_destroy(&gp_cond) != 0 ||
	    pthread_cond_init(&gp_cond, &attr) != 0)
		fatalx("policy watcher: cannot set its clock");
	pthread_condattr_destroy(&attr);
	if ((errno = pthread_create(&gp_thread, NULL, gwpolicy_main, NULL)) !=
	    0) {
		if (asprintf(cause, "policy watcher: %s", strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	gp_running = 1;
	return (0);
}

/* SIGHUP: new paths (GeoIP included) and a fresh compile. */
void
gwpolicy_reload(const struct conf *c)
{
	if (strcmp(c->c_policy_db, gp_path) != 0 ||
	    (c->c_policy_central != NULL) != policy_follow_is_node() ||
	    (c->c_policy_central != NULL && !policy_follow_same_url(
	    c->c_policy_central)))
		log_warnx("reload: policy_db takes effect only after a "
		    "restart");
	policy_follow_reload(c);
	pthread_mutex_lock(&gp_opt_lock);
	free(gp_geoip_db);
	free(gp_geoip_path);
	gp_geoip_db = c->c_geoip_db ? strdup(c->c_geoip_db) : NULL;
	gp_geoip_path = c->c_geoip_path ? strdup(c->c_geoip_path) : NULL;
	pthread_mutex_unlock(&gp_opt_lock);
	pthread_mutex_lock(&gp_lock);
	gp_reload = 1;
	pthread_cond_signal(&gp_cond);
	pthread_mutex_unlock(&gp_lock);
}

/*
 * The policy follower has put a new snapshot in place, or heard from its
 * store: look at once rather than at the next poll.
 */
void
gwpolicy_poke(void)
{
	pthread_mutex_lock(&gp_lock);
	gp_poke = 1;
	pthread_cond_signal(&gp_cond);
	pthread_mutex_unlock(&gp_lock);
}

/* Whether the snapshot in force refuses everything (policy_max_age). */
int
gwpolicy_closed(void)
{
	return (atomic_load(&gp_closed));
}

/* The fleet's change id the snapshot compiled last holds; -1: none. */
int64_t
gwpolicy_change(void)
{
	return (atomic_load(&gp_change));
}

void
gwpolicy_stop(void)
{
	if (gp_running) {
		pthread_mutex_lock(&gp_lock);
		gp_stop = 1;
		pthread_cond_signal(&gp_cond);
		pthread_mutex_unlock(&gp_lock);
		pthread_join(gp_thread, NULL);
		gp_running = 0;
	}
	if (gp_db != NULL) {
		sqlite3_finalize(gp_version_st);
		sqlite3_close(gp_db);
		gp_db = NULL;
	}
	gwpolicy_publish(NULL);
	free(gp_path);
	free(gp_geoip_db);
	free(gp_geoip_path);
	gp_path = gp_geoip_db = gp_geoip_path = NULL;
}
