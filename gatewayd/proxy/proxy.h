/*
 * proxy.h: the proxy process's main thread (proxy.c): the configuration
 * in force, the policy snapshot and its watcher (gwpolicy.c), the
 * listening sockets (listen.c) and the metrics endpoint (metrics.c,
 * procstat.c).
 */
#ifndef PROXY_H
#define PROXY_H

#include <stdio.h>

struct conf;
struct event_base;
struct policy;
struct proxy_args;

/* proxy.c */
void	 proxy_conf_complete(struct conf *);
void	 proxy_init(struct conf *, int);
int	 proxy_main(struct conf *, struct proxy_args *);
struct conf *gw_conf_get(void);

/* gwpolicy.c: the policy snapshot in force, kept current by a thread */
int	 gwpolicy_check(const struct conf *, char **);
int	 gwpolicy_init(const struct conf *, char **);
int	 gwpolicy_watch(void (*)(const struct policy *), char **);
void	 gwpolicy_reload(const struct conf *);
void	 gwpolicy_stop(void);
struct policy *gwpolicy_get(unsigned *);
unsigned gwpolicy_generation(void);

/* listen.c: the listening sockets, [worker][listen address] */
int	 listeners_open(const struct conf *, int, int *, char **);

/* metrics.c, procstat.c */
int	 metrics_bind(const struct conf *, char **);
void	 metrics_init(const struct conf *, int);
int	 metrics_start(struct event_base *, char **);
void	 metrics_stop(void);
void	 procstat_prometheus(FILE *);

#endif /* PROXY_H */
