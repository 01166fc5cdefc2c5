/*
 * cmd_test.c: socksctl test FILE, a policy's tests kept beside it in git.
 *
 * A line: KEY=VALUE ... => allow|deny|resolve RULE_ID, with keys user,
 * groups (comma-separated system groups), src, dst (HOST:PORT or
 * [V6]:PORT), addr (the resolved address of a named dst), cmd (connect,
 * bind, udp) and at (YYYY-MM-DDTHH:MM in the configuration's timezone).
 * '#' starts a comment; a request without at= is judged at the time the
 * test runs. Each request is decided by the policy compiled as
 * gatewayd compiles it; as with explain, under auth none a request carries
 * no user, whatever the line says. Every mismatch is shown, and the exit
 * status is 1 if there was one: a CI job can run it.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "admin.h"
#include "conf.h"

#define TEST_GROUPS_MAX	16

static const char *const test_actions[] = { "deny", "allow", "resolve" };

struct test_req {
	struct policy_req	 tr_req;
	struct sockaddr_storage	 tr_src, tr_addr, tr_dst;
	const char		*tr_groups[TEST_GROUPS_MAX];
	char			 tr_host[256];
};

/* The request of one line (before "=>"), or the field that is wrong. */
static const char *
test_parse(char *text, struct test_req *t, int auth)
{
	struct policy_req	*req = &t->tr_req;
	struct tm		 tm;
	char			*tok, *save, *eq, *colon, *g, *gs, *ep;
	unsigned long		 port;
	int			 ngroups = 0;

	memset(t, 0, sizeof(*t));
	req->cmd = POLICY_CMD_CONNECT;
	req->now = time(NULL);
	for (tok = strtok_r(text, " \t\r\n", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t\r\n", &save)) {
		if ((eq = strchr(tok, '=')) == NULL)
			return (tok);
		*eq++ = '\0';
		if (strcmp(tok, "user") == 0)
			req->user = auth ? eq : NULL;
		else if (strcmp(tok, "groups") == 0) {
			for (g = strtok_r(eq, ",", &gs); g != NULL && auth;
			    g = strtok_r(NULL, ",", &gs)) {
				if (ngroups == TEST_GROUPS_MAX)
					return ("groups (16 at most)");
				t->tr_groups[ngroups++] = g;
			}
		} else if (strcmp(tok, "src") == 0) {
			if (addr_parse_ip(eq, &t->tr_src) == -1)
				return ("src");
			req->client = (struct sockaddr *)&t->tr_src;
		} else if (strcmp(tok, "addr") == 0) {
			if (addr_parse_ip(eq, &t->tr_addr) == -1)
				return ("addr");
			req->dst_addr = (struct sockaddr *)&t->tr_addr;
		} else if (strcmp(tok, "dst") == 0) {
			if ((colon = strrchr(eq, ':')) == NULL)
				return ("dst");
			*colon = '\0';
			errno = 0;
			port = strtoul(colon + 1, &ep, 10);
			if (*ep != '\0' || errno != 0 || port == 0 ||
			    port > 65535)
				return ("dst");
			req->dst_port = (uint16_t)port;
			if (eq[0] == '[' && eq[strlen(eq) - 1] == ']') {
				eq++;
				eq[strlen(eq) - 1] = '\0';
			}
			snprintf(t->tr_host, sizeof(t->tr_host), "%s", eq);
		} else if (strcmp(tok, "cmd") == 0) {
			if (policy_parse_cmd(eq, &req->cmd) == -1)
				return ("cmd");
		} else if (strcmp(tok, "at") == 0) {
			memset(&tm, 0, sizeof(tm));
			if ((ep = strptime(eq, "%Y-%m-%dT%H:%M", &tm)) == NULL ||
			    *ep != '\0')
				return ("at");
			tm.tm_isdst = -1;
			req->now = mktime(&tm);
		} else
			return (tok);
	}
	if (t->tr_host[0] == '\0')
		return ("dst (none given)");
	if (addr_parse_ip(t->tr_host, &t->tr_dst) == 0)
		req->dst_addr = (struct sockaddr *)&t->tr_dst;
	else
		req->dst_name = t->tr_host;
	req->groups = t->tr_groups;
	req->ngroups = (size_t)ngroups;
	return (NULL);
}

int
cmd_test(struct ctl *ctl, struct args *a)
{
	struct test_req		 t;
	struct policy_verdict	 v;
	struct policy		*p;
	const char		*path = args_next(a), *bad;
	char			*line = NULL, *arrow, *hash, want[16], copy[1024];
	char			 junk;
	size_t			 cap = 0;
	long			 lineno = 0, want_rule;
	int			 passed = 0, failed = 0, auth;
	FILE			*f;

	if (path == NULL)
		ctl_usage_error("test FILE");
	args_done(a);
	if ((f = fopen(path, "r")) == NULL)
		ctl_error("%s: %s", path, strerror(errno));
	p = ctl_policy(ctl);
	auth = ctl->ctl_conf->c_auth != AUTH_NONE;
	while (getline(&line, &cap, f) != -1) {
		lineno++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		if (strspn(line, " \t\r\n") == strlen(line))
			continue;
		snprintf(copy, sizeof(copy), "%s", line);
		copy[strcspn(copy, "\r\n")] = '\0';
		if ((arrow = strstr(line, "=>")) == NULL ||
		    sscanf(arrow + 2, " %15s %ld %c", want, &want_rule,
		    &junk) != 2 || (strcmp(want, "allow") != 0 &&
		    strcmp(want, "deny") != 0 && strcmp(want, "resolve") != 0)) {
			fprintf(stderr, "%s:%ld: expected REQUEST => VERDICT "
			    "RULE\n", path, lineno);
			failed++;
			continue;
		}
		*arrow = '\0';
		if ((bad = test_parse(line, &t, auth)) != NULL) {
			fprintf(stderr, "%s:%ld: bad request field '%s'\n",
			    path, lineno, term_text(bad));
			failed++;
			continue;
		}
		policy_decide(p, &t.tr_req, &v);
		if (strcmp(test_actions[v.action], want) == 0 &&
		    v.rule_id == want_rule) {
			passed++;
			continue;
		}
		failed++;
		printf("%s:%ld: %s\n", path, lineno, term_text(copy));
		printf("  expected: %s %ld\n  got:      %s %lld (%s)\n", want,
		    want_rule, test_actions[v.action], (long long)v.rule_id,
		    term_text(v.reason));
	}
	free(line);
	fclose(f);
	policy_unref(p);
	printf("%d passed, %d failed%s\n", passed, failed, auth ? "" :
	    " (auth none: requests carry no user)");
	/* A table with no request tests nothing: a CI job must not pass. */
	if (passed + failed == 0)
		ctl_error("%s: no request to test", path);
	return (failed > 0 ? 1 : 0);
}
