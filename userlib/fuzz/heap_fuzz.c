// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libFuzzer harness: the input bytes are a program of heap operations on
 * up to four heaps, run against a shadow model that knows every live
 * block's heap, address, size and contents.  Any difference between what
 * the library does and what the model expects aborts (a crash for
 * libFuzzer).
 *
 * Operations: HeapCreate (growable or fixed, with flags, with or without
 * lazy commit of large blocks), HeapAlloc (sizes from 0 to 3 MiB and
 * impossible ones, with HEAP_ZERO_MEMORY,
 * HEAP_NO_SERIALIZE, HEAP_GENERATE_EXCEPTIONS and user bits), HeapReAlloc
 * (also IN_PLACE_ONLY and ZERO_MEMORY), HeapFree, HeapSize, HeapValidate,
 * HeapWalk (also with frees between its steps), HeapCompact, HeapLock and
 * HeapUnlock, HeapSetInformation/HeapQueryInformation, HeapSummary,
 * HeapDestroy with live blocks, the native heapdev_* calls, and bad
 * pointers (freed, interior, unaligned, foreign, wild, inside a heap's
 * reservation) and bad handles, which every call must refuse.
 *
 * The memfd backend is used (HEAPDEV_BACKEND=memfd, set in
 * LLVMFuzzerInitialize), so no kernel module is needed.
 *
 * Input format: a stream of records, one opcode byte (mod OP_COUNT) then
 * a fixed number of argument bytes for that opcode (fuzz/make_corpus.py
 * writes them); reading past the end gives zeros and ends the program.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#define NHEAPS		4
#define NSLOTS		32
#define NFREED		16
#define KiB		1024UL
#define MiB		(1024UL * 1024)
#define LIVE_CAP	(48 * MiB)	/* live bytes in all heaps */
#define FULL_CHECK	(4 * KiB)	/* bytes checked one by one */
#define MAX_CREATES	6		/* heaps created per input */

/*
 * The model's byte loops (fill, compare, zero check) are not the code
 * under test: without coverage instrumentation they run ~10 times faster.
 */
#define NO_COVERAGE	__attribute__((no_sanitize("coverage")))

/* A model difference: print it and abort, which libFuzzer reports. */
#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "heap_fuzz: %s:%d: %s: ", __FILE__,	\
			__LINE__, #cond);				\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
		abort();						\
	}								\
} while (0)

struct block {
	unsigned char *p;	/* NULL: slot empty */
	size_t n;
	uint8_t tag;
};

struct mheap {
	HANDLE h;		/* NULL: no heap in this slot */
	bool fixed;
	bool noser;
	bool gen;		/* created with HEAP_GENERATE_EXCEPTIONS */
	SIZE_T max;
	int locks;		/* HeapLock depth taken by this program */
	size_t bytes;
	struct block b[NSLOTS];
};

static struct {
	const uint8_t *p;
	size_t n;
} in;

static struct mheap heaps[NHEAPS];
static void *freed[NFREED];
static unsigned int nfreed;
static size_t live_bytes;
static unsigned int exc_count;
static bool ran;			/* the current record reached the library */
static unsigned long long executed[16], records, inputs;
static uint8_t tags;			/* pattern of the next block */
static bool trace;			/* HEAP_FUZZ_TRACE: print each record */
static unsigned int creates;		/* heaps created by this input */

static void print_stats(void);
static uint32_t exc_code;

static uint8_t g8(void)
{
	if (!in.n)
		return 0;
	in.n--;
	return *in.p++;
}

static uint16_t g16(void)
{
	uint16_t lo = g8();

	return (uint16_t)(lo | g8() << 8);
}

/* HEAP_GENERATE_EXCEPTIONS: record the exception and let the call fail. */
static void on_exception(const struct heapdev_exception *e)
{
	exc_count++;
	exc_code = e->code;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("HEAPDEV_BACKEND", "memfd", 1);
	heapdev_set_exception_handler(on_exception);
	if (getenv("HEAP_FUZZ_STATS"))
		atexit(print_stats);
	trace = getenv("HEAP_FUZZ_TRACE");
	return 0;
}

