/*
 * conf_int.h: what conf.c (the keyword table, loading a file, a
 * configuration's life) and conf_value.c (one keyword's value) share.
 * Nothing outside common/conf*.c includes it.
 */
#ifndef CONF_INT_H
#define CONF_INT_H

#include <stddef.h>

struct conf;

#define CONF_ZONEINFO	"/usr/share/zoneinfo"

enum conf_type {
	CT_LISTEN,	/* repeatable ADDR:PORT */
	CT_AUTH,	/* none | pam and/or gssapi: AUTH_* flags */
	CT_PATH,	/* relative to the configuration file's folder */
	CT_STRING,
	CT_TEXT,	/* a string that may hold spaces */
	CT_INT,		/* whole number in [min, max] */
	CT_SIZE,	/* bytes, with an optional K or M suffix */
	CT_BOOL,	/* yes | no */
	CT_FAILURE,	/* block | allow */
	CT_ADDRESS,	/* one ADDR:PORT */
	CT_CIDRS,	/* CIDR... (struct conf_cidrs) */
	CT_REMOVED,	/* a keyword of an older release: an error saying so */
};

struct conf_keyword {
	const char	*ck_name;
	enum conf_type	 ck_type;
	size_t		 ck_offset;
	long long	 ck_min;	/* long long: sizes pass 2 GiB */
	long long	 ck_max;
	const char	*ck_default;	/* as written in a file; NULL: none */
	enum { CK_LIVE, CK_RESTART } ck_when;	/* a reload applies it? */
};

/* conf.c: every keyword */
extern const struct conf_keyword conf_keywords[];
extern const size_t conf_nkeywords;

struct conf_errors {
	char	*ce_text;
	size_t	 ce_len;
	int	 ce_count;
};

/* Set when an allocation failed during a load: the whole load fails. */
extern int	 conf_oom;

void	 conf_error(struct conf_errors *, const char *, int, const char *,
	    ...) __attribute__((format(printf, 4, 5)));
char	*conf_xstrdup(const char *);
const struct conf_keyword *conf_find_keyword(const char *);
/* conf_fleet.c */
void	 conf_fleet(struct conf *, const char *, const int *,
	    struct conf_errors *);
int	 conf_set(struct conf *, const struct conf_keyword *, const char *,
	    const char *, int, struct conf_errors *);
char	*conf_resolve_path(const char *, const char *);
int	 conf_zone_ok(const char *);
#define CONF_PAC_MAX	(64 * 1024)
int	 conf_read_text(const char *, size_t, char **, const char **);

#endif
