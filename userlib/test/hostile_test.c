// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Hostile frees and overflows: a numbered table of bad calls and memory
 * errors (the categories of mimalloc-bench's bench/security that apply to
 * a heap API, and more), each with what heapdev does about it:
 *
 *   call          the call itself refuses it: FALSE / NULL / (SIZE_T)-1
 *                 with ERROR_INVALID_PARAMETER (or ERROR_INVALID_HANDLE,
 *                 ERROR_NOT_ENOUGH_MEMORY where that is the answer)
 *   validate      HeapValidate(h, 0, NULL) reports it (and the calls on the
 *                 damaged block refuse it)
 *   fault         the MMU stops it (SIGSEGV), checked in a child
 *   not detected  nothing reports it; the table says why, and the case
 *                 checks that no other block and no heap structure suffers
 *   allowed       not an error (code in an executable heap runs)
 *
 * Every case asserts the documented outcome, and that the other blocks of
 * the heap keep their contents.  Cases whose bad call is heap corruption
 * are run again in a forked child after
 * HeapSetInformation(HeapEnableTerminationOnCorruption): the child must end
 * with SIGABRT and a message naming the heap and the pointer.  Cases that
 * must not terminate (HeapValidate, HeapSize, bad handles, lack of
 * memory) must let the child live.
 *
 * Some cases corrupt memory inside heapdev's own mappings on purpose;
 * AddressSanitizer does not instrument those.  Stack, static and libc
 * pointers are only passed, never written through.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <heapdev/win32.h>

#include "api_suite.h"
#include "t.h"

#define KiB	1024UL
#define MiB	(1024UL * 1024)
#define MED	20000		/* a medium block: no slack, never LFH */
#define SMALL	40		/* an LFH slot of stride 48: canary, no slack */

enum outcome { O_CALL, O_VALIDATE, O_FAULT, O_NONE, O_ALLOWED, O_COUNT };

static const char *const o_names[O_COUNT] = {
	"call", "validate", "fault", "not detected", "allowed",
};

/* What a child with termination on corruption enabled must do. */
enum term { TM_NONE, TM_ABORT, TM_SURVIVE };

struct hc {
	bool term;		/* in a child, termination enabled */
	int info;		/* announce pipe, or -1 */
	char why[200];		/* first expectation that failed */
};

struct hcase {
	const char *id;		/* mimalloc-bench style name */
	const char *what;	/* the bad thing */
	enum outcome out;
	enum term tm;
	bool (*fn)(struct hc *c);
	const char *does;	/* what heapdev does, or why it cannot */
};

static char static_buf[256] __attribute__((aligned(64)));

/* ---- helpers ---- */

static bool expect(struct hc *c, bool cond, const char *what, int line)
{
	if (!cond && !c->why[0])
		snprintf(c->why, sizeof(c->why), "line %d: %s", line, what);
	return cond;
}

#define E(cond) expect(c, (cond), #cond, __LINE__)

/* Tell the parent which heap and block the next call is about. */
static void announce(struct hc *c, HANDLE h, const void *p)
{
	char line[64];
	int n;

	if (c->info < 0)
		return;
	n = snprintf(line, sizeof(line), "%p %p\n", h, p);
	if (write(c->info, line, n) != n)
		_exit(3);
}

/* A block filled with a pattern, checked at the end of a case. */
struct wit {
	unsigned char *p;
	size_t n;
	unsigned char tag;
};

static unsigned char wit_byte(const struct wit *w, size_t i)
{
	return (unsigned char)(w->tag + i * 7);
}

static bool wit_new(struct wit *w, HANDLE h, size_t n, unsigned char tag)
{
	size_t i;

	w->p = HeapAlloc(h, 0, n);
	w->n = n;
	w->tag = tag;
	if (!w->p)
		return false;
	for (i = 0; i < n; i++)
		w->p[i] = wit_byte(w, i);
	return true;
}

static bool wit_ok(const struct wit *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (w->p[i] != wit_byte(w, i))
			return false;
	return true;
}

/*
 * Allocate blocks of @n bytes until one is at @p (a freed slot comes back
 * once its run's free list is used up); the others are freed again.
 * Return: the block at @p, or NULL.
 */
static unsigned char *realloc_at(HANDLE h, size_t n, unsigned char *p)
{
	unsigned char *got[600], *q = NULL;
	int i, k = 0;

	for (i = 0; i < 600 && !q; i++) {
		got[k] = HeapAlloc(h, 0, n);
		if (got[k] == p)
			q = got[k];
		else
			k++;
	}
	while (k--)
		HeapFree(h, 0, got[k]);
	return q;
}

/* Two adjacent blocks of @n bytes, @stride apart; false if none found. */
static bool pair(HANDLE h, size_t n, size_t stride, unsigned char **a,
		 unsigned char **b)
{
	int i;

	*a = HeapAlloc(h, 0, n);
	for (i = 0; i < 64; i++) {
		*b = HeapAlloc(h, 0, n);
		if (*b == *a + stride)
			return true;
		*a = *b;
	}
	return false;
}

static bool free_refused(struct hc *c, HANDLE h, void *p)
{
	bool ok;

	announce(c, h, p);
	SetLastError(0xdeadbeef);
	ok = !HeapFree(h, 0, p);
	return ok && GetLastError() == ERROR_INVALID_PARAMETER;
}

static bool size_refused(struct hc *c, HANDLE h, const void *p)
{
	announce(c, h, p);
	SetLastError(0xdeadbeef);
	return HeapSize(h, 0, p) == (SIZE_T)-1 &&
	       GetLastError() == ERROR_INVALID_PARAMETER;
}

static bool realloc_refused(struct hc *c, HANDLE h, void *p)
{
	announce(c, h, p);
	SetLastError(0xdeadbeef);
	return !HeapReAlloc(h, 0, p, 64) &&
	       GetLastError() == ERROR_INVALID_PARAMETER;
}

/* HeapValidate says FALSE and leaves the last error alone. */
static bool validate_refused(HANDLE h, const void *p)
{
	SetLastError(0xdeadbeef);
	return !HeapValidate(h, 0, p) && GetLastError() == 0xdeadbeef;
}

/* Free, size, realloc and validate all refuse @p; the heap is intact. */
static bool all_refused(struct hc *c, HANDLE h, void *p)
{
	bool ok = E(free_refused(c, h, p));

	ok &= E(size_refused(c, h, p));
	ok &= E(realloc_refused(c, h, p));
	ok &= E(validate_refused(h, p));
	ok &= E(HeapValidate(h, 0, NULL));
	return ok;
}

/* Damage found: the whole-heap check and every call on the block. */
static bool damaged(struct hc *c, HANDLE h, void *p)
{
	bool ok = E(!HeapValidate(h, 0, NULL));

	ok &= E(validate_refused(h, p));
	ok &= E(free_refused(c, h, p));
	ok &= E(size_refused(c, h, p));
	ok &= E(realloc_refused(c, h, p));
	return ok;
}

/* ---- double frees ---- */

static bool double_free(struct hc *c, HANDLE h, size_t n)
{
	struct wit w;
	unsigned char *p = HeapAlloc(h, 0, n);
	bool ok = E(wit_new(&w, h, 3000, 1));

	ok &= E(p && HeapFree(h, 0, p));
	ok &= all_refused(c, h, p);
	ok &= E(wit_ok(&w));
	HeapDestroy(h);
	return ok;
}

static bool c_double_free_lfh(struct hc *c)
{
	return double_free(c, api_lfh_heap(SMALL), SMALL);
}

static bool c_double_free_medium(struct hc *c)
{
	return double_free(c, HeapCreate(0, 0, 0), MED);
}

static bool c_double_free_large(struct hc *c)
{
	return double_free(c, HeapCreate(0, 0, 0), 3 * MiB);
}

static bool c_double_free_fixed(struct hc *c)
{
	return double_free(c, HeapCreate(0, 0, 1 * MiB), 100);
}

/* Free, then a thousand other allocations and frees, then free again. */
static bool c_double_free_delayed(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, MED), *q[200];
	bool ok;
	int i, j;

	ok = E(HeapFree(h, 0, p));
	for (j = 0; j < 5; j++) {
		for (i = 0; i < 200; i++)
			q[i] = HeapAlloc(h, 0, SMALL + (i % 3) * 100);
		for (i = 0; i < 200; i++)
			HeapFree(h, 0, q[i]);
	}
	ok &= all_refused(c, h, p);
	HeapDestroy(h);
	return ok;
}

