/*
 * parent.c: the privileged parent (relayd/OpenSSH style). It reads no
 * network input and opens no database: it holds the configuration and the
 * runtime lock, forks authd, auditd and the proxy, passes signals on, and
 * restarts a child that dies.
 *
 * DESIGN. Children are supervised through a signalfd (SIGCHLD, and the
 * signals passed on) and a SOCK_SEQPACKET channel to the proxy: the proxy
 * says "ready" there once it serves, and receives a restarted authd's
 * channels there (SCM_RIGHTS), one per worker. A child that dies is
 * started again at once, but never twice within a second (a module that
 * crashes at each start does not spin). While authd is down, logins fail
 * closed (the proxy's side). A new auditd's channel is handed to the
 * proxy the same way, once auditd says it is ready; the proxy resends
 * what the old one had not committed. When the proxy dies, authd is
 * stopped and auditd ends by itself (its channel closed), and all three
 * start again; the new auditd closes the audit rows the old proxy left
 * open ("proxy restarted"). A child whose restart fails is tried again
 * every second. A proxy or auditd that fails at the first start (a bad
 * listener, a refused privilege drop, an unreadable audit.db) ends the
 * gateway with an error.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <ctype.h>
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

#include "auditd/auditd.h"
#include "authd/auth.h"
#include "base/clock.h"

#include "notify.h"
#include "parent.h"

#define PARENT_RESTART_MS	1000	/* no child started twice within */

static struct {
	struct conf	*pa_conf;
	int		 pa_nworkers;
	proxy_main_fn	*pa_proxy_main;
	int		*pa_listen;	/* the listeners, bound once */
	int		 pa_metrics;
	pid_t		 pa_authd, pa_auditd, pa_proxy;
	int64_t		 pa_authd_started, pa_auditd_started;
	int64_t		 pa_proxy_started;
	int64_t		 pa_retry_at;	/* a failed restart, again */
	int		 pa_audit_fd;	/* auditd's channel, to hand on */
	int		 pa_ctl;		/* to the proxy */
	int		 pa_sfd;		/* signalfd */
	int		 pa_ready;		/* the proxy has served */
	int		 pa_ctl_eof;		/* its channel closed */
	int		 pa_reloading;		/* a SIGHUP passed on */
	int		 pa_stopping;
	int		 pa_status;		/* the proxy's, when it ended */
	int		 pa_auth_fds[GW_MAX_WORKERS];
} pa = { .pa_authd = -1, .pa_auditd = -1, .pa_proxy = -1, .pa_ctl = -1,
	 .pa_sfd = -1, .pa_audit_fd = -1 };

/* Waits until at least PARENT_RESTART_MS have passed since *started. */
static void
parent_throttle(int64_t started)
{
	int64_t	 wait = started + PARENT_RESTART_MS - gw_mono_ms();

	if (started != 0 && wait > 0)
		usleep((useconds_t)wait * 1000);
}

/* Forks authd; its channels' other ends are left in pa_auth_fds. */
static int
parent_start_authd(void)
{
	char	*cause = NULL;
	int	 i;

	for (i = 0; i < pa.pa_nworkers; i++)
		pa.pa_auth_fds[i] = -1;
	if (pa.pa_conf->c_auth == AUTH_NONE)
		return (0);
	parent_throttle(pa.pa_authd_started);
	pa.pa_authd_started = gw_mono_ms();
	if ((pa.pa_authd = authd_start(pa.pa_conf, pa.pa_auth_fds,
	    pa.pa_nworkers, &cause)) == -1) {
		log_warnx("%s", cause != NULL ? cause : "authd: cannot start");
		free(cause);
		return (-1);
	}
	return (0);
}

static void
parent_close_auth_fds(void)
{
	int	 i;

	for (i = 0; i < pa.pa_nworkers; i++)
		if (pa.pa_auth_fds[i] != -1) {
			close(pa.pa_auth_fds[i]);
			pa.pa_auth_fds[i] = -1;
		}
}

