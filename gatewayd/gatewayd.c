/*
 * gatewayd.c: main() reads the configuration, takes the runtime lock and
 * hands over to the privileged parent (parent.c), which forks authd and
 * the proxy. gw_proxy_main() is the proxy: it binds the listening sockets,
 * opens the databases, drops root, starts the workers, and its main
 * thread then handles signals (SIGHUP reloads, SIGTERM and SIGINT stop
 * gracefully) and the parent's messages (a restarted authd's channels).
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

#include "gatewayd.h"

/* Descriptors kept back from max_sessions for listeners, DNS, logs. */
#define GW_FD_RESERVE		64

_Atomic unsigned	 gw_nsessions;
/* Session ids: unique across restarts too, as the audit log needs. */

static pthread_mutex_t	 gw_conf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conf	*gw_conf;	/* the running configuration */
static struct conf	*gw_conf_start;	/* the one the gateway started with */
static struct worker	 gw_workers[GW_MAX_WORKERS];
static struct control_ctx control_ctx;

static proxy_main_fn	 gw_proxy_main;
static int		 gw_nworkers;
static int		 gw_verbose;

static void __attribute__((noreturn))
usage(FILE *f, int code)
{
	fprintf(f, "usage: gatewayd [-nvV] [-c FILE]\n"
	    "  -c FILE    the configuration (default %s)\n"
	    "  -n         check the configuration and the files it names, "
	    "then exit\n"
	    "  -v         debug logging (more -v, more detail)\n"
	    "  -V         print the version\n"
	    "  --help     this text; man gatewayd and man gatewayd.conf say "
	    "more\n", GW_DEFAULT_CONF);
	exit(code);
}

