/*
 * auditd.c: the audit process. The only process that writes audit.db,
 * under an account of its own (audit_user, default socksgw-audit), so the
 * proxy's account, which parses hostile traffic, can neither write the
 * log nor read the signing key.
 *
 * DESIGN. The parent forks auditd before the proxy, with nothing but its
 * channel: auditd opens the database and reads audit.key as root, drops
 * to audit_user, and says AM_READY; the parent then hands the channel's
 * other end to the proxy. From there auditd serves one proxy run
 * (audit_proto.h): it reads records as they come, up to a batch, writes
 * each batch in one transaction with where it ends in the proxy's
 * numbering, and acknowledges it. Nothing the proxy has not seen
 * acknowledged is gone from the proxy, so a SIGKILL of auditd loses
 * nothing: the parent starts a new one, which tells the proxy what is
 * committed, and the proxy resends the rest.
 *
 * auditd ignores SIGTERM: it ends when its channel closes (the proxy has
 * handed over everything, or is gone), after writing what it holds and
 * signing the head. A malformed message ends it with status 2, so the
 * parent starts a fresh one; the proxy's records are still safe.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "policy.h"

#include "base/chan.h"
#include "base/clock.h"
#include "parent/notify.h"
#include "parent/parent.h"

#include "audit.h"
#include "audit_proto.h"
#include "auditd.h"

#define AUDITD_INTERVAL_MS	200
#define AUDITD_RETRY_MS		1000
#define AUDITD_PRUNE_EVERY_MS	10000
#define AUDITD_PRUNE_AGAIN_MS	200	/* while a step removed records */
#define AUDITD_LAST_TRY_MS	30000	/* writing, once the proxy is gone */
#define AUDITD_BUFSIZE		(4 * 1024 * 1024)
#define AUDITD_SHIP_YOUNG_MS	60000	/* a shipper dead sooner: no restart */

static struct {
	int			 ad_fd;
	int			 ad_hello;
	int			 ad_eof, ad_bad;
	uint64_t		 ad_received;	/* last rseq taken */
	uint64_t		 ad_committed;
	uint64_t		 ad_produced;
	struct audit_rec	*ad_batch;
	size_t			 ad_n;
	struct am_usage		 ad_usage[AM_USAGE_MAX];
	size_t			 ad_nusage;
	uint64_t		 ad_useq, ad_usage_committed;
	int			 ad_usage_due;
	int			 ad_healthy, ad_ack_due;
	int			 ad_block;	/* audit_failure block */
	uint64_t		 ad_bad_sids;	/* records left out for them */
	int			 ad_ship_fd;	/* the shipper, or -1 */
	pid_t			 ad_ship_pid;
	int64_t			 ad_ship_started;	/* gw_mono_ms */
	int64_t			 ad_ship_heard;	/* its last status */
	struct ship_status	 ad_ship;
} ad = { .ad_ship_fd = -1 };

static union {
	struct chan_hdr		 h;
	uint64_t		 align;
	unsigned char		 b[CHAN_MAX];
} ad_buf;

static void
auditd_ack(void)
{
	struct am_ack	 a;

	memset(&a, 0, sizeof(a));
	a.ak_records = ad.ad_committed;
	a.ak_usage = ad.ad_usage_committed;
	a.ak_refused = store_refused();
	a.ak_syslog_failed = audit_syslog_failed();
	a.ak_healthy = (uint8_t)ad.ad_healthy;
	a.ak_central = ad.ad_ship;
	ad.ad_ack_due = chan_send(ad.ad_fd, AM_ACK, 0, &a, sizeof(a),
	    MSG_DONTWAIT) == -1 && errno == EAGAIN;
}

static int
auditd_usage_row(const struct am_usage *u, void *arg)
{
	(void)arg;
	/* One row a message: a few hundred users at most ever start up. */
	return (chan_send(ad.ad_fd, AM_USAGE_ROW, 0, u, sizeof(*u), 0));
}

