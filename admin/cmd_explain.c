/*
 * cmd_explain.c: socksctl init, explain and geoip. Explain compiles the
 * policy exactly as gatewayd does and calls the same policy_decide(), so
 * what it says is what the gateway does.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "addr.h"
#include "admin.h"
#include "conf.h"
#include "escape.h"

/*
 * A fleet's init: the store's schema and a first (empty) policy, stored
 * when socksctl ends well. The policy's schema version.
 */
static int
init_store(struct ctl *ctl)
{
	int	 fresh = policy_store_init(ctl);
	int	 v = policy_db_version(ctl_db(ctl));

	if (!ctl->ctl_json)
		printf("policy store: schema version %d%s\n", v,
		    fresh ? ", an empty policy stored" : "");
	return (v);
}

/* Creates or migrates both databases. */
int
cmd_init(struct ctl *ctl, struct args *a)
{
	sqlite3	*db;
	char	*cause = NULL;
	int	 before, audit = -1;

	args_done(a);
	if (ctl->ctl_conf->c_policy_central != NULL)
		before = init_store(ctl);
	else {
		db = policy_db_open(ctl->ctl_conf->c_policy_db,
		    POLICY_DB_CREATE, &cause);
		if (db == NULL)
			ctl_error("%s", cause ? cause : "out of memory");
		before = policy_db_version(db);
		sqlite3_close(db);
	}
	if (ctl->ctl_conf->c_audit_db != NULL) {
		if (sqlite3_open_v2(ctl->ctl_conf->c_audit_db, &db,
		    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL,
		    NULL) != SQLITE_OK ||
		    db_schema_migrate(db, DB_SCHEMA_AUDIT, &cause) == -1)
			ctl_error("%s: %s", ctl->ctl_conf->c_audit_db,
			    cause ? cause : policy_db_errmsg(
			    ctl->ctl_conf->c_audit_db, db));
		audit = policy_db_version(db);
		sqlite3_close(db);
	}
	if (ctl->ctl_json)
		printf("{\"policy_db\": \"%s\", \"schema_version\": %d, "
		    "\"audit_schema_version\": %d}\n",
		    ctl->ctl_conf->c_policy_db, before, audit);
	else {
		if (ctl->ctl_conf->c_policy_central == NULL)
			printf("policy database %s: schema version %d\n",
			    ctl->ctl_conf->c_policy_db, before);
		if (audit != -1)
			printf("audit database %s: schema version %d\n",
			    ctl->ctl_conf->c_audit_db, audit);
	}
	return (0);
}

static void
parse_ip(const char *opt, const char *text, struct sockaddr_storage *ss)
{
	if (addr_parse_ip(text, ss) == -1)
		ctl_error("%s %s: not an IPv4 or IPv6 address", opt, text);
}

/* HOST:PORT or [V6]:PORT; host is a name or an address. */
static void
parse_dst(const char *text, char *host, size_t hostlen, uint16_t *port)
{
	const char	*colon, *start = text;
	char		*ep;
	unsigned long	 p;
	size_t		 len;

	if (text[0] == '[') {
		start = text + 1;
		if ((colon = strchr(text, ']')) == NULL || colon[1] != ':')
			ctl_error("--dst %s: IPv6 is written [ADDR]:PORT", text);
		len = (size_t)(colon - start);
		colon++;
	} else {
		if ((colon = strrchr(text, ':')) == NULL)
			ctl_error("--dst %s: HOST:PORT expected", text);
		len = (size_t)(colon - start);
	}
	p = strtoul(colon + 1, &ep, 10);
	if (colon[1] == '\0' || *ep != '\0' || p < 1 || p > 65535)
		ctl_error("--dst %s: bad port", text);
	if (len == 0 || len >= hostlen)
		ctl_error("--dst %s: bad host", text);
	memcpy(host, start, len);
	host[len] = '\0';
	*port = (uint16_t)p;
}

static time_t
parse_time(const char *text)
{
	static const char *const formats[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S",
		"%Y-%m-%d %H:%M", "%Y-%m-%d",
	};
	struct tm	 tm;
	const char	*end;
	size_t		 i;

	if (strcmp(text, "now") == 0)
		return (time(NULL));
	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(text, formats[i], &tm);
		if (end != NULL && *end == '\0') {
			tm.tm_isdst = -1;
			return (mktime(&tm));
		}
	}
	ctl_error("--at %s: expected YYYY-MM-DDTHH:MM[:SS] (local time of "
	    "the configured timezone) or now", text);
}