/* free(a), free(b), free(a) */
static bool c_double_free_interleaved(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *a = HeapAlloc(h, 0, SMALL), *b = HeapAlloc(h, 0, SMALL);
	struct wit w;
	bool ok = E(wit_new(&w, h, SMALL, 2));

	ok &= E(HeapFree(h, 0, a) && HeapFree(h, 0, b));
	ok &= all_refused(c, h, a);
	ok &= E(wit_ok(&w));
	HeapDestroy(h);
	return ok;
}

/* The freed block was merged into its free neighbour: header wiped. */
static bool c_double_free_coalesced(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *a, *b;
	struct wit w;
	bool ok = E(pair(h, MED, MED + 16, &a, &b));

	ok &= E(wit_new(&w, h, MED, 3));
	ok &= E(HeapFree(h, 0, b) && HeapFree(h, 0, a));
	ok &= all_refused(c, h, b);
	ok &= E(wit_ok(&w));
	HeapDestroy(h);
	return ok;
}

/*
 * free(p); q = alloc (the same address); free(p) frees q: the pointer is a
 * live block again and nothing can tell the two frees apart.
 */
static bool c_double_free_reuse(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, SMALL), *q;
	bool ok;

	ok = E(HeapFree(h, 0, p));
	q = HeapAlloc(h, 0, SMALL);
	/* freed slots wait until the run's free list is used up */
	ok &= E(q != p);
	ok &= E(free_refused(c, h, p));
	ok &= E(HeapFree(h, 0, q) && HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

/* ---- invalid frees ---- */

/* @p (not a live block of @h) is refused by every call; @w is intact. */
static bool invalid(struct hc *c, HANDLE h, void *p)
{
	struct wit w;
	bool ok = E(wit_new(&w, h, 500, 4));

	ok &= all_refused(c, h, p);
	ok &= E(wit_ok(&w));
	return ok;
}

static bool c_unaligned_lfh(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, SMALL);
	bool ok = invalid(c, h, p + 1);

	ok &= E(HeapSize(h, 0, p) == SMALL && HeapFree(h, 0, p));
	HeapDestroy(h);
	return ok;
}

static bool c_unaligned_medium(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, MED);
	bool ok = invalid(c, h, p + 8);

	ok &= E(HeapSize(h, 0, p) == MED && HeapFree(h, 0, p));
	HeapDestroy(h);
	return ok;
}

static bool c_interior_lfh(struct hc *c)
{
	HANDLE h = api_lfh_heap(200);
	unsigned char *p = HeapAlloc(h, 0, 200);
	bool ok = invalid(c, h, p + 16);

	ok &= E(HeapSize(h, 0, p) == 200 && HeapFree(h, 0, p));
	HeapDestroy(h);
	return ok;
}

static bool c_interior_medium(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, MED);
	bool ok = invalid(c, h, p + 256);

	ok &= E(HeapSize(h, 0, p) == MED && HeapFree(h, 0, p));
	HeapDestroy(h);
	return ok;
}

static bool c_interior_large(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, 3 * MiB);
	bool ok = invalid(c, h, p + 4096);

	ok &= E(HeapSize(h, 0, p) == 3 * MiB && HeapFree(h, 0, p));
	HeapDestroy(h);
	return ok;
}

static bool c_stack(struct hc *c)
{
	unsigned char local[64];	/* only its address is used */
	HANDLE h = HeapCreate(0, 0, 0);
	bool ok = invalid(c, h, local);

	HeapDestroy(h);
	return ok;
}

static bool c_static(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	bool ok = invalid(c, h, static_buf + 64);

	HeapDestroy(h);
	return ok;
}

static bool c_far(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	bool ok = invalid(c, h, (void *)(uintptr_t)0xdeadbe00);

	ok &= E(free_refused(c, h, (void *)(uintptr_t)0x7ffffffff000ULL));
	ok &= E(free_refused(c, h, (void *)(uintptr_t)0xfffffffffffff000ULL));
	HeapDestroy(h);
	return ok;
}

static bool c_libc(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *m = malloc(64);
	bool ok = invalid(c, h, m);

	free(m);
	HeapDestroy(h);
	return ok;
}

/* The handle is the address of the segment header. */
static bool c_handle_as_block(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	bool ok = invalid(c, h, h);

	ok &= E(free_refused(c, h, (char *)h + 0x400));
	HeapDestroy(h);
	return ok;
}

/* Inside the heap's reservation, in pages that are not committed. */
static bool c_uncommitted(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	bool ok = invalid(c, h, (char *)h + 3 * MiB);

	HeapDestroy(h);
	return ok;
}

static bool c_foreign(struct hc *c)
{
	HANDLE a = api_lfh_heap(SMALL), b = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(a, 0, SMALL), *m = HeapAlloc(a, 0, MED);
	unsigned char *l = HeapAlloc(a, 0, 2 * MiB);
	bool ok = invalid(c, b, p);

	ok &= E(free_refused(c, b, m) && free_refused(c, b, l));
	ok &= E(HeapFree(a, 0, p) && HeapFree(a, 0, m) && HeapFree(a, 0, l));
	ok &= E(HeapValidate(a, 0, NULL));
	HeapDestroy(a);
	HeapDestroy(b);
	return ok;
}

static bool c_process_heap_block(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *p = HeapAlloc(GetProcessHeap(), 0, 100);
	bool ok = invalid(c, h, p);

	ok &= E(HeapFree(GetProcessHeap(), 0, p));
	HeapDestroy(h);
	return ok;
}

static bool c_destroyed_heap_block(struct hc *c)
{
	HANDLE a = HeapCreate(0, 0, 0), b = HeapCreate(0, 0, 0);
	void *p = HeapAlloc(a, 0, 100);
	bool ok = E(HeapDestroy(a));

	ok &= invalid(c, b, p);
	HeapDestroy(b);
	return ok;
}

/* A bad handle is not heap corruption: an error, never a termination. */
static bool c_destroyed_handle(struct hc *c)
{
	HANDLE a = HeapCreate(0, 0, 0);
	void *p = HeapAlloc(a, 0, 100);
	bool ok = E(HeapDestroy(a));

	SetLastError(0);
	ok &= E(!HeapFree(a, 0, p) && GetLastError() == ERROR_INVALID_HANDLE);
	SetLastError(0);
	ok &= E(HeapSize(a, 0, p) == (SIZE_T)-1 &&
		GetLastError() == ERROR_INVALID_HANDLE);
	SetLastError(0);
	ok &= E(!HeapReAlloc(a, 0, p, 10) &&
		GetLastError() == ERROR_INVALID_HANDLE);
	ok &= E(!HeapValidate(a, 0, p) && !HeapValidate(a, 0, NULL));
	return ok;
}

static bool c_null_handle(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *p = HeapAlloc(h, 0, 100);
	bool ok;

	SetLastError(0);
	ok = E(!HeapFree(NULL, 0, p) &&
	       GetLastError() == ERROR_INVALID_HANDLE);
	SetLastError(0);
	ok &= E(!HeapFree((HANDLE)static_buf, 0, p) &&
		GetLastError() == ERROR_INVALID_HANDLE);
	ok &= E(HeapSize(h, 0, p) == 100 && HeapFree(h, 0, p));
	HeapDestroy(h);
	return ok;
}

static bool c_after_realloc_move(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, MED), *blk = HeapAlloc(h, 0, MED);
	unsigned char *q = HeapReAlloc(h, 0, p, 4 * MED);
	bool ok = E(q && q != p && blk);

	ok &= invalid(c, h, p);
	ok &= E(HeapSize(h, 0, q) == 4 * MED);
	HeapDestroy(h);
	return ok;
}

/* An LFH slot realloc'ed into a medium block: the old slot is free. */
static bool c_after_realloc_class(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, SMALL);
	unsigned char *q = HeapReAlloc(h, 0, p, MED);
	bool ok = E(q && q != p);

	ok &= invalid(c, h, p);
	HeapDestroy(h);
	return ok;
}

/* ---- other calls on bad pointers ---- */

