/*
 * pending.c: sockets that have not finished their request yet, counted per
 * client (an IPv4 address, an IPv6 /64). A host that opens connections and
 * says nothing holds at most handshake_per_client of them; beyond that its
 * new connections are closed at accept, so it cannot fill max_sessions for
 * everyone else. A session leaves the count when its request is parsed or
 * when it closes. Shared by all workers, under one mutex; exact, so no
 * client can be charged for another's sockets.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#include "base/clock.h"
#include "proxy/worker.h"

#include "phases.h"
#include "session.h"

#define PENDING_BUCKETS		4096

struct pending_client {
	LIST_ENTRY(pending_client) pc_entry;
	uint8_t			 pc_key[16];
	unsigned		 pc_count;
};
LIST_HEAD(pending_list, pending_client);

static pthread_mutex_t		 pending_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pending_list	 pending_clients[PENDING_BUCKETS];

/* IPv4 whole (in the first 4 bytes), IPv6 by its /64. */
static void
pending_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET)
		memcpy(key, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else {
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 8);
		key[15] = 6;	/* never equal to an IPv4 key */
	}
}

/* Under pending_lock: peer's entry, or NULL; *head its bucket. */
static struct pending_client *
pending_find(const struct sockaddr_storage *peer, uint8_t key[16],
    struct pending_list **head)
{
	struct pending_client	*pc;

	pending_key(peer, key);
	*head = &pending_clients[gw_hash(key, 16) % PENDING_BUCKETS];
	LIST_FOREACH(pc, *head, pc_entry)
		if (memcmp(pc->pc_key, key, 16) == 0)
			return (pc);
	return (NULL);
}

/* Counts one more for peer: 0, or -1 when it holds cap already. */
int
pending_enter(const struct sockaddr_storage *peer, unsigned cap)
{
	struct pending_client	*pc;
	struct pending_list	*head;
	uint8_t			 key[16];
	int			 r = 0;

	pthread_mutex_lock(&pending_lock);
	if ((pc = pending_find(peer, key, &head)) == NULL) {
		if ((pc = calloc(1, sizeof(*pc))) == NULL)
			r = -1;		/* fail closed */
		else {
			memcpy(pc->pc_key, key, 16);
			LIST_INSERT_HEAD(head, pc, pc_entry);
		}
	}
	if (r == 0 && pc->pc_count >= cap)
		r = -1;
	else if (r == 0)
		pc->pc_count++;
	pthread_mutex_unlock(&pending_lock);
	return (r);
}

void
pending_leave(const struct sockaddr_storage *peer)
{
	struct pending_client	*pc;
	struct pending_list	*head;
	uint8_t			 key[16];

	pthread_mutex_lock(&pending_lock);
	if ((pc = pending_find(peer, key, &head)) != NULL &&
	    --pc->pc_count == 0) {
		LIST_REMOVE(pc, pc_entry);
		free(pc);
	}
	pthread_mutex_unlock(&pending_lock);
}

/*
 * handshake_per_client, or by default an eighth of max_sessions, from 4
 * to 256: a school behind one NAT address has many clients in their
 * handshake at once; one silent host should not hold more than a share.
 */
unsigned
handshake_cap(const struct conf *c)
{
	int	 n;

	if (c->c_handshake_per_client > 0)
		return ((unsigned)c->c_handshake_per_client);
	n = c->c_max_sessions / 8;
	return ((unsigned)(n < 4 ? 4 : n > 256 ? 256 : n));
}

/*
 * The session's client is not its socket's peer: a load balancer's PROXY
 * header named it. The socket leaves the balancer's count and enters the
 * client's, under handshake_per_client, so every per-client cap from here
 * on is the client's. -1 (and counted nowhere) when that one is full.
 */
int
pending_rename(struct session *s, const struct sockaddr_storage *client)
{
	if (s->s_pending)
		pending_leave(&s->s_peer);
	s->s_pending = 0;
	memcpy(&s->s_peer, client, sizeof(s->s_peer));
	if (pending_enter(&s->s_peer, handshake_cap(s->s_worker->w_conf)) ==
	    -1)
		return (-1);
	s->s_pending = 1;
	return (0);
}
