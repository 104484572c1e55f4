// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Randomized model test: over a million operations (alloc, realloc with
 * every flag combination, free, size, validate, walk, compact, bad frees)
 * on growable and fixed heaps, checked against a shadow model of every live
 * block (size and contents) at every step.
 *
 *   model_test [SEED [OPS]]      (or HEAPDEV_SEED / HEAPDEV_OPS)
 *
 * The seed is printed so that a failure can be replayed.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "t.h"

#define SLOTS		2048
#define MiB		(1UL << 20)

struct slot {
	unsigned char *p;
	size_t n;
	uint8_t tag;
};

struct model {
	HANDLE h;
	const char *name;
	bool fixed;
	size_t max_block;
	struct slot s[SLOTS];
	size_t live, bytes;
	unsigned long ops, fails, nomem;
	unsigned char *last_freed;
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_below(size_t n)
{
	return n ? rnd() % n : 0;
}

static unsigned char pat(uint8_t tag, size_t i)
{
	return (unsigned char)(tag + i * 31 + (i >> 8));
}

static void fill(struct slot *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		s->p[i] = pat(s->tag, i);
}

/* Whether the first @n bytes of @p carry slot @s's pattern. */
static bool check_pat(const unsigned char *p, const struct slot *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != pat(s->tag, i))
			return false;
	return true;
}

static bool zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool fail(struct model *m, const char *what, size_t a, size_t b)
{
	if (m->fails++ < 10)
		t_diag("%s: op %lu: %s (%zu, %zu)", m->name, m->ops, what, a, b);
	return false;
}

/* A size: mostly small, some medium, rarely large. */
static size_t rnd_size(const struct model *m)
{
	unsigned int r = rnd_below(10000);
	size_t n;

	if (r < 7000)
		n = rnd_below(r < 3000 ? 64 : 600);
	else if (r < 9700)
		n = rnd_below(20000);
	else if (r < 9995)
		n = rnd_below(300000);
	else
		n = MiB + rnd_below(2 * MiB);
	return n > m->max_block ? rnd_below(m->max_block) : n;
}

/* Flags of a call: zeroing, user bits, per-call HEAP_NO_SERIALIZE. */
static DWORD rnd_flags(void)
{
	DWORD f = 0;

	if (rnd_below(3) == 0)
		f |= HEAP_ZERO_MEMORY;
	if (rnd_below(8) == 0)
		f |= 0x200;
	if (rnd_below(4) == 0)
		f |= HEAP_NO_SERIALIZE;
	return f;
}

static bool op_alloc(struct model *m, struct slot *s)
{
	DWORD f = rnd_flags();
	size_t n = rnd_size(m);

	SetLastError(0);
	m->last_freed = NULL;	/* its address may be handed out again */
	s->p = HeapAlloc(m->h, f, n);
	if (!s->p) {
		if (!m->fixed && n < 64 * MiB)
			return fail(m, "HeapAlloc failed on a growable heap", n,
				    GetLastError());
		if (GetLastError() != ERROR_NOT_ENOUGH_MEMORY)
			return fail(m, "HeapAlloc failure without "
				    "ERROR_NOT_ENOUGH_MEMORY", n,
				    GetLastError());
		m->nomem++;
		return true;
	}
	if ((uintptr_t)s->p & 15)
		return fail(m, "misaligned block", (uintptr_t)s->p, n);
	if (HeapSize(m->h, 0, s->p) != n)
		return fail(m, "HeapSize after HeapAlloc", n,
			    HeapSize(m->h, 0, s->p));
	if ((f & HEAP_ZERO_MEMORY) && !zero(s->p, n))
		return fail(m, "HEAP_ZERO_MEMORY block not zero", n, 0);
	s->n = n;
	s->tag = (uint8_t)rnd();
	fill(s);
	m->live++;
	m->bytes += n;
	return true;
}

static bool op_free(struct model *m, struct slot *s)
{
	if (!check_pat(s->p, s, s->n))
		return fail(m, "contents changed before free", s->n, 0);
	if (!HeapFree(m->h, rnd_below(4) ? 0 : HEAP_NO_SERIALIZE, s->p))
		return fail(m, "HeapFree of a live block", s->n, GetLastError());
	if (HeapValidate(m->h, 0, s->p))
		return fail(m, "freed block still valid", s->n, 0);
	m->last_freed = s->p;
	m->live--;
	m->bytes -= s->n;
	s->p = NULL;
	return true;
}

