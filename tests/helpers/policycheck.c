/*
 * policycheck: golden decision tables. Compiles a policy database as
 * gatewayd does and checks each request of TABLE against the verdict and
 * rule id the table expects, httpd-regress style.
 *
 *	policycheck [-g GEOIP_DB [-p PATH]] DB TABLE
 *
 * A table line: KEY=VALUE ... => allow|deny|resolve RULE_ID
 * with keys user, groups (comma-separated system groups), src, dst
 * (HOST:PORT, [V6]:PORT), addr (a resolved address), cmd, at
 * (YYYY-MM-DDTHH:MM in TZ). '#' starts a comment.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"

static int
to_sockaddr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1)
		ss->ss_family = AF_INET;
	else if (inet_pton(AF_INET6, s,
	    &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
		ss->ss_family = AF_INET6;
	else
		return (-1);
	return (0);
}

int
main(int argc, char **argv)
{
	static const char *const actions[] = { "deny", "allow", "resolve" };
	struct policy_options	 opts;
	struct sockaddr_storage	 src, addr, dst;
	struct policy_req	 req;
	struct policy_verdict	 v;
	struct policy		*p;
	struct tm		 tm;
	FILE			*f;
	char			*line = NULL, *tok, *save, *eq, *arrow;
	char			*cause = NULL, host[256], want[16];
	const char		*groups[16];
	size_t			 cap = 0;
	long			 lineno = 0, want_rule;
	int			 ch, passed = 0, failed = 0, ngroups;

	memset(&opts, 0, sizeof(opts));
	while ((ch = getopt(argc, argv, "g:p:")) != -1) {
		if (ch == 'g')
			opts.geoip_db = optarg;
		else if (ch == 'p')
			opts.geoip_path = optarg;
		else
			return (2);
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: policycheck [-g GEOIP [-p PATH]] DB "
		    "TABLE\n");
		return (2);
	}
	if ((p = policy_load(argv[optind], &opts, &cause)) == NULL) {
		fprintf(stderr, "policycheck: %s\n", cause);
		return (1);
	}
	if ((f = fopen(argv[optind + 1], "r")) == NULL) {
		perror(argv[optind + 1]);
		return (1);
	}
	while (getline(&line, &cap, f) != -1) {
		lineno++;
		if ((tok = strchr(line, '#')) != NULL)
			*tok = '\0';
		if ((arrow = strstr(line, "=>")) == NULL) {
			if (strspn(line, " \t\r\n") != strlen(line)) {
				fprintf(stderr, "%s:%ld: no '=>'\n",
				    argv[optind + 1], lineno);
				failed++;
			}
			continue;
		}
		*arrow = '\0';
		if (sscanf(arrow + 2, "%15s %ld", want, &want_rule) != 2) {
			fprintf(stderr, "%s:%ld: expected => VERDICT RULE\n",
			    argv[optind + 1], lineno);
			failed++;
			continue;
		}
		memset(&req, 0, sizeof(req));
		req.cmd = POLICY_CMD_CONNECT;
		req.now = time(NULL);
		ngroups = 0;
		host[0] = '\0';
		for (tok = strtok_r(line, " \t", &save); tok != NULL;
		    tok = strtok_r(NULL, " \t", &save)) {
			if ((eq = strchr(tok, '=')) == NULL)
				goto bad;
			*eq++ = '\0';
			if (strcmp(tok, "user") == 0)
				req.user = eq;
			else if (strcmp(tok, "groups") == 0) {
				char *g, *gs;

				for (g = strtok_r(eq, ",", &gs); g != NULL &&
				    ngroups < 16; g = strtok_r(NULL, ",", &gs))
					groups[ngroups++] = g;
			} else if (strcmp(tok, "src") == 0) {
				if (to_sockaddr(eq, &src) == -1)
					goto bad;
				req.client = (struct sockaddr *)&src;
			} else if (strcmp(tok, "addr") == 0) {
				if (to_sockaddr(eq, &addr) == -1)
					goto bad;
				req.dst_addr = (struct sockaddr *)&addr;
			} else if (strcmp(tok, "dst") == 0) {
				char *colon = strrchr(eq, ':');

				if (colon == NULL)
					goto bad;
				*colon = '\0';
				req.dst_port = (uint16_t)atoi(colon + 1);
				if (eq[0] == '[') {
					eq++;
					eq[strlen(eq) - 1] = '\0';
				}
				snprintf(host, sizeof(host), "%s", eq);
			} else if (strcmp(tok, "cmd") == 0) {
				if (policy_parse_cmd(eq, &req.cmd) == -1)
					goto bad;
			} else if (strcmp(tok, "at") == 0) {
				memset(&tm, 0, sizeof(tm));
				if (strptime(eq, "%Y-%m-%dT%H:%M", &tm) == NULL)
					goto bad;
				tm.tm_isdst = -1;
				req.now = mktime(&tm);
			} else
				goto bad;
		}
		if (to_sockaddr(host, &dst) == 0)
			req.dst_addr = (struct sockaddr *)&dst;
		else
			req.dst_name = host;
		req.groups = groups;
		req.ngroups = (size_t)ngroups;
		policy_decide(p, &req, &v);
		if (strcmp(actions[v.action], want) == 0 &&
		    v.rule_id == want_rule) {
			passed++;
			continue;
		}
		fprintf(stderr, "%s:%ld: expected %s %ld, got %s %lld (%s)\n",
		    argv[optind + 1], lineno, want, want_rule,
		    actions[v.action], (long long)v.rule_id, v.reason);
		failed++;
		continue;
bad:
		fprintf(stderr, "%s:%ld: bad request field '%s'\n",
		    argv[optind + 1], lineno, tok);
		failed++;
	}
	free(line);
	fclose(f);
	policy_unref(p);
	printf("%d passed, %d failed\n", passed, failed);
	return (failed ? 1 : 0);
}
