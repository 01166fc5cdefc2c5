/*
 * udp.c: UDP ASSOCIATE (RFC 1928, section 7).
 *
 * DESIGN. An association has a client-facing socket, bound to the address
 * the client reached the gateway on (that address and its port go in the
 * reply), and one unbound socket per destination family for talking to
 * destinations; so a datagram's direction is known from the socket it
 * arrives on. Datagrams to the relay are taken only from the client's
 * address (and port, if the client named one); FRAG != 0 is dropped and
 * counted. Each destination is judged on its own by the policy (command
 * udp) and the verdict cached for the association: a bare address with
 * no name, an address reached through a name with that name and nothing
 * else (the cache is keyed by both), so one allowed name never opens
 * other addresses. A name is judged by name first, resolved
 * asynchronously (datagrams waiting for it are held, a few per name),
 * and its address judged with it when the answer comes. Replies are
 * taken only from destinations the client sent to, and wrapped in a
 * header naming their source. The association ends with its TCP control
 * connection, or after idle_timeout without a datagram.
 *
 * Datagrams are taken only from the TCP client's own host: the host the
 * client names in its request must be a wildcard or that host (udp_begin),
 * and with port 0 the first datagram from that host claims the port.
 * Hosts behind one NAT share an address, so another of them can still
 * send into an association whose port is not yet claimed, or spoof the
 * claimed port; as with any SOCKS gateway, only the address is checked.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "addr.h"
#include "log.h"
#include "socks5.h"

#include "account/account.h"
#include "auditd/audit.h"
#include "base/guard.h"
#include "base/stats.h"
#include "proxy/worker.h"

#include "phases.h"

#define UDP_DESTS_MAX		256	/* verdicts cached per association */
#define UDP_NAMES_MAX		64
#define UDP_NAME_WAITING	8	/* datagrams held per name in lookup */
#define UDP_HEADER_MAX		(4 + 1 + 255 + 2)

struct udp_dest {
	struct sockaddr_storage	 ud_addr;	/* with port */
	uint32_t		 ud_name;	/* un_id, 0 for a bare address */
	uint8_t			 ud_allowed;
	uint8_t			 ud_used;	/* the client sent to it */
};

struct udp_held {
	uint8_t			*uh_data;
	size_t			 uh_len;
	uint16_t		 uh_port;
};

struct udp_name {
	char			 un_name[256];
	uint32_t		 un_id;		/* never reused in ua */
	struct dns_ticket	*un_dns;	/* while looking it up */
	struct udp_assoc	*un_assoc;
	struct sockaddr_storage	 un_addr;	/* first address */
	int			 un_state;	/* 0 pending, 1 ok, -1 failed */
	struct udp_held		 un_held[UDP_NAME_WAITING];
	int			 un_nheld;
};

struct udp_assoc {
	struct session		*ua_s;
	int			 ua_fd;		/* the client's side */
	struct event		*ua_ev;
	int			 ua_out[2];	/* to destinations: v4, v6 */
	struct event		*ua_out_ev[2];
	struct sockaddr_storage	 ua_client;	/* where datagrams come from */
	int			 ua_port_fixed;	/* the client named its port */
	int			 ua_port_known;
	struct udp_dest		 ua_dests[UDP_DESTS_MAX];
	int			 ua_ndests;
	struct udp_name		*ua_names[UDP_NAMES_MAX];
	int			 ua_nnames;
	uint32_t		 ua_next_name;
	uint64_t		 ua_packets[2];	/* relayed from side i */
	uint32_t		 ua_allowed;	/* destinations allowed */
	uint32_t		 ua_denied;	/* datagrams the policy refused */
	uint32_t		 ua_foreign;	/* from strangers: dropped */
	uint32_t		 ua_frag;	/* FRAG != 0: dropped */
};

static void	udp_start(struct session *, uint16_t);
static void	udp_from_client(evutil_socket_t, short, void *);
static void	udp_name_free(struct udp_name *);
static void	udp_from_remote(evutil_socket_t, short, void *);
static void	udp_send_out(struct udp_assoc *, const struct udp_name *,
		    const struct sockaddr *, const uint8_t *, size_t);

