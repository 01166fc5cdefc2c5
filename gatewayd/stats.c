/*
 * stats.c: the counters `socksctl stats` and the metrics report, kept
 * apart so that socksctl can name them without linking the daemon.
 */
#include "gatewayd.h"

_Atomic uint64_t	 gw_stats[GW_STAT_MAX];

static const char *const stat_names[GW_STAT_MAX] = {
	"sessions_total", "verdict_allow", "verdict_deny", "auth_ok",
	"auth_failed", "auth_lockouts", "bytes_up", "bytes_down",
	"dns_failures", "udp_datagrams_up", "udp_datagrams_down",
};

const char *
stat_name(int i)
{
	return (stat_names[i]);
}

