/*
 * main.c: gatewayd's main() reads the configuration (or only checks it,
 * -n), takes the runtime lock, binds the listening sockets as root and
 * hands over to the privileged parent (parent/parent.c), which starts
 * auditd, authd and the proxy (proxy/proxy.c) and keeps them running.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

#include "auditd/audit.h"
#include "authd/auth.h"
#include "parent/parent.h"
#include "proxy/proxy.h"

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
 * krb5_rcache: authd (root) opens it at every login, following no one
 * else's choice: its folder must be root's and writable by root alone,
 * and the file, if there, a regular file of root's (not a link that
 * would have root write elsewhere). Said at start, not by every login
 * failing.
 */
static int
gw_check_rcache(const struct conf *c)
{
	struct stat	 st;
	char		 dir[PATH_MAX], msg[PATH_MAX * 2 + 200], *slash;
	const char	*why = NULL;

	snprintf(dir, sizeof(dir), "%s", c->c_krb5_rcache);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		snprintf(dir, sizeof(dir), "%s", slash == dir ? "/" : ".");
	else
		*slash = '\0';
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode))
		why = "its folder does not exist";
	else if (geteuid() == 0 && (st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))))
		why = "its folder must be root's and writable by root alone";
	else if (lstat(c->c_krb5_rcache, &st) == 0 && (!S_ISREG(st.st_mode) ||
	    (geteuid() == 0 && st.st_uid != 0)))
		why = "it must be a regular file of root's";
	if (why == NULL)
		return (0);
	snprintf(msg, sizeof(msg), "%s: krb5_rcache %s: %s", c->c_path,
	    c->c_krb5_rcache, why);
	log_plain_errors(msg);
	return (-1);
}

/*
 * auth gssapi: the keytab holds a key for krb5_service and nobody but its
 * owner's group can read it (it lets whoever reads it pose as the proxy
 * to every client). Said before serving; the credential is not kept.
 */
static int
gw_check_keytab(const struct conf *c)
{
	struct stat	 st;
	struct passwd	*pw;
	char		*cause = NULL, msg[PATH_MAX + 320];

	if (stat(c->c_krb5_keytab, &st) == -1) {
		snprintf(msg, sizeof(msg), "%s: krb5_keytab %s: %s", c->c_path,
		    c->c_krb5_keytab, strerror(errno));
		log_plain_errors(msg);
		return (-1);
	}
	if (st.st_mode & S_IROTH) {
		snprintf(msg, sizeof(msg), "%s: krb5_keytab %s is readable by "
		    "every user: chmod o-r it", c->c_path, c->c_krb5_keytab);
		log_plain_errors(msg);
		return (-1);
	}
	/*
	 * Nor by the proxy's account, which faces the network, nor changed
	 * by anyone but root.
	 */
	if ((geteuid() == 0 && st.st_uid != 0) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) ||
	    ((st.st_mode & S_IRGRP) && c->c_user != NULL &&
	    (pw = getpwnam(c->c_user)) != NULL && pw->pw_gid == st.st_gid)) {
		snprintf(msg, sizeof(msg), "%s: krb5_keytab %s must be owned "
		    "by root, writable by root alone and not readable by user "
		    "%s's group (chmod 0600)", c->c_path, c->c_krb5_keytab,
		    c->c_user != NULL ? c->c_user : "-");
		log_plain_errors(msg);
		return (-1);
	}
	if (c->c_krb5_rcache != NULL && gw_check_rcache(c) == -1)
		return (-1);
	if (authd_gss_init(c->c_krb5_keytab, c->c_krb5_service,
	    c->c_krb5_rcache, (uid_t)c->c_krb5_min_uid, &cause) == -1) {
		snprintf(msg, sizeof(msg), "%s: %s", c->c_path, cause != NULL ?
		    cause : "out of memory");
		free(cause);
		log_plain_errors(msg);
		return (-1);
	}
	authd_gss_release();
	return (0);
}

int
main(int argc, char **argv)
{
	const char		*path = GW_DEFAULT_CONF;
	struct conf		*c;
	char			*cause = NULL;
	int			 ch, check_only = 0, metrics_fd, *listen_fds;
	int			 verbose = 0;

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
			verbose++;
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
	log_init(verbose, "gatewayd");
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
	if ((c->c_auth & AUTH_GSSAPI) && gw_check_keytab(c) == -1) {
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
	log_set_verbose(verbose + c->c_log_verbose);
	/* First: a second instance touches nothing of the running one. */
	if (runtime_lock(c, &cause) == -1)
		fatalx("%s", cause != NULL ? cause : "out of memory");
	proxy_conf_complete(c);
	proxy_init(c, verbose);
	/* As root, once: every proxy the parent starts serves these. */
	if ((listen_fds = calloc((size_t)c->c_workers * c->c_nlisten,
	    sizeof(*listen_fds))) == NULL ||
	    listeners_open(c, c->c_workers, listen_fds, &cause) == -1 ||
	    ((metrics_fd = metrics_bind(c, &cause)) == -1 && cause != NULL))
		fatalx("%s", cause != NULL ? cause : "out of memory");
	return (parent_run(c, c->c_workers, listen_fds, metrics_fd,
	    proxy_main));
}
