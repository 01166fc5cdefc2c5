/*
 * stats.h: the proxy's counters (their names are common/stat.h's), the
 * latency histograms and the rule hit counts. Every layer counts; the
 * control socket and the metrics endpoint read them.
 */
#ifndef STATS_H
#define STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "stat.h"

extern _Atomic uint64_t	 gw_stats[GW_STAT_MAX];
#define STAT_ADD(k, n)	atomic_fetch_add_explicit(&gw_stats[k], (n), \
			    memory_order_relaxed)

enum hist_kind { HIST_HANDSHAKE, HIST_DNS, HIST_MAX };
#define HIST_BUCKETS	10
struct histogram {
	_Atomic uint64_t	 h_bucket[HIST_BUCKETS];
	_Atomic uint64_t	 h_count;
	_Atomic uint64_t	 h_sum_us;
};
void	 stat_observe(enum hist_kind, double);

struct rule_hits {
	int64_t		 rh_rule;
	uint64_t	 rh_hits;
	int64_t		 rh_last;	/* Unix seconds */
};
void	 stat_rule(int64_t);
size_t	 stat_rules(struct rule_hits *, size_t);
void	 stat_prometheus(FILE *, unsigned, size_t, uint64_t);

#endif /* STATS_H */
