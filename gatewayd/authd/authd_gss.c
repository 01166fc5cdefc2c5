/*
 * authd_gss.c: one Kerberos login checked, on one of authd's threads:
 * the client's token (an AP-REQ, raw or in SPNEGO: HTTP Negotiate, RFC
 * 4559) accepted with the service's key from krb5_keytab, its principal
 * mapped to a local user, and that user's account checked by PAM.
 *
 * DESIGN. The acceptor credential is acquired once, from the configured
 * keytab (never KRB5_KTNAME, never the machine's default keytab), for the
 * one service principal krb5_service names, and SPNEGO may negotiate
 * Kerberos only: a machine with gss-ntlmssp installed must not quietly
 * accept NTLM. Every login is one round trip (Kerberos needs no more),
 * so no context outlives its call and nothing is kept between logins.
 *
 * The principal becomes a user through gss_localname(), i.e. krb5.conf's
 * auth_to_local rules: by default alice@DEFAULT.REALM is "alice" and a
 * principal of any other realm, or with an instance (HTTP/host, admin),
 * maps to nobody and is refused; a site that trusts another realm says
 * so in krb5.conf, where its other Kerberos services read it too. The
 * user must then exist for NSS and pass PAM's account stack (expired,
 * locked, not allowed here) exactly as a password login does, and
 * PAM_USER is the name the session holds. PAM's auth stack is not run:
 * the KDC authenticated the user; restrictions a site keeps there
 * (pam_succeed_if, pam_listfile) belong in its account stack. root and
 * system accounts (below krb5_min_uid) are never proxy users.
 *
 * Replays: MIT's replay cache (KRB5RCACHEDIR, /var/tmp by default)
 * refuses an authenticator seen before; a token's lifetime is its
 * ticket's, checked against this clock with krb5.conf's clockskew.
 */
#include <sys/types.h>

#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>

#include "auth.h"

/* What a SOCKS5 GSSAPI context must offer (authd_gss_check). */
#define GSS_SOCKS_FLAGS	(GSS_C_MUTUAL_FLAG | GSS_C_INTEG_FLAG | \
			    GSS_C_CONF_FLAG | GSS_C_REPLAY_FLAG | \
			    GSS_C_SEQUENCE_FLAG)

/* SPNEGO, RFC 4178: 1.3.6.1.5.5.2 */
static gss_OID_desc	 gss_spnego_oid = { 6, (void *)"\x2b\x06\x01\x05\x05\x02" };

static struct {
	gss_cred_id_t		 g_cred;
	uid_t			 g_min_uid;
} gss = { GSS_C_NO_CREDENTIAL, 0 };

/* Kerberos by any of its OIDs: RFC 1964's, the pre-RFC one, Microsoft's. */
static int
authd_gss_is_krb5(gss_OID mech)
{
	return (mech != GSS_C_NO_OID && (gss_oid_equal(mech, gss_mech_krb5) ||
	    gss_oid_equal(mech, gss_mech_krb5_old) ||
	    gss_oid_equal(mech, gss_mech_krb5_wrong)));
}

/*
 * GSS-API's words for major and minor status, as one line with no
 * control bytes (also for the proxy's SOCKS5 GSSAPI layer).
 */
void
authd_gss_status(uint32_t major, uint32_t minor, char *out, size_t len)
{
	OM_uint32	 min, ctx = 0;
	gss_buffer_desc	 b;
	size_t		 n = 0;
	int		 pass, i;

	out[0] = '\0';
	/* "Unspecified GSS failure": the mechanism's words say it all. */
	for (pass = GSS_ROUTINE_ERROR(major) == GSS_S_FAILURE && minor != 0;
	    pass < 2; pass++) {
		ctx = 0;
		for (i = 0; i < 4; i++) {
			if (gss_display_status(&min, pass == 0 ? major : minor,
			    pass == 0 ? GSS_C_GSS_CODE : GSS_C_MECH_CODE,
			    GSS_C_NO_OID, &ctx, &b) != GSS_S_COMPLETE)
				break;
			if (b.length > 0 && n < len)
				n += (size_t)snprintf(out + n, len - n, "%s%.*s",
				    n > 0 ? ": " : "", (int)b.length,
				    (const char *)b.value);
			gss_release_buffer(&min, &b);
			if (ctx == 0 || (pass == 0 && minor == 0))
				break;
		}
		if (minor == 0)
			break;
	}
	/* The library's text may quote a name from the token. */
	for (n = 0; out[n] != '\0'; n++)
		if ((unsigned char)out[n] < 0x20 || out[n] == 0x7f)
			out[n] = '?';
}

