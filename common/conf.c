/*
 * conf.c: gatewayd.conf, one "keyword value" per line. Every error names
 * FILE:LINE, and all of a file's errors are reported together (tmux cfg.c
 * style) so an operator fixes them in one pass. A configuration is
 * immutable once loaded and reference counted: the main thread swaps in a
 * new one on SIGHUP and each worker drops the old one on its own thread.
 * This file holds the keyword table and a configuration's life; reading
 * one keyword's value is conf_value.c's.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "central.h"
#include "conf.h"
#include "conf_int.h"

/*
 * Every keyword, its type, bounds, default and whether a reload applies
 * it (the daemon's reload says which restart-only ones changed). Adding a
 * keyword: a row here, the field in struct conf, the man page.
 */

#define OFF(m)	offsetof(struct conf, m)
const struct conf_keyword conf_keywords[] = {
	{ "listen", CT_LISTEN, 0, 0, 0, NULL, CK_RESTART },
	{ "auth", CT_AUTH, OFF(c_auth), 0, 0, "none", CK_RESTART },
	{ "pam_service", CT_STRING, OFF(c_pam_service), 0, 0,
	    "socksgw", CK_RESTART },
	{ "krb5_keytab", CT_PATH, OFF(c_krb5_keytab), 0, 0,
	    NULL, CK_RESTART },
	{ "krb5_service", CT_STRING, OFF(c_krb5_service), 0, 0,
	    NULL, CK_RESTART },
	{ "krb5_rcache", CT_PATH, OFF(c_krb5_rcache), 0, 0,
	    NULL, CK_RESTART },
	{ "krb5_min_uid", CT_INT, OFF(c_krb5_min_uid), 0, INT_MAX,
	    "1000", CK_RESTART },
	{ "auth_workers", CT_INT, OFF(c_auth_workers), 1, 64, "4", CK_RESTART },
	{ "auth_fail_limit", CT_INT, OFF(c_auth_fail_limit), 0, 1000000,
	    "5", CK_RESTART },
	{ "auth_client_fail_limit", CT_INT, OFF(c_auth_client_fail_limit),
	    1, 1000000, "50", CK_RESTART },
	{ "auth_client_inflight", CT_INT, OFF(c_auth_client_inflight), 1, 64,
	    "2", CK_RESTART },
	{ "auth_client_queue", CT_INT, OFF(c_auth_client_queue), 1, 4096,
	    "64", CK_RESTART },
	{ "auth_ipv6_prefix", CT_INT, OFF(c_auth_ipv6_prefix), 32, 128,
	    "64", CK_RESTART },
	{ "auth_fail_window", CT_INT, OFF(c_auth_fail_window), 1, 86400,
	    "60", CK_RESTART },
	{ "auth_lockout", CT_INT, OFF(c_auth_lockout), 1, 7 * 86400,
	    "300", CK_RESTART },
	{ "auth_cache_ttl", CT_INT, OFF(c_auth_cache_ttl), 0, 86400,
	    "0", CK_RESTART },
	/* A path, or the fleet's postgresql:// URL: conf_load sorts it out. */
	{ "policy_db", CT_TEXT, OFF(c_policy_db), 0, 0, NULL, CK_RESTART },
	{ "policy_snapshot", CT_PATH, OFF(c_policy_snapshot), 0, 0, NULL,
	    CK_RESTART },
	{ "policy_max_age", CT_INT, OFF(c_policy_max_age), 60, 30 * 86400,
	    "3600", CK_LIVE },
	{ "audit_db", CT_PATH, OFF(c_audit_db), 0, 0, NULL, CK_RESTART },
	{ "audit_user", CT_STRING, OFF(c_audit_user), 0, 0, NULL, CK_RESTART },
	{ "geoip_db", CT_PATH, OFF(c_geoip_db), 0, 0, NULL, CK_LIVE },
	{ "audit_queue", CT_INT, OFF(c_audit_queue), 64, 10000000,
	    "32768", CK_RESTART },
	{ "audit_failure", CT_FAILURE, OFF(c_audit_block), 0, 0,
	    "block", CK_RESTART },
	{ "audit_cache_size", CT_SIZE, OFF(c_audit_cache_size), 1024 * 1024,
	    8192LL * 1024 * 1024, "64M", CK_RESTART },
	{ "audit_retention_days", CT_INT, OFF(c_audit_retention_days), 0, 36500,
	    "0", CK_RESTART },
	{ "audit_syslog", CT_BOOL, OFF(c_audit_syslog), 0, 0,
	    NULL, CK_RESTART },
	{ "audit_syslog_socket", CT_PATH, OFF(c_audit_syslog_socket), 0, 0,
	    NULL, CK_RESTART },
	{ "audit_syslog_pen", CT_INT, OFF(c_audit_syslog_pen), 1, INT_MAX,
	    NULL, CK_RESTART },
	{ "audit_central", CT_TEXT, OFF(c_audit_central), 0, 0, NULL,
	    CK_RESTART },
	{ "geoip_country_path", CT_TEXT, OFF(c_geoip_path), 0, 0,
	    NULL, CK_LIVE },
	{ "timezone", CT_STRING, OFF(c_timezone), 0, 0, NULL, CK_RESTART },
	{ "resolv_conf", CT_PATH, OFF(c_resolv_conf), 0, 0,
	    "/etc/resolv.conf", CK_LIVE },
	{ "hosts_file", CT_PATH, OFF(c_hosts_file), 0, 0,
	    "/etc/hosts", CK_LIVE },
	{ "control_socket", CT_PATH, OFF(c_control_socket), 0, 0,
	    NULL, CK_RESTART },
	{ "runtime_dir", CT_PATH, OFF(c_runtime_dir), 0, 0, NULL, CK_RESTART },
	{ "control_group", CT_STRING, OFF(c_control_group), 0, 0,
	    NULL, CK_RESTART },
	{ "metrics_listen", CT_ADDRESS, OFF(c_metrics), 0, 0,
	    NULL, CK_RESTART },
	{ "metrics_allow", CT_CIDRS, OFF(c_metrics_allow), 0, 0,
	    NULL, CK_RESTART },
	{ "pac_allow", CT_CIDRS, OFF(c_pac_allow), 0, 0, NULL, CK_LIVE },
	{ "proxy_trusted", CT_CIDRS, OFF(c_proxy_trusted), 0, 0, NULL,
	    CK_LIVE },
	{ "proxy_timeout", CT_INT, OFF(c_proxy_timeout), 1, 60, "3", CK_LIVE },
	{ "proxy_pending", CT_INT, OFF(c_proxy_pending), 1, 10000000, "1024",
	    CK_LIVE },
	{ "advertise", CT_CIDRS, OFF(c_advertise), 0, 0, NULL, CK_LIVE },
	{ "node_name", CT_STRING, OFF(c_node_name), 0, 0, NULL, CK_RESTART },
	{ "handshake_per_client", CT_INT, OFF(c_handshake_per_client),
	    0, 10000000, NULL, CK_LIVE },
	{ "user", CT_STRING, OFF(c_user), 0, 0, NULL, CK_RESTART },
	{ "workers", CT_INT, OFF(c_workers), 1, GW_MAX_WORKERS,
	    NULL, CK_RESTART },
	{ "cpu_affinity", CT_BOOL, OFF(c_cpu_affinity), 0, 0, "yes",
	    CK_RESTART },
	{ "handshake_timeout", CT_INT, OFF(c_handshake_timeout), 1, 3600,
	    "10", CK_LIVE },
	{ "connect_timeout", CT_INT, OFF(c_connect_timeout), 1, 3600,
	    "10", CK_LIVE },
	{ "bind_timeout", CT_INT, OFF(c_bind_timeout), 1, 86400,
	    "60", CK_LIVE },
	{ "idle_timeout", CT_INT, OFF(c_idle_timeout), 1, 7 * 86400,
	    "300", CK_LIVE },
	{ "shutdown_grace", CT_INT, OFF(c_shutdown_grace), 0, 86400,
	    "30", CK_LIVE },
	{ "max_sessions", CT_INT, OFF(c_max_sessions), 1, GW_MAX_SESSIONS,
	    NULL, CK_LIVE },
	{ "relay_buffer", CT_SIZE, OFF(c_relay_buffer), 4096, 64 * 1024 * 1024,
	    "256K", CK_LIVE },
	{ "splice_max", CT_REMOVED, 0, 0, 0, NULL, CK_LIVE },
	{ "log_verbose", CT_BOOL, OFF(c_log_verbose), 0, 0, NULL, CK_LIVE },
	{ "log_sessions", CT_BOOL, OFF(c_log_sessions), 0, 0, "yes", CK_LIVE },
	{ "socks4", CT_BOOL, OFF(c_socks4), 0, 0, NULL, CK_LIVE },
	{ "http", CT_BOOL, OFF(c_http), 0, 0, "yes", CK_LIVE },
	{ "pac_file", CT_PATH, OFF(c_pac_file), 0, 0, NULL, CK_LIVE },
};
const size_t conf_nkeywords = sizeof(conf_keywords) /
    sizeof(conf_keywords[0]);
