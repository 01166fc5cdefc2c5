/*
 * cmd_verify.c: socksctl audit verify. Recomputes the hash chain from its
 * anchor, checks every signed checkpoint (and a signed prune at the
 * anchor) with the log's public key or a pinned one (--pubkey), and with
 * --checkpoints the copies syslog received, which catch the newest rows
 * deleted together with their checkpoints. Exit 1 on any finding.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "admin.h"
#include "audit_chain.h"
#include "conf.h"
#include "escape.h"
#include "evidence.h"

/*
 * The column of a row whose storage class is not the one the writer gives
 * it, or NULL. The hash covers text as sqlite3_column_text reads it, up to
 * its first NUL: a value rewritten as a BLOB, or with a NUL and more after
 * it, hashes the same but no longer matches the queries and reports that
 * look for it (user = 'alice'). Verify calls that an edit.
 */
static const char *
audit_row_mistyped(sqlite3_stmt *st)
{
	/* AUDIT_ROW_COLUMNS: Integer, Text, the hash Blob. */
	static const char	 kinds[] = "ITIIITTITTTITTITIITIBTTIIIITT";
	const unsigned char	*t;
	int			 i, type;

	/* A column added to the row and not here would go unchecked. */
	if (sqlite3_column_count(st) != (int)sizeof(kinds) - 1)
		return ("(the row's columns: this build is inconsistent)");
	for (i = 0; i < (int)sizeof(kinds) - 1; i++) {
		if ((type = sqlite3_column_type(st, i)) == SQLITE_NULL ||
		    kinds[i] == 'B')
			continue;
		if (kinds[i] == 'I' ? type != SQLITE_INTEGER :
		    type != SQLITE_TEXT || (t = sqlite3_column_text(st, i)) ==
		    NULL || strlen((const char *)t) !=
		    (size_t)sqlite3_column_bytes(st, i))
			return (sqlite3_column_name(st, i));
	}
	return (NULL);
}

/*
 * Recomputes the chain from its anchor. The first record whose place or
 * hash is wrong is reported: a gap is a deletion; a hash that does not
 * follow is an edit or an insertion.
 */
