/*
 * proxy.c: the proxy process. proxy_main() binds nothing (the parent
 * did, as root): it opens the policy and the control socket, drops root,
 * starts the audit shipper and the workers, and its main thread then
 * handles signals (SIGHUP reloads, SIGTERM and SIGINT stop gracefully)
 * and the parent's messages (a restarted authd's or auditd's channels).
 * The main thread never touches network input.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "conf.h"
#include "log.h"

#include "account/account.h"
#include "base/guard.h"
#include "parent/parent.h"
#include "proxy/control.h"
#include "proxy/proxy.h"
#include "proxy/steer.h"
#include "proxy/worker.h"
#include "relay/relay.h"
#include "session/session.h"
/* Descriptors kept back from max_sessions for listeners, DNS, logs. */
#define GW_FD_RESERVE		64


static pthread_mutex_t	 gw_conf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conf	*gw_conf;	/* the running configuration */
static struct conf	*gw_conf_start;	/* the one the gateway started with */
static struct worker	 gw_workers[GW_MAX_WORKERS];
static struct control_ctx control_ctx;

static int		 gw_nworkers;
static int		 gw_verbose;

/* Before the parent starts: c is the configuration in force. */
void
proxy_init(struct conf *c, int verbose)
{
	gw_conf = c;
	/* What the listeners, threads and children were made from. */
	conf_ref(c);
	gw_conf_start = c;
	gw_nworkers = c->c_workers;
	gw_verbose = verbose;
}

/* A new reference to the running configuration; any thread. */
struct conf *
gw_conf_get(void)
{
	struct conf	*c;

	pthread_mutex_lock(&gw_conf_lock);
	c = gw_conf;
	conf_ref(c);
	pthread_mutex_unlock(&gw_conf_lock);
	return (c);
}

static rlim_t
proxy_raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return (1024);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (rl.rlim_cur);
}

/* Values a configuration leaves to the machine. */
void
proxy_conf_complete(struct conf *c)
{
	rlim_t	 nofile = proxy_raise_nofile(), spare;
	long	 ncpu;

	if (c->c_max_sessions == 0) {
		/* Two descriptors a session. */
		spare = GW_FD_RESERVE;
		c->c_max_sessions = nofile > spare + 2 ?
		    (int)((nofile - spare) / 2) : 1;
		/* No more than the audit queue keeps close records for. */
		if (c->c_audit_db != NULL && c->c_audit_block &&
		    c->c_max_sessions > conf_audit_sessions(c))
			c->c_max_sessions = conf_audit_sessions(c);
	}
	if (c->c_workers == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		c->c_workers = ncpu < 1 ? 1 : ncpu > GW_MAX_WORKERS ?
		    GW_MAX_WORKERS : (int)ncpu;
	}
}

/*
 * Returns NULL, or why the new configuration was refused (to free).
 * restart gets the restart-only keywords that changed ("" when none):
 * what they set up (sockets, threads, accounts, the children) stays as
 * it was until the next start, and the reload says so.
 */
