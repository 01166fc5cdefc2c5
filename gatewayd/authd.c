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
 * Before PAM is asked, failures are counted per client address and per
 * user name: past auth_fail_limit within auth_fail_window seconds, further
 * attempts are refused for auth_lockout seconds without calling PAM. An
 * optional cache (auth_cache_ttl) remembers successful checks as a salted
 * SHA-256 of the user and password, never the password. Passwords are
 * wiped as soon as they are checked.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <security/pam_appl.h>

#include "gatewayd.h"

#define AUTHD_TRACK_MAX		4096	/* failure records kept */
#define AUTHD_CACHE_MAX		1024

struct authd_channels {
	int			 ac_fds[GW_MAX_WORKERS];	/* -1: closed */
	int			 ac_n;
};

struct authd_fail {
	char			 f_key[ADDR_STRLEN > 258 ? ADDR_STRLEN : 258];
	time_t			 f_first;	/* window start */
	int			 f_count;
	time_t			 f_locked_until;
};

struct authd_cached {
	char			 c_user[256];
	unsigned char		 c_digest[32];
	time_t			 c_expires;
};

static struct {
	const char		*a_service;
	int			 a_fail_limit;
	int			 a_fail_window;
	int			 a_lockout;
	int			 a_cache_ttl;
	pthread_mutex_t		 a_lock;	/* channels, failures, cache */
	struct authd_fail	 a_fails[AUTHD_TRACK_MAX];
	struct authd_cached	 a_cache[AUTHD_CACHE_MAX];
	unsigned char		 a_salt[32];
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
		return ("locked out after repeated failures");
	default:
		return ("authentication error");
	}
}

/* PAM asks; we answer with what the client sent, nothing else. */
static int
authd_conv(int n, const struct pam_message **msg, struct pam_response **resp,
    void *arg)
{
	const struct auth_request	*req = arg;
	struct pam_response		*r;
	int				 i;

	if (n <= 0 || n > PAM_MAX_NUM_MSG ||
	    (r = calloc((size_t)n, sizeof(*r))) == NULL)
		return (PAM_CONV_ERR);
	for (i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			r[i].resp = strdup(req->ar_pass);
			break;
		case PAM_PROMPT_ECHO_ON:
			r[i].resp = strdup(req->ar_user);
			break;
		default:	/* PAM_ERROR_MSG, PAM_TEXT_INFO: nobody to show */
			continue;
		}
		if (r[i].resp == NULL)
			goto fail;
	}
	*resp = r;
	return (PAM_SUCCESS);
fail:
	for (i = 0; i < n; i++) {
		if (r[i].resp != NULL) {
			explicit_bzero(r[i].resp, strlen(r[i].resp));
			free(r[i].resp);
		}
	}
	free(r);
	return (PAM_CONV_ERR);
}

static struct authd_fail *
authd_fail_find(const char *key, int create, time_t now)
{
	struct authd_fail	*f, *oldest = NULL;
	size_t			 i;

	for (i = 0; i < AUTHD_TRACK_MAX; i++) {
		f = &authd.a_fails[i];
		if (f->f_key[0] != '\0' && strcmp(f->f_key, key) == 0)
			return (f);
		/* A free slot, or the one whose news is oldest. */
		if (oldest == NULL || f->f_key[0] == '\0' ||
		    (oldest->f_key[0] != '\0' && f->f_first < oldest->f_first &&
		    f->f_locked_until < now))
			oldest = f;
	}
	if (!create)
		return (NULL);
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->f_key, sizeof(oldest->f_key), "%s", key);
	oldest->f_first = now;
	return (oldest);
}

static int
authd_locked(const char *key, time_t now)
{
	struct authd_fail	*f = authd_fail_find(key, 0, now);

	return (f != NULL && f->f_locked_until > now);
}

/* Counts a failure; returns 1 when it starts a lock-out. */
static int
authd_fail_count(const char *key, time_t now)
{
	struct authd_fail	*f = authd_fail_find(key, 1, now);

	if (now - f->f_first >= authd.a_fail_window) {
		f->f_first = now;
		f->f_count = 0;
	}
	if (++f->f_count >= authd.a_fail_limit && f->f_locked_until <= now) {
		f->f_locked_until = now + authd.a_lockout;
		f->f_count = 0;
		f->f_first = now;
		return (1);
	}
	return (0);
}

static void
authd_digest(const struct auth_request *req, unsigned char out[32])
{
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();
	unsigned int	 len = 32;

	memset(out, 0, 32);
	if (ctx == NULL)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, authd.a_salt, sizeof(authd.a_salt)) != 1 ||
	    EVP_DigestUpdate(ctx, req->ar_user, strlen(req->ar_user) + 1) !=
	    1 || EVP_DigestUpdate(ctx, req->ar_pass, strlen(req->ar_pass)) !=
	    1 || EVP_DigestFinal_ex(ctx, out, &len) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(ctx);
}

