/*
 * audit_maint.c: auditd's housekeeping, off the write path: WAL
 * checkpoints and the hourly rollups the reports read.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses it:
 * the writer copies the whole WAL into the database and syncs it while
 * records wait. On a large, old database that copy is mostly random
 * writes, and under full load it stalled the writer long enough for the
 * gateway to refuse sessions (issue 20). Here a thread with a connection
 * of its own runs PASSIVE checkpoints, back to back while there is work:
 * they never take the writer's lock, so the writer keeps appending while
 * pages are copied. The WAL can start again from its beginning only once
 * a checkpoint has caught up with the last commit; a writer that never
 * pauses never lets that happen, so once the WAL passes WAL_TAIL_PAGES
 * the writer itself checkpoints the tail the thread has not copied yet
 * (little: the thread keeps up), and its next commit starts the WAL over.
 * journal_size_limit then cuts the file back: the WAL stays bounded.
 *
 * Rollups ran in the writer's loop too, 20,000 records a step: on a
 * large database one step took the better part of a second, and the
 * writer fell to under 2,000 records/s while a backlog lasted. Here they
 * run in small steps (MAINT_ROLLUP_STEP records) whenever there is a
 * backlog and the writer has nothing waiting. SQLite's lock is no fair
 * queue (a waiting writer sleeps, and a step taken back to back wins it
 * again: the first soak on a large log starved the writer that way), so
 * the writer and this thread take turns on maint_turn: the writer says
 * when it has a batch (maint_writer_wants), and waits for one step at
 * most.
 */
#include <sys/stat.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit_chain.h"
#include "evidence.h"
#include "log.h"
#include "policy.h"

#include "auditd.h"

#define WAL_EVERY_MS	200	/* between checkpoints with nothing to do */
#define WAL_SLOW_MS	2000	/* a checkpoint this long is said */
#define WAL_TAIL_PAGES	4096	/* 64 MiB of 16 KiB pages */
#define MAINT_ROLLUP_STEP 2000	/* records rolled up in one transaction */

static struct {
	sqlite3		*wa_db;
	pthread_t	 wa_thread;
	pthread_mutex_t	 wa_lock;
	pthread_cond_t	 wa_cond;
	int		 wa_stop, wa_running;
	int64_t		 wa_slowest_ms;
	pthread_mutex_t	 wa_turn;	/* the write lock, fairly */
	_Atomic int	 wa_writer_wants;
} wa = { .wa_lock = PTHREAD_MUTEX_INITIALIZER,
	 .wa_turn = PTHREAD_MUTEX_INITIALIZER,
	 .wa_cond = PTHREAD_COND_INITIALIZER };

/*
 * After each of the writer's commits (sqlite3_wal_hook): past
 * WAL_TAIL_PAGES, the writer copies the tail so the WAL can start over.
 */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)arg;
	if (pages >= WAL_TAIL_PAGES)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
		    NULL, NULL);
	return (SQLITE_OK);
}

/*
 * As root, with the writer's connection (writer) open: the checkpointer's
 * own connection, and the writer's hook.
 */
