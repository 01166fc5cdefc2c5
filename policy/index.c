/*
 * index.c: the data structures a snapshot is made of: a pool of bitsets,
 * a string hash for users and groups, a hash of names keyed from their
 * last byte, and binary tries for address prefixes. All are built once by
 * compile.c and only read afterwards.
 */
#include <stdlib.h>
#include <string.h>

#include "policy_int.h"

/* Bitsets --------------------------------------------------------------- */

/* A new all-zero bitset; its index stays valid as the pool grows. */
int32_t
bits_new(struct policy *p)
{
	uint64_t	*pool;
	size_t		 cap;

	if (p->p_nbits == p->p_bitscap) {
		cap = p->p_bitscap ? p->p_bitscap * 2 : 64;
		if (cap > INT32_MAX / 2 ||
		    (pool = reallocarray(p->p_pool, cap * p->p_words,
		    sizeof(*pool))) == NULL)
			return (-1);
		p->p_pool = pool;
		p->p_bitscap = cap;
	}
	memset(p->p_pool + p->p_nbits * p->p_words, 0,
	    p->p_words * sizeof(uint64_t));
	return ((int32_t)p->p_nbits++);
}

int32_t
bits_copy(struct policy *p, int32_t from)
{
	int32_t	 b;

	if ((b = bits_new(p)) == -1)
		return (-1);
	memcpy(bits_at(p, b), bits_at(p, from), p->p_words * sizeof(uint64_t));
	return (b);
}

void
bits_set(struct policy *p, int32_t b, size_t rule)
{
	bits_at(p, b)[rule / 64] |= (uint64_t)1 << (rule % 64);
}

void
bits_or(struct policy *p, int32_t into, int32_t from)
{
	uint64_t	*d = bits_at(p, into);
	const uint64_t	*s = bits_at(p, from);
	size_t		 i;

	for (i = 0; i < p->p_words; i++)
		d[i] |= s[i];
}

/* String map ------------------------------------------------------------ */

static uint64_t
str_hash(const char *s)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return (h);
}

static int
strmap_grow(struct strmap *m)
{
	struct strmap_entry	*old = m->sm_slots, *slots;
	size_t			 oldn = m->sm_mask ? m->sm_mask + 1 : 0;
	size_t			 n = oldn ? oldn * 2 : 16, i, j;

	if ((slots = calloc(n, sizeof(*slots))) == NULL)
		return (-1);
	for (i = 0; i < oldn; i++) {
		if (old[i].se_key == NULL)
			continue;
		for (j = str_hash(old[i].se_key) & (n - 1);
		    slots[j].se_key != NULL; j = (j + 1) & (n - 1))
			;
		slots[j] = old[i];
	}
	free(old);
	m->sm_slots = slots;
	m->sm_mask = n - 1;
	return (0);
}

/* Finds or adds key; a new entry has no bitset (-1). */
int
strmap_put(struct strmap *m, const char *key, struct strmap_entry **out)
{
	size_t	 i;

	if ((m->sm_count + 1) * 2 > (m->sm_mask ? m->sm_mask + 1 : 0) &&
	    strmap_grow(m) == -1)
		return (-1);
	for (i = str_hash(key) & m->sm_mask; m->sm_slots[i].se_key != NULL;
	    i = (i + 1) & m->sm_mask) {
		if (strcmp(m->sm_slots[i].se_key, key) == 0) {
			*out = &m->sm_slots[i];
			return (0);
		}
	}
	if ((m->sm_slots[i].se_key = strdup(key)) == NULL)
		return (-1);
	m->sm_slots[i].se_bits = -1;
	m->sm_slots[i].se_flag = 0;
	m->sm_count++;
	*out = &m->sm_slots[i];
	return (0);
}