#undef OFF

/*
 * Set when an allocation failed during conf_load() (called on one thread
 * at a time: the main thread, or socksctl).
 */
int		 conf_oom;

void
conf_error(struct conf_errors *ce, const char *file, int line,
    const char *fmt, ...)
{
	char	 msg[512];
	char	*text;
	int	 n;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		n = asprintf(&text, "%s%s%s:%d: %s", ce->ce_text ? ce->ce_text :
		    "", ce->ce_text ? "\n" : "", file, line, msg);
	else
		n = asprintf(&text, "%s%s%s: %s", ce->ce_text ? ce->ce_text :
		    "", ce->ce_text ? "\n" : "", file, msg);
	ce->ce_count++;
	if (n < 0) {
		conf_oom = 1;
		return;
	}
	free(ce->ce_text);
	ce->ce_text = text;
}

/* NULL when memory runs out: the whole load then fails, never the daemon. */
char *
conf_xstrdup(const char *s)
{
	char	*d;

	if ((d = strdup(s)) == NULL)
		conf_oom = 1;
	return (d);
}

/* A configuration of the table's defaults (workers, max_sessions: 0, auto). */
struct conf *
conf_default(void)
{
	struct conf_errors	 ce;
	struct conf		*c;
	size_t			 i;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		conf_oom = 1;
		return (NULL);
	}
	c->c_refs = 1;
	memset(&ce, 0, sizeof(ce));
	for (i = 0; i < sizeof(conf_keywords) / sizeof(conf_keywords[0]); i++)
		if (conf_keywords[i].ck_default != NULL)
			conf_set(c, &conf_keywords[i],
			    conf_keywords[i].ck_default, "(default)", 0, &ce);
	/* A default that does not parse is this file's bug, not the admin's. */
	if (ce.ce_count > 0)
		abort();
	return (c);
}

