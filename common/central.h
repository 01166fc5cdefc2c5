/*
 * central.h: the connection to a fleet's PostgreSQL (audit_central, and a
 * policy_db URL), shared by gatewayd's audit shipper and policy follower
 * and socksctl's central views and policy commands, and the central
 * store's schema (schema/central/, migrated by whoever connects first).
 */
#ifndef CENTRAL_H
#define CENTRAL_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* A fleet policy's bytes at most (policy_head.image), for nodes and socksctl */
#define CENTRAL_POLICY_MAX	(512 * 1024 * 1024)

int	 central_url_check(const char *, char *, size_t);
PGconn	*central_connect(const char *, const char *, char *, size_t);
PGconn	*central_connect_start(const char *, const char *, char *, size_t);
int	 central_migrate(PGconn *, const char *, char *, size_t);
int	 central_ok(PGresult *, char *, size_t);

/* central_wait.c: for threads that must stop at once and never hang */
int64_t	 central_now(void);
int	 central_wait(int, int, short, int64_t);
PGconn	*central_connect_wait(const char *, const char *, int, int, char *,
	    size_t);
PGresult *central_query_wait(PGconn *, const char *, int,
	    const char *const *, const int *, const int *, int, int, int,
	    char *, size_t);

#endif /* CENTRAL_H */