static char *
gw_reload(char *restart, size_t len)
{
	struct conf	*old = gw_conf, *c;
	char		*cause = NULL;
	int		 i;

	log_info("reloading %s", old->c_path);
	if ((c = conf_load(old->c_path, &cause)) == NULL ||
	    conf_check_files(c, &cause) == -1) {
		log_warnx("reload failed, the running configuration stays:\n%s",
		    cause != NULL ? cause : "out of memory");
		conf_unref(c);
		return (cause != NULL ? cause : strdup("out of memory"));
	}
	/*
	 * Sockets, threads, accounts and the children are made once; the
	 * restart-only values stay the started ones until the next start,
	 * and what is derived from them, or checked against them, is so
	 * from the values that will run: `auth pam` kept from the start
	 * beside a reloaded `socks4 yes` would let SOCKS4 clients in with no
	 * login at all.
	 */
	if (conf_restart_needed(gw_conf_start, c, restart, len) > 0)
		log_warnx("reload: %s take effect only after a restart",
		    restart);
	if (conf_keep_restart(gw_conf_start, c) == -1) {
		conf_unref(c);
		return (strdup("out of memory"));
	}
	if (c->c_socks4 && c->c_auth != AUTH_NONE) {
		log_warnx("reload failed, the running configuration stays: "
		    "socks4 yes cannot go with the running auth (a restart "
		    "changes auth)");
		conf_unref(c);
		return (strdup("socks4 yes cannot go with the running auth"));
	}
	proxy_conf_complete(c);
	log_set_verbose(gw_verbose + c->c_log_verbose);
	gwpolicy_reload(c);
	pthread_mutex_lock(&gw_conf_lock);
	gw_conf = c;
	pthread_mutex_unlock(&gw_conf_lock);
	conf_unref(old);
	for (i = 0; i < gw_nworkers; i++)
		worker_request(&gw_workers[i], WORKER_RELOAD);
	log_info("configuration reloaded");
	return (NULL);
}

/*
 * From the policy watcher: every worker judges its sessions again. Waits
 * (a second at most) until all of them use p, so that when the watcher
 * says a policy is in force, it is.
 */
static void
gw_policy_changed(const struct policy *p)
{
	int	 i, waited;

	for (i = 0; i < gw_nworkers; i++)
		worker_request(&gw_workers[i], WORKER_POLICY);
	for (i = 0, waited = 0; i < gw_nworkers && waited < 1000; ) {
		if (atomic_load(&gw_workers[i].w_policy_seen) == p) {
			i++;
			continue;
		}
		usleep(1000);
		waited++;
	}
}

static int	 gw_parent_fd = -1;	/* the proxy's channel to the parent */

/* A word to the parent, which passes it on to systemd (notify.c). */
static void __attribute__((format(printf, 1, 2)))
gw_tell_parent(const char *fmt, ...)
{
	char	 msg[32];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(msg) && send(gw_parent_fd, msg,
	    (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == -1 && errno != EAGAIN)
		log_warn("cannot tell the parent");
}

/* Every few seconds, the sessions open, for systemctl status. */
static void
gw_report_sessions(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	gw_tell_parent(PARENT_MSG_SESSIONS " %u", (unsigned)gw_nsessions);
}

/* Whether steering connections by CPU still spreads them (steer.c). */
static void
gw_steer_check(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	steer_check();
}

static void
gw_signal(evutil_socket_t sig, short what, void *arg)
{
	struct event_base	*base = arg;
	char			*cause, restart[512];

	(void)what;
	switch (sig) {
	case SIGHUP:
		cause = gw_reload(restart, sizeof(restart));
		gw_tell_parent(cause == NULL ? PARENT_MSG_RELOADED :
		    PARENT_MSG_REFUSED);
		free(cause);
		break;
	case SIGTERM:
	case SIGINT:
		log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" :
		    "SIGINT");
		event_base_loopbreak(base);
		break;
	}
}


/*
 * A message from the parent: a restarted authd's channels (one a worker),
 * or a restarted auditd's channel. -1 when the parent is gone.
 */
static int	 gw_workers_gone;	/* the proxy is stopping */