struct explain_out {
	struct table	*eo_table;
};

static void
explain_row(int64_t id, int pos, const char *action, int decides,
    const char *why, void *arg)
{
	struct explain_out	*eo = arg;
	char			 sid[24], spos[24];

	snprintf(sid, sizeof(sid), "%lld", (long long)id);
	snprintf(spos, sizeof(spos), "%d", pos);
	table_row(eo->eo_table, sid, spos, action, decides ? "decides" :
	    "no match", why);
}

/* ", "name": {"bytes_per_second": N, "key": "text"}, or null for 0. */
static void
explain_cap_json(const char *name, uint64_t rate, const char *key,
    const char *text)
{
	printf(", \"%s\": ", name);
	if (rate == 0) {
		printf("null");
		return;
	}
	printf("{\"bytes_per_second\": %llu, \"%s\": ",
	    (unsigned long long)rate, key);
	json_string(text);
	printf("}");
}

static void
explain_caps_json(const struct limits_view *lv)
{
	explain_cap_json("bandwidth", lv->lv_bandwidth, "from", lv->lv_bw_from);
	explain_cap_json("group_bandwidth", lv->lv_group_bandwidth, "group",
	    lv->lv_bw_group);
	printf(", \"quota\": ");
	if (lv->lv_quota.pq_period == POLICY_PERIOD_NONE) {
		printf("null");
		return;
	}
	printf("{\"bytes\": %llu, \"period\": \"%s\", \"period_start\": "
	    "%lld, \"from\": ", (unsigned long long)lv->lv_quota.pq_bytes,
	    policy_period_name(lv->lv_quota.pq_period),
	    (long long)lv->lv_period_start);
	json_string(lv->lv_quota_from);
	if (lv->lv_used >= 0)
		printf(", \"used\": %lld}", (long long)lv->lv_used);
	else
		printf(", \"used\": null}");
}