void
conf_ref(struct conf *c)
{
	atomic_fetch_add(&c->c_refs, 1);
}

/* The strings a keyword of this type holds. */
static int
conf_is_string(enum conf_type t)
{
	return (t == CT_PATH || t == CT_STRING || t == CT_TEXT);
}

void
conf_unref(struct conf *c)
{
	size_t	 i;

	if (c == NULL || atomic_fetch_sub(&c->c_refs, 1) != 1)
		return;
	for (i = 0; i < sizeof(conf_keywords) / sizeof(conf_keywords[0]); i++)
		if (conf_is_string(conf_keywords[i].ck_type))
			free(*(char **)((char *)c +
			    conf_keywords[i].ck_offset));
	free(c->c_pac);		/* read from pac_file, not a keyword */
	free(c->c_policy_central);	/* policy_db's, when a URL */
	free(c->c_path);
	free(c);
}

/*
 * The sessions whose start and close records audit_queue can hold in
 * reserve (two places each), with a quarter of it left for the rest.
 */
int
conf_audit_sessions(const struct conf *c)
{
	return (c->c_audit_queue / 8 * 3);
}

const struct conf_keyword *
conf_find_keyword(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(conf_keywords) / sizeof(conf_keywords[0]); i++)
		if (strcmp(conf_keywords[i].ck_name, name) == 0)
			return (&conf_keywords[i]);
	return (NULL);
}