static bool op_realloc(struct model *m, struct slot *s)
{
	static const DWORD fl[] = {
		0, HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY,
		HEAP_ZERO_MEMORY | HEAP_REALLOC_IN_PLACE_ONLY,
	};
	DWORD f = fl[rnd_below(4)] | (rnd_below(4) ? 0 : HEAP_NO_SERIALIZE);
	size_t n = rnd_below(4) ? rnd_size(m) : s->n + rnd_below(64) -
		   (s->n > 32 ? 32 : s->n);
	size_t keep = n < s->n ? n : s->n;
	unsigned char *q;

	SetLastError(0);
	m->last_freed = NULL;
	q = HeapReAlloc(m->h, f, s->p, n);
	if (!q) {
		if (GetLastError() != ERROR_NOT_ENOUGH_MEMORY)
			return fail(m, "HeapReAlloc failure without "
				    "ERROR_NOT_ENOUGH_MEMORY", n,
				    GetLastError());
		if (!(f & HEAP_REALLOC_IN_PLACE_ONLY) && !m->fixed &&
		    n < 64 * MiB)
			return fail(m, "HeapReAlloc failed on a growable heap",
				    s->n, n);
		if (HeapSize(m->h, 0, s->p) != s->n ||
		    !check_pat(s->p, s, s->n))
			return fail(m, "failed realloc changed the block", s->n,
				    n);
		m->nomem++;
		return true;
	}
	if ((f & HEAP_REALLOC_IN_PLACE_ONLY) && q != s->p)
		return fail(m, "IN_PLACE_ONLY moved the block", s->n, n);
	if (HeapSize(m->h, 0, q) != n)
		return fail(m, "HeapSize after HeapReAlloc", n,
			    HeapSize(m->h, 0, q));
	if (!check_pat(q, s, keep))
		return fail(m, "realloc lost contents", s->n, n);
	if ((f & HEAP_ZERO_MEMORY) && n > keep && !zero(q + keep, n - keep))
		return fail(m, "realloc did not zero the grown part", s->n, n);
	if (q != s->p && HeapValidate(m->h, 0, s->p))
		return fail(m, "old block valid after a moving realloc", s->n,
			    n);
	m->bytes += n - s->n;
	s->p = q;
	s->n = n;
	fill(s);
	return true;
}

static bool op_walk(struct model *m)
{
	PROCESS_HEAP_ENTRY e;
	size_t busy = 0, i;

	memset(&e, 0, sizeof(e));
	HeapLock(m->h);
	while (HeapWalk(m->h, &e)) {
		if (!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY))
			continue;
		busy++;
		for (i = 0; i < SLOTS; i++)
			if (m->s[i].p == e.lpData)
				break;
		if (i == SLOTS || (m->s[i].n != e.cbData &&
				   e.cbData != 0xFFFFFFFFu)) {
			HeapUnlock(m->h);
			return fail(m, "walk entry not in the model",
				    (uintptr_t)e.lpData, e.cbData);
		}
	}
	HeapUnlock(m->h);
	if (GetLastError() != ERROR_NO_MORE_ITEMS || busy != m->live)
		return fail(m, "walk busy count", busy, m->live);
	return true;
}

static bool op_check_all(struct model *m)
{
	HEAP_SUMMARY sum = { .cb = sizeof(sum) };
	size_t i;

	if (!HeapValidate(m->h, 0, NULL))
		return fail(m, "HeapValidate(NULL)", m->live, 0);
	for (i = 0; i < SLOTS; i++)
		if (m->s[i].p && (HeapSize(m->h, 0, m->s[i].p) != m->s[i].n ||
				  !check_pat(m->s[i].p, &m->s[i], m->s[i].n)))
			return fail(m, "block changed", i, m->s[i].n);
	if (!HeapSummary(m->h, 0, &sum) || sum.cbAllocated != m->bytes)
		return fail(m, "HeapSummary cbAllocated", sum.cbAllocated,
			    m->bytes);
	return true;
}