int
cmd_explain(struct ctl *ctl, struct args *a)
{
	static const char *const actions[] = { "deny", "allow", "resolve" };
	struct sockaddr_storage	 src, addr, dst;
	struct policy_req	 req;
	struct policy_verdict	 v;
	struct explain_out	 eo;
	struct policy		*p;
	const char		*opt, *groups[64];
	char			 host[256], from[POLICY_REASON_MAX];
	char			 rfrom[POLICY_REASON_MAX];
	struct policy_rate	 rate;
	struct limits_view	 lv;
	sqlite3			*audit;
	int64_t			 max;
	const char		*no_auth = NULL;	/* a user auth none drops */
	int			 have_src = 0, have_addr = 0, have_dst = 0;
	int			 ngroups = 0;

	memset(&req, 0, sizeof(req));
	req.cmd = POLICY_CMD_CONNECT;
	req.now = time(NULL);
	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--user") == 0)
			req.user = args_value(a, opt);
		else if (strcmp(opt, "--group") == 0) {
			if (ngroups == 64)
				ctl_error("at most 64 --group");
			groups[ngroups++] = args_value(a, opt);
		} else if (strcmp(opt, "--src") == 0) {
			parse_ip(opt, args_value(a, opt), &src);
			have_src = 1;
		} else if (strcmp(opt, "--addr") == 0) {
			parse_ip(opt, args_value(a, opt), &addr);
			have_addr = 1;
		} else if (strcmp(opt, "--dst") == 0) {
			parse_dst(args_value(a, opt), host, sizeof(host),
			    &req.dst_port);
			have_dst = 1;
		} else if (strcmp(opt, "--cmd") == 0) {
			if (policy_parse_cmd(args_value(a, opt), &req.cmd) == -1)
				ctl_error("--cmd %s: expected connect, bind or "
				    "udp", a->a_argv[a->a_i - 1]);
		} else if (strcmp(opt, "--at") == 0)
			req.now = parse_time(args_value(a, opt));
		else
			ctl_usage_error("explain: unknown option '%s'", opt);
	}
	if (!have_dst)
		ctl_usage_error("explain: --dst HOST:PORT is required");
	/*
	 * Under auth none no request carries a user: explaining one as if
	 * it did would promise what no real request gets.
	 */
	if (ctl->ctl_conf->c_auth == AUTH_NONE && (req.user != NULL ||
	    ngroups > 0)) {
		no_auth = req.user != NULL ? req.user : groups[0];
		req.user = NULL;
		ngroups = 0;
	}
	req.groups = groups;
	req.ngroups = (size_t)ngroups;
	req.client = have_src ? (struct sockaddr *)&src : NULL;
	/* A literal destination is an address request, as in SOCKS. */
	if (addr_parse_ip(host, &dst) == 0) {
		if (have_addr)
			ctl_usage_error("explain: --addr is for a --dst name");
		req.dst_addr = (struct sockaddr *)&dst;
	} else {
		req.dst_name = host;
		if (have_addr)
			req.dst_addr = (struct sockaddr *)&addr;
	}

	p = ctl_policy(ctl);
	eo.eo_table = table_new(5, "#rule", "#position", "action", "result",
	    "why");
	policy_explain(p, &req, &v, explain_row, &eo);
	max = policy_max_sessions(p, &req, from, sizeof(from));
	policy_rate(p, &req, &rate, rfrom, sizeof(rfrom));
	audit = req.user != NULL ? usage_db_open(ctl) : NULL;
	limits_view(p, &req, audit, &lv);
	sqlite3_close(audit);
	if (ctl->ctl_json) {
		printf("{\"verdict\": \"%s\", \"rule\": %lld, \"reason\": ",
		    actions[v.action], (long long)v.rule_id);
		json_string(v.reason);
		if (no_auth != NULL)
			printf(", \"note\": \"auth none: requests carry no "
			    "user, so rules naming users or groups cannot match; "
			    "this is the verdict a real request gets\"");
		printf(", \"max_sessions\": ");
		if (max < 0)
			printf("null");
		else {
			printf("{\"limit\": %lld, \"from\": ", (long long)max);
			json_string(from);
			printf("}");
		}
		printf(", \"rate\": ");
		if (rate.pr_milli == 0)
			printf("null");
		else {
			printf("{\"per_second\": %g, \"burst\": %u, \"from\": ",
			    rate.pr_milli / 1000.0, rate.pr_burst);
			json_string(rfrom);
			printf("}");
		}
		explain_caps_json(&lv);
		printf(", \"rules\": ");
		table_print(eo.eo_table, 1);
		printf("}\n");
	} else {
		table_print(eo.eo_table, 0);
		if (no_auth != NULL)
			printf("note: auth none: requests carry no user, so "
			    "rules naming users or groups cannot match; this is "
			    "the verdict a real request gets, not %s's\n",
			    term_text(no_auth));
		printf("verdict: %s (%s)%s\n", actions[v.action], v.reason,
		    v.action == POLICY_RESOLVE ? "; pass --addr IP to check a "
		    "resolved address" : "");
		if (max >= 0)
			printf("max sessions: %lld (%s)\n", (long long)max,
			    from);
		else if (req.user != NULL)
			printf("max sessions: none\n");
		if (rate.pr_milli > 0)
			printf("new sessions: %g a second, burst %u (%s)\n",
			    rate.pr_milli / 1000.0, rate.pr_burst, rfrom);
		else if (req.user != NULL)
			printf("new sessions: no rate limit\n");
		if (req.user != NULL)
			printf("bandwidth: %s\nquota: %s%s%s\n", lv.lv_bw_text,
			    lv.lv_quota_text, lv.lv_used_text[0] ? ", used " :
			    "", lv.lv_used_text);
	}
	policy_unref(p);
	return (0);
}

/*
 * The attribution that the country data's license asks for: the file
 * ATTRIBUTION beside geoip_db (socksgw-geoip-update writes it), first
 * line, as it is (each sink escapes it). Empty when there is none.
 */
void
geoip_attribution(const char *db, char *out, size_t len)
{
	const char	*slash;
	char		 path[4096];
	FILE		*f;

	out[0] = '\0';
	if (db == NULL)
		return;
	slash = strrchr(db, '/');
	snprintf(path, sizeof(path), "%.*sATTRIBUTION", slash ?
	    (int)(slash - db + 1) : 0, db);
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(out, (int)len, f) == NULL)
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
}

/*
 * geoip check FILE [--path P]: whether FILE is a country database that
 * gatewayd would use with this configuration's geoip_country_path (or
 * P); what socksgw-geoip-update asks before it replaces geoip_db.
 */
