/*
 * audit_syslog.c: auditd's copy of each completed record and each signed
 * checkpoint to syslog (audit_syslog yes), as RFC 5424 messages.
 *
 * A copy off the machine is what makes deleting the newest rows together
 * with their checkpoints visible (socksctl audit verify --checkpoints).
 * Sending never blocks the writer: a full or missing syslog socket is
 * counted (audit_syslog_failed_total) and said once until it works again.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "escape.h"
#include "evidence.h"
#include "log.h"

#include "audit.h"
#include "auditd.h"

static struct {
	int			 sy_fd;
	struct sockaddr_un	 sy_addr;
	int			 sy_pen;
	int			 sy_failing;
	uint64_t		 sy_failed;
	char			 sy_host[GW_NODE_NAME_MAX + 1];
} sy = { .sy_fd = -1 };

/* As root, before auditd drops its privileges. */
void
audit_syslog_open(const struct conf *c)
{
	if (!c->c_audit_syslog)
		return;
	sy.sy_addr.sun_family = AF_UNIX;
	snprintf(sy.sy_addr.sun_path, sizeof(sy.sy_addr.sun_path), "%s",
	    c->c_audit_syslog_socket ? c->c_audit_syslog_socket : "/dev/log");
	sy.sy_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sy.sy_pen = c->c_audit_syslog_pen;
	/* The node's name, as the records' node column has it (RFC 5424
	 * HOSTNAME: printable, no space; node_name is checked for that). */
	snprintf(sy.sy_host, sizeof(sy.sy_host), "%s", c->c_node_name != NULL ?
	    c->c_node_name : "-");
}

void
audit_syslog_close(void)
{
	if (sy.sy_fd != -1)
		close(sy.sy_fd);
	sy.sy_fd = -1;
}

uint64_t
audit_syslog_failed(void)
{
	return (sy.sy_failed);
}

static void
audit_syslog_send(const char *line, int n)
{
	if (n <= 0)
		return;
	if (sendto(sy.sy_fd, line, (size_t)n < ESC_FIELD_MAX * 2 ? (size_t)n :
	    ESC_FIELD_MAX * 2 - 1, MSG_DONTWAIT, (struct sockaddr *)&sy.sy_addr,
	    sizeof(sy.sy_addr)) == -1) {
		/* Counted always; said once until a send works again. */
		sy.sy_failed++;
		if (!sy.sy_failing)
			log_warn("audit_syslog %s: records not sent",
			    sy.sy_addr.sun_path);
		sy.sy_failing = 1;
	} else if (sy.sy_failing) {
		log_info("audit_syslog %s: sending again", sy.sy_addr.sun_path);
		sy.sy_failing = 0;
	}
}

/* "<PRI>1 TIMESTAMP" for a Unix time in ms. */
static void
audit_syslog_stamp(char *ts, size_t len, int64_t ms)
{
	struct tm	 tm;
	time_t		 t = (time_t)(ms / 1000);
	char		 day[32];

	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts, len, "%s.%03dZ", day, (int)(ms % 1000));
}

/*
 * One message per record. Every text field is attacker-chosen or carries
 * attacker-chosen text: each is escaped for structured data (RFC 5424
 * section 6.3.3: '"', '\\' and ']'), and the free-text MSG as a log line,
 * so no name can close the SD element and forge a parameter.
 */
void
audit_syslog_record(const struct audit_rec *r, int64_t seq)
{
	char		 line[ESC_FIELD_MAX * 2], ts[48];
	char		 user[768], cmd[32], dst[768], via[160], client[160];
	char		 close_[300], reason[600];

	if (sy.sy_fd == -1)
		return;
	audit_syslog_stamp(ts, sizeof(ts), r->ar_end_ms);
	esc_sd(user, sizeof(user), r->ar_user[0] ? r->ar_user : "-");
	esc_sd(client, sizeof(client), r->ar_client);
	esc_sd(cmd, sizeof(cmd), r->ar_cmd[0] ? r->ar_cmd : "-");
	esc_sd(dst, sizeof(dst), r->ar_dst_host[0] ? r->ar_dst_host : "-");
	esc_sd(via, sizeof(via), r->ar_dst_addr[0] ? r->ar_dst_addr : "-");
	esc_sd(close_, sizeof(close_), r->ar_close);
	esc_log(reason, sizeof(reason), r->ar_reason);
	/* RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG. */
	audit_syslog_send(line, snprintf(line, sizeof(line), "<%d>1 %s %s "
	    "gatewayd %d %s [socksgw@%d seq=\"%lld\" sid=\"%llu\" "
	    "user=\"%s\" client=\"%s\" cmd=\"%s\" dst=\"%s\" via=\"%s\" "
	    "port=\"%u\" verdict=\"%s\" rule=\"%lld\" up=\"%llu\" "
	    "down=\"%llu\" close=\"%s\" auth=\"%s\"] %s", 16 * 8 +
	    (r->ar_allow ? 6 : 4),
	    ts, sy.sy_host, (int)getpid(), r->ar_type == AR_AUTH ? "auth" :
	    "session", sy.sy_pen, (long long)seq,
	    (unsigned long long)r->ar_sid, user, client, cmd, dst, via,
	    r->ar_dst_port, r->ar_allow ? "allow" : "deny",
	    (long long)r->ar_rule, (unsigned long long)r->ar_up,
	    (unsigned long long)r->ar_down, close_, audit_auth_name(r->ar_auth) ?
	    audit_auth_name(r->ar_auth) : "-", reason));
}

void
audit_syslog_checkpoint(const struct checkpoint *cp,
    const unsigned char *sig)
{
	char	 line[ESC_FIELD_MAX * 2], ts[48], hex[65], sighex[129];

	if (sy.sy_fd == -1)
		return;
	audit_syslog_stamp(ts, sizeof(ts), cp->cp_time_ms);
	evidence_hex(cp->cp_hash, 32, hex);
	evidence_hex(sig, EVIDENCE_SIG_LEN, sighex);
	audit_syslog_send(line, snprintf(line, sizeof(line), "<%d>1 %s %s "
	    "gatewayd %d checkpoint [socksgw@%d kind=\"%s\" seq=\"%lld\" "
	    "hash=\"%s\" time_ms=\"%lld\" sig=\"%s\"]", 16 * 8 + 5, ts,
	    sy.sy_host, (int)getpid(), sy.sy_pen, cp->cp_kind,
	    (long long)cp->cp_seq, hex, (long long)cp->cp_time_ms, sighex));
}