/* Hands descriptors to the running proxy, under a tag. */
static void
parent_send_fds(const char *tag, size_t taglen, const int *fds, int n)
{
	char		 buf[CMSG_SPACE(sizeof(int) * GW_MAX_WORKERS)];
	struct msghdr	 msg;
	struct cmsghdr	*cm;
	struct iovec	 iov = { (void *)(uintptr_t)tag, taglen };

	memset(&msg, 0, sizeof(msg));
	memset(buf, 0, sizeof(buf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
	if (sendmsg(pa.pa_ctl, &msg, MSG_NOSIGNAL) == -1)
		log_warn("parent: cannot hand %s's channels to the proxy", tag);
}

/* Hands a restarted authd's channels to the running proxy. */
static void
parent_send_authd(void)
{
	parent_send_fds(PARENT_MSG_AUTHD, sizeof(PARENT_MSG_AUTHD),
	    pa.pa_auth_fds, pa.pa_nworkers);
	parent_close_auth_fds();
}

/*
 * Forks auditd (with audit_db) and waits until it has the database open:
 * its channel's other end is left in pa_audit_fd. 0, or -1.
 */
static int
parent_start_auditd(void)
{
	char	*cause = NULL;
	int	 fd;

	if (pa.pa_conf->c_audit_db == NULL)
		return (0);
	parent_throttle(pa.pa_auditd_started);
	pa.pa_auditd_started = gw_mono_ms();
	if ((pa.pa_auditd = auditd_start(pa.pa_conf, &fd, &cause)) == -1) {
		log_warnx("%s", cause != NULL ? cause : "auditd: cannot start");
		free(cause);
		return (-1);
	}
	if (auditd_wait_ready(fd, &cause) == -1) {
		log_warnx("%s", cause != NULL ? cause : "auditd: not ready");
		free(cause);
		close(fd);
		waitpid(pa.pa_auditd, NULL, 0);
		pa.pa_auditd = -1;
		return (-1);
	}
	if (pa.pa_audit_fd != -1)
		close(pa.pa_audit_fd);
	pa.pa_audit_fd = fd;
	return (0);
}

static void
parent_send_auditd(void)
{
	parent_send_fds(PARENT_MSG_AUDITD, sizeof(PARENT_MSG_AUDITD),
	    &pa.pa_audit_fd, 1);
	close(pa.pa_audit_fd);
	pa.pa_audit_fd = -1;
}

/* Forks the proxy with authd's channels and its end of the channel. */
static int
parent_start_proxy(int restarted)
{
	sigset_t	 none;
	int		 ctl[2];

	parent_throttle(pa.pa_proxy_started);
	pa.pa_proxy_started = gw_mono_ms();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) == -1) {
		log_warn("parent: socketpair");
		return (-1);
	}
	if ((pa.pa_proxy = fork()) == -1) {
		log_warn("parent: fork");
		close(ctl[0]);
		close(ctl[1]);
		return (-1);
	}
	if (pa.pa_proxy == 0) {
		/* Nothing of the parent's: its channel, signalfd, lock. */
		close(ctl[0]);
		if (pa.pa_ctl != -1)
			close(pa.pa_ctl);
		close(pa.pa_sfd);
		runtime_lock_close();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		prctl(PR_SET_NAME, "socksgw-proxy", 0, 0, 0);
		notify_forget();
		log_init(log_debug_enabled(), "gatewayd");
		/*
		 * SIGHUP, SIGTERM and SIGINT stay blocked until the proxy's
		 * handlers are in place (proxy/proxy.c): one that comes while
		 * it starts waits, instead of killing it.
		 */
		sigemptyset(&none);
		sigaddset(&none, SIGCHLD);
		sigprocmask(SIG_UNBLOCK, &none, NULL);
		{
			struct proxy_args	 px;

			px.px_listen = pa.pa_listen;
			px.px_metrics = pa.pa_metrics;
			px.px_auth = pa.pa_auth_fds;
			px.px_audit = pa.pa_audit_fd;
			px.px_ctl = ctl[1];
			px.px_restarted = restarted;
			_exit(pa.pa_proxy_main(pa.pa_conf, &px));
		}
	}
	close(ctl[1]);
	parent_close_auth_fds();
	if (pa.pa_audit_fd != -1)
		close(pa.pa_audit_fd);
	pa.pa_audit_fd = -1;
	if (pa.pa_ctl != -1)
		close(pa.pa_ctl);
	pa.pa_ctl = ctl[0];
	pa.pa_ctl_eof = 0;
	pa.pa_ready = 0;
	pa.pa_reloading = 0;
	return (0);
}

static void
parent_close_listeners(void)
{
	size_t	 i, n = (size_t)pa.pa_nworkers * pa.pa_conf->c_nlisten;

	if (pa.pa_listen == NULL)
		return;
	for (i = 0; i < n; i++)
		close(pa.pa_listen[i]);
	free(pa.pa_listen);
	pa.pa_listen = NULL;
	if (pa.pa_metrics != -1)
		close(pa.pa_metrics);
	pa.pa_metrics = -1;
}

