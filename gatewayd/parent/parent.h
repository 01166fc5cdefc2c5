/*
 * parent.h: the privileged parent, which supervises authd, auditd and the
 * proxy; what a child gives up (privsep.c); the runtime folder and the
 * one-instance lock (runtime.c).
 */
#ifndef PARENT_H
#define PARENT_H

#include <sys/types.h>

#include <stddef.h>

struct conf;

/* What the proxy tells the parent, a line each (numbers only). */
#define PARENT_MSG_READY	"ready"
#define PARENT_MSG_RELOADED	"reloaded"	/* after a SIGHUP */
#define PARENT_MSG_REFUSED	"reload-refused"	/* the same, refused */
#define PARENT_MSG_SESSIONS	"sessions"	/* "sessions N": open now */
#define PARENT_MSG_AUTHD	"authd"
#define PARENT_MSG_AUDITD	"auditd"

/* What the parent hands each proxy it starts. */
struct proxy_args {
	int		*px_listen;	/* [worker][listen], bound as root */
	int		 px_metrics;	/* metrics_listen's, or -1 */
	int		*px_auth;	/* authd's channels, one a worker */
	int		 px_audit;	/* auditd's channel, or -1 */
	int		 px_ctl;	/* to the parent */
	int		 px_restarted;
};
typedef int	 proxy_main_fn(struct conf *, struct proxy_args *);
int	 parent_run(struct conf *, int, int *, int, proxy_main_fn *);

/* privsep.c */
void	 privsep_close_all_but(const int *, int);
struct privsep_account {
	int	 pa_set;		/* 0: not root, nothing to drop */
	uid_t	 pa_uid;
	gid_t	 pa_gid;
	char	 pa_name[256];
};
void	 privsep_lookup(const char *, const char *, const char *,
	    struct privsep_account *);
void	 privsep_become(const struct privsep_account *);
void	 privsep_drop(const char *, const char *, const char *);
int	 privsep_same_account(const char *, const char *);

/* runtime.c */
const char *runtime_dir(const struct conf *, char *, size_t);
int	 runtime_lock(const struct conf *, char **);
void	 runtime_lock_close(void);
int	 runtime_lock_descriptor(void);

#endif /* PARENT_H */
