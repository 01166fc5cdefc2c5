/*
 * control.c: the control socket socksctl talks to for live state.
 *
 * A Unix stream socket (`control_socket`, mode 0660, group
 * `control_group`), created while gatewayd is still root and served by
 * the main thread. Each connection carries one request line,
 * "SOCKSGW/1 VERB [ARG]", and gets one JSON document back, then the close.
 * Peers are checked with SO_PEERCRED: root, gatewayd's own user, and
 * members of control_group are served; anyone else is told no.
 *
 * Live sessions belong to the workers, so the main thread never reads
 * them: it asks each worker (through its wakeup pipe) to write what it has
 * into the worker's own reply slot, and waits (at most a second) until
 * every worker has answered.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "addr.h"
#include "conf.h"
#include "escape.h"
#include "log.h"
#include "socks5.h"
#include "stat.h"

#include "account/account.h"
#include "base/stats.h"
#include "session/session.h"

#include "control.h"
#include "proxy.h"
#include "steer.h"
#include "worker.h"

#define CONTROL_LINE_MAX	512
#define CONTROL_CLIENTS_MAX	16
#define CONTROL_TIMEOUT_S	5

static struct {
	struct evconnlistener	*cs_listener;
	int			 cs_fd;
	char			*cs_path;
	gid_t			 cs_gid;
	int			 cs_has_gid;
	uid_t			 cs_self;
	/* A question to the workers, and their answers. */
	pthread_mutex_t		 cs_lock;
	pthread_cond_t		 cs_cond;
	int			 cs_pending;
	struct control_query	 cs_query;
} cs = { .cs_fd = -1, .cs_lock = PTHREAD_MUTEX_INITIALIZER,
	 .cs_cond = PTHREAD_COND_INITIALIZER };

/* As root: the socket, its mode and group. */
int
control_init(const struct conf *c, char **cause)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	struct group		*gr;
	mode_t			 mask;
	int			 fd;

	if (c->c_control_socket == NULL)
		return (0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(c->c_control_socket) >= sizeof(sun.sun_path)) {
		if (asprintf(cause, "control_socket %s: path too long",
		    c->c_control_socket) < 0)
			*cause = NULL;
		return (-1);
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", c->c_control_socket);
	if (c->c_control_group != NULL) {
		if ((gr = getgrnam(c->c_control_group)) == NULL) {
			if (asprintf(cause, "control_group %s: no such group",
			    c->c_control_group) < 0)
				*cause = NULL;
			return (-1);
		}
		cs.cs_gid = gr->gr_gid;
		cs.cs_has_gid = 1;
	}
	/*
	 * gatewayd holds its configuration's runtime lock (runtime.c), so
	 * a socket at the path is a stale one of an earlier run: removed,
	 * but never anything else. The socket is created with its mode
	 * (umask) and its group set without following a link (lchown), so
	 * a folder others can write gives them no path race to win.
	 */
	if (lstat(sun.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			if (asprintf(cause, "control_socket %s: exists and is "
			    "not a socket", c->c_control_socket) < 0)
				*cause = NULL;
			return (-1);
		}
		unlink(sun.sun_path);
	}
	mask = umask(0117);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(mask);
		if (asprintf(cause, "control_socket %s: %s",
		    c->c_control_socket, strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	umask(mask);
	if ((cs.cs_has_gid && lchown(sun.sun_path, (uid_t)-1, cs.cs_gid) ==
	    -1) || listen(fd, 16) == -1) {
		if (asprintf(cause, "control_socket %s: %s",
		    c->c_control_socket, strerror(errno)) < 0)
			*cause = NULL;
		return (-1);
	}
	cs.cs_path = strdup(sun.sun_path);
	cs.cs_fd = fd;
	return (0);
}

static int
control_allowed(int fd)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);
	struct passwd	*pw;
	gid_t		 groups[64];
	int		 n = 64, i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return (0);
	if (cred.uid == 0 || cred.uid == cs.cs_self)
		return (1);
	if (!cs.cs_has_gid)
		return (0);
	if (cred.gid == cs.cs_gid)
		return (1);
	if ((pw = getpwuid(cred.uid)) == NULL ||
	    getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		return (0);
	for (i = 0; i < n; i++)
		if (groups[i] == cs.cs_gid)
			return (1);
	return (0);
}

/* The peer's OS user, for the audit of a kill. */
static void
control_peer_name(int fd, char *out, size_t len)
{
	struct ucred	 cred;
	socklen_t	 clen = sizeof(cred);
	struct passwd	*pw;

	snprintf(out, len, "?");
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
		if ((pw = getpwuid(cred.uid)) != NULL)
			snprintf(out, len, "%s", pw->pw_name);
		else
			snprintf(out, len, "uid %u", (unsigned)cred.uid);
	}
}