static int
geoip_check(struct ctl *ctl, struct args *a)
{
	struct policy_geoip	*g;
	const char		*file = args_next(a), *opt;
	const char		*path = ctl->ctl_conf->c_geoip_path;
	char			*cause = NULL;

	if (file == NULL)
		ctl_usage_error("geoip check FILE [--path P]");
	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--path") != 0)
			ctl_usage_error("geoip check: unknown option '%s'", opt);
		path = args_value(a, opt);
	}
	if ((g = policy_geoip_open(file, path, &cause)) == NULL)
		ctl_error("%s", cause ? cause : "out of memory");
	policy_geoip_close(g);
	if (!ctl->ctl_json)
		printf("%s: country codes found\n", file);
	else {
		printf("{\"file\": ");
		json_string(file);
		printf(", \"ok\": true}\n");
	}
	return (0);
}

/* The first line of FILE beside geoip_db (VERSION), escaped; or "". */
static void
geoip_beside(const char *db, const char *name, char *out, size_t len)
{
	const char	*slash = strrchr(db, '/');
	char		 path[4096], line[256];
	FILE		*f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%.*s%s", slash ? (int)(slash - db + 1) :
	    0, db, name);
	if ((f = fopen(path, "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		esc_log(out, len, line);
	}
	fclose(f);
}

/*
 * geoip show: which country data the configuration uses (what
 * socksgw-geoip-update reads to know where and how to check).
 */
static int
geoip_show(struct ctl *ctl, struct args *a)
{
	const char	*db = ctl->ctl_conf->c_geoip_db;
	const char	*path = ctl->ctl_conf->c_geoip_path != NULL ?
			    ctl->ctl_conf->c_geoip_path :
			    POLICY_GEOIP_PATH_DEFAULT;
	char		 version[256], attribution[512];

	args_done(a);
	version[0] = attribution[0] = '\0';
	if (db != NULL) {
		geoip_beside(db, "VERSION", version, sizeof(version));
		geoip_attribution(db, attribution, sizeof(attribution));
	}
	if (ctl->ctl_json) {
		printf("{\"geoip_db\": ");
		if (db != NULL)
			json_string(db);
		else
			printf("null");
		printf(", \"geoip_country_path\": ");
		json_string(path);
		printf(", \"version\": ");
		json_string(version);
		printf(", \"attribution\": ");
		json_string(attribution);
		printf("}\n");
		return (0);
	}
	printf("geoip_db: %s\ngeoip_country_path: %s\n", db != NULL ? db :
	    "(none: --country and --src-country rules never match)", path);
	if (version[0])
		printf("version: %s\n", version);
	if (attribution[0])
		printf("country data: %s\n", term_text(attribution));
	return (0);
}

int
cmd_geoip(struct ctl *ctl, struct args *a)
{
	struct policy_geoip	*g;
	struct sockaddr_storage	 ss;
	const char		*verb = args_next(a), *ip;
	char			 cc[3], attribution[512], *cause = NULL;

	if (verb != NULL && strcmp(verb, "check") == 0)
		return (geoip_check(ctl, a));
	if (verb != NULL && strcmp(verb, "show") == 0)
		return (geoip_show(ctl, a));
	if (verb == NULL || strcmp(verb, "lookup") != 0 ||
	    (ip = args_next(a)) == NULL)
		ctl_usage_error("geoip lookup IP | check FILE | show");
	args_done(a);
	parse_ip("geoip lookup", ip, &ss);
	if (ctl->ctl_conf->c_geoip_db == NULL)
		ctl_error("%s: no geoip_db configured",
		    ctl->ctl_conf_path);
	if ((g = policy_geoip_open(ctl->ctl_conf->c_geoip_db,
	    ctl->ctl_conf->c_geoip_path, &cause)) == NULL)
		ctl_error("%s", cause ? cause : "out of memory");
	policy_geoip_lookup(g, (struct sockaddr *)&ss, cc);
	geoip_attribution(ctl->ctl_conf->c_geoip_db, attribution,
	    sizeof(attribution));
	if (ctl->ctl_json) {
		printf("{\"ip\": \"%s\", \"country\": ", ip);
		if (cc[0])
			json_string(cc);
		else
			printf("null");
		if (attribution[0]) {
			printf(", \"attribution\": ");
			json_string(attribution);
		}
		printf("}\n");
	} else {
		printf("%s %s\n", ip, cc[0] ? cc : "unknown");
		if (attribution[0])
			printf("country data: %s\n", term_text(
			    attribution));
	}
	policy_geoip_close(g);
	return (0);
}