/* Invalid operations that must be refused without harm. */
static bool op_bad(struct model *m, struct slot *s)
{
	if (m->last_freed && HeapFree(m->h, 0, m->last_freed))
		return fail(m, "double free accepted", 0, 0);
	if (s->p && HeapFree(m->h, 0, s->p + 16))
		return fail(m, "interior free accepted", s->n, 0);
	if (s->p && HeapSize(m->h, 0, s->p + 1) != (SIZE_T)-1)
		return fail(m, "HeapSize of an interior pointer", s->n, 0);
	return true;
}

static bool step(struct model *m)
{
	struct slot *s = &m->s[rnd_below(SLOTS)];
	unsigned int r = rnd_below(1000);

	m->ops++;
	if (!s->p)
		return r < 980 ? op_alloc(m, s) : op_bad(m, s);
	if (r < 380)
		return op_free(m, s);
	if (r < 700)
		return op_realloc(m, s);
	if (r < 850)
		return HeapSize(m->h, 0, s->p) == s->n ? true :
		       fail(m, "HeapSize", s->n, HeapSize(m->h, 0, s->p));
	if (r < 990)
		return HeapValidate(m->h, 0, s->p) &&
		       check_pat(s->p, s, s->n) ? true :
		       fail(m, "HeapValidate/contents of a live block", s->n,
			    0);
	if (r < 996)
		return op_bad(m, s);
	m->last_freed = NULL;
	return HeapCompact(m->h, 0) || GetLastError() == NO_ERROR ? true :
	       fail(m, "HeapCompact", 0, 0);
}

/* run() flag: large blocks committed lazily (heapdev_set_lazy_commit). */
#define MODEL_LAZY	0x80000000u

static void run(const char *name, DWORD flags, SIZE_T initial, SIZE_T max,
		unsigned long ops)
{
	struct model *m = calloc(1, sizeof(*m));
	unsigned long i;
	bool ok = true;

	m->name = name;
	m->fixed = max != 0;
	m->max_block = m->fixed ? (max < 0xFFFF0 ? max : 0xFFFF0) : 4 * MiB;
	m->h = HeapCreate(flags & ~MODEL_LAZY, initial, max);
	if (!m->h || ((flags & MODEL_LAZY) &&
		      heapdev_set_lazy_commit((struct heapdev_heap *)m->h, 1))) {
		T_OK(0, "%s: HeapCreate", name);
		free(m);
		return;
	}
	for (i = 0; i < ops && ok; i++) {
		ok = step(m);
		if (ok && i % 20000 == 19999)
			ok = op_check_all(m);
		if (ok && i % 100000 == 99999)
			ok = op_walk(m);
	}
	ok = ok && op_check_all(m) && op_walk(m);
	T_OK(ok, "%s: %lu operations match the model (%lu refused for lack "
	     "of memory, %zu live blocks at the end)", name, m->ops, m->nomem,
	     m->live);
	T_OK(HeapDestroy(m->h), "%s: destroyed with its live blocks", name);
	free(m);
}

int main(int argc, char **argv)
{
	const char *seed_s = argc > 1 ? argv[1] : getenv("HEAPDEV_SEED");
	const char *ops_s = argc > 2 ? argv[2] : getenv("HEAPDEV_OPS");
	uint64_t seed = seed_s ? strtoull(seed_s, NULL, 0) : 20240607;
	unsigned long ops = ops_s ? strtoul(ops_s, NULL, 0) : 1000000;

	t_verbose = 1;
	printf("# model test, seed %llu (override: model_test SEED [OPS] or "
	       "HEAPDEV_SEED), %lu operations\n", (unsigned long long)seed,
	       ops);
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	run("growable heap", 0, 0, 0, ops * 3 / 10);
	run("growable heap, lazy commit", MODEL_LAZY, 0, 0, ops / 10);
	run("growable NO_SERIALIZE heap", HEAP_NO_SERIALIZE, 0, 0,
	    ops * 2 / 10);
	run("fixed 8 MiB heap", 0, 1 * MiB, 8 * MiB, ops * 25 / 100);
	run("fixed 256 KiB heap", 0, 0, 256 * 1024, ops * 15 / 100);
	return t_done();
}