/*
 * Asks every worker the question q, waits for their answers (at most a
 * second), and appends them to out. Runs on the main thread.
 */
static void
control_ask(struct worker *workers, int n, struct control_query *q,
    struct evbuffer *out)
{
	struct timespec	 ts;
	int		 i, first = 1;

	pthread_mutex_lock(&cs.cs_lock);
	cs.cs_query = *q;
	cs.cs_pending = n;
	for (i = 0; i < n; i++) {
		free(workers[i].w_answer);
		workers[i].w_answer = NULL;
		workers[i].w_answered = 0;
	}
	pthread_mutex_unlock(&cs.cs_lock);
	for (i = 0; i < n; i++)
		worker_request(&workers[i], WORKER_CONTROL);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	pthread_mutex_lock(&cs.cs_lock);
	while (cs.cs_pending > 0)
		if (pthread_cond_timedwait(&cs.cs_cond, &cs.cs_lock, &ts) ==
		    ETIMEDOUT)
			break;
	for (i = 0; i < n; i++) {
		q->cq_count += workers[i].w_answered;
		if (workers[i].w_answer == NULL || workers[i].w_answer[0] ==
		    '\0')
			continue;
		evbuffer_add_printf(out, "%s%s", first ? "" : ",",
		    workers[i].w_answer);
		first = 0;
	}
	pthread_mutex_unlock(&cs.cs_lock);
}

static void
control_json_file(FILE *f, const char *s)
{
	char	 buf[ESC_FIELD_MAX * 6 + 3];

	esc_json(buf, sizeof(buf), s);
	fputs(buf, f);
}

/* On a worker's thread: answers the question in cs.cs_query. */
void
control_answer(struct worker *w)
{
	struct control_query	 q;
	struct session		*s, *next;
	char			*buf = NULL, peer[ADDR_STRLEN], dst[300];
	size_t			 len = 0;
	FILE			*f;
	int			 first = 1, count = 0;
	int64_t			 now_ms;
	struct timespec		 ts;

	pthread_mutex_lock(&cs.cs_lock);
	q = cs.cs_query;
	pthread_mutex_unlock(&cs.cs_lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if ((f = open_memstream(&buf, &len)) == NULL)
		return;
	for (s = TAILQ_FIRST(&w->w_sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, s_entry);
		/* A kill always names a session or a user, never "all". */
		if (q.cq_kill && q.cq_id == 0 && q.cq_user[0] == '\0')
			break;
		if (q.cq_user[0] != '\0' && (!s->s_authed ||
		    strcmp(s->s_user, q.cq_user) != 0))
			continue;
		if (q.cq_id != 0 && s->s_id != q.cq_id)
			continue;
		if (q.cq_kill) {
			/* The admin lives on in the log and the audit row. */
			s->s_errno = 0;
			session_kill(s, q.cq_admin);
			count++;
			continue;
		}
		addr_str((struct sockaddr *)&s->s_peer, peer, sizeof(peer));
		session_dst_text(s, dst, sizeof(dst));
		fprintf(f, "%s{\"id\": %llu, \"user\": ", first ? "" : ",",
		    (unsigned long long)s->s_id);
		control_json_file(f, s->s_authed ? s->s_user : "");
		fprintf(f, ", \"client\": \"%s\", \"dst\": ", peer);
		control_json_file(f, dst);
		fprintf(f, ", \"command\": \"%s\", \"state\": \"%s\", "
		    "\"rule\": %lld, \"age_s\": %.1f, \"bytes_up\": %llu, "
		    "\"bytes_down\": %llu, \"rate_bps\": %llu, \"worker\": %d}",
		    s5_cmd_str(s->s_cmd), session_state_name(s->s_state),
		    (long long)s->s_rule_id,
		    (double)(now_ms - s->s_start_ms) / 1000,
		    (unsigned long long)s->s_bytes[SIDE_CLIENT],
		    (unsigned long long)s->s_bytes[SIDE_REMOTE],
		    (unsigned long long)s->s_rate, w->w_id);
		first = 0;
		count++;
	}
	fclose(f);
	pthread_mutex_lock(&cs.cs_lock);
	w->w_answer = buf;
	w->w_answered = count;
	if (--cs.cs_pending == 0)
		pthread_cond_signal(&cs.cs_cond);
	pthread_mutex_unlock(&cs.cs_lock);
}

struct control_client {
	struct bufferevent	*cc_bev;
	struct control_ctx	*cc_ctx;
	struct event		*cc_deadline;	/* from accept, not idle time */
};

static int	 control_clients;	/* main thread only */

static void
control_client_free(struct control_client *cc)
{
	if (cc->cc_deadline != NULL)
		event_free(cc->cc_deadline);
	bufferevent_free(cc->cc_bev);
	free(cc);
	control_clients--;
}

static void
control_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	control_client_free(arg);
}