/* Parses one line in place; blank and comment lines are fine. */
static void
conf_line(struct conf *c, char *text, const char *file, int line,
    int *seen, struct conf_errors *ce)
{
	const struct conf_keyword *kw;
	char		*p, *key, *value, *end;
	size_t		 idx;

	if ((p = strchr(text, '#')) != NULL)
		*p = '\0';
	for (key = text; isspace((unsigned char)*key); key++)
		;
	if (*key == '\0')
		return;
	for (p = key; *p != '\0' && !isspace((unsigned char)*p); p++)
		;
	value = p;
	if (*p != '\0')
		*value++ = '\0';
	while (isspace((unsigned char)*value))
		value++;
	end = value + strlen(value);
	while (end > value && isspace((unsigned char)end[-1]))
		*--end = '\0';

	if ((kw = conf_find_keyword(key)) == NULL) {
		conf_error(ce, file, line, "unknown keyword '%s'", key);
		return;
	}
	if (*value == '\0') {
		conf_error(ce, file, line, "%s: missing value", key);
		return;
	}
	if (kw->ck_type != CT_PATH && kw->ck_type != CT_TEXT &&
	    kw->ck_type != CT_CIDRS && kw->ck_type != CT_AUTH &&
	    kw->ck_type != CT_LISTEN &&
	    strpbrk(value, " \t") != NULL) {
		conf_error(ce, file, line, "%s: one value expected, got '%s'",
		    key, value);
		return;
	}
	idx = (size_t)(kw - conf_keywords);
	if (kw->ck_type != CT_LISTEN && seen[idx]) {
		conf_error(ce, file, line, "%s given twice", key);
		return;
	}
	/* A bad value does not count: the line that fixes it is no twin. */
	if (conf_set(c, kw, value, file, line, ce) == 0)
		seen[idx] = line;
}

/*
 * Loads FILE. Returns a configuration with one reference, or NULL with
 * *cause holding every error, one "FILE:LINE: message" a line.
 */
