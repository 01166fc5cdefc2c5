/*
 * audit.c: the proxy's side of the audit log: the thread that hands the
 * queue's records (audit_queue.c) to auditd (auditd.c), the only process
 * that writes the database, and its start and stop.
 *
 * DESIGN. Workers never wait for the log: they put fixed-size records in
 * a bounded ring and go on. The shipper thread sends them to auditd in
 * order, numbered (rseq), and keeps each until auditd acknowledges that
 * it is committed: the ring holds what is unsent and what is unacked. If
 * auditd dies, the parent starts another and hands its channel here; the
 * shipper says hello, learns what is committed, and resends the rest, so
 * a SIGKILL of auditd loses nothing. A SIGKILL of the proxy loses what
 * was not yet acknowledged (at most the ring); auditd counts what the
 * proxy had said it held, and closes the sessions left open.
 *
 * When records cannot be written (auditd down, its disk full, the ring
 * full), `audit_failure block` refuses new sessions until writing works
 * again. Admission reserves a session's start and close places, so
 * nothing admitted goes unrecorded at any audit_queue; refusals and
 * failed logins take only places nobody reserved, and those that find
 * none become one summary row. `audit_failure allow` serves on and
 * counts, loudly, the records it had to drop.
 *
 * Quota usage goes the same way: every second the shipper takes what
 * users relayed (quota.c) and sends it as a numbered batch, kept until
 * acknowledged. A new proxy's counts come from auditd in its welcome.
 */
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "stat.h"

#include "account/account.h"
#include "base/chan.h"
#include "base/clock.h"
#include "base/stats.h"

#include "audit.h"
#include "audit_int.h"
#include "audit_proto.h"

#define AUDIT_WAKE_MAX		4096	/* records that wake the shipper */
#define AUDIT_INTERVAL_MS	200	/* ... and at least this often */
#define AUDIT_USAGE_EVERY_MS	1000
#define AUDIT_WELCOME_MS	10000	/* a new auditd's answer, at most */
#define AUDIT_STOP_MS		30000	/* at stop, without progress */

/*
 * Session ids, shared with session.c: they count on from the highest
 * auditd has on record, so ids never repeat in the log.
 */
_Atomic uint64_t	 gw_next_sid;

struct audit_state au = { .au_lock = PTHREAD_MUTEX_INITIALIZER, .au_next_fd = -1,
	 .au_efd = -1, .au_fd = -1 };

static int	 audit_send_usage(int);

