/*
 * authd.c: the authentication process.
 *
 * DESIGN. PAM modules block (network round trips to LDAP, deliberate
 * delays after a failure) and pam_unix needs to read /etc/shadow, so PAM
 * runs neither on an event loop nor in the unprivileged proxy. gatewayd
 * forks this process while still root; it keeps root, has no network
 * socket, and talks to each proxy worker over its own SOCK_SEQPACKET
 * socketpair: one auth_request in, one auth_reply out, keyed by session id.
 * auth_workers threads take requests and run PAM.
 *
 * Logins do not go to PAM in the order they come: authq.c queues them,
 * counts failures per (user, client prefix), per client prefix and per
 * user, locks out, delays, and hands a free PAM thread the login whose
 * client has the cleanest record. Idle PAM threads read the channels into
 * that queue themselves, so an idle authd costs a login no extra
 * hand-off. authd_pam.c checks a login (PAM, its cache, the groups);
 * authd_gss.c a Kerberos token (GSS-API, then PAM's account check).
 * Passwords are wiped as soon as they are checked, and when a login
 * leaves the queue unchecked.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

#include "base/chan.h"
#include "base/clock.h"
#include "parent/notify.h"
#include "parent/parent.h"

#include "auth.h"
#include "authq.h"

struct authd_channels {
	int			 ac_fds[GW_MAX_WORKERS];	/* -1: closed */
	int			 ac_n;
};

static struct {
	int			 a_lockout;
	int			 a_gss;		/* auth gssapi: a keytab */
	pthread_mutex_t		 a_lock;	/* channels, queue */
	int			 a_wake[2];	/* the queue may have work */
	int			 a_stop;
	struct authq		*a_q;
	struct authd_channels	*a_ch;
} authd;

const char *
auth_status_str(enum auth_status st)
{
	switch (st) {
	case AUTH_OK:
		return ("ok");
	case AUTH_FAILED:
		return ("authentication failed");
	case AUTH_REFUSED:
		return ("account refused");
	case AUTH_LOCKED:
		return ("locked out");
	case AUTH_BUSY:
		return ("authd busy");
	case AUTH_GONE:
		return ("authd unavailable");
	default:
		return ("authentication error");
	}
}