/* Under a_lock: whether a recent success with this password is cached. */
static int
authd_cache_hit(const struct auth_request *req, const unsigned char *d,
    time_t now)
{
	size_t	 i;

	for (i = 0; i < AUTHD_CACHE_MAX; i++) {
		struct authd_cached *c = &authd.a_cache[i];

		if (c->c_expires > now && strcmp(c->c_user, req->ar_user) ==
		    0 && CRYPTO_memcmp(c->c_digest, d, 32) == 0)
			return (1);
	}
	return (0);
}

static void
authd_cache_put(const struct auth_request *req, const unsigned char *d,
    time_t now)
{
	struct authd_cached	*slot = &authd.a_cache[0];
	size_t			 i;

	for (i = 0; i < AUTHD_CACHE_MAX; i++) {
		if (strcmp(authd.a_cache[i].c_user, req->ar_user) == 0) {
			slot = &authd.a_cache[i];
			break;
		}
		if (authd.a_cache[i].c_expires < slot->c_expires)
			slot = &authd.a_cache[i];
	}
	snprintf(slot->c_user, sizeof(slot->c_user), "%s", req->ar_user);
	memcpy(slot->c_digest, d, 32);
	slot->c_expires = now + authd.a_cache_ttl;
}

/* The user's groups through NSS (files, sssd for LDAP/AD...). */
static void
authd_groups(const char *user, struct auth_reply *rep)
{
	struct passwd	 pw, *pwp = NULL;
	struct group	 gr, *grp = NULL;
	char		 buf[16384];
	gid_t		 gids[256];
	int		 n = 256, i;

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return;
	if (getgrouplist(user, pw.pw_gid, gids, &n) == -1)
		n = 256;
	for (i = 0; i < n && rep->ap_ngroups < AUTH_MAX_GROUPS; i++) {
		if (getgrgid_r(gids[i], &gr, buf, sizeof(buf), &grp) != 0 ||
		    grp == NULL || strlen(grp->gr_name) >= AUTH_GROUP_NAME)
			continue;
		snprintf(rep->ap_groups[rep->ap_ngroups++], AUTH_GROUP_NAME,
		    "%s", grp->gr_name);
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
authd_check(struct auth_request *req, struct auth_reply *rep)
{
	pam_handle_t	*pamh = NULL;
	struct pam_conv	 conv = { authd_conv, req };
	unsigned char	 digest[32];
	char		 userkey[260];
	time_t		 now = time(NULL);
	int		 rc, cached = 0, locked;

	memset(rep, 0, sizeof(*rep));
	rep->ap_sid = req->ar_sid;
	snprintf(userkey, sizeof(userkey), "u:%s", req->ar_user);

	pthread_mutex_lock(&authd.a_lock);
	locked = authd_locked(req->ar_client, now) ||
	    authd_locked(userkey, now);
	if (!locked && authd.a_cache_ttl > 0) {
		authd_digest(req, digest);
		cached = authd_cache_hit(req, digest, now);
	}
	pthread_mutex_unlock(&authd.a_lock);
	if (locked) {
		rep->ap_status = AUTH_LOCKED;
		goto done;
	}
	if (cached) {
		rep->ap_status = AUTH_OK;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "cached");
		authd_groups(req->ar_user, rep);
		goto done;
	}
	if (req->ar_user[0] == '\0' || req->ar_pass[0] == '\0') {
		/* RFC 1929 allows neither; PAM is not bothered with them. */
		rep->ap_status = AUTH_FAILED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "empty %s",
		    req->ar_user[0] == '\0' ? "user name" : "password");
	} else if ((rc = pam_start(authd.a_service, req->ar_user, &conv,
	    &pamh)) != PAM_SUCCESS) {
		rep->ap_status = AUTH_ERROR;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "pam_start: %s",
		    pam_strerror(NULL, rc));
		pamh = NULL;
	} else {
		pam_set_item(pamh, PAM_RHOST, req->ar_client);
		if ((rc = pam_authenticate(pamh, PAM_SILENT |
		    PAM_DISALLOW_NULL_AUTHTOK)) != PAM_SUCCESS) {
			rep->ap_status = AUTH_FAILED;
			snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%s",
			    pam_strerror(pamh, rc));
		} else if ((rc = pam_acct_mgmt(pamh, PAM_SILENT)) !=
		    PAM_SUCCESS) {
			rep->ap_status = AUTH_REFUSED;
			snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%s",
			    pam_strerror(pamh, rc));
		} else
			rep->ap_status = AUTH_OK;
		pam_end(pamh, rc);
	}
	if (rep->ap_status == AUTH_OK)
		authd_groups(req->ar_user, rep);

	pthread_mutex_lock(&authd.a_lock);
	if (rep->ap_status == AUTH_FAILED || rep->ap_status == AUTH_REFUSED) {
		if (authd_fail_count(req->ar_client, now))
			authd_note(rep, "client locked out for %ds",
			    authd.a_lockout);
		if (authd_fail_count(userkey, now))
			authd_note(rep, "user locked out for %ds",
			    authd.a_lockout);
	} else if (rep->ap_status == AUTH_OK && authd.a_cache_ttl > 0)
		authd_cache_put(req, digest, now);
	pthread_mutex_unlock(&authd.a_lock);