/* ---- the model ---- */

static NO_COVERAGE unsigned char pat(uint8_t tag, size_t i)
{
	return (unsigned char)(tag ^ (i * 13) ^ (i >> 9));
}

/*
 * The bytes of a block that carry its pattern: all of the first
 * FULL_CHECK, then every 4093rd, and the last 64 of the block.  The set
 * depends only on the position (and the block's size for its tail), so
 * that the first bytes a realloc keeps were all written before.
 */
static NO_COVERAGE size_t next_pos(size_t i, size_t n)
{
	size_t step;

	if (i < FULL_CHECK || i + 64 >= n)
		return i + 1;
	step = (i / 4093 + 1) * 4093;
	return step + 64 > n ? n - 64 : step;
}

static NO_COVERAGE void fill(struct block *b)
{
	size_t i;

	for (i = 0; i < b->n; i = next_pos(i, b->n))
		b->p[i] = pat(b->tag, i);
}

/*
 * Whether the first @n bytes of @p carry @b's pattern: the positions
 * fill() wrote for a block of @n bytes, and for the tail of a shorter
 * prefix (@n < b->n) only those it shares with the whole block.
 */
static NO_COVERAGE bool same(const unsigned char *p, const struct block *b,
				size_t n)
{
	size_t i, end = n < b->n && n > 64 ? n - 64 : n;

	for (i = 0; i < n; i = next_pos(i, n)) {
		if (i >= end && i >= FULL_CHECK && i % 4093 &&
		    i < (b->n > 64 ? b->n - 64 : 0))
			continue;
		if (p[i] != pat(b->tag, i))
			return false;
	}
	return true;
}

static NO_COVERAGE bool zero(const unsigned char *p, size_t from, size_t n)
{
	size_t i;

	for (i = from; i < n; i = next_pos(i, n))
		if (p[i])
			return false;
	return true;
}

/* The live block at @p in any heap, or NULL. */
static struct block *find_block(const void *p, struct mheap **mh)
{
	int i, j;

	for (i = 0; i < NHEAPS; i++)
		for (j = 0; j < NSLOTS; j++)
			if (heaps[i].b[j].p && heaps[i].b[j].p == p) {
				if (mh)
					*mh = &heaps[i];
				return &heaps[i].b[j];
			}
	return NULL;
}

/* A new block [p, p + n) must not overlap any live block. */
static void check_disjoint(const unsigned char *p, size_t n,
			   const struct block *self)
{
	size_t e = n ? n : 1;
	int i, j;

	for (i = 0; i < NHEAPS; i++) {
		for (j = 0; j < NSLOTS; j++) {
			const struct block *b = &heaps[i].b[j];
			size_t be = b->n ? b->n : 1;

			if (!b->p || b == self)
				continue;
			CHECK(p + e <= b->p || p >= b->p + be,
			      "%p+%zu overlaps live %p+%zu", (void *)p, n,
			      (void *)b->p, b->n);
		}
	}
}

static void check_block(struct mheap *m, const struct block *b)
{
	CHECK(HeapSize(m->h, 0, b->p) == b->n, "%p: %zu", (void *)b->p, b->n);
	CHECK(HeapValidate(m->h, 0, b->p), "%p", (void *)b->p);
	CHECK(same(b->p, b, b->n), "contents of %p+%zu changed",
	      (void *)b->p, b->n);
}

static void check_heap(struct mheap *m)
{
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	int j;

	CHECK(HeapValidate(m->h, 0, NULL), "heap %p", m->h);
	for (j = 0; j < NSLOTS; j++)
		if (m->b[j].p)
			check_block(m, &m->b[j]);
	CHECK(HeapSummary(m->h, 0, &s), "summary");
	CHECK(s.cbAllocated == m->bytes, "allocated %zu, model %zu",
	      (size_t)s.cbAllocated, m->bytes);
}

static void remember_freed(void *p)
{
	freed[nfreed++ % NFREED] = p;
}

static void drop(struct mheap *m, struct block *b)
{
	remember_freed(b->p);
	m->bytes -= b->n;
	live_bytes -= b->n;
	b->p = NULL;
}

