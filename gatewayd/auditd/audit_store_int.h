/*
 * audit_store_int.h: auditd's connection to audit.db and what it knows of
 * the chain, shared by the files that write it: audit_store.c (records,
 * the intake, proxy runs), audit_retention.c (signed checkpoints and
 * pruning) and audit_usage.c (quota usage). One thread uses it: the
 * writer's. Nothing else includes this.
 */
#ifndef AUDIT_STORE_INT_H
#define AUDIT_STORE_INT_H

#include <openssl/evp.h>
#include <sqlite3.h>

#include "auditd.h"

struct store {
	sqlite3			*db;
	struct audit_stmt	 start, finish, insert;	/* audit_row.c */
	sqlite3_stmt		*intake;
	int64_t			 seq;	/* the chain's head */
	unsigned char		 hash[32];
	uint64_t		 refused;	/* records the database refused */
	EVP_MD_CTX		*md;
	EVP_PKEY		*key;	/* signs checkpoints */
	int64_t			 cp_seq;	/* the last signed head */
	int64_t			 cp_at;	/* monotonic ms */
	int			 retention_days;
	struct store_intake	 in;		/* as committed */
};


extern struct store	 store;

int	 store_intake_set(uint64_t, uint64_t, uint64_t);

#endif