/*
 * In authd before its threads start, and in gatewayd at start (a missing
 * keytab or key is a configuration error, said before serving): the
 * acceptor credential for service from keytab, Kerberos only.
 */
int
authd_gss_init(const char *keytab, const char *service, const char *rcache,
    uid_t min_uid, char **cause)
{
	gss_key_value_element_desc	 el[2] = { { "keytab", keytab },
					    { "rcache", NULL } };
	gss_key_value_set_desc		 store = { 1, el };
	char				 rcname[4096];
	gss_OID_desc			 mechs[4];
	gss_OID_set_desc		 want = { 4, mechs };
	gss_OID_set_desc		 krb5_only = { 3, mechs + 1 };
	gss_buffer_desc			 nb;
	gss_name_t			 name = GSS_C_NO_NAME;
	OM_uint32			 major, minor;
	char				 why[256];

	/* SPNEGO, and Kerberos by each of its OIDs (a raw token may use any). */
	mechs[0] = gss_spnego_oid;
	mechs[1] = *gss_mech_krb5;
	mechs[2] = *gss_mech_krb5_old;
	mechs[3] = *gss_mech_krb5_wrong;
	gss.g_min_uid = min_uid;
	/*
	 * A replay cache that outlives the process: MIT's default is in
	 * KRB5RCACHEDIR (/var/tmp), which systemd's PrivateTmp discards at
	 * every restart, and a token sniffed before one could be replayed.
	 */
	if (rcache != NULL) {
		snprintf(rcname, sizeof(rcname), "file2:%s", rcache);
		el[1].value = rcname;
		store.count = 2;
	}
	nb.value = (void *)service;
	nb.length = strlen(service);
	if ((major = gss_import_name(&minor, &nb,
	    (gss_OID)GSS_KRB5_NT_PRINCIPAL_NAME, &name)) != GSS_S_COMPLETE) {
		authd_gss_status(major, minor, why, sizeof(why));
		if (asprintf(cause, "krb5_service %s: %s", service, why) < 0)
			*cause = NULL;
		return (-1);
	}
	major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE, &want,
	    GSS_C_ACCEPT, &store, &gss.g_cred, NULL, NULL);
	gss_release_name(&minor, &name);
	if (major != GSS_S_COMPLETE) {
		authd_gss_status(major, minor, why, sizeof(why));
		if (asprintf(cause, "krb5_keytab %s has no key for %s: %s",
		    keytab, service, why) < 0)
			*cause = NULL;
		return (-1);
	}
	if ((major = gss_set_neg_mechs(&minor, gss.g_cred, &krb5_only)) !=
	    GSS_S_COMPLETE) {
		authd_gss_status(major, minor, why, sizeof(why));
		if (asprintf(cause, "SPNEGO limited to Kerberos: %s", why) < 0)
			*cause = NULL;
		gss_release_cred(&minor, &gss.g_cred);
		return (-1);
	}
	return (0);
}

/* gatewayd's own check at start: the credential is not kept there. */
void
authd_gss_release(void)
{
	OM_uint32	 minor;

	if (gss.g_cred != GSS_C_NO_CREDENTIAL)
		gss_release_cred(&minor, &gss.g_cred);
}

