/*
 * authd_pam.c: one login checked, on one of authd's PAM threads: PAM
 * (authenticate, then account management), an optional cache, and the
 * user's groups through NSS.
 *
 * The cache (auth_cache_ttl) remembers successful checks as a salted
 * SHA-256 of the user and password, never the password, for a bounded
 * number of users. After PAM succeeds, the name PAM ended with (PAM_USER)
 * is the user: a case-insensitive backend (sssd, AD) lets "ALICE" log in
 * as "alice", and the policy, the limits and the audit must see "alice".
 */
#include <sys/types.h>
#include <sys/random.h>

#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <security/pam_appl.h>

#include "log.h"

#include "base/clock.h"

#include "auth.h"

#define AUTHD_CACHE_MAX		1024

struct authd_cached {
	char			 c_user[256];
	char			 c_canon[256];
	unsigned char		 c_digest[32];
	int64_t			 c_expires;	/* gw_mono_ms() */
	/*
	 * The groups NSS gave at the check: a cached login asks NSS nothing
	 * (with the files and systemd modules that is some 70 system calls,
	 * opening /etc/passwd and /etc/group again for each group).
	 */
	uint8_t			 c_ngroups;
	char			 c_groups[AUTH_MAX_GROUPS][AUTH_GROUP_NAME];
};

static struct {
	const char		*p_service;
	int			 p_cache_ttl;
	pthread_mutex_t		 p_lock;	/* the cache */
	struct authd_cached	 p_cache[AUTHD_CACHE_MAX];
	unsigned char		 p_salt[32];
} pam = { .p_lock = PTHREAD_MUTEX_INITIALIZER };

/* In authd, before its threads start. */
void
authd_pam_init(const char *service, int cache_ttl)
{
	pam.p_service = service;
	pam.p_cache_ttl = cache_ttl;
	if (getrandom(pam.p_salt, sizeof(pam.p_salt), 0) !=
	    (ssize_t)sizeof(pam.p_salt))
		fatal("authd: getrandom");
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

static void
authd_digest(const struct auth_request *req, unsigned char out[32])
{
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();
	unsigned int	 len = 32;

	memset(out, 0, 32);
	if (ctx == NULL)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, pam.p_salt, sizeof(pam.p_salt)) != 1 ||
	    EVP_DigestUpdate(ctx, req->ar_user, strlen(req->ar_user) + 1) !=
	    1 || EVP_DigestUpdate(ctx, req->ar_pass, strlen(req->ar_pass)) !=
	    1 || EVP_DigestFinal_ex(ctx, out, &len) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(ctx);
}

/* Under p_lock: whether a recent success with this password is cached. */
static int
authd_cache_hit(const struct auth_request *req, const unsigned char *d,
    int64_t now, struct auth_reply *rep)
{
	size_t	 i;

	for (i = 0; i < AUTHD_CACHE_MAX; i++) {
		struct authd_cached *c = &pam.p_cache[i];

		if (c->c_expires > now && strcmp(c->c_user, req->ar_user) ==
		    0 && CRYPTO_memcmp(c->c_digest, d, 32) == 0) {
			snprintf(rep->ap_user, sizeof(rep->ap_user), "%s",
			    c->c_canon);
			/* The proxy may answer it itself so long. */
			rep->ap_cache_until_ms = c->c_expires;
			rep->ap_ngroups = c->c_ngroups;
			memcpy(rep->ap_groups, c->c_groups,
			    sizeof(rep->ap_groups));
			return (1);
		}
	}
	return (0);
}

