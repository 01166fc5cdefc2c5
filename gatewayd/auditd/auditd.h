/*
 * auditd.h: the audit process's modules. auditd is the only process that
 * writes audit.db; the proxy reaches it through audit_proto.h.
 */
#ifndef AUDITD_H
#define AUDITD_H

#include <stdint.h>

struct conf;
struct audit_rec;
struct am_usage;
struct checkpoint;
struct audit_fields;

/* auditd.c: the process */
pid_t	 auditd_start(const struct conf *, int *, char **);
int	 auditd_wait_ready(int, char **);

/* audit_store.c: the database, the chain's head, checkpoints, pruning */
#define AUDIT_BATCH	4096	/* records in one transaction at most */
struct store_intake {
	uint64_t	 si_gen;	/* the proxy run it counts */
	uint64_t	 si_records;	/* its last rseq committed */
	uint64_t	 si_usage;	/* its last usage batch committed */
	uint64_t	 si_produced;	/* its last rseq it said it had */
	uint64_t	 si_sid_floor;	/* its session ids are above this */
};
int	 store_open(const struct conf *, char **);
void	 store_close(void);
int	 store_intake(struct store_intake *);
int	 store_new_generation(uint64_t, const char *);
int	 store_write(struct audit_rec *, size_t, uint64_t, uint64_t);
int	 store_usage(const struct am_usage *, size_t, uint64_t, int64_t);
int	 store_usage_rows(int64_t, int (*)(const struct am_usage *, void *),
	    void *);
uint64_t store_refused(void);
void	 store_count_refused(uint64_t);
void	 store_checkpoint(int64_t, int);
int	 store_prune(void);

/* audit_row.c: a record as bound to the INSERT and as the chain hashes it */
struct sqlite3;
struct sqlite3_stmt;
/* The columns the writer fills, by name (audit_row.c's table). */
enum audit_col {
	AC_KIND, AC_SESSION_ID, AC_START_MS, AC_END_MS, AC_USER,
	AC_CLIENT_ADDR, AC_CLIENT_PORT, AC_COMMAND, AC_DST_HOST, AC_DST_ADDR,
	AC_DST_PORT, AC_DST_COUNTRY, AC_VERDICT, AC_RULE_ID, AC_REASON,
	AC_BYTES_UP, AC_BYTES_DOWN, AC_CLOSE_REASON, AC_PROTOCOL, AC_IDENT,
	AC_PACKETS_UP, AC_PACKETS_DOWN, AC_UDP_DESTINATIONS, AC_UDP_DENIED,
	AC_AUTH_METHOD, AC_NODE, AC_SEQ, AC_HASH, AC_MAX
};
enum audit_stmt_kind { AS_START, AS_INSERT, AS_FINISH };
struct audit_stmt {
	struct sqlite3_stmt	*as_st;
	int			 as_param[AC_MAX];	/* 0: not in it */
};
int	 audit_stmt_prepare(struct sqlite3 *, struct audit_stmt *,
	    enum audit_stmt_kind);
void	 audit_bind(const struct audit_stmt *, const struct audit_rec *);
void	 audit_set_node(const char *);
void	 audit_bind_link(const struct audit_stmt *, int64_t,
	    const uint8_t [32]);
void	 audit_coalesce(struct audit_rec *, size_t);
void	 audit_fields_of(const struct audit_rec *, int64_t,
	    struct audit_fields *);

/* audit_maint.c: WAL checkpoints and rollups, off the write path */
struct sqlite3;
int	 wal_open(struct sqlite3 *, const char *, char **);
int	 wal_start(void);
void	 wal_stop(void);
void	 maint_writer_begin(void);
void	 maint_writer_end(void);

/* audit_ship.c: the copy to the fleet's central store (audit_central) */
struct privsep_account;
struct ship_status;
pid_t	 ship_start(const struct conf *, const struct privsep_account *,
	    int *);
int	 ship_status_read(int, struct ship_status *);
void	 ship_stop(pid_t, int);
int	 ship_watch(pid_t, int64_t);
void	 store_ship_limit(int64_t);

/* audit_syslog.c: a copy of every completed record and checkpoint */
void	 audit_syslog_open(const struct conf *);
void	 audit_syslog_close(void);
void	 audit_syslog_record(const struct audit_rec *, int64_t);
void	 audit_syslog_checkpoint(const struct checkpoint *,
	    const unsigned char *);
uint64_t audit_syslog_failed(void);

#endif
