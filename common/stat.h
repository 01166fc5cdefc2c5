/*
 * stat.h: the names of gatewayd's counters, as `socksctl stats` and the
 * control socket say them (the counters themselves are the daemon's).
 */
#ifndef STAT_H
#define STAT_H

enum gw_stat {
	GW_STAT_SESSIONS, GW_STAT_ALLOW, GW_STAT_DENY, GW_STAT_AUTH_OK,
	GW_STAT_AUTH_FAILED, GW_STAT_LOCKOUTS, GW_STAT_BYTES_UP,
	GW_STAT_BYTES_DOWN, GW_STAT_DNS_FAILURES, GW_STAT_UDP_UP,
	GW_STAT_UDP_DOWN, GW_STAT_LIMIT_SESSIONS, GW_STAT_LIMIT_RATE,
	GW_STAT_LIMIT_QUOTA, GW_STAT_QUOTA_CLOSED, GW_STAT_AUTHD_DOWN,
	GW_STAT_SYSLOG_FAILED, GW_STAT_METRICS_REFUSED,
	GW_STAT_LIMIT_HANDSHAKES, GW_STAT_AUTH_BUSY, GW_STAT_AUDIT_REFUSED,
	GW_STAT_MAX
};

const char *stat_name(int);

#endif