const struct strmap_entry *
strmap_get(const struct strmap *m, const char *key)
{
	size_t	 i;

	if (m->sm_mask == 0)
		return (NULL);
	for (i = str_hash(key) & m->sm_mask; m->sm_slots[i].se_key != NULL;
	    i = (i + 1) & m->sm_mask)
		if (strcmp(m->sm_slots[i].se_key, key) == 0)
			return (&m->sm_slots[i]);
	return (NULL);
}

void
strmap_free(struct strmap *m)
{
	size_t	 i;

	for (i = 0; m->sm_mask && i <= m->sm_mask; i++)
		free(m->sm_slots[i].se_key);
	free(m->sm_slots);
	memset(m, 0, sizeof(*m));
}

/* Names ----------------------------------------------------------------- */

/*
 * Names are hashed from their last byte to their first, so the hash of
 * every suffix of a name falls out of one right-to-left walk: decide.c
 * looks up "com", "example.com", "www.example.com" as it goes.
 */
uint64_t
name_hash_step(uint64_t h, unsigned char ch)
{
	return ((h ^ ch) * 0x100000001b3ULL);
}

static uint64_t
name_hash(const char *s, size_t len)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	while (len > 0)
		h = name_hash_step(h, (unsigned char)s[--len]);
	return (h);
}

static uint64_t
names_slot(uint64_t hash, size_t index)
{
	return ((hash & 0xffffffff00000000ULL) | (uint64_t)(index + 1));
}

static int
names_grow(struct name_index *nx)
{
	size_t		 oldn = nx->nx_mask ? nx->nx_mask + 1 : 0;
	size_t		 n = oldn ? oldn * 2 : 1024, i, j;
	uint64_t	*slots;

	if ((slots = calloc(n, sizeof(*slots))) == NULL)
		return (-1);
	for (i = 0; i < nx->nx_count; i++) {
		for (j = nx->nx_entries[i].ne_hash & (n - 1); slots[j] != 0;
		    j = (j + 1) & (n - 1))
			;
		slots[j] = names_slot(nx->nx_entries[i].ne_hash, i);
	}
	free(nx->nx_slots);
	nx->nx_slots = slots;
	nx->nx_mask = n - 1;
	return (0);
}

const struct name_entry *
names_get(const struct name_index *nx, uint64_t h, const char *s, size_t len)
{
	const struct name_entry	*e;
	size_t			 i;

	if (nx->nx_mask == 0)
		return (NULL);
	for (i = h & nx->nx_mask; nx->nx_slots[i] != 0;
	    i = (i + 1) & nx->nx_mask) {
		if ((nx->nx_slots[i] ^ h) >> 32 != 0)
			continue;
		e = &nx->nx_entries[(nx->nx_slots[i] & 0xffffffff) - 1];
		if (e->ne_hash == h && e->ne_len == len &&
		    memcmp(nx->nx_strs + e->ne_str, s, len) == 0)
			return (e);
	}
	return (NULL);
}

/* Finds or adds name (canonical, no "*."); a new one has no bitsets. */
int
names_put(struct name_index *nx, const char *s, struct name_entry **out)
{
	struct name_entry	*e;
	size_t			 len = strlen(s), cap;
	uint64_t		 h = name_hash(s, len);
	void			*np;

	if ((e = (struct name_entry *)names_get(nx, h, s, len)) != NULL) {
		*out = e;
		return (0);
	}
	if ((nx->nx_count + 1) * 2 > (nx->nx_mask ? nx->nx_mask + 1 : 0) &&
	    names_grow(nx) == -1)
		return (-1);
	if (nx->nx_count == nx->nx_cap) {
		cap = nx->nx_cap ? nx->nx_cap * 2 : 1024;
		if ((np = reallocarray(nx->nx_entries, cap,
		    sizeof(*nx->nx_entries))) == NULL)
			return (-1);
		nx->nx_entries = np;
		nx->nx_cap = cap;
	}
	if (nx->nx_strlen + len > nx->nx_strcap) {
		cap = nx->nx_strcap ? nx->nx_strcap * 2 : 16384;
		while (cap < nx->nx_strlen + len)
			cap *= 2;
		if (cap > UINT32_MAX || (np = realloc(nx->nx_strs, cap)) ==
		    NULL)
			return (-1);
		nx->nx_strs = np;
		nx->nx_strcap = cap;
	}
	e = &nx->nx_entries[nx->nx_count];
	memset(e, 0, sizeof(*e));
	e->ne_hash = h;
	e->ne_str = (uint32_t)nx->nx_strlen;
	e->ne_len = (uint16_t)len;
	e->ne_exact = e->ne_suffix = -1;
	memcpy(nx->nx_strs + nx->nx_strlen, s, len);
	nx->nx_strlen += len;
	nx->nx_count++;
	{
		size_t	 i;

		for (i = h & nx->nx_mask; nx->nx_slots[i] != 0;
		    i = (i + 1) & nx->nx_mask)
			;
		nx->nx_slots[i] = names_slot(h, nx->nx_count - 1);
	}
	*out = e;
	return (0);
}

