/*
 * conf_value.c: one keyword's value, parsed and checked by its type
 * (conf_int.h): bounds, sizes with their suffixes, paths relative to the
 * configuration file, addresses, time zones. An error names FILE:LINE
 * through conf_error(); nothing is set from a value that does not parse.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"

/*
 * A text file of at most max bytes (no NUL in it) into *out, malloc'd;
 * -1 with *why otherwise. Read as root at a start and served to clients
 * (pac_file): not through a symbolic link or a second hard link, which
 * whoever can write its folder could point at /etc/shadow, and a regular
 * file only.
 */
int
conf_read_text(const char *file, size_t max, char **out, const char **why)
{
	struct stat	 st;
	char		*buf;
	ssize_t		 n = 0;
	size_t		 got = 0;
	int		 fd;

	*out = NULL;
	if ((fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		*why = errno == ELOOP ? "a symbolic link: refused" :
		    strerror(errno);
		return (-1);
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		*why = "not a regular file with one link";
		close(fd);
		return (-1);
	}
	if ((buf = malloc(max + 1)) == NULL) {
		*why = "out of memory";
		close(fd);
		return (-1);
	}
	while (got <= max && (n = read(fd, buf + got, max + 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n == -1 || got > max || memchr(buf, '\0', got) != NULL) {
		*why = n == -1 ? "cannot be read" : got > max ? "too large" :
		    "not a text file";
		free(buf);
		return (-1);
	}
	buf[got] = '\0';
	*out = buf;
	return (0);
}

/* Whether name is a zone of the system's time zone database. */
int
conf_zone_ok(const char *name)
{
	char	 path[PATH_MAX], magic[4];
	FILE	*f;
	size_t	 i;
	int	 ok;

	if (name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL)
		return (0);
	for (i = 0; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]) &&
		    strchr("/_+-", name[i]) == NULL)
			return (0);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", CONF_ZONEINFO,
	    name) >= sizeof(path) || (f = fopen(path, "r")) == NULL)
		return (0);
	ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return (ok);
}


char *
conf_resolve_path(const char *confpath, const char *value)
{
	const char	*slash;
	char		*out;

	if (value[0] == '/' || (slash = strrchr(confpath, '/')) == NULL)
		return (conf_xstrdup(value));
	if (asprintf(&out, "%.*s/%s", (int)(slash - confpath), confpath,
	    value) < 0) {
		conf_oom = 1;
		return (NULL);
	}
	return (out);
}

static int
conf_parse_long(const char *v, long *out)
{
	char	*ep;

	errno = 0;
	*out = strtol(v, &ep, 10);
	return (v[0] != '\0' && *ep == '\0' && errno == 0 ? 0 : -1);
}

