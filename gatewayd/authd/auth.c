/*
 * auth.c: the proxy's side of authentication. A worker sends the RFC 1929
 * pair to authd over its own channel and forgets the password at once;
 * the session waits, reading nothing, until the reply comes back on the
 * worker's event loop. Every other session keeps relaying meanwhile.
 * A login authd answered from its cache may be answered again by
 * auth_cache.c instead: the reply then comes on the next turn of the same
 * loop, by the same path.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stddef.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "log.h"

#include "base/chan.h"
#include "base/stats.h"
#include "proxy/worker.h"
#include "session/session.h"

#include "auth.h"

static void	auth_reply_cb(evutil_socket_t, short, void *);
static void	auth_hits_cb(evutil_socket_t, short, void *);
static void	auth_deliver(struct worker *, const struct auth_reply *);

static _Atomic int	 auth_gone_said;

static void
auth_channel_open(struct worker *w)
{
	if (w->w_auth_fd == -1)
		return;
	if (fcntl(w->w_auth_fd, F_SETFL, O_NONBLOCK) == -1 ||
	    (w->w_auth_ev = event_new(w->w_base, w->w_auth_fd,
	    EV_READ | EV_PERSIST, auth_reply_cb, w)) == NULL ||
	    event_add(w->w_auth_ev, NULL) == -1)
		fatalx("worker %d: cannot listen to authd", w->w_id);
}

void
auth_channel_init(struct worker *w)
{
	TAILQ_INIT(&w->w_authing);
	TAILQ_INIT(&w->w_auth_hitq);
	/* Without it no login is answered from the cache (auth_submit). */
	w->w_auth_hits = event_new(w->w_base, -1, 0, auth_hits_cb, w);
	auth_channel_open(w);
}

/*
 * On the worker's thread: the parent restarted authd and this is the new
 * channel. Logins work again; the next death is said again.
 */
void
auth_channel_replace(struct worker *w, int fd)
{
	struct auth_reply	 rep;
	struct session		*s;

	if (fd == -1)
		return;		/* a second wake-up for one channel */
	/* Logins sent to the old authd will never be answered: refused. */
	memset(&rep, 0, sizeof(rep));
	rep.ap_status = AUTH_GONE;
	snprintf(rep.ap_msg, sizeof(rep.ap_msg), "authd was restarted");
	while ((s = TAILQ_FIRST(&w->w_authing)) != NULL) {
		rep.ap_sid = s->s_id;
		auth_deliver(w, &rep);
	}
	if (w->w_auth_ev != NULL) {
		event_free(w->w_auth_ev);
		w->w_auth_ev = NULL;
	}
	if (w->w_auth_fd != -1)
		close(w->w_auth_fd);
	w->w_auth_fd = fd;
	auth_channel_open(w);
	auth_cache_clear();	/* the new authd's cache is empty */
	atomic_store(&auth_gone_said, 0);
}

/* The session waits in S_AUTH, going by user until the answer. */
static int
auth_wait(struct session *s, const char *user)
{
	if ((s->s_user = strdup(user)) == NULL)
		return (-1);
	TAILQ_INSERT_TAIL(&s->s_worker->w_authing, s, s_auth_entry);
	s->s_authing = 1;
	return (0);
}

/*
 * Sends one login to authd (a request, as long as its token): the
 * session waits in S_AUTH. user is the name it goes by until authd
 * answers ("" for a token, whose user only authd can tell). -1 if authd
 * cannot take it now.
 */
static int
auth_send(struct session *s, int type, struct auth_request *req,
    const char *user)
{
	struct worker	*w = s->s_worker;
	ssize_t		 n;

	req->ar_sid = s->s_id;
	/*
	 * The bare address ("2001:db8::10", never "[2001:db8::10]"): authd
	 * counts failures by its prefix and hands it to PAM as PAM_RHOST.
	 */
	addr_ip(&s->s_peer, req->ar_client, sizeof(req->ar_client));
	clock_gettime(CLOCK_MONOTONIC, &s->s_auth_sent);
	n = chan_send(w->w_auth_fd, type, s->s_id, req, AUTH_REQUEST_LEN(req),
	    MSG_DONTWAIT);
	if (n == -1)
		return (-1);
	return (auth_wait(s, user));
}