static void
control_done(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	control_client_free(arg);
}

/* EOF, an error, a timeout, or a line too long: the client goes. */
static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	control_client_free(arg);
}

static void
control_reply(struct control_client *cc, struct evbuffer *out)
{
	static const struct timeval	 timeout = { CONTROL_TIMEOUT_S, 0 };

	/* A slow answer (a reload) still gets its time to be read. */
	if (cc->cc_deadline != NULL)
		evtimer_add(cc->cc_deadline, &timeout);
	bufferevent_setcb(cc->cc_bev, NULL, control_done, control_event, cc);
	bufferevent_write_buffer(cc->cc_bev, out);
	evbuffer_free(out);
}

static void
control_json_string(struct evbuffer *out, const char *s)
{
	char	 buf[ESC_FIELD_MAX * 6 + 3];

	evbuffer_add(out, buf, esc_json(buf, sizeof(buf), s));
}


/* Each rule's decisions since the start: {"rules": [{"id", "hits", ...}]} */
static void
control_rules(struct evbuffer *out)
{
	static struct rule_hits	 hits[1024];
	size_t			 i, n = stat_rules(hits, 1024);

	evbuffer_add_printf(out, "{\"rules\": [");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "%s{\"id\": %lld, \"hits\": %llu, "
		    "\"last_hit\": %lld}", i > 0 ? ", " : "",
		    (long long)hits[i].rh_rule,
		    (unsigned long long)hits[i].rh_hits,
		    (long long)hits[i].rh_last);
	evbuffer_add_printf(out, "]}\n");
}

static void
control_read(struct bufferevent *bev, void *arg)
{
	char			 restart[512], central[256], store[2048],
				 leases[256], steering[1536];
	struct control_client	*cc = arg;
	struct control_ctx	*ctx = cc->cc_ctx;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer		*out;
	struct control_query	 q;
	struct control_cmd	 cmd;
	const char		*why;
	char			*line, *cause;
	size_t			 n;
	int			 i;

	if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			control_event(bev, 0, cc);
		return;
	}
	if ((out = evbuffer_new()) == NULL) {
		free(line);
		control_event(bev, 0, cc);
		return;
	}
	memset(&q, 0, sizeof(q));
	if (control_parse(line, n, &cmd, &why) == -1) {
		evbuffer_add_printf(out, "{\"error\": ");
		control_json_string(out, why);
		evbuffer_add_printf(out, "}\n");
		goto reply;
	}
	switch (cmd.cc_verb) {
	case CV_SESSIONS:
		snprintf(q.cq_user, sizeof(q.cq_user), "%s", cmd.cc_user);
		evbuffer_add_printf(out, "{\"sessions\": [");
		control_ask(ctx->cx_workers, ctx->cx_nworkers, &q, out);
		evbuffer_add_printf(out, "]}\n");
		break;
	case CV_KILL:
	case CV_KILL_USER:
		q.cq_kill = 1;
		control_peer_name(bufferevent_getfd(bev), q.cq_admin,
		    sizeof(q.cq_admin));
		snprintf(q.cq_user, sizeof(q.cq_user), "%s", cmd.cc_user);
		q.cq_id = cmd.cc_id;
		control_ask(ctx->cx_workers, ctx->cx_nworkers, &q, out);
		evbuffer_add_printf(out, "{\"killed\": %d}\n", q.cq_count);
		if (cmd.cc_verb == CV_KILL)
			log_info("control: kill %llu: %d sessions killed by %s",
			    (unsigned long long)cmd.cc_id, q.cq_count,
			    q.cq_admin);
		else
			log_info("control: kill-user %s: %d sessions killed by "
			    "%s", cmd.cc_user, q.cq_count, q.cq_admin);
		break;
	case CV_RELOAD:
		cause = ctx->cx_reload(restart, sizeof(restart));
		if (cause == NULL) {
			/* Keyword names only: nothing to escape but quotes. */
			evbuffer_add_printf(out, "{\"reloaded\": true, "
			    "\"restart_needed\": ");
			control_json_string(out, restart);
			evbuffer_add_printf(out, "}\n");
		} else {
			evbuffer_add_printf(out, "{\"reloaded\": false, "
			    "\"error\": ");
			control_json_string(out, cause);
			evbuffer_add_printf(out, "}\n");
			free(cause);
		}
		break;
	case CV_STATS:
		evbuffer_add_printf(out, "{\"sessions_open\": %u",
		    (unsigned)gw_nsessions);
		for (i = 0; i < GW_STAT_MAX; i++)
			evbuffer_add_printf(out, ", \"%s\": %llu",
			    stat_name(i), (unsigned long long)gw_stats[i]);
		audit_central_json(central, sizeof(central));
		policy_follow_json(store, sizeof(store));
		quota_lease_json(leases, sizeof(leases));
		steer_json(steering, sizeof(steering));
		evbuffer_add_printf(out, ", \"audit_queue\": %zu%s%s%s%s}\n",
		    audit_queue_depth(), central, store, leases, steering);
		break;
	case CV_RULES:
		control_rules(out);
		break;
	}
