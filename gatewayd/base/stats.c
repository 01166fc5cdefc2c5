/*
 * stats.c: the counters `socksctl stats` and the metrics report (their
 * names are common/stat.c's, which socksctl shares).
 */
#include <stdio.h>
#include <time.h>

#include "stat.h"

#include "stats.h"

_Atomic uint64_t	 gw_stats[GW_STAT_MAX];

/* Matches per rule: a fixed table, claimed by compare-and-swap. */
#define RULE_SLOTS	1024
static struct {
	_Atomic int64_t		 rs_rule;	/* 0: free */
	_Atomic uint64_t	 rs_count;
	_Atomic int64_t		 rs_last;	/* Unix seconds of the last */
} rule_slots[RULE_SLOTS];
_Atomic uint64_t	 rule_other;	/* rules past the table's room */

void
stat_rule(int64_t rule)
{
	size_t	 i, h = (size_t)((uint64_t)rule * 0x9e3779b97f4a7c15ULL >> 54);
	int64_t	 expect;

	if (rule == 0)
		return;
	for (i = 0; i < RULE_SLOTS; i++, h = (h + 1) % RULE_SLOTS) {
		expect = 0;
		if (rule_slots[h].rs_rule == rule ||
		    atomic_compare_exchange_strong(&rule_slots[h].rs_rule,
		    &expect, rule) || expect == rule) {
			atomic_fetch_add(&rule_slots[h].rs_count, 1);
			atomic_store_explicit(&rule_slots[h].rs_last,
			    (int64_t)time(NULL), memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add(&rule_other, 1);
}

/*
 * The rules that decided since the start: up to max of them, with their
 * counts and the time of the last (socksctl rule list shows them).
 */
size_t
stat_rules(struct rule_hits *out, size_t max)
{
	size_t	 i, n = 0;

	for (i = 0; i < RULE_SLOTS && n < max; i++) {
		if (rule_slots[i].rs_rule == 0)
			continue;
		out[n].rh_rule = rule_slots[i].rs_rule;
		out[n].rh_hits = rule_slots[i].rs_count;
		out[n].rh_last = rule_slots[i].rs_last;
		n++;
	}
	return (n);
}

/* Latency histograms, milliseconds (Prometheus "le" buckets). */
static const double hist_le[HIST_BUCKETS] = {
	0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000, 5000
};
struct histogram	 gw_hist[HIST_MAX];

void
stat_observe(enum hist_kind k, double ms)
{
	int	 i;

	for (i = 0; i < HIST_BUCKETS; i++)
		if (ms <= hist_le[i])
			atomic_fetch_add(&gw_hist[k].h_bucket[i], 1);
	atomic_fetch_add(&gw_hist[k].h_count, 1);
	atomic_fetch_add(&gw_hist[k].h_sum_us, (uint64_t)(ms * 1000));
}

/*
 * The counters of gw_stats as Prometheus metrics: counters of one metric
 * follow each other, the first carrying the help text, each its label.
 */
static const struct {
	int		 pc_stat;
	const char	*pc_metric;
	const char	*pc_label;	/* NULL: the metric has none */
	const char	*pc_help;	/* NULL: as the counter before */
} prom_counters[] = {
	{ GW_STAT_SESSIONS, "sessions_total", NULL, "Sessions accepted." },
	{ GW_STAT_ALLOW, "verdicts_total", "verdict=\"allow\"",
	    "Requests by verdict." },
	{ GW_STAT_DENY, "verdicts_total", "verdict=\"deny\"", NULL },
	{ GW_STAT_AUTH_OK, "auth_total", "result=\"ok\"",
	    "Logins by result." },
	{ GW_STAT_AUTH_FAILED, "auth_total", "result=\"failed\"", NULL },
	{ GW_STAT_LOCKOUTS, "auth_total", "result=\"locked\"", NULL },
	{ GW_STAT_AUTHD_DOWN, "auth_total", "result=\"authd_down\"", NULL },
	{ GW_STAT_AUTH_BUSY, "auth_total", "result=\"busy\"", NULL },
	{ GW_STAT_BYTES_UP, "bytes_total", "direction=\"up\"",
	    "Bytes relayed." },
	{ GW_STAT_BYTES_DOWN, "bytes_total", "direction=\"down\"", NULL },
	{ GW_STAT_DNS_FAILURES, "dns_failures_total", NULL,
	    "Names that did not resolve." },
	{ GW_STAT_LIMIT_SESSIONS, "limit_refusals_total",
	    "limit=\"sessions\"",
	    "Requests refused by a per-user or per-client limit." },
	{ GW_STAT_LIMIT_RATE, "limit_refusals_total", "limit=\"rate\"", NULL },
	{ GW_STAT_LIMIT_QUOTA, "limit_refusals_total", "limit=\"quota\"",
	    NULL },
	{ GW_STAT_LIMIT_HANDSHAKES, "limit_refusals_total",
	    "limit=\"handshakes\"", NULL },
	{ GW_STAT_QUOTA_CLOSED, "quota_closed_total", NULL,
	    "Sessions closed because their user's quota was used up." },
	{ GW_STAT_SYSLOG_FAILED, "audit_syslog_failed_total", NULL,
	    "Audit records that could not be sent to syslog." },
	{ GW_STAT_METRICS_REFUSED, "metrics_refused_total", NULL,
	    "Metrics connections refused (metrics_allow, or too many)." },
	{ GW_STAT_REQ_SOCKS5, "requests_total", "protocol=\"socks5\"",
	    "Requests read, by the client's protocol." },
	{ GW_STAT_REQ_SOCKS4, "requests_total", "protocol=\"socks4\"", NULL },
	{ GW_STAT_REQ_HTTP, "requests_total", "protocol=\"http\"", NULL },
	{ GW_STAT_PAC_SERVED, "pac_served_total", NULL,
	    "PAC files served (GET /proxy.pac, /wpad.dat)." },
	{ GW_STAT_PROXY_UNTRUSTED, "proxy_protocol_total",
	    "result=\"untrusted\"", "Connections on proxy_protocol listeners "
	    "by outcome: from an address proxy_trusted does not name, with "
	    "no or a malformed header, a balancer's health check." },
	{ GW_STAT_PROXY_REFUSED, "proxy_protocol_total", "result=\"refused\"",
	    NULL },
	{ GW_STAT_PROXY_LOCAL, "proxy_protocol_total", "result=\"local\"",
	    NULL },
	{ GW_STAT_AUTH_CACHED, "auth_cached_total", NULL,
	    "Logins the proxy answered from its copy of authd's cache "
	    "(auth_cache_ttl); each is counted under auth_total too." },
	{ GW_STAT_AUDIT_REFUSED, "audit_refusals_total", NULL,
	    "Requests refused because the audit log could not take them "
	    "(audit_failure block)." },
};

/* Everything, in the Prometheus text format. */
void
stat_prometheus(FILE *f, unsigned open, size_t audit_queue,
    uint64_t audit_lost)
{
	static const char *const hist_names[HIST_MAX] = { "handshake",
	    "dns" };
	size_t	 i;
	int	 k, b;

	fprintf(f, "# HELP socksgw_sessions_open Sessions open now.\n"
	    "# TYPE socksgw_sessions_open gauge\n"
	    "socksgw_sessions_open %u\n", open);
	for (i = 0; i < sizeof(prom_counters) / sizeof(prom_counters[0]);
	    i++) {
		if (prom_counters[i].pc_help != NULL)
			fprintf(f, "# HELP socksgw_%s %s\n# TYPE socksgw_%s "
			    "counter\n", prom_counters[i].pc_metric,
			    prom_counters[i].pc_help,
			    prom_counters[i].pc_metric);
		fprintf(f, "socksgw_%s%s%s%s %llu\n",
		    prom_counters[i].pc_metric,
		    prom_counters[i].pc_label ? "{" : "",
		    prom_counters[i].pc_label ? prom_counters[i].pc_label : "",
		    prom_counters[i].pc_label ? "}" : "",
		    (unsigned long long)gw_stats[prom_counters[i].pc_stat]);
	}
	fprintf(f, "# HELP socksgw_rule_decisions_total Requests decided by "
	    "each rule.\n# TYPE socksgw_rule_decisions_total counter\n");
	for (i = 0; i < RULE_SLOTS; i++)
		if (rule_slots[i].rs_rule != 0)
			fprintf(f, "socksgw_rule_decisions_total{rule=\"%lld\"} "
			    "%llu\n", (long long)rule_slots[i].rs_rule,
			    (unsigned long long)rule_slots[i].rs_count);
	fprintf(f, "# HELP socksgw_audit_queue Audit records waiting.\n"
	    "# TYPE socksgw_audit_queue gauge\nsocksgw_audit_queue %zu\n",
	    audit_queue);
	fprintf(f, "# HELP socksgw_audit_records_lost_total Audit records not "
	    "written (audit_failure allow).\n"
	    "# TYPE socksgw_audit_records_lost_total counter\n"
	    "socksgw_audit_records_lost_total %llu\n",
	    (unsigned long long)audit_lost);
	for (k = 0; k < HIST_MAX; k++) {
		fprintf(f, "# HELP socksgw_%s_seconds %s latency.\n"
		    "# TYPE socksgw_%s_seconds histogram\n", hist_names[k],
		    k == HIST_HANDSHAKE ? "Accept to relay (or refusal)" :
		    "DNS resolution", hist_names[k]);
		for (b = 0; b < HIST_BUCKETS; b++)
			fprintf(f, "socksgw_%s_seconds_bucket{le=\"%g\"} %llu\n",
			    hist_names[k], hist_le[b] / 1000,
			    (unsigned long long)gw_hist[k].h_bucket[b]);
		fprintf(f, "socksgw_%s_seconds_bucket{le=\"+Inf\"} %llu\n"
		    "socksgw_%s_seconds_sum %.6f\n"
		    "socksgw_%s_seconds_count %llu\n", hist_names[k],
		    (unsigned long long)gw_hist[k].h_count, hist_names[k],
		    (double)gw_hist[k].h_sum_us / 1e6, hist_names[k],
		    (unsigned long long)gw_hist[k].h_count);
	}
}