static int
audit_verify_chain(sqlite3 *db, int64_t *verified)
{
	const char		*wrong;
	struct audit_fields	 f;
	unsigned char		 prev[32], h[32];
	sqlite3_stmt		*st;
	int64_t			 expect = 1, n = 0, seq;
	int			 bad = 0;

	memset(prev, 0, sizeof(prev));
	if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM chain WHERE name = "
	    "'anchor'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 1) == 32) {
		expect = sqlite3_column_int64(st, 0) + 1;
		memcpy(prev, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT " AUDIT_ROW_COLUMNS " FROM records "
	    "WHERE seq IS NOT NULL OR end_ms IS NOT NULL ORDER BY seq IS NULL, "
	    "seq",
	    -1, &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	while (!bad && sqlite3_step(st) == SQLITE_ROW) {
		int64_t	 id = sqlite3_column_int64(st, 0);

		if (sqlite3_column_type(st, 19) == SQLITE_NULL) {
			fprintf(stderr, "audit record %lld: completed but not in "
			    "the chain (inserted)\n", (long long)id);
			bad = 1;
			break;
		}
		seq = sqlite3_column_int64(st, 19);
		if (seq != expect) {
			fprintf(stderr, "audit record %lld: chain place %lld, "
			    "%lld expected: %lld record%s deleted before it\n",
			    (long long)id, (long long)seq, (long long)expect,
			    (long long)(seq - expect), seq - expect == 1 ? "" :
			    "s");
			bad = 1;
			break;
		}
		if ((wrong = audit_row_mistyped(st)) != NULL) {
			fprintf(stderr, "audit record %lld (chain place %lld): "
			    "%s is not stored as the writer stores it: the "
			    "record was edited\n", (long long)id, (long long)seq,
			    wrong);
			bad = 1;
			break;
		}
		audit_fields_row(st, &f);
		if (audit_chain_hash(NULL, prev, &f, h) == -1)
			ctl_error("SHA-256 failed");
		if (sqlite3_column_bytes(st, 20) != 32 ||
		    memcmp(h, sqlite3_column_blob(st, 20), 32) != 0) {
			fprintf(stderr, "audit record %lld (chain place %lld): "
			    "hash mismatch: the record was edited, or inserted "
			    "into the chain\n", (long long)id, (long long)seq);
			bad = 1;
			break;
		}
		memcpy(prev, h, 32);
		expect++;
		n++;
	}
	sqlite3_finalize(st);
	*verified = n;
	return (bad);
}

/*
 * A checkpoint against the records: the row at its place must carry its
 * hash, unless a signed prune removed that place. 0, or 1 (reported).
 */
static int
audit_check_point(sqlite3 *db, const struct checkpoint *cp, int64_t pruned,
    const char *from)
{
	sqlite3_stmt	*st;
	int		 found, same;

	if (cp->cp_seq <= pruned)
		return (0);
	if (sqlite3_prepare_v2(db, "SELECT hash FROM records WHERE seq = ?1",
	    -1, &st, NULL) != SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	sqlite3_bind_int64(st, 1, cp->cp_seq);
	found = sqlite3_step(st) == SQLITE_ROW;
	same = found && sqlite3_column_bytes(st, 0) == 32 &&
	    memcmp(sqlite3_column_blob(st, 0), cp->cp_hash, 32) == 0;
	sqlite3_finalize(st);
	if (!found) {
		fprintf(stderr, "signed %s at chain place %lld%s: that record "
		    "is gone: records were deleted up to it\n", cp->cp_kind,
		    (long long)cp->cp_seq, from);
		return (1);
	}
	if (!same) {
		fprintf(stderr, "signed %s at chain place %lld%s: the record "
		    "there differs from what was signed: the chain was "
		    "rewritten (edited and recomputed)\n", cp->cp_kind,
		    (long long)cp->cp_seq, from);
		return (1);
	}
	return (0);
}

/* The value of name="..." in an RFC 5424 line, or NULL. */
static const char *
audit_sd_value(const char *line, const char *name, char *out, size_t len)
{
	char		 pat[32];
	const char	*p, *q;

	snprintf(pat, sizeof(pat), " %s=\"", name);
	if ((p = strstr(line, pat)) == NULL)
		return (NULL);
	p += strlen(pat);
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= len)
		return (NULL);
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return (out);
}

/*
 * Checkpoints kept off the machine (syslog lines, one a line): each must
 * be signed, and be in the database, and match its records. Catches the
 * newest rows deleted together with the checkpoints after them.
 */
static int
audit_verify_external(sqlite3 *db, EVP_PKEY *key, const char *path,
    int64_t pruned, int64_t *count)
{
	struct checkpoint	 cp;
	unsigned char		 sig[EVIDENCE_SIG_LEN];
	sqlite3_stmt		*st;
	char			*line = NULL, kind[16], seq[24], hash[80];
	char			 time_ms[24], sighex[160], from[64];
	size_t			 cap = 0;
	FILE			*f;
	int			 bad = 0, lineno = 0, inside;

	if ((f = fopen(path, "r")) == NULL)
		ctl_error("--checkpoints %s: %s", path, strerror(errno));
	while (getline(&line, &cap, f) != -1 && !bad) {
		lineno++;
		if (audit_sd_value(line, "kind", kind, sizeof(kind)) == NULL ||
		    audit_sd_value(line, "seq", seq, sizeof(seq)) == NULL ||
		    audit_sd_value(line, "hash", hash, sizeof(hash)) == NULL ||
		    audit_sd_value(line, "time_ms", time_ms,
		    sizeof(time_ms)) == NULL ||
		    audit_sd_value(line, "sig", sighex, sizeof(sighex)) == NULL)
			continue;	/* another kind of line */
		memset(&cp, 0, sizeof(cp));
		cp.cp_kind = strcmp(kind, "prune") == 0 ? "prune" :
		    "checkpoint";
		cp.cp_seq = strtoll(seq, NULL, 10);
		cp.cp_time_ms = strtoll(time_ms, NULL, 10);
		if (evidence_unhex(hash, cp.cp_hash, 32) == -1 ||
		    evidence_unhex(sighex, sig, sizeof(sig)) == -1 ||
		    !evidence_verify(key, &cp, sig, sizeof(sig))) {
			fprintf(stderr, "%s:%d: a checkpoint line the public key "
			    "did not sign\n", path, lineno);
			bad = 1;
			break;
		}
		(*count)++;
		snprintf(from, sizeof(from), " (%s:%d)", path, lineno);
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM checkpoints "
		    "WHERE kind = ?1 AND seq = ?2 AND time_ms = ?3", -1, &st,
		    NULL) != SQLITE_OK)
			ctl_error("%s", sqlite3_errmsg(db));
		sqlite3_bind_text(st, 1, cp.cp_kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, cp.cp_seq);
		sqlite3_bind_int64(st, 3, cp.cp_time_ms);
		inside = sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_int64(st, 0) > 0;
		sqlite3_finalize(st);
		if (!inside && cp.cp_seq > pruned) {
			fprintf(stderr, "signed %s at chain place %lld%s is "
			    "missing from the database: it was deleted\n",
			    cp.cp_kind, (long long)cp.cp_seq, from);
			bad = 1;
			break;
		}
		bad = audit_check_point(db, &cp, pruned, from);
	}
	free(line);
	fclose(f);
	return (bad);
}