static bool c_realloc_freed(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, SMALL);
	bool ok = E(HeapFree(h, 0, p));

	ok &= E(realloc_refused(c, h, p));
	SetLastError(0);
	ok &= E(!HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 8) &&
		GetLastError() == ERROR_INVALID_PARAMETER);
	ok &= E(HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

static bool c_realloc_foreign(struct hc *c)
{
	HANDLE a = HeapCreate(0, 0, 0), b = HeapCreate(0, 0, 0);
	struct wit w;
	bool ok = E(wit_new(&w, a, MED, 5));

	ok &= E(realloc_refused(c, b, w.p));
	ok &= E(wit_ok(&w) && HeapSize(a, 0, w.p) == MED);
	HeapDestroy(a);
	HeapDestroy(b);
	return ok;
}

static bool c_size_freed(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, MED);
	bool ok = E(HeapFree(h, 0, p));

	ok &= E(size_refused(c, h, p));
	HeapDestroy(h);
	return ok;
}

static bool c_size_interior(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, SMALL);
	bool ok = E(size_refused(c, h, p + 16));

	ok &= E(HeapSize(h, 0, p) == SMALL);
	HeapDestroy(h);
	return ok;
}

/* HeapValidate never terminates and never touches the last error. */
static bool c_validate_bad(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, SMALL), *m = HeapAlloc(h, 0, MED);
	unsigned char local[16];
	bool ok = E(HeapFree(h, 0, p) && HeapFree(h, 0, m));

	ok &= E(validate_refused(h, p) && validate_refused(h, m));
	ok &= E(validate_refused(h, p + 1) && validate_refused(h, local));
	ok &= E(validate_refused(h, static_buf));
	ok &= E(validate_refused(h, (void *)(uintptr_t)0xdeadbe00));
	ok &= E(validate_refused(h, (char *)h + 3 * MiB));
	ok &= E(HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

/* ---- overflows and underflows ---- */

/*
 * Write @len bytes of @byte from @off relative to block @a (negative:
 * before it), with a loop or with memcpy; then the damaged block is @v.
 */
static void smash(unsigned char *a, long off, size_t len, int byte,
		  bool use_memcpy)
{
	unsigned char src[64];
	size_t i;

	/*
	 * An overwrite must change memory: a one-byte overflow onto a
	 * canary byte (key-derived) that already is @byte, 1 time in 256,
	 * is no damage, and used to fail the case.
	 */
	if (len == 1 && a[off] == (unsigned char)byte)
		byte ^= 0xff;
	if (use_memcpy) {
		memset(src, byte, sizeof(src));
		memcpy(a + off, src, len);
		return;
	}
	for (i = 0; i < len; i++)
		a[off + (long)i] = (unsigned char)byte;
}

/*
 * Two adjacent blocks a, b of @n bytes (@stride apart) and a witness;
 * @len bytes of 0x41 (one byte that is 0x41 already: 0xbe) are written at
 * a + @off for an overflow of a (off >= n), at b + @off for an underflow
 * of b (off < 0).  Medium blocks: the
 * header after a, b's own header, is damaged: the damaged block is b.
 * LFH slots (@stride 48, no header): a's canary, its last 8 bytes, is
 * damaged either way: the damaged block is a.
 */
static bool overflow_case(struct hc *c, HANDLE h, size_t n, size_t stride,
			  long off, size_t len, bool use_memcpy)
{
	bool canary = n == SMALL;
	unsigned char *a, *b, *v;
	struct wit w;
	bool ok = E(pair(h, n, stride, &a, &b));

	ok &= E(wit_new(&w, h, 700, 6));
	if (!ok)
		return false;
	smash(off < 0 ? b : a, off, len, 0x41, use_memcpy);
	v = canary ? a : b;
	ok &= damaged(c, h, v);
	/* the other block and the witness are unharmed */
	ok &= E(HeapValidate(h, 0, v == a ? b : a));
	ok &= E(HeapSize(h, 0, v == a ? b : a) == n);
	ok &= E(wit_ok(&w) && HeapValidate(h, 0, w.p));
	HeapDestroy(h);
	return ok;
}

static bool c_one_byte_overflow_lfh(struct hc *c)
{
	return overflow_case(c, api_lfh_heap(SMALL), SMALL, 48, SMALL, 1, false);
}

static bool c_one_byte_overflow_medium(struct hc *c)
{
	return overflow_case(c, HeapCreate(0, 0, 0), MED, MED + 16, MED, 1,
			     false);
}

static bool c_one_byte_overflow_fixed(struct hc *c)
{
	return overflow_case(c, HeapCreate(0, 0, 1 * MiB), 96, 112, 96, 1,
			     false);
}

static bool c_32_byte_overflow_lfh(struct hc *c)
{
	return overflow_case(c, api_lfh_heap(SMALL), SMALL, 48, SMALL, 32, false);
}

static bool c_32_byte_overflow_medium(struct hc *c)
{
	return overflow_case(c, HeapCreate(0, 0, 0), MED, MED + 16, MED, 32,
			     false);
}

static bool c_one_byte_overflow_memcpy(struct hc *c)
{
	return overflow_case(c, HeapCreate(0, 0, 0), MED, MED + 16, MED, 1,
			     true);
}

static bool c_32_byte_overflow_memcpy(struct hc *c)
{
	return overflow_case(c, api_lfh_heap(SMALL), SMALL, 48, SMALL, 32, true);
}

static bool c_one_byte_underflow_lfh(struct hc *c)
{
	return overflow_case(c, api_lfh_heap(SMALL), SMALL, 48, -1, 1, false);
}

static bool c_one_byte_underflow_medium(struct hc *c)
{
	return overflow_case(c, HeapCreate(0, 0, 0), MED, MED + 16, -1, 1,
			     false);
}

static bool c_32_byte_underflow_medium(struct hc *c)
{
	/* a's own header and the last 16 bytes of the block before it */
	HANDLE h = HeapCreate(0, 0, 0);

	HeapAlloc(h, 0, MED);
	return overflow_case(c, h, MED, MED + 16, -32, 32, false);
}

static bool c_32_byte_underflow_memcpy(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);

	HeapAlloc(h, 0, SMALL);
	return overflow_case(c, h, SMALL, 48, -32, 32, true);
}

/* A 1-byte underflow of a large block hits its header. */
static bool c_underflow_large(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *l = HeapAlloc(h, 0, 3 * MiB);
	struct wit w;
	bool ok = E(wit_new(&w, h, 100, 7) && l);

	l[-1] ^= 0x41;
	ok &= damaged(c, h, l);
	ok &= E(wit_ok(&w));
	HeapDestroy(h);
	return ok;
}

/* The neighbour is free: its header, links and the free lists. */
static bool c_overflow_into_free(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *a, *b, *q;
	struct wit w;
	bool ok = E(pair(h, MED, MED + 16, &a, &b));
	int i;

	ok &= E(wit_new(&w, h, 700, 8));
	ok &= E(HeapFree(h, 0, b));
	memset(a + MED, 0x41, 32);
	ok &= E(!HeapValidate(h, 0, NULL));
	/* later allocations never hand out the damaged block */
	announce(c, h, b);
	for (i = 0; i < 20; i++) {
		q = HeapAlloc(h, 0, MED);
		ok &= E(q && (q + MED <= a || q >= a + MED + 64));
	}
	ok &= E(HeapValidate(h, 0, a) && HeapSize(h, 0, a) == MED);
	ok &= E(HeapFree(h, 0, a));	/* no merge with the damaged block */
	ok &= E(wit_ok(&w));
	HeapDestroy(h);
	return ok;
}

/*
 * An overflow leaves random-looking bits in the next header (headers are
 * XOR-encoded with a per-heap secret), so 1 time in 16 its kind field
 * decodes as "free".  Growing the block in place must still not take the
 * damaged neighbour on the strength of its size field: 256 heaps, each
 * with another secret and another overflow byte, neighbour busy or free.
 */
static bool c_overflow_then_realloc(struct hc *c)
{
	bool ok = true;
	int i;

	for (i = 0; i < 256 && ok; i++) {
		HANDLE h = HeapCreate(0, 0, 0);
		unsigned char *a, *b, *q;
		struct wit w;

		ok &= E(pair(h, MED, MED + 16, &a, &b));
		ok &= E(wit_new(&w, h, 700, 15));
		/*
		 * A damaged free neighbour is reported when the move looks
		 * for a free block; with termination on, keep it busy.
		 */
		if ((i & 1) && !c->term)
			ok &= E(HeapFree(h, 0, b));
		memset(a + MED, i, 16);
		q = HeapReAlloc(h, 0, a, MED + 5000);
		ok &= E(q && (q >= b + MED || q + MED + 5000 <= b - 16));
		ok &= E(wit_ok(&w) && !HeapValidate(h, 0, NULL));
		HeapDestroy(h);
	}
	return ok;
}

