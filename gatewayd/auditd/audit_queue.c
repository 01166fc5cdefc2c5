/*
 * audit_queue.c: the ring every worker puts audit records in (audit.c's
 * shipper takes them to auditd). Admission reserves a session's start and
 * close places under audit_failure block, so nothing admitted goes
 * unrecorded; refusals and failed logins take only places nobody
 * reserved, and those that find none become one summary row.
 */
#include <sys/types.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#include "base/clock.h"
#include "session/session.h"

#include "audit.h"
#include "audit_int.h"

/*
 * Whether a new session may start. With audit_failure block, admission
 * reserves a place in the queue for the session's start and close
 * records, so they can always be queued: nothing that was admitted goes
 * unrecorded, at any audit_queue. max_sessions is kept within the queue
 * (conf.c), so the reserve is never what refuses a session; auditd being
 * down, or unable to write, is.
 */
int
audit_admit(struct session *s)
{
	int	 ok;

	if (au.au_ring == NULL || !au.au_block)
		return (1);
	pthread_mutex_lock(&au.au_lock);
	ok = au.au_healthy && au.au_len + au.au_reserved + 1 < au.au_cap;
	if (ok) {
		au.au_reserved += 2;
		s->s_audit_reserved = 2;
	}
	pthread_mutex_unlock(&au.au_lock);
	return (ok);
}

/* Records that audit_failure allow let go unwritten, since the start. */
uint64_t
audit_records_lost(void)
{
	return (atomic_load(&au.au_lost));
}

size_t
audit_queue_depth(void)
{
	size_t	 n;

	pthread_mutex_lock(&au.au_lock);
	n = au.au_len;
	pthread_mutex_unlock(&au.au_lock);
	return (n);
}

int
audit_enabled(void)
{
	return (au.au_ring != NULL);
}

/* Under au_lock: appends r; wakes the shipper once the queue fills. */
static void
audit_append(const struct audit_rec *r)
{
	au.au_ring[(au.au_head + au.au_len) % au.au_cap] = *r;
	if (++au.au_len >= au.au_wake && !au.au_kicked) {
		au.au_kicked = 1;
		audit_kick();
	}
}

/*
 * Queues r: with reserved, in the place its session's admission kept
 * (always room); otherwise only where no reserved place is needed, or it
 * is counted for a summary row (audit_failure block) or as lost (allow).
 * Refusals and failed logins so never take a close record's place.
 */
void
audit_push(const struct audit_rec *r, int reserved)
{
	pthread_mutex_lock(&au.au_lock);
	if (reserved && au.au_reserved > 0) {
		au.au_reserved--;		/* one of the session's places */
		audit_append(r);
		pthread_mutex_unlock(&au.au_lock);
		return;
	}
	if (au.au_len + au.au_reserved < au.au_cap) {
		audit_append(r);
		pthread_mutex_unlock(&au.au_lock);
		return;
	}
	if (au.au_block) {
		if (au.au_summarised++ == 0)
			au.au_summary_from = r->ar_end_ms;
		pthread_mutex_unlock(&au.au_lock);
		return;
	}
	pthread_mutex_unlock(&au.au_lock);
	if (atomic_fetch_add(&au.au_lost, 1) % 1000 == 0)
		log_warnx("audit: queue full, records lost so far: %llu",
		    (unsigned long long)au.au_lost);
}

/* Queues r if there is room beyond the reserve: 0, or -1 (the bench). */
int
audit_offer(const struct audit_rec *r)
{
	int	 ok;

	pthread_mutex_lock(&au.au_lock);
	if ((ok = au.au_len + au.au_reserved < au.au_cap))
		audit_append(r);
	pthread_mutex_unlock(&au.au_lock);
	return (ok ? 0 : -1);
}

/* A session that was admitted but writes no close record gives it back. */
void
audit_release(struct session *s)
{
	if (!s->s_audit_reserved)
		return;
	pthread_mutex_lock(&au.au_lock);
	au.au_reserved -= s->s_audit_reserved;
	pthread_mutex_unlock(&au.au_lock);
	s->s_audit_reserved = 0;
}

/*
 * The records that found no room one by one (refusals, failed logins
 * while the queue was full) become one row, so the log says how many and
 * when: kind session, verdict deny, close reason "summary". Queued when
 * there is room again.
 */
void
audit_summary(void)
{
	struct audit_rec	 r;

	pthread_mutex_lock(&au.au_lock);
	if (au.au_summarised == 0 || au.au_len + au.au_reserved >=
	    au.au_cap) {
		pthread_mutex_unlock(&au.au_lock);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.ar_type = AR_WHOLE;
	r.ar_sid = atomic_fetch_add(&gw_next_sid, 1);
	r.ar_start_ms = au.au_summary_from;
	r.ar_end_ms = gw_clock_of(CLOCK_REALTIME);
	r.ar_proto = AUDIT_PROTO_SOCKS5;
	snprintf(r.ar_client, sizeof(r.ar_client), "-");
	snprintf(r.ar_reason, sizeof(r.ar_reason), "%llu refusals and "
	    "failed logins not written one by one: the audit queue was full",
	    (unsigned long long)au.au_summarised);
	snprintf(r.ar_close, sizeof(r.ar_close), "summary");
	au.au_summarised = 0;
	audit_append(&r);
	pthread_mutex_unlock(&au.au_lock);
	log_warnx("audit: %s", r.ar_reason);
}