/*
 * Everything verify checks in one log (db) with one key: the chain from its
 * anchor, every checkpoint's signature, the anchor against the signed
 * prunes, each checkpoint against its record, and checkpoints kept
 * elsewhere (ext). 0, or 1 after saying what is wrong on stderr.
 *
 * A node's copy in the central store (central) keeps records the node has
 * pruned since it first shipped: its anchor is where shipping began, which
 * must be a signed prune (or the chain's start), not the newest one, and
 * every checkpoint after it must find its record there.
 */
int
audit_verify_db(sqlite3 *db, EVP_PKEY *key, const char *ext, int central,
    struct verify_result *vr)
{
	struct checkpoint	 cp;
	unsigned char		 anchor[32];
	sqlite3_stmt		*st;
	int64_t			 anchor_seq = 0, pruned = 0;
	int			 bad, have_anchor = 0, signed_anchor = 0;

	memset(vr, 0, sizeof(*vr));
	if ((bad = audit_verify_chain(db, &vr->vr_records)) != 0)
		return (bad);
	if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM chain WHERE name = "
	    "'anchor'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_bytes(st, 1) == 32) {
		have_anchor = 1;
		anchor_seq = sqlite3_column_int64(st, 0);
		memcpy(anchor, sqlite3_column_blob(st, 1), 32);
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT id, kind, seq, hash, time_ms, "
	    "signature FROM checkpoints ORDER BY id", -1, &st, NULL) !=
	    SQLITE_OK)
		ctl_error("%s", sqlite3_errmsg(db));
	while (!bad && sqlite3_step(st) == SQLITE_ROW) {
		memset(&cp, 0, sizeof(cp));
		cp.cp_kind = strcmp((const char *)sqlite3_column_text(st, 1),
		    "prune") == 0 ? "prune" : "checkpoint";
		cp.cp_seq = sqlite3_column_int64(st, 2);
		cp.cp_time_ms = sqlite3_column_int64(st, 4);
		if (sqlite3_column_bytes(st, 3) != 32 ||
		    !evidence_verify(key, (memcpy(cp.cp_hash,
		    sqlite3_column_blob(st, 3), 32), &cp),
		    sqlite3_column_blob(st, 5), (size_t)sqlite3_column_bytes(st,
		    5))) {
			fprintf(stderr, "checkpoint %lld: the public key did not "
			    "sign it: forged or altered\n",
			    (long long)sqlite3_column_int64(st, 0));
			bad = 1;
			break;
		}
		vr->vr_points++;
		if (cp.cp_kind[0] != 'p')
			continue;
		if (central) {
			signed_anchor |= have_anchor && cp.cp_seq ==
			    anchor_seq && memcmp(cp.cp_hash, anchor, 32) == 0;
			pruned = anchor_seq;
		} else if (cp.cp_seq >= pruned) {
			pruned = cp.cp_seq;
			signed_anchor = have_anchor && cp.cp_seq == anchor_seq &&
			    memcmp(cp.cp_hash, anchor, 32) == 0;
		}
	}
	sqlite3_finalize(st);
	if (!bad && have_anchor && !signed_anchor) {
		fprintf(stderr, "the chain's anchor (place %lld) is not %s: "
		    "records were deleted behind a forged anchor\n",
		    (long long)anchor_seq, central ? "a signed prune" :
		    "the newest signed prune");
		bad = 1;
	}
	/* Every checkpoint against the records it names. */
	if (!bad && sqlite3_prepare_v2(db, "SELECT kind, seq, hash FROM "
	    "checkpoints WHERE kind = 'checkpoint' ORDER BY seq", -1, &st,
	    NULL) == SQLITE_OK) {
		while (!bad && sqlite3_step(st) == SQLITE_ROW) {
			memset(&cp, 0, sizeof(cp));
			cp.cp_kind = "checkpoint";
			cp.cp_seq = sqlite3_column_int64(st, 1);
			memcpy(cp.cp_hash, sqlite3_column_blob(st, 2), 32);
			bad = audit_check_point(db, &cp, pruned, "");
		}
		sqlite3_finalize(st);
	}
	if (!bad && ext != NULL)
		bad = audit_verify_external(db, key, ext, pruned,
		    &vr->vr_outside);
	/*
	 * Rows a restart completed from a crashed run's open rows: their
	 * fields are what the database held then, which no signature from
	 * before the crash covers. Said, not failed.
	 */
	if (!bad && sqlite3_prepare_v2(db, "SELECT count(*) FROM records WHERE "
	    "close_reason IN ('gateway restarted', 'proxy restarted')", -1,
	    &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			vr->vr_restarted = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return (bad);
}

/*
 * socksctl audit verify [--pubkey FILE] [--checkpoints FILE] [--central
 * [--node NAME]]: this log (audit_verify_db), or with --central each
 * node's copy in the fleet's central store (cmd_central.c).
 */
int
audit_verify(struct ctl *ctl, struct args *a)
{
	struct verify_result	 vr;
	char			 keypath[PATH_MAX], pubpath[PATH_MAX];
	char			 fp[EVIDENCE_FP_LEN], *cause = NULL;
	const char		*opt, *pub = NULL, *ext = NULL, *node = NULL;
	sqlite3			*db;
	EVP_PKEY		*key;
	int			 bad, central = 0;

	while ((opt = args_next(a)) != NULL) {
		if (strcmp(opt, "--pubkey") == 0)
			pub = args_value(a, opt);
		else if (strcmp(opt, "--checkpoints") == 0)
			ext = args_value(a, opt);
		else if (strcmp(opt, "--central") == 0)
			central = 1;
		else if (strcmp(opt, "--node") == 0)
			node = args_value(a, opt);
		else
			ctl_usage_error("audit verify: unknown option %s", opt);
	}
	if (central) {
		if (ext != NULL)
			ctl_usage_error("audit verify --central: --checkpoints "
			    "is for one node's own log");
		if (pub != NULL && node == NULL)
			ctl_usage_error("audit verify --central --pubkey FILE: "
			    "the key of one node (--node NAME)");
		return (central_verify(ctl, node, pub));
	}
	if (node != NULL)
		ctl_usage_error("audit verify --node: with --central");
	db = audit_db(ctl);
	evidence_paths(ctl->ctl_conf->c_audit_db, keypath, pubpath,
	    sizeof(keypath));
	if ((key = evidence_pubkey_load(pub != NULL ? pub : pubpath,
	    &cause)) == NULL)
		ctl_error("%s (the public key: --pubkey FILE)", cause != NULL ?
		    cause : "out of memory");
	evidence_fingerprint(key, fp);
	bad = audit_verify_db(db, key, ext, 0, &vr);
	if (!bad && vr.vr_restarted > 0 && !ctl->ctl_json)
		printf("note: %lld records were completed at a restart from "
		    "the open rows a crashed run left; their fields are as the "
		    "database held them then, covered by no earlier "
		    "signature\n", (long long)vr.vr_restarted);
	if (!bad && pub == NULL && !ctl->ctl_json)
		printf("note: the public key beside the database was used; "
		    "whoever can write there can replace it: pin a copy with "
		    "--pubkey\n");
	EVP_PKEY_free(key);
	sqlite3_close(db);
	if (bad)
		return (1);
	if (ctl->ctl_json)
		printf("{\"verified\": %lld, \"checkpoints\": %lld, "
		    "\"external_checkpoints\": %lld, \"key\": \"%s\", "
		    "\"completed_at_restart\": %lld, \"pinned_key\": %s, "
		    "\"intact\": true}\n", (long long)vr.vr_records,
		    (long long)vr.vr_points, (long long)vr.vr_outside, fp,
		    (long long)vr.vr_restarted, pub != NULL ? "true" : "false");
	else
		printf("%lld records verified, %lld signed checkpoints (key %s)"
		    "%s: the chain is intact\n", (long long)vr.vr_records,
		    (long long)vr.vr_points, fp, ext != NULL ?
		    ", and those kept elsewhere" : "");
	return (0);
}
