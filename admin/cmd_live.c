/*
 * cmd_live.c: socksctl sessions, sessions kill, reload and stats, through
 * gatewayd's control socket. The answers are JSON; --json prints them as
 * they come, otherwise they are shown as tables.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"

/* The largest answer read (sessions: some 300 bytes each). */
#define LIVE_ANSWER_MAX	(64 << 20)
#include "conf.h"
#include "escape.h"
#include "stat.h"

/*
 * Sends one request, returns the whole answer (to free), or NULL with
 * errno (no socket configured: ENOTCONN; nothing answers: ENOENT...).
 */
char *
live_try(struct ctl *ctl, const char *request)
{
	return (live_try_at(ctl->ctl_conf->c_control_socket, request));
}

/* live_try's, at the control socket path (a fleet's node: cmd_fleet.c). */
char *
live_try_at(const char *path, const char *request)
{
	struct sockaddr_un	 sun;
	char			*buf = NULL;
	struct timeval		 timeout = { 10, 0 };
	struct timespec		 t0, t;
	size_t			 len = 0, cap = 0;
	ssize_t			 n;
	int			 fd, saved;

	if (path == NULL) {
		errno = ENOTCONN;
		return (NULL);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (NULL);
	/* A gateway that accepts and never answers must not hang us. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    dprintf(fd, "SOCKSGW/1 %s\n", request) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return (NULL);
	}
	/*
	 * Bounded in size and in time as a whole: a gateway that answers a
	 * byte at a time, or without end, is not waited for.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > LIVE_ANSWER_MAX || (buf = realloc(buf, cap)) ==
			    NULL) {
				free(buf);
				close(fd);
				errno = EFBIG;
				return (NULL);
			}
		}
		if ((n = read(fd, buf + len, cap - len - 1)) <= 0)
			break;
		len += (size_t)n;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > timeout.tv_sec) {
			free(buf);
			close(fd);
			errno = ETIMEDOUT;
			return (NULL);
		}
	}
	close(fd);
	if (len == 0) {
		free(buf);
		errno = ECONNRESET;
		return (NULL);
	}
	buf[len] = '\0';
	return (buf);
}

/* Sends one request, returns the whole answer (to free); errors exit. */
static char *
live_ask(struct ctl *ctl, const char *request)
{
	const char	*path = ctl->ctl_conf->c_control_socket;
	char		*buf;

	if ((buf = live_try(ctl, request)) == NULL) {
		if (errno == ENOTCONN)
			ctl_error("%s: no control_socket configured",
			    ctl->ctl_conf_path);
		if (errno == ENOENT || errno == ECONNREFUSED)
			ctl_error("gatewayd is not running (nothing answers at "
			    "%s)", path);
		if (errno == ECONNRESET)
			ctl_error("gatewayd closed the control connection");
		ctl_error("%s: %s", path, strerror(errno));
	}
	if (strncmp(buf, "{\"error\": ", 10) == 0)
		ctl_error("gatewayd: %.*s", (int)(strlen(buf) - 13), buf + 11);
	return (buf);
}

/* The value of "key" in a flat JSON object (string or number). */
void
live_field(const char *obj, const char *key, char *out, size_t len)
{
	char		 pat[64];
	const char	*p;
	size_t		 n = 0;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	if ((p = strstr(obj, pat)) == NULL)
		return;
	p += strlen(pat);
	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"' && n + 1 < len; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			out[n++] = *p;
		}
	} else
		for (; *p != '\0' && *p != ',' && *p != '}' && n + 1 < len;
		    p++)
			out[n++] = *p;
	out[n] = '\0';
}

/*
 * Each session of a "sessions" answer (edited in place) as a row of t,
 * after its node's name when there is one (socksctl --fleet).
 */
void
live_session_rows(char *ans, struct table *t, const char *node)
{
	static const char *const cols[] = { "id", "user", "client", "dst",
	    "command", "state", "rule", "age_s", "bytes_up", "bytes_down",
	    "rate_bps" };
	char	 v[11][300], *p, *end;
	int	 i;

	for (p = strchr(ans, '{'); p != NULL && (p = strchr(p + 1, '{')) !=
	    NULL; p = end) {
		if ((end = strchr(p, '}')) == NULL)
			break;
		*end++ = '\0';
		for (i = 0; i < 11; i++)
			live_field(p, cols[i], v[i], sizeof(v[i]));
		if (node != NULL)
			table_row(t, node, v[0], v[1], v[2], v[3], v[4], v[5],
			    v[6], v[7], v[8], v[9], v[10]);
		else
			table_row(t, v[0], v[1], v[2], v[3], v[4], v[5], v[6],
			    v[7], v[8], v[9], v[10]);
	}
}