static void adopt(struct mheap *m, struct block *b, unsigned char *p,
		  size_t n)
{
	b->p = p;
	b->n = n;
	b->tag = (uint8_t)(tags += 37);
	m->bytes += n;
	live_bytes += n;
	fill(b);
}

/* ---- decoding ---- */

static struct mheap *pick_heap(void)
{
	struct mheap *m = &heaps[g8() % NHEAPS];

	return m->h ? m : NULL;
}

static const SIZE_T huge_sizes[] = {
	(SIZE_T)-1, (SIZE_T)-1 - 7, (SIZE_T)-1 - 15, (SIZE_T)-1 - 4095,
	(SIZE_T)-1 / 2 + 1, (1ULL << 40) + 1, 1ULL << 41, 1ULL << 47,
};

/* A size: every range of the allocator and its boundaries. */
static SIZE_T pick_size(void)
{
	unsigned int sel = g8() % 16;
	unsigned int v = g16();

	switch (sel) {
	case 0:
		return 0;
	case 1: case 2: case 3: case 4: case 5:
		return v % 64;
	case 6: case 7: case 8:
		return v % 1024;
	case 9: case 10:
		return v % 16384;
	case 11:
		return 16376 + v % 64 - 32;		/* LFH limit */
	case 12:
		return (SIZE_T)v * 16;			/* medium */
	case 13:
		return (v & 1 ? 0xFD001 : 0xFFFF0) + (v >> 1) % 64 - 32;
	case 14:
		return MiB + (SIZE_T)v * 32;		/* large */
	default:
		return huge_sizes[v % (sizeof(huge_sizes) /
				       sizeof(huge_sizes[0]))];
	}
}

static bool huge(SIZE_T n)
{
	return n > (1ULL << 40);
}

/* Call flags from a byte. */
static DWORD pick_flags(uint8_t f, bool realloc)
{
	DWORD fl = 0;

	if (f & 1)
		fl |= HEAP_ZERO_MEMORY;
	if (f & 2)
		fl |= HEAP_NO_SERIALIZE;
	if (f & 4)
		fl |= HEAP_GENERATE_EXCEPTIONS;
	if ((f & 8) && realloc)
		fl |= HEAP_REALLOC_IN_PLACE_ONLY;
	if (f & 16)
		fl |= 0x200;			/* a user bit: ignored */
	return fl;
}

/* ---- operations ---- */

static void destroy_heap(struct mheap *m)
{
	HANDLE h = m->h;
	int j;

	for (j = 0; j < NSLOTS; j++)
		if (m->b[j].p) {
			live_bytes -= m->b[j].n;
			m->b[j].p = NULL;
		}
	while (m->locks > 0) {
		CHECK(HeapUnlock(h), "unlock before destroy");
		m->locks--;
	}
	CHECK(HeapDestroy(h), "HeapDestroy");
	memset(m, 0, sizeof(*m));
	/* The handle is dead until a new heap reuses the address. */
	SetLastError(0);
	CHECK(!HeapAlloc(h, 0, 16) && GetLastError() == ERROR_INVALID_HANDLE,
	      "alloc on a destroyed handle");
	SetLastError(0);
	CHECK(!HeapDestroy(h) && GetLastError() == ERROR_INVALID_HANDLE,
	      "double destroy");
	CHECK(!HeapValidate(h, 0, NULL), "validate of a destroyed heap");
}

static const SIZE_T fixed_sizes[] = {
	64 * KiB, 256 * KiB, 1 * MiB, 3 * MiB + 4096, 8 * MiB,
};

