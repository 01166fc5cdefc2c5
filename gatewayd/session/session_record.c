/*
 * session_record.c: what a session leaves behind: its audit records, its
 * close line in the log, and its handshake's latency in the metrics.
 * session.c decides when; this file decides what they say.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "log.h"
#include "policy.h"
#include "socks5.h"

#include "base/stats.h"

#include "phases.h"

/* The line a closed session leaves in the log (log_sessions). */
/* The words of each close reason, in the audit and the close line. */
const char *const close_reason_text[CLOSE_MAX] = {
	[CLOSE_REFUSED] = "refused",
	[CLOSE_KILLED] = "killed by admin",
	[CLOSE_CLIENT] = "client closed",
	[CLOSE_REMOTE] = "remote closed",
	[CLOSE_CLIENT_ERROR] = "client error",
	[CLOSE_REMOTE_ERROR] = "remote error",
	[CLOSE_CLIENT_HANDSHAKE] = "client closed during handshake",
	[CLOSE_CLIENT_HANDSHAKE_ERROR] = "client error during handshake",
	[CLOSE_HANDSHAKE_TIMEOUT] = "handshake timeout",
	[CLOSE_IDLE] = "idle timeout",
	[CLOSE_QUOTA] = "limit: quota",
	[CLOSE_REVOKED] = "policy-revoked",
	[CLOSE_SHUTDOWN] = "shutdown",
	[CLOSE_NO_MEMORY] = "out of memory",
	[CLOSE_KEEPALIVE] = "response complete",
};

void
session_log_close(struct session *s, const char *reason)
{
	struct timespec	 now;
	char		 peer[ADDR_STRLEN], dst[300], via[ADDR_STRLEN];
	char		 ebuf[128];
	double		 secs;

	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - s->s_started.tv_sec) +
	    (double)(now.tv_nsec - s->s_started.tv_nsec) / 1e9;
	addr_str((struct sockaddr *)&s->s_peer, peer, sizeof(peer));
	session_dst_text(s, dst, sizeof(dst));
	if (s->s_fd[SIDE_REMOTE] != -1)
		addr_str((struct sockaddr *)&s->s_dst, via, sizeof(via));
	else
		snprintf(via, sizeof(via), "-");
	log_info("session %llu closed: user=%s client=%s cmd=%s dst=%s via=%s "
	    "rule=%lld up=%llu down=%llu duration=%.3fs reason=%s%s%s",
	    (unsigned long long)s->s_id, s->s_authed ? s->s_user : "-", peer,
	    s5_cmd_str(s->s_cmd), dst, via,
	    (long long)s->s_rule_id,
	    (unsigned long long)s->s_bytes[SIDE_CLIENT],
	    (unsigned long long)s->s_bytes[SIDE_REMOTE], secs, reason,
	    s->s_errno ? ": " : "",
	    s->s_errno ? strerror_r(s->s_errno, ebuf, sizeof(ebuf)) : "");
}

/* Accept to relay (or to the end of a session that never relayed). */
void
session_observe_handshake(struct session *s)
{
	struct timespec	 now;

	if (s->s_timed)
		return;
	s->s_timed = 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	stat_observe(HIST_HANDSHAKE, (double)(now.tv_sec -
	    s->s_started.tv_sec) * 1e3 + (double)(now.tv_nsec -
	    s->s_started.tv_nsec) / 1e6);
}

/*
 * Queues the session's audit record: AR_START when the relay begins,
 * AR_END or AR_WHOLE at the close, AR_AUTH for a failed login (what is
 * the reason or the close reason, by type).
 */
void
session_audit(struct session *s, enum audit_type type, const char *what)
{
	struct audit_rec	 r;
	struct timespec		 now;
	char			 ebuf[96];
	const struct sockaddr	*dst = (const struct sockaddr *)&s->s_dst;

	if (!audit_enabled())
		return;
	memset(&r, 0, sizeof(r));
	r.ar_type = (uint8_t)type;
	r.ar_sid = s->s_id;
	r.ar_start_ms = s->s_start_ms;
	clock_gettime(CLOCK_REALTIME, &now);
	r.ar_end_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (s->s_user != NULL && (s->s_authed || type == AR_AUTH))
		snprintf(r.ar_user, sizeof(r.ar_user), "%s", s->s_user);
	addr_ip(&s->s_peer, r.ar_client, sizeof(r.ar_client));
	r.ar_client_port = addr_port((struct sockaddr *)&s->s_peer);
	r.ar_proto = s->s_proto;
	r.ar_auth = s->s_login != 0 ? s->s_login : AUDIT_AUTH_NONE;
	if (s->s_ident != NULL)
		snprintf(r.ar_ident, sizeof(r.ar_ident), "%s", s->s_ident);
	if (type == AR_AUTH) {
		r.ar_allow = 0;
		snprintf(r.ar_reason, sizeof(r.ar_reason), "%s", what);
		snprintf(r.ar_close, sizeof(r.ar_close), "auth failed");
		audit_push(&r, 0);
		return;
	}
	snprintf(r.ar_cmd, sizeof(r.ar_cmd), "%s", s5_cmd_str(s->s_cmd));
	if (s->s_dst_name != NULL)
		snprintf(r.ar_dst_host, sizeof(r.ar_dst_host), "%s",
		    s->s_dst_name);
	r.ar_dst_port = s->s_dst_port;
	/* The address used: connected to, or the last one tried. */
	if (s->s_dst.ss_family != 0) {
		addr_ip(&s->s_dst, r.ar_dst_addr, sizeof(r.ar_dst_addr));
		if (s->s_dst_name == NULL)
			snprintf(r.ar_dst_host, sizeof(r.ar_dst_host), "%s",
			    r.ar_dst_addr);
		if (s->s_policy != NULL)
			policy_country(s->s_policy, dst, r.ar_country);
	}
	r.ar_allow = s->s_allowed;
	r.ar_rule = s->s_rule_id;
	snprintf(r.ar_reason, sizeof(r.ar_reason), "%s", s->s_reason ?
	    s->s_reason : s->s_refusal ? s->s_refusal : what != NULL ? what :
	    "");
	r.ar_up = s->s_bytes[SIDE_CLIENT];
	r.ar_down = s->s_bytes[SIDE_REMOTE];
	udp_record(s, &r);
	if (type != AR_START)
		snprintf(r.ar_close, sizeof(r.ar_close), "%s%s%s", what,
		    s->s_errno ? ": " : "", s->s_errno ?
		    strerror_r(s->s_errno, ebuf, sizeof(ebuf)) : "");
	else
		s->s_audit_open = 1;
	/* Start and close take the places the admission kept for them. */
	audit_push(&r, s->s_audit_reserved > 0);
	if (s->s_audit_reserved > 0)
		s->s_audit_reserved--;
}

/* The destination as the client asked for it, for logs and listings. */
void
session_dst_text(const struct session *s, char *buf, size_t len)
{
	if (s->s_dst_name != NULL)
		snprintf(buf, len, "%s:%u", s->s_dst_name, s->s_dst_port);
	else if (s->s_dst.ss_family != 0)
		addr_str((const struct sockaddr *)&s->s_dst, buf, len);
	else
		snprintf(buf, len, "-");
}

