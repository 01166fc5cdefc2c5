/*
 * clock.h: the clocks in milliseconds (the coarse monotonic one of
 * deadlines and timeouts, and any other), and the hash of the small
 * per-user tables. Header-only: every layer uses them.
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds of clock id: CLOCK_MONOTONIC, CLOCK_REALTIME, ... */
static inline int64_t
gw_clock_of(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Milliseconds of the monotonic clock: intervals, deadlines. */
static inline int64_t
gw_mono_ms(void)
{
	return (gw_clock_of(CLOCK_MONOTONIC));
}

/* Milliseconds, coarse (a tick of the kernel): cheap enough per event. */
static inline int64_t
gw_clock_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * FNV-1a over len bytes: the hash of the per-user tables (limits, quotas,
 * bandwidth pools), which are small and keyed by short names.
 */
static inline uint32_t
gw_hash(const void *p, size_t len)
{
	const uint8_t	*b = p;
	uint32_t	 h = 2166136261u;

	while (len-- > 0)
		h = (h ^ *b++) * 16777619u;
	return (h);
}

#endif /* CLOCK_H */