static void op_create(void)
{
	struct mheap *m = &heaps[g8() % NHEAPS];
	uint8_t f = g8();
	DWORD fl = 0;
	SIZE_T init = (SIZE_T)g8() * 4096, max = 0;

	/* Creation costs system calls: a few per input keep the rate up. */
	if (++creates > MAX_CREATES)
		return;
	ran = true;
	if (m->h)
		destroy_heap(m);
	if (f & 1)
		fl |= HEAP_NO_SERIALIZE;
	if (f & 2)
		fl |= HEAP_CREATE_ENABLE_EXECUTE;
	if (f & 4)
		fl |= HEAP_GENERATE_EXCEPTIONS;
	if (f & 8)
		fl |= HEAP_TAIL_CHECKING_ENABLED | HEAP_FREE_CHECKING_ENABLED;
	if (f & 16)
		max = fixed_sizes[(f >> 5) % 5];
	m->h = HeapCreate(fl, init, max);
	CHECK(m->h, "HeapCreate(%#x, %zu, %zu): %u", fl, (size_t)init,
	      (size_t)max, GetLastError());
	CHECK(((uintptr_t)m->h & 0xFFFF) == 0, "handle %p", m->h);
	/* Large blocks committed as a charge, pages on first touch. */
	if (f & 128)
		CHECK(!heapdev_set_lazy_commit((struct heapdev_heap *)m->h, 1),
		      "heapdev_set_lazy_commit");
	m->fixed = max != 0;
	m->max = max;
	m->noser = fl & HEAP_NO_SERIALIZE;
	m->gen = fl & HEAP_GENERATE_EXCEPTIONS;
	CHECK(HeapValidate(m->h, 0, NULL), "fresh heap");
}

static bool heap_empty(const struct mheap *m)
{
	int j;

	for (j = 0; j < NSLOTS; j++)
		if (m->b[j].p)
			return false;
	return true;
}

/*
 * What a failed allocation of @n bytes must look like: only a fixed heap
 * may run out (never an empty one for a block that fits its documented
 * overhead), a growable one only refuses impossible sizes.
 */
static void check_alloc_failure(struct mheap *m, SIZE_T n, DWORD fl,
				unsigned int exc_before, bool in_place)
{
	CHECK(GetLastError() == ERROR_NOT_ENOUGH_MEMORY, "last error %u",
	      GetLastError());
	CHECK(m->fixed || huge(n) || in_place,
	      "growable heap refused %zu bytes", (size_t)n);
	CHECK(!m->fixed || n >= 0xFFFF0 || in_place || !heap_empty(m) ||
	      n + 0xC00 > m->max, "empty fixed heap of %zu refused %zu",
	      (size_t)m->max, (size_t)n);
	if ((fl & HEAP_GENERATE_EXCEPTIONS) || m->gen)
		CHECK(exc_count == exc_before + 1 &&
		      exc_code == STATUS_NO_MEMORY, "no exception");
}

static void op_alloc(void)
{
	struct mheap *m = pick_heap();
	unsigned int slot = g8() % NSLOTS;
	DWORD fl = pick_flags(g8(), false);
	SIZE_T n = pick_size();
	unsigned int exc = exc_count;
	struct block *b;
	unsigned char *p;

	if (!m)
		return;
	b = &m->b[slot];
	if (b->p || (!huge(n) && live_bytes + n > LIVE_CAP))
		return;
	ran = true;
	SetLastError(0);
	p = HeapAlloc(m->h, fl, n);
	if (!p) {
		check_alloc_failure(m, n, fl, exc, false);
		return;
	}
	CHECK(!huge(n) && !(m->fixed && n >= 0xFFFF0), "%zu granted",
	      (size_t)n);
	CHECK(((uintptr_t)p & 15) == 0, "misaligned %p", (void *)p);
	CHECK(!(fl & HEAP_ZERO_MEMORY) || zero(p, 0, n), "not zeroed");
	check_disjoint(p, n, NULL);
	adopt(m, b, p, n);
	CHECK(HeapSize(m->h, 0, p) == n, "size of a new block");
}