static int
gw_parent_recv(int fd)
{
	char		 buf[CMSG_SPACE(sizeof(int) * GW_MAX_WORKERS)];
	char		 tag[16];
	struct iovec	 iov = { tag, sizeof(tag) };
	struct msghdr	 msg;
	struct cmsghdr	*cm;
	int		 fds[GW_MAX_WORKERS], n = 0, i;
	ssize_t		 got;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = buf;
	msg.msg_controllen = sizeof(buf);
	if ((got = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) <= 0)
		return (got == 0 ? -1 : 0);
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type ==
		    SCM_RIGHTS && n == 0) {
			n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			if (n > GW_MAX_WORKERS)
				n = GW_MAX_WORKERS;
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)n);
		}
	if ((size_t)got == sizeof(PARENT_MSG_AUTHD) && memcmp(tag,
	    PARENT_MSG_AUTHD, sizeof(PARENT_MSG_AUTHD)) == 0 &&
	    n == gw_nworkers && !gw_workers_gone) {
		for (i = 0; i < n; i++)
			worker_set_authd(&gw_workers[i], fds[i]);
		log_info("authd is back: logins are checked again");
		return (0);
	}
	if ((size_t)got == sizeof(PARENT_MSG_AUDITD) && memcmp(tag,
	    PARENT_MSG_AUDITD, sizeof(PARENT_MSG_AUDITD)) == 0 && n == 1) {
		audit_channel(fds[0]);
		return (0);
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	return (0);
}

static void
gw_parent_msg(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	if (gw_parent_recv(fd) == -1) {	/* the parent is gone: so are we */
		log_warnx("the parent process is gone: stopping");
		event_base_loopbreak(arg);
	}
}

/*
 * Every session has its close record queued: the shipper hands them all
 * to auditd, and if auditd dies meanwhile, the parent's new one comes
 * here (the event loop has ended).
 */
static void
gw_audit_drain(int ctl)
{
	struct pollfd	 pfd = { .fd = ctl, .events = POLLIN };
	int		 parent = 1;

	audit_stop_begin();
	while (!audit_stopped()) {
		if (parent && poll(&pfd, 1, 100) > 0 && gw_parent_recv(ctl) ==
		    -1)
			parent = 0;
		if (!parent)
			usleep(100000);
	}
	audit_stop();
}

/*
 * The proxy: everything network-facing, on the listeners the parent
 * bound, with authd's and auditd's channels (struct proxy_args).
 */
