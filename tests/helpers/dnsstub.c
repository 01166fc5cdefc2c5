/*
 * dnsstub: a DNS server on 127.0.0.1 for the tests, built on libevent's
 * evdns server API, so that gatewayd never asks the machine's resolver.
 *
 *	dnsstub [-t SECONDS] [-l LOGFILE] [slow:]NAME=ADDR ... [drop=NAME ...]
 *
 * Prints the UDP port it listens on, then answers A and AAAA queries for
 * the names given (a name may be given several times), NXDOMAIN for any
 * other name, and nothing at all for names given as drop=NAME (a server
 * that never answers); a name given as slow:NAME=ADDR is answered after
 * a second (a lookup still in flight while the client goes on). Every
 * question asked is appended to LOGFILE, so a
 * test can tell which names were looked up. Exits after SECONDS (default 300) so that a test
 * that dies cannot leave it running.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>

struct entry {
	char		 name[256];
	int		 family;	/* 0: drop */
	int		 slow;
	unsigned char	 addr[16];
};

static struct event_base *base;

static void
answer_later(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evdns_server_request_respond(arg, 0);
}

static struct entry	*entries;
static size_t		 nentries;
static FILE		*querylog;

static void
answer(struct evdns_server_request *req, void *arg)
{
	struct evdns_server_question	*q;
	size_t				 i;
	int				 j, found = 0, drop = 0, slow = 0;

	(void)arg;
	for (j = 0; j < req->nquestions; j++) {
		q = req->questions[j];
		if (querylog != NULL) {
			fprintf(querylog, "%s %d\n", q->name, q->type);
			fflush(querylog);
		}
		for (i = 0; i < nentries; i++) {
			if (strcasecmp(entries[i].name, q->name) != 0)
				continue;
			found = 1;
			slow |= entries[i].slow;
			if (entries[i].family == 0)
				drop = 1;
			else if (entries[i].family == AF_INET &&
			    q->type == EVDNS_TYPE_A)
				evdns_server_request_add_a_reply(req, q->name,
				    1, entries[i].addr, 30);
			else if (entries[i].family == AF_INET6 &&
			    q->type == EVDNS_TYPE_AAAA)
				evdns_server_request_add_aaaa_reply(req,
				    q->name, 1, entries[i].addr, 30);
		}
	}
	if (drop) {
		evdns_server_request_drop(req);
		return;
	}
	if (slow) {
		struct timeval	 second = { 1, 0 };

		event_base_once(base, -1, EV_TIMEOUT, answer_later, req,
		    &second);
		return;
	}
	evdns_server_request_respond(req, found ? 0 : DNS_ERR_NOTEXIST);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin;
	struct timeval		 limit = { 300, 0 };
	socklen_t		 len = sizeof(sin);
	struct entry		*e;
	char			*eq;
	int			 fd, ch;

	while ((ch = getopt(argc, argv, "l:t:")) != -1) {
		if (ch == 't')
			limit.tv_sec = atoi(optarg);
		else if (ch == 'l' && (querylog = fopen(optarg, "a")) != NULL)
			continue;
		else {
			fprintf(stderr, "usage: dnsstub [-t SECONDS] [-l LOG] "
			    "NAME=ADDR ...\n");
			return (2);
		}
	}
	entries = calloc((size_t)argc, sizeof(*entries));
	for (; optind < argc; optind++) {
		e = &entries[nentries++];
		if ((eq = strchr(argv[optind], '=')) == NULL ||
		    (size_t)(eq - argv[optind]) >= sizeof(e->name)) {
			fprintf(stderr, "dnsstub: bad entry %s\n",
			    argv[optind]);
			return (2);
		}
		if (strncmp(argv[optind], "drop=", 5) == 0) {
			snprintf(e->name, sizeof(e->name), "%s", eq + 1);
			continue;
		}
		if (strncmp(argv[optind], "slow:", 5) == 0) {
			e->slow = 1;
			argv[optind] += 5;
		}
		snprintf(e->name, sizeof(e->name), "%.*s",
		    (int)(eq - argv[optind]), argv[optind]);
		if (inet_pton(AF_INET, eq + 1, e->addr) == 1)
			e->family = AF_INET;
		else if (inet_pton(AF_INET6, eq + 1, e->addr) == 1)
			e->family = AF_INET6;
		else {
			fprintf(stderr, "dnsstub: bad address %s\n", eq + 1);
			return (2);
		}
	}

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		perror("dnsstub: bind");
		return (1);
	}
	base = event_base_new();
	if (evdns_add_server_port_with_base(base, fd, 0, answer, NULL) ==
	    NULL) {
		fprintf(stderr, "dnsstub: evdns_add_server_port failed\n");
		return (1);
	}
	printf("%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	return (0);
}
