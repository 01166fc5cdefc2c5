/*
 * control_proto.c: the control socket's request line, parsed strictly
 * (pure, so the fuzzer and the unit test reach it without a daemon):
 *
 *	SOCKSGW/1 sessions [USER]
 *	SOCKSGW/1 kill ID		ID: a session id, decimal, not 0
 *	SOCKSGW/1 kill-user USER
 *	SOCKSGW/1 reload
 *	SOCKSGW/1 stats
 *
 * Words are separated by one space; anything else (another word, a
 * number with a sign or junk, an empty user) is an error that names what
 * is wrong, and nothing is done. The old parser read "kill abc" and
 * "kill 0" as session 0, which matched every session.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"

static const struct {
	const char		*cv_name;
	enum control_verb	 cv_verb;
	int			 cv_arg;	/* 0 none, 1 optional, 2 required */
} control_verbs[] = {
	{ "sessions",	CV_SESSIONS,	1 },
	{ "kill",	CV_KILL,	2 },
	{ "kill-user",	CV_KILL_USER,	2 },
	{ "reload",	CV_RELOAD,	0 },
	{ "stats",	CV_STATS,	0 },
	{ "rules",	CV_RULES,	0 },
};

static int
control_user_ok(const char *u, size_t len)
{
	size_t	 i;

	if (len == 0 || len > 255)
		return (0);
	for (i = 0; i < len; i++)
		if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
			return (0);
	return (1);
}

/* line: len bytes, no newline. 0, or -1 with *why. */
int
control_parse(const char *line, size_t len, struct control_cmd *cmd,
    const char **why)
{
	const char	*verb, *arg, *end = line + len, *sp;
	size_t		 vlen, alen, i, k;
	uint64_t	 id;

	memset(cmd, 0, sizeof(*cmd));
	if (len < 10 || memcmp(line, "SOCKSGW/1 ", 10) != 0) {
		*why = "protocol SOCKSGW/1 expected";
		return (-1);
	}
	if (memchr(line, '\0', len) != NULL) {
		*why = "NUL byte in the request";
		return (-1);
	}
	verb = line + 10;
	sp = memchr(verb, ' ', (size_t)(end - verb));
	vlen = (size_t)((sp != NULL ? sp : end) - verb);
	arg = sp != NULL ? sp + 1 : NULL;
	alen = arg != NULL ? (size_t)(end - arg) : 0;
	for (i = 0; i < sizeof(control_verbs) / sizeof(control_verbs[0]); i++)
		if (strlen(control_verbs[i].cv_name) == vlen &&
		    memcmp(control_verbs[i].cv_name, verb, vlen) == 0)
			break;
	if (i == sizeof(control_verbs) / sizeof(control_verbs[0])) {
		*why = "unknown request";
		return (-1);
	}
	cmd->cc_verb = control_verbs[i].cv_verb;
	if (arg == NULL && control_verbs[i].cv_arg == 2) {
		*why = cmd->cc_verb == CV_KILL ? "kill needs a session id" :
		    "kill-user needs a user name";
		return (-1);
	}
	if (arg != NULL && control_verbs[i].cv_arg == 0) {
		*why = "this request takes no argument";
		return (-1);
	}
	if (arg == NULL)
		return (0);
	if (memchr(arg, ' ', alen) != NULL) {
		*why = "one argument expected";
		return (-1);
	}
	if (cmd->cc_verb != CV_KILL) {
		if (!control_user_ok(arg, alen)) {
			*why = "bad user name";
			return (-1);
		}
		memcpy(cmd->cc_user, arg, alen);
		cmd->cc_user[alen] = '\0';
		return (0);
	}
	if (alen == 0 || alen > 20) {
		*why = "session id: a decimal number expected";
		return (-1);
	}
	for (k = 0, id = 0; k < alen; k++) {
		if (arg[k] < '0' || arg[k] > '9' ||
		    id > (UINT64_MAX - (uint64_t)(arg[k] - '0')) / 10) {
			*why = "session id: a decimal number expected";
			return (-1);
		}
		id = id * 10 + (uint64_t)(arg[k] - '0');
	}
	if (id == 0) {
		*why = "session id 0 names no session";
		return (-1);
	}
	cmd->cc_id = id;
	return (0);
}