int
wal_open(sqlite3 *writer, const char *path, char **cause)
{
	if (sqlite3_open_v2(path, &wa.wa_db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		if (asprintf(cause, "audit_db %s: %s", path,
		    policy_db_errmsg(path, wa.wa_db)) < 0)
			*cause = NULL;
		sqlite3_close(wa.wa_db);
		wa.wa_db = NULL;
		return (-1);
	}
	/* A rollup step waits for a batch at most; checkpoints for nobody. */
	sqlite3_busy_timeout(wa.wa_db, 500);
	/* Rollups read the hourly tables' pages again and again. */
	sqlite3_exec(wa.wa_db, "PRAGMA cache_size = -16384", NULL, NULL, NULL);
	/*
	 * A read now, as root: SQLite opens the -wal and -shm files at a
	 * connection's first read, and after the privilege drop it could
	 * open them read-only only (they are root's).
	 */
	if (sqlite3_exec(wa.wa_db, "SELECT count(*) FROM chain", NULL, NULL,
	    NULL) != SQLITE_OK) {
		if (asprintf(cause, "audit_db %s: %s", path,
		    sqlite3_errmsg(wa.wa_db)) < 0)
			*cause = NULL;
		sqlite3_close(wa.wa_db);
		wa.wa_db = NULL;
		return (-1);
	}
	sqlite3_wal_hook(writer, wal_hook, NULL);
	return (0);
}

static void *
wal_main(void *arg)
{
	struct timespec	 ts, t0, t1;
	int64_t		 took, rolled = 0;
	int		 logged = 0, done = 0, failing = 0;
	char		*cause = NULL;

	(void)arg;
	pthread_mutex_lock(&wa.wa_lock);
	while (!wa.wa_stop) {
		/* Again at once while there is a backlog of either. */
		if ((done <= 0 || done >= logged) && rolled <= 0) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += WAL_EVERY_MS * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&wa.wa_cond, &wa.wa_lock, &ts);
		}
		if (wa.wa_stop)
			break;
		pthread_mutex_unlock(&wa.wa_lock);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (sqlite3_wal_checkpoint_v2(wa.wa_db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &logged, &done) != SQLITE_OK &&
		    sqlite3_errcode(wa.wa_db) != SQLITE_BUSY)
			log_warnx("audit: checkpoint: %s",
			    sqlite3_errmsg(wa.wa_db));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		took = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000;
		if (took > wa.wa_slowest_ms && took >= WAL_SLOW_MS)
			log_info("audit: a WAL checkpoint took %lld ms (%d of %d "
			    "pages); the writer went on meanwhile",
			    (long long)took, done, logged);
		if (took > wa.wa_slowest_ms)
			wa.wa_slowest_ms = took;
		/* The writer's batch first; then one step. */
		rolled = 0;
		if (wa.wa_writer_wants) {
			usleep(1000);
			pthread_mutex_lock(&wa.wa_lock);
			continue;
		}
		pthread_mutex_lock(&wa.wa_turn);
		rolled = audit_rollup(wa.wa_db, MAINT_ROLLUP_STEP, &cause);
		pthread_mutex_unlock(&wa.wa_turn);
		if (rolled == -1) {
			/*
			 * Busy (the writer): tried again. Anything else is
			 * said once until rollups work again (pruning waits
			 * for them meanwhile).
			 */
			if (sqlite3_errcode(wa.wa_db) != SQLITE_BUSY &&
			    !failing)
				log_warnx("%s; tried again until it works",
				    cause ? cause : "audit rollup");
			failing |= sqlite3_errcode(wa.wa_db) != SQLITE_BUSY;
			free(cause);
			cause = NULL;
			usleep(20000);
		} else if (failing) {
			log_info("audit: rollups work again");
			failing = 0;
		}
		pthread_mutex_lock(&wa.wa_lock);
	}
	pthread_mutex_unlock(&wa.wa_lock);
	return (NULL);
}

int
wal_start(void)
{
	if (wa.wa_db == NULL)
		return (0);
	if (pthread_create(&wa.wa_thread, NULL, wal_main, NULL) != 0)
		return (-1);
	wa.wa_running = 1;
	return (0);
}

/* The writer's turn on the write lock: after one rollup step at most. */
void
maint_writer_begin(void)
{
	wa.wa_writer_wants = 1;
	pthread_mutex_lock(&wa.wa_turn);
}

void
maint_writer_end(void)
{
	pthread_mutex_unlock(&wa.wa_turn);
	wa.wa_writer_wants = 0;
}

/* Stops the thread; the writer's close checkpoints what is left. */
void
wal_stop(void)
{
	if (wa.wa_running) {
		pthread_mutex_lock(&wa.wa_lock);
		wa.wa_stop = 1;
		pthread_cond_signal(&wa.wa_cond);
		pthread_mutex_unlock(&wa.wa_lock);
		pthread_join(wa.wa_thread, NULL);
		wa.wa_running = 0;
	}
	sqlite3_close(wa.wa_db);
	wa.wa_db = NULL;
}