/* HeapCompact never decommits pages on the word of a damaged header. */
static bool c_overflow_then_compact(struct hc *c)
{
	bool ok = true;
	int i;

	for (i = 0; i < 64 && ok; i++) {
		HANDLE h = HeapCreate(0, 0, 0);
		unsigned char *a, *b, *big;
		struct wit w;

		ok &= E(pair(h, MED, MED + 16, &a, &b));
		big = HeapAlloc(h, 0, 300000);
		ok &= E(big && wit_new(&w, h, 700, 16));
		ok &= E(HeapFree(h, 0, b) && HeapFree(h, 0, big));
		memset(a + MED, 0x41 + i, 16 + (i & 15));
		announce(c, h, NULL);
		HeapCompact(h, 0);
		ok &= E(wit_ok(&w) && HeapSize(h, 0, a) == MED);
		ok &= E(HeapFree(h, 0, a) && wit_ok(&w));
		HeapDestroy(h);
	}
	return ok;
}

/* The last block before uncommitted pages: the gap's header. */
static bool c_overflow_into_gap(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	/* a fresh heap commits 8 KiB: data at +0x800, gap header at 8K-16 */
	size_t n = 8192 - 0x800 - 16;
	unsigned char *a = HeapAlloc(h, 0, n);
	bool ok = E(a == (unsigned char *)h + 0x800);

	memset(a + n, 0x41, 8);
	ok &= E(!HeapValidate(h, 0, NULL));
	ok &= E(HeapValidate(h, 0, a) && HeapSize(h, 0, a) == n);
	HeapDestroy(h);
	return ok;
}