/* A name from a ticket, fit for a log line and a user name: no controls. */
static int
authd_gss_name_ok(const gss_buffer_desc *b, size_t max)
{
	const unsigned char	*p = b->value;
	size_t			 i;

	if (b->length == 0 || b->length >= max)
		return (0);
	for (i = 0; i < b->length; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return (0);
	return (1);
}

/* Whether uid may be a proxy user: not root, nobody nor a system account. */
static int
authd_gss_uid_ok(uid_t uid)
{
	return (uid != 0 && uid >= gss.g_min_uid && uid != 65534);
}

/* The principal's local user, refused when it maps to nobody or root. */
static void
authd_gss_user(gss_name_t src, const char *client, struct auth_reply *rep)
{
	struct passwd	 pw, *pwp = NULL;
	gss_buffer_desc	 local = GSS_C_EMPTY_BUFFER;
	OM_uint32	 major, minor;
	char		 user[256], buf[16384];

	major = gss_localname(&minor, src, gss_mech_krb5, &local);
	if (major != GSS_S_COMPLETE || !authd_gss_name_ok(&local,
	    sizeof(user))) {
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%.70s maps to no "
		    "local user (krb5.conf auth_to_local)", rep->ap_principal);
		gss_release_buffer(&minor, &local);
		return;
	}
	memcpy(user, local.value, local.length);
	user[local.length] = '\0';
	gss_release_buffer(&minor, &local);
	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 ||
	    pwp == NULL) {
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%.60s: no such "
		    "user %.40s", rep->ap_principal, user);
		return;
	}
	if (pwp->pw_uid == 0) {
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%.80s: uid 0 is "
		    "never a proxy user", rep->ap_principal);
		return;
	}
	if (!authd_gss_uid_ok(pwp->pw_uid)) {
		/* daemon, www-data, socksgw: no principal should become one. */
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%.50s: %.20s is a "
		    "system account (krb5_min_uid %u)", rep->ap_principal,
		    pwp->pw_name, (unsigned)gss.g_min_uid);
		return;
	}
	/* NSS's spelling, then PAM's account stack and its PAM_USER. */
	authd_pam_account(pwp->pw_name, client, rep);
	/* The name PAM ended with is held to the same rules. */
	if (rep->ap_status == AUTH_OK && strcmp(rep->ap_user, pwp->pw_name) !=
	    0 && (getpwnam_r(rep->ap_user, &pw, buf, sizeof(buf), &pwp) != 0 ||
	    pwp == NULL || !authd_gss_uid_ok(pwp->pw_uid))) {
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "%.60s: PAM named "
		    "%.40s, no proxy user", rep->ap_principal, rep->ap_user);
		rep->ap_user[0] = '\0';
	}
}

/*
 * SOCKS5 GSSAPI (RFC 1961): the session wraps every byte with the
 * accepted context, in the worker; it goes back exported, after the token
 * the client waits for.
 */
static void
authd_gss_export(gss_ctx_id_t *ctx, const gss_buffer_desc *out,
    struct auth_reply *rep)
{
	gss_buffer_desc	 ex = GSS_C_EMPTY_BUFFER;
	OM_uint32	 major, minor;

	if ((major = gss_export_sec_context(&minor, ctx, &ex)) !=
	    GSS_S_COMPLETE) {
		rep->ap_status = AUTH_ERROR;
		authd_gss_status(major, minor, rep->ap_msg,
		    sizeof(rep->ap_msg));
		return;
	}
	if (out->length > UINT16_MAX || ex.length > UINT16_MAX ||
	    out->length + ex.length > AUTH_REPLY_DATA_MAX) {
		rep->ap_status = AUTH_ERROR;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "the context is too "
		    "large to hand over (%zu bytes)", ex.length);
	} else {
		memcpy(rep->ap_data, out->value, out->length);
		memcpy(rep->ap_data + out->length, ex.value, ex.length);
		rep->ap_outlen = (uint16_t)out->length;
		rep->ap_ctxlen = (uint16_t)ex.length;
	}
	explicit_bzero(ex.value, ex.length);
	gss_release_buffer(&minor, &ex);
}