/* Starts authd or auditd again for the running proxy; else retries. */
static void
parent_restart(int which_auditd)
{
	int	 ok;

	if (which_auditd)
		ok = parent_start_auditd() == 0 && pa.pa_audit_fd != -1;
	else
		ok = parent_start_authd() == 0 && pa.pa_authd != -1;
	if (!ok) {
		log_errorx("%s could not be started: trying again in a second",
		    which_auditd ? "auditd" : "authd");
		pa.pa_retry_at = gw_mono_ms() + PARENT_RESTART_MS;
		return;
	}
	if (which_auditd)
		parent_send_auditd();
	else
		parent_send_authd();
	log_info("%s restarted (pid %ld)", which_auditd ? "auditd" : "authd",
	    (long)(which_auditd ? pa.pa_auditd : pa.pa_authd));
}

/*
 * A failed restart, tried again. auditd also while the proxy stops: it
 * hands over its last records then.
 */
static void
parent_retry(void)
{
	pa.pa_retry_at = 0;
	if (pa.pa_proxy == -1)
		return;
	if (!pa.pa_stopping && pa.pa_conf->c_auth != AUTH_NONE &&
	    pa.pa_authd == -1)
		parent_restart(0);
	if (pa.pa_conf->c_audit_db != NULL && pa.pa_auditd == -1)
		parent_restart(1);
}

static void
parent_child_died(pid_t pid, int status)
{
	char	 how[64];

	if (WIFEXITED(status))
		snprintf(how, sizeof(how), "exited with %d",
		    WEXITSTATUS(status));
	else
		snprintf(how, sizeof(how), "was killed by signal %d",
		    WTERMSIG(status));
	if (pid == pa.pa_authd || pid == pa.pa_auditd) {
		int	 is_auditd = pid == pa.pa_auditd;

		if (is_auditd)
			pa.pa_auditd = -1;
		else
			pa.pa_authd = -1;
		/*
		 * A dead proxy's children start with the next proxy (the
		 * proxy's death is handled first, parent_reap). A stopping
		 * proxy still needs auditd for its last records, unless
		 * auditd ended cleanly: the proxy had handed them all over.
		 */
		if (pa.pa_proxy == -1 || (pa.pa_stopping && (!is_auditd ||
		    (WIFEXITED(status) && WEXITSTATUS(status) == 0))))
			return;
		log_errorx("%s (pid %ld) %s: starting it again", is_auditd ?
		    "auditd" : "authd", (long)pid, how);
		parent_restart(is_auditd);
		return;
	}
	if (pid != pa.pa_proxy)
		return;
	pa.pa_proxy = -1;
	pa.pa_status = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	if (!pa.pa_stopping && !pa.pa_ready)
		log_errorx("proxy (pid %ld) %s before it served: stopping",
		    (long)pid, how);
	if (pa.pa_stopping || !pa.pa_ready)
		return;		/* the loop ends the gateway */
	log_errorx("proxy (pid %ld) %s: starting it again", (long)pid, how);
	/* authd's channels were the proxy's: it goes, and comes again. */
	if (pa.pa_authd != -1) {
		kill(pa.pa_authd, SIGTERM);
		waitpid(pa.pa_authd, NULL, 0);
		pa.pa_authd = -1;
	}
	/* auditd writes what it has and ends: its channel has closed. */
	if (pa.pa_auditd != -1) {
		waitpid(pa.pa_auditd, NULL, 0);
		pa.pa_auditd = -1;
	}
	if (parent_start_authd() == -1)
		pa.pa_retry_at = gw_mono_ms() + PARENT_RESTART_MS;
	/* Without auditd the proxy refuses sessions until one is there. */
	if (parent_start_auditd() == -1)
		pa.pa_retry_at = gw_mono_ms() + PARENT_RESTART_MS;
	if (parent_start_proxy(1) == -1) {
		pa.pa_status = 1;
		pa.pa_stopping = 1;
	}
}

/*
 * Reaps every child that ended. The proxy first: when it died, so did
 * its auditd's channel, and that auditd must not be started again for
 * the dead proxy, only with the next.
 */
static void
parent_reap(void)
{
	pid_t	 pids[8];
	int	 status[8], n, i;

	do {
		n = 0;
		while (n < 8 && (pids[n] = waitpid(-1, &status[n],
		    WNOHANG)) > 0)
			n++;
		for (i = 0; i < n; i++)
			if (pids[i] == pa.pa_proxy) {
				parent_child_died(pids[i], status[i]);
				pids[i] = -1;
			}
		for (i = 0; i < n; i++)
			if (pids[i] != -1)
				parent_child_died(pids[i], status[i]);
	} while (n == 8);
}

/*
 * What the proxy says on its channel: that it serves, that it has read
 * the configuration again (SIGHUP), and how many sessions are open. The
 * proxy parses hostile traffic, so its words are checked, and only the
 * parent's own text reaches systemd.
 */