/* A proxy says who it is; a new run's predecessor is wound up first. */
static int
auditd_hello(const struct am_hello *h)
{
	struct store_intake	 in;
	struct am_welcome	 w;

	store_intake(&in);
	if (in.si_gen != h->ah_gen && store_new_generation(h->ah_gen,
	    h->ah_new ? (h->ah_restarted ? "proxy restarted" :
	    "gateway restarted") : NULL) == -1) {
		/* The next auditd tries again: the proxy says hello anew. */
		log_warnx("auditd: cannot wind up the last proxy run; ending");
		return (-1);
	}
	store_intake(&in);
	ad.ad_hello = 1;
	ad.ad_received = ad.ad_committed = in.si_records;
	ad.ad_usage_committed = in.si_usage;
	ad.ad_produced = in.si_produced;
	if (h->ah_new && store_usage_rows((int64_t)time(NULL),
	    auditd_usage_row, NULL) == -1)
		return (-1);
	memset(&w, 0, sizeof(w));
	w.aw_last_sid = in.si_sid_floor;
	w.aw_records = in.si_records;
	w.aw_usage = in.si_usage;
	w.aw_healthy = 1;
	ad.ad_healthy = 1;
	return (chan_send(ad.ad_fd, AM_WELCOME, 0, &w, sizeof(w), 0));
}

/*
 * A record from the proxy is attacker-influenced and the proxy itself
 * may be hostile: every text field ends within its array, and the kinds
 * are the writer's. Returns 0, or -1 (refused).
 */
static int
auditd_clean(struct audit_rec *r)
{
#define TERMINATE(f)	(r->f[sizeof(r->f) - 1] = '\0')
	TERMINATE(ar_user);
	TERMINATE(ar_client);
	TERMINATE(ar_cmd);
	TERMINATE(ar_dst_host);
	TERMINATE(ar_dst_addr);
	TERMINATE(ar_country);
	TERMINATE(ar_reason);
	TERMINATE(ar_close);
	TERMINATE(ar_ident);
#undef TERMINATE
	if (r->ar_type != AR_START && r->ar_type != AR_END &&
	    r->ar_type != AR_WHOLE && r->ar_type != AR_AUTH)
		return (-1);
	r->ar_allow = r->ar_allow != 0;
	/* A protocol the log knows, whatever the proxy sent. */
	r->ar_proto = audit_protocol_of(audit_protocol_name(r->ar_proto));
	return (0);
}

/*
 * Session ids are the proxy's, and a hostile one could plant an id that
 * makes the next runs wrap past 2^53 or collide: this run's ids must lie
 * above every id on record when it began, and below a year ahead of now
 * in the proxy's numbering (start time in seconds, shifted). A log kept
 * from a build that numbered in milliseconds << 20 has ids above that:
 * its runs go on above its floor, by at most 2^40.
 */
static void
auditd_sid_range(uint64_t *floor, uint64_t *ceiling)
{
	struct store_intake	 in;

	store_intake(&in);
	*floor = in.si_sid_floor;
	*ceiling = (uint64_t)(gw_clock_of(CLOCK_REALTIME) / 1000 +
	    366LL * 86400) << GW_SID_SHIFT;
	if (*ceiling <= *floor + ((uint64_t)1 << 40))
		*ceiling = *floor + ((uint64_t)1 << 40);
}

static int
auditd_records(const unsigned char *p, size_t len)
{
	struct am_records	 m;
	struct audit_rec	*r;
	uint64_t		 rseq, floor, ceiling;
	uint32_t		 i;

	if (len < sizeof(m))
		return (-1);
	memcpy(&m, p, sizeof(m));
	if (m.ar_n == 0 || m.ar_n > AM_RECORDS_MAX || len != sizeof(m) +
	    (size_t)m.ar_n * sizeof(*r) || m.ar_first == 0 ||
	    m.ar_first > ad.ad_received + 1)
		return (-1);		/* a gap: records would be lost */
	auditd_sid_range(&floor, &ceiling);
	for (i = 0; i < m.ar_n; i++) {
		rseq = m.ar_first + i;
		if (rseq <= ad.ad_received)
			continue;	/* a resend of what is committed */
		r = &ad.ad_batch[ad.ad_n];
		memcpy(r, p + sizeof(m) + (size_t)i * sizeof(*r), sizeof(*r));
		if (auditd_clean(r) == -1)
			return (-1);
		ad.ad_received = rseq;
		if (r->ar_sid <= floor || r->ar_sid >= ceiling) {
			/* Said at 1, 2, 4, 8...: a hostile proxy floods nothing. */
			ad.ad_bad_sids++;
			if ((ad.ad_bad_sids & (ad.ad_bad_sids - 1)) == 0)
				log_warnx("audit: %llu records with session ids "
				    "outside this proxy run's range (the last "
				    "%llu) left out", (unsigned long long)
				    ad.ad_bad_sids, (unsigned long long)
				    r->ar_sid);
			store_count_refused(1);
			continue;
		}
		ad.ad_n++;
	}
	if (m.ar_produced > ad.ad_produced)
		ad.ad_produced = m.ar_produced;
	return (0);
}

