/*
 * audit_proto.h: the channel between the proxy and auditd (chan.h).
 *
 * The proxy numbers its records (rseq, from 1 in each proxy run, named by
 * a random generation) and keeps each until auditd says it is committed.
 * auditd commits the last rseq and usage batch it wrote in the same
 * transaction as the rows (the intake table), so after either side dies
 * the proxy resends exactly what is not in the database:
 *
 *	proxy -> auditd	AM_HELLO	who it is, whether it is new
 *	auditd -> proxy	AM_USAGE_ROW*	a new proxy's quota counts
 *	auditd -> proxy	AM_WELCOME	what is committed of this generation
 *	proxy -> auditd	AM_RECORDS	records, in rseq order, no gaps
 *	proxy -> auditd	AM_USAGE	quota bytes since the last batch
 *	auditd -> proxy	AM_ACK		committed so far, and auditd's health
 *
 * auditd treats everything from the proxy as hostile: it checks lengths,
 * types, order and the termination of every text field.
 */
#ifndef AUDIT_PROTO_H
#define AUDIT_PROTO_H

#include <stdint.h>

enum audit_msg {
	AM_READY = 1,	/* auditd -> parent: the database is open */
	AM_HELLO,
	AM_USAGE_ROW,
	AM_WELCOME,
	AM_RECORDS,
	AM_USAGE,
	AM_ACK,
};

struct am_hello {
	uint64_t	 ah_gen;	/* this proxy run */
	uint8_t		 ah_new;	/* first hello of the run */
	uint8_t		 ah_restarted;	/* the proxy was restarted */
};

/* Quota bytes: counts at start (AM_USAGE_ROW), deltas (AM_USAGE). */
struct am_usage {
	char		 au_user[256];
	int64_t		 au_start;	/* the period's start, Unix s */
	int64_t		 au_bytes;
	uint8_t		 au_period;	/* enum policy_period */
};

struct am_welcome {
	uint64_t	 aw_last_sid;	/* highest session id on record */
	uint64_t	 aw_records;	/* the last rseq committed */
	uint64_t	 aw_usage;	/* the last usage batch committed */
	uint8_t		 aw_healthy;
};

/* Followed by n struct audit_rec. */
struct am_records {
	uint64_t	 ar_first;	/* rseq of the first */
	uint64_t	 ar_produced;	/* the proxy's last rseq so far */
	uint32_t	 ar_n;
};
#define AM_RECORDS_MAX	32

/* Followed by n struct am_usage. */
struct am_usage_hdr {
	uint64_t	 uh_seq;
	uint32_t	 uh_n;
};
#define AM_USAGE_MAX	512

/* The audit shipper's progress (audit_ship.c), passed on in each ack. */
enum ship_state { SHIP_OFF, SHIP_STARTING, SHIP_UP, SHIP_DOWN,
	SHIP_CONFLICT };
struct ship_status {			/* shipper -> auditd -> proxy */
	uint64_t	 ss_shipped_seq;	/* the central store's last */
	uint64_t	 ss_head_seq;		/* the local chain's head */
	uint64_t	 ss_shipped_total;	/* by this shipper */
	int64_t		 ss_lag_ms;	/* the oldest not shipped: its age */
	int64_t		 ss_time_ms;	/* when this was said */
	uint8_t		 ss_state;	/* enum ship_state */
	uint8_t		 ss_known;	/* shipped_seq heard from the store */
};

struct am_ack {
	uint64_t	 ak_records;
	uint64_t	 ak_usage;
	uint64_t	 ak_refused;	/* records the database refused */
	uint64_t	 ak_syslog_failed;
	uint8_t		 ak_healthy;	/* writing works */
	struct ship_status ak_central;	/* audit_central (auditd.h) */
};

#endif
