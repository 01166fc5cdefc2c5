/*
 * audit_int.h: the proxy's audit state, shared by audit.c (the shipper
 * thread and its channel to auditd) and audit_queue.c (the ring workers
 * put records in, and its reserve). au_lock guards the ring; the fields
 * under "the shipper's own" are its thread's alone. Nothing else
 * includes this.
 */
#ifndef AUDIT_INT_H
#define AUDIT_INT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "audit_proto.h"

struct audit_state {
	pthread_mutex_t		 au_lock;
	struct audit_rec	*au_ring;
	size_t			 au_cap, au_head, au_len;
	size_t			 au_sent;	/* from head: with auditd */
	uint64_t		 au_head_rseq;	/* rseq of au_ring[au_head] */
	size_t			 au_reserved;	/* places sessions are owed */
	size_t			 au_wake;	/* fill that wakes the shipper */
	int			 au_kicked;
	uint64_t		 au_summarised;	/* not written one by one */
	int64_t			 au_summary_from;	/* Unix ms */
	int			 au_stop;
	int			 au_block;	/* audit_failure block */
	_Atomic int		 au_healthy;	/* auditd there and writing */
	_Atomic uint64_t	 au_lost;	/* audit_failure allow */
	_Atomic int		 au_next_fd;	/* a new auditd's channel */
	int			 au_efd;	/* wakes the shipper */
	pthread_t		 au_thread;
	int			 au_running;
	_Atomic int		 au_done;	/* the shipper has ended */
	/* The shipper's own. */
	int			 au_fd;
	uint64_t		 au_gen;
	int			 au_welcomed;	/* once: quota counts, ids */
	int			 au_restarted;	/* by the parent */
	uint64_t		 au_seen_refused, au_seen_syslog;
	struct ship_status	 au_central;	/* under au_lock */
	struct am_usage		*au_usage;	/* unacknowledged bytes */
	size_t			 au_nusage, au_usage_cap;
	size_t			 au_usage_inflight;	/* the first n, sent */
	uint64_t		 au_useq;	/* their batch number */
};

extern struct audit_state	 au;

void	 audit_kick(void);
void	 audit_summary(void);

#endif