static const struct option gw_long_options[] = {
	{ "help",	no_argument,	NULL,	'h' },
	{ "version",	no_argument,	NULL,	'V' },
	{ NULL,		0,		NULL,	0 },
};

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
gw_raise_nofile(void)
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
static void
gw_conf_complete(struct conf *c, rlim_t nofile)
{
	long	 ncpu;

	rlim_t	 spare;

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
 * For -n: the accounts and group the configuration names exist, so that
 * a typo fails the check rather than the start. auditd's default account
 * counts only where it would be used (started as root, with an audit log).
 */
static int
gw_check_accounts(const struct conf *c, char **cause)
{
	const char	*audit_user = c->c_audit_user;

	if (audit_user == NULL && c->c_audit_db != NULL && geteuid() == 0)
		audit_user = GW_AUDIT_USER;
	if (c->c_user != NULL && getpwnam(c->c_user) == NULL) {
		if (asprintf(cause, "%s: user %s: no such account", c->c_path,
		    c->c_user) < 0)
			*cause = NULL;
		return (-1);
	}
	if (audit_user != NULL && getpwnam(audit_user) == NULL) {
		if (asprintf(cause, "%s: audit_user %s: no such account%s",
		    c->c_path, audit_user, c->c_audit_user == NULL ? " (the "
		    "default; the package creates it)" : "") < 0)
			*cause = NULL;
		return (-1);
	}
	if (c->c_control_group != NULL && getgrnam(c->c_control_group) ==
	    NULL) {
		if (asprintf(cause, "%s: control_group %s: no such group",
		    c->c_path, c->c_control_group) < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
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
	gw_conf_complete(c, gw_raise_nofile());
	/* Sockets, threads, accounts and the children are made once. */
	if (conf_restart_needed(gw_conf_start, c, restart, len) > 0)
		log_warnx("reload: %s take effect only after a restart",
		    restart);
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

int
main(int argc, char **argv)
{
	const char		*path = GW_DEFAULT_CONF;
	struct conf		*c;
	char			*cause = NULL;
	int			 ch, check_only = 0, metrics_fd, *listen_fds;
	rlim_t			 nofile;

	while ((ch = getopt_long(argc, argv, "c:hnvV", gw_long_options,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			gw_verbose++;
			break;
		case 'V':
			printf("gatewayd %s\n", SOCKSGW_VERSION);
			return (0);
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);
	log_init(gw_verbose, "gatewayd");
	/* Databases, the WAL, the lock: nothing for other accounts. */
	umask(027);
	/*
	 * Until there is someone to handle them (the parent's signalfd, the
	 * proxy's handlers), SIGHUP and friends wait rather than kill.
	 */
	{
		sigset_t	 set;

		sigemptyset(&set);
		sigaddset(&set, SIGHUP);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	/*
	 * Session ids key audit rows, so they must not repeat across
	 * restarts, and scripts read them as JSON numbers, so they stay below
	 * 2^53 (jq and JavaScript lose the rest): they count up from the start
	 * time in seconds shifted by 21 bits, two million sessions per second
	 * of uptime before the next start could reach them, until 2106 (the
	 * audit database also moves the start past its highest id).
	 */
	{
		struct timespec	 ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		gw_next_sid = (uint64_t)ts.tv_sec << GW_SID_SHIFT | 1;
	}

	if ((c = conf_load(path, &cause)) == NULL ||
	    conf_check_files(c, &cause) == -1) {
		log_plain_errors(cause != NULL ? cause : "out of memory");
		free(cause);
		conf_unref(c);
		return (1);
	}
	if (geteuid() == 0 && c->c_audit_db != NULL && privsep_same_account(
	    c->c_user, c->c_audit_user != NULL ? c->c_audit_user :
	    GW_AUDIT_USER)) {
		char	 msg[PATH_MAX + 160];

		snprintf(msg, sizeof(msg), "%s: user and audit_user are one "
		    "account (uid): auditd needs an account of its own, or the "
		    "proxy could rewrite the audit log", c->c_path);
		log_plain_errors(msg);
		conf_unref(c);
		return (1);
	}
	/* Time windows are local time there; set before any thread. */
	if (c->c_timezone != NULL)
		setenv("TZ", c->c_timezone, 1);
	tzset();
	if (check_only && (gw_check_accounts(c, &cause) == -1 ||
	    gwpolicy_check(c, &cause) == -1)) {
		log_plain_errors(cause != NULL ? cause : "out of memory");
		free(cause);
		conf_unref(c);
		return (1);
	}
	if (check_only) {
		printf("configuration OK\n");
		conf_unref(c);
		return (0);
	}
	log_set_verbose(gw_verbose + c->c_log_verbose);
	/* First: a second instance touches nothing of the running one. */
	if (runtime_lock(c, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	nofile = gw_raise_nofile();
	gw_conf_complete(c, nofile);
	gw_conf = c;
	/* What the listeners, threads and children were made from. */
	conf_ref(c);
	gw_conf_start = c;
	gw_nworkers = c->c_workers;
	/* As root, once: every proxy the parent starts serves these. */
	if ((listen_fds = calloc((size_t)gw_nworkers * c->c_nlisten,
	    sizeof(*listen_fds))) == NULL ||
	    listeners_open(c, gw_nworkers, listen_fds, &cause) == -1 ||
	    ((metrics_fd = metrics_bind(c, &cause)) == -1 && cause != NULL))
		fatalx("%s", cause != NULL ? cause : "out of memory");
	return (parent_run(c, gw_nworkers, listen_fds, metrics_fd,
	    gw_proxy_main));
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
static int
gw_proxy_main(struct conf *c, struct proxy_args *px)
{
	struct event_base	*base;
	struct event		*sigs[3], *parent_ev, *status_ev;
	struct timeval		 status_every = { 5, 0 };
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
	if (gwpolicy_init(c, &cause) == -1 || control_init(c, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	privsep_drop(c->c_path, "user", c->c_user);
	/* auditd's hello: quota counts and session ids before any session. */
	if (audit_init(c, px->px_audit, px->px_restarted, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");

	/*
	 * Bandwidth pools are shared by sessions on every worker
	 * (bandwidth.c): libevent must lock what threads share.
	 */
	if (evthread_use_pthreads() == -1)
		fatalx("evthread_use_pthreads failed");
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
	control_ctx.cx_workers = gw_workers;
	control_ctx.cx_nworkers = gw_nworkers;
	control_ctx.cx_reload = gw_reload;
	if (audit_start(&cause) == -1 ||
	    gwpolicy_watch(gw_policy_changed, &cause) == -1 ||
	    control_start(base, &control_ctx, &cause) == -1 ||
	    metrics_start(base, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	for (i = 0; i < (int)c->c_nlisten; i++)
		log_info("listening on %s", c->c_listen[i].cl_text);
	log_info("gatewayd %s ready: %d workers, max_sessions %d, auth %s%s, "
	    "SOCKS5 CONNECT, BIND and UDP ASSOCIATE, SOCKS4/4a %s, audit %s",
	    SOCKSGW_VERSION, gw_nworkers, c->c_max_sessions,
	    c->c_auth == AUTH_PAM ? "pam, service " : "none",
	    c->c_auth == AUTH_PAM ? c->c_pam_service : "",
	    c->c_socks4 ? "enabled" : "disabled (socks4 no)",
	    c->c_audit_db ? c->c_audit_db : "off");
	gw_parent_fd = px->px_ctl;
	gw_tell_parent(PARENT_MSG_READY);
	if ((status_ev = event_new(base, -1, EV_PERSIST, gw_report_sessions,
	    NULL)) == NULL || event_add(status_ev, &status_every) == -1)
		fatalx("cannot report sessions to the parent");

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
	gwpolicy_stop();
	for (i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_free(parent_ev);
	event_free(status_ev);
	close(px->px_ctl);
	event_base_free(base);
	guard_self_free();
	log_info("stopped");
	conf_unref(gw_conf);
	conf_unref(gw_conf_start);
	return (0);
}
