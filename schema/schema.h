/*
 * schema.h: the database schemas, embedded into the binaries at build time
 * from schema/NAME/NNNN-*.sql. Migration N brings a database from
 * PRAGMA user_version N-1 to N.
 */
#ifndef SCHEMA_H
#define SCHEMA_H

struct schema_migration {
	int		 sm_version;
	const char	*sm_name;
	const char	*sm_sql;
};

extern const struct schema_migration schema_policy[];
extern const struct schema_migration schema_audit[];
extern const struct schema_migration schema_central[];	/* PostgreSQL */
extern const struct schema_migration schema_policy_store[];	/* PostgreSQL */

#endif /* SCHEMA_H */
