/*
 * fixed_clock.h: times for tests that run on a fixed clock, written as the
 * UTC date and time they are, whatever TZ says.
 */
#ifndef FIXED_CLOCK_H
#define FIXED_CLOCK_H

#include <string.h>
#include <time.h>

static inline time_t
utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (timegm(&tm));
}

#endif /* FIXED_CLOCK_H */
