/*
 * libFuzzer harness for the policy's value parsers: CIDR, domain names,
 * ports, countries, time windows, byte counts and quota periods. The
 * first byte picks the parser. Invariants: an accepted value's canonical
 * text is accepted again and is its own canonical form (what socksctl
 * stores is what the engine reads), and nothing is read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define CHECK(x)	do { if (!(x)) abort(); } while (0)

typedef int	(*value_fn)(const char *, char *, size_t, const char **);

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const value_fn	 fns[] = { policy_parse_cidr,
				    policy_parse_domain, policy_parse_port,
				    policy_parse_country, policy_parse_time };
	char			 out[POLICY_VALUE_MAX], again[POLICY_VALUE_MAX];
	const char		*why = NULL;
	char			*text;
	uint64_t		 n, m;
	size_t			 which;

	if (size < 1)
		return (0);
	which = data[0] % (sizeof(fns) / sizeof(fns[0]) + 2);
	if ((text = malloc(size)) == NULL)
		return (0);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (which < sizeof(fns) / sizeof(fns[0])) {
		if (fns[which](text, out, sizeof(out), &why) == 0) {
			CHECK(fns[which](out, again, sizeof(again), &why) == 0);
			CHECK(strcmp(out, again) == 0);
		} else
			CHECK(why != NULL);
	} else if (which == sizeof(fns) / sizeof(fns[0])) {
		if (policy_bytes_parse(text, &n) == 0) {
			policy_bytes_format(n, out, sizeof(out));
			CHECK(policy_bytes_parse(out, &m) == 0);
		}
	} else {
		enum policy_period	 p = policy_period_parse(text);

		if (p != POLICY_PERIOD_NONE)
			CHECK(policy_period_parse(policy_period_name(p)) == p);
	}
	free(text);
	return (0);
}
