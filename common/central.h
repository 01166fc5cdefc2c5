/*
 * central.h: the connection to a fleet's PostgreSQL (audit_central), shared
 * by gatewayd's audit shipper and socksctl's central views, and the central
 * store's schema (schema/central/, migrated by whoever connects first).
 */
#ifndef CENTRAL_H
#define CENTRAL_H

#include <stddef.h>

#include <libpq-fe.h>

int	 central_url_check(const char *, char *, size_t);
PGconn	*central_connect(const char *, const char *, char *, size_t);
int	 central_migrate(PGconn *, char *, size_t);
int	 central_ok(PGresult *, char *, size_t);

#endif /* CENTRAL_H */
