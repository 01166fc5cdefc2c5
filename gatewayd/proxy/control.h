/*
 * control.h: the control socket (control.c) and its request parser
 * (control_proto.c). A question about sessions goes to every worker
 * (WORKER_CONTROL); each answers for its own sessions (control_answer).
 */
#ifndef CONTROL_H
#define CONTROL_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct event_base;
struct worker;

enum control_verb { CV_SESSIONS, CV_KILL, CV_KILL_USER, CV_RELOAD,
	CV_STATS, CV_RULES };
struct control_cmd {
	enum control_verb	 cc_verb;
	uint64_t		 cc_id;
	char			 cc_user[256];
};
int	 control_parse(const char *, size_t, struct control_cmd *,
	    const char **);

struct control_query {
	char			 cq_user[256];
	uint64_t		 cq_id;
	int			 cq_kill;
	char			 cq_admin[64];
	int			 cq_count;
};
struct control_ctx {
	struct worker		*cx_workers;
	int			 cx_nworkers;
	/* NULL, or why it was refused; restart: what waits for one */
	char			*(*cx_reload)(char *restart, size_t);
};
int	 control_init(const struct conf *, char **);
int	 control_start(struct event_base *, struct control_ctx *, char **);
void	 control_stop(void);
void	 control_answer(struct worker *);

#endif /* CONTROL_H */
