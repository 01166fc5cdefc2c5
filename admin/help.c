/*
 * help.c: what `socksctl help`, `socksctl NOUN --help` and
 * `socksctl NOUN VERB --help` print. One table, one row per verb: the
 * man page test (tests/package/test_docs.py) checks every noun, verb and
 * option here against socksctl(8), and every option the commands accept
 * against this table.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"

struct help {
	const char	*h_noun;
	const char	*h_verb;	/* NULL: the noun takes no verb */
	const char	*h_synopsis;	/* after "socksctl NOUN VERB" */
	const char	*h_text;
};

#define LIMIT_OPTS	"[--max-sessions N|none] [--rate R|none] " \
			"[--burst N|none] [--bandwidth B|none] " \
			"[--quota B/PERIOD|none]"

static const struct help helps[] = {
	{ "init", NULL, "",
	  "Creates the policy database named by policy_db, or brings its "
	  "schema up to date. Safe to run again." },
	{ "rule", "add", "allow|deny [--position N] [--src CIDR]... "
	  "[--src-country CC]... [--dst HOST|*.DOMAIN|CIDR|@LIST]... "
	  "[--country CC]... [--port P|P-Q]... [--user U|@GROUP]... "
	  "[--cmd connect|bind|udp]... [--time 'DAYS HH:MM-HH:MM']... "
	  "[--disabled] [--comment TEXT]",
	  "Adds a rule (last, or at --position). Conditions of one kind are "
	  "ORed, kinds are ANDed; the first enabled rule that matches "
	  "decides, and no match is deny." },
	{ "rule", "list", "", "Lists the rules in the order they are judged." },
	{ "rule", "show", "ID", "Shows one rule and its conditions." },
	{ "rule", "del", "ID", "Deletes a rule." },
	{ "rule", "move", "ID POSITION", "Moves a rule to POSITION (1 is "
	  "first)." },
	{ "rule", "enable", "ID", "Enables a rule." },
	{ "rule", "disable", "ID", "Disables a rule (kept, never matches)." },
	{ "user", "add", "NAME [--group G]... [--comment TEXT] [--disabled] "
	  LIMIT_OPTS, "Adds a user (a PAM account name) with its groups and "
	  "limits." },
	{ "user", "set", "NAME [--group G]... [--comment TEXT] " LIMIT_OPTS,
	  "Changes a user; --group replaces the user's groups." },
	{ "user", "list", "", "Lists the users." },
	{ "user", "show", "NAME", "Shows a user, its groups, limits and the "
	  "limits in force." },
	{ "user", "del", "NAME", "Deletes a user." },
	{ "user", "enable", "NAME", "Enables a user." },
	{ "user", "disable", "NAME", "Disables a user: every request is "
	  "denied." },
	{ "group", "add", "NAME [--comment TEXT] " LIMIT_OPTS,
	  "Adds a group with its limits (shared by its members)." },
	{ "group", "set", "NAME [--comment TEXT] " LIMIT_OPTS,
	  "Changes a group." },
	{ "group", "del", "NAME", "Deletes a group." },
	{ "group", "list", "", "Lists the groups." },
	{ "defaults", NULL, LIMIT_OPTS " [--client-rate R|none] "
	  "[--client-burst N|none]",
	  "Shows or sets the limits of users and groups that set none, and "
	  "the new-session rate per client address." },
	{ "list", "create", "NAME --type domain|cidr [--comment TEXT]",
	  "Creates an empty list of domains or of address ranges." },
	{ "list", "import", "NAME FILE|- [--replace]",
	  "Adds the entries of FILE (one a line, # comments), or replaces "
	  "them all with --replace, in one transaction." },
	{ "list", "show", "NAME [--limit N]", "Shows a list's entries." },
	{ "list", "list", "", "Lists the lists." },
	{ "list", "del", "NAME", "Deletes a list that no rule names." },
	{ "explain", NULL, "--dst HOST:PORT [--user U] [--group G]... "
	  "[--src IP] [--addr IP] [--cmd connect|bind|udp] [--at TIME]",
	  "Says what the policy decides for a request, which rule decides "
	  "and why each rule before it did not match." },
	{ "geoip", "lookup", "IP", "Says the country of an address in "
	  "geoip_db, and whose data it is." },
	{ "geoip", "check", "FILE [--path P]", "Checks that FILE is a "
	  "country database with codes at geoip_country_path (or P)." },
	{ "geoip", "show", "", "Says which country database the "
	  "configuration uses, its version and whose data it is." },
	{ "sessions", NULL, "[--user U] | kill ID | kill --user U",
	  "Lists the sessions open now, or closes some (control socket)." },
	{ "reload", NULL, "", "Makes gatewayd read its configuration "
	  "again (control socket)." },
	{ "stats", NULL, "", "Prints gatewayd's counters (control "
	  "socket)." },
	{ "log", NULL, "[--limit N]", "Prints the policy change log: who "
	  "changed what, when." },
	{ "export", NULL, "[--output FILE]",
	  "Writes the whole policy (defaults, groups, users, lists with "
	  "their entries, rules in order) as socksctl commands, one a line: "
	  "a file to keep in git. Exporting, importing and exporting again "
	  "gives the same file." },
	{ "import", NULL, "FILE [--dry-run]",
	  "Makes the policy what FILE says, in one transaction and one "
	  "change-log entry (an error names FILE:LINE and changes "
	  "nothing); --dry-run prints the difference and changes nothing." },
	{ "test", NULL, "FILE",
	  "Checks a table of requests against the policy, one a line: "
	  "user=U groups=G,H src=IP dst=HOST:PORT addr=IP cmd=C "
	  "at=YYYY-MM-DDTHH:MM => allow|deny|resolve RULE. Shows every "
	  "mismatch; exit 1 if there is one." },
	{ "audit", "list", "[--user U] [--session ID] [--since T] [--until T] "
	  "[--verdict allow|deny] [--dst TEXT] [--client ADDR] [--rule N] "
	  "[--limit N]", "Lists audit records, newest first." },
	{ "audit", "show", "ID", "Shows one audit record in full." },
	{ "audit", "verify", "[--pubkey FILE] [--checkpoints FILE]",
	  "Checks the hash chain and the signed checkpoints of the audit "
	  "log." },
	{ "audit", "report", "users|destinations|denied-destinations|"
	  "denials|timeline [--since T] [--until T] [--user U] [--group G] "
	  "[--top N] [--by sessions|bytes] [--bucket hour|day] "
	  "[--format table|csv|json|html]",
	  "Summarises the audit log for a period." },
};

