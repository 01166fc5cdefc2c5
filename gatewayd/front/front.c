/*
 * front.c: which front end a connection speaks, told by its first byte
 * (SOCKS5 0x05, SOCKS4 0x04, an HTTP method's capital letter), and what
 * the front ends share: wiping a consumed message, and authd's answer
 * applied to the session.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "stat.h"

#include "authd/auth.h"
#include "base/clock.h"
#include "base/stats.h"
#include "base/wipe.h"

#include "proxy/worker.h"

#include "front.h"

/* Until the first byte: every connection starts here. */
static enum step
front_detect_read(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->s_bev);
	uint8_t		 first;

	if (evbuffer_copyout(in, &first, 1) != 1)
		return (STEP_WAIT);
	/* Anything else is SOCKS's to refuse in its own words. */
	s->s_front = first >= 'A' && first <= 'Z' &&
	    s->s_worker->w_conf->c_http ? &front_http : &front_socks;
	return (s->s_front->fe_read(s));
}

/*
 * A connection that said nothing (or only a load balancer's header) is
 * closed without a word.
 */
size_t
front_silent_reply(const struct session *s, uint8_t rep,
    const struct sockaddr *sa, uint8_t *buf, size_t len)
{
	(void)s;
	(void)rep;
	(void)sa;
	(void)buf;
	(void)len;
	return (0);
}

const struct front	 front_detect = {
	.fe_read = front_detect_read,
	.fe_reply = front_silent_reply,
};

/*
 * Consumes the first n bytes of the client's input, wiped: a handshake
 * message with a password in it leaves no copy in the freed chains, and
 * what follows it (early data) stays.
 */
void
front_consume(struct session *s, size_t n)
{
	wipe_drain(bufferevent_get_input(s->s_bev), n);
}

/*
 * authd's answer, applied to the session whatever its protocol: counted;
 * a failure logged and audited; a success makes the name PAM ended with
 * the session's user, with its groups. NULL when logged in, else the
 * refusal's words, for the front end to say in its own protocol.
 */
const char *
front_auth_answer(struct session *s, const struct auth_reply *rep)
{
	char		 peer[ADDR_STRLEN], why[256], *canon;
	struct timespec	 now;
	int		 i;

	STAT_ADD(rep->ap_status == AUTH_OK ? GW_STAT_AUTH_OK :
	    rep->ap_status == AUTH_LOCKED ? GW_STAT_LOCKOUTS :
	    rep->ap_status == AUTH_BUSY ? GW_STAT_AUTH_BUSY :
	    rep->ap_status == AUTH_GONE ? GW_STAT_AUTHD_DOWN :
	    GW_STAT_AUTH_FAILED, 1);
	/*
	 * A Kerberos login names nobody until authd has read the ticket: a
	 * refused one is logged and audited under the principal, when known.
	 */
	if (rep->ap_status != AUTH_OK && s->s_user[0] == '\0' &&
	    rep->ap_principal[0] != '\0' && (canon = strdup(
	    rep->ap_principal)) != NULL) {
		free(s->s_user);
		s->s_user = canon;
	}
	if (rep->ap_status != AUTH_OK) {
		log_warnx("auth: client %s user %s: %s%s%s",
		    addr_str((struct sockaddr *)&s->s_peer, peer, sizeof(peer)),
		    s->s_user[0] ? s->s_user : "-",
		    auth_status_str(rep->ap_status),
		    rep->ap_msg[0] ? ": " : "", rep->ap_msg);
		snprintf(why, sizeof(why), "%s%s%s",
		    auth_status_str(rep->ap_status), rep->ap_msg[0] ? ": " : "",
		    rep->ap_msg);
		session_audit(s, AR_AUTH, why);
		return (rep->ap_status == AUTH_LOCKED ? "auth: locked out" :
		    rep->ap_status == AUTH_BUSY ? "auth: authd busy" :
		    rep->ap_status == AUTH_GONE ? "auth: authd unavailable" :
		    rep->ap_status == AUTH_ERROR ? "auth: error" :
		    "auth: failed");
	}
	/*
	 * The name PAM ended with is the user from now on: policy, limits,
	 * quotas, caps, `user disable`, the audit and the logs see
	 * "alice" when a case-insensitive backend let "ALICE" in.
	 */
	if (rep->ap_user[0] == '\0' && s->s_user[0] == '\0')
		return ("auth: error");	/* no name to hold the session */
	if (rep->ap_user[0] != '\0' && strcmp(rep->ap_user, s->s_user) != 0) {
		if ((canon = strdup(rep->ap_user)) == NULL)
			return ("out of memory");
		log_debug("session %llu: user %s is %s for %s",
		    (unsigned long long)s->s_id, rep->ap_principal[0] ?
		    rep->ap_principal : s->s_user, canon,
		    rep->ap_principal[0] ? "Kerberos" : "PAM");
		free(s->s_user);
		s->s_user = canon;
	}
	if (rep->ap_ngroups > 0 && (s->s_groups = calloc(rep->ap_ngroups,
	    sizeof(*s->s_groups))) != NULL) {
		for (i = 0; i < rep->ap_ngroups; i++)
			if ((s->s_groups[i] = strndup(rep->ap_groups[i],
			    AUTH_GROUP_NAME - 1)) != NULL)
				s->s_ngroups++;
	}
	s->s_authed = 1;
	/* A kept HTTP connection holds a Kerberos login this long at most. */
	s->s_login_until = rep->ap_valid_s > 0 ? gw_clock_ms() +
	    (int64_t)rep->ap_valid_s * 1000 : 0;
	if (log_debug_enabled()) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		log_debug("session %llu: user %s authenticated (%d groups) "
		    "in %lld us, %u us of them in authd",
		    (unsigned long long)s->s_id, s->s_user, s->s_ngroups,
		    (long long)(now.tv_sec - s->s_auth_sent.tv_sec) * 1000000 +
		    (now.tv_nsec - s->s_auth_sent.tv_nsec) / 1000,
		    rep->ap_usec);
	}
	return (NULL);
}