void
names_free(struct name_index *nx)
{
	free(nx->nx_slots);
	free(nx->nx_entries);
	free(nx->nx_strs);
	memset(nx, 0, sizeof(*nx));
}

/* Tries ----------------------------------------------------------------- */

static int
trie_node_new(struct trie *t, uint32_t *out)
{
	struct trie_node	*n;
	size_t			 cap;

	if (t->t_count == t->t_cap) {
		cap = t->t_cap ? t->t_cap * 2 : 256;
		if (cap > UINT32_MAX || (n = reallocarray(t->t_nodes, cap,
		    sizeof(*n))) == NULL)
			return (-1);
		t->t_nodes = n;
		t->t_cap = cap;
	}
	n = &t->t_nodes[t->t_count];
	n->tn_child[0] = n->tn_child[1] = 0;
	n->tn_payload = -1;
	*out = (uint32_t)t->t_count++;
	return (0);
}

/* The node for prefix addr/len, made as needed. */
int
trie_insert(struct trie *t, const uint8_t *addr, int len, uint32_t *out)
{
	uint32_t	 node = 0, next;
	int		 i, bit;

	if (t->t_count == 0 && trie_node_new(t, &node) == -1)
		return (-1);
	for (i = 0; i < len; i++) {
		bit = (addr[i / 8] >> (7 - i % 8)) & 1;
		if ((next = t->t_nodes[node].tn_child[bit]) == 0) {
			if (trie_node_new(t, &next) == -1)
				return (-1);
			t->t_nodes[node].tn_child[bit] = next;
		}
		node = next;
	}
	*out = node;
	return (0);
}

void
trie_free(struct trie *t)
{
	free(t->t_nodes);
	memset(t, 0, sizeof(*t));
}

/* Prefix tables ----------------------------------------------------------- */

static void
px_key(const uint8_t *addr, int len, uint64_t *hi, uint64_t *lo)
{
	uint64_t	 h = 0, l = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		h = h << 8 | addr[i];
	for (i = 8; i < 16; i++)
		l = l << 8 | addr[i];
	*hi = len >= 64 ? h : len == 0 ? 0 : h & (~0ULL << (64 - len));
	*lo = len <= 64 ? 0 : len >= 128 ? l : l & (~0ULL << (128 - len));
}

static size_t
px_hash(uint64_t hi, uint64_t lo)
{
	uint64_t	 h = hi * 0x9e3779b97f4a7c15ULL ^ lo * 0xc2b2ae3d27d4eb4fULL;

	return ((size_t)(h ^ h >> 29));
}

/* The payload of the prefix of pl's length that holds addr, or -1. */
int32_t
px_find(const struct plen *pl, const uint8_t *addr)
{
	const struct plen_slot	*s;
	uint64_t		 hi, lo;
	size_t			 i;

	px_key(addr, pl->pl_len, &hi, &lo);
	for (i = px_hash(hi, lo) & pl->pl_mask;; i = (i + 1) & pl->pl_mask) {
		s = &pl->pl_slots[i];
		if (s->ps_payload == -1)
			return (-1);
		if (s->ps_hi == hi && s->ps_lo == lo)
			return (s->ps_payload);
	}
}