/* Appends to the reply's message: the lock-out adds to the reason. */
static void __attribute__((format(printf, 2, 3)))
authd_note(struct auth_reply *rep, const char *fmt, ...)
{
	size_t	 n = strlen(rep->ap_msg);
	va_list	 ap;

	if (n > 0 && n + 2 < sizeof(rep->ap_msg)) {
		memcpy(rep->ap_msg + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(rep->ap_msg + n, sizeof(rep->ap_msg) - n, fmt, ap);
	va_end(ap);
}

static void
authd_reply(int channel, const struct auth_reply *rep)
{
	int	 fd;

	pthread_mutex_lock(&authd.a_lock);
	fd = authd.a_ch->ac_fds[channel];
	pthread_mutex_unlock(&authd.a_lock);
	/* One message per send: concurrent replies never mix. */
	if (fd != -1 && chan_send(fd, AUTH_MSG_RESULT, rep->ap_sid, rep,
	    AUTH_REPLY_LEN(rep), 0) == -1 && errno != EPIPE)
		log_warn("authd: send");
}

/* Lets one thread waiting in poll() look at the queue again. */
static void
authd_wake(void)
{
	const char	 byte = 0;

	if (write(authd.a_wake[1], &byte, 1) == -1 && errno != EAGAIN)
		log_warn("authd: wake");
}

/* Queues one login read from channel i; refuses it if there is no room. */
static void
authd_queue(struct auth_request *req, int i)
{
	struct auth_reply	 rep;
	struct authq_item	*evicted;
	const struct auth_request *er;
	int			 r, locked, ech = -1;

	req->ar_user[sizeof(req->ar_user) - 1] = '\0';
	req->ar_pass[sizeof(req->ar_pass) - 1] = '\0';
	req->ar_client[sizeof(req->ar_client) - 1] = '\0';
	memset(&rep, 0, sizeof(rep));
	if (req->ar_toklen > 0 && !authd.a_gss) {
		/* Kerberos is not configured: nothing to check it with. */
		rep.ap_sid = req->ar_sid;
		rep.ap_status = AUTH_FAILED;
		snprintf(rep.ap_msg, sizeof(rep.ap_msg), "Kerberos is not "
		    "configured (auth gssapi)");
		authd_reply(i, &rep);
		explicit_bzero(req, AUTH_REQUEST_LEN(req));
		return;
	}
	pthread_mutex_lock(&authd.a_lock);
	r = authq_push(authd.a_q, req, i, gw_mono_ms(), &evicted);
	if (evicted != NULL) {
		/* Its place went to a client holding fewer. */
		er = authq_request(evicted, &ech);
		rep.ap_sid = er->ar_sid;
		authq_done(authd.a_q, evicted, 0, AUTH_BUSY, gw_mono_ms(),
		    &locked);
	}
	pthread_mutex_unlock(&authd.a_lock);
	if (evicted != NULL) {
		rep.ap_status = AUTH_BUSY;
		snprintf(rep.ap_msg, sizeof(rep.ap_msg), "its client holds "
		    "the most waiting logins");
		authd_reply(ech, &rep);
	}
	if (r != AUTHQ_QUEUED) {
		memset(&rep, 0, sizeof(rep));
		rep.ap_sid = req->ar_sid;
		rep.ap_status = AUTH_BUSY;
		snprintf(rep.ap_msg, sizeof(rep.ap_msg), "no room in authd's "
		    "queue for this client");
		authd_reply(i, &rep);
	}
	explicit_bzero(req, AUTH_REQUEST_LEN(req));
}

/*
 * Whether a message read from a worker is a login: a password, or a
 * token as long as it says, for the session its header names.
 */
static int
authd_valid(const struct chan_hdr *hdr, const struct auth_request *req,
    ssize_t n)
{
	size_t	 fixed = offsetof(struct auth_request, ar_token);

	if (n < (ssize_t)fixed || hdr->ch_sid != req->ar_sid)
		return (0);
	if (hdr->ch_type == AUTH_MSG_PASSWORD)
		return ((size_t)n == fixed && req->ar_toklen == 0 &&
		    req->ar_keep == 0);
	return (hdr->ch_type == AUTH_MSG_TOKEN && req->ar_toklen > 0 &&
	    req->ar_keep <= 1 &&
	    req->ar_toklen <= AUTH_TOKEN_MAX &&
	    (size_t)n == fixed + req->ar_toklen);
}

/* Reads every login waiting on the channels poll found readable. */
static void
authd_take(struct authd_channels *ch, const struct pollfd *pfd)
{
	struct auth_request	 req;
	struct chan_hdr		 hdr;
	ssize_t			 n;
	int			 i, k;

	for (i = 0; i < ch->ac_n; i++) {
		if (pfd[i].fd == -1 || pfd[i].revents == 0)
			continue;
		/* Until empty (bounded): the queue decides, not the socket. */
		for (k = 0; k < AUTHQ_PENDING_MAX; k++) {
			n = chan_recv(pfd[i].fd, &hdr, &req, sizeof(req),
			    MSG_DONTWAIT);
			if (n == -1 && errno == EAGAIN)
				break;
			if (!authd_valid(&hdr, &req, n)) {
				/* EOF or a broken message: the worker is gone. */
				explicit_bzero(&req, sizeof(req));
				pthread_mutex_lock(&authd.a_lock);
				if (ch->ac_fds[i] == pfd[i].fd) {
					ch->ac_fds[i] = -1;
					shutdown(pfd[i].fd, SHUT_RDWR);
				}
				pthread_mutex_unlock(&authd.a_lock);
				break;
			}
			authd_queue(&req, i);
		}
	}
}

/*
 * The channels (and the wake pipe) in a PAM thread's own epoll set, each
 * with EPOLLEXCLUSIVE: a login wakes one idle thread, not all of them.
 * (With poll() every idle thread woke for every login and all but one
 * found nothing: 2.6 wake-ups of authd a login at 32 clients.) A channel
 * that ended (-1) leaves the set, or its EOF would wake threads forever.
 */
static void
authd_follow(int efd, int *reg, const struct pollfd *pfd, int n)
{
	struct epoll_event	 ev;
	int			 i;

	for (i = 0; i < n; i++) {
		if (reg[i] == pfd[i].fd)
			continue;
		if (reg[i] != -1)
			epoll_ctl(efd, EPOLL_CTL_DEL, reg[i], NULL);
		reg[i] = -1;
		if (pfd[i].fd == -1)
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLEXCLUSIVE;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(efd, EPOLL_CTL_ADD, pfd[i].fd, &ev) == -1)
			fatal("authd: epoll_ctl");
		reg[i] = pfd[i].fd;
	}
}

/*
 * A PAM thread. Idle threads wait on every channel (and on the wake
 * pipe), one of them woken for each login, so a login that finds the
 * queue empty goes straight to the thread that read it, with no hand-off
 * in between; what it reads goes through the queue all the same, which
 * decides what runs next: a login to ask PAM, one to refuse at once
 * (locked out, or waited too long), or nothing yet. Ends when every
 * channel is closed.
 */
static void *
authd_worker(void *arg)
{
	struct authd_channels		*ch = arg;
	struct pollfd			 pfd[GW_MAX_WORKERS + 1];
	struct epoll_event		 evs[GW_MAX_WORKERS + 1];
	struct authq_item		*it;
	const struct auth_request	*r;
	struct auth_request		 req;
	struct auth_reply		 rep;
	struct timespec			 t0, t1;
	int64_t				 wait;
	int				 what, channel, locked, i, open;
	int				 token, efd, n;
	int				 reg[GW_MAX_WORKERS];
	char				 byte;

	if ((efd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("authd: epoll_create1");
	for (i = 0; i < GW_MAX_WORKERS; i++)
		reg[i] = -1;
	memset(&evs[0], 0, sizeof(evs[0]));
	evs[0].events = EPOLLIN | EPOLLEXCLUSIVE;
	evs[0].data.u32 = GW_MAX_WORKERS;	/* the wake pipe */
	if (epoll_ctl(efd, EPOLL_CTL_ADD, authd.a_wake[0], &evs[0]) == -1)
		fatal("authd: epoll_ctl");
	for (;;) {
		pthread_mutex_lock(&authd.a_lock);
		for (i = open = 0; i < ch->ac_n; i++) {
			pfd[i].fd = ch->ac_fds[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			open += ch->ac_fds[i] != -1;
		}
		pthread_mutex_unlock(&authd.a_lock);
		authd_follow(efd, reg, pfd, ch->ac_n);
		/*
		 * What has come waits in the queue, not in the sockets: the
		 * queue can only choose among the logins it holds.
		 */
		if (poll(pfd, (nfds_t)ch->ac_n, 0) > 0)
			authd_take(ch, pfd);
		pthread_mutex_lock(&authd.a_lock);
		what = authd.a_stop ? AUTHQ_NONE : authq_next(authd.a_q,
		    gw_mono_ms(), &it, &wait);
		for (i = 0; i < ch->ac_n; i++)
			pfd[i].revents = 0;
		if (open == 0 && !authd.a_stop) {
			authd.a_stop = 1;	/* the proxy is gone */
			for (i = 0; i < 64; i++)
				authd_wake();
		}
		pthread_mutex_unlock(&authd.a_lock);
		if (authd.a_stop) {
			close(efd);
			return (NULL);
		}
		if (what == AUTHQ_NONE) {
			if ((n = epoll_wait(efd, evs, GW_MAX_WORKERS + 1,
			    (int)wait)) == -1) {
				if (errno == EINTR)
					continue;
				fatal("authd: epoll_wait");
			}
			for (i = 0; i < n; i++) {
				if (evs[i].data.u32 < (uint32_t)ch->ac_n)
					pfd[evs[i].data.u32].revents = POLLIN;
				else if (evs[i].data.u32 == GW_MAX_WORKERS &&
				    read(authd.a_wake[0], &byte, 1) == -1 &&
				    errno != EAGAIN)
					fatal("authd: wake");
			}
			authd_take(ch, pfd);
			continue;
		}

		/*
		 * This thread is busy from here on, maybe for long (PAM): a
		 * login still queued (one it read along, or one whose delay
		 * only this thread's timeout would have ended) goes to a
		 * sleeping thread. EPOLLEXCLUSIVE wakes no other by itself.
		 */
		pthread_mutex_lock(&authd.a_lock);
		i = authq_pending(authd.a_q) > 0;
		pthread_mutex_unlock(&authd.a_lock);
		if (i)
			authd_wake();
		r = authq_request(it, &channel);
		token = r->ar_toklen > 0;
		memset(&rep, 0, offsetof(struct auth_reply, ap_data));
		rep.ap_sid = r->ar_sid;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (what == AUTHQ_RUN) {
			memcpy(&req, r, AUTH_REQUEST_LEN(r));
			if (token)
				authd_gss_check(&req, &rep);
			else
				authd_pam_check(&req, &rep);
			explicit_bzero(&req, AUTH_REQUEST_LEN(r));
		} else if (what == AUTHQ_LOCKED)
			rep.ap_status = AUTH_LOCKED;
		else {
			rep.ap_status = AUTH_BUSY;
			snprintf(rep.ap_msg, sizeof(rep.ap_msg), "waited too "
			    "long for a PAM thread");
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		rep.ap_usec = (uint32_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000);

		pthread_mutex_lock(&authd.a_lock);
		authq_done(authd.a_q, it, what == AUTHQ_RUN,
		    (enum auth_status)rep.ap_status, gw_mono_ms(), &locked);
		pthread_mutex_unlock(&authd.a_lock);
		/* An answer can let a waiting login go: one sleeper looks. */
		pthread_mutex_lock(&authd.a_lock);
		i = authq_pending(authd.a_q) > 0;
		pthread_mutex_unlock(&authd.a_lock);
		if (i)
			authd_wake();
		if (locked & AUTHQ_LOCK_PAIR)
			authd_note(&rep, "%s locked out for %ds from this "
			    "client", token ? "Kerberos logins" : "user",
			    authd.a_lockout);
		if (locked & AUTHQ_LOCK_PREFIX)
			authd_note(&rep, "client locked out for %ds",
			    authd.a_lockout);
		authd_reply(channel, &rep);
		/* An exported context holds the session's keys. */
		explicit_bzero(rep.ap_data, rep.ap_outlen + rep.ap_ctxlen);
	}
}

/* A start that failed leaves no descriptor behind (the parent retries). */
static void
authd_close_pairs(int pair[][2], int n)
{
	while (n-- > 0) {
		close(pair[n][0]);
		close(pair[n][1]);
	}
}

pid_t
authd_start(const struct conf *c, int *fds, int nworkers, char **cause)
{
	int		 k;
	int		 pair[GW_MAX_WORKERS][2], i;
	static struct authd_channels ch;
	int		 sndbuf = 4 * 1024 * 1024;
	pthread_t	 t[64];
	pid_t		 pid;

	for (i = 0; i < nworkers; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    pair[i]) == -1) {
			if (asprintf(cause, "authd: socketpair: %s",
			    strerror(errno)) < 0)
				*cause = NULL;
			authd_close_pairs(pair, i);
			return (-1);
		}
		/*
		 * Room for a burst of logins in flight (authd reads them into
		 * its queue at once); as root, past wmem_max.
		 */
		for (k = 0; k < 2; k++)
			chan_bufsize(pair[i][k], sndbuf);
	}
	if ((pid = fork()) == -1) {
		if (asprintf(cause, "authd: fork: %s", strerror(errno)) < 0)
			*cause = NULL;
		authd_close_pairs(pair, nworkers);
		return (-1);
	}
	if (pid > 0) {
		for (i = 0; i < nworkers; i++) {
			close(pair[i][1]);
			fds[i] = pair[i][0];
		}
		return (pid);
	}

	/* The child: PAM only. It ends with its parent. */
	log_init(log_debug_enabled(), "gatewayd[authd]");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	prctl(PR_SET_NAME, "socksgw-authd", 0, 0, 0);
	notify_forget();
	{
		sigset_t	 none;	/* the parent blocks what it supervises */

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nworkers; i++) {
		close(pair[i][0]);
		fds[i] = pair[i][1];
	}
	/* No network socket, no database, no lock: its channels only. */
	privsep_close_all_but(fds, nworkers);
	memset(&authd, 0, sizeof(authd));
	authd.a_lockout = c->c_auth_lockout;
	authd_pam_init(c->c_pam_service, c->c_auth_cache_ttl);
	if (c->c_auth & AUTH_GSSAPI) {
		char	*why = NULL;

		/* main.c checked the keytab at start; it may have gone since. */
		if (authd_gss_init(c->c_krb5_keytab, c->c_krb5_service,
		    c->c_krb5_rcache, (uid_t)c->c_krb5_min_uid, &why) == -1)
			fatalx("authd: %s", why != NULL ? why : "Kerberos");
		authd.a_gss = 1;
	}
	{
		struct authq_limits	 lim;

		memset(&lim, 0, sizeof(lim));
		lim.al_pair_limit = c->c_auth_fail_limit;
		lim.al_prefix_limit = c->c_auth_client_fail_limit;
		lim.al_window = c->c_auth_fail_window;
		lim.al_lockout = c->c_auth_lockout;
		lim.al_inflight = c->c_auth_client_inflight;
		lim.al_queue = c->c_auth_client_queue;
		lim.al_prefix6 = c->c_auth_ipv6_prefix;
		lim.al_expire = c->c_handshake_timeout;
		if ((authd.a_q = authq_new(&lim)) == NULL)
			fatalx("authd: out of memory");
		if (pipe2(authd.a_wake, O_NONBLOCK | O_CLOEXEC) == -1)
			fatal("authd: pipe");
	}
	pthread_mutex_init(&authd.a_lock, NULL);
	for (i = 0; i < nworkers; i++)
		ch.ac_fds[i] = fds[i];
	ch.ac_n = nworkers;
	authd.a_ch = &ch;
	for (i = 0; i < c->c_auth_workers && i < 64; i++)
		if (pthread_create(&t[i], NULL, authd_worker, &ch) != 0)
			fatalx("authd: cannot start its workers");
	/* Done when every worker's channel is closed. */
	while (--i >= 0)
		pthread_join(t[i], NULL);
	_exit(0);
}
