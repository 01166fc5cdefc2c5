/*
 * cmd_fleet.c: socksctl --fleet FILE sessions|stats: the live state of
 * every gateway of a fleet, each asked through its own control socket,
 * shown together with a node column.
 *
 * FILE names the nodes, one a line: NAME PATH, the node's name (its
 * node_name) and a Unix socket that reaches its control socket. The
 * channel is the admin's choice, and its authentication too: a node's own
 * socket on this host, or one forwarded from it (ssh -L
 * /run/socksgw-fleet/gw1.sock:/run/socksgw/control.sock gw1), which only
 * those the node's control_group admits, and who can log in there, can
 * open. No network listener is added to gatewayd for this.
 *
 * A node that does not answer is said on standard error, the others are
 * shown all the same, and the exit status is 1.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "conf.h"
#include "escape.h"
#include "stat.h"

#define FLEET_MAX	256	/* nodes in a fleet file */

struct fleet_node {
	char	 fn_name[GW_NODE_NAME_MAX + 1];
	char	 fn_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char	*fn_answer;	/* NULL: no answer */
};

/* FILE's nodes; a line out of form is an error naming FILE:LINE. */
static int
fleet_read(const char *file, struct fleet_node *nodes)
{
	FILE	*f;
	char	 line[1024], name[256], path[1024], extra[8];
	int	 n = 0, lineno = 0, k, i;
	size_t	 j;

	if ((f = fopen(file, "r")) == NULL)
		ctl_error("--fleet %s: %s", file, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
			ctl_error("%s:%d: a line longer than %zu bytes", file,
			    lineno, sizeof(line) - 2);
		j = strspn(line, " \t\r\n");
		if (line[j] == '#' || line[j] == '\0')
			continue;
		k = sscanf(line, "%255s %1023s %7s", name, path, extra);
		for (j = 0; k >= 1 && name[j] != '\0'; j++)
			if (!isalnum((unsigned char)name[j]) && name[j] != '.' &&
			    name[j] != '-' && name[j] != '_')
				k = -1;
		if (k != 2 || strlen(name) > GW_NODE_NAME_MAX ||
		    path[0] != '/' || strlen(path) >=
		    sizeof(nodes[0].fn_path))
			ctl_error("%s:%d: expected NAME /PATH/TO/control.sock "
			    "(a node name of letters, digits, '.', '-', '_')",
			    file, lineno);
		for (i = 0; i < n; i++)
			if (strcmp(nodes[i].fn_name, name) == 0)
				ctl_error("%s:%d: node %s named twice", file,
				    lineno, name);
		if (n == FLEET_MAX)
			ctl_error("%s:%d: more than %d nodes", file, lineno,
			    FLEET_MAX);
		snprintf(nodes[n].fn_name, sizeof(nodes[n].fn_name), "%s",
		    name);
		snprintf(nodes[n].fn_path, sizeof(nodes[n].fn_path), "%s",
		    path);
		nodes[n++].fn_answer = NULL;
	}
	fclose(f);
	if (n == 0)
		ctl_error("--fleet %s: no nodes", file);
	return (n);
}

/*
 * Whether path is a socket only this user (or root) could have put there:
 * its owner and its folder's are this user or root, and the folder is
 * not writable by others. Else a local user could stand in for a node,
 * hear its requests (kill-user) and answer anything.
 */
static int
fleet_socket_ok(const char *path)
{
	struct stat	 st;
	char		 dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *slash;
	uid_t		 me = getuid();

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return (0);
	*(slash == dir ? slash + 1 : slash) = '\0';
	if (lstat(path, &st) == -1 || !S_ISSOCK(st.st_mode) ||
	    (st.st_uid != 0 && st.st_uid != me))
		return (0);
	return (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_uid == 0 || st.st_uid == me) &&
	    (st.st_mode & (S_IWGRP | S_IWOTH)) == 0);
}

/*
 * Whether an answer is one JSON object and nothing else (strings skipped
 * over): it is printed inside the fleet's own JSON as it came.
 */