static int
auditd_usage(const unsigned char *p, size_t len)
{
	struct am_usage_hdr	 h;
	uint32_t		 i;

	if (len < sizeof(h))
		return (-1);
	memcpy(&h, p, sizeof(h));
	if (h.uh_n > AM_USAGE_MAX || len != sizeof(h) + (size_t)h.uh_n *
	    sizeof(struct am_usage))
		return (-1);
	if (h.uh_seq <= ad.ad_usage_committed)
		return (0);		/* a resend of what is committed */
	memcpy(ad.ad_usage, p + sizeof(h), (size_t)h.uh_n *
	    sizeof(struct am_usage));
	for (i = 0; i < h.uh_n; i++) {
		ad.ad_usage[i].au_user[sizeof(ad.ad_usage[i].au_user) - 1] =
		    '\0';
		if (ad.ad_usage[i].au_period <= POLICY_PERIOD_NONE ||
		    ad.ad_usage[i].au_period > POLICY_PERIOD_MONTH)
			return (-1);
	}
	ad.ad_nusage = h.uh_n;
	ad.ad_useq = h.uh_seq;
	ad.ad_usage_due = 1;
	return (0);
}

/* Reads what the proxy sent, while the batch has room. */
static void
auditd_read(void)
{
	ssize_t		 len;
	int		 rc;

	while (!ad.ad_eof && !ad.ad_usage_due &&
	    ad.ad_n + AM_RECORDS_MAX <= AUDIT_BATCH) {
		if ((len = chan_recv(ad.ad_fd, &ad_buf.h, ad_buf.b + sizeof(
		    ad_buf.h), sizeof(ad_buf.b) - sizeof(ad_buf.h),
		    MSG_DONTWAIT)) == -1) {
			if (errno == EAGAIN)
				return;
			/*
			 * The proxy closed with an acknowledgement unread: said
			 * once; what it sent before is still to be read.
			 */
			if (errno == ECONNRESET)
				continue;
			if (errno != 0) {
				log_warnx("auditd: the channel: %s",
				    strerror(errno));
				ad.ad_bad = 1;
			}
			ad.ad_eof = 1;
			return;
		}
		switch (ad_buf.h.ch_type) {
		case AM_HELLO:
			rc = -1;
			if (!ad.ad_hello && (size_t)len ==
			    sizeof(struct am_hello)) {
				struct am_hello	 h;

				memcpy(&h, ad_buf.b + sizeof(ad_buf.h),
				    sizeof(h));
				rc = auditd_hello(&h);
			}
			break;
		case AM_RECORDS:
			rc = ad.ad_hello ? auditd_records(ad_buf.b +
			    sizeof(ad_buf.h), (size_t)len) : -1;
			break;
		case AM_USAGE:
			rc = ad.ad_hello ? auditd_usage(ad_buf.b +
			    sizeof(ad_buf.h), (size_t)len) : -1;
			break;
		default:
			rc = -1;
			break;
		}
		if (rc == -1) {
			log_warnx("auditd: a malformed or unexpected message "
			    "(type %u, %zd bytes) from the proxy: ending this "
			    "channel", ad_buf.h.ch_type, len);
			ad.ad_bad = ad.ad_eof = 1;
			return;
		}
	}
}

/*
 * What the shipper says of its progress: passed on to the proxy, and the
 * limit of pruning (nothing the central store lacks goes).
 */
static void
auditd_ship_read(void)
{
	switch (ship_status_read(ad.ad_ship_fd, &ad.ad_ship)) {
	case 0:
		/* Silent too long: stuck on a store that stopped answering. */
		if (ship_watch(ad.ad_ship_pid, ad.ad_ship_heard))
			ad.ad_ship_started = 0;	/* old: auditd restarts */
		break;
	case 1:
		ad.ad_ship_heard = gw_mono_ms();
		ad.ad_ack_due = 1;
		if (ad.ad_ship.ss_known)
			store_ship_limit((int64_t)ad.ad_ship.ss_shipped_seq);
		break;
	case -1:
		/*
		 * It died (it never ends by itself while auditd runs). Only a
		 * root process can open the log for a new one, so auditd ends
		 * as on a malformed message: the parent starts both anew, and
		 * the proxy resends what is not committed. But not in a loop:
		 * a shipper that died young (a store that crashes it at each
		 * connection) stays dead until gatewayd restarts, and the
		 * records wait here, none pruned.
		 */
		ship_stop(ad.ad_ship_pid, ad.ad_ship_fd);	/* reaped */
		ad.ad_ship_fd = -1;
		ad.ad_ship_pid = 0;
		ad.ad_ship.ss_state = SHIP_DOWN;
		ad.ad_ack_due = 1;
		if (gw_mono_ms() - ad.ad_ship_started < AUDITD_SHIP_YOUNG_MS) {
			log_errorx("audit_central: the shipper ended within "
			    "%d s of its start: shipping stops until gatewayd "
			    "restarts; records are kept here, none pruned",
			    AUDITD_SHIP_YOUNG_MS / 1000);
			break;
		}
		log_warnx("audit_central: the shipper ended; auditd ends too, "
		    "so that the parent starts both again (nothing is lost)");
		ad.ad_eof = ad.ad_bad = 1;
		break;
	}
}