reply:
	free(line);
	control_reply(cc, out);
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	static const struct timeval	 timeout = { CONTROL_TIMEOUT_S, 0 };
	struct control_client	*cc;
	struct evbuffer		*out;

	(void)l;
	(void)sa;
	(void)len;
	/* Bounded: a stuck admin script cannot hold every descriptor. */
	if (control_clients >= CONTROL_CLIENTS_MAX ||
	    (cc = calloc(1, sizeof(*cc))) == NULL) {
		close(fd);
		return;
	}
	cc->cc_ctx = arg;
	if ((cc->cc_bev = bufferevent_socket_new(evconnlistener_get_base(
	    cs.cs_listener), fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		free(cc);
		return;
	}
	control_clients++;
	/*
	 * A partial line, a trickled one, or a reader that never reads: the
	 * client has CONTROL_TIMEOUT_S from its accept, whatever it does.
	 */
	if ((cc->cc_deadline = evtimer_new(evconnlistener_get_base(
	    cs.cs_listener), control_expired, cc)) == NULL ||
	    evtimer_add(cc->cc_deadline, &timeout) == -1) {
		control_client_free(cc);
		return;
	}
	if (!control_allowed(fd)) {
		if ((out = evbuffer_new()) != NULL) {
			evbuffer_add_printf(out, "{\"error\": \"not allowed: "
			    "root and the control_group only\"}\n");
			control_reply(cc, out);
		} else
			control_event(cc->cc_bev, 0, cc);
		return;
	}
	bufferevent_setcb(cc->cc_bev, control_read, NULL, control_event, cc);
	bufferevent_setwatermark(cc->cc_bev, EV_READ, 0, CONTROL_LINE_MAX * 2);
	bufferevent_enable(cc->cc_bev, EV_READ | EV_WRITE);
}

/* On the main thread's loop, after the privilege drop. */
int
control_start(struct event_base *base, struct control_ctx *ctx, char **cause)
{
	if (cs.cs_path == NULL)
		return (0);
	cs.cs_self = geteuid();
	if ((cs.cs_listener = evconnlistener_new(base, control_accept, ctx,
	    LEV_OPT_CLOSE_ON_FREE, 0, cs.cs_fd)) == NULL) {
		if (asprintf(cause, "control_socket: cannot listen") < 0)
			*cause = NULL;
		return (-1);
	}
	return (0);
}

void
control_stop(void)
{
	if (cs.cs_path == NULL)
		return;
	if (cs.cs_listener != NULL)
		evconnlistener_free(cs.cs_listener);
	/* The socket file stays if we are no longer allowed to remove it. */
	unlink(cs.cs_path);
	free(cs.cs_path);
	cs.cs_path = NULL;
}