static int
fleet_one_object(const char *s)
{
	int	 depth = 0, in = 0;

	s += strspn(s, " \r\n\t");
	if (*s != '{')
		return (0);
	for (; *s != '\0'; s++) {
		if (in) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '"')
				in = 0;
			continue;
		}
		if (*s == '"')
			in = 1;
		else if (*s == '{' || *s == '[')
			depth++;
		else if ((*s == '}' || *s == ']') && --depth == 0)
			return (s[1 + strspn(s + 1, " \r\n\t")] == '\0');
		else if ((unsigned char)*s < 0x20 && strchr(" \r\n\t", *s) ==
		    NULL)
			return (0);
	}
	return (0);
}

/* Asks every node; says on stderr which did not answer. 0, or 1 if one. */
static int
fleet_ask(struct fleet_node *nodes, int n, const char *request)
{
	struct stat	 st;
	char		 why[256];
	int		 i, failed = 0;

	for (i = 0; i < n; i++) {
		nodes[i].fn_answer = NULL;
		if (lstat(nodes[i].fn_path, &st) == 0 &&
		    !fleet_socket_ok(nodes[i].fn_path)) {
			fprintf(stderr, "socksctl: node %s: %s is not a socket "
			    "of this user's or root's, in a folder only they "
			    "write\n", nodes[i].fn_name, nodes[i].fn_path);
			failed = 1;
			continue;
		}
		nodes[i].fn_answer = live_try_at(nodes[i].fn_path, request);
		if (nodes[i].fn_answer == NULL) {
			fprintf(stderr, "socksctl: node %s: nothing answers at "
			    "%s (%s)\n", nodes[i].fn_name, nodes[i].fn_path,
			    strerror(errno));
			failed = 1;
			continue;
		}
		if (strncmp(nodes[i].fn_answer, "{\"error\": ", 10) == 0 ||
		    !fleet_one_object(nodes[i].fn_answer)) {
			esc_log(why, sizeof(why), nodes[i].fn_answer);
			fprintf(stderr, "socksctl: node %s: %s%s\n",
			    nodes[i].fn_name, fleet_one_object(
			    nodes[i].fn_answer) ? "gatewayd: " : "not an "
			    "answer: ", why);
			free(nodes[i].fn_answer);
			nodes[i].fn_answer = NULL;
			failed = 1;
		}
	}
	return (failed);
}

/* --json: every node's answer as it came, under its name. */
static void
fleet_json(struct fleet_node *nodes, int n)
{
	int	 i;

	printf("{\"nodes\": [");
	for (i = 0; i < n; i++) {
		printf("%s{\"node\": \"%s\", ", i ? ", " : "",
		    nodes[i].fn_name);
		if (nodes[i].fn_answer != NULL)
			printf("\"answer\": %s}", nodes[i].fn_answer);
		else
			printf("\"answer\": null}");
	}
	printf("]}\n");
}

static int
fleet_sessions(struct ctl *ctl, struct fleet_node *nodes, int n,
    struct args *a)
{
	const char	*opt;
	char		 req[300], v[1][300], target[300], *colon;
	struct table	*t;
	int		 i, k, failed, killed = 0;