/* Writes the batch and the usage that wait; acknowledges what did. */
static void
auditd_write(int64_t now, int64_t *retry_at)
{
	int	 was = ad.ad_healthy;

	/*
	 * Records left out for good (their session ids) are done with too:
	 * unacknowledged, the proxy would hold them, and refuse sessions,
	 * for ever. Resent after a restart, they are left out again.
	 */
	if (ad.ad_n == 0 && ad.ad_received > ad.ad_committed) {
		ad.ad_committed = ad.ad_received;
		ad.ad_ack_due = 1;
	}
	if (now < *retry_at || (ad.ad_n == 0 && !ad.ad_usage_due))
		goto ack;
	/* Its turn on the write lock: a rollup step gives way (maint). */
	maint_writer_begin();
	if (ad.ad_n > 0) {
		if (store_write(ad.ad_batch, ad.ad_n, ad.ad_received,
		    ad.ad_produced) == 0) {
			ad.ad_n = 0;
			ad.ad_committed = ad.ad_received;
			ad.ad_healthy = 1;
			ad.ad_ack_due = 1;
			store_checkpoint(now, 0);
		} else
			ad.ad_healthy = 0;
	}
	if (ad.ad_healthy && ad.ad_usage_due) {
		if (store_usage(ad.ad_usage, ad.ad_nusage, ad.ad_useq,
		    gw_clock_of(CLOCK_REALTIME)) == 0) {
			ad.ad_usage_due = 0;
			ad.ad_usage_committed = ad.ad_useq;
			ad.ad_ack_due = 1;
		} else
			ad.ad_healthy = 0;
	}
	maint_writer_end();
	if (was && !ad.ad_healthy)
		log_warnx("audit: cannot write records; %s until it can",
		    ad.ad_block ? "new sessions are refused" :
		    "serving on, records are kept");
	else if (!was && ad.ad_healthy)
		log_warnx("audit: writing works again");
	if (!ad.ad_healthy)
		*retry_at = now + AUDITD_RETRY_MS;
	if (was != ad.ad_healthy)
		ad.ad_ack_due = 1;
ack:
	if (ad.ad_ack_due && ad.ad_hello && !ad.ad_eof)
		auditd_ack();
}

static int
auditd_loop(void)
{
	struct pollfd	 pfd[2];
	int64_t		 now, retry_at = 0, prune_at = 0;
	int64_t		 given_up = 0;

	if ((ad.ad_batch = calloc(AUDIT_BATCH, sizeof(*ad.ad_batch))) == NULL ||
	    wal_start() == -1)
		fatalx("auditd: out of memory");
	ad.ad_healthy = 1;
	/* Where this run starts from is signed before anything else. */
	store_checkpoint(gw_mono_ms(), 1);
	for (;;) {
		if (!ad.ad_eof) {
			pfd[0].fd = ad.ad_fd;
			pfd[0].events = POLLIN;
			pfd[0].revents = 0;
			pfd[1].fd = ad.ad_ship_fd;	/* -1: ignored */
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			if (poll(pfd, 2, ad.ad_n > 0 || ad.ad_usage_due ?
			    0 : AUDITD_INTERVAL_MS) > 0 && pfd[0].revents != 0)
				auditd_read();
		}
		if (ad.ad_ship_fd != -1)
			auditd_ship_read();
		now = gw_mono_ms();
		auditd_write(now, &retry_at);
		if (ad.ad_n == 0 && now >= prune_at) {
			/* Steps back to back while there is a backlog. */
			int64_t	 took;
			int	 more;

			/*
			 * A backlog is pruned step after step, but the live
			 * records come first: pruning takes at most a fifth
			 * of the writer's time (a step of 20,000 rows on a
			 * large log takes about a second here).
			 */
			maint_writer_begin();
			more = store_prune();
			maint_writer_end();
			took = gw_mono_ms() - now;
			prune_at = now + (more ? AUDITD_PRUNE_AGAIN_MS + 4 * took :
			    AUDITD_PRUNE_EVERY_MS);
		}
		if (ad.ad_n == 0)
			store_checkpoint(now, 0);
		if (!ad.ad_eof)
			continue;
		if (ad.ad_n == 0 && !ad.ad_usage_due)
			break;
		if (given_up == 0)
			given_up = now + AUDITD_LAST_TRY_MS;
		if (now >= given_up) {
			log_warnx("audit: %zu records could not be written "
			    "before auditd ended", ad.ad_n);
			break;
		}
		usleep(AUDITD_INTERVAL_MS * 1000);
	}
	store_checkpoint(gw_mono_ms(), 1);
	ship_stop(ad.ad_ship_pid, ad.ad_ship_fd);
	ad.ad_ship_fd = -1;
	explicit_bzero(ad.ad_batch, AUDIT_BATCH * sizeof(*ad.ad_batch));
	free(ad.ad_batch);
	store_close();
	return (ad.ad_bad ? 2 : 0);
}