struct conf *
conf_load(const char *path, char **cause)
{
	struct conf_errors	 ce = { NULL, 0, 0 };
	int			 seen[sizeof(conf_keywords) /
				    sizeof(conf_keywords[0])] = { 0 };
	struct conf		*c;
	const char		*why;
	FILE			*f;
	char			*line = NULL;
	size_t			 cap = 0, i;
	ssize_t			 n;
	int			 lineno = 0;

	if ((f = fopen(path, "r")) == NULL) {
		if (asprintf(cause, "%s: %s", path, strerror(errno)) < 0)
			*cause = NULL;
		return (NULL);
	}
	conf_oom = 0;
	if ((c = conf_default()) == NULL) {
		fclose(f);
		*cause = NULL;		/* the caller says "out of memory" */
		return (NULL);
	}
	c->c_path = conf_xstrdup(path);
	while ((n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if ((size_t)n != strlen(line)) {
			conf_error(&ce, path, lineno, "NUL byte in line");
			continue;
		}
		conf_line(c, line, path, lineno, seen, &ce);
	}
	if (ferror(f))
		conf_error(&ce, path, 0, "read error: %s", strerror(errno));
	free(line);
	fclose(f);

	/*
	 * RFC 5424's SD-ID names the operator's own enterprise number; a
	 * made-up or documentation number (32473) would make every record's
	 * structured data claim someone else's namespace.
	 */
	if (c->c_audit_syslog && c->c_audit_syslog_pen == 0)
		conf_error(&ce, path, seen[conf_find_keyword("audit_syslog") -
		    conf_keywords], "audit_syslog yes needs audit_syslog_pen "
		    "(your organisation's IANA private enterprise number)");

	/*
	 * auditd's account is what keeps the proxy's (which parses hostile
	 * traffic) from writing the log: one account for both would undo it.
	 */
	if (c->c_user != NULL && strcmp(c->c_user, c->c_audit_user != NULL ?
	    c->c_audit_user : GW_AUDIT_USER) == 0)
		conf_error(&ce, path, seen[conf_find_keyword(c->c_audit_user !=
		    NULL ? "audit_user" : "user") - conf_keywords],
		    "audit_user and user are both %s: auditd needs an account "
		    "of its own, or the proxy could rewrite the audit log",
		    c->c_user);

	/*
	 * audit_failure block reserves a close record's place in the audit
	 * queue for every session: the queue must hold them all, and room
	 * to spare for refusals and start records.
	 */
	if (c->c_audit_db != NULL && c->c_audit_block &&
	    c->c_max_sessions > conf_audit_sessions(c))
		conf_error(&ce, path, seen[conf_find_keyword("max_sessions") -
		    conf_keywords], "max_sessions %d is more than audit_queue "
		    "%d can record (%d): raise audit_queue to at least %d",
		    c->c_max_sessions, c->c_audit_queue,
		    conf_audit_sessions(c), c->c_max_sessions / 3 * 8 + 8);

	/*
	 * A zone name the C library does not know silently means UTC, so
	 * every time window would run hours off: it must name a zone file.
	 */
	if (c->c_timezone != NULL && !conf_zone_ok(c->c_timezone))
		conf_error(&ce, path, seen[conf_find_keyword("timezone") -
		    conf_keywords], "timezone %s: no such zone in %s (e.g. "
		    "Europe/Paris, UTC)", c->c_timezone, CONF_ZONEINFO);

	/*
	 * SOCKS4 carries no password: beside `auth pam` it would be a way
	 * in without authentication for every rule that names no user.
	 */
	if (c->c_socks4 && c->c_auth != AUTH_NONE)
		conf_error(&ce, path, seen[conf_find_keyword("socks4") -
		    conf_keywords], "socks4 yes cannot go with auth %s: SOCKS4 "
		    "clients carry no credentials and would not be "
		    "authenticated", c->c_auth == AUTH_PAM ? "pam" :
		    c->c_auth == AUTH_GSSAPI ? "gssapi" : "pam gssapi");

	/* Kerberos needs its key and the name clients ask tickets for. */
	if ((c->c_auth & AUTH_GSSAPI) && (c->c_krb5_keytab == NULL ||
	    c->c_krb5_service == NULL))
		conf_error(&ce, path, seen[conf_find_keyword("auth") -
		    conf_keywords], "auth gssapi needs krb5_keytab and "
		    "krb5_service (e.g. HTTP/proxy.example.org)");
	if (c->c_krb5_service != NULL && (strchr(c->c_krb5_service, '/') ==
	    NULL || c->c_krb5_service[0] == '/'))
		conf_error(&ce, path, seen[conf_find_keyword("krb5_service") -
		    conf_keywords], "krb5_service %s: expected service/host, "
		    "e.g. HTTP/proxy.example.org", c->c_krb5_service);

	/* A PAC file nobody could fetch is a mistake worth saying. */
	if (!c->c_http && c->c_pac_file != NULL)
		conf_error(&ce, path, seen[conf_find_keyword("pac_file") -
		    conf_keywords], "pac_file needs http yes: the PAC file is "
		    "served over HTTP");

	/*
	 * A PROXY protocol header names the client every rule and record
	 * believes: only balancers the configuration names may send one.
	 */
	for (i = 0; i < c->c_nlisten; i++)
		if (c->c_listen[i].cl_proxy && c->c_proxy_trusted.cc_n == 0) {
			conf_error(&ce, path, seen[conf_find_keyword("listen") -
			    conf_keywords], "listen %s proxy_protocol needs "
			    "proxy_trusted (the load balancers' addresses)",
			    c->c_listen[i].cl_text);
			break;
		}

	/* One address per family, whole: what UDP and BIND replies name. */
	for (i = 0; i < c->c_advertise.cc_n; i++)
		if (c->c_advertise.cc_list[i].ac_len != (c->c_advertise.
		    cc_list[i].ac_family == AF_INET ? 32 : 128) || (i == 1 &&
		    c->c_advertise.cc_list[0].ac_family == c->c_advertise.
		    cc_list[1].ac_family) || i > 1) {
			conf_error(&ce, path, seen[conf_find_keyword(
			    "advertise") - conf_keywords], "advertise: one "
			    "address per family (IPv4, IPv6), no prefix");
			break;
		}

	conf_fleet(c, path, seen, &ce);	/* node_name, the central store */
	/*
	 * Without a log_sessions line, a closed session gets its info line
	 * only when no audit trail records it. Beside audit_db each line
	 * repeats a record, costs a tenth of the connection rate (bench/ab.sh
	 * -B "log_sessions no"), and past journald's default rate limit
	 * (10,000 lines in 30 s, 333 sessions/s) gets the gateway's own
	 * warnings dropped with them.
	 */
	if (!seen[conf_find_keyword("log_sessions") - conf_keywords])
		c->c_log_sessions = c->c_audit_db == NULL;
	if (c->c_nlisten == 0 && ce.ce_count == 0) {
		/* Safe default: loopback only. */
		addr_parse_hostport("127.0.0.1:1080", &c->c_listen[0].cl_ss,
		    &c->c_listen[0].cl_len, &why);
		addr_str((struct sockaddr *)&c->c_listen[0].cl_ss,
		    c->c_listen[0].cl_text, sizeof(c->c_listen[0].cl_text));
		c->c_nlisten = 1;
	}
	/*
	 * Out of memory somewhere: this configuration is refused like a bad
	 * one (a reload keeps the running one); never a fatal error.
	 */
	if (conf_oom) {
		conf_unref(c);
		free(ce.ce_text);
		*cause = strdup("out of memory reading the configuration");
		return (NULL);
	}
	if (ce.ce_count > 0) {
		conf_unref(c);
		*cause = ce.ce_text;
		return (NULL);
	}
	return (c);
}

/*
 * The files a configuration names must be readable now: a typo in a path
 * is caught by -n and by a reload rather than at the first DNS query.
 * The PAC file is read into the configuration here (gatewayd serves it
 * from memory; socksctl, which never does, never reads it).
 */
int
conf_check_files(struct conf *c, char **cause)
{
	const char	*paths[] = { c->c_resolv_conf, c->c_hosts_file };
	const char	*names[] = { "resolv_conf", "hosts_file" };
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (paths[i] != NULL && access(paths[i], R_OK) == -1) {
			if (asprintf(cause, "%s: %s %s: %s", c->c_path,
			    names[i], paths[i], strerror(errno)) < 0)
				*cause = NULL;
			return (-1);
		}
	}
	if (c->c_pac_file != NULL && c->c_pac == NULL &&
	    conf_read_text(c->c_pac_file, CONF_PAC_MAX, &c->c_pac,
	    &why) == -1) {
		if (asprintf(cause, "%s: pac_file %s: %s (a text file of 64 KiB "
		    "at most)", c->c_path, c->c_pac_file, why) < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

/* Whether a client at sa may: in one of the ranges, or loopback if none. */
int
conf_cidrs_allow(const struct conf_cidrs *cc, const struct sockaddr *sa)
{
	size_t	 i;

	if (cc->cc_n == 0)
		return (addr_is_loopback(sa));
	for (i = 0; i < cc->cc_n; i++)
		if (addr_in_cidr(sa, &cc->cc_list[i]))
			return (1);
	return (0);
}
