/*
 * central_wait.c: talking to the fleet's PostgreSQL from a thread that
 * must stay able to stop at once and must never hang on a server that
 * stopped answering (gatewayd's policy follower and quota leaser): every
 * wait is a poll() on the connection and on a stop descriptor, on the
 * boot clock, bounded by the server's silence.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "central.h"

int64_t
central_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ((int64_t)ts.tv_sec);
}

/*
 * Waits for fd (-1: none) or stop until deadline (central_now()): 1
 * ready, 0 the deadline, -1 stop readable.
 */
int
central_wait(int stop, int fd, short events, int64_t deadline)
{
	struct pollfd	 p[2] = { { .fd = stop, .events = POLLIN },
			    { .fd = fd, .events = events } };
	int64_t		 now;
	int		 n;

	for (;;) {
		if ((now = central_now()) >= deadline)
			return (0);
		n = poll(p, fd >= 0 ? 2 : 1, (int)(deadline - now > 60 ? 60 :
		    deadline - now) * 1000);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || (p[0].revents & POLLIN))
			return (-1);
		if (n > 0)
			return (1);
	}
}

static void
central_why(PGconn *pg, char *why, size_t len)
{
	snprintf(why, len, "%s", PQerrorMessage(pg));
	why[strcspn(why, "\n")] = '\0';
}

/* Connects within silence seconds; NULL with why ("" for a stop). */
PGconn *
central_connect_wait(const char *url, const char *app, int stop,
    int silence, char *why, size_t len)
{
	PostgresPollingStatusType s = PGRES_POLLING_WRITING;
	PGconn		*pg;
	int64_t		 deadline = central_now() + silence;
	int		 r;

	if ((pg = central_connect_start(url, app, why, len)) == NULL)
		return (NULL);
	while (s != PGRES_POLLING_OK && s != PGRES_POLLING_FAILED) {
		r = central_wait(stop, PQsocket(pg), s ==
		    PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
		if (r <= 0) {
			snprintf(why, len, "%s", r == 0 ? "connecting: no "
			    "answer" : "");
			PQfinish(pg);
			return (NULL);
		}
		s = PQconnectPoll(pg);
	}
	if (s == PGRES_POLLING_FAILED) {
		central_why(pg, why, len);
		PQfinish(pg);
		return (NULL);
	}
	return (pg);
}

/*
 * One statement, waited for for as long as the server sends something at
 * least every silence seconds (a large answer over a slow link arrives);
 * its last result (to PQclear), or NULL with why ("" for a stop): failed,
 * silent or stopped. After NULL the connection is not to be used again (a
 * statement may still be running on it).
 */
PGresult *
central_query_wait(PGconn *pg, const char *sql, int n,
    const char *const *vals, const int *lens, const int *fmts, int binary,
    int stop, int silence, char *why, size_t len)
{
	PGresult	*r, *last = NULL;
	int64_t		 deadline = central_now() + silence;
	int		 w;

	if (!PQsendQueryParams(pg, sql, n, NULL, vals, lens, fmts, binary))
		goto fail;
	for (;;) {
		if (!PQconsumeInput(pg))
			goto fail;
		while (!PQisBusy(pg)) {
			if ((r = PQgetResult(pg)) == NULL) {
				if (last != NULL && !central_ok(last, why,
				    len)) {
					PQclear(last);
					return (NULL);
				}
				return (last);
			}
			PQclear(last);
			last = r;
		}
		if ((w = central_wait(stop, PQsocket(pg), POLLIN,
		    deadline)) <= 0) {
			snprintf(why, len, "%s", w == 0 ? "no answer" : "");
			PQclear(last);
			return (NULL);
		}
		deadline = central_now() + silence;	/* it spoke */
	}
fail:
	central_why(pg, why, len);
	PQclear(last);
	return (NULL);
}
