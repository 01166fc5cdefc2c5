/*
 * audit_ship_ctl.c: auditd's side of its shipper (audit_ship.c): what it
 * says, a watchdog for one that says nothing, and its end.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "log.h"

#include "base/clock.h"

#include "audit_proto.h"
#include "auditd.h"

/* Rounds report at least every 10 s (retries) + 5 s (a connection); a
 * statement may take 30 s (statement_timeout): beyond, it is stuck. */
#define SHIP_SILENT_MS	45000

/*
 * auditd's side: the shipper's newest status into st. 1 when there was
 * one, 0 when none came, -1 when the shipper is gone.
 */
int
ship_status_read(int fd, struct ship_status *st)
{
	struct ship_status	 m;
	ssize_t			 n;
	int			 got = 0;

	while ((n = recv(fd, &m, sizeof(m), MSG_DONTWAIT)) ==
	    (ssize_t)sizeof(m))
		if (m.ss_state <= SHIP_CONFLICT) {
			*st = m;
			got = 1;
		}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		return (-1);
	return (got);
}

/*
 * auditd's watchdog: a shipper that has said nothing for SHIP_SILENT_MS
 * is stuck (a store that stopped answering mid-statement: its statement
 * timeout is the server's own, and the kernel answers keepalives for a
 * stopped server), so the state would stay "up" and pruning held while
 * nothing ships. It is killed, and then handled as any shipper that died.
 * 1 when it was.
 */
int
ship_watch(pid_t pid, int64_t heard)
{
	if (pid <= 0 || gw_mono_ms() - heard < SHIP_SILENT_MS)
		return (0);
	log_warnx("audit_central: the shipper has said nothing for %d s (a "
	    "central store that stopped answering?): stopping it",
	    SHIP_SILENT_MS / 1000);
	kill(pid, SIGKILL);
	return (1);
}

/*
 * At auditd's end: a second for the shipper's last round (what it does not
 * ship, the next one does: the cursor is the store's), then it goes too.
 * Never longer: the parent waits for auditd before it starts a new proxy.
 */
void
ship_stop(pid_t pid, int fd)
{
	int64_t	 until = gw_mono_ms() + 1500;
	int	 status;

	if (fd != -1)
		close(fd);
	if (pid <= 0)
		return;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (gw_mono_ms() >= until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(20000);
	}
}
