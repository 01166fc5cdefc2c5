/*
 * auth.h: logins, checked by authd (authd.c) through PAM (authd_pam.c)
 * or Kerberos (authd_gss.c) in a process of its own; the proxy's side of
 * the channel (auth.c).
 *
 * Messages go over a SOCK_SEQPACKET socketpair per worker, one message
 * per send, keyed by session id (never pointers). A request ends with its
 * token, sent only as long as it is (a password login sends none).
 */
#ifndef AUTH_H
#define AUTH_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct conf;
struct session;
struct worker;

#define AUTH_MAX_GROUPS		32
#define AUTH_GROUP_NAME		64
enum auth_status {
	AUTH_OK,
	AUTH_FAILED,		/* wrong password, unknown user, ... */
	AUTH_REFUSED,		/* account disallowed by the account stack */
	AUTH_LOCKED,		/* too many failures: not asked to PAM */
	AUTH_ERROR,		/* PAM or authd broke */
	AUTH_BUSY,		/* authd's queue had no room, or it expired */
	AUTH_GONE,		/* the proxy's own: authd is not there */
};
/*
 * The channel between a worker and authd carries typed messages (chan.h):
 * a method with several round trips (GSSAPI, Negotiate) is more types
 * under the same session id.
 */
enum auth_msg {
	AUTH_MSG_PASSWORD = 1,	/* worker -> authd: struct auth_request */
	AUTH_MSG_RESULT,	/* authd -> worker: struct auth_reply */
	AUTH_MSG_TOKEN,		/* worker -> authd: a GSS-API token */
};
/*
 * A Kerberos token: an AP-REQ in SPNEGO, about 1 to 2 KiB from MIT
 * Kerberos; Active Directory adds the user's groups (the PAC), which
 * Windows bounds by MaxTokenSize, 12,000 bytes by default before Windows
 * Server 2012. Base64 of that fits an HTTP head of HTTP_HEAD_MAX.
 */
#define AUTH_TOKEN_MAX		12000
/*
 * An exported Kerberos context holds the ticket's authorization data
 * (a PAC from Active Directory: up to a token's size) besides its keys
 * and names; a reply holds it and a token for the client.
 */
#define AUTH_REPLY_DATA_MAX	(3 * AUTH_TOKEN_MAX)
struct auth_request {
	uint64_t		 ar_sid;
	char			 ar_client[ADDR_STRLEN];
	char			 ar_user[256];
	char			 ar_pass[256];
	/*
	 * AUTH_MSG_TOKEN: 1 when the worker takes the accepted context over
	 * (SOCKS5 GSSAPI, RFC 1961, wraps every byte of the session with
	 * it); 0 when a login is all it asks (HTTP Negotiate).
	 */
	uint8_t			 ar_keep;
	uint16_t		 ar_toklen;	/* AUTH_MSG_TOKEN only */
	uint8_t			 ar_token[AUTH_TOKEN_MAX];
};
/* The bytes of a request that are sent: its token as long as it is. */
#define AUTH_REQUEST_LEN(r) \
	(offsetof(struct auth_request, ar_token) + (r)->ar_toklen)
struct auth_reply {
	uint64_t		 ap_sid;
	uint8_t			 ap_status;
	uint8_t			 ap_ngroups;
	uint32_t		 ap_usec;	/* time authd spent on it */
	char			 ap_groups[AUTH_MAX_GROUPS][AUTH_GROUP_NAME];
	char			 ap_msg[192];
	char			 ap_user[256];	/* PAM_USER: the canonical name */
	char			 ap_principal[256]; /* Kerberos: whose ticket */
	uint32_t		 ap_valid_s;	/* Kerberos: the ticket's time left */
	/* PAM: authd's cache holds it until then (CLOCK_MONOTONIC ms) */
	int64_t			 ap_cache_until_ms;
	uint8_t			 ap_cache_fresh;	/* PAM checked it just now */
	/*
	 * ar_keep: the token for the client (the AP-REP of mutual
	 * authentication, often none), then the accepted context as
	 * gss_export_sec_context() wrote it, session keys included: sent
	 * only as long as they are, and wiped on both sides once used.
	 */
	uint16_t		 ap_outlen;
	uint16_t		 ap_ctxlen;
	uint8_t			 ap_data[AUTH_REPLY_DATA_MAX];
};
/* The bytes of a reply that are sent. */
#define AUTH_REPLY_LEN(r) \
	(offsetof(struct auth_reply, ap_data) + (r)->ap_outlen + (r)->ap_ctxlen)
const char *auth_status_str(enum auth_status);

/* authd.c, authd_pam.c: the process, and one login checked */
pid_t	 authd_start(const struct conf *, int *, int, char **);
void	 authd_pam_init(const char *, int);
void	 authd_pam_check(struct auth_request *, struct auth_reply *);
void	 authd_pam_account(const char *, const char *, struct auth_reply *);

/* authd_gss.c: Kerberos (SPNEGO or raw krb5) through MIT's GSS-API */
int	 authd_gss_init(const char *, const char *, const char *, uid_t,
	    char **);
void	 authd_gss_check(const struct auth_request *, struct auth_reply *);
void	 authd_gss_release(void);
void	 authd_gss_status(uint32_t, uint32_t, char *, size_t);

/* auth.c: the proxy's side; the session's front end hears the answer */
void	 auth_channel_init(struct worker *);
void	 auth_channel_replace(struct worker *, int);
int	 auth_submit(struct session *, const char *, const char *);

/* auth_cache.c: the proxy's copy of authd's cached logins */
struct auth_answer {		/* what a cached login answers */
	char			 an_user[256];	/* the canonical name */
	uint8_t			 an_ngroups;
	char			 an_groups[AUTH_MAX_GROUPS][AUTH_GROUP_NAME];
};
int	 auth_cache_find(const char *, const char *, const char *,
	    unsigned char[32], uint64_t *, struct auth_answer *);
void	 auth_cache_answer(const char *, const char *,
	    const unsigned char[32], uint64_t, const struct auth_reply *);
void	 auth_cache_clear(void);
uint64_t auth_cache_generation(void);
int	 auth_submit_token(struct session *, const uint8_t *, size_t, int);
void	 auth_forget(struct session *);

#endif /* AUTH_H */