/* The segment signature in front of the first block. */
static bool c_underflow_signature(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *a = HeapAlloc(h, 0, 100);
	bool ok = E(a == (unsigned char *)h + 0x800);

	memset((unsigned char *)h, 0x41, 16);
	ok &= E(!HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

/* Into the block's own padding: nobody else's byte changes. */
static bool slack_case(struct hc *c, HANDLE h, size_t n, size_t len)
{
	unsigned char *a = HeapAlloc(h, 0, n);
	struct wit w;
	bool ok = E(wit_new(&w, h, n, 9) && a);

	memset(a + n, 0x41, len);
	ok &= E(HeapValidate(h, 0, NULL) && HeapSize(h, 0, a) == n);
	ok &= E(wit_ok(&w) && HeapFree(h, 0, a));
	ok &= E(HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

static bool c_one_byte_overflow_slack(struct hc *c)
{
	return slack_case(c, api_lfh_heap(33), 33, 1);
}

static bool c_one_byte_overflow_large(struct hc *c)
{
	return slack_case(c, HeapCreate(0, 0, 0), 3 * MiB, 1);
}

static bool c_write_zero_size(struct hc *c)
{
	return slack_case(c, api_lfh_heap(0), 0, 16);
}

/*
 * Writing 25 bytes into a 0-byte block (stride 32) reaches its canary:
 * the 25th byte is the canary's first, which is random, so the byte
 * written is one that changes it (0x41 left it whole once in 256 runs).
 */
static bool c_write_zero_size_far(struct hc *c)
{
	HANDLE h = api_lfh_heap(0);
	unsigned char *a, *b, v = 0x41;
	bool ok = E(pair(h, 0, 32, &a, &b));

	ok &= E(HeapSize(h, 0, a) == 0);
	if (a && a[24] == v)
		v++;
	memset(a, v, 25);
	ok &= damaged(c, h, a);
	ok &= E(HeapValidate(h, 0, b));
	HeapDestroy(h);
	return ok;
}

/* HeapWalk over a damaged header stops with an error, never a fault. */
static bool c_walk_damaged(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	PROCESS_HEAP_ENTRY e;
	unsigned char *a, *b;
	bool ok = E(pair(h, MED, MED + 16, &a, &b));
	int n = 0;

	b[-12] ^= 0x7;		/* the size field of b's header */
	ok &= E(!HeapValidate(h, 0, NULL));
	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e) && n < 1000)
		n++;
	ok &= E(n < 1000 && GetLastError() == ERROR_INVALID_PARAMETER);
	HeapDestroy(h);
	return ok;
}

/*
 * Forged walk entries: an lpData outside the segment its cursor names is
 * refused; one inside it continues the walk from there (that is how a walk
 * survives blocks freed between two calls), reading only committed memory.
 */
static bool c_walk_forged(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	PROCESS_HEAP_ENTRY e;
	bool ok = true;
	int i;

	for (i = 0; i < 5; i++) {
		memset(&e, 0, sizeof(e));
		e.lpData = i == 0 ? (void *)static_buf :
			   i == 1 ? (void *)(uintptr_t)0xdeadbe00 :
			   i == 2 ? (void *)((char *)h + 8) :
			   (void *)((char *)h + 3 * MiB + 16 * i);
		e.wFlags = PROCESS_HEAP_ENTRY_BUSY;
		e.Block.dwReserved[0] = 1;	/* the first segment */
		e.Block.dwReserved[2] = 0x48440000u | (i == 4 ? 3 : 2);
		SetLastError(0);
		if (i < 3)
			ok &= E(!HeapWalk(h, &e) &&
				GetLastError() == ERROR_INVALID_PARAMETER);
		else
			ok &= E(HeapWalk(h, &e) ?
				(char *)e.lpData > (char *)h :
				GetLastError() == ERROR_NO_MORE_ITEMS);
	}
	ok &= E(HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

/* ---- use after free ---- */

static bool c_write_after_free_medium(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *a = HeapAlloc(h, 0, MED), *b = HeapAlloc(h, 0, MED);
	unsigned char *x = HeapAlloc(h, 0, MED), *q;
	struct wit w;
	bool ok = E(wit_new(&w, h, 600, 10) && a && x);
	int i;

	ok &= E(HeapFree(h, 0, b));
	memset(b, 0x41, 16);		/* its free-list links */
	ok &= E(!HeapValidate(h, 0, NULL));
	/* b itself is intact and may be handed out; its links never used */
	announce(c, h, b);
	for (i = 0; i < 20; i++) {
		q = HeapAlloc(h, 0, MED);
		ok &= E(q && HeapValidate(h, 0, q));
		ok &= E(q + MED <= a || q >= a + MED);
		ok &= E(q + MED <= x || q >= x + MED);
		ok &= E(q + MED <= w.p || q >= w.p + w.n);
		memset(q, 0, MED);
	}
	ok &= E(wit_ok(&w) && HeapSize(h, 0, a) == MED);
	HeapDestroy(h);
	return ok;
}

static bool c_write_after_free_lfh(struct hc *c)
{
	HANDLE h = api_lfh_heap(64);
	unsigned char *x = HeapAlloc(h, 0, 64), *y = HeapAlloc(h, 0, 64), *q;
	struct wit w;
	bool ok = E(wit_new(&w, h, 64, 11) && y);
	int i;

	ok &= E(HeapFree(h, 0, x));
	memset(x, 0x41, 8);		/* the slot's free-list link */
	ok &= E(!HeapValidate(h, 0, NULL));
	announce(c, h, NULL);
	for (i = 0; i < 300; i++) {
		q = HeapAlloc(h, 0, 64);
		ok &= E(q && HeapValidate(h, 0, q));
		ok &= E((uintptr_t)q != 0x4141414141414141ULL);
		ok &= E(q != w.p && q != y);
		memset(q, 0, 64);
	}
	ok &= E(wit_ok(&w) && HeapValidate(h, 0, y));
	HeapDestroy(h);
	return ok;
}

/* Past the links and the header: free memory nobody checks. */
static bool c_write_after_free_data(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *a = HeapAlloc(h, 0, MED), *b = HeapAlloc(h, 0, MED);
	unsigned char *x = HeapAlloc(h, 0, MED);
	bool ok = E(a && b && x && HeapFree(h, 0, b));

	memset(b + 64, 0x41, 1000);
	ok &= E(HeapValidate(h, 0, NULL));
	ok &= E(HeapSize(h, 0, a) == MED && HeapSize(h, 0, x) == MED);
	HeapDestroy(h);
	return ok;
}

/* The address belongs to a new block: the write lands in its data. */
static bool c_write_after_free_reused(struct hc *c)
{
	HANDLE h = api_lfh_heap(SMALL);
	unsigned char *p = HeapAlloc(h, 0, SMALL), *q;
	bool ok = E(HeapFree(h, 0, p));

	q = realloc_at(h, SMALL, p);
	ok &= E(q == p);
	if (q)
		memset(q, 0, SMALL);
	p[0] = 0x41;			/* a dangling write */
	ok &= E(q[0] == 0x41 && HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

/* Freed blocks keep their old bytes beyond the links (no wipe). */
static bool c_read_after_free(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *a = HeapAlloc(h, 0, MED), *b = HeapAlloc(h, 0, MED);
	bool ok = E(a && b);

	memset(b, 0x5A, MED);
	ok &= E(HeapFree(h, 0, b));
	ok &= E(b[100] == 0x5A && b[MED - 1] == 0x5A);
	HeapDestroy(h);
	return ok;
}

/*
 * Without HEAP_ZERO_MEMORY a reused block shows the previous owner's
 * bytes; fresh pages and HEAP_ZERO_MEMORY blocks are zero.
 */
static bool c_zero_on_alloc(struct hc *c)
{
	HANDLE h = api_lfh_heap(100);
	unsigned char *p = HeapAlloc(h, 0, 100), *q, *z;
	size_t i;
	bool ok, zero = true;

	memset(p, 0x5A, 100);
	ok = E(HeapFree(h, 0, p));
	q = realloc_at(h, 100, p);
	ok &= E(q == p && q[50] == 0x5A);
	z = HeapAlloc(h, HEAP_ZERO_MEMORY, 100);
	for (i = 0; z && i < 100; i++)
		zero &= !z[i];
	ok &= E(z && zero);
	HeapDestroy(h);
	return ok;
}

/* ---- sizes ---- */

static bool nomem_alloc(struct hc *c, HANDLE h, SIZE_T n)
{
	SetLastError(0);
	return !HeapAlloc(h, 0, n) &&
	       GetLastError() == ERROR_NOT_ENOUGH_MEMORY &&
	       (SetLastError(0), !HeapAlloc(h, HEAP_ZERO_MEMORY, n)) &&
	       GetLastError() == ERROR_NOT_ENOUGH_MEMORY;
}

static bool c_impossibly_large(struct hc *c)
{
	HANDLE g = HeapCreate(0, 0, 0), f = HeapCreate(0, 0, 1 * MiB);
	bool ok = E(nomem_alloc(c, g, (SIZE_T)-1));

	ok &= E(nomem_alloc(c, f, (SIZE_T)-1));
	ok &= E(nomem_alloc(c, GetProcessHeap(), (SIZE_T)-1));
	ok &= E(HeapValidate(g, 0, NULL) && HeapValidate(f, 0, NULL));
	HeapDestroy(g);
	HeapDestroy(f);
	return ok;
}

/* Sizes that wrap around when a header is added or they are rounded. */
static bool c_size_wraps(struct hc *c)
{
	static const SIZE_T bad[] = {
		(SIZE_T)-1 - 7, (SIZE_T)-1 - 15, (SIZE_T)-1 - 63,
		(SIZE_T)-1 - 4095, (SIZE_T)-1 / 2 + 1, (1ULL << 40) + 1,
		1ULL << 47,
	};
	HANDLE g = HeapCreate(0, 0, 0), f = HeapCreate(0, 0, 1 * MiB);
	bool ok = true;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ok &= E(nomem_alloc(c, g, bad[i]));
		ok &= E(nomem_alloc(c, f, bad[i]));
	}
	ok &= E(HeapValidate(g, 0, NULL) && HeapValidate(f, 0, NULL));
	HeapDestroy(g);
	HeapDestroy(f);
	return ok;
}

/* HeapReAlloc to a size that wraps fails and keeps the block. */
static bool c_realloc_wraps(struct hc *c)
{
	static const SIZE_T bad[] = {
		(SIZE_T)-1, (SIZE_T)-1 - 7, (SIZE_T)-1 - 4095,
		(1ULL << 40) + 1,
	};
	HANDLE h = api_lfh_heap(SMALL);
	struct wit s, m, l;
	bool ok = E(wit_new(&s, h, SMALL, 12) && wit_new(&m, h, MED, 13) &&
		    wit_new(&l, h, 2 * MiB, 14));
	size_t i;
	int f;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (f = 0; f < 2; f++) {
			DWORD fl = f ? HEAP_ZERO_MEMORY : 0;

			SetLastError(0);
			ok &= E(!HeapReAlloc(h, fl, s.p, bad[i]) &&
				!HeapReAlloc(h, fl, m.p, bad[i]) &&
				!HeapReAlloc(h, fl, l.p, bad[i]) &&
				GetLastError() == ERROR_NOT_ENOUGH_MEMORY);
		}
	}
	ok &= E(wit_ok(&s) && wit_ok(&m) && wit_ok(&l));
	ok &= E(HeapSize(h, 0, s.p) == SMALL && HeapSize(h, 0, m.p) == MED &&
		HeapSize(h, 0, l.p) == 2 * MiB);
	ok &= E(HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

/* A fixed heap refuses blocks at its per-block limit, whatever is free. */
static bool c_fixed_limit(struct hc *c)
{
	HANDLE f = HeapCreate(0, 0, 8 * MiB);
	unsigned char *p = HeapAlloc(f, 0, 100);
	bool ok = E(p && nomem_alloc(c, f, 0xFFFF0));

	SetLastError(0);
	ok &= E(!HeapReAlloc(f, 0, p, 0xFFFF0) &&
		GetLastError() == ERROR_NOT_ENOUGH_MEMORY);
	ok &= E(HeapSize(f, 0, p) == 100 && HeapValidate(f, 0, NULL));
	HeapDestroy(f);
	return ok;
}

static bool c_create_huge(struct hc *c)
{
	bool ok;

	SetLastError(0);
	ok = E(!HeapCreate(0, (SIZE_T)-1, 0) &&
	       GetLastError() == ERROR_NOT_ENOUGH_MEMORY);
	ok &= E(!HeapCreate(0, 0, (SIZE_T)-1) && !HeapCreate(0, 0, 1ULL << 62));
	ok &= E(!HeapCreate(0, (SIZE_T)-1 - 4095, (SIZE_T)-1 - 4095));
	return ok;
}

/* HeapReAlloc(NULL) is not an allocation; HeapAlloc(0) is a real block. */
static bool c_zero_size(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *a = HeapAlloc(h, 0, 0), *b = HeapAlloc(h, 0, 0);
	unsigned char *q;
	bool ok = E(a && b && a != b && HeapSize(h, 0, a) == 0);

	SetLastError(0xdeadbeef);
	ok &= E(!HeapReAlloc(h, 0, NULL, 10) && GetLastError() == NO_ERROR);
	q = HeapReAlloc(h, 0, b, 0);
	ok &= E(q && HeapSize(h, 0, q) == 0);
	ok &= E(HeapFree(h, 0, a) && HeapFree(h, 0, q));
	ok &= E(free_refused(c, h, a));
	HeapDestroy(h);
	return ok;
}

/* ---- handles ---- */

static bool c_wild_handle(struct hc *c)
{
	static const uintptr_t bad[] = {
		1, 0xdeadbe00, 0x10000, (uintptr_t)static_buf,
		(uintptr_t)-65536,
	};
	PROCESS_HEAP_ENTRY e;
	bool ok = true;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		HANDLE h = (HANDLE)bad[i];

		memset(&e, 0, sizeof(e));
		SetLastError(0);
		ok &= E(!HeapAlloc(h, 0, 10) &&
			GetLastError() == ERROR_INVALID_HANDLE);
		SetLastError(0);
		ok &= E(HeapSize(h, 0, static_buf) == (SIZE_T)-1 &&
			GetLastError() == ERROR_INVALID_HANDLE);
		ok &= E(!HeapWalk(h, &e) && !HeapLock(h) && !HeapDestroy(h));
		ok &= E(!HeapValidate(h, 0, NULL) && !HeapCompact(h, 0));
	}
	return ok;
}

/* A block pointer, or an address inside the first segment, as a handle. */
static bool c_block_as_handle(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, 100);
	bool ok;

	SetLastError(0);
	ok = E(!HeapAlloc((HANDLE)p, 0, 10) &&
	       GetLastError() == ERROR_INVALID_HANDLE);
	SetLastError(0);
	ok &= E(!HeapFree((HANDLE)p, 0, p) &&
		GetLastError() == ERROR_INVALID_HANDLE);
	ok &= E(!HeapDestroy((HANDLE)((char *)h + 16)));
	ok &= E(HeapSize(h, 0, p) == 100 && HeapValidate(h, 0, NULL));
	HeapDestroy(h);
	return ok;
}

static bool c_use_destroyed_handle(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	PROCESS_HEAP_ENTRY e = { 0 };
	bool ok = E(HeapDestroy(h));

	SetLastError(0);
	ok &= E(!HeapAlloc(h, 0, 10) && GetLastError() == ERROR_INVALID_HANDLE);
	SetLastError(0);
	ok &= E(!HeapDestroy(h) && GetLastError() == ERROR_INVALID_HANDLE);
	ok &= E(!HeapWalk(h, &e) && !HeapLock(h) && !HeapUnlock(h));
	return ok;
}

static bool c_destroy_process_heap(struct hc *c)
{
	HANDLE ph = GetProcessHeap();
	void *p;
	bool ok;

	SetLastError(0);
	ok = E(!HeapDestroy(ph) && GetLastError() == ERROR_INVALID_HANDLE);
	p = HeapAlloc(ph, 0, 10);
	ok &= E(p && HeapFree(ph, 0, p));
	return ok;
}

static bool c_unlock_not_held(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	bool ok;

	SetLastError(0);
	ok = E(!HeapUnlock(h) && GetLastError() == ERROR_NOT_OWNER);
	ok &= E(HeapLock(h) && HeapUnlock(h));
	SetLastError(0);
	ok &= E(!HeapUnlock(h) && GetLastError() == ERROR_NOT_OWNER);
	HeapDestroy(h);
	return ok;
}

/* ---- execution and memory after destroy (children) ---- */

/* mov eax, 42; ret */
static const unsigned char code42[] = { 0xB8, 0x2A, 0, 0, 0, 0xC3 };

static int run_code(HANDLE h)
{
	unsigned char *p = HeapAlloc(h, 0, sizeof(code42));
	int (*fn)(void);

	memcpy(p, code42, sizeof(code42));
	__builtin___clear_cache((char *)p, (char *)p + sizeof(code42));
	fn = (int (*)(void))(uintptr_t)p;
	return fn();
}

static bool c_executable_heap(struct hc *c)
{
	HANDLE h = HeapCreate(HEAP_CREATE_ENABLE_EXECUTE, 0, 0);
	bool ok = E(h && run_code(h) == 42);

	HeapDestroy(h);
	return ok;
}

/* Child only: must die of SIGSEGV. */
static bool c_nonexecutable_heap(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);

	run_code(h);
	return false;
}

static bool c_access_after_destroy(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	volatile unsigned char *p = HeapAlloc(h, 0, 100);

	p[0] = 1;
	HeapDestroy(h);
	p[0] = 2;
	return false;
}

/* A heap big enough that its pages are released in the background. */
static bool c_access_after_big_destroy(struct hc *c)
{
	HANDLE h = HeapCreate(0, 0, 0);
	volatile unsigned char *p = NULL;
	int i;

	for (i = 0; i < 64; i++) {
		p = HeapAlloc(h, 0, 64 << 10);
		memset((void *)p, 1, 64 << 10);
	}
	HeapDestroy(h);
	p[0] = 2;
	return false;
}

/* ---- the table ---- */

#define CALL	O_CALL, TM_ABORT
#define CALL_NT	O_CALL, TM_SURVIVE
#define VAL	O_VALIDATE, TM_ABORT
#define VAL_NT	O_VALIDATE, TM_SURVIVE
#define FAULT	O_FAULT, TM_NONE
#define NONE	O_NONE, TM_SURVIVE
#define NONE_AB	O_NONE, TM_ABORT

static const struct hcase cases[] = {
	{ "double_free", "double free of an LFH slot", CALL,
	  c_double_free_lfh, "the run's size entry says free: FALSE, "
	  "ERROR_INVALID_PARAMETER; HeapSize -1, HeapReAlloc NULL" },
	{ "double_free", "double free of a medium block", CALL,
	  c_double_free_medium, "header kind is free: refused" },
	{ "double_free", "double free of a large block", CALL,
	  c_double_free_large, "span unregistered at free: refused "
	  "without touching the (unmapped) address" },
	{ "double_free", "double free in a fixed heap", CALL,
	  c_double_free_fixed, "header kind is free: refused" },
	{ "double_free_delayed", "double free after 1000 other operations",
	  CALL, c_double_free_delayed, "size entry or header still free, or "
	  "header wiped by a merge: refused" },
	{ "double_free_interleaved", "free(a), free(b), free(a)", CALL,
	  c_double_free_interleaved, "size entry says free: refused" },
	{ "double_free_coalesced", "double free of a block merged into "
	  "its free neighbour", CALL, c_double_free_coalesced,
	  "merged headers are wiped: refused" },
	{ "double_free_reuse", "free(p), q = alloc(), free(p)", CALL,
	  c_double_free_reuse, "a freed slot waits on a deferred list until "
	  "its run's free list is used up, so q is not p and p is still "
	  "free: refused (once p is handed out again, a free of p is q's)" },
	{ "invalid_free_unaligned", "free(p + 1), LFH slot", CALL,
	  c_unaligned_lfh, "not 16-byte aligned: refused before any read" },
	{ "invalid_free_unaligned", "free(p + 8), medium block", CALL,
	  c_unaligned_medium, "not 16-byte aligned: refused before any read" },
	{ "invalid_free_interior", "free(p + 16), LFH slot", CALL,
	  c_interior_lfh, "not a slot start (the stride does not divide "
	  "the offset): refused before any read of the block" },
	{ "invalid_free_interior", "free(p + 256), medium block", CALL,
	  c_interior_medium, "fails the keyed header check: refused" },
	{ "invalid_free_interior", "free(p + 4096), large block", CALL,
	  c_interior_large, "not the span's block address: refused" },
	{ "invalid_free_stack", "free of a stack address", CALL, c_stack,
	  "page map has no span there: refused without a read" },
	{ "invalid_free_static", "free of a static buffer", CALL, c_static,
	  "page map has no span there: refused without a read" },
	{ "invalid_free_far", "free of unmapped and non-canonical addresses",
	  CALL, c_far, "page map: refused without a read" },
	{ "invalid_free_libc", "free of a malloc() block", CALL, c_libc,
	  "page map has no span there: refused" },
	{ "invalid_free_handle", "free of the heap handle / segment header",
	  CALL, c_handle_as_block, "before the first block: refused" },
	{ "invalid_free_uncommitted", "free of an uncommitted address in "
	  "the heap", CALL, c_uncommitted, "gap array says uncommitted: "
	  "refused without a read (no SIGBUS/SIGSEGV)" },
	{ "invalid_free_foreign", "free of another heap's slot, medium and "
	  "large block", CALL, c_foreign, "span's heap is not the handle's: "
	  "refused" },
	{ "invalid_free_process_heap", "free of a process-heap block "
	  "through a private heap", CALL, c_process_heap_block,
	  "span's heap differs: refused" },
	{ "invalid_free_destroyed_heap", "free of a destroyed heap's block "
	  "through a live heap", CALL, c_destroyed_heap_block,
	  "spans unregistered at destroy: refused" },
	{ "invalid_free_destroyed_handle", "free/size/realloc with a "
	  "destroyed heap's handle", CALL_NT, c_destroyed_handle,
	  "ERROR_INVALID_HANDLE (a bad handle is not corruption: no "
	  "termination)" },
	{ "invalid_free_bad_handle", "free with a NULL or wild handle",
	  CALL_NT, c_null_handle, "ERROR_INVALID_HANDLE" },
	{ "invalid_free_after_realloc", "free of the old pointer after a "
	  "moving HeapReAlloc", CALL, c_after_realloc_move,
	  "old block freed by the move: refused" },
	{ "invalid_free_after_realloc", "same, LFH slot moved to a medium "
	  "block", CALL, c_after_realloc_class, "size entry says free: "
	  "refused" },
	{ "realloc_freed", "HeapReAlloc of a freed block (also "
	  "IN_PLACE_ONLY)", CALL, c_realloc_freed, "NULL, "
	  "ERROR_INVALID_PARAMETER" },
	{ "realloc_foreign", "HeapReAlloc of another heap's block", CALL,
	  c_realloc_foreign, "NULL, ERROR_INVALID_PARAMETER; the block is "
	  "untouched" },
	{ "size_freed", "HeapSize of a freed block", CALL_NT, c_size_freed,
	  "(SIZE_T)-1, ERROR_INVALID_PARAMETER; a query, never terminates" },
	{ "size_interior", "HeapSize of an interior pointer", CALL_NT,
	  c_size_interior, "(SIZE_T)-1, ERROR_INVALID_PARAMETER; a query, "
	  "never terminates" },
	{ "validate_bad", "HeapValidate of freed, interior, stack, static, "
	  "unmapped, uncommitted pointers", CALL_NT, c_validate_bad,
	  "FALSE, last error unchanged, never terminates" },
	{ "one_byte_overflow", "1 byte past an LFH slot (exact size)", VAL,
	  c_one_byte_overflow_lfh, "the slot's keyed canary (its last 8 "
	  "bytes) damaged: HeapValidate FALSE; the block is refused by every "
	  "call" },
	{ "one_byte_overflow", "1 byte past a medium block (exact size)",
	  VAL, c_one_byte_overflow_medium, "next header damaged: "
	  "HeapValidate FALSE; that block is refused" },
	{ "one_byte_overflow", "1 byte past a fixed-heap block", VAL,
	  c_one_byte_overflow_fixed, "next header damaged: HeapValidate "
	  "FALSE; that block is refused" },
	{ "one_byte_overflow_memcpy", "memcpy 1 byte too many, medium block",
	  VAL, c_one_byte_overflow_memcpy, "as the loop version" },
	{ "32_byte_overflow", "32 bytes past an LFH slot", VAL,
	  c_32_byte_overflow_lfh, "the slot's canary damaged: found (the "
	  "next slot, headerless, keeps its entry)" },
	{ "32_byte_overflow", "32 bytes past a medium block", VAL,
	  c_32_byte_overflow_medium, "next header damaged: found" },
	{ "32_byte_overflow_memcpy", "memcpy 32 bytes too many, LFH slot",
	  VAL, c_32_byte_overflow_memcpy, "as the loop version" },
	{ "one_byte_underflow", "1 byte before an LFH slot", VAL,
	  c_one_byte_underflow_lfh, "the previous slot's canary damaged: "
	  "found; that block is refused by every call" },
	{ "one_byte_underflow", "1 byte before a medium block", VAL,
	  c_one_byte_underflow_medium, "own header damaged: found" },
	{ "32_byte_underflow", "32 bytes before a medium block", VAL,
	  c_32_byte_underflow_medium, "own header damaged: found (the "
	  "previous block's last 16 bytes are the caller's write)" },
	{ "32_byte_underflow_memcpy", "memcpy 32 bytes before an LFH slot",
	  VAL, c_32_byte_underflow_memcpy, "the previous slot's canary "
	  "damaged: found" },
	{ "large_underflow", "1 byte before a large block", VAL,
	  c_underflow_large, "large header damaged: found" },
	{ "overflow_into_free", "32 bytes into a free neighbour", VAL,
	  c_overflow_into_free, "HeapValidate FALSE; the next allocation "
	  "reports it and drops its bin; merging and HeapCompact never use "
	  "the damaged block" },
	{ "overflow_then_realloc", "16 bytes into the next header, then "
	  "HeapReAlloc grows the block (256 secrets and bytes)", VAL_NT,
	  c_overflow_then_realloc, "the neighbour fails the intact-block "
	  "check (header, size, footer): the block moves instead of "
	  "swallowing it" },
	{ "overflow_then_compact", "overflow into a free neighbour, then "
	  "HeapCompact (64 secrets and lengths)", VAL,
	  c_overflow_then_compact, "the damaged free block is reported and "
	  "its bin dropped; no page is decommitted on its word" },
	{ "overflow_into_gap", "8 bytes into the header of uncommitted "
	  "pages", VAL_NT, c_overflow_into_gap, "gap header damaged: "
	  "HeapValidate FALSE" },
	{ "underflow_signature", "overwrite of the segment signature", VAL_NT,
	  c_underflow_signature, "HeapValidate FALSE" },
	{ "one_byte_overflow_slack", "1 byte past a 33-byte LFH block", NONE,
	  c_one_byte_overflow_slack, "lands in the block's own padding "
	  "before its canary (stride 48: 33 bytes, 7 of padding, 8 of "
	  "canary): harmless, no other byte changes" },
	{ "one_byte_overflow_large", "1 byte past a 3 MiB large block", NONE,
	  c_one_byte_overflow_large, "lands in the span's last page, past "
	  "the block: harmless" },
	{ "write_zero_size", "16 bytes written to a 0-byte block", NONE,
	  c_write_zero_size, "lands in the slot's 24 bytes before its "
	  "canary: harmless" },
	{ "write_zero_size_far", "25 bytes written to a 0-byte block", VAL,
	  c_write_zero_size_far, "the slot's canary damaged: found" },
	{ "walk_damaged", "HeapWalk over a header with a damaged size",
	  VAL_NT, c_walk_damaged, "walk stops with ERROR_INVALID_PARAMETER; "
	  "reads only committed memory" },
	{ "walk_forged", "HeapWalk with forged entries (wild lpData, made-up "
	  "cursor)", CALL_NT, c_walk_forged, "outside the cursor's segment: "
	  "FALSE, ERROR_INVALID_PARAMETER; inside: the walk goes on from "
	  "there" },
	{ "write_after_free", "write to a freed medium block's links", VAL,
	  c_write_after_free_medium, "HeapValidate FALSE; the next allocation "
	  "reports it and drops the list, never follows the links" },
	{ "write_after_free", "write to a freed LFH slot's link", VAL,
	  c_write_after_free_lfh, "HeapValidate FALSE; the run stops serving "
	  "its list, later blocks come from good runs" },
	{ "write_after_free_data", "write to a freed block past its links",
	  NONE, c_write_after_free_data, "no free-fill check: free bytes "
	  "nobody reads; harmless to other blocks" },
	{ "write_after_free_reused", "dangling write after the address was "
	  "handed out again", NONE, c_write_after_free_reused, "the bytes "
	  "are the new owner's data: a use after free no allocator without "
	  "quarantine can see" },
	{ "read_after_free", "read of a freed block (zero_after_free)", NONE,
	  c_read_after_free, "freed blocks are not wiped (Windows neither, "
	  "without the free-checking gflag)" },
	{ "zero_on_alloc", "old data in a reused block without "
	  "HEAP_ZERO_MEMORY", NONE, c_zero_on_alloc, "as on Windows; fresh "
	  "pages and HEAP_ZERO_MEMORY blocks are zero" },
	{ "impossibly_large_alloc", "HeapAlloc(SIZE_MAX), growable, fixed, "
	  "process heap", CALL_NT, c_impossibly_large,
	  "NULL, ERROR_NOT_ENOUGH_MEMORY" },
	{ "size_wraps", "sizes that wrap when rounded (SIZE_MAX-7, -15, "
	  "2^63, 2^40+1...)", CALL_NT, c_size_wraps,
	  "NULL, ERROR_NOT_ENOUGH_MEMORY" },
	{ "realloc_size_wraps", "HeapReAlloc to SIZE_MAX, SIZE_MAX-7, "
	  "2^40+1", CALL_NT, c_realloc_wraps, "NULL, "
	  "ERROR_NOT_ENOUGH_MEMORY; the block is unchanged" },
	{ "fixed_block_limit", "0xFFFF0 bytes in a fixed heap", CALL_NT,
	  c_fixed_limit, "NULL, ERROR_NOT_ENOUGH_MEMORY (spec 3.3)" },
	{ "create_huge", "HeapCreate with SIZE_MAX sizes", CALL_NT,
	  c_create_huge, "NULL, ERROR_NOT_ENOUGH_MEMORY" },
	{ "zero_size", "HeapAlloc(0), HeapReAlloc(NULL), realloc to 0, "
	  "double free of a 0-byte block", CALL, c_zero_size,
	  "0-byte blocks are real blocks; HeapReAlloc(NULL) is NULL with "
	  "NO_ERROR; the double free is refused" },
	{ "wild_handle", "calls with wild handles", CALL_NT, c_wild_handle,
	  "ERROR_INVALID_HANDLE, checked through the page map" },
	{ "block_as_handle", "a block pointer or an interior address as the "
	  "handle", CALL_NT, c_block_as_handle, "ERROR_INVALID_HANDLE" },
	{ "destroyed_handle", "every call with a destroyed handle, and "
	  "HeapDestroy twice", CALL_NT, c_use_destroyed_handle,
	  "ERROR_INVALID_HANDLE" },
	{ "destroy_process_heap", "HeapDestroy(GetProcessHeap())", CALL_NT,
	  c_destroy_process_heap, "FALSE, ERROR_INVALID_HANDLE; the heap "
	  "stays usable" },
	{ "unlock_not_held", "HeapUnlock without HeapLock", CALL_NT,
	  c_unlock_not_held, "FALSE, ERROR_NOT_OWNER" },
	{ "executable_heap", "run code in a HEAP_CREATE_ENABLE_EXECUTE heap",
	  O_ALLOWED, TM_SURVIVE, c_executable_heap, "runs, as asked for "
	  "(pages are PROT_EXEC)" },
	{ "non_executable_heap", "run code in an ordinary heap", FAULT,
	  c_nonexecutable_heap, "SIGSEGV: pages are never PROT_EXEC" },
	{ "access_after_destroy", "write to a block after HeapDestroy",
	  FAULT, c_access_after_destroy, "SIGSEGV: the spans are unmapped "
	  "(never another heap's memory until the address is reused)" },
	{ "access_after_destroy", "write to a block of a 4 MiB heap after "
	  "HeapDestroy", FAULT, c_access_after_big_destroy, "SIGSEGV: the "
	  "spans are inaccessible at once (memfd: unmapped when the "
	  "background punch is done)" },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ---- running cases ---- */

struct child_result {
	int status;
	char info[16384];
	char err[1024];
};

static void read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += r;
	buf[n] = 0;
}

/* Run case @k in a child; with @term, termination is enabled first. */
static void run_child(const struct hcase *k, bool term,
		      struct child_result *r)
{
	int info[2], err[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (pipe(info) || pipe(err)) {
		r->status = -1;
		return;
	}
	fflush(stdout);
	pid = fork();
	if (!pid) {
		struct hc c = { .term = term, .info = info[1] };
		struct sigaction sa = { .sa_handler = SIG_DFL };

		dup2(err[1], 2);
		close(info[0]);
		close(err[0]);
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
		if (term)
			HeapSetInformation(NULL,
					   HeapEnableTerminationOnCorruption,
					   NULL, 0);
		_exit(k->fn(&c) ? 0 : 1);
	}
	close(info[1]);
	close(err[1]);
	read_all(info[0], r->info, sizeof(r->info));
	read_all(err[0], r->err, sizeof(r->err));
	waitpid(pid, &r->status, 0);
	close(info[0]);
	close(err[0]);
}

/* The child died of SIGABRT naming the last announced heap and block. */
static bool term_ok(const struct child_result *r, char *why, size_t n)
{
	char hp[40] = "?", bp[40] = "?";
	const char *last = r->info, *s;

	for (s = r->info; *s; s++)
		if (*s == '\n' && s[1])
			last = s + 1;
	if (sscanf(last, "%39s %39s", hp, bp) != 2) {
		snprintf(why, n, "nothing announced");
		return false;
	}
	if (!WIFSIGNALED(r->status) || WTERMSIG(r->status) != SIGABRT) {
		snprintf(why, n, "no SIGABRT (status %#x)", r->status);
		return false;
	}
	if (!strstr(r->err, "heap corruption") || !strstr(r->err, hp) ||
	    (strcmp(bp, "(nil)") && !strstr(r->err, bp))) {
		snprintf(why, n, "message does not name %s and %s: %.200s",
			 hp, bp, r->err);
		return false;
	}
	snprintf(why, n, "heap %s, block %s", hp, bp);
	return true;
}

static int counts[O_COUNT];
static bool results[128];

static void run_case(unsigned int i)
{
	const struct hcase *k = &cases[i];
	struct child_result r;
	char why[300];
	bool ok;

	if (k->out == O_FAULT) {
		run_child(k, false, &r);
		ok = WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV;
		T_OK(ok, "case %u %s: %s: %s (status %#x)", i + 1, k->id,
		     k->what, o_names[k->out], r.status);
	} else {
		struct hc c = { .info = -1 };

		ok = k->fn(&c);
		T_OK(ok, "case %u %s: %s: %s%s%s", i + 1, k->id, k->what,
		     o_names[k->out], ok ? "" : " -- ", c.why);
	}
	if (k->tm == TM_ABORT) {
		run_child(k, true, &r);
		ok &= term_ok(&r, why, sizeof(why));
		T_OK(term_ok(&r, why, sizeof(why)), "case %u with termination "
		     "on corruption: SIGABRT, %s", i + 1, why);
	} else if (k->tm == TM_SURVIVE) {
		run_child(k, true, &r);
		ok &= WIFEXITED(r.status) && !WEXITSTATUS(r.status) &&
		      !strstr(r.err, "heap corruption");
		T_OK(WIFEXITED(r.status) && !WEXITSTATUS(r.status) &&
		     !strstr(r.err, "heap corruption"), "case %u with "
		     "termination on corruption: no termination (status %#x)",
		     i + 1, r.status);
	}
	if (ok)
		counts[k->out]++;
	results[i] = ok;
}

static const char *const tm_names[] = {
	[TM_NONE] = "-", [TM_ABORT] = "ends the process",
	[TM_SURVIVE] = "no termination",
};

/* The table for docs/RELIABILITY.md (hostile_test -m). */
static void print_markdown(void)
{
	unsigned int i;

	printf("| # | case | what | outcome | with termination on "
	       "corruption | what heapdev does | checked |\n"
	       "|---|---|---|---|---|---|---|\n");
	for (i = 0; i < NCASES; i++)
		printf("| %u | %s | %s | %s | %s | %s | %s |\n", i + 1,
		       cases[i].id, cases[i].what, o_names[cases[i].out],
		       tm_names[cases[i].tm], cases[i].does,
		       results[i] ? "yes" : "**FAILED**");
	printf("\n%zu cases: %d detected by the call, %d by HeapValidate, "
	       "%d by a fault, %d not detected, %d allowed.\n", NCASES,
	       counts[O_CALL], counts[O_VALIDATE], counts[O_FAULT],
	       counts[O_NONE], counts[O_ALLOWED]);
}

static void print_table(void)
{
	unsigned int i;

	printf("#\n# %-3s %-30s %-12s %s\n", "#", "case", "outcome",
	       "what heapdev does");
	for (i = 0; i < NCASES; i++)
		printf("# %-3u %-30s %-12s %s: %s\n", i + 1, cases[i].id,
		       o_names[cases[i].out], cases[i].what, cases[i].does);
	printf("#\n# %zu cases: %d detected by the call, %d by HeapValidate, "
	       "%d by a fault, %d not detected, %d allowed\n", NCASES,
	       counts[O_CALL], counts[O_VALIDATE], counts[O_FAULT],
	       counts[O_NONE], counts[O_ALLOWED]);
}

/*
 *   hostile_test [CASE]     run one case, or all
 *   hostile_test -m         all, then the table in Markdown
 */
int main(int argc, char **argv)
{
	bool md = argc > 1 && !strcmp(argv[1], "-m");
	unsigned int i, only = argc > 1 && !md ? atoi(argv[1]) : 0;

	_Static_assert(NCASES <= sizeof(results) / sizeof(results[0]),
		       "results[] too small");
	t_verbose = !md;
	printf("# heapdev hostile frees and overflows: %zu cases\n", NCASES);
	for (i = 0; i < NCASES; i++)
		if (!only || only == i + 1)
			run_case(i);
	if (md)
		print_markdown();
	else
		print_table();
	return t_done();
}