/* The native API on the same heaps. */
static void op_native(void)
{
	struct mheap *m = pick_heap();
	struct block *b;
	unsigned int k = g8(), slot = g8() % NSLOTS;
	SIZE_T n = pick_size();
	unsigned char *p;
	size_t sz;

	if (!m)
		return;
	b = &m->b[slot];
	ran = true;
	switch (k % 3) {
	case 0:
		if (b->p || huge(n) || live_bytes + n > LIVE_CAP)
			return;
		p = heapdev_alloc((struct heapdev_heap *)m->h, n,
				  k & 8 ? HEAPDEV_ZERO : 0);
		if (!p) {
			CHECK(errno == ENOMEM && m->fixed, "native alloc of %zu",
		      (size_t)n);
			return;
		}
		CHECK(!(k & 8) || zero(p, 0, n), "not zeroed");
		check_disjoint(p, n, NULL);
		adopt(m, b, p, n);
		return;
	case 1:
		if (!b->p)
			return;
		CHECK(same(b->p, b, b->n), "contents before free");
		CHECK(!heapdev_free((struct heapdev_heap *)m->h, b->p, 0),
		      "native free");
		drop(m, b);
		return;
	default:
		if (!b->p)
			return;
		CHECK(!heapdev_size((struct heapdev_heap *)m->h, b->p, 0, &sz) &&
		      sz == b->n, "native size");
		CHECK(!heapdev_validate((struct heapdev_heap *)m->h, b->p, 0),
		      "native validate");
		return;
	}
}

static void op_free(void)
{
	struct mheap *m = pick_heap();
	unsigned int slot = g8() % NSLOTS;
	DWORD fl = g8() & 1 ? HEAP_NO_SERIALIZE : 0;
	struct block *b;
	void *p;

	if (!m || !m->b[slot].p)
		return;
	ran = true;
	b = &m->b[slot];
	p = b->p;
	CHECK(same(b->p, b, b->n), "contents before free of %p", p);
	CHECK(HeapFree(m->h, fl, p), "free of a live block: %u",
	      GetLastError());
	drop(m, b);
	if (!find_block(p, NULL))
		CHECK(!HeapValidate(m->h, 0, p), "freed block still valid");
}

static void op_realloc(void)
{
	struct mheap *m = pick_heap();
	unsigned int slot = g8() % NSLOTS;
	DWORD fl = pick_flags(g8(), true);
	SIZE_T n = pick_size();
	unsigned int exc = exc_count;
	struct block *b;
	unsigned char *q;
	size_t keep;

	if (!m || !m->b[slot].p)
		return;
	b = &m->b[slot];
	if (!huge(n) && n > b->n && live_bytes + (n - b->n) > LIVE_CAP)
		return;
	ran = true;
	keep = n < b->n ? n : b->n;
	SetLastError(0);
	q = HeapReAlloc(m->h, fl, b->p, n);
	if (!q) {
		check_alloc_failure(m, n, fl, exc,
				    fl & HEAP_REALLOC_IN_PLACE_ONLY);
		CHECK(HeapSize(m->h, 0, b->p) == b->n &&
		      same(b->p, b, b->n), "failed realloc changed the block");
		return;
	}
	CHECK(!huge(n) && !(m->fixed && n >= 0xFFFF0), "%zu granted",
	      (size_t)n);
	CHECK(!(fl & HEAP_REALLOC_IN_PLACE_ONLY) || q == b->p,
	      "IN_PLACE_ONLY moved the block");
	CHECK(((uintptr_t)q & 15) == 0, "misaligned %p", (void *)q);
	CHECK(same(q, b, keep), "realloc lost the contents");
	CHECK(!(fl & HEAP_ZERO_MEMORY) || zero(q, keep, n),
	      "grown part not zeroed");
	check_disjoint(q, n, b);
	CHECK(HeapSize(m->h, 0, q) == n, "size after realloc");
	if (q != b->p) {
		remember_freed(b->p);
		if (!find_block(b->p, NULL))
			CHECK(!HeapValidate(m->h, 0, b->p), "old block valid");
	}
	m->bytes += n - b->n;
	live_bytes += n - b->n;
	b->p = q;
	b->n = n;
	fill(b);
}

static void op_check(void)
{
	struct mheap *m = pick_heap();
	unsigned int slot = g8() % NSLOTS;

	if (!m)
		return;
	ran = true;
	if (slot == NSLOTS - 1) {
		check_heap(m);
		return;
	}
	if (m->b[slot].p)
		check_block(m, &m->b[slot]);
}

