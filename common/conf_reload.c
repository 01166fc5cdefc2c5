/*
 * conf_reload.c: a reloaded configuration beside the running one: which
 * restart-only keywords changed, and their running values kept.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"

/* Whether keyword kw has the same value in a and b. */
static int
conf_same(const struct conf *a, const struct conf *b,
    const struct conf_keyword *kw)
{
	const char	*pa = (const char *)a + kw->ck_offset;
	const char	*pb = (const char *)b + kw->ck_offset;
	const char	*sa, *sb;
	size_t		 i;

	switch (kw->ck_type) {
	case CT_LISTEN:
		if (a->c_nlisten != b->c_nlisten)
			return (0);
		for (i = 0; i < a->c_nlisten; i++)
			if (strcmp(a->c_listen[i].cl_text,
			    b->c_listen[i].cl_text) != 0 ||
			    a->c_listen[i].cl_proxy != b->c_listen[i].cl_proxy)
				return (0);
		return (1);
	case CT_PATH:
	case CT_STRING:
	case CT_TEXT:
		sa = *(const char *const *)pa;
		sb = *(const char *const *)pb;
		return ((sa == NULL && sb == NULL) || (sa != NULL &&
		    sb != NULL && strcmp(sa, sb) == 0));
	case CT_SIZE:
		return (*(const size_t *)pa == *(const size_t *)pb);
	case CT_ADDRESS:
		return (a->c_has_metrics == b->c_has_metrics &&
		    strcmp(a->c_metrics.cl_text, b->c_metrics.cl_text) == 0);
	case CT_CIDRS:
		return (memcmp(pa, pb, sizeof(struct conf_cidrs)) == 0);
	case CT_REMOVED:
		return (1);
	default:	/* CT_INT, CT_BOOL, CT_AUTH, CT_FAILURE: an int */
		return (*(const int *)pa == *(const int *)pb);
	}
}

/*
 * The restart-only keywords whose values differ between the running
 * configuration and a reloaded one, as "listen, workers" in out ("" when
 * none). A reload keeps their old values until the next start.
 */
size_t
conf_restart_needed(const struct conf *old, const struct conf *new,
    char *out, size_t len)
{
	size_t	 i, n = 0, used = 0;

	if (len > 0)
		out[0] = '\0';
	for (i = 0; i < conf_nkeywords;
	    i++) {
		if (conf_keywords[i].ck_when != CK_RESTART ||
		    conf_same(old, new, &conf_keywords[i]))
			continue;
		if (used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%s",
			    n > 0 ? ", " : "", conf_keywords[i].ck_name);
		n++;
	}
	return (n);
}

/*
 * A reloaded configuration takes the running one's restart-only values,
 * so that what the workers read at run time (auth above all: `auth pam`
 * turned into `auth none` by a reload would open the gateway while the
 * log says a restart is needed) stays what was started with. -1 when out
 * of memory (the reload is refused).
 */
int
conf_keep_restart(const struct conf *start, struct conf *c)
{
	const struct conf_keyword	*kw;
	const char			*from;
	char				**to;
	size_t				 i;

	for (i = 0; i < conf_nkeywords;
	    i++) {
		kw = &conf_keywords[i];
		if (kw->ck_when != CK_RESTART || conf_same(start, c, kw))
			continue;
		switch (kw->ck_type) {
		case CT_LISTEN:
			memcpy(c->c_listen, start->c_listen,
			    sizeof(c->c_listen));
			c->c_nlisten = start->c_nlisten;
			break;
		case CT_PATH:
		case CT_STRING:
		case CT_TEXT:
			from = *(const char *const *)((const char *)start +
			    kw->ck_offset);
			to = (char **)((char *)c + kw->ck_offset);
			free(*to);
			if ((*to = from != NULL ? strdup(from) : NULL) == NULL &&
			    from != NULL)
				return (-1);
			break;
		case CT_SIZE:
			*(size_t *)((char *)c + kw->ck_offset) =
			    *(const size_t *)((const char *)start +
			    kw->ck_offset);
			break;
		case CT_ADDRESS:
			c->c_metrics = start->c_metrics;
			c->c_has_metrics = start->c_has_metrics;
			break;
		case CT_CIDRS:
			memcpy((char *)c + kw->ck_offset, (const char *)start +
			    kw->ck_offset, sizeof(struct conf_cidrs));
			break;
		case CT_REMOVED:
			break;
		default:	/* CT_INT, CT_BOOL, CT_AUTH, CT_FAILURE: an int */
			*(int *)((char *)c + kw->ck_offset) =
			    *(const int *)((const char *)start + kw->ck_offset);
			break;
		}
	}
	return (0);
}

