/*
 * Unit test of the bandwidth thread's start and stop (gatewayd/relay/
 * bandwidth.c): stopped right after it started, before its loop has run,
 * it must still end. It did not: event_base_loopbreak() asked before the
 * loop began was forgotten, and the proxy waited for ever for a thread
 * asleep on a one-day timer (a gateway told to stop at its start hung).
 * Each round here stops the thread at once; an alarm fails a hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/thread.h>

#include "relay/relay.h"

_Atomic unsigned	 gw_nsessions;

static void
stop_right_after_start(void **state)
{
	char	*cause = NULL;
	int	 i;

	(void)state;
	alarm(30);		/* a hang is a failure, not a stuck run */
	for (i = 0; i < 3000; i++) {
		assert_int_equal(bandwidth_start(&cause), 0);
		bandwidth_stop();
	}
	alarm(0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stop_right_after_start),
	};

	evthread_use_pthreads();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
