/*
 * audit_ship_int.h: the audit shipper's two halves: the process and the
 * central store (audit_ship.c), and what it reads of the local log
 * (audit_ship_log.c).
 */
#ifndef AUDIT_SHIP_INT_H
#define AUDIT_SHIP_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "audit_proto.h"

#define SHIP_BATCH	500	/* records per transaction at most */
#define SHIP_COLUMNS	29	/* AUDIT_ROW_COLUMNS */

/* One batch's records, as the text of a COPY into audit_records. */
struct ship_rows {
	int		 n;
	char		*buf;
	size_t		 len, cap;
};

int	 ship_read(sqlite3 *, struct ship_rows *, const char *, const char *,
	    int64_t, int64_t *, unsigned char [32]);
void	 ship_rows_free(struct ship_rows *);
int	 ship_continues(sqlite3 *, const char *, int64_t,
	    const unsigned char *, char *, size_t);
int64_t	 ship_anchor(sqlite3 *, unsigned char [32]);
void	 ship_lag(sqlite3 *, struct ship_status *);

#endif /* AUDIT_SHIP_INT_H */