static int
udp_socket(int family, const struct sockaddr *bindto)
{
	int	 fd;

	if ((fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return (-1);
	if (bindto != NULL && bind(fd, bindto, addr_len(bindto)) == -1) {
		close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * UDP ASSOCIATE: DST is where the client will send from, not where to.
 * Only the TCP client's own host may send into the association, so DST
 * must be a wildcard (a client behind a NAT may not know its address) or
 * that host; anything else would let a third host use the relay.
 */
enum step
udp_begin(struct session *s, const char *name,
    const struct sockaddr_storage *addr)
{
	struct sockaddr_storage	 from;

	if (s->s_over_limit) {
		session_refuse(s, S5_REP_GENERAL_FAILURE,
		    "max_sessions reached");
		return (STEP_STOP);
	}
	memcpy(&from, addr, sizeof(from));
	if (name != NULL) {
		/*
		 * Some clients (python3-socks) send the wildcard as the
		 * name "0": a name counts only when it is a numeric
		 * address. Nothing is looked up.
		 */
		struct sockaddr_in	*sin = (struct sockaddr_in *)&from;
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&from;

		memset(&from, 0, sizeof(from));
		if (inet_aton(name, &sin->sin_addr) == 1)
			sin->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, name, &sin6->sin6_addr) == 1)
			sin6->sin6_family = AF_INET6;
		else {
			if ((s->s_dst_name = strdup(name)) == NULL) {
				session_refuse(s, S5_REP_GENERAL_FAILURE,
				    "out of memory");
				return (STEP_STOP);
			}
			session_refuse(s, S5_REP_NOT_ALLOWED, "udp: the "
			    "client address must be a wildcard or the "
			    "client's own");
			return (STEP_STOP);
		}
	}
	addr_set_port(&from, s->s_dst_port);
	addr_unmap(&from);
	if (!addr_is_wildcard((struct sockaddr *)&from) &&
	    !addr_same_ip((struct sockaddr *)&from,
	    (struct sockaddr *)&s->s_peer)) {
		memcpy(&s->s_dst, &from, sizeof(s->s_dst));
		session_refuse(s, S5_REP_NOT_ALLOWED, "udp: the client "
		    "address must be a wildcard or the client's own");
		return (STEP_STOP);
	}
	/*
	 * Granted when some rule could let the datagrams through; each
	 * destination is then judged on its own (udp.c).
	 */
	if (verdict_udp_association(s, verdict_snapshot(s)) == -1) {
		session_refuse(s, S5_REP_NOT_ALLOWED, s->s_refusal);
		return (STEP_STOP);
	}
	udp_start(s, addr_port((struct sockaddr *)&from));
	return (STEP_STOP);
}

/* Starts the association for s; replies with the relay's address. */
static void
udp_start(struct session *s, uint16_t client_port)
{
	struct worker		*w = s->s_worker;
	struct udp_assoc	*ua;
	struct sockaddr_storage	 local;
	socklen_t		 len = sizeof(local);
	uint8_t			 reply[FRONT_REPLY_MAX];

	if ((ua = calloc(1, sizeof(*ua))) == NULL)
		goto fail;
	s->s_udp = ua;
	ua->ua_s = s;
	ua->ua_fd = ua->ua_out[0] = ua->ua_out[1] = -1;
	/* The relay listens where the client reached the gateway. */
	if (bind_local(s, NULL, &local) == -1)
		goto fail;
	if ((ua->ua_fd = udp_socket(local.ss_family,
	    (struct sockaddr *)&local)) == -1 ||
	    getsockname(ua->ua_fd, (struct sockaddr *)&local, &len) == -1)
		goto fail;
	if ((ua->ua_ev = event_new(w->w_base, ua->ua_fd, EV_READ | EV_PERSIST,
	    udp_from_client, ua)) == NULL || event_add(ua->ua_ev, NULL) == -1)
		goto fail;
	/*
	 * Datagrams come from the TCP peer's host (udp_begin allowed only a
	 * wildcard or that host), from the port the client named, or with
	 * port 0 from the port of its first datagram.
	 */
	memcpy(&ua->ua_client, &s->s_peer, sizeof(ua->ua_client));
	addr_set_port(&ua->ua_client, client_port);
	ua->ua_port_fixed = ua->ua_port_known = client_port != 0;
	addr_unmap(&local);
	bind_advertise(w->w_conf, &local);
	if (session_reply(s, reply, s->s_front->fe_reply(s, S5_REP_SUCCEEDED,
	    (struct sockaddr *)&local, reply, sizeof(reply))) == -1)
		goto fail;
	session_set_state(s, S_UDP);
	s->s_active = w->w_now;
	s->s_audit_open = 0;
	session_audit(s, AR_START, NULL);
	return;
fail:
	s->s_errno = errno;
	s->s_allowed = 0;
	free(s->s_reason);
	s->s_reason = NULL;
	udp_free(s);
	session_refuse(s, S5_REP_GENERAL_FAILURE, "udp associate");
}

static void
udp_name_free(struct udp_name *un)
{
	int	 i;

	if (un->un_dns != NULL)
		resolve_abandon(un->un_dns);
	for (i = 0; i < un->un_nheld; i++)
		free(un->un_held[i].uh_data);
	free(un);
}

void
udp_free(struct session *s)
{
	struct udp_assoc	*ua = s->s_udp;
	int			 i;

	if (ua == NULL)
		return;
	STAT_ADD(GW_STAT_UDP_UP, ua->ua_packets[SIDE_CLIENT]);
	STAT_ADD(GW_STAT_UDP_DOWN, ua->ua_packets[SIDE_REMOTE]);
	if (ua->ua_foreign > 0 || ua->ua_frag > 0)
		log_debug("session %llu: udp: dropped %u datagrams from "
		    "strangers, %u fragments", (unsigned long long)s->s_id,
		    ua->ua_foreign, ua->ua_frag);
	if (ua->ua_ev != NULL)
		event_free(ua->ua_ev);
	if (ua->ua_fd != -1)
		close(ua->ua_fd);
	for (i = 0; i < 2; i++) {
		if (ua->ua_out_ev[i] != NULL)
			event_free(ua->ua_out_ev[i]);
		if (ua->ua_out[i] != -1)
			close(ua->ua_out[i]);
	}
	for (i = 0; i < ua->ua_nnames; i++)
		udp_name_free(ua->ua_names[i]);
	free(ua);
	s->s_udp = NULL;
}

/* What the association did, for its session's audit record. */
void
udp_record(const struct session *s, struct audit_rec *r)
{
	if (s->s_udp == NULL)
		return;
	_Static_assert(SIDE_CLIENT == 0 && SIDE_REMOTE == 1, "up, down");
	memcpy(r->ar_packets, s->s_udp->ua_packets, sizeof(r->ar_packets));
	r->ar_udp_dests = s->s_udp->ua_allowed;
	r->ar_udp_denied = s->s_udp->ua_denied;
}

/* A new policy: every destination is judged again when next used. */
void
udp_policy_changed(struct session *s)
{
	struct udp_assoc	*ua = s->s_udp;
	int			 i;

	if (ua == NULL)
		return;
	ua->ua_ndests = 0;
	for (i = 0; i < ua->ua_nnames; i++)
		udp_name_free(ua->ua_names[i]);
	ua->ua_nnames = 0;
}

/*
 * The cached verdict for sa (with port) reached through un (NULL: a bare
 * address), judged now if need be, with un's name and no other.
 */
static struct udp_dest *
udp_dest(struct udp_assoc *ua, const struct udp_name *un,
    const struct sockaddr *sa)
{
	struct session	*s = ua->ua_s;
	struct udp_dest	*d;
	uint32_t	 id = un != NULL ? un->un_id : 0;
	int		 i, seen = 0;

	for (i = 0; i < ua->ua_ndests; i++) {
		d = &ua->ua_dests[i];
		if (d->ud_name == id &&
		    addr_same_ip((struct sockaddr *)&d->ud_addr, sa) &&
		    addr_port((struct sockaddr *)&d->ud_addr) == addr_port(sa))
			return (d);
	}
	/* Full: the oldest verdict makes room (judged again if it comes). */
	if (ua->ua_ndests == UDP_DESTS_MAX) {
		memmove(&ua->ua_dests[0], &ua->ua_dests[1],
		    sizeof(ua->ua_dests[0]) * (UDP_DESTS_MAX - 1));
		ua->ua_ndests--;
	}
	for (i = 0; i < ua->ua_ndests; i++)
		seen |= ua->ua_dests[i].ud_allowed &&
		    addr_same_ip((struct sockaddr *)&ua->ua_dests[i].ud_addr,
		    sa) && addr_port((struct sockaddr *)&ua->ua_dests[i].ud_addr)
		    == addr_port(sa);
	d = &ua->ua_dests[ua->ua_ndests++];
	memset(d, 0, sizeof(*d));
	memcpy(&d->ud_addr, sa, addr_len(sa));
	d->ud_name = id;
	d->ud_allowed = !guard_is_listener(sa) && verdict_udp(s,
	    un != NULL ? un->un_name : NULL, sa, addr_port(sa)) == 0;
	/* Distinct destinations: one address reached by two names is one. */
	if (d->ud_allowed && !seen)
		ua->ua_allowed++;
	return (d);
}

static void
udp_send_out(struct udp_assoc *ua, const struct udp_name *un,
    const struct sockaddr *sa, const uint8_t *data, size_t len)
{
	struct session	*s = ua->ua_s;
	struct worker	*w = s->s_worker;
	struct udp_dest	*d;
	size_t		 fits;
	int		 k = sa->sa_family == AF_INET6;

	d = udp_dest(ua, un, sa);
	if (!d->ud_allowed) {
		ua->ua_denied++;
		return;
	}
	if (ua->ua_out[k] == -1) {
		if ((ua->ua_out[k] = udp_socket(sa->sa_family, NULL)) == -1)
			return;
		ua->ua_out_ev[k] = event_new(w->w_base, ua->ua_out[k],
		    EV_READ | EV_PERSIST, udp_from_remote, ua);
		if (ua->ua_out_ev[k] == NULL ||
		    event_add(ua->ua_out_ev[k], NULL) == -1)
			return;
	}
	/* Beyond the quota: dropped; the sweep closes the association. */
	if ((fits = quota_take(s, len)) < len) {
		quota_unspend(s, fits);
		return;
	}
	if (sendto(ua->ua_out[k], data, len, 0, sa, addr_len(sa)) == -1) {
		quota_unspend(s, len);	/* not relayed: not counted */
		return;		/* UDP: a lost datagram is the contract */
	}
	d->ud_used = 1;
	s->s_bytes[SIDE_CLIENT] += len;
	ua->ua_packets[SIDE_CLIENT]++;
	/* The record names the latest destination, by its own name. */
	memcpy(&s->s_dst, sa, addr_len(sa));
	s->s_dst_port = addr_port(sa);
	if (un == NULL || s->s_dst_name == NULL ||
	    strcmp(s->s_dst_name, un->un_name) != 0) {
		free(s->s_dst_name);
		s->s_dst_name = un != NULL ? strdup(un->un_name) : NULL;
	}
}

static void
udp_name_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct udp_name		*un = arg;
	struct evutil_addrinfo	*ai;
	struct sockaddr_storage	 sa;
	int			 i;

	un->un_dns = NULL;
	un->un_state = -1;
	for (ai = res; result == 0 && ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		memcpy(&un->un_addr, ai->ai_addr, ai->ai_addrlen);
		addr_unmap(&un->un_addr);
		un->un_state = 1;
		break;
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	for (i = 0; i < un->un_nheld; i++) {
		if (un->un_state == 1) {
			memcpy(&sa, &un->un_addr, sizeof(sa));
			addr_set_port(&sa, un->un_held[i].uh_port);
			udp_send_out(un->un_assoc, un, (struct sockaddr *)&sa,
			    un->un_held[i].uh_data, un->un_held[i].uh_len);
		} else
			un->un_assoc->ua_denied++;
		free(un->un_held[i].uh_data);
	}
	un->un_nheld = 0;
}

/* A datagram to a name: judged by name, resolved once, then sent. */
static void
udp_send_name(struct udp_assoc *ua, const char *name, uint16_t port,
    const uint8_t *data, size_t len)
{
	struct session		*s = ua->ua_s;
	struct udp_name		*un = NULL;
	struct sockaddr_storage	 sa;
	struct udp_held		*h;
	int			 i;

	for (i = 0; i < ua->ua_nnames; i++)
		if (strcmp(ua->ua_names[i]->un_name, name) == 0)
			un = ua->ua_names[i];
	if (un == NULL) {
		if (ua->ua_nnames == UDP_NAMES_MAX) {
			udp_name_free(ua->ua_names[0]);
			memmove(&ua->ua_names[0], &ua->ua_names[1],
			    sizeof(ua->ua_names[0]) * (UDP_NAMES_MAX - 1));
			ua->ua_nnames--;
		}
		if ((un = calloc(1, sizeof(*un))) == NULL)
			return;
		snprintf(un->un_name, sizeof(un->un_name), "%s", name);
		un->un_assoc = ua;
		un->un_id = ++ua->ua_next_name;
		ua->ua_names[ua->ua_nnames++] = un;
		/* Denied by name: never looked up. */
		if (verdict_udp(s, name, NULL, port) == -1) {
			un->un_state = -1;
			ua->ua_denied++;
			return;
		}
		un->un_dns = resolve_lookup(s->s_worker, name, SOCK_DGRAM,
		    udp_name_resolved, un);
	}
	if (un->un_state == -1) {
		ua->ua_denied++;
		return;
	}
	if (un->un_state == 0) {
		if (un->un_nheld == UDP_NAME_WAITING)
			return;
		h = &un->un_held[un->un_nheld];
		if ((h->uh_data = malloc(len)) == NULL)
			return;
		memcpy(h->uh_data, data, len);
		h->uh_len = len;
		h->uh_port = port;
		un->un_nheld++;
		return;
	}
	memcpy(&sa, &un->un_addr, sizeof(sa));
	addr_set_port(&sa, port);
	udp_send_out(ua, un, (struct sockaddr *)&sa, data, len);
}

static void
udp_from_client(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc	*ua = arg;
	struct session		*s = ua->ua_s;
	struct worker		*w = s->s_worker;
	struct sockaddr_storage	 from, dst;
	struct s5_udp_header	 h;
	socklen_t		 flen;
	ssize_t			 n;
	int			 hl, budget;

	(void)what;
	for (budget = 64; budget > 0; budget--) {
		flen = sizeof(from);
		n = recvfrom(fd, w->w_scratch, w->w_scratch_len, 0,
		    (struct sockaddr *)&from, &flen);
		if (n == -1)
			return;
		addr_unmap(&from);
		/* Only from the client (and its port, once known). */
		if (!addr_same_ip((struct sockaddr *)&from,
		    (struct sockaddr *)&ua->ua_client) ||
		    (ua->ua_port_known && addr_port((struct sockaddr *)&from) !=
		    addr_port((struct sockaddr *)&ua->ua_client))) {
			ua->ua_foreign++;
			continue;
		}
		if (!ua->ua_port_known) {
			memcpy(&ua->ua_client, &from, sizeof(from));
			ua->ua_port_known = 1;
		}
		s->s_active = w->w_now;
		session_active(s);
		hl = s5_parse_udp_header(w->w_scratch, (size_t)n, &h);
		if (hl <= 0) {
			ua->ua_denied++;
			continue;
		}
		if (h.frag != 0) {
			ua->ua_frag++;
			continue;
		}
		if (h.atyp == S5_ATYP_DOMAIN) {
			udp_send_name(ua, h.name, h.port, w->w_scratch + hl,
			    (size_t)n - (size_t)hl);
			continue;
		}
		memcpy(&dst, &h.addr, sizeof(dst));
		addr_unmap(&dst);
		udp_send_out(ua, NULL, (struct sockaddr *)&dst,
		    w->w_scratch + hl, (size_t)n - (size_t)hl);
	}
}

static void
udp_from_remote(evutil_socket_t fd, short what, void *arg)
{
	struct udp_assoc	*ua = arg;
	struct session		*s = ua->ua_s;
	struct worker		*w = s->s_worker;
	struct sockaddr_storage	 from;
	socklen_t		 flen;
	uint8_t			*buf = w->w_scratch;
	size_t			 room = w->w_scratch_len - UDP_HEADER_MAX;
	ssize_t			 n;
	size_t			 hl, fits;
	int			 i, budget, known;

	(void)what;
	for (budget = 64; budget > 0; budget--) {
		flen = sizeof(from);
		/* Room before the payload for the header that names it. */
		n = recvfrom(fd, buf + UDP_HEADER_MAX, room, 0,
		    (struct sockaddr *)&from, &flen);
		if (n == -1)
			return;
		addr_unmap(&from);
		for (i = 0, known = 0; i < ua->ua_ndests && !known; i++)
			known = ua->ua_dests[i].ud_used &&
			    ua->ua_dests[i].ud_allowed &&
			    addr_same_ip((struct sockaddr *)&from,
			    (struct sockaddr *)&ua->ua_dests[i].ud_addr) &&
			    addr_port((struct sockaddr *)&from) ==
			    addr_port((struct sockaddr *)&ua->ua_dests[i].ud_addr);
		if (!known || !ua->ua_port_known) {
			ua->ua_foreign++;
			continue;
		}
		if ((fits = quota_take(s, (size_t)n)) < (size_t)n) {
			quota_unspend(s, fits);
			continue;
		}
		hl = s5_build_udp_header(buf, (struct sockaddr *)&from);
		/* The header goes right before the payload. */
		memmove(buf + UDP_HEADER_MAX - hl, buf, hl);
		if (sendto(ua->ua_fd, buf + UDP_HEADER_MAX - hl,
		    hl + (size_t)n, 0, (struct sockaddr *)&ua->ua_client,
		    addr_len((struct sockaddr *)&ua->ua_client)) == -1) {
			quota_unspend(s, (size_t)n);
			continue;
		}
		s->s_active = w->w_now;
		s->s_bytes[SIDE_REMOTE] += (uint64_t)n;
		ua->ua_packets[SIDE_REMOTE]++;
	}
}
