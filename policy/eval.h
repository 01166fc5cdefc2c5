/*
 * eval.h: one evaluation of a request against a snapshot, shared by
 * decide.c (the decision) and explain.c (why each rule before it did not
 * decide). Nothing else includes it.
 */
#ifndef EVAL_H
#define EVAL_H

#include <netinet/in.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "policy_int.h"

struct eval {
	const struct policy	*e_p;
	const struct policy_req	*e_req;
	size_t			 e_words;
	const uint64_t		*e_dim[PK_NDIM];	/* pool or e_buf */
	uint64_t		*e_buf[PK_NDIM];
	uint64_t		*e_special;	/* allow rules naming the address */
	uint64_t		*e_acc;
	int			 e_phase1;
	const char		*e_special_name;
	struct tm		 e_tm;
	int			 e_have_tm;
	char			 e_src_cc[3];
	char			 e_dst_cc[3];
};

/* The evaluation's buffers live on the caller's stack. */
#define EVAL_BUFFERS	(PK_NDIM + 2)

#define EVAL_SETUP(e, p, req, buf)					\
	uint64_t buf[(p)->p_words * EVAL_BUFFERS];			\
	struct eval e;							\
	do {								\
		int k_;							\
		memset(&(e), 0, sizeof(e));				\
		(e).e_p = (p);						\
		(e).e_req = (req);					\
		(e).e_words = (p)->p_words;				\
		for (k_ = 0; k_ < PK_NDIM; k_++)			\
			(e).e_buf[k_] = buf + (size_t)k_ * (p)->p_words; \
		(e).e_special = buf + PK_NDIM * (p)->p_words;		\
		(e).e_acc = buf + (PK_NDIM + 1) * (p)->p_words;	\
	} while (0)

static inline int
bit_is_set(const uint64_t *set, long r)
{
	return ((set[r / 64] >> (r % 64)) & 1);
}

long	 eval_decide(struct eval *, struct policy_verdict *);
int	 eval_fold(struct eval *, long, struct policy_verdict *,
	    struct sockaddr_in *);
int	 eval_time_ok(struct eval *, const struct prule *);

#endif
