/*
 * geoip.c: countries from a MaxMind DB file through libmaxminddb. The file
 * is memory-mapped, so a lookup reads memory and never blocks. The path to
 * the country code inside a record is configurable, because MaxMind's
 * GeoIP2/GeoLite2 files keep it at "country iso_code" and the free
 * ip-location-db files at "country_code".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <maxminddb.h>

#include "policy_int.h"

#define GEOIP_PATH_MAX	8

struct policy_geoip {
	MMDB_s		 g_db;
	char		*g_pathbuf;
	const char	*g_path[GEOIP_PATH_MAX + 1];
};

/* How far the country-path probe looks: records, and nodes to find them. */
#define GEOIP_PROBE_RECORDS	64
#define GEOIP_PROBE_NODES	65536

/*
 * Whether the country path names a country in the file's own records: a
 * file whose codes are elsewhere (a GeoLite2 file with ip-location-db's
 * path) would open and then never match a --country rule. The search tree
 * is walked depth first, left first, to its first data records; no fixed
 * public address is looked up, so that small test files are judged too.
 * Returns -1 with *cause set.
 */
static int
geoip_probe(struct policy_geoip *g, const char *file, const char *path,
    char **cause)
{
	struct { uint32_t node; } stack[2 * 128 + 2];
	MMDB_search_node_s	 sn;
	MMDB_entry_data_s	 data;
	MMDB_entry_s		 entries[2];
	uint8_t			 types[2];
	uint32_t		 nodes = 0, records = 0, next[2];
	size_t			 sp = 0, i;

	stack[sp++].node = 0;
	while (sp > 0 && records < GEOIP_PROBE_RECORDS &&
	    nodes++ < GEOIP_PROBE_NODES) {
		if (MMDB_read_node(&g->g_db, stack[--sp].node, &sn) !=
		    MMDB_SUCCESS)
			break;
		types[0] = sn.left_record_type;
		types[1] = sn.right_record_type;
		entries[0] = sn.left_record_entry;
		entries[1] = sn.right_record_entry;
		next[0] = (uint32_t)sn.left_record;
		next[1] = (uint32_t)sn.right_record;
		for (i = 0; i < 2; i++) {
			if (types[i] != MMDB_RECORD_TYPE_DATA)
				continue;
			records++;
			if (MMDB_aget_value(&entries[i], &data, g->g_path) ==
			    MMDB_SUCCESS && data.has_data && data.type ==
			    MMDB_DATA_TYPE_UTF8_STRING && data.data_size == 2)
				return (0);
		}
		/* Right pushed first: the left subtree is walked first. */
		for (i = 2; i-- > 0; )
			if (types[i] == MMDB_RECORD_TYPE_SEARCH_NODE &&
			    sp < sizeof(stack) / sizeof(stack[0]))
				stack[sp++].node = next[i];
	}
	if (asprintf(cause, "geoip_db %s: %s (geoip_country_path is \"%s\"; "
	    "MaxMind GeoIP2/GeoLite2 files keep it at \"country iso_code\", "
	    "ip-location-db files at \"country_code\")", file, records == 0 ?
	    "no data records found" : "no country code where "
	    "geoip_country_path says, in the first records", path) < 0)
		*cause = NULL;
	return (-1);
}

struct policy_geoip *
policy_geoip_open(const char *file, const char *path, char **cause)
{
	struct policy_geoip	*g;
	char			*tok, *save = NULL;
	int			 n = 0, rc;

	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (g->g_pathbuf = strdup(path ? path :
	    POLICY_GEOIP_PATH_DEFAULT)) == NULL) {
		free(g);
		if (asprintf(cause, "geoip: out of memory") < 0)
			*cause = NULL;
		return (NULL);
	}
	for (tok = strtok_r(g->g_pathbuf, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		if (n == GEOIP_PATH_MAX)
			break;
		g->g_path[n++] = tok;
	}
	g->g_path[n] = NULL;
	if (n == 0) {
		if (asprintf(cause, "geoip_country_path: empty") < 0)
			*cause = NULL;
		goto fail;
	}
	if ((rc = MMDB_open(file, MMDB_MODE_MMAP, &g->g_db)) != MMDB_SUCCESS) {
		if (asprintf(cause, "geoip_db %s: %s%s%s", file,
		    MMDB_strerror(rc), rc == MMDB_IO_ERROR ? ": " : "",
		    rc == MMDB_IO_ERROR ? strerror(errno) : "") < 0)
			*cause = NULL;
		goto fail;
	}
	if (geoip_probe(g, file, path ? path : POLICY_GEOIP_PATH_DEFAULT,
	    cause) == -1) {
		MMDB_close(&g->g_db);
		goto fail;
	}
	return (g);
fail:
	free(g->g_pathbuf);
	free(g);
	return (NULL);
}

void
policy_geoip_close(struct policy_geoip *g)
{
	if (g == NULL)
		return;
	MMDB_close(&g->g_db);
	free(g->g_pathbuf);
	free(g);
}

/* The two-letter country of sa, upper-case, or "" when unknown. */
const char *
policy_geoip_lookup(const struct policy_geoip *g, const struct sockaddr *sa,
    char cc[3])
{
	MMDB_lookup_result_s	 res;
	MMDB_entry_data_s	 data;
	struct sockaddr_storage	 ss;
	uint8_t			 a[16];
	int			 fam, err = 0;

	cc[0] = '\0';
	if (g == NULL || pv_sockaddr_bytes(sa, a, &fam) == -1)
		return (cc);
	/* IPv4-mapped addresses are looked up as IPv4. */
	memset(&ss, 0, sizeof(ss));
	if (fam == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, a, 4);
	} else {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, a, 16);
	}
	res = MMDB_lookup_sockaddr((MMDB_s *)&g->g_db,
	    (const struct sockaddr *)&ss, &err);
	if (err != MMDB_SUCCESS || !res.found_entry)
		return (cc);
	if (MMDB_aget_value(&res.entry, &data, g->g_path) != MMDB_SUCCESS ||
	    !data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING ||
	    data.data_size != 2)
		return (cc);
	cc[0] = (char)(data.utf8_string[0] & ~0x20);
	cc[1] = (char)(data.utf8_string[1] & ~0x20);
	cc[2] = '\0';
	if (pv_country_index(cc) == -1)
		cc[0] = '\0';
	return (cc);
}

const char *
geoip_country(const struct policy_geoip *g, const struct sockaddr *sa,
    char cc[3])
{
	return (policy_geoip_lookup(g, sa, cc));
}

const char *
policy_country(const struct policy *p, const struct sockaddr *sa, char cc[3])
{
	return (policy_geoip_lookup(p->p_geoip, sa, cc));
}
