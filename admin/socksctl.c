/*
 * socksctl.c: main(): the command line, the configuration, and the table
 * of nouns, each a command of its own file (cmd_*.c). What the commands
 * share is ctl.c's.
 */
#include <sys/stat.h>

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "admin.h"
#include "conf.h"
#include "log.h"

#define CTL_DEFAULT_CONF	"/etc/socksgw/gatewayd.conf"

static const struct {
	const char	*name;
	int		(*fn)(struct ctl *, struct args *);
} ctl_nouns[] = {
	{ "init", cmd_init },
	{ "rule", cmd_rule },
	{ "user", cmd_user },
	{ "group", cmd_group },
	{ "defaults", cmd_defaults },
	{ "list", cmd_list },
	{ "explain", cmd_explain },
	{ "geoip", cmd_geoip },
	{ "sessions", cmd_sessions },
	{ "reload", cmd_reload },
	{ "stats", cmd_stats },
	{ "log", cmd_log },
	{ "audit", cmd_audit },
	{ "export", cmd_export },
	{ "import", cmd_import },
	{ "test", cmd_test },
	{ "rollback", cmd_rollback },
};

/* Runs noun's command on a (the words after the noun); exits on errors. */
static int
ctl_run_noun(struct ctl *ctl, const char *noun, struct args *a)
{
	size_t	 i;

	for (i = 0; i < sizeof(ctl_nouns) / sizeof(ctl_nouns[0]); i++)
		if (strcmp(ctl_nouns[i].name, noun) == 0)
			return (ctl_nouns[i].fn(ctl, a));
	ctl_usage_error("unknown command '%s'", noun);
}
static void __attribute__((noreturn))
ctl_help(FILE *f, int code)
{
	fprintf(f, "usage: socksctl [-c FILE] [--json] NOUN VERB [ARGS]\n"
	    "       socksctl --fleet FILE [--json] sessions|stats ...\n"
	    "       socksctl NOUN [VERB] --help | socksctl --version\n\n");
	help_usage(f, NULL);
	fprintf(f, "\nThe configuration (default %s) names the databases. "
	    "man socksctl says more.\n", CTL_DEFAULT_CONF);
	exit(code);
}
/*
 * Whether the words after the noun ask for help: NOUN --help or NOUN VERB
 * --help. Not further on, where --help may be an option's value
 * (user add bob --comment --help adds bob).
 */
static int
ctl_wants_help(int argc, char **argv, int k)
{
	int	 i;

	for (i = k; i < argc && i < k + 2; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return (1);
	return (0);
}
/* The command as typed, for the change log (quoted where it needs it). */
static char *
ctl_join(int argc, char **argv)
{
	struct text	 t;
	FILE		*f = text_open(&t);
	int		 i;

	fprintf(f, "socksctl");
	for (i = 0; i < argc; i++)
		fprintf(f, strpbrk(argv[i], " \t'\"") ? " '%s'" : " %s",
		    argv[i]);
	return (text_close(&t));
}
int
main(int argc, char **argv)
{
	struct ctl	 ctl;
	struct args	 a;
	const char	*noun;
	char		*cause = NULL;
	size_t		 i;
	int		 k, n, rc;

	memset(&ctl, 0, sizeof(ctl));
	ctl.ctl_conf_path = CTL_DEFAULT_CONF;
	ctl.ctl_run = ctl_run_noun;
	ctl.ctl_export = policy_export_text;
	ctl_start(&ctl);
	log_init(0, "socksctl");
	/* The databases it creates are nobody else's to read. */
	umask(027);
	/* --json may stand anywhere; -c only before the noun. */
	for (k = n = 1; k < argc; k++) {
		if (strcmp(argv[k], "--json") == 0)
			ctl.ctl_json = 1;
		else
			argv[n++] = argv[k];
	}
	argc = n;
	for (k = 1; k < argc && argv[k][0] == '-'; k++) {
		if (strcmp(argv[k], "-c") == 0 && k + 1 < argc)
			ctl.ctl_conf_path = argv[++k];
		else if (strcmp(argv[k], "--fleet") == 0 && k + 1 < argc)
			ctl.ctl_fleet = argv[++k];
		else if (strcmp(argv[k], "-h") == 0 ||
		    strcmp(argv[k], "--help") == 0)
			ctl_help(stdout, 0);
		else if (strcmp(argv[k], "-V") == 0 ||
		    strcmp(argv[k], "--version") == 0) {
			printf("socksctl %s\n", SOCKSGW_VERSION);
			return (0);
		}
		else
			ctl_usage_error("unknown option '%s'", argv[k]);
	}
	if (k == argc)
		ctl_help(stderr, EXIT_USAGE);
	noun = argv[k++];
	ctl_noun = noun;
	if (k < argc && argv[k][0] != '-')
		ctl_verb = argv[k];
	if (strcmp(noun, "help") == 0)
		ctl_help(stdout, 0);
	for (i = 0; i < sizeof(ctl_nouns) / sizeof(ctl_nouns[0]); i++)
		if (strcmp(ctl_nouns[i].name, noun) == 0)
			break;
	if (i == sizeof(ctl_nouns) / sizeof(ctl_nouns[0]))
		ctl_usage_error("unknown command '%s'", noun);
	/* A mistyped verb is named before any of its arguments is read. */
	if (ctl_verb != NULL && help_is_verb(noun, ctl_verb) == 0 &&
	    !ctl_wants_help(argc, argv, k))
		ctl_usage_error("%s %s: unknown verb", noun, ctl_verb);
	if (ctl_wants_help(argc, argv, k)) {
		if (help_verb(stdout, noun, k < argc && argv[k][0] != '-' ?
		    argv[k] : NULL) == -1)
			ctl_usage_error("%s %s: unknown verb", noun, argv[k]);
		return (0);
	}
	a.a_argc = argc;
	a.a_argv = argv;
	a.a_i = k;
	/* A fleet's nodes answer for themselves: no configuration here. */
	if (ctl.ctl_fleet != NULL)
		return (fleet_run(&ctl, noun, &a));
	if ((ctl.ctl_conf = conf_load(ctl.ctl_conf_path, &cause)) == NULL) {
		fprintf(stderr, "%s\n", cause ? cause : "out of memory");
		return (1);
	}
	if (ctl.ctl_conf->c_timezone != NULL)
		setenv("TZ", ctl.ctl_conf->c_timezone, 1);
	tzset();
	ctl.ctl_cmdline = ctl_join(argc - k + 1, argv + k - 1);
	a.a_argc = argc;
	a.a_argv = argv;
	a.a_i = k;
	rc = ctl_nouns[i].fn(&ctl, &a);
	if (rc == 0 && ctl.ctl_db != NULL)
		policy_store_finish(&ctl);	/* a fleet's: stored, or nothing */
	if (ctl.ctl_db != NULL)
		sqlite3_close(ctl.ctl_db);
	conf_unref(ctl.ctl_conf);
	free(ctl.ctl_cmdline);
	return (rc);
}