/*
 * A login authd answered from its cache and would answer so again: the
 * same answer, delivered on the loop's next turn (the caller expects the
 * session to wait, as for authd). 0 when it is on its way.
 */
static int
auth_from_cache(struct session *s, const char *user, const char *pass)
{
	struct worker		*w = s->s_worker;
	struct auth_answer	 found;
	char			 client[ADDR_STRLEN];
	int			 r;

	if (w->w_conf->c_auth_cache_ttl == 0 || w->w_auth_hits == NULL)
		return (-1);
	addr_ip(&s->s_peer, client, sizeof(client));
	r = auth_cache_find(user, client, pass, s->s_auth_digest,
	    &s->s_auth_gen, &found);
	if (r != 1) {
		s->s_auth_digest_set = r == 0;	/* for authd's answer */
		return (-1);
	}
	explicit_bzero(s->s_auth_digest, sizeof(s->s_auth_digest));
	clock_gettime(CLOCK_MONOTONIC, &s->s_auth_sent);
	if ((s->s_auth_hit = malloc(sizeof(found))) == NULL)
		return (-1);
	*s->s_auth_hit = found;
	if (auth_wait(s, user) == -1) {
		free(s->s_auth_hit);
		s->s_auth_hit = NULL;
		return (-1);
	}
	TAILQ_INSERT_TAIL(&w->w_auth_hitq, s, s_hit_entry);
	event_active(w->w_auth_hits, 0, 0);
	STAT_ADD(GW_STAT_AUTH_CACHED, 1);
	return (0);
}

/* A user name and password (RFC 1929, HTTP Basic). */
int
auth_submit(struct session *s, const char *user, const char *pass)
{
	struct auth_request	 req;
	int			 r;

	if (s->s_worker->w_auth_fd == -1 || strlen(user) >=
	    sizeof(req.ar_user) || strlen(pass) >= sizeof(req.ar_pass))
		return (-1);
	/* authd's gone (above): never answered from the cache then. */
	if (auth_from_cache(s, user, pass) == 0)
		return (0);
	memset(&req, 0, offsetof(struct auth_request, ar_token));
	memcpy(req.ar_user, user, strlen(user) + 1);
	memcpy(req.ar_pass, pass, strlen(pass) + 1);
	r = auth_send(s, AUTH_MSG_PASSWORD, &req, user);
	explicit_bzero(&req, offsetof(struct auth_request, ar_token));
	return (r);
}

/*
 * A GSS-API token: HTTP Negotiate's (keep 0), or SOCKS5 GSSAPI's, whose
 * accepted context comes back for the session to keep (keep 1).
 */
int
auth_submit_token(struct session *s, const uint8_t *token, size_t len,
    int keep)
{
	struct auth_request	 req;
	int			 r;

	if (s->s_worker->w_auth_fd == -1 || len == 0 ||
	    len > sizeof(req.ar_token))
		return (-1);
	memset(&req, 0, offsetof(struct auth_request, ar_token));
	req.ar_toklen = (uint16_t)len;
	req.ar_keep = keep != 0;
	memcpy(req.ar_token, token, len);
	r = auth_send(s, AUTH_MSG_TOKEN, &req, "");
	explicit_bzero(&req, AUTH_REQUEST_LEN(&req));
	return (r);
}

void
auth_forget(struct session *s)
{
	if (s->s_auth_hit != NULL) {
		TAILQ_REMOVE(&s->s_worker->w_auth_hitq, s, s_hit_entry);
		free(s->s_auth_hit);
		s->s_auth_hit = NULL;
	}
	explicit_bzero(s->s_auth_digest, sizeof(s->s_auth_digest));
	s->s_auth_digest_set = 0;
	if (!s->s_authing)
		return;
	TAILQ_REMOVE(&s->s_worker->w_authing, s, s_auth_entry);
	s->s_authing = 0;
}

/* The answer to a waiting session's login, from authd or the cache. */
static void
auth_conclude(struct session *s, const struct auth_reply *rep)
{
	char	 client[ADDR_STRLEN];

	/* Before the name becomes PAM's: the cache knows the one sent. */
	if (s->s_auth_digest_set && rep->ap_status == AUTH_OK) {
		addr_ip(&s->s_peer, client, sizeof(client));
		auth_cache_answer(s->s_user, client, s->s_auth_digest,
		    s->s_auth_gen, rep);
	}
	auth_forget(s);
	s->s_front->fe_authenticated(s, rep);
}