static void
authd_cache_put(const struct auth_request *req, struct auth_reply *rep,
    const unsigned char *d, int64_t now)
{
	struct authd_cached	*slot = &pam.p_cache[0];
	size_t			 i;

	for (i = 0; i < AUTHD_CACHE_MAX; i++) {
		if (strcmp(pam.p_cache[i].c_user, req->ar_user) == 0) {
			slot = &pam.p_cache[i];
			break;
		}
		if (pam.p_cache[i].c_expires < slot->c_expires)
			slot = &pam.p_cache[i];
	}
	snprintf(slot->c_user, sizeof(slot->c_user), "%s", req->ar_user);
	snprintf(slot->c_canon, sizeof(slot->c_canon), "%s", rep->ap_user);
	slot->c_ngroups = rep->ap_ngroups;
	memcpy(slot->c_groups, rep->ap_groups, sizeof(slot->c_groups));
	memcpy(slot->c_digest, d, 32);
	/*
	 * On the monotonic clock, which the proxy shares: its copy ends
	 * when this entry does, whatever the wall clock does.
	 */
	slot->c_expires = now + (int64_t)pam.p_cache_ttl * 1000;
	rep->ap_cache_until_ms = slot->c_expires;
	/* This user's earlier entry (another password, maybe) is gone. */
	rep->ap_cache_fresh = 1;
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

/* No one to answer: an account stack that asks anything fails. */
static int
authd_conv_none(int n, const struct pam_message **msg,
    struct pam_response **resp, void *arg)
{
	(void)n;
	(void)msg;
	(void)resp;
	(void)arg;
	return (PAM_CONV_ERR);
}

/*
 * The account stack, then the name PAM ended with (PAM_USER), for every
 * login method: an expired, locked or disallowed account is refused, and
 * a login without a usable name is none. PAM's last status.
 */
static int
authd_pam_account_of(pam_handle_t *pamh, struct auth_reply *rep)
{
	const void	*item;
	int		 rc;

	if ((rc = pam_acct_mgmt(pamh, PAM_SILENT)) != PAM_SUCCESS) {
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%s",
		    pam_strerror(pamh, rc));
	} else if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS ||
	    item == NULL || ((const char *)item)[0] == '\0' ||
	    strlen(item) >= sizeof(rep->ap_user)) {
		/* No name to hold the session under: no login. */
		rep->ap_status = AUTH_ERROR;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "PAM left no "
		    "usable user name");
	} else {
		rep->ap_status = AUTH_OK;
		snprintf(rep->ap_user, sizeof(rep->ap_user), "%s",
		    (const char *)item);
	}
	return (rc);
}

/*
 * PAM's account management alone, for a user someone else authenticated
 * (Kerberos), exactly as for a password login.
 */
void
authd_pam_account(const char *user, const char *client,
    struct auth_reply *rep)
{
	struct pam_conv		 conv = { authd_conv_none, NULL };
	pam_handle_t		*pamh = NULL;
	int			 rc;

	if ((rc = pam_start(pam.p_service, user, &conv, &pamh)) !=
	    PAM_SUCCESS) {
		rep->ap_status = AUTH_ERROR;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "pam_start: %s",
		    pam_strerror(NULL, rc));
		return;
	}
	pam_set_item(pamh, PAM_RHOST, client);
	rc = authd_pam_account_of(pamh, rep);
	if (rep->ap_status == AUTH_OK)
		authd_groups(rep->ap_user, rep);
	pam_end(pamh, rc);
}

/* Asks PAM (or the cache); rep gets the answer and the canonical name. */
void
authd_pam_check(struct auth_request *req, struct auth_reply *rep)
{
	pam_handle_t	*pamh = NULL;
	struct pam_conv	 conv = { authd_conv, req };
	unsigned char	 digest[32];
	int64_t		 now = gw_mono_ms();
	int		 rc, cached = 0;

	memset(digest, 0, sizeof(digest));
	if (pam.p_cache_ttl > 0) {
		authd_digest(req, digest);
		pthread_mutex_lock(&pam.p_lock);
		cached = authd_cache_hit(req, digest, now, rep);
		pthread_mutex_unlock(&pam.p_lock);
	}
	if (cached) {
		rep->ap_status = AUTH_OK;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "cached");
		goto done;
	}
	if (req->ar_user[0] == '\0' || req->ar_pass[0] == '\0') {
		/* RFC 1929 allows neither; PAM is not bothered with them. */
		rep->ap_status = AUTH_FAILED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "empty %s",
		    req->ar_user[0] == '\0' ? "user name" : "password");
	} else if ((rc = pam_start(pam.p_service, req->ar_user, &conv,
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
		} else
			rc = authd_pam_account_of(pamh, rep);
		pam_end(pamh, rc);
	}
	if (rep->ap_status == AUTH_OK) {
		authd_groups(rep->ap_user, rep);
		if (pam.p_cache_ttl > 0) {
			pthread_mutex_lock(&pam.p_lock);
			authd_cache_put(req, rep, digest, now);
			pthread_mutex_unlock(&pam.p_lock);
		}
	}
done:
	explicit_bzero(req->ar_pass, sizeof(req->ar_pass));
	explicit_bzero(digest, sizeof(digest));
}
