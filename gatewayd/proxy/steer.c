/*
 * steer.c: a connection to the worker that runs where the kernel received
 * it (cpu_affinity).
 *
 * Each worker is pinned to CPUs of its own (worker w: the CPUs c of the
 * proxy's set with c mod workers = w), and a classic BPF program on each
 * SO_REUSEPORT group chooses the listener of worker "CPU mod workers" for
 * every new connection, the CPU being the one whose network stack took the
 * SYN. A session's packets, its wake-ups and its worker then stay on one
 * CPU: no cross-CPU wake-up (an interrupt between processors) and warm
 * caches at every step of the handshake. The kernel's hash, which it
 * replaces, sends half the connections to a worker on the other CPU.
 *
 * Where the kernel receives connections on fewer CPUs than there are
 * workers (a network card with one queue and no RPS; four queues for
 * sixteen workers), steering gives a few workers everything while the
 * other CPUs idle. The main thread looks every STEER_PERIOD_S: when at
 * least STEER_MIN_ACCEPTS connections came in a period, the busiest
 * worker was busy more than STEER_BUSY of it, and some worker took less
 * than a quarter of its fair share of them, steering ends for good (until
 * a restart), the kernel's hash spreads connections again, the workers
 * may run on any CPU, and the log says why. Lopsided alone is no reason:
 * one busy client on one CPU is served best by the worker beside it (57%
 * of a CPU at its fastest here), and its connections are what a period
 * sees.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <linux/filter.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "log.h"

#include "steer.h"
#include "worker.h"

#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF	68
#endif

#define STEER_MIN_ACCEPTS	100
#define STEER_BUSY		0.75

static void	steer_end(const char *);

static struct {
	enum steer_state	 st_state;
	const char		*st_why;	/* why not steering */
	struct worker		*st_workers;
	int			 st_nworkers;
	const int		*st_fds;	/* [worker][listen] */
	size_t			 st_nlisten;
	cpu_set_t		 st_all;	/* the proxy's CPUs at start */
	uint64_t		 st_seen[GW_MAX_WORKERS];
	int64_t			 st_cpu_ns[GW_MAX_WORKERS];	/* on a CPU */
	int64_t			 st_when_ns;	/* of the last look */
} steer;

static int64_t
steer_ns(clockid_t id)
{
	struct timespec	 ts;

	if (clock_gettime(id, &ts) == -1)
		return (0);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

/* Worker w's time on a CPU so far, in ns (0 if unknown). */
static int64_t
steer_worker_ns(int w)
{
	clockid_t	 id;

	if (pthread_getcpuclockid(steer.st_workers[w].w_thread, &id) != 0)
		return (0);
	return (steer_ns(id));
}

/* Worker w's CPUs: those of the proxy's set that map to it. */
static int
steer_cpus(int w, cpu_set_t *set)
{
	int	 c;

	CPU_ZERO(set);
	for (c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &steer.st_all) && c % steer.st_nworkers == w)
			CPU_SET(c, set);
	return (CPU_COUNT(set));
}

/* Detaching takes an int, like every SOL_SOCKET option, though unused. */
static int
steer_detach(int fd)
{
	int	 unused = 0;

	return (setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused,
	    sizeof(unused)));
}

/* The group's program: the listener of worker (CPU mod workers). */
static int
steer_attach(int fd, int nworkers)
{
	struct sock_filter	 code[] = {
		{ BPF_LD | BPF_W | BPF_ABS, 0, 0,
		    (uint32_t)(SKF_AD_OFF + SKF_AD_CPU) },
		{ BPF_ALU | BPF_MOD | BPF_K, 0, 0, (uint32_t)nworkers },
		{ BPF_RET | BPF_A, 0, 0, 0 },
	};
	struct sock_fprog	 prog = { sizeof(code) / sizeof(code[0]), code };

	return (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	    sizeof(prog)));
}

/*
 * After the workers have started: pins them and steers connections, when
 * cpu_affinity is on and every worker has a CPU of its own. The listeners
 * of a group are in worker order (listeners_open), which is the index the
 * program returns.
 */