static void
parent_proxy_said(const char *msg)
{
	unsigned long	 v;
	char		*ep;

	if (strcmp(msg, PARENT_MSG_READY) == 0 && !pa.pa_ready) {
		pa.pa_ready = 1;
		if (!pa.pa_stopping)
			notify_ready();
	} else if ((strcmp(msg, PARENT_MSG_RELOADED) == 0 ||
	    strcmp(msg, PARENT_MSG_REFUSED) == 0) && pa.pa_reloading) {
		/* Only as the answer to a SIGHUP the parent passed on. */
		pa.pa_reloading = 0;
		if (pa.pa_stopping)
			return;
		if (strcmp(msg, PARENT_MSG_RELOADED) == 0)
			notify_ready();
		else
			notify_reload_refused();
	} else if (strncmp(msg, PARENT_MSG_SESSIONS " ",
	    sizeof(PARENT_MSG_SESSIONS)) == 0 && !pa.pa_stopping) {
		errno = 0;
		v = strtoul(msg + sizeof(PARENT_MSG_SESSIONS), &ep, 10);
		if (isdigit((unsigned char)msg[sizeof(PARENT_MSG_SESSIONS)]) &&
		    *ep == '\0' && errno == 0 && v <= GW_MAX_SESSIONS)
			notify_status((unsigned)v);
	}
}

/*
 * Runs the gateway: forks authd, auditd and the proxy, then supervises.
 * The listeners (listen_fds, [worker][listen], and metrics_fd) were bound
 * as root before, and stay open here across proxy restarts: no port is
 * ever free for another process to take, and connections that arrive
 * while a proxy starts again wait in the backlog. Returns the exit status
 * (the proxy's, when it stops).
 */
int
parent_run(struct conf *c, int nworkers, int *listen_fds, int metrics_fd,
    proxy_main_fn *run_proxy)
{
	struct signalfd_siginfo	 si;
	struct pollfd		 pfd[2];
	sigset_t		 set;
	char			 msg[32];
	ssize_t			 n;
	int			 sfd;

	pa.pa_conf = c;
	pa.pa_nworkers = nworkers;
	pa.pa_proxy_main = run_proxy;
	pa.pa_listen = listen_fds;
	pa.pa_metrics = metrics_fd;
	log_init(log_debug_enabled(), "gatewayd[parent]");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1)
		fatal("parent: signalfd");
	pa.pa_sfd = sfd;
	if (parent_start_authd() == -1 || parent_start_auditd() == -1 ||
	    parent_start_proxy(0) == -1)
		return (1);
	for (;;) {
		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		/* A closed channel is read no more (poll would not wait). */
		pfd[1].fd = pa.pa_ctl_eof ? -1 : pa.pa_ctl;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, pa.pa_retry_at == 0 ? -1 : (int)(
		    pa.pa_retry_at > gw_mono_ms() ? pa.pa_retry_at -
		    gw_mono_ms() : 0)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("parent: poll");
		}
		if (pa.pa_retry_at != 0 && gw_mono_ms() >= pa.pa_retry_at)
			parent_retry();
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(pa.pa_ctl, msg, sizeof(msg) - 1, MSG_DONTWAIT);
			if (n > 0) {
				msg[n] = '\0';
				parent_proxy_said(msg);
			} else if (n == 0 || (errno != EAGAIN &&
			    errno != EINTR))
				pa.pa_ctl_eof = 1;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGCHLD:
			parent_reap();
			break;
		case SIGHUP:
			if (pa.pa_proxy != -1 && pa.pa_ready &&
			    !pa.pa_stopping) {
				notify_reloading();
				pa.pa_reloading = 1;
				kill(pa.pa_proxy, SIGHUP);
			}
			break;
		default:	/* SIGTERM, SIGINT: the proxy stops, then all */
			if (!pa.pa_stopping)
				notify_stopping();
			pa.pa_stopping = 1;
			/* New clients are refused now, not queued. */
			parent_close_listeners();
			if (pa.pa_proxy != -1)
				kill(pa.pa_proxy, (int)si.ssi_signo);
			break;
		}
		if (pa.pa_proxy == -1 && (pa.pa_stopping || !pa.pa_ready))
			break;
	}
	if (pa.pa_authd != -1) {
		kill(pa.pa_authd, SIGTERM);
		waitpid(pa.pa_authd, NULL, 0);
	}
	/* auditd signs the head and ends once the proxy's channel closed. */
	if (pa.pa_auditd != -1)
		waitpid(pa.pa_auditd, NULL, 0);
	close(sfd);
	return (pa.pa_status);
}