static void
auth_deliver(struct worker *w, const struct auth_reply *rep)
{
	struct session	*s;

	/*
	 * Any refusal empties the proxy's copy of authd's cache, even when
	 * its session ended while authd thought (a handshake timeout).
	 */
	if (rep->ap_status != AUTH_OK && rep->ap_status != AUTH_BUSY)
		auth_cache_clear();
	TAILQ_FOREACH(s, &w->w_authing, s_auth_entry)
		if (s->s_id == rep->ap_sid)
			break;
	if (s == NULL)
		return;		/* closed while authd was busy */
	auth_conclude(s, rep);
}

/* The logins auth_cache.c answered on the loop's last turn. */
static void
auth_hits_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct auth_reply	 rep;	/* its head: no token, no context */
	struct auth_answer	*ans;
	struct session		*s;
	uint64_t		 gen = auth_cache_generation();

	(void)fd;
	(void)what;
	while ((s = TAILQ_FIRST(&w->w_auth_hitq)) != NULL) {
		ans = s->s_auth_hit;
		memset(&rep, 0, offsetof(struct auth_reply, ap_data));
		rep.ap_sid = s->s_id;
		if (s->s_auth_gen != gen) {
			/*
			 * A refusal emptied the copy since the lookup (a
			 * lock-out, perhaps): the client tries again.
			 */
			rep.ap_status = AUTH_BUSY;
			snprintf(rep.ap_msg, sizeof(rep.ap_msg),
			    "login cache emptied meanwhile; try again");
		} else {
			rep.ap_status = AUTH_OK;
			memcpy(rep.ap_user, ans->an_user, sizeof(rep.ap_user));
			rep.ap_ngroups = ans->an_ngroups;
			memcpy(rep.ap_groups, ans->an_groups,
			    sizeof(rep.ap_groups));
			snprintf(rep.ap_msg, sizeof(rep.ap_msg), "cached");
		}
		auth_conclude(s, &rep);	/* off the queue, ans freed */
	}
}

static void
auth_reply_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker		*w = arg;
	struct auth_reply	 rep;
	struct chan_hdr		 hdr;
	struct session		*s;
	ssize_t			 n;

	(void)what;
	for (;;) {
		n = chan_recv(fd, &hdr, &rep, sizeof(rep), MSG_DONTWAIT);
		if (n >= (ssize_t)offsetof(struct auth_reply, ap_data) &&
		    rep.ap_outlen + rep.ap_ctxlen <= AUTH_REPLY_DATA_MAX &&
		    n == (ssize_t)AUTH_REPLY_LEN(&rep) && hdr.ch_type ==
		    AUTH_MSG_RESULT && hdr.ch_sid == rep.ap_sid) {
			if (rep.ap_status > AUTH_BUSY)	/* not authd's to say */
				rep.ap_status = AUTH_ERROR;
			rep.ap_msg[sizeof(rep.ap_msg) - 1] = '\0';
			rep.ap_user[sizeof(rep.ap_user) - 1] = '\0';
			rep.ap_principal[sizeof(rep.ap_principal) - 1] = '\0';
			auth_deliver(w, &rep);
			/* A context's keys are the session's now, not ours. */
			explicit_bzero(rep.ap_data, rep.ap_outlen +
			    rep.ap_ctxlen);
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	/*
	 * authd is gone: every login is refused from now on (the method
	 * offered stays username/password, session.c). Said once for the
	 * process, as an error; each refusal is counted.
	 */
	if (atomic_exchange(&auth_gone_said, 1) == 0)
		log_errorx("authd is gone: every login is refused until it "
		    "is back");
	event_free(w->w_auth_ev);
	w->w_auth_ev = NULL;
	close(w->w_auth_fd);
	w->w_auth_fd = -1;
	memset(&rep, 0, sizeof(rep));
	rep.ap_status = AUTH_GONE;
	snprintf(rep.ap_msg, sizeof(rep.ap_msg), "authd is gone");
	while ((s = TAILQ_FIRST(&w->w_authing)) != NULL) {
		rep.ap_sid = s->s_id;
		auth_deliver(w, &rep);
	}
}