void
steer_start(const struct conf *c, struct worker *workers, int nworkers,
    const int *fds, size_t nlisten)
{
	cpu_set_t	 set;
	size_t		 l;
	int		 w;

	steer.st_workers = workers;
	steer.st_nworkers = nworkers;
	steer.st_fds = fds;
	steer.st_nlisten = nlisten;
	steer.st_state = STEER_OFF;
	/*
	 * The listeners outlive a proxy (the parent keeps them): a program a
	 * proxy before this one attached goes, whatever this one decides.
	 */
	for (l = 0; l < nlisten; l++)
		steer_detach(fds[l]);
	if (!c->c_cpu_affinity) {
		steer.st_why = "cpu_affinity no";
		return;
	}
	if (nworkers < 2) {
		steer.st_why = "one worker";
		return;
	}
	if (sched_getaffinity(0, sizeof(steer.st_all), &steer.st_all) == -1) {
		steer.st_why = "the proxy's CPUs are unknown";
		return;
	}
	for (w = 0; w < nworkers; w++)
		if (steer_cpus(w, &set) == 0) {
			/* CPUs 0 and 2 of 4, say: worker 1 would get nothing. */
			steer.st_why = "a worker would have no CPU of its own";
			log_info("cpu_affinity: %s (%d CPUs for %d workers)",
			    steer.st_why, CPU_COUNT(&steer.st_all), nworkers);
			return;
		}
	for (l = 0; l < nlisten; l++)
		if (steer_attach(fds[l], nworkers) == -1) {
			log_warn("cpu_affinity: SO_ATTACH_REUSEPORT_CBPF");
			steer.st_why = "the kernel refused the program";
			while (l-- > 0)
				steer_detach(fds[l]);
			return;
		}
	for (w = 0; w < nworkers; w++) {
		steer_cpus(w, &set);
		if ((errno = pthread_setaffinity_np(workers[w].w_thread,
		    sizeof(set), &set)) != 0) {
			/* A seccomp filter without sched_setaffinity, say. */
			log_warn("cpu_affinity: worker %d cannot be pinned", w);
			steer_end("the workers cannot be pinned");
			steer.st_state = STEER_OFF;
			return;
		}
	}
	for (w = 0; w < nworkers; w++)
		steer.st_cpu_ns[w] = steer_worker_ns(w);
	steer.st_when_ns = steer_ns(CLOCK_MONOTONIC);
	steer.st_state = STEER_CPU;
	steer.st_why = NULL;
	log_info("cpu_affinity: each worker on CPUs of its own, connections "
	    "steered to the worker of the CPU that received them");
}

/* Back to the kernel's hash and to any CPU, for good. */
static void
steer_end(const char *why)
{
	size_t	 l;
	int	 w;

	for (l = 0; l < steer.st_nlisten; l++)
		if (steer_detach(steer.st_fds[l]) == -1)
			log_warn("cpu_affinity: SO_DETACH_REUSEPORT_BPF");
	for (w = 0; w < steer.st_nworkers; w++)
		if ((errno = pthread_setaffinity_np(steer.st_workers[w].w_thread,
		    sizeof(steer.st_all), &steer.st_all)) != 0)
			log_warn("cpu_affinity: worker %d", w);
	steer.st_state = STEER_HASH;
	steer.st_why = why;
}

/* Every STEER_PERIOD_S, on the main thread. */
void
steer_check(void)
{
	uint64_t	 n[GW_MAX_WORKERS], total = 0, least = UINT64_MAX;
	int64_t		 busy[GW_MAX_WORKERS], period;
	int64_t		 now_ns = steer_ns(CLOCK_MONOTONIC);
	int		 w, top = 0, idle = 0;

	for (w = 0; w < steer.st_nworkers; w++) {
		uint64_t now = atomic_load_explicit(
		    &steer.st_workers[w].w_accepted, memory_order_relaxed);
		int64_t cpu = steer_worker_ns(w);

		n[w] = now - steer.st_seen[w];
		steer.st_seen[w] = now;
		busy[w] = cpu - steer.st_cpu_ns[w];
		steer.st_cpu_ns[w] = cpu;
		total += n[w];
		if (busy[w] > busy[top])
			top = w;
		if (n[w] < least) {
			least = n[w];
			idle = w;
		}
	}
	period = now_ns - steer.st_when_ns;
	steer.st_when_ns = now_ns;
	if (steer.st_state != STEER_CPU || total < STEER_MIN_ACCEPTS ||
	    (double)busy[top] < STEER_BUSY * (double)period ||
	    (double)least * 4 * steer.st_nworkers >= (double)total)
		return;
	log_warnx("cpu_affinity: worker %d was busy %.0f%% of the time and "
	    "took %llu of the last %llu connections, worker %d %llu (the "
	    "kernel receives them on too few CPUs): steering off, "
	    "connections spread by the kernel's hash and workers on any CPU "
	    "until a restart", top, 100.0 * (double)busy[top] /
	    (double)period, (unsigned long long)n[top],
	    (unsigned long long)total, idle, (unsigned long long)least);
	steer_end("connections arrived on too few CPUs");
}

static const char *
steer_state_name(void)
{
	static const char *const names[] = {
		[STEER_OFF] = "off",
		[STEER_CPU] = "cpu",
		[STEER_HASH] = "hash",
	};

	return (names[steer.st_state]);
}

/*
 * For stats: ", \"steering\": {...}", with the connections each worker
 * has accepted. Cut short (invalid) only past GW_MAX_WORKERS' digits:
 * the caller's buffer holds 64 workers' counts.
 */
void
steer_json(char *buf, size_t len)
{
	size_t	 n;
	int	 w;

	n = (size_t)snprintf(buf, len, ", \"steering\": {\"state\": \"%s\", "
	    "\"why\": \"%s\", \"accepted\": [", steer_state_name(),
	    steer.st_why != NULL ? steer.st_why : "");
	for (w = 0; w < steer.st_nworkers && n < len; w++)
		n += (size_t)snprintf(buf + n, len - n, "%s%llu", w ? ", " : "",
		    (unsigned long long)atomic_load_explicit(
		    &steer.st_workers[w].w_accepted, memory_order_relaxed));
	if (n < len)
		snprintf(buf + n, len - n, "]}");
}