void
audit_kick(void)
{
	uint64_t	 one = 1;

	if (write(au.au_efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
		log_warn("audit: waking the shipper");
}

/* The channel to auditd --------------------------------------------------- */

static void
audit_channel_lost(const char *why)
{
	if (au.au_fd == -1)
		return;
	close(au.au_fd);
	au.au_fd = -1;
	pthread_mutex_lock(&au.au_lock);
	au.au_sent = 0;			/* unacknowledged: sent again */
	if (au.au_central.ss_state != SHIP_OFF)	/* its shipper went too */
		au.au_central.ss_state = SHIP_DOWN;
	pthread_mutex_unlock(&au.au_lock);
	au.au_healthy = 0;
	log_warnx("audit: auditd is gone (%s): %s until it is back; nothing "
	    "unacknowledged is lost", why, au.au_block ?
	    "new sessions are refused" : "records are kept");
}

/* Counters auditd keeps, as increments of the proxy's own. */
static void
audit_counters(const struct am_ack *a)
{
	if (a->ak_refused > au.au_seen_refused)
		atomic_fetch_add(&au.au_lost, a->ak_refused -
		    au.au_seen_refused);
	if (a->ak_syslog_failed > au.au_seen_syslog)
		STAT_ADD(GW_STAT_SYSLOG_FAILED, a->ak_syslog_failed -
		    au.au_seen_syslog);
	au.au_seen_refused = a->ak_refused;
	au.au_seen_syslog = a->ak_syslog_failed;
	pthread_mutex_lock(&au.au_lock);
	au.au_central = a->ak_central;
	pthread_mutex_unlock(&au.au_lock);
}

/* The audit shipper's last word, for stats and metrics. */
void
audit_central_status(struct ship_status *st)
{
	pthread_mutex_lock(&au.au_lock);
	*st = au.au_central;
	pthread_mutex_unlock(&au.au_lock);
}

/* Forgets what auditd has committed: records up to rseq, usage up to useq. */
static void
audit_committed(uint64_t rseq, uint64_t useq)
{
	size_t	 k;

	pthread_mutex_lock(&au.au_lock);
	while (au.au_len > 0 && au.au_head_rseq <= rseq) {
		explicit_bzero(&au.au_ring[au.au_head], sizeof(*au.au_ring));
		au.au_head = (au.au_head + 1) % au.au_cap;
		au.au_head_rseq++;
		au.au_len--;
		if (au.au_sent > 0)
			au.au_sent--;
	}
	pthread_mutex_unlock(&au.au_lock);
	if (au.au_usage_inflight > 0 && useq >= au.au_useq) {
		k = au.au_usage_inflight;
		memmove(au.au_usage, au.au_usage + k, (au.au_nusage - k) *
		    sizeof(*au.au_usage));
		au.au_nusage -= k;
		au.au_usage_inflight = 0;
	}
}

/*
 * Says hello on a new channel and waits for the welcome: the first one
 * of a proxy run brings its users' quota counts and where session ids
 * go on from. 0, or -1 (the channel is no good).
 */
static int
audit_hello(int fd, int restarted, char **cause)
{
	int			 is_new = !au.au_welcomed;
	uint64_t		 next;
	struct am_hello		 h;
	struct am_welcome	 w;
	struct am_usage		 u;
	struct chan_hdr		 hdr;
	union {
		struct am_welcome	 w;
		struct am_usage		 u;
	}			 buf;
	struct pollfd		 pfd = { .fd = fd, .events = POLLIN };
	int64_t			 until;
	ssize_t			 n;

	memset(&h, 0, sizeof(h));
	h.ah_gen = au.au_gen;
	h.ah_new = (uint8_t)is_new;
	h.ah_restarted = (uint8_t)restarted;
	if (chan_send(fd, AM_HELLO, 0, &h, sizeof(h), 0) == -1)
		goto fail;
	until = gw_mono_ms() + AUDIT_WELCOME_MS;
	for (;;) {
		if (poll(&pfd, 1, (int)(until - gw_clock_of(
		    CLOCK_MONOTONIC))) <= 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if ((n = chan_recv(fd, &hdr, &buf, sizeof(buf), 0)) == -1)
			goto fail;
		if (hdr.ch_type == AM_USAGE_ROW && is_new &&
		    (size_t)n == sizeof(u)) {
			memcpy(&u, &buf, sizeof(u));
			u.au_user[sizeof(u.au_user) - 1] = '\0';
			quota_load_row(&u, time(NULL));
			continue;
		}
		if (hdr.ch_type != AM_WELCOME || (size_t)n != sizeof(w)) {
			errno = EBADMSG;
			goto fail;
		}
		memcpy(&w, &buf, sizeof(w));
		break;
	}
	if (is_new) {
		/* Above every id on record (auditd refuses the others). */
		next = atomic_load(&gw_next_sid);
		while (next <= w.aw_last_sid && !atomic_compare_exchange_weak(
		    &gw_next_sid, &next, w.aw_last_sid + 1))
			;
		au.au_welcomed = 1;
	}
	audit_committed(w.aw_records, w.aw_usage);
	pthread_mutex_lock(&au.au_lock);
	au.au_sent = 0;
	pthread_mutex_unlock(&au.au_lock);
	au.au_usage_inflight = 0;
	au.au_seen_refused = au.au_seen_syslog = 0;
	au.au_healthy = w.aw_healthy;
	return (0);
fail:
	if (asprintf(cause, "audit: no welcome from auditd: %s",
	    errno == 0 ? "it ended" : strerror(errno)) < 0)
		*cause = NULL;
	return (-1);
}

/* Reads auditd's acknowledgements; -1 when the channel ended. */
static int
audit_read_acks(void)
{
	struct chan_hdr	 hdr;
	struct am_ack	 a;
	ssize_t		 n;

	for (;;) {
		if ((n = chan_recv(au.au_fd, &hdr, &a, sizeof(a),
		    MSG_DONTWAIT)) == -1) {
			if (errno == ECONNRESET)
				continue;	/* said once; read on */
			return (errno == EAGAIN ? 0 : -1);
		}
		if (hdr.ch_type != AM_ACK || (size_t)n != sizeof(a)) {
			errno = EBADMSG;
			return (-1);
		}
		audit_committed(a.ak_records, a.ak_usage);
		audit_counters(&a);
		/* The next batch of quota bytes without waiting a second. */
		if (audit_send_usage(0) == -1)
			return (-1);
		if (au.au_healthy != a.ak_healthy)
			log_warnx("audit: %s", a.ak_healthy ?
			    "auditd writes again" : au.au_block ?
			    "auditd cannot write: new sessions are refused" :
			    "auditd cannot write: records are kept");
		au.au_healthy = a.ak_healthy;
	}
}

/*
 * Sends what auditd has not got, in order: 1 when the channel is full
 * (wait for room), 0 when all is sent, -1 when the channel failed.
 */
static int
audit_send_records(void)
{
	static union {
		struct am_records	 h;
		unsigned char		 b[sizeof(struct am_records) +
		    AM_RECORDS_MAX * sizeof(struct audit_rec)];
	}			 m;
	struct am_records	 h;
	size_t			 k, i;

	for (;;) {
		pthread_mutex_lock(&au.au_lock);
		k = au.au_len - au.au_sent;
		if (k > AM_RECORDS_MAX)
			k = AM_RECORDS_MAX;
		for (i = 0; i < k; i++)
			memcpy(m.b + sizeof(h) + i * sizeof(struct audit_rec),
			    &au.au_ring[(au.au_head + au.au_sent + i) %
			    au.au_cap], sizeof(struct audit_rec));
		memset(&h, 0, sizeof(h));
		h.ar_first = au.au_head_rseq + au.au_sent;
		h.ar_produced = au.au_head_rseq + au.au_len - 1;
		h.ar_n = (uint32_t)k;
		au.au_kicked = 0;
		pthread_mutex_unlock(&au.au_lock);
		if (k == 0)
			return (0);
		memcpy(m.b, &h, sizeof(h));
		if (chan_send(au.au_fd, AM_RECORDS, 0, m.b, sizeof(h) + k *
		    sizeof(struct audit_rec), MSG_DONTWAIT) == -1)
			return (errno == EAGAIN ? 1 : -1);
		/* Only the shipper moves the head and au_sent. */
		pthread_mutex_lock(&au.au_lock);
		au.au_sent += k;
		pthread_mutex_unlock(&au.au_lock);
	}
}

/*
 * Sends quota bytes: the next batch of what was taken, else (collect, and
 * all before acknowledged) what users relayed since. Taking only when
 * the last take is acknowledged keeps this bounded: bytes not taken wait
 * in quota.c's counters, one per user and period. 0, or -1.
 */
static int
audit_send_usage(int collect)
{
	struct am_usage_hdr	 h;
	size_t			 k;
	static unsigned char	 m[sizeof(h) + AM_USAGE_MAX *
	    sizeof(struct am_usage)];

	if (au.au_fd == -1 || !au.au_welcomed || au.au_usage_inflight > 0)
		return (0);
	if (au.au_nusage == 0) {
		if (!collect)
			return (0);
		free(au.au_usage);
		au.au_usage = NULL;
		au.au_nusage = quota_collect_usage(&au.au_usage, time(NULL));
		if (au.au_nusage == 0)
			return (0);
	}
	k = au.au_nusage < AM_USAGE_MAX ? au.au_nusage : AM_USAGE_MAX;
	memset(&h, 0, sizeof(h));
	h.uh_seq = au.au_useq + 1;
	h.uh_n = (uint32_t)k;
	memcpy(m, &h, sizeof(h));
	memcpy(m + sizeof(h), au.au_usage, k * sizeof(*au.au_usage));
	if (chan_send(au.au_fd, AM_USAGE, 0, m, sizeof(h) + k *
	    sizeof(*au.au_usage), MSG_DONTWAIT) == -1)
		return (errno == EAGAIN ? 0 : -1);
	au.au_useq++;
	au.au_usage_inflight = k;
	return (0);
}

/* A new channel from the parent: hello, and what it did not commit. */
static void
audit_take_channel(int fd)
{
	char	*cause = NULL;

	audit_channel_lost("replaced");
	au.au_fd = fd;
	if (audit_hello(fd, au.au_restarted, &cause) == -1) {
		log_warnx("%s", cause != NULL ? cause : "audit: no welcome");
		free(cause);
		close(fd);
		au.au_fd = -1;
		return;
	}
	log_info("audit: auditd is there: records are written");
}

static void *
audit_main(void *arg)
{
	struct pollfd	 pfd[2];
	uint64_t	 drain;
	int64_t		 now, usage_at = 0, progress_at = 0;
	size_t		 left, was = 0;
	int		 fd, full = 0, stop;

	(void)arg;
	for (;;) {
		if ((fd = atomic_exchange(&au.au_next_fd, -1)) != -1)
			audit_take_channel(fd);
		now = gw_mono_ms();
		pthread_mutex_lock(&au.au_lock);
		stop = au.au_stop;
		left = au.au_len;
		pthread_mutex_unlock(&au.au_lock);
		if (now >= usage_at || stop) {
			if (audit_send_usage(1) == -1)
				audit_channel_lost(strerror(errno));
			usage_at = now + AUDIT_USAGE_EVERY_MS;
		}
		if (au.au_fd != -1 && au.au_healthy)
			audit_summary();
		if (au.au_fd != -1 && (full = audit_send_records()) == -1)
			audit_channel_lost(strerror(errno));
		if (stop && left == 0 && au.au_nusage == 0 &&
		    quota_unsaved() == 0)
			break;
		if (stop) {
			/*
			 * Waits for auditd (a new one, if it died) while it
			 * takes records; gives up after AUDIT_STOP_MS of none.
			 */
			if (left != was || progress_at == 0)
				progress_at = now;
			was = left;
			if (now - progress_at > AUDIT_STOP_MS) {
				log_warnx("audit: %s for %d s at shutdown: %zu "
				    "records not written", au.au_fd == -1 ?
				    "no auditd" : "auditd took nothing",
				    AUDIT_STOP_MS / 1000, left);
				break;
			}
		}
		pfd[0].fd = au.au_efd;
		pfd[0].events = POLLIN;
		pfd[1].fd = au.au_fd;
		pfd[1].events = POLLIN | (full == 1 ? POLLOUT : 0);
		if (poll(pfd, au.au_fd != -1 ? 2 : 1, AUDIT_INTERVAL_MS) <= 0)
			continue;
		if (pfd[0].revents & POLLIN)
			(void)read(au.au_efd, &drain, sizeof(drain));
		if (au.au_fd != -1 && (pfd[1].revents & (POLLIN | POLLHUP |
		    POLLERR)) && audit_read_acks() == -1)
			audit_channel_lost(errno == 0 ? "it ended" :
			    strerror(errno));
	}
	/* Closing the channel is auditd's cue to sign the head and end. */
	if (au.au_fd != -1)
		close(au.au_fd);
	au.au_fd = -1;
	au.au_done = 1;
	return (NULL);
}

/* Set-up and the end ------------------------------------------------------ */

/*
 * Before the workers start: the queue, and the first hello to auditd on
 * fd (-1: none yet; the parent is starting one), which brings the users'
 * quota counts and where session ids go on from. restarted: the parent
 * started this proxy again. Until auditd welcomes it, the log is
 * unavailable: with audit_failure block, sessions are refused.
 */
int
audit_init(const struct conf *c, int fd, int restarted, char **cause)
{
	char	*why = NULL;

	if (c->c_audit_db == NULL)
		return (0);
	au.au_cap = (size_t)c->c_audit_queue;
	au.au_wake = au.au_cap / 4 < AUDIT_WAKE_MAX ? au.au_cap / 4 :
	    AUDIT_WAKE_MAX;
	if (au.au_wake == 0)
		au.au_wake = 1;
	au.au_block = c->c_audit_block;
	au.au_head_rseq = 1;
	au.au_restarted = restarted;
	if ((au.au_ring = calloc(au.au_cap, sizeof(*au.au_ring))) == NULL ||
	    (au.au_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		if (asprintf(cause, "audit: %s", strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	while (au.au_gen == 0)
		if (getrandom(&au.au_gen, sizeof(au.au_gen), 0) == -1)
			fatal("getrandom");
	au.au_gen &= INT64_MAX;		/* an SQLite integer */
	quota_persisted_on();
	if (fd == -1) {
		log_warnx("audit: no auditd yet: %s until there is",
		    au.au_block ? "sessions are refused" : "records are kept");
		return (0);
	}
	au.au_fd = fd;
	if (audit_hello(fd, restarted, &why) == -1) {
		log_warnx("%s; %s until a new one is there", why != NULL ? why :
		    "audit: no welcome", au.au_block ? "sessions are refused" :
		    "records are kept");
		free(why);
		close(fd);
		au.au_fd = -1;
	}
	return (0);
}

/* A new auditd's channel, from the parent (the main thread). */
void
audit_channel(int fd)
{
	int	 old;

	if (au.au_ring == NULL) {
		close(fd);
		return;
	}
	if ((old = atomic_exchange(&au.au_next_fd, fd)) != -1)
		close(old);
	audit_kick();
}

int
audit_start(char **cause)
{
	if (au.au_ring == NULL)
		return (0);
	if ((errno = pthread_create(&au.au_thread, NULL, audit_main, NULL)) !=
	    0) {
		if (asprintf(cause, "audit: %s", strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	au.au_running = 1;
	return (0);
}

/*
 * After the workers have stopped: the shipper hands over what is queued
 * and ends. The caller may hand it new channels meanwhile (audit_channel)
 * until audit_stopped() says so, then calls audit_stop().
 */
void
audit_stop_begin(void)
{
	if (!au.au_running)
		return;
	pthread_mutex_lock(&au.au_lock);
	au.au_stop = 1;
	pthread_mutex_unlock(&au.au_lock);
	audit_kick();
}

int
audit_stopped(void)
{
	return (!au.au_running || au.au_done);
}

void
audit_stop(void)
{
	audit_stop_begin();
	if (au.au_running) {
		pthread_join(au.au_thread, NULL);
		au.au_running = 0;
	}
	if (au.au_lost > 0)
		log_warnx("audit: %llu records were lost",
		    (unsigned long long)au.au_lost);
	if (au.au_fd != -1)
		close(au.au_fd);
	au.au_fd = -1;
	if (au.au_ring != NULL)
		explicit_bzero(au.au_ring, au.au_cap * sizeof(*au.au_ring));
	free(au.au_ring);
	au.au_ring = NULL;
	free(au.au_usage);
	au.au_usage = NULL;
	if (au.au_efd != -1)
		close(au.au_efd);
	au.au_efd = -1;
}
