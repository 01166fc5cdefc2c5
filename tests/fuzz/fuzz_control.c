/*
 * libFuzzer harness for the control socket's request parser. Invariants:
 * an accepted request is one of the known verbs with a valid argument
 * (kill: a non-zero id; users: 1-255 bytes, no space or control), and
 * written back in its canonical form it parses to the same request.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/control.h"

#define CHECK(x)	do { if (!(x)) abort(); } while (0)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const verbs[] = { "sessions", "kill", "kill-user",
	    "reload", "stats", "rules" };
	struct control_cmd	 cmd, again;
	const char		*why = NULL;
	char			*copy, line[300];
	int			 n;

	if ((copy = malloc(size ? size : 1)) == NULL)
		return (0);
	memcpy(copy, data, size);
	if (control_parse(copy, size, &cmd, &why) == -1) {
		CHECK(why != NULL && why[0] != '\0');
		free(copy);
		return (0);
	}
	free(copy);
	CHECK(cmd.cc_verb <= CV_RULES);
	CHECK(cmd.cc_verb != CV_KILL || cmd.cc_id != 0);
	CHECK(cmd.cc_verb != CV_KILL_USER || cmd.cc_user[0] != '\0');
	if (cmd.cc_verb == CV_KILL)
		n = snprintf(line, sizeof(line), "SOCKSGW/1 kill %llu",
		    (unsigned long long)cmd.cc_id);
	else
		n = snprintf(line, sizeof(line), "SOCKSGW/1 %s%s%s",
		    verbs[cmd.cc_verb], cmd.cc_user[0] ? " " : "", cmd.cc_user);
	CHECK(control_parse(line, (size_t)n, &again, &why) == 0);
	CHECK(again.cc_verb == cmd.cc_verb && again.cc_id == cmd.cc_id &&
	    strcmp(again.cc_user, cmd.cc_user) == 0);
	return (0);
}
