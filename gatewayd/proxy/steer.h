/*
 * steer.h: connections to the worker on the CPU that received them
 * (cpu_affinity), and back to the kernel's hash when that is lopsided.
 */
#ifndef STEER_H
#define STEER_H

#include <stddef.h>

struct conf;
struct worker;

/* How often the main thread looks at where connections went. */
#define STEER_PERIOD_S	5

enum steer_state {
	STEER_OFF,	/* never steered (cpu_affinity no, one worker...) */
	STEER_CPU,	/* pinned workers, connections steered by CPU */
	STEER_HASH,	/* steering ended: lopsided */
};

void		 steer_start(const struct conf *, struct worker *, int,
		    const int *, size_t);
void		 steer_check(void);
void		 steer_json(char *, size_t);

#endif /* STEER_H */