int
proxy_main(struct conf *c, struct proxy_args *px)
{
	struct event_base	*base;
	struct event		*sigs[3], *parent_ev, *status_ev, *steer_ev;
	struct timeval		 status_every = { 5, 0 };
	struct timeval		 steer_every = { STEER_PERIOD_S, 0 };
	struct privsep_account	 acct;
	static const int	 signos[3] = { SIGHUP, SIGTERM, SIGINT };
	char			*cause = NULL;
	int			*fds;
	int			 i;

	signal(SIGPIPE, SIG_IGN);
	fds = px->px_listen;
	if (guard_self_init(fds, (size_t)gw_nworkers * c->c_nlisten,
	    &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	metrics_init(c, px->px_metrics);
	if ((c->c_policy_central == NULL && gwpolicy_init(c, &cause) == -1) ||
	    control_init(c, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	privsep_lookup(c->c_path, "user", c->c_user, &acct);
	/*
	 * A fleet node's snapshot is the proxy account's (it replaces it):
	 * made and compiled after the drop, in a folder made now.
	 */
	if (policy_snapshot_prepare(c, acct.pa_set ? acct.pa_gid : getegid(),
	    &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	privsep_become(&acct);
	if (c->c_policy_central != NULL && (policy_follow_open(c,
	    &cause) == -1 || gwpolicy_init(c, &cause) == -1))
		fatalx("%s", cause != NULL ? cause : "out of memory");
	/* auditd's hello: quota counts and session ids before any session. */
	if (audit_init(c, px->px_audit, px->px_restarted, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	/* A fleet's leases read back after the usage they are spent against. */
	if (quota_lease_start(c, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");

	/*
	 * Bandwidth pools are shared by sessions on every worker
	 * (bandwidth.c): libevent must lock what threads share.
	 */
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads failed");
	/* The layers below the session core call it back through these. */
	relay_set_end(session_close);
	if (bandwidth_start(&cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	for (i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(base, signos[i], gw_signal, base);
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) == -1)
			fatalx("cannot handle signal %d", signos[i]);
	}
	if ((parent_ev = event_new(base, px->px_ctl, EV_READ | EV_PERSIST,
	    gw_parent_msg, base)) == NULL || event_add(parent_ev, NULL) == -1)
		fatalx("cannot listen to the parent");
	/* The handlers are in place: signals that waited come now. */
	{
		sigset_t	 set;

		sigemptyset(&set);
		for (i = 0; i < 3; i++)
			sigaddset(&set, signos[i]);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
	}
	for (i = 0; i < gw_nworkers; i++) {
		if (worker_init(&gw_workers[i], i, c,
		    fds + (size_t)i * c->c_nlisten, c->c_nlisten, px->px_auth[i],
		    &cause) == -1)
			fatalx("%s", cause != NULL ? cause : "out of memory");
	}
	for (i = 0; i < gw_nworkers; i++)
		if ((errno = worker_start(&gw_workers[i])) != 0)
			fatal("worker %d: pthread_create", i);
	steer_start(c, gw_workers, gw_nworkers, fds, c->c_nlisten);
	control_ctx.cx_workers = gw_workers;
	control_ctx.cx_nworkers = gw_nworkers;
	control_ctx.cx_reload = gw_reload;
	if (audit_start(&cause) == -1 ||
	    gwpolicy_watch(gw_policy_changed, &cause) == -1 ||
	    policy_follow_start(c, &cause) == -1 ||
	    control_start(base, &control_ctx, &cause) == -1 ||
	    metrics_start(base, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	for (i = 0; i < (int)c->c_nlisten; i++)
		log_info("listening on %s", c->c_listen[i].cl_text);
	log_info("gatewayd %s ready: %d workers, max_sessions %d, auth %s%s, "
	    "SOCKS5 CONNECT, BIND and UDP ASSOCIATE, SOCKS4/4a %s, audit %s",
	    SOCKSGW_VERSION, gw_nworkers, c->c_max_sessions,
	    c->c_auth == AUTH_NONE ? "none" : (c->c_auth & AUTH_GSSAPI) ?
	    ((c->c_auth & AUTH_PAM) ? "pam gssapi, service " :
	    "gssapi, service ") : "pam, service ",
	    c->c_auth == AUTH_NONE ? "" : (c->c_auth & AUTH_GSSAPI) ?
	    c->c_krb5_service : c->c_pam_service,
	    c->c_socks4 ? "enabled" : "disabled (socks4 no)",
	    c->c_audit_db ? c->c_audit_db : "off");
	gw_parent_fd = px->px_ctl;
	gw_tell_parent(PARENT_MSG_READY);
	if ((status_ev = event_new(base, -1, EV_PERSIST, gw_report_sessions,
	    NULL)) == NULL || event_add(status_ev, &status_every) == -1)
		fatalx("cannot report sessions to the parent");
	if ((steer_ev = event_new(base, -1, EV_PERSIST, gw_steer_check,
	    NULL)) == NULL || event_add(steer_ev, &steer_every) == -1)
		fatalx("cannot watch the workers' share of connections");

	event_base_dispatch(base);
	control_stop();
	metrics_stop();

	for (i = 0; i < gw_nworkers; i++)
		worker_request(&gw_workers[i], WORKER_STOP);
	for (i = 0; i < gw_nworkers; i++) {
		worker_join(&gw_workers[i]);
		worker_free(&gw_workers[i]);
	}
	/* A restarted authd's channels that come now are closed, not used. */
	gw_workers_gone = 1;
	bandwidth_stop();
	gw_audit_drain(px->px_ctl);
	quota_lease_stop();
	policy_follow_stop();
	gwpolicy_stop();
	for (i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_free(parent_ev);
	event_free(status_ev);
	event_free(steer_ev);
	close(px->px_ctl);
	event_base_free(base);
	guard_self_free();
	log_info("stopped");
	conf_unref(gw_conf);
	conf_unref(gw_conf_start);
	return (0);
}

