/*
 * proxy.h: the proxy process's main thread (proxy.c): the configuration
 * in force, the policy snapshot and its watcher (gwpolicy.c), the
 * listening sockets (listen.c) and the metrics endpoint (metrics.c,
 * procstat.c).
 */
#ifndef PROXY_H
#define PROXY_H

#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <time.h>

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
void	 gwpolicy_poke(void);
int	 gwpolicy_closed(void);
int64_t	 gwpolicy_change(void);
struct policy *gwpolicy_get(unsigned *);
unsigned gwpolicy_generation(void);

/* policy_follow.c: a fleet node's copy of the fleet's policy */
enum { FOLLOW_OFF, FOLLOW_CONNECTING, FOLLOW_UP, FOLLOW_DOWN };
struct follow_status {
	int		 fs_state;
	int64_t		 fs_heard_age;	/* s since the store confirmed; -1 */
	int64_t		 fs_change;	/* the snapshot's change id */
	int64_t		 fs_installed;	/* snapshots received */
	int		 fs_max_age;	/* policy_max_age */
	char		 fs_error[256];
};
int	 policy_follow_open(const struct conf *, char **);
int	 policy_follow_start(const struct conf *, char **);
int	 policy_follow_is_node(void);
int	 policy_follow_same_url(const char *);
void	 policy_follow_reload(const struct conf *);
void	 policy_follow_stop(void);
void	 policy_follow_status(struct follow_status *);
const char *policy_follow_state_name(int);
int	 policy_follow_closed(char *, size_t);
/* policy_follow_view.c */
int	 policy_follow_json(char *, size_t);
void	 policy_follow_prometheus(FILE *);

/* policy_image.c: a node's snapshot files, and the store's policy */
struct sqlite3;
#define SNAPSHOT_SHA_HEX	64
struct snapshot_files {
	char		*sf_heard_path;
	int		 sf_heard_fd;
	time_t		 sf_heard;	/* .heard's time: the store's word */
	char		 sf_sha[SNAPSHOT_SHA_HEX + 1];	/* the image's */
	int64_t		 sf_change;	/* the snapshot's change id */
};
int	 policy_snapshot_prepare(const struct conf *, gid_t, char **);
int	 policy_snapshot_open(const char *, struct snapshot_files *, char **);
int64_t	 policy_snapshot_change(struct sqlite3 *);
int	 policy_image_install(const char *, const void *, size_t,
	    const void *, size_t, int64_t, char *, size_t);

/* listen.c: the listening sockets, [worker][listen address] */
int	 listeners_open(const struct conf *, int, int *, char **);

/* metrics.c, procstat.c */
int	 metrics_bind(const struct conf *, char **);
void	 metrics_init(const struct conf *, int);
int	 metrics_start(struct event_base *, char **);
void	 metrics_stop(void);
void	 procstat_prometheus(FILE *);

#endif /* PROXY_H */