int
conf_set(struct conf *c, const struct conf_keyword *kw, const char *value,
    const char *file, int line, struct conf_errors *ce)
{
	char		*base = (char *)c;
	char		**sp;
	struct conf_listen *cl;
	const char	*why;
	long		 n;
	char		*ep;
	unsigned long long size, mult;

	switch (kw->ck_type) {
	case CT_LISTEN:
		if (c->c_nlisten == GW_MAX_LISTEN) {
			conf_error(ce, file, line, "too many listen addresses "
			    "(at most %d)", GW_MAX_LISTEN);
			return (-1);
		}
		cl = &c->c_listen[c->c_nlisten];
		memset(cl, 0, sizeof(*cl));
		/* ADDR:PORT, then its option: proxy_protocol. */
		{
			char	 hp[ADDR_STRLEN + 8];
			size_t	 k = strcspn(value, " \t");

			if (value[k] != '\0') {
				if (strcmp(value + k + strspn(value + k,
				    " \t"), "proxy_protocol") != 0) {
					conf_error(ce, file, line, "listen %s: "
					    "unknown option (expected "
					    "proxy_protocol)", value);
					return (-1);
				}
				cl->cl_proxy = 1;
			}
			snprintf(hp, sizeof(hp), "%.*s", (int)k, value);
			if (k >= sizeof(hp) || addr_parse_hostport(hp,
			    &cl->cl_ss, &cl->cl_len, &why) == -1) {
				conf_error(ce, file, line, "listen %s: %s",
				    value, k >= sizeof(hp) ? "too long" : why);
				return (-1);
			}
		}
		addr_str((struct sockaddr *)&cl->cl_ss, cl->cl_text,
		    sizeof(cl->cl_text));
		c->c_nlisten++;
		break;
	case CT_REMOVED:
		/* Accepting it silently would pretend it still does something. */
		conf_error(ce, file, line, "%s: removed (bench/splice.sh found "
		    "splicing no faster than copying); delete this line",
		    kw->ck_name);
		return (-1);
	case CT_AUTH: {
		/* A list of methods: "none" alone, or pam and/or gssapi. */
		char	*copy = conf_xstrdup(value), *tok, *save = NULL;
		int	 flags = 0, none = 0;

		if (copy == NULL)
			return (-1);
		for (tok = strtok_r(copy, " \t", &save); tok != NULL;
		    tok = strtok_r(NULL, " \t", &save)) {
			if (strcmp(tok, "none") == 0)
				none = 1;
			else if (strcmp(tok, "pam") == 0)
				flags |= AUTH_PAM;
			else if (strcmp(tok, "gssapi") == 0)
				flags |= AUTH_GSSAPI;
			else {
				conf_error(ce, file, line, "auth %s: expected "
				    "none, or pam and/or gssapi", tok);
				free(copy);
				return (-1);
			}
		}
		free(copy);
		if (none && flags != 0) {
			conf_error(ce, file, line, "auth %s: none cannot go "
			    "with a login method", value);
			return (-1);
		}
		c->c_auth = flags;
		break;
	}
	case CT_PATH:
	case CT_STRING:
	case CT_TEXT:
		sp = (char **)(base + kw->ck_offset);
		free(*sp);
		*sp = kw->ck_type == CT_PATH ?
		    conf_resolve_path(file, value) : conf_xstrdup(value);
		break;
	case CT_INT:
		if (conf_parse_long(value, &n) == -1 || n < kw->ck_min ||
		    n > kw->ck_max) {
			conf_error(ce, file, line, "%s %s: expected a whole "
			    "number from %lld to %lld", kw->ck_name, value,
			    kw->ck_min, kw->ck_max);
			return (-1);
		}
		*(int *)(base + kw->ck_offset) = (int)n;
		break;
	case CT_SIZE:
		errno = 0;
		mult = 1;
		size = strtoull(value, &ep, 10);
		if (ep != value && (*ep == 'K' || *ep == 'k') && ep[1] == '\0')
			mult = 1024;
		else if (ep != value && (*ep == 'M' || *ep == 'm') &&
		    ep[1] == '\0')
			mult = 1024 * 1024;
		else if (ep == value || *ep != '\0')
			size = 0;
		/* 17592186044417M must not wrap around to 1M. */
		if (size > ULLONG_MAX / mult || !isdigit((unsigned char)value[0]))
			size = 0;
		else
			size *= mult;
#if SIZE_MAX < ULLONG_MAX
		/* A 32-bit size_t holds less than the table allows. */
		if (size > SIZE_MAX)
			size = 0;
#endif
		if (errno != 0 || size < (unsigned long long)kw->ck_min ||
		    size > (unsigned long long)kw->ck_max) {
			conf_error(ce, file, line, "%s %s: expected a size from "
			    "%lldK to %lldM", kw->ck_name, value,
			    kw->ck_min / 1024, kw->ck_max / 1024 / 1024);
			return (-1);
		}
		*(size_t *)(base + kw->ck_offset) = (size_t)size;
		break;
	case CT_ADDRESS:
		cl = (struct conf_listen *)(base + kw->ck_offset);
		if (addr_parse_hostport(value, &cl->cl_ss, &cl->cl_len,
		    &why) == -1) {
			conf_error(ce, file, line, "%s %s: %s", kw->ck_name,
			    value, why);
			return (-1);
		}
		addr_str((struct sockaddr *)&cl->cl_ss, cl->cl_text,
		    sizeof(cl->cl_text));
		c->c_has_metrics = 1;
		break;
	case CT_CIDRS: {
		struct conf_cidrs *cc = (struct conf_cidrs *)(base +
		    kw->ck_offset);
		char	*copy = conf_xstrdup(value), *tok, *save = NULL;

		if (copy == NULL)
			return (-1);

		for (tok = strtok_r(copy, " \t", &save); tok != NULL;
		    tok = strtok_r(NULL, " \t", &save)) {
			if (cc->cc_n == GW_MAX_LISTEN) {
				conf_error(ce, file, line, "%s: at most %d "
				    "ranges", kw->ck_name, GW_MAX_LISTEN);
				free(copy);
				return (-1);
			}
			if (addr_cidr_parse(tok, &cc->cc_list[cc->cc_n]) ==
			    -1) {
				conf_error(ce, file, line, "%s %s: expected an "
				    "address or ADDR/LEN", kw->ck_name, tok);
				free(copy);
				return (-1);
			}
			cc->cc_n++;
		}
		free(copy);
		break;
	}
	case CT_FAILURE:
		if (strcmp(value, "block") == 0 || strcmp(value, "allow") == 0)
			*(int *)(base + kw->ck_offset) = value[0] == 'b';
		else {
			conf_error(ce, file, line, "%s %s: expected block or "
			    "allow", kw->ck_name, value);
			return (-1);
		}
		break;
	case CT_BOOL:
		if (strcmp(value, "yes") == 0)
			*(int *)(base + kw->ck_offset) = 1;
		else if (strcmp(value, "no") == 0)
			*(int *)(base + kw->ck_offset) = 0;
		else {
			conf_error(ce, file, line, "%s %s: expected yes or no",
			    kw->ck_name, value);
			return (-1);
		}
		break;
	}
	return (0);
}

