/*
 * libFuzzer harness for the configuration parser: the input is written to
 * an in-memory file and loaded by conf_load(). Invariants: a refused
 * configuration says why, every line of the reason names the file, and a
 * loaded one is whole (at least one listener).
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define CHECK(x)	do { if (!(x)) abort(); } while (0)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf	*c;
	char		 path[64], *cause = NULL, *line, *save = NULL;
	int		 fd;

	if ((fd = memfd_create("gatewayd.conf", 0)) == -1)
		return (0);
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return (0);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((c = conf_load(path, &cause)) != NULL) {
		CHECK(c->c_nlisten >= 1);
		conf_unref(c);
	} else {
		CHECK(cause != NULL);
		for (line = strtok_r(cause, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			CHECK(strncmp(line, path, strlen(path)) == 0);
		free(cause);
	}
	close(fd);
	return (0);
}