done:
	explicit_bzero(req->ar_pass, sizeof(req->ar_pass));
	explicit_bzero(digest, sizeof(digest));
}

/*
 * Every PAM thread waits on every channel and takes what comes: a request
 * goes from the proxy worker straight to a PAM thread, with no dispatcher
 * in between (one thread wake-up less per login). SOCK_SEQPACKET hands
 * each message to exactly one reader, whole.
 */
static void *
authd_worker(void *arg)
{
	struct authd_channels	*ch = arg;
	struct pollfd		 pfd[GW_MAX_WORKERS];
	struct auth_request	 req;
	struct auth_reply	 rep;
	struct timespec		 t0, t1;
	ssize_t			 n;
	int			 i, k, open;

	for (;;) {
		pthread_mutex_lock(&authd.a_lock);
		for (i = open = 0; i < ch->ac_n; i++) {
			pfd[i].fd = ch->ac_fds[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			open += ch->ac_fds[i] != -1;
		}
		pthread_mutex_unlock(&authd.a_lock);
		if (open == 0)
			return (NULL);
		if (poll(pfd, (nfds_t)ch->ac_n, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("authd: poll");
		}
		for (i = 0; i < ch->ac_n; i++) {
			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			n = recv(pfd[i].fd, &req, sizeof(req), MSG_DONTWAIT);
			if (n == -1 && (errno == EAGAIN || errno == EINTR))
				continue;	/* another thread took it */
			if (n != (ssize_t)sizeof(req)) {
				/* EOF or a broken message: that worker is gone. */
				pthread_mutex_lock(&authd.a_lock);
				for (k = 0; k < ch->ac_n; k++)
					if (ch->ac_fds[k] == pfd[i].fd)
						ch->ac_fds[k] = -1;
				pthread_mutex_unlock(&authd.a_lock);
				shutdown(pfd[i].fd, SHUT_RDWR);
				continue;
			}
			req.ar_user[sizeof(req.ar_user) - 1] = '\0';
			req.ar_pass[sizeof(req.ar_pass) - 1] = '\0';
			req.ar_client[sizeof(req.ar_client) - 1] = '\0';
			clock_gettime(CLOCK_MONOTONIC, &t0);
			authd_check(&req, &rep);
			clock_gettime(CLOCK_MONOTONIC, &t1);
			rep.ap_usec = (uint32_t)((t1.tv_sec - t0.tv_sec) *
			    1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
			/* One message per send: concurrent replies never mix. */
			if (send(pfd[i].fd, &rep, sizeof(rep), MSG_NOSIGNAL) ==
			    -1 && errno != EPIPE)
				log_warn("authd: send");
		}
	}
}

/*
 * Forks authd. fds[i] becomes worker i's end of its channel; the child
 * keeps the other ends. Called as root, before the privilege drop;
 * closefds are the descriptors the child must not keep (the listeners).
 */
pid_t
authd_start(const struct conf *c, int *fds, int nworkers, const int *closefds,
    size_t nclose, char **cause)
{
	size_t		 k;
	int		 pair[GW_MAX_WORKERS][2], i;
	static struct authd_channels ch;
	pthread_t	 t[64];
	pid_t		 pid;

	for (i = 0; i < nworkers; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    pair[i]) == -1) {
			if (asprintf(cause, "authd: socketpair: %s",
			    strerror(errno)) < 0)
				*cause = NULL;
			return (-1);
		}
	}
	if ((pid = fork()) == -1) {
		if (asprintf(cause, "authd: fork: %s", strerror(errno)) < 0)
			*cause = NULL;
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
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nworkers; i++) {
		close(pair[i][0]);
		fds[i] = pair[i][1];
	}
	/* No network socket here. */
	for (k = 0; k < nclose; k++)
		close(closefds[k]);
	memset(&authd, 0, sizeof(authd));
	authd.a_service = c->c_pam_service;
	authd.a_fail_limit = c->c_auth_fail_limit;
	authd.a_fail_window = c->c_auth_fail_window;
	authd.a_lockout = c->c_auth_lockout;
	authd.a_cache_ttl = c->c_auth_cache_ttl;
	pthread_mutex_init(&authd.a_lock, NULL);
	if (getrandom(authd.a_salt, sizeof(authd.a_salt), 0) !=
	    (ssize_t)sizeof(authd.a_salt))
		fatal("authd: getrandom");
	for (i = 0; i < nworkers; i++)
		ch.ac_fds[i] = fds[i];
	ch.ac_n = nworkers;
	for (i = 0; i < c->c_auth_workers && i < 64; i++)
		if (pthread_create(&t[i], NULL, authd_worker, &ch) != 0)
			fatalx("authd: cannot start its workers");
	/* Done when every worker's channel is closed. */
	while (--i >= 0)
		pthread_join(t[i], NULL);
	_exit(0);
}
