/*
 * evidence.c: signed checkpoints of the audit chain (Ed25519, OpenSSL
 * libcrypto), shared by the writer (signing) and socksctl (verifying).
 *
 * DESIGN. The hash chain shows an edited or deleted row only to someone
 * who cannot recompute it; anyone who can write audit.db can. So every
 * 10,000 records or 60 s, and at shutdown, the writer signs the chain's
 * head (its place, its hash, the time) with a key that only the writer's
 * process holds, and pruning signs where it cut. Verifying needs only the
 * public key, which the admin pins elsewhere: a row edited and the chain
 * recomputed, rows deleted behind a forged pruning anchor, and rows
 * removed before the last checkpoint all contradict a signature.
 *
 * The signed message is canonical text, one field a line:
 *
 *	socksgw-audit-checkpoint 1
 *	kind checkpoint|prune
 *	seq N
 *	hash HEX
 *	time_ms N
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "evidence.h"
#include "log.h"

void
evidence_hex(const unsigned char *b, size_t n, char *out)
{
	static const char	 digits[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
evidence_digit(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	return (-1);
}

/* HEX (lower case) of exactly 2n digits into b: 0, or -1. */
int
evidence_unhex(const char *hex, unsigned char *b, size_t n)
{
	size_t	 i;
	int	 hi, lo;

	if (strlen(hex) != 2 * n)
		return (-1);
	for (i = 0; i < n; i++) {
		if ((hi = evidence_digit(hex[2 * i])) == -1 ||
		    (lo = evidence_digit(hex[2 * i + 1])) == -1)
			return (-1);
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return (0);
}

static size_t
evidence_message(const struct checkpoint *cp, char *buf, size_t len)
{
	char	 hex[65];
	int	 n;

	evidence_hex(cp->cp_hash, 32, hex);
	n = snprintf(buf, len, "socksgw-audit-checkpoint 1\nkind %s\nseq %lld\n"
	    "hash %s\ntime_ms %lld\n", cp->cp_kind, (long long)cp->cp_seq, hex,
	    (long long)cp->cp_time_ms);
	return (n > 0 && (size_t)n < len ? (size_t)n : 0);
}

int
evidence_sign(EVP_PKEY *key, const struct checkpoint *cp,
    unsigned char sig[EVIDENCE_SIG_LEN])
{
	EVP_MD_CTX	*ctx;
	char		 msg[256];
	size_t		 mlen = evidence_message(cp, msg, sizeof(msg));
	size_t		 slen = EVIDENCE_SIG_LEN;
	int		 ok;

	if (mlen == 0 || (ctx = EVP_MD_CTX_new()) == NULL)
		return (-1);
	/* Ed25519 is one-shot: no digest of its own to name. */
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &slen, (const unsigned char *)msg,
	    mlen) == 1 && slen == EVIDENCE_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	return (ok ? 0 : -1);
}

/* 1 when sig is cp's signature under key, 0 when it is not. */
int
evidence_verify(EVP_PKEY *key, const struct checkpoint *cp,
    const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX	*ctx;
	char		 msg[256];
	size_t		 mlen = evidence_message(cp, msg, sizeof(msg));
	int		 ok;

	if (mlen == 0 || siglen != EVIDENCE_SIG_LEN ||
	    (ctx = EVP_MD_CTX_new()) == NULL)
		return (0);
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)msg,
	    mlen) == 1;
	EVP_MD_CTX_free(ctx);
	return (ok);
}

/* "SHA256:" and the hex SHA-256 of the raw public key. */
void
evidence_fingerprint(EVP_PKEY *key, char out[EVIDENCE_FP_LEN])
{
	unsigned char	 raw[32], md[32];
	size_t		 len = sizeof(raw);
	unsigned int	 mdlen = sizeof(md);

	snprintf(out, EVIDENCE_FP_LEN, "SHA256:?");
	if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 ||
	    EVP_Digest(raw, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return;
	memcpy(out, "SHA256:", 7);
	evidence_hex(md, 32, out + 7);
}

EVP_PKEY *
evidence_pubkey_load(const char *path, char **cause)
{
	EVP_PKEY	*key;
	FILE		*f;

	if ((f = fopen(path, "r")) == NULL) {
		if (asprintf(cause, "%s: %s", path, strerror(errno)) < 0)
			*cause = NULL;
		return (NULL);
	}
	key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL || EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(key);
		if (asprintf(cause, "%s: not an Ed25519 public key", path) < 0)
			*cause = NULL;
		return (NULL);
	}
	return (key);
}

/* Writes key (private or public) to path, created with mode. */
static int
evidence_write(const char *path, EVP_PKEY *key, int private, mode_t mode)
{
	FILE	*f;
	int	 fd, ok;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode)) == -1)
		return (-1);
	if (fchmod(fd, mode) == -1 || (f = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(path);
		return (-1);
	}
	ok = private ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL,
	    NULL) : PEM_write_PUBKEY(f, key);
	if (fclose(f) != 0 || !ok) {
		unlink(path);
		return (-1);
	}
	return (0);
}

/*
 * The signing key beside the audit database (audit.key, readable by its
 * owner only; audit.pub for verifiers), created on first use. Returns the
 * key, or NULL with *cause.
 */
EVP_PKEY *
evidence_key(const char *keypath, const char *pubpath, char **cause)
{
	EVP_PKEY_CTX	*kctx;
	EVP_PKEY	*key = NULL;
	char		 fp[EVIDENCE_FP_LEN];
	FILE		*f;

	if ((f = fopen(keypath, "r")) != NULL) {
		key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (key == NULL || EVP_PKEY_id(key) != EVP_PKEY_ED25519) {
			EVP_PKEY_free(key);
			if (asprintf(cause, "%s: not an Ed25519 private key",
			    keypath) < 0)
				*cause = NULL;
			return (NULL);
		}
		return (key);
	}
	if (errno != ENOENT) {
		if (asprintf(cause, "%s: %s", keypath, strerror(errno)) < 0)
			*cause = NULL;
		return (NULL);
	}
	if ((kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL)) == NULL ||
	    EVP_PKEY_keygen_init(kctx) != 1 ||
	    EVP_PKEY_keygen(kctx, &key) != 1) {
		EVP_PKEY_CTX_free(kctx);
		if (asprintf(cause, "%s: cannot make an Ed25519 key",
		    keypath) < 0)
			*cause = NULL;
		return (NULL);
	}
	EVP_PKEY_CTX_free(kctx);
	unlink(pubpath);	/* a public key of no private key is stale */
	if (evidence_write(keypath, key, 1, 0600) == -1 ||
	    evidence_write(pubpath, key, 0, 0644) == -1) {
		if (asprintf(cause, "%s: %s", keypath, strerror(errno)) < 0)
			*cause = NULL;
		EVP_PKEY_free(key);
		unlink(keypath);
		return (NULL);
	}
	evidence_fingerprint(key, fp);
	log_warnx("audit: signing key created: %s (public key %s, "
	    "fingerprint %s): keep a copy of the public key off this machine",
	    keypath, pubpath, fp);
	return (key);
}

/* audit.key and audit.pub beside the audit database at db. */
void
evidence_paths(const char *db, char *key, char *pub, size_t len)
{
	const char	*slash = strrchr(db, '/');
	int		 dir = slash != NULL ? (int)(slash - db + 1) : 0;

	snprintf(key, len, "%.*saudit.key", dir, db);
	snprintf(pub, len, "%.*saudit.pub", dir, db);
}
