/*
 * conf_fleet.c: the keywords of a fleet's node, checked together once a
 * file is read: node_name (the host name by default), audit_central and
 * policy_db, which is a file or the fleet's PostgreSQL.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "central.h"
#include "conf.h"
#include "conf_int.h"

static int	conf_node_name_ok(const char *);

void
conf_fleet(struct conf *c, const char *path, const int *seen,
    struct conf_errors *ce)
{
	/*
	 * The node's name in every audit record: the host name by default.
	 * Letters, digits, '.', '-' and '_' only, so that it reads the same
	 * in every report, CSV, JSON and syslog line without escaping.
	 */
	if (c->c_node_name == NULL) {
		/*
		 * The default is made fit, never refused: a host name with
		 * other bytes must not stop an unchanged configuration.
		 */
		char	 host[256];
		size_t	 k;

		if (gethostname(host, sizeof(host) - 1) == -1)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';	/* the short name */
		host[GW_NODE_NAME_MAX] = '\0';
		for (k = 0; host[k] != '\0'; k++)
			if (!isalnum((unsigned char)host[k]) && host[k] != '-' &&
			    host[k] != '_')
				host[k] = '-';
		c->c_node_name = conf_xstrdup(host[0] != '\0' ? host :
		    "gateway");
	} else if (!conf_node_name_ok(c->c_node_name))
		conf_error(ce, path, seen[conf_find_keyword("node_name") -
		    conf_keywords], "node_name %.80s: 1 to %d letters, digits, "
		    "'.', '-' or '_'", c->c_node_name, GW_NODE_NAME_MAX);

	/*
	 * The fleet's central audit store: a URL libpq reads, without a
	 * password (the shipper reads it from its passfile), and shipped
	 * from the local log, which it therefore needs.
	 */
	if (c->c_audit_central != NULL) {
		char	 bad[256];
		int	 at = seen[conf_find_keyword("audit_central") -
			    conf_keywords];

		if (central_url_check(c->c_audit_central, bad,
		    sizeof(bad)) == -1)
			conf_error(ce, path, at, "audit_central: %s", bad);
		else if (c->c_audit_db == NULL)
			conf_error(ce, path, at, "audit_central: records "
			    "are shipped from the local log: audit_db is "
			    "needed too");
	}

	/*
	 * The policy: a SQLite file (beside the configuration by default),
	 * or the fleet's PostgreSQL, whose newest policy a node keeps in
	 * policy_snapshot and judges by: c_policy_db is then that file, so
	 * whatever reads the policy on a node reads the snapshot.
	 */
	if (c->c_policy_db != NULL && (strncmp(c->c_policy_db,
	    "postgresql://", 13) == 0 || strncmp(c->c_policy_db,
	    "postgres://", 11) == 0)) {
		char	 bad[256];
		int	 at = seen[conf_find_keyword("policy_db") -
			    conf_keywords];

		if (central_url_check(c->c_policy_db, bad, sizeof(bad)) == -1)
			conf_error(ce, path, at, "policy_db: %s", bad);
		c->c_policy_central = c->c_policy_db;
		c->c_policy_db = c->c_policy_snapshot != NULL ?
		    conf_xstrdup(c->c_policy_snapshot) :
		    conf_xstrdup(CONF_POLICY_SNAPSHOT);
	} else if (c->c_policy_db != NULL) {
		char	*given = c->c_policy_db;

		c->c_policy_db = conf_resolve_path(path, given);
		free(given);
		if (c->c_policy_snapshot != NULL)
			conf_error(ce, path, seen[conf_find_keyword(
			    "policy_snapshot") - conf_keywords],
			    "policy_snapshot: only with a postgresql:// "
			    "policy_db");
	} else
		c->c_policy_db = conf_resolve_path(path, "policy.db");
}

/* A node name every sink takes as it is (conf_fleet). */
static int
conf_node_name_ok(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-' && s[i] != '_')
			return (0);
	return (i > 0 && i <= GW_NODE_NAME_MAX);
}
