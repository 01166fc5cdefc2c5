/*
 * notify.c: the service manager's view of the gateway, through
 * sd_notify(3): READY=1 once the proxy serves, RELOADING=1 from SIGHUP
 * until the proxy has read the configuration again, STOPPING=1, and a
 * STATUS line with the sessions open.
 *
 * Only the parent speaks (the unit says NotifyAccess=main): its children
 * forget $NOTIFY_SOCKET as they start, so a proxy taken over by a client
 * could not tell systemd another MAINPID or a false READY. The proxy
 * reports to the parent over its channel, as numbers the parent checks.
 * Without libsystemd (or outside systemd, where $NOTIFY_SOCKET is unset)
 * every call does nothing.
 */
#include <stdlib.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "notify.h"

#ifdef HAVE_LIBSYSTEMD
#define notify(...)	sd_notifyf(0, __VA_ARGS__)
#else
#define notify(...)	((void)0)
#endif

static unsigned	 notify_sessions;

void
notify_ready(void)
{
	notify("READY=1\nSTATUS=serving, %u sessions open", notify_sessions);
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
	if (sessions == notify_sessions)
		return;
	notify_sessions = sessions;
	notify("STATUS=serving, %u sessions open", sessions);
}

/* In each child: the channel to systemd is the parent's alone. */
void
notify_forget(void)
{
	unsetenv("NOTIFY_SOCKET");
}
