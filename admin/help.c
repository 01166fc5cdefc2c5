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
	  "decides, and no match is deny.\n\n"
	  "  --src 10.0.0.0/8              the client's address\n"
	  "  --src-country FR              the client's country (GeoIP)\n"
	  "  --dst 192.0.2.0/24            the destination address\n"
	  "  --dst www.example.org         exactly that name\n"
	  "  --dst '*.example.org'         that domain and every name under "
	  "it\n"
	  "  --dst @games                  a list (socksctl list create)\n"
	  "  --country KP                  the destination's country (GeoIP)"
	  "\n"
	  "  --port 443, --port 8000-8099  the destination port\n"
	  "  --user alice, --user @staff   a user, a group (auth pam)\n"
	  "  --cmd connect|bind|udp        the SOCKS command\n"
	  "  --time 'Mon-Fri 08:00-18:00'  days and hours in timezone\n"
	  "  --disabled, --comment TEXT    kept but off; a note\n\n"
	  "e.g. socksctl rule add allow --user @staff --port 443 "
	  "--time 'Mon-Fri 08:00-18:00'" },
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
	{ "sessions", NULL, "[--user U] | kill ID | kill --user U "
	  "(socksctl --fleet FILE sessions: kill NODE:ID)",
	  "Lists the sessions open now, or closes some (control socket). "
	  "With --fleet FILE before it, every node's, with a node column." },
	{ "reload", NULL, "", "Makes gatewayd read its configuration "
	  "again (control socket)." },
	{ "stats", NULL, "", "Prints gatewayd's counters (control "
	  "socket); with --fleet FILE, each one's total and each node's." },
	{ "log", NULL, "[--limit N] | revert ID", "Prints the policy change "
	  "log: who changed what, when (each entry keeps the policy as it was "
	  "after it); revert ID undoes change ID alone, as a new change." },
	{ "rollback", NULL, "--to ID", "Makes the policy what it was right "
	  "after change ID (socksctl log), as a new change." },
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
	  "[--node NAME] [--limit N] [--central]", "Lists audit records, "
	  "newest first, with the node (node_name) that wrote each; "
	  "--central: every node's, from the fleet's central store "
	  "(audit_central)." },
	{ "audit", "show", "ID", "Shows one audit record in full." },
	{ "audit", "verify", "[--pubkey FILE] [--checkpoints FILE] "
	  "[--central [--node NAME]]",
	  "Checks the hash chain and the signed checkpoints of the audit "
	  "log; --central: of each node's copy in the central store, and "
	  "that none ends before the node's last shipped record." },
	{ "audit", "nodes", "", "Lists the nodes shipping to the central "
	  "store (audit_central): records held, the chain's anchor, the last "
	  "record shipped and when." },
	{ "audit", "report", "users|destinations|denied-destinations|"
	  "denials|timeline|nodes [--since T] [--until T] [--user U] [--group G] "
	  "[--top N] [--by sessions|bytes] [--bucket hour|day] "
	  "[--format table|csv|json|html] [--central [--node NAME]]",
	  "Summarises the audit log for a period; --central: the fleet's, "
	  "from the central store." },
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

/* Edits (insert, delete, replace, swap) from a to b, at most 31 long. */
static int
help_distance(const char *a, const char *b)
{
	int	 d[32][32], i, j, la = (int)strlen(a), lb = (int)strlen(b), c;

	if (la > 31 || lb > 31)
		return (99);
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < c)
				c = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < c)
				c = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
				c = d[i - 2][j - 2] + 1;
			d[i][j] = c;
		}
	return (d[la][lb]);
}

/* Keeps cand in *best when it is nearer to word than what is there. */
static void
help_nearer(const char *word, const char *cand, size_t len, char *best,
    size_t bestlen, int *bestd)
{
	char	 c[64];
	int	 d;

	snprintf(c, sizeof(c), "%.*s", (int)len, cand);
	if ((d = help_distance(word, c)) < *bestd) {
		*bestd = d;
		snprintf(best, bestlen, "%s", c);
	}
}

/*
 * The word socksctl knows that is nearest to a mistyped one: a noun (noun
 * NULL), a verb of noun (word without dashes) or an option of noun and
 * verb. NULL when nothing is near enough to be a likely typo.
 */
const char *
help_suggest(const char *noun, const char *verb, const char *word)
{
	static char	 best[64];
	const char	*p, *e;
	size_t		 i;
	int		 bestd = 99, limit;

	best[0] = '\0';
	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		if (noun == NULL) {
			help_nearer(word, helps[i].h_noun,
			    strlen(helps[i].h_noun), best, sizeof(best),
			    &bestd);
			continue;
		}
		if (strcmp(helps[i].h_noun, noun) != 0)
			continue;
		if (word[0] != '-') {
			if (helps[i].h_verb != NULL)
				help_nearer(word, helps[i].h_verb,
				    strlen(helps[i].h_verb), best,
				    sizeof(best), &bestd);
			continue;
		}
		if (verb != NULL && helps[i].h_verb != NULL &&
		    strcmp(helps[i].h_verb, verb) != 0)
			continue;
		for (p = helps[i].h_synopsis; (p = strstr(p, "--")) != NULL;
		    p = e) {
			for (e = p + 2; *e == '-' || (*e >= 'a' && *e <= 'z');
			    e++)
				;
			help_nearer(word, p, (size_t)(e - p), best,
			    sizeof(best), &bestd);
		}
	}
	/* A third of the word, at least one edit, at most three. */
	limit = (int)strlen(word) / 3;
	limit = limit < 1 ? 1 : limit > 3 ? 3 : limit;
	return (best[0] != '\0' && bestd > 0 && bestd <= limit ? best : NULL);
}

/*
 * Whether verb is one of noun's (1), not (0), or noun takes words that
 * are not verbs (-1: sessions, import FILE...).
 */
int
help_is_verb(const char *noun, const char *verb)
{
	size_t	 i;
	int	 any = 0;

	for (i = 0; i < sizeof(helps) / sizeof(helps[0]); i++) {
		if (strcmp(helps[i].h_noun, noun) != 0)
			continue;
		if (helps[i].h_verb == NULL)
			return (-1);
		any = 1;
		if (strcmp(helps[i].h_verb, verb) == 0)
			return (1);
	}
	return (any ? 0 : -1);
}