/*
 * A walk, under HeapLock or not; without the lock a block may be freed
 * between two steps (@churn), after which the walk must still end
 * cleanly.  Every busy entry must be a live block of the model, and a
 * walk without frees must see all of them.
 */
static void op_walk(void)
{
	struct mheap *m = pick_heap();
	uint8_t churn = g8();
	PROCESS_HEAP_ENTRY e;
	size_t busy = 0, steps = 0, live = 0;
	bool locked, churned = false;
	struct block *b;
	int j;

	if (!m)
		return;
	ran = true;
	locked = !(churn & 1);
	if (locked)
		CHECK(HeapLock(m->h), "HeapLock");
	memset(&e, 0, sizeof(e));
	while (HeapWalk(m->h, &e)) {
		CHECK(++steps < 1000000, "endless walk");
		if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY) {
			b = find_block(e.lpData, NULL);
			CHECK(b && b->n == e.cbData, "busy entry %p+%u not "
			      "in the model", e.lpData, e.cbData);
			busy++;
		}
		b = &m->b[churn % NSLOTS];
		if (!locked && (churn & 2) && steps == (size_t)(churn >> 2) &&
		    b->p) {
			CHECK(HeapFree(m->h, 0, b->p), "free");
			drop(m, b);
			churned = true;
		}
	}
	if (locked)
		CHECK(HeapUnlock(m->h), "HeapUnlock");
	CHECK(GetLastError() == ERROR_NO_MORE_ITEMS ||
	      (churned && GetLastError() == ERROR_INVALID_PARAMETER),
	      "walk ended: %u", GetLastError());
	for (j = 0; j < NSLOTS; j++)
		live += m->b[j].p != NULL;
	CHECK(churned ? busy <= live + 1 : busy == live,
	      "walk saw %zu busy, model %zu", busy, live);
}

static void op_compact(void)
{
	struct mheap *m = pick_heap();
	uint8_t k = g8();
	SIZE_T largest;

	if (!m)
		return;
	ran = true;
	SetLastError(1234);
	largest = HeapCompact(m->h, k & 1 ? HEAP_NO_SERIALIZE : 0);
	CHECK(largest || GetLastError() == NO_ERROR, "HeapCompact");
	if (k & 2) {
		HEAP_OPTIMIZE_RESOURCES_INFORMATION o = {
			HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION, 0
		};

		CHECK(HeapSetInformation(m->h, HeapOptimizeResources, &o,
					 sizeof(o)), "optimize resources");
	}
}

static void op_lock(void)
{
	struct mheap *m = pick_heap();
	uint8_t k = g8();

	if (!m)
		return;
	ran = true;
	if (k & 1 && m->locks < 4) {
		CHECK(HeapLock(m->h), "HeapLock");
		m->locks++;
	} else if (m->locks > 0) {
		CHECK(HeapUnlock(m->h), "HeapUnlock");
		m->locks--;
	} else if (!m->noser) {
		SetLastError(0);
		CHECK(!HeapUnlock(m->h) && GetLastError() == ERROR_NOT_OWNER,
		      "unlock not held");
	}
}

static void op_info(void)
{
	struct mheap *m = pick_heap();
	ULONG v = g8() % 3, before = 99, after = 99;
	SIZE_T len = 0;
	BOOL r;

	if (!m)
		return;
	ran = true;
	CHECK(HeapQueryInformation(m->h, HeapCompatibilityInformation,
				   &before, sizeof(before), &len) &&
	      len == sizeof(ULONG) && (before == 0 || before == 2),
	      "query");
	SetLastError(0);
	r = HeapSetInformation(m->h, HeapCompatibilityInformation, &v,
			       sizeof(v));
	if (v == 2 && (m->fixed || m->noser))
		CHECK(!r && GetLastError() == ERROR_INVALID_PARAMETER,
		      "LFH on a fixed or NO_SERIALIZE heap");
	else if (v == 2 || (v == 0 && before == 0))
		CHECK(r, "set %lu", (unsigned long)v);
	else
		CHECK(!r && GetLastError() == ERROR_GEN_FAILURE, "set %lu",
		      (unsigned long)v);
	CHECK(HeapQueryInformation(m->h, HeapCompatibilityInformation,
				   &after, sizeof(after), NULL), "query");
	CHECK(after == (r && v == 2 ? 2 : before), "compat %lu -> %lu",
	      (unsigned long)before, (unsigned long)after);
}