/* Accepts req's token; rep gets the answer and the user. */
void
authd_gss_check(const struct auth_request *req, struct auth_reply *rep)
{
	gss_ctx_id_t	 ctx = GSS_C_NO_CONTEXT;
	gss_name_t	 src = GSS_C_NO_NAME;
	gss_buffer_desc	 in, out = GSS_C_EMPTY_BUFFER, shown;
	gss_OID		 mech = GSS_C_NO_OID;
	OM_uint32	 major, minor, flags = 0, lifetime = 0;

	in.value = (void *)req->ar_token;
	in.length = req->ar_toklen;
	major = gss_accept_sec_context(&minor, &ctx, gss.g_cred, &in,
	    GSS_C_NO_CHANNEL_BINDINGS, &src, &mech, &out, &flags, &lifetime,
	    NULL);
	/* How long the login may be held: no longer than the ticket. */
	rep->ap_valid_s = lifetime == GSS_C_INDEFINITE ? 0 : lifetime;
	if (major == GSS_S_CONTINUE_NEEDED) {
		/* Kerberos takes one message; a second leg is something else. */
		rep->ap_status = AUTH_FAILED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "Negotiate: only "
		    "Kerberos is accepted (the token asked for more rounds)");
		goto done;
	}
	if (major != GSS_S_COMPLETE) {
		/*
		 * The token's fault, as far as can be told: the mechglue
		 * renumbers the Kerberos library's codes (a key missing for
		 * the ticket's kvno looks like a forged ticket), and the
		 * credential exists since the start. Room is left for the
		 * lock-out's note.
		 */
		rep->ap_status = AUTH_FAILED;
		authd_gss_status(major, minor, rep->ap_msg,
		    sizeof(rep->ap_msg) - 64);
		goto done;
	}
	if (!authd_gss_is_krb5(mech)) {
		rep->ap_status = AUTH_FAILED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "Negotiate: a "
		    "mechanism other than Kerberos");
		goto done;
	}
	if (flags & GSS_C_ANON_FLAG) {
		/* WELLKNOWN/ANONYMOUS names nobody, whatever it maps to. */
		rep->ap_status = AUTH_FAILED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "an anonymous "
		    "ticket");
		goto done;
	}
	if (gss_display_name(&minor, src, &shown, NULL) != GSS_S_COMPLETE) {
		rep->ap_status = AUTH_ERROR;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "no principal "
		    "name");
		goto done;
	}
	if (!authd_gss_name_ok(&shown, sizeof(rep->ap_principal))) {
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "a principal name "
		    "with control bytes, or too long");
		gss_release_buffer(&minor, &shown);
		goto done;
	}
	memcpy(rep->ap_principal, shown.value, shown.length);
	rep->ap_principal[shown.length] = '\0';
	gss_release_buffer(&minor, &shown);
	/*
	 * RFC 1961 has the client ask for mutual authentication (a key of
	 * the session's own: a whole session recorded cannot be played
	 * again) and replay and sequence detection (or a message could be
	 * replayed or dropped inside the session unnoticed). A valid ticket
	 * without them guessed nothing: refused, not counted as a failure.
	 */
	if (req->ar_keep && (flags & GSS_SOCKS_FLAGS) != GSS_SOCKS_FLAGS) {
		rep->ap_status = AUTH_REFUSED;
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "the context lacks "
		    "mutual authentication, integrity, confidentiality, replay "
		    "or sequence detection (flags %#x)", (unsigned)flags);
		goto done;
	}
	authd_gss_user(src, req->ar_client, rep);
	if (rep->ap_status == AUTH_OK && rep->ap_user[0] == '\0') {
		rep->ap_status = AUTH_ERROR;	/* no name, no session */
		snprintf(rep->ap_msg, sizeof(rep->ap_msg), "no user name");
	}
	/*
	 * The AP-REP in out (mutual authentication) goes back to SOCKS5
	 * clients only: HTTP proxy clients (curl, Chromium) read
	 * Proxy-Authenticate on a 407 only, and the tunnel's 200 is the
	 * answer they wait for.
	 */
	if (rep->ap_status == AUTH_OK && req->ar_keep)
		authd_gss_export(&ctx, &out, rep);
done:
	gss_release_buffer(&minor, &out);
	if (src != GSS_C_NO_NAME)
		gss_release_name(&minor, &src);
	if (ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
}
