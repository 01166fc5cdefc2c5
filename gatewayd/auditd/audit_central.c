/*
 * audit_central.c: the audit shipper's progress (audit_ship.c) as the
 * proxy shows it, in `socksctl stats` and in the metrics, from the last
 * acknowledgement auditd sent. Nothing here without audit_central.
 */
#include <stdio.h>

#include "audit.h"
#include "audit_int.h"

static const char *const ship_state_names[] = {
	[SHIP_OFF] = "off", [SHIP_STARTING] = "starting", [SHIP_UP] = "up",
	[SHIP_DOWN] = "down", [SHIP_CONFLICT] = "conflict",
};

static const char *
audit_central_state(const struct ship_status *st)
{
	return (st->ss_state <= SHIP_CONFLICT ? ship_state_names[st->ss_state] :
	    "off");
}

/* Records not in the central store yet; -1 while it has not said. */
static long long
audit_central_lag(const struct ship_status *st)
{
	if (!st->ss_known)
		return (-1);
	return (st->ss_head_seq > st->ss_shipped_seq ? (long long)(
	    st->ss_head_seq - st->ss_shipped_seq) : 0);
}

/* `, "audit_central": {...}` for the stats answer; "" when off. */
int
audit_central_json(char *buf, size_t len)
{
	struct ship_status	 st;

	audit_central_status(&st);
	if (st.ss_state == SHIP_OFF) {
		buf[0] = '\0';
		return (0);
	}
	return (snprintf(buf, len, ", \"audit_central\": {\"state\": \"%s\", "
	    "\"shipped_seq\": %llu, \"head_seq\": %llu, \"lag_records\": %lld, "
	    "\"lag_ms\": %lld, \"shipped_total\": %llu}",
	    audit_central_state(&st), (unsigned long long)st.ss_shipped_seq,
	    (unsigned long long)st.ss_head_seq, audit_central_lag(&st),
	    (long long)st.ss_lag_ms, (unsigned long long)st.ss_shipped_total));
}

void
audit_central_prometheus(FILE *f)
{
	struct ship_status	 st;
	int			 s;

	audit_central_status(&st);
	if (st.ss_state == SHIP_OFF)
		return;
	fprintf(f, "# HELP socksgw_audit_central_state The audit shipper's "
	    "state (audit_central): 1 for the one it is in.\n"
	    "# TYPE socksgw_audit_central_state gauge\n");
	for (s = SHIP_STARTING; s <= SHIP_CONFLICT; s++)
		fprintf(f, "socksgw_audit_central_state{state=\"%s\"} %d\n",
		    ship_state_names[s], st.ss_state == s);
	fprintf(f, "# HELP socksgw_audit_central_shipped_total Audit records "
	    "shipped to the central store by this shipper.\n"
	    "# TYPE socksgw_audit_central_shipped_total counter\n"
	    "socksgw_audit_central_shipped_total %llu\n",
	    (unsigned long long)st.ss_shipped_total);
	if (!st.ss_known)
		return;		/* no lag to say until the store has spoken */
	fprintf(f, "# HELP socksgw_audit_central_lag_records Completed audit "
	    "records not in the central store yet.\n"
	    "# TYPE socksgw_audit_central_lag_records gauge\n"
	    "socksgw_audit_central_lag_records %lld\n"
	    "# HELP socksgw_audit_central_lag_seconds Age of the oldest "
	    "completed record not in the central store yet (0: none).\n"
	    "# TYPE socksgw_audit_central_lag_seconds gauge\n"
	    "socksgw_audit_central_lag_seconds %.3f\n", audit_central_lag(&st),
	    (double)st.ss_lag_ms / 1000);
}