/* The listing's request: "sessions", or with --user U, that user's. */
void
live_sessions_request(struct args *a, const char *opt, char *req, size_t len)
{
	const char	*user = NULL;

	if (opt != NULL) {
		if (strcmp(opt, "--user") != 0)
			ctl_usage_error("sessions: unknown option '%s'", opt);
		user = args_value(a, opt);
	}
	args_done(a);
	snprintf(req, len, "sessions%s%s", user ? " " : "", user ? user : "");
}

static int
live_sessions(struct ctl *ctl, struct args *a)
{
	const char	*opt;
	char		 req[300], v[1][300], *ans;
	struct table	*t;

	opt = args_next(a);
	if (opt != NULL && strcmp(opt, "kill") == 0) {
		if ((opt = args_next(a)) == NULL)
			ctl_usage_error("sessions kill ID | --user U");
		if (strcmp(opt, "--user") == 0)
			snprintf(req, sizeof(req), "kill-user %s",
			    args_value(a, opt));
		else
			snprintf(req, sizeof(req), "kill %llu",
			    (unsigned long long)parse_id(opt, "session id"));
		args_done(a);
		ans = live_ask(ctl, req);
		live_field(ans, "killed", v[0], sizeof(v[0]));
		if (ctl->ctl_json)
			printf("%s", ans);
		else if (strcmp(v[0], "0") != 0)
			printf("%s session%s killed\n", v[0],
			    strcmp(v[0], "1") == 0 ? "" : "s");
		free(ans);
		/* Killing nothing is an error: a script must not think so. */
		if (strcmp(v[0], "0") == 0)
			ctl_error("no such session: nothing killed");
		return (0);
	}
	live_sessions_request(a, opt, req, sizeof(req));
	ans = live_ask(ctl, req);
	if (ctl->ctl_json) {
		printf("%s", ans);
		free(ans);
		return (0);
	}
	t = table_new(11, "#id", "user", "client", "dst", "command", "state",
	    "#rule", "age", "#up", "#down", "#rate");
	live_session_rows(ans, t, NULL);
	free(ans);
	table_print(t, 0);
	return (0);
}

int
cmd_sessions(struct ctl *ctl, struct args *a)
{
	return (live_sessions(ctl, a));
}

int
cmd_reload(struct ctl *ctl, struct args *a)
{
	char	*ans, err[1024];

	args_done(a);
	ans = live_ask(ctl, "reload");
	if (ctl->ctl_json)
		printf("%s", ans);
	else if (strstr(ans, "\"reloaded\": true") != NULL) {
		live_field(ans, "restart_needed", err, sizeof(err));
		if (err[0] != '\0')
			printf("configuration reloaded; %s take effect only "
			    "after a restart\n", err);
		else
			printf("configuration reloaded\n");
	}
	if (strstr(ans, "\"reloaded\": true") == NULL) {
		live_field(ans, "error", err, sizeof(err));
		free(ans);
		ctl_error("reload refused, the running configuration stays: "
		    "%s", err);
	}
	free(ans);
	return (0);
}

int
cmd_stats(struct ctl *ctl, struct args *a)
{
	struct table	*t;
	char		*ans, v[64];
	int		 i;

	args_done(a);
	ans = live_ask(ctl, "stats");
	if (ctl->ctl_json) {
		printf("%s", ans);
		free(ans);
		return (0);
	}
	t = table_new(2, "counter", "value");
	live_field(ans, "sessions_open", v, sizeof(v));
	table_row(t, "sessions_open", v);
	for (i = 0; i < GW_STAT_MAX; i++) {
		live_field(ans, stat_name(i), v, sizeof(v));
		table_row(t, stat_name(i), v);
	}
	live_field(ans, "audit_queue", v, sizeof(v));
	table_row(t, "audit_queue", v);
	free(ans);
	table_print(t, 0);
	return (0);
}
