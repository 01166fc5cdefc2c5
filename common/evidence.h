/*
 * evidence.h: Ed25519-signed checkpoints of the audit chain; signed by
 * auditd, verified by socksctl audit verify.
 */
#ifndef EVIDENCE_H
#define EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#define EVIDENCE_SIG_LEN	64
#define EVIDENCE_FP_LEN		72

struct checkpoint {
	const char		*cp_kind;	/* "checkpoint" or "prune" */
	int64_t			 cp_seq;
	unsigned char		 cp_hash[32];
	int64_t			 cp_time_ms;
};

typedef struct evp_pkey_st EVP_PKEY;
void	 evidence_hex(const unsigned char *, size_t, char *);
int	 evidence_unhex(const char *, unsigned char *, size_t);
int	 evidence_sign(EVP_PKEY *, const struct checkpoint *,
	    unsigned char [EVIDENCE_SIG_LEN]);
int	 evidence_verify(EVP_PKEY *, const struct checkpoint *,
	    const unsigned char *, size_t);
void	 evidence_fingerprint(EVP_PKEY *, char [EVIDENCE_FP_LEN]);
EVP_PKEY *evidence_pubkey_load(const char *, char **);
EVP_PKEY *evidence_key(const char *, const char *, char **);
void	 evidence_paths(const char *, char *, char *, size_t);

#endif