/* A pointer that may not be a live block of @m, from @k, @slot and @v. */
static void *bad_pointer(struct mheap *m, uint8_t k, unsigned int slot,
			 uint16_t v)
{
	static char static_buf[64];
	struct block *b = &m->b[slot % NSLOTS];

	switch (k % 8) {
	case 0:
		return nfreed ? freed[v % (nfreed < NFREED ? nfreed : NFREED)] :
		       NULL;
	case 1:
		return b->p ? b->p + 1 + v % (b->n > 1 ? b->n - 1 : 1) : NULL;
	case 2:
		return b->p ? b->p + 16 * (1 + v % 64) : NULL;
	case 3:
		return static_buf + v % 64;
	case 4:
		return (void *)(uintptr_t)(0xdeadbe00 + v);
	case 5:	/* anywhere in the heap's first 4 MiB */
		return (char *)m->h + (size_t)v * 64 + (k >> 3);
	case 6:
		return (void *)((uintptr_t)v << 32);
	default:	/* a block of another heap: foreign */
		return heaps[v % NHEAPS].b[k % NSLOTS].p;
	}
}

/* Every call must refuse @p, which is not a live block of @m. */
static void op_bad_pointer(void)
{
	struct mheap *m = pick_heap(), *owner = NULL;
	uint8_t k = g8(), slot = g8();
	uint16_t v = g16();
	unsigned int exc = exc_count;
	struct block *b;
	size_t sz;
	void *p;

	if (!m)
		return;
	p = bad_pointer(m, k, slot, v);
	if (!p)
		return;
	b = find_block(p, &owner);
	if (b && owner == m)
		return;		/* a live block of this very heap */
	ran = true;
	SetLastError(0);
	CHECK(!HeapFree(m->h, 0, p) &&
	      GetLastError() == ERROR_INVALID_PARAMETER,
	      "bad free of %p accepted (%u)", p, GetLastError());
	SetLastError(0);
	CHECK(HeapSize(m->h, 0, p) == (SIZE_T)-1 &&
	      GetLastError() == ERROR_INVALID_PARAMETER, "size of %p", p);
	SetLastError(0);
	CHECK(!HeapReAlloc(m->h, k & 0x40 ? HEAP_GENERATE_EXCEPTIONS : 0, p,
			   100) && GetLastError() == ERROR_INVALID_PARAMETER,
	      "realloc of %p", p);
	if (k & 0x40)
		CHECK(exc_count == exc + 1 &&
		      exc_code == STATUS_ACCESS_VIOLATION, "no exception");
	SetLastError(0x1234);
	CHECK(!HeapValidate(m->h, 0, p) && GetLastError() == 0x1234,
	      "validate of %p", p);
	CHECK(heapdev_free((struct heapdev_heap *)m->h, p, 0) == -EINVAL,
	      "native free of %p", p);
	CHECK(heapdev_size((struct heapdev_heap *)m->h, p, 0, &sz) == -EINVAL,
	      "native size of %p", p);
	if (b)
		check_block(owner, b);
}

/* Calls with handles that name no heap. */
static void op_bad_handle(void)
{
	static char buf[64];
	uint16_t v = g16();
	struct mheap *m = pick_heap();
	HANDLE h;

	switch (v % 4) {
	case 0:
		h = (HANDLE)(uintptr_t)(0x10000 * (1 + (v >> 2)));
		break;
	case 1:
		h = buf;
		break;
	case 2:	/* inside a heap, but not its base */
		h = m ? (char *)m->h + 16 * (1 + (v >> 2)) : NULL;
		break;
	default:
		h = m && m->b[v % NSLOTS].p ? m->b[v % NSLOTS].p : NULL;
		break;
	}
	if (!h)
		return;
	ran = true;
	SetLastError(0);
	CHECK(!HeapAlloc(h, 0, 10) && GetLastError() == ERROR_INVALID_HANDLE,
	      "alloc with handle %p", h);
	SetLastError(0);
	CHECK(HeapSize(h, 0, buf) == (SIZE_T)-1 &&
	      GetLastError() == ERROR_INVALID_HANDLE, "size");
	CHECK(!HeapValidate(h, 0, NULL) && !HeapDestroy(h), "validate");
}

