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
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
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

/* Asks every node; says on stderr which did not answer. 0, or 1 if one. */
static int
fleet_ask(struct fleet_node *nodes, int n, const char *request)
{
	int	 i, failed = 0;

	for (i = 0; i < n; i++) {
		nodes[i].fn_answer = live_try_at(nodes[i].fn_path, request);
		if (nodes[i].fn_answer != NULL && strncmp(nodes[i].fn_answer,
		    "{\"error\": ", 10) == 0) {
			fprintf(stderr, "socksctl: node %s: gatewayd: %s\n",
			    nodes[i].fn_name, nodes[i].fn_answer);
			free(nodes[i].fn_answer);
			nodes[i].fn_answer = NULL;
			failed = 1;
		} else if (nodes[i].fn_answer == NULL) {
			fprintf(stderr, "socksctl: node %s: nothing answers at "
			    "%s (%s)\n", nodes[i].fn_name, nodes[i].fn_path,
			    strerror(errno));
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
	char		 req[300], v[1][300], *colon;
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
			if ((colon = strrchr(opt, ':')) == NULL)
				ctl_usage_error("sessions kill %s: NODE:ID "
				    "with --fleet", opt);
			*colon = '\0';
			for (i = 0; i < n && strcmp(nodes[i].fn_name, opt) != 0;
			    i++)
				;
			if (i == n)
				ctl_usage_error("sessions kill: no node %s in "
				    "the fleet file", opt);
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
	char		 v[64], total[32], *each;
	size_t		 len, cap;
	long long	 sum;
	int		 i, k, failed;

	args_done(a);
	failed = fleet_ask(nodes, n, "stats");
	if (ctl->ctl_json) {
		fleet_json(nodes, n);
		return (failed);
	}
	t = table_new(3, "counter", "#total", "by node");
	cap = (size_t)n * (GW_NODE_NAME_MAX + 32) + 1;
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
			sum += atoll(v);
			len += (size_t)snprintf(each + len, cap - len, "%s%s %s",
			    len ? ", " : "", nodes[k].fn_name, v[0] ? v : "-");
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