struct px_walk {
	uint32_t	 node;
	int		 depth;
	uint8_t		 addr[16];
};

/* Lays out the prefixes of trie t (addresses of bits bits) by length. */
int
px_build(struct prefix_index *px, const struct trie *t, int bits)
{
	struct px_walk	*stack = NULL, w, c;
	size_t		 count[129] = { 0 }, n = 0, cap, i;
	struct plen	*pl;
	struct plen_slot *s;
	uint64_t	 hi, lo;
	int		 pass, len, b;

	memset(px, 0, sizeof(*px));
	if (t->t_count == 0)
		return (0);
	if ((stack = calloc((size_t)bits + 2, sizeof(*stack))) == NULL)
		return (-1);
	/* Pass 0 counts the prefixes of each length, pass 1 places them. */
	for (pass = 0; pass < 2; pass++) {
		n = 0;
		memset(&stack[n++], 0, sizeof(*stack));
		while (n > 0) {
			w = stack[--n];
			if (t->t_nodes[w.node].tn_payload != -1) {
				if (pass == 0)
					count[w.depth]++;
				else {
					for (i = 0; (int)i < px->px_nlens &&
					    px->px_lens[i].pl_len != w.depth; i++)
						;
					pl = &px->px_lens[i];
					px_key(w.addr, w.depth, &hi, &lo);
					for (i = px_hash(hi, lo) & pl->pl_mask;
					    pl->pl_slots[i].ps_payload != -1;
					    i = (i + 1) & pl->pl_mask)
						;
					s = &pl->pl_slots[i];
					s->ps_hi = hi;
					s->ps_lo = lo;
					s->ps_payload =
					    t->t_nodes[w.node].tn_payload;
				}
			}
			for (b = 0; b < 2 && w.depth < bits; b++) {
				if (t->t_nodes[w.node].tn_child[b] == 0)
					continue;
				c = w;
				c.node = t->t_nodes[w.node].tn_child[b];
				c.depth = w.depth + 1;
				if (b)
					c.addr[w.depth / 8] |=
					    (uint8_t)(0x80 >> (w.depth % 8));
				stack[n++] = c;
			}
		}
		if (pass == 1)
			break;
		for (len = 0; len <= bits; len++)
			if (count[len] > 0)
				px->px_nlens++;
		if ((px->px_lens = calloc((size_t)px->px_nlens,
		    sizeof(*px->px_lens))) == NULL)
			goto fail;
		for (i = 0, len = 0; len <= bits; len++) {
			if (count[len] == 0)
				continue;
			pl = &px->px_lens[i++];
			pl->pl_len = len;
			for (cap = 4; cap < count[len] * 2; cap *= 2)
				;
			pl->pl_mask = cap - 1;
			if ((pl->pl_slots = malloc(cap *
			    sizeof(*pl->pl_slots))) == NULL)
				goto fail;
			for (b = 0; (size_t)b < cap; b++)
				pl->pl_slots[b].ps_payload = -1;
		}
	}
	free(stack);
	return (0);
fail:
	free(stack);
	px_free(px);
	return (-1);
}

void
px_free(struct prefix_index *px)
{
	int	 i;

	for (i = 0; i < px->px_nlens; i++)
		free(px->px_lens[i].pl_slots);
	free(px->px_lens);
	memset(px, 0, sizeof(*px));
}

size_t
px_memory(const struct prefix_index *px)
{
	size_t	 m = 0;
	int	 i;

	for (i = 0; i < px->px_nlens; i++)
		m += (px->px_lens[i].pl_mask + 1) * sizeof(struct plen_slot);
	return (m);
}