	if ((opt = args_next(a)) != NULL && strcmp(opt, "kill") == 0) {
		if ((opt = args_next(a)) == NULL)
			ctl_usage_error("sessions kill NODE:ID | --user U");
		if (strcmp(opt, "--user") == 0)
			snprintf(req, sizeof(req), "kill-user %s",
			    args_value(a, opt));
		else {
			/* One node's session: NODE:ID. */
			snprintf(target, sizeof(target), "%s", opt);
			if ((colon = strrchr(target, ':')) == NULL)
				ctl_usage_error("sessions kill %s: NODE:ID "
				    "with --fleet", opt);
			*colon = '\0';
			for (i = 0; i < n && strcmp(nodes[i].fn_name, target) !=
			    0; i++)
				;
			if (i == n)
				ctl_usage_error("sessions kill: no node %s in "
				    "the fleet file", target);
			snprintf(req, sizeof(req), "kill %llu",
			    (unsigned long long)parse_id(colon + 1,
			    "session id"));
			nodes = &nodes[i];
			n = 1;
		}
		args_done(a);
		failed = fleet_ask(nodes, n, req);
		for (i = 0; i < n; i++) {
			if (nodes[i].fn_answer == NULL)
				continue;
			live_field(nodes[i].fn_answer, "killed", v[0],
			    sizeof(v[0]));
			killed += atoi(v[0]);
		}
		if (ctl->ctl_json)
			fleet_json(nodes, n);
		else if (killed > 0)
			printf("%d session%s killed\n", killed,
			    killed == 1 ? "" : "s");
		if (killed == 0)
			ctl_error("no such session: nothing killed");
		return (failed);
	}
	live_sessions_request(a, opt, req, sizeof(req));
	failed = fleet_ask(nodes, n, req);
	if (ctl->ctl_json) {
		fleet_json(nodes, n);
		return (failed);
	}
	t = table_new(12, "node", "#id", "user", "client", "dst", "command",
	    "state", "#rule", "age", "#up", "#down", "#rate");
	for (k = 0; k < n; k++)
		if (nodes[k].fn_answer != NULL)
			live_session_rows(nodes[k].fn_answer, t,
			    nodes[k].fn_name);
	table_print(t, 0);
	return (failed);
}

/* Each counter: the fleet's total, and each node's value. */
static int
fleet_stats(struct ctl *ctl, struct fleet_node *nodes, int n,
    struct args *a)
{
	struct table	*t;
	const char	*name;
	char		 v[64], total[32], *each, *ep;
	size_t		 len, cap;
	long long	 sum, x;
	int		 i, k, r, failed;

	args_done(a);
	failed = fleet_ask(nodes, n, "stats");
	if (ctl->ctl_json) {
		fleet_json(nodes, n);
		return (failed);
	}
	t = table_new(3, "counter", "#total", "by node");
	cap = (size_t)n * (GW_NODE_NAME_MAX + sizeof(v) + 4) + 1;
	if ((each = malloc(cap)) == NULL)
		ctl_error("out of memory");
	for (i = -2; i < GW_STAT_MAX; i++) {
		name = i == -2 ? "sessions_open" : i == -1 ? "audit_queue" :
		    stat_name(i);
		sum = 0;
		len = 0;
		each[0] = '\0';
		for (k = 0; k < n; k++) {
			if (nodes[k].fn_answer == NULL)
				continue;
			live_field(nodes[k].fn_answer, name, v, sizeof(v));
			/* A count, or not summed: shown as "?". */
			errno = 0;
			x = strtoll(v, &ep, 10);
			if (v[0] == '\0' || *ep != '\0' || errno != 0 || x < 0)
				snprintf(v, sizeof(v), "?");
			else if (sum <= LLONG_MAX - x)
				sum += x;
			r = snprintf(each + len, cap - len, "%s%s %s", len ?
			    ", " : "", nodes[k].fn_name, v);
			if (r < 0 || (size_t)r >= cap - len)
				break;
			len += (size_t)r;
		}
		snprintf(total, sizeof(total), "%lld", sum);
		table_row(t, name, total, each);
	}
	free(each);
	table_print(t, 0);
	return (failed);
}

/* socksctl --fleet FILE NOUN ...: the nouns that ask live state. */
int
fleet_run(struct ctl *ctl, const char *noun, struct args *a)
{
	struct fleet_node	*nodes;
	int			 n, rc, i;

	if ((nodes = calloc(FLEET_MAX, sizeof(*nodes))) == NULL)
		ctl_error("out of memory");
	n = fleet_read(ctl->ctl_fleet, nodes);
	if (strcmp(noun, "sessions") == 0)
		rc = fleet_sessions(ctl, nodes, n, a);
	else if (strcmp(noun, "stats") == 0)
		rc = fleet_stats(ctl, nodes, n, a);
	else
		ctl_usage_error("--fleet works with sessions and stats, not %s",
		    noun);
	for (i = 0; i < n; i++)
		free(nodes[i].fn_answer);
	free(nodes);
	return (rc);
}
