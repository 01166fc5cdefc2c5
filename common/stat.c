/*
 * stat.c: the names of the counters (enum gw_stat), shared by gatewayd,
 * which counts, and socksctl, which prints what the control socket says.
 */
#include "stat.h"

static const char *const stat_names[GW_STAT_MAX] = {
	"sessions_total", "verdict_allow", "verdict_deny", "auth_ok",
	"auth_failed", "auth_lockouts", "bytes_up", "bytes_down",
	"dns_failures", "udp_datagrams_up", "udp_datagrams_down",
	"limit_sessions", "limit_rate", "limit_quota", "quota_closed",
	"auth_authd_down", "audit_syslog_failed", "metrics_refused",
	"limit_handshakes", "auth_busy", "audit_refusals",
	"requests_socks5", "requests_socks4", "requests_http", "pac_served",
	"proxy_untrusted", "proxy_refused", "proxy_health_checks",
	"auth_cached",
};

const char *
stat_name(int i)
{
	return (stat_names[i]);
}