/*
 * Forks auditd; *fd gets the proxy's end of its channel. The caller waits
 * for AM_READY there (auditd_wait_ready) before handing it on.
 */
pid_t
auditd_start(const struct conf *c, int *fd, char **cause)
{
	char		*why = NULL;
	int		 pair[2], keep[2];
	pid_t		 pid;
	sigset_t	 none;
	struct privsep_account acct;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) ==
	    -1) {
		if (asprintf(cause, "auditd: socketpair: %s",
		    strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	/* Room for a burst of records while auditd commits. */
	chan_bufsize(pair[0], AUDITD_BUFSIZE);
	chan_bufsize(pair[1], AUDITD_BUFSIZE);
	if ((pid = fork()) == -1) {
		if (asprintf(cause, "auditd: fork: %s", strerror(errno)) < 0)
			*cause = NULL;
		close(pair[0]);
		close(pair[1]);
		return (-1);
	}
	if (pid > 0) {
		close(pair[1]);
		*fd = pair[0];
		return (pid);
	}

	log_init(log_debug_enabled(), "gatewayd[auditd]");
	prctl(PR_SET_NAME, "socksgw-auditd", 0, 0, 0);
	notify_forget();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	close(pair[0]);
	ad.ad_fd = pair[1];
	ad.ad_block = c->c_audit_block;
	/*
	 * No network socket, no policy: its channel, and the runtime lock
	 * (held, never used), so that no second gatewayd starts a second
	 * writer before this one has ended.
	 */
	keep[0] = ad.ad_fd;
	keep[1] = runtime_lock_descriptor();
	privsep_lookup(c->c_path, "audit_user", c->c_audit_user != NULL ?
	    c->c_audit_user : geteuid() == 0 ? GW_AUDIT_USER : NULL, &acct);
	privsep_close_all_but(keep, 2);
	audit_set_node(c->c_node_name);
	/* Before the key is read: the shipper never holds it (audit_ship.c). */
	if (c->c_audit_central != NULL)
		store_ship_limit(0);	/* until the shipper says more */
	if ((ad.ad_ship_pid = ship_start(c, &acct, &ad.ad_ship_fd)) == -1)
		log_warn("audit_central: cannot start the shipper; records "
		    "are kept here");
	else if (ad.ad_ship_pid > 0) {
		ad.ad_ship.ss_state = SHIP_STARTING;
		ad.ad_ship_started = ad.ad_ship_heard = gw_mono_ms();
	}
	if (store_open(c, &why) == -1) {
		log_warnx("%s", why != NULL ? why : "auditd: out of memory");
		_exit(1);
	}
	/* The log is there: the shipper opens it, as root still. */
	if (ad.ad_ship_fd != -1 && send(ad.ad_ship_fd, "r", 1, 0) != 1)
		log_warn("audit_central: the shipper");
	privsep_become(&acct);
	if (chan_send(ad.ad_fd, AM_READY, 0, NULL, 0, 0) == -1)
		_exit(1);
	_exit(auditd_loop());
}

/* The parent's (or a bench's) wait for a new auditd: 0, or -1. */
int
auditd_wait_ready(int fd, char **cause)
{
	struct chan_hdr	 h;
	char		 buf[16];

	if (chan_recv(fd, &h, buf, sizeof(buf), 0) == -1 ||
	    h.ch_type != AM_READY) {
		if (asprintf(cause, "auditd ended before it was ready") < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
}
