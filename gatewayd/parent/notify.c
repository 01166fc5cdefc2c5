/*
 * notify.c: the service manager's view of the gateway, through
 * sd_notify(3): READY=1 once the proxy serves, RELOADING=1 from SIGHUP
 * until the proxy has read the configuration again, STOPPING=1, and a
 * STATUS line with the sessions open (at most once a second, not while
 * stopping).
 *
 * Only the parent speaks (the unit says NotifyAccess=main): its children
 * forget $NOTIFY_SOCKET as they start, so a proxy taken over by a client
 * could not tell systemd another MAINPID or a false READY. The proxy
 * reports to the parent over its channel, as numbers the parent checks.
 * Outside systemd, where $NOTIFY_SOCKET is unset, every call does
 * nothing.
 */
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "notify.h"

#define notify(...)	sd_notifyf(0, __VA_ARGS__)

static unsigned	 notify_sessions;

void
notify_ready(void)
{
	notify("READY=1\nSTATUS=serving, %u sessions open", notify_sessions);
}

void
notify_reload_refused(void)
{
	notify("READY=1\nSTATUS=reload refused, the running configuration "
	    "stays; %u sessions open", notify_sessions);
}

void
notify_reloading(void)
{
	notify("RELOADING=1\nSTATUS=reloading the configuration");
}

void
notify_stopping(void)
{
	notify("STOPPING=1\nSTATUS=stopping, %u sessions open",
	    notify_sessions);
}

void
notify_status(unsigned sessions)
{
	static struct timespec	 last;
	struct timespec		 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (sessions == notify_sessions || (now.tv_sec - last.tv_sec) * 1000 +
	    (now.tv_nsec - last.tv_nsec) / 1000000 < 1000)
		return;
	last = now;
	notify_sessions = sessions;
	notify("STATUS=serving, %u sessions open", sessions);
}

/* In each child: the channel to systemd is the parent's alone. */
void
notify_forget(void)
{
	unsetenv("NOTIFY_SOCKET");
}