static void op_destroy(void)
{
	struct mheap *m = pick_heap();

	if (m) {
		ran = true;
		destroy_heap(m);
	}
}

static void op_summary(void)
{
	struct mheap *m = pick_heap();
	HEAP_SUMMARY s = { .cb = sizeof(s) };

	if (!m)
		return;
	ran = true;
	CHECK(HeapSummary(m->h, 0, &s) && s.cbAllocated == m->bytes &&
	      s.cbCommitted <= s.cbReserved, "summary %zu, model %zu",
	      (size_t)s.cbAllocated, m->bytes);
}

/* Zero bytes are the commonest: opcode 0 is a cheap one. */
enum {
	OP_CHECK, OP_ALLOC, OP_ALLOC2, OP_FREE, OP_REALLOC, OP_CREATE,
	OP_WALK, OP_COMPACT, OP_LOCK, OP_INFO, OP_BAD_POINTER, OP_BAD_HANDLE,
	OP_DESTROY, OP_SUMMARY, OP_NATIVE, OP_COUNT
};

static void (*const ops[OP_COUNT])(void) = {
	[OP_CREATE] = op_create, [OP_ALLOC] = op_alloc,
	[OP_ALLOC2] = op_alloc, [OP_FREE] = op_free,
	[OP_REALLOC] = op_realloc, [OP_CHECK] = op_check,
	[OP_WALK] = op_walk, [OP_COMPACT] = op_compact, [OP_LOCK] = op_lock,
	[OP_INFO] = op_info, [OP_BAD_POINTER] = op_bad_pointer,
	[OP_BAD_HANDLE] = op_bad_handle, [OP_DESTROY] = op_destroy,
	[OP_SUMMARY] = op_summary, [OP_NATIVE] = op_native,
};

static const char *const op_names[OP_COUNT] = {
	"check", "alloc", "alloc", "free", "realloc", "create", "walk",
	"compact", "lock", "info", "bad-pointer", "bad-handle", "destroy",
	"summary", "native",
};

/* With HEAP_FUZZ_STATS set: what the run executed, at exit. */
static void print_stats(void)
{
	unsigned long long total = 0;
	int i;

	for (i = 0; i < OP_COUNT; i++)
		total += executed[i];
	fprintf(stderr, "heap_fuzz: %llu inputs, %llu records, %llu "
		"operations executed:", inputs, records, total);
	for (i = 0; i < OP_COUNT; i++)
		if (i != OP_ALLOC2)
			fprintf(stderr, " %s %llu", op_names[i], executed[i] +
				(i == OP_ALLOC ? executed[OP_ALLOC2] : 0));
	fputc('\n', stderr);
}

static void print_record(unsigned int op, const uint8_t *p, const uint8_t *end)
{
	fprintf(stderr, "%-11s%s", op_names[op], ran ? "" : " (skipped)");
	for (; p < end; p++)
		fprintf(stderr, " %02x", *p);
	fputc('\n', stderr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned int steps = 0, op;
	int i;

	in.p = data;
	in.n = size;
	nfreed = 0;
	live_bytes = 0;
	creates = 0;
	inputs++;
	while (in.n && steps++ < 4096) {
		const uint8_t *rec = in.p;

		op = g8() % OP_COUNT;
		ran = false;
		ops[op]();
		records++;
		executed[op] += ran;
		if (trace)
			print_record(op, rec, in.p);
	}
	for (i = 0; i < NHEAPS; i++) {
		if (!heaps[i].h)
			continue;
		check_heap(&heaps[i]);
		destroy_heap(&heaps[i]);
	}
	return 0;
}
