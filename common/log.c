/*
 * log.c: one line per event on stderr, written with a single write(2) so
 * that lines from different worker threads never interleave.
 *
 * When stderr is the journal (systemd sets JOURNAL_STREAM to its device
 * and inode), each line starts with its syslog priority as "<N>" and no
 * time stamp: journald keeps the priority (journalctl -p warning) and
 * stamps the line itself.
 */
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"

static _Atomic int	 log_verbose;
static const char	*log_ident = "gatewayd";
static int		 log_journal;	/* stderr is journald's stream */

/* Whether stderr is the stream that JOURNAL_STREAM ("DEV:INO") names. */
static int
log_to_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;
	char			 end;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &end) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return (0);
	return ((unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino);
}

static void	log_vwrite(enum log_level, const char *, const char *,
		    va_list) __attribute__((format(printf, 3, 0)));

void
log_init(int verbose, const char *ident)
{
	log_verbose = verbose;
	if (ident != NULL)
		log_ident = ident;
	log_journal = log_to_journal();
}

void
log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

int
log_debug_enabled(void)
{
	return (log_verbose > 0);
}

static void
log_vwrite(enum log_level level, const char *suffix, const char *fmt,
    va_list ap)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	static const char priorities[] = { '3', '4', '6', '7' };
	char		 line[2048], msg[2048];
	struct timeval	 tv;
	struct tm	 tm;
	size_t		 n;
	int		 r;

	if (log_journal) {
		r = snprintf(line, sizeof(line), "<%c>%s: %s: ",
		    priorities[level], log_ident, names[level]);
		n = r > 0 ? (size_t)r : 0;
	} else {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s: %s: ",
		    (long)tv.tv_usec / 1000, log_ident, names[level]);
		if (r > 0)
			n += (size_t)r;
	}
	/*
	 * The message holds attacker-chosen text (user names, idents,
	 * destination names): it is escaped here, at the sink, so that no
	 * byte of it can end the line or forge another one.
	 */
	if (n < sizeof(line)) {
		r = vsnprintf(msg, sizeof(msg), fmt, ap);
		if (r > 0)
			n += esc_log(line + n, sizeof(line) - n, msg);
	}
	if (suffix != NULL && n + 2 < sizeof(line)) {
		line[n++] = ':';
		line[n++] = ' ';
		n += esc_log(line + n, sizeof(line) - n, suffix);
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* Nothing useful can be done when stderr itself fails. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

/*
 * Lines meant for a person as they are (FILE:LINE: message, what -n and a
 * refused start print), as errors: in the journal each gets its "<3>", so
 * that journalctl -p err shows why the unit failed.
 */
void
log_plain_errors(const char *text)
{
	const char	*nl;
	size_t		 n;

	while (*text != '\0') {
		n = (nl = strchr(text, '\n')) != NULL ? (size_t)(nl - text) :
		    strlen(text);
		fprintf(stderr, "%s%.*s\n", log_journal ? "<3>" : "", (int)n,
		    text);
		text += n + (nl != NULL);
	}
	fflush(stderr);
}

void
log_warn(const char *fmt, ...)
{
	char	 ebuf[128];
	int	 saved_errno = errno;
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_WARN, strerror_r(saved_errno, ebuf, sizeof(ebuf)),
	    fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_WARN, NULL, fmt, ap);
	va_end(ap);
}

void
log_errorx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose <= 0)
		return;
	va_start(ap, fmt);
	log_vwrite(LOG_LVL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char	 ebuf[128];
	int	 saved_errno = errno;
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, strerror_r(saved_errno, ebuf, sizeof(ebuf)),
	    fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