static void
help_line(FILE *f, const struct help *h)
{
	fprintf(f, "socksctl %s%s%s%s%s\n", h->h_noun, h->h_verb ? " " : "",
	    h->h_verb ? h->h_verb : "", h->h_synopsis[0] ? " " : "",
	    h->h_synopsis);
}

/* Every command's synopsis, or those of one noun. */
void
help_usage(FILE *f, const char *noun)
{
	size_t	 i;

	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++)
		if (noun == NULL || strcmp(helps[i].h_noun, noun) == 0) {
			fprintf(f, "  ");
			help_line(f, &helps[i]);
		}
}

/*
 * The help of NOUN VERB (verb NULL: the noun's own, or all its verbs').
 * Returns -1 when there is no such verb.
 */
int
help_verb(FILE *f, const char *noun, const char *verb)
{
	size_t	 i;

	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		if (strcmp(helps[i].h_noun, noun) != 0)
			continue;
		if (verb != NULL && helps[i].h_verb != NULL &&
		    strcmp(helps[i].h_verb, verb) != 0)
			continue;
		if (verb == NULL && helps[i].h_verb != NULL) {
			fprintf(f, "usage:\n");
			help_usage(f, noun);
			fprintf(f, "\nsocksctl %s VERB --help says more; "
			    "man socksctl says all.\n", noun);
			return (0);
		}
		fprintf(f, "usage: ");
		help_line(f, &helps[i]);
		fprintf(f, "\n%s\n", helps[i].h_text);
		return (0);
	}
	return (-1);
}
