// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The API suite: every Win32 heap function and every applicable case of
 * section 4 of WIN32_HEAP_SPEC.md ("case N" below), plus the native API.
 * It runs on the default backend: the memfd backend on the host
 * (HEAPDEV_BACKEND=memfd), the real /dev/heapdev in the VM.
 *
 * Cases 56-58 need the gflags debug heap (tail and free fill patterns),
 * which HeapCreate drops on Windows too; they are not applicable.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "api_suite.h"
#include "t.h"

#define P	sizeof(void *)
#define A	((SIZE_T)0x8000 * P)
#define PG	((SIZE_T)4096)
#define SENTINEL 0xdeadbeefu

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

bool api_all_byte(const void *p, size_t n, unsigned char v)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i] != v)
			return false;
	return true;
}

/* Collect a heap's walk; return the number of entries (at most max). */
static int walk_all(HANDLE h, PROCESS_HEAP_ENTRY *out, int max, DWORD *le)
{
	PROCESS_HEAP_ENTRY e;
	int n = 0;

	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e)) {
		if (n < max)
			out[n] = e;
		n++;
	}
	*le = GetLastError();
	return n;
}

/* ---- cases 1-5: creation, process heaps, HeapFree(NULL) ---- */

static void case_1_to_3(void)
{
	DWORD before, after, n;
	HANDLE h, h2, buf[64], small[1] = { (HANDLE)1 };

	before = GetProcessHeaps(0, NULL);
	T_OK(before >= 1, "case 3: GetProcessHeaps(0, NULL) = %u >= 1", before);
	h = HeapCreate(0, 0, 0);
	T_OK(h != NULL, "case 1: HeapCreate(0, 0, 0) succeeds");
	T_EQ((uintptr_t)h & 0xFFFF, 0, "case 1: handle is 64 KiB aligned");
	after = GetProcessHeaps(0, NULL);
	T_EQ(after, before + 1, "case 1: GetProcessHeaps counts the new heap");
	T_OK(HeapDestroy(h), "case 1: HeapDestroy returns TRUE");
	T_EQ(GetProcessHeaps(0, NULL), before, "case 1: count back after "
	     "HeapDestroy");

	h = HeapCreate(0, 0, 0);
	h2 = HeapCreate(0, 0, 0);
	n = GetProcessHeaps(64, buf);
	T_EQ(n, before + 2, "case 2: two more heaps listed");
	T_OK(buf[0] == GetProcessHeap(), "case 2: the process heap is first");
	T_OK(buf[before] == h && buf[before + 1] == h2,
	     "case 2: heaps listed in creation order");
	n = GetProcessHeaps(1, small);
	T_EQ(n, before + 2, "case 3: the total is returned when the buffer is "
	     "too small");
	T_OK(small[0] == (HANDLE)1, "case 3: nothing stored when the buffer "
	     "is too small");
	HeapDestroy(h);
	HeapDestroy(h2);
}

static void case_4(void)
{
	HANDLE h = HeapCreate(HEAP_TAIL_CHECKING_ENABLED |
			      HEAP_FREE_CHECKING_ENABLED | HEAP_NO_SERIALIZE,
			      0, 0);
	ULONG two = 2, u = 99;
	void *p;

	T_OK(h != NULL, "case 4: HeapCreate with checking flags succeeds");
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapCompatibilityInformation, &two,
				 sizeof(two)) &&
	     GetLastError() == ERROR_INVALID_PARAMETER,
	     "case 4: HEAP_NO_SERIALIZE took effect (no LFH allowed)");
	p = HeapAlloc(h, 0, 17);
	T_OK(p && HeapSize(h, 0, p) == 17,
	     "case 4: checking flags dropped (exact size, no tail pattern)");
	HeapQueryInformation(h, HeapCompatibilityInformation, &u, sizeof(u),
			     NULL);
	T_EQ(u, 0, "case 4: compatibility 0");
	HeapDestroy(h);
}

static void case_5(void)
{
	HANDLE h = HeapCreate(0, 0, 0);

	T_OK(HeapFree(h, 0, NULL), "case 5: HeapFree(h, 0, NULL) is TRUE");
	T_OK(HeapFree(NULL, 0, NULL), "case 5: HeapFree(NULL, 0, NULL) is TRUE");
	HeapDestroy(h);
}

/* ---- cases 6-13: ReAlloc(NULL), validate, sizes ---- */

static char static_buf[256] __attribute__((aligned(64)));

static void case_6_to_13(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *p, *q;

	SetLastError(SENTINEL);
	T_OK(!HeapReAlloc(h, 0, NULL, 1), "case 6: HeapReAlloc(NULL) is NULL");
	T_EQ(GetLastError(), NO_ERROR, "case 6: last error NO_ERROR");

	SetLastError(SENTINEL);
	T_OK(HeapValidate(h, 0, NULL), "case 7: fresh heap validates");
	T_EQ(GetLastError(), SENTINEL, "case 7: last error untouched");

	SetLastError(SENTINEL);
	T_OK(!HeapValidate(h, 0, static_buf), "case 8: static buffer is not "
	     "a block");
	T_EQ(GetLastError(), SENTINEL, "case 8: last error untouched");

	SetLastError(SENTINEL);
	T_OK(!HeapValidate(h, 0, (void *)0xdeadbe00), "case 9: unmapped "
	     "pointer is not a block (no crash)");
	T_EQ(GetLastError(), SENTINEL, "case 9: last error untouched "
	     "(documented choice; Windows versions differ)");

	p = HeapAlloc(h, 0, 0);
	T_OK(p != NULL, "case 10: HeapAlloc(0) gives a block");
	T_EQ(HeapSize(h, 0, p), 0, "case 10: of size 0");
	T_OK(!HeapReAlloc(h, 0, p, ~(SIZE_T)0 - 7), "case 10: realloc to "
	     "~0-7 fails");
	T_OK(!HeapReAlloc(h, 0, p, ~(SIZE_T)0), "case 10: realloc to ~0 "
	     "fails");
	T_OK(HeapValidate(h, 0, p), "case 10: block still valid");

	T_OK(HeapFree(h, 0, p), "case 11: HeapFree");
	SetLastError(SENTINEL);
	T_OK(!HeapValidate(h, 0, p), "case 11: freed block is invalid");
	T_EQ(GetLastError(), SENTINEL, "case 11: last error untouched");

	SetLastError(SENTINEL);
	T_OK(!HeapAlloc(h, 0, ~(SIZE_T)0), "case 12: HeapAlloc(~0) fails");
	T_EQ(GetLastError(), ERROR_NOT_ENOUGH_MEMORY, "case 12: "
	     "ERROR_NOT_ENOUGH_MEMORY (observed behaviour)");

	p = HeapAlloc(h, 0, 1);
	q = HeapReAlloc(h, 0, p, 0);
	T_OK(q != NULL, "case 13: realloc to 0 succeeds");
	T_EQ(HeapSize(h, 0, q), 0, "case 13: size 0");
	HeapFree(h, 0, q);
	HeapDestroy(h);
}

static void case_14(void)
{
	HANDLE ph = GetProcessHeap();
	void *ps[257];
	bool ok = true;
	int n;

	for (n = 0; n <= 256; n++) {
		ps[n] = HeapAlloc(ph, 0, n);
		if (!ps[n] || HeapSize(ph, 0, ps[n]) != (SIZE_T)n)
			ok = false;
	}
	T_OK(ok, "case 14: HeapSize exact for 0..256 on the process heap");
	for (n = 0; n <= 256; n++)
		HeapFree(ph, 0, ps[n]);
}

/* ---- cases 15-19: large blocks and alignment ---- */

static void case_15_to_19(void)
{
	HANDLE h = HeapCreate(0, 0, 0), ph = GetProcessHeap();
	uintptr_t orv = 0;
	bool aligned = true;
	void *p, *q, *ps[128];
	int i;

	p = HeapAlloc(h, 0, 5 * A + 1);
	T_OK(p != NULL, "case 15: growable heap: HeapAlloc(5A+1) succeeds");
	T_OK(HeapFree(h, 0, p), "case 15: and HeapFree is TRUE");

	p = HeapAlloc(h, 0, A);
	T_EQ(HeapSize(h, 0, p), A, "case 16: HeapSize == A");
	q = HeapAlloc(h, 0, 4 * A);
	T_OK(q != NULL, "case 16: HeapAlloc(4A) on a growable heap");
	HeapFree(h, 0, p);
	HeapFree(h, 0, q);

	for (i = 0; i < 128; i++) {
		ps[i] = HeapAlloc(h, 0, A);
		if (!ps[i] || ((uintptr_t)ps[i] & (2 * P - 1)))
			aligned = false;
		orv |= (uintptr_t)ps[i];
	}
	T_OK(aligned, "case 17: 128 x HeapAlloc(A) aligned to 2P");
	T_OK(orv & (2 * P), "case 17: but not all to 4P");
	for (i = 0; i < 128; i++)
		HeapFree(h, 0, ps[i]);

	aligned = true;
	orv = 0;
	for (i = 0; i < 128; i++) {
		ps[i] = HeapAlloc(h, 0, 4 * A);
		if (!ps[i] || ((uintptr_t)ps[i] & (8 * P - 1)))
			aligned = false;
		orv |= (uintptr_t)ps[i];
	}
	T_OK(aligned, "case 18: 128 x HeapAlloc(4A) aligned to 8P");
	T_OK(orv & (8 * P), "case 18: but not all to 16P");
	for (i = 0; i < 128; i++)
		HeapFree(h, 0, ps[i]);

	p = HeapAlloc(ph, 0, 512 * 1024);
	T_OK(p && !((uintptr_t)p & 15), "case 19: 512 KiB on the process heap "
	     "is 16-byte aligned");
	HeapFree(ph, 0, p);
	HeapDestroy(h);
}

/* ---- cases 20-26: zeroing and realloc ---- */

static void case_20_to_26(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	SIZE_T sizes[] = { 1, 1 << 20, A };
	unsigned char *p, *q;
	bool ok = true;
	unsigned int i;

	/* Dirty memory first, so that zeroing is really tested. */
	for (i = 0; i < 3; i++) {
		p = HeapAlloc(h, 0, sizes[i]);
		memset(p, 0xAA, sizes[i]);
		HeapFree(h, 0, p);
	}
	for (i = 0; i < 3; i++) {
		p = HeapAlloc(h, HEAP_ZERO_MEMORY, sizes[i]);
		if (!p || !all_zero(p, sizes[i]) ||
		    HeapSize(h, 0, p) != sizes[i])
			ok = false;
		HeapFree(h, 0, p);
	}
	T_OK(ok, "case 20: HEAP_ZERO_MEMORY for 1, 1 MiB and A bytes");

	p = HeapAlloc(h, HEAP_ZERO_MEMORY, A);
	q = HeapReAlloc(h, HEAP_ZERO_MEMORY, p, 3 * A);
	T_OK(q && HeapSize(h, 0, q) == 3 * A && all_zero(q, 3 * A),
	     "case 21: ReAlloc(ZERO, 3A) all zero");
	p = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, q, 3 * A / 2);
	T_OK(p == q, "case 22: IN_PLACE_ONLY shrink to 1.5A keeps the pointer");
	p = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, q, 2 * A);
	T_OK(p == q, "case 22: IN_PLACE_ONLY grow to 2A keeps the pointer");

	p = HeapReAlloc(h, HEAP_ZERO_MEMORY, q, 1);
	T_OK(p && HeapSize(h, 0, p) == 1, "case 23: ReAlloc(ZERO, 1)");
	memset(p, 0, 1);
	q = HeapReAlloc(h, HEAP_ZERO_MEMORY, p, 1 << 20);
	T_OK(q && HeapSize(h, 0, q) == 1 << 20 && all_zero(q, 1 << 20),
	     "case 23: ReAlloc(ZERO, 1 MiB) all zero");

	p = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, q, 3 * A / 2);
	T_OK(p == q, "case 24: large block: IN_PLACE_ONLY shrink keeps it");
	SetLastError(SENTINEL);
	p = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, q, 2 * A);
	T_OK(p == NULL, "case 24: IN_PLACE_ONLY grow past the decommitted "
	     "tail fails");
	T_EQ(GetLastError(), ERROR_NOT_ENOUGH_MEMORY,
	     "case 24: ERROR_NOT_ENOUGH_MEMORY");
	T_OK(HeapValidate(h, 0, q) && HeapSize(h, 0, q) == 3 * A / 2,
	     "case 25: the failed realloc left the block intact");
	HeapFree(h, 0, q);
	HeapDestroy(h);
}

/* Case 25 and 26 for every kind of block (small, medium, large). */
static void case_25_26_kinds(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	SIZE_T sizes[] = { 40, 3000, 100000, 2 << 20 };
	unsigned int i, j, k;
	bool kept = true, moved = true;

	/* Activate the small classes used below. */
	for (k = 0; k < 20; k++)
		HeapFree(h, 0, HeapAlloc(h, 0, 40));
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 4; j++) {
			unsigned char *p = HeapAlloc(h, 0, sizes[i]), *q;
			SIZE_T m = sizes[i] < sizes[j] ? sizes[i] : sizes[j];

			memset(p, 0x5A, sizes[i]);
			q = HeapReAlloc(h, 0, p, ~(SIZE_T)0 - 100);
			if (q || !HeapValidate(h, 0, p) ||
			    !api_all_byte(p, sizes[i], 0x5A))
				kept = false;
			if (sizes[j] > sizes[i]) {
				q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY,
						p, sizes[j] * 8);
				if (q && q != p)
					kept = false;
				if (q)
					p = q;
			}
			q = HeapReAlloc(h, HEAP_ZERO_MEMORY, p, sizes[j]);
			if (!q || HeapSize(h, 0, q) != sizes[j] ||
			    !api_all_byte(q, m, 0x5A) ||
			    (sizes[j] > m && !all_zero(q + m, sizes[j] - m)))
				moved = false;
			HeapFree(h, 0, q ? q : p);
		}
	}
	T_OK(kept, "case 25: failed reallocs leave small, medium and large "
	     "blocks valid and intact");
	T_OK(moved, "case 26: reallocs between all kinds keep min(old, new) "
	     "bytes and zero the grown tail");
	T_OK(HeapValidate(h, 0, NULL), "case 25/26: heap valid afterwards");
	HeapDestroy(h);
}

/* ---- cases 27-33: fixed heaps ---- */

static void case_27_to_30(void)
{
	HANDLE h = HeapCreate(0, A, A);
	void *p, *q, *r;

	p = HeapAlloc(h, 0, A - (0x400 + 0x100 * P));
	T_OK(p && HeapSize(h, 0, p) == A - (0x400 + 0x100 * P),
	     "case 27: fixed A heap: A-(0x400+0x100P) fits, exact size");
	HeapFree(h, 0, p);
	SetLastError(SENTINEL);
	T_OK(!HeapAlloc(h, 0, A - (0x200 + 0x80 * P)),
	     "case 27: A-(0x200+0x80P) does not");
	T_EQ(GetLastError(), ERROR_NOT_ENOUGH_MEMORY,
	     "case 27: ERROR_NOT_ENOUGH_MEMORY");
	HeapDestroy(h);

	h = HeapCreate(0, 8 * A, 8 * A);
	p = HeapAlloc(h, 0, 0);
	T_OK(p && HeapSize(h, 0, p) == 0, "case 28: fixed 8A heap: "
	     "HeapAlloc(0)");
	SetLastError(SENTINEL);
	T_OK(!HeapAlloc(h, 0, 4 * A), "case 28: HeapAlloc(4A) fails although "
	     "8A is free (per-block limit)");
	T_EQ(GetLastError(), ERROR_NOT_ENOUGH_MEMORY,
	     "case 28: ERROR_NOT_ENOUGH_MEMORY");
	q = HeapAlloc(h, 0, A);
	T_OK(q != NULL, "case 29: HeapAlloc(A) succeeds");
	SetLastError(SENTINEL);
	T_OK(!HeapAlloc(h, 0, 4 * A) &&
	     GetLastError() == ERROR_NOT_ENOUGH_MEMORY,
	     "case 29: HeapAlloc(4A) still fails");
	T_OK(HeapFree(h, 0, p) && HeapFree(h, 0, q), "case 29: both frees "
	     "TRUE");

	p = HeapAlloc(h, HEAP_ZERO_MEMORY, A);
	T_OK(p && all_zero(p, A), "case 30: HeapAlloc(ZERO, A) zeroed");
	memset(p, 0x11, A);
	q = HeapReAlloc(h, HEAP_ZERO_MEMORY, p, 2 * A);
	T_OK(q && api_all_byte(q, A, 0x11) && all_zero((char *)q + A, A),
	     "case 30: ReAlloc(ZERO, 2A) zeroes the new part");
	r = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, q, 3 * A / 2);
	T_OK(r == q, "case 30: IN_PLACE_ONLY to 1.5A keeps the pointer");
	r = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, q, 2 * A);
	T_OK(r == q, "case 30: and back to 2A too");
	T_OK(!HeapReAlloc(h, 0, q, 0x100000), "case 30: realloc above the "
	     "per-block limit fails");
	T_OK(HeapValidate(h, 0, q), "case 30: block intact after that");
	HeapDestroy(h);
}

static void case_31_to_33(void)
{
	HANDLE h = HeapCreate(0, 20 * PG, 50 * PG);
	unsigned char *p, *q, *r;
	bool ok;

	T_OK(h != NULL, "case 31: HeapCreate(0, 20 pages, 50 pages)");
	T_OK(!HeapAlloc(h, 0, 50 * PG + 1), "case 31: 50 pages + 1 does not "
	     "fit");
	p = HeapAlloc(h, 0, 10 * PG);
	q = HeapAlloc(h, HEAP_ZERO_MEMORY, 10 * PG);
	T_OK(p && q && HeapSize(h, 0, p) >= 10 * PG &&
	     HeapSize(h, 0, q) >= 10 * PG && all_zero(q, 10 * PG),
	     "case 31: two 10-page blocks, the second zeroed");
	T_OK(!HeapAlloc(h, 0, 50 * PG), "case 31: then 50 pages fail");
	memset(q, 0x33, 10 * PG);
	r = HeapReAlloc(h, HEAP_ZERO_MEMORY, q, 15 * PG);
	T_OK(r && api_all_byte(r, 10 * PG, 0x33) &&
	     all_zero(r + 10 * PG, 5 * PG),
	     "case 32: ReAlloc(ZERO, 10 -> 15 pages) zeroes the last 5 pages");
	q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, r, 25 * PG);
	ok = q == NULL || q == r;
	q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 12 * PG);
	ok = ok && (q == NULL || q == p);
	T_OK(ok, "case 32: IN_PLACE_ONLY growth gives NULL or the same "
	     "pointer");
	T_EQ((uintptr_t)h & 0xFFFF, 0, "case 33: fixed heap handle 64 KiB "
	     "aligned");
	T_OK(HeapDestroy(h), "case 33: HeapDestroy with live blocks");
}

/* ---- cases 34-41: walk layout ---- */

static void case_34_to_41(void)
{
	PROCESS_HEAP_ENTRY e[64], f[64], g[64];
	HANDLE h = HeapCreate(0, 0, 0);
	DWORD le;
	void *p, *p2;
	int n;

	n = walk_all(h, e, 64, &le);
	T_EQ(n, 3, "case 34: a fresh heap walks as 3 entries");
	T_EQ(le, ERROR_NO_MORE_ITEMS, "case 34: ending in "
	     "ERROR_NO_MORE_ITEMS");
	T_OK(e[0].wFlags == PROCESS_HEAP_REGION && e[1].wFlags == 0 &&
	     e[2].wFlags == PROCESS_HEAP_UNCOMMITTED_RANGE,
	     "case 34: REGION, free, UNCOMMITTED");
	T_OK(e[0].lpData == h && e[0].cbData <= 0x1000 &&
	     e[0].cbOverhead == 0 && e[0].iRegionIndex == 0,
	     "case 35: region entry: lpData == h, cbData <= 0x1000, "
	     "overhead 0, index 0");
	T_EQ(e[0].Region.dwCommittedSize, 0x400 * P,
	     "case 35: committed 0x400*P");
	T_OK(e[0].Region.dwUnCommittedSize > 0 &&
	     e[2].cbData == e[0].Region.dwUnCommittedSize,
	     "case 35/37: uncommitted size = reservation - committed "
	     "(reservation is 4 MiB, not 64 KiB: documented)");
	T_OK(e[0].Region.lpFirstBlock == (char *)e[0].lpData + e[0].cbData +
	     2 * P, "case 36: lpFirstBlock == lpData + cbData + 2P");
	T_OK(e[0].Region.lpLastBlock == (char *)e[2].lpData + e[2].cbData,
	     "case 36: lpLastBlock == end of the uncommitted range");
	T_OK(e[1].cbOverhead == 4 * P, "case 37: free entry overhead 4P");
	T_OK(e[2].lpData == (char *)h + e[0].Region.dwCommittedSize,
	     "case 37: uncommitted range starts at h + committed");
	T_OK(e[2].lpData == (char *)e[1].lpData + e[1].cbData +
	     2 * e[1].cbOverhead, "case 37: == free.lpData + cbData + "
	     "2 * overhead");
	T_OK(e[2].cbOverhead == 0, "case 37: uncommitted overhead 0");

	p = HeapAlloc(h, HEAP_ZERO_MEMORY, 5 * A);
	n = walk_all(h, f, 64, &le);
	T_EQ(n, 4, "case 38: 4 entries after a large block");
	T_OK(!memcmp(f, e, 3 * sizeof(e[0])), "case 38: the first 3 are "
	     "byte-identical");
	T_OK(f[3].wFlags == PROCESS_HEAP_ENTRY_BUSY && f[3].lpData == p &&
	     f[3].cbData == 5 * A && f[3].cbOverhead == 0 &&
	     f[3].iRegionIndex == 64,
	     "case 38: large entry: BUSY, lpData == p, 5A, overhead 0, "
	     "index 64");
	p2 = HeapAlloc(h, HEAP_ZERO_MEMORY, 5 * A);
	n = walk_all(h, g, 64, &le);
	T_OK(n == 5 && g[4].lpData == p2 && !memcmp(g, f, 4 * sizeof(f[0])),
	     "case 39: a second large block adds a fifth entry");
	HeapFree(h, 0, p);
	HeapFree(h, 0, p2);
	n = walk_all(h, g, 64, &le);
	T_OK(n == 3 && !memcmp(g, e, 3 * sizeof(e[0])),
	     "case 39: after freeing both, the walk is byte-identical");

	p = HeapAlloc(h, HEAP_ZERO_MEMORY, 123);
	n = walk_all(h, f, 64, &le);
	T_EQ(n, 4, "case 40: 4 entries after HeapAlloc(123)");
	T_OK(!memcmp(&f[0], &e[0], sizeof(e[0])), "case 40: region entry "
	     "unchanged");
	T_OK(f[1].wFlags == PROCESS_HEAP_ENTRY_BUSY && f[1].lpData == p &&
	     f[1].cbData == 123 && f[1].cbOverhead != 0,
	     "case 40: BUSY, lpData == p, 123 bytes, overhead != 0");
	T_OK(f[2].wFlags == 0 && f[2].cbOverhead == 4 * P &&
	     f[2].lpData == (char *)p + 123 + f[1].cbOverhead + 2 * P,
	     "case 40: free entry at p + 123 + overhead + 2P, overhead 4P");
	T_OK(f[3].wFlags == PROCESS_HEAP_UNCOMMITTED_RANGE,
	     "case 40: then the uncommitted range");
	p2 = HeapAlloc(h, 0, 456);
	n = walk_all(h, g, 64, &le);
	T_OK(n == 5 && g[2].wFlags == PROCESS_HEAP_ENTRY_BUSY &&
	     g[2].lpData == p2 && g[2].cbData == 456,
	     "case 41: HeapAlloc(456) appears right after");
	HeapDestroy(h);
}

/* ---- cases 42-50: information classes ---- */

static void case_42_to_46(void)
{
	HANDLE h = HeapCreate(0, 0, 0), ns, ph = GetProcessHeap();
	ULONG u = 99, v;
	SIZE_T len = 0;

	SetLastError(SENTINEL);
	T_OK(!HeapQueryInformation(NULL, HeapCompatibilityInformation, &u,
				   sizeof(u), &len) &&
	     GetLastError() == ERROR_NOACCESS && len == 0,
	     "case 42: query on NULL: ERROR_NOACCESS, length untouched");
	T_OK(!HeapQueryInformation(h, HeapCompatibilityInformation, NULL, 0,
				   &len) &&
	     GetLastError() == ERROR_INSUFFICIENT_BUFFER && len == 4,
	     "case 43: no buffer: ERROR_INSUFFICIENT_BUFFER, length 4");
	SetLastError(SENTINEL);
	T_OK(!HeapQueryInformation(h, HeapCompatibilityInformation, NULL, 0,
				   NULL) &&
	     GetLastError() == ERROR_INSUFFICIENT_BUFFER,
	     "case 43: same without a length pointer");
	T_OK(HeapQueryInformation(h, HeapCompatibilityInformation, &u, 5,
				  NULL) && u == 0,
	     "case 44: fresh private heap: 0");
	T_OK(HeapQueryInformation(ph, HeapCompatibilityInformation, &u,
				  sizeof(u), NULL) && u <= 2,
	     "case 44: process heap: 0, 1 or 2");

	v = 2;
	T_OK(HeapSetInformation(h, HeapCompatibilityInformation, &v,
				sizeof(v)), "case 45: enable LFH");
	HeapQueryInformation(h, HeapCompatibilityInformation, &u, 4, NULL);
	T_EQ(u, 2, "case 45: query gives 2");
	v = 0;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == ERROR_GEN_FAILURE, "case 45: set 0 fails "
	     "with ERROR_GEN_FAILURE");
	v = 1;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == ERROR_GEN_FAILURE, "case 45: set 1 fails too");
	HeapQueryInformation(h, HeapCompatibilityInformation, &u, 4, NULL);
	T_EQ(u, 2, "case 45: still 2");
	HeapDestroy(h);

	ns = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	v = 2;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(ns, HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == ERROR_INVALID_PARAMETER,
	     "case 46: NO_SERIALIZE heap refuses LFH");
	HeapQueryInformation(ns, HeapCompatibilityInformation, &u, 4, NULL);
	T_EQ(u, 0, "case 46: query gives 0");
	HeapDestroy(ns);
}

static void case_47_48(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	PROCESS_HEAP_ENTRY e[64];
	void *ps[18], *keep;
	ULONG u = 9, two = 2;
	DWORD le;
	int i, n, busy = 0, bad = 0;

	for (i = 0; i < 18; i++)
		ps[i] = HeapAlloc(h, 0, 0);
	for (i = 0; i < 18; i++)
		HeapFree(h, 0, ps[i]);
	HeapQueryInformation(h, HeapCompatibilityInformation, &u, 4, NULL);
	T_EQ(u, 2, "case 47: 18 allocations of one size turn the LFH on");
	HeapDestroy(h);

	h = HeapCreate(0, 0, 0);
	HeapSetInformation(h, HeapCompatibilityInformation, &two, 4);
	for (i = 0; i < 17; i++)
		HeapFree(h, 0, HeapAlloc(h, 0, 24 + 2 * P));
	T_EQ(walk_all(h, e, 64, &le), 3, "case 48: 17 pairs: still 3 "
	     "entries");
	for (i = 0; i < 18; i++)
		HeapFree(h, 0, HeapAlloc(h, 0, 24 + 2 * P));
	keep = HeapAlloc(h, 0, 24 + 2 * P);
	n = 0;
	{
		PROCESS_HEAP_ENTRY w;

		memset(&w, 0, sizeof(w));
		while (HeapWalk(h, &w)) {
			n++;
			if (w.wFlags == PROCESS_HEAP_ENTRY_BUSY) {
				busy++;
				if (w.lpData != keep || w.cbData != 24 + 2 * P ||
				    w.cbOverhead != 8)
					bad++;
			}
		}
	}
	T_OK(n > 24, "case 48: after 18 more the walk has %d > 24 entries", n);
	T_OK(busy == 1 && !bad, "case 48: busy LFH entry: cbData == request, "
	     "cbOverhead == 8");
	HeapDestroy(h);
}

static void case_49_50(void)
{
	HEAP_OPTIMIZE_RESOURCES_INFORMATION o = {
		HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION, 0
	};
	HANDLE h = HeapCreate(0, 0, 0);
	pid_t pid;
	int st = -1;

	/* Irreversible and process-wide: try it in a child. */
	pid = fork();
	if (!pid)
		_exit(HeapSetInformation(NULL, HeapEnableTerminationOnCorruption,
					 NULL, 0) ? 0 : 1);
	waitpid(pid, &st, 0);
	T_OK(WIFEXITED(st) && !WEXITSTATUS(st), "case 49: "
	     "HeapEnableTerminationOnCorruption returns TRUE");
	T_OK(HeapSetInformation(NULL, HeapOptimizeResources, &o, sizeof(o)),
	     "case 50: HeapOptimizeResources on every heap");
	T_OK(HeapSetInformation(h, HeapOptimizeResources, &o, sizeof(o)),
	     "case 50: and on one heap");
	o.Version = 2;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapOptimizeResources, &o, sizeof(o)) &&
	     GetLastError() == ERROR_INVALID_PARAMETER,
	     "case 50: unknown version: ERROR_INVALID_PARAMETER");
	o.Version = 1;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapOptimizeResources, &o, 4) &&
	     GetLastError() == ERROR_INSUFFICIENT_BUFFER,
	     "case 50: short buffer: ERROR_INSUFFICIENT_BUFFER");
	HeapDestroy(h);
}

/* ---- cases 51-55: HeapLock ---- */

struct locker {
	HANDLE h;
	DWORD flags;
	int do_lock;
	size_t size;
	volatile int done;
	int ok;
};

static void *locker_main(void *arg)
{
	struct locker *l = arg;
	void *p;

	if (l->do_lock && !HeapLock(l->h))
		return NULL;
	p = HeapAlloc(l->h, l->flags, l->size);
	l->ok = p != NULL && HeapFree(l->h, l->flags, p);
	if (l->do_lock)
		HeapUnlock(l->h);
	__atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

void *api_lfh_heap(size_t n)
{
	HANDLE h = HeapCreate(0, 0, 0);
	int i;

	for (i = 0; i < 20; i++)
		HeapFree(h, 0, HeapAlloc(h, 0, n));
	return h;
}

bool api_flag_within(volatile int *flag, int ms)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	int i;

	for (i = 0; i < ms / 5; i++) {
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			return true;
		nanosleep(&ts, NULL);
	}
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/*
 * Start a thread doing (HeapLock +) HeapAlloc + HeapFree while this thread
 * holds the lock @depth times; report whether it was blocked for 100 ms
 * and finished after the unlocks.
 */
static void lock_case(HANDLE h, int depth, int do_lock, DWORD flags,
		      size_t size, bool expect_block, const char *what)
{
	struct locker l = { h, flags, do_lock, size, 0, 0 };
	pthread_t t;
	bool early, late;
	int i;

	for (i = 0; i < depth; i++)
		HeapLock(h);
	pthread_create(&t, NULL, locker_main, &l);
	early = api_flag_within(&l.done, expect_block ? 100 : 5000);
	for (i = 0; i < depth; i++) {
		if (i == depth - 1 || !expect_block)
			break;
		HeapUnlock(h);
		if (api_flag_within(&l.done, 50))
			early = true;
	}
	for (; i < depth; i++)
		HeapUnlock(h);
	late = api_flag_within(&l.done, 5000);
	pthread_join(t, NULL);
	if (expect_block)
		T_OK(!early && late && l.ok, "%s: blocked while locked, "
		     "done after HeapUnlock", what);
	else
		T_OK(early && l.ok, "%s: not blocked", what);
}

static void case_51_to_55(void)
{
	HANDLE h = HeapCreate(0, 0, 0), ns;
	void *ps[20];
	int i;

	lock_case(h, 1, 1, 0, 100, true, "case 51: HeapLock + alloc + free");
	lock_case(h, 1, 0, 0, 100, true, "case 51: alloc + free");
	lock_case(h, 1, 0, HEAP_NO_SERIALIZE, 100, false,
		  "case 52: alloc + free with HEAP_NO_SERIALIZE");
	ns = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	T_OK(HeapLock(ns) && HeapUnlock(ns), "case 53: HeapLock/HeapUnlock on "
	     "a NO_SERIALIZE heap are TRUE");
	lock_case(ns, 1, 1, 0, 100, false,
		  "case 53: NO_SERIALIZE heap, locking thread");
	lock_case(ns, 1, 0, 0, 100, false,
		  "case 53: NO_SERIALIZE heap, no locking");
	HeapDestroy(ns);

	for (i = 0; i < 20; i++)
		ps[i] = HeapAlloc(h, 0, 0);
	for (i = 0; i < 20; i++)
		HeapFree(h, 0, ps[i]);
	lock_case(h, 1, 1, 0, 0, true, "case 54: LFH heap: HeapLock");
	lock_case(h, 1, 0, 0, 0, false, "case 54: LFH heap: LFH alloc + free");
	lock_case(h, 2, 1, 0, 100, true, "case 55: recursive HeapLock");
	T_OK(HeapLock(h) && HeapLock(h) && HeapFree(h, 0, HeapAlloc(h, 0, 10))
	     && HeapUnlock(h) && HeapUnlock(h),
	     "case 55: lock twice, alloc, free, unlock twice");
	SetLastError(SENTINEL);
	T_OK(!HeapUnlock(h) && GetLastError() == ERROR_NOT_OWNER,
	     "HeapUnlock without the lock: FALSE, ERROR_NOT_OWNER");
	HeapDestroy(h);
}

/* ---- API points beyond the numbered cases ---- */

static void bad_handles(void)
{
	HANDLE h = HeapCreate(0, 0, 0), dead = HeapCreate(0, 0, 0);
	HANDLE bad[] = { (HANDLE)static_buf, (HANDLE)0x1000, NULL, dead };
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	PROCESS_HEAP_ENTRY e;
	void *p = HeapAlloc(h, 0, 10);
	unsigned int i;
	bool ok = true;

	HeapDestroy(dead);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		HANDLE b = bad[i];

		SetLastError(0);
		ok &= !HeapAlloc(b, 0, 10) &&
		      GetLastError() == ERROR_INVALID_HANDLE;
		SetLastError(0);
		ok &= !HeapReAlloc(b, 0, p, 20) &&
		      GetLastError() == ERROR_INVALID_HANDLE;
		SetLastError(0);
		ok &= !HeapFree(b, 0, p) &&
		      GetLastError() == ERROR_INVALID_HANDLE;
		SetLastError(0);
		ok &= HeapSize(b, 0, p) == (SIZE_T)-1 &&
		      GetLastError() == ERROR_INVALID_HANDLE;
		SetLastError(SENTINEL);
		ok &= !HeapValidate(b, 0, NULL) && GetLastError() == SENTINEL;
		memset(&e, 0, sizeof(e));
		SetLastError(0);
		ok &= !HeapWalk(b, &e) && GetLastError() == ERROR_INVALID_HANDLE;
		SetLastError(0);
		ok &= !HeapCompact(b, 0) &&
		      GetLastError() == ERROR_INVALID_HANDLE;
		ok &= !HeapLock(b) && !HeapUnlock(b) && !HeapSummary(b, 0, &s);
		if (b)
			ok &= !HeapDestroy(b) &&
			      GetLastError() == ERROR_INVALID_HANDLE;
	}
	T_OK(ok, "every call refuses never-created, NULL and destroyed "
	     "handles with ERROR_INVALID_HANDLE (HeapValidate: FALSE only)");
	T_OK(HeapDestroy(NULL), "HeapDestroy(NULL) is TRUE");
	SetLastError(0);
	T_OK(!HeapDestroy(GetProcessHeap()) &&
	     GetLastError() == ERROR_INVALID_HANDLE,
	     "the process heap cannot be destroyed");
	p = HeapAlloc(GetProcessHeap(), 0, 10);
	T_OK(p && HeapFree(GetProcessHeap(), 0, p), "and stays usable");
	T_OK(GetProcessHeap() == GetProcessHeap(), "GetProcessHeap is stable");
	HeapDestroy(h);
}

static void bad_pointers(void)
{
	HANDLE h = HeapCreate(0, 0, 0), h2 = HeapCreate(0, 0, 0);
	SIZE_T sizes[] = { 0, 40, 5000, 60000, 2 << 20 };
	char *mine[5], *other[5];
	unsigned int i, j;
	bool ok = true, sizeok = true, reok = true, valid = true;

	for (i = 0; i < 25; i++)
		HeapFree(h, 0, HeapAlloc(h, 0, 40));
	for (i = 0; i < 5; i++) {
		mine[i] = HeapAlloc(h, 0, sizes[i]);
		other[i] = HeapAlloc(h2, 0, sizes[i]);
	}
	for (i = 0; i < 5; i++) {
		char *wild[] = { other[i], mine[i] + 16, mine[i] + 1,
				 mine[i] - 16, static_buf,
				 (char *)0xdeadbe00, (char *)h + 64 };

		for (j = 0; j < sizeof(wild) / sizeof(wild[0]); j++) {
			SetLastError(0);
			ok &= !HeapFree(h, 0, wild[j]) &&
			      GetLastError() == ERROR_INVALID_PARAMETER;
			SetLastError(0);
			sizeok &= HeapSize(h, 0, wild[j]) == (SIZE_T)-1 &&
				  GetLastError() == ERROR_INVALID_PARAMETER;
			SetLastError(0);
			reok &= !HeapReAlloc(h, 0, wild[j], 10) &&
				GetLastError() == ERROR_INVALID_PARAMETER;
			valid &= !HeapValidate(h, 0, wild[j]);
		}
	}
	T_OK(ok, "HeapFree of foreign, interior, misaligned, static and wild "
	     "pointers: FALSE, ERROR_INVALID_PARAMETER");
	T_OK(sizeok, "HeapSize of them: (SIZE_T)-1, ERROR_INVALID_PARAMETER");
	T_OK(reok, "HeapReAlloc of them: NULL, ERROR_INVALID_PARAMETER");
	T_OK(valid, "HeapValidate of them: FALSE");
	ok = true;
	for (i = 0; i < 5; i++) {
		ok &= HeapSize(h, 0, mine[i]) == sizes[i] &&
		      HeapValidate(h, 0, mine[i]);
		ok &= HeapFree(h, 0, mine[i]);
		SetLastError(0);
		ok &= !HeapFree(h, 0, mine[i]) &&
		      GetLastError() == ERROR_INVALID_PARAMETER;
		ok &= HeapSize(h, 0, mine[i]) == (SIZE_T)-1;
	}
	T_OK(ok, "blocks survived, and double frees of small, medium and "
	     "large blocks are refused");
	T_OK(HeapValidate(h, 0, NULL) && HeapValidate(h2, 0, NULL),
	     "both heaps still valid");
	HeapDestroy(h);
	HeapDestroy(h2);
}

static void user_flags(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *p = HeapAlloc(h, 0x200 | 0x100 | 0xC00, 10), *q;

	T_OK(p && HeapSize(h, 0, p) == 10, "HeapAlloc accepts the user flag "
	     "bits 0xF00");
	q = HeapReAlloc(h, 0xE00, p, 20);
	T_OK(q && HeapSize(h, 0, q) == 20, "HeapReAlloc accepts them too");
	T_OK(HeapFree(h, 0x80000000, q), "unknown bits are ignored");
	HeapDestroy(h);
}

static void summary_and_compact(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	HEAP_SUMMARY s = { .cb = sizeof(s) }, s2 = { .cb = sizeof(s2) };
	void *ps[64];
	SIZE_T largest;
	int i;

	T_OK(HeapSummary(h, 0, &s) && s.cbAllocated == 0 &&
	     s.cbCommitted >= 2 * PG && s.cbReserved >= s.cbCommitted &&
	     s.cbMaxReserve >= s.cbReserved, "HeapSummary of a fresh heap");
	for (i = 0; i < 64; i++)
		ps[i] = HeapAlloc(h, 0, 100000);
	HeapSummary(h, 0, &s);
	T_EQ(s.cbAllocated, 64 * 100000, "cbAllocated is the sum of the "
	     "requested sizes");
	T_OK(s.cbCommitted >= s.cbAllocated, "cbCommitted >= cbAllocated");
	for (i = 0; i < 64; i++)
		HeapFree(h, 0, ps[i]);
	HeapSummary(h, 0, &s);
	T_OK(s.cbCommitted < 4 << 20, "freed memory went back (committed %zu "
	     "with hysteresis slack)", s.cbCommitted);
	largest = HeapCompact(h, 0);
	HeapSummary(h, 0, &s2);
	T_OK(s2.cbCommitted <= s.cbCommitted && s2.cbCommitted < 64 * 1024,
	     "HeapCompact decommits (committed %zu -> %zu)", s.cbCommitted,
	     s2.cbCommitted);
	T_OK(largest > 0 && largest < 2 * PG, "HeapCompact returns the "
	     "largest committed free block (%zu)", largest);
	s.cb = 8;
	SetLastError(0);
	T_OK(!HeapSummary(h, 0, &s) && GetLastError() == ERROR_INVALID_PARAMETER,
	     "HeapSummary with a wrong cb fails");
	s.cb = sizeof(s);
	SetLastError(0);
	T_OK(!HeapSummary(h, 1, &s) && GetLastError() == ERROR_INVALID_PARAMETER,
	     "HeapSummary with flags fails");
	T_OK(!HeapSummary(h, 0, NULL), "HeapSummary(NULL) fails");
	HeapDestroy(h);
}

static void growth_and_segments(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	PROCESS_HEAP_ENTRY e;
	void *ps[48];
	int i, regions = 0;
	bool ok = true;

	for (i = 0; i < 48; i++) {
		ps[i] = HeapAlloc(h, 0, 500000);
		ok &= ps[i] && HeapSize(h, 0, ps[i]) == 500000;
		if (ps[i])
			memset(ps[i], i, 500000);
	}
	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e))
		regions += e.wFlags == PROCESS_HEAP_REGION;
	T_OK(ok && regions > 1, "a growable heap grows by segments (%d "
	     "regions for 24 MB)", regions);
	for (i = 0; i < 48; i++)
		ok &= api_all_byte(ps[i], 500000, (unsigned char)i);
	T_OK(ok, "contents intact across segments");
	T_OK(HeapValidate(h, 0, NULL), "heap valid");
	for (i = 0; i < 48; i++)
		HeapFree(h, 0, ps[i]);
	HeapCompact(h, 0);
	HeapSummary(h, 0, &s);
	T_OK(s.cbReserved <= (4 << 20) && s.cbCommitted < (64 << 10),
	     "emptied segments released (reserved %zu, committed %zu)",
	     s.cbReserved, s.cbCommitted);
	T_OK(HeapValidate(h, 0, NULL), "heap valid after release");
	HeapDestroy(h);
}

static void walk_robust(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	PROCESS_HEAP_ENTRY e;
	void *ps[200];
	int i, freed = 0;
	BOOL r;

	for (i = 1; i < 200; i++)
		ps[i] = HeapAlloc(h, 0, (i * 37) % 3000);
	ps[0] = HeapAlloc(h, 0, 3 << 20);
	T_OK(ps[0] && ps[199], "200 blocks for the walk");
	memset(&e, 0, sizeof(e));
	while ((r = HeapWalk(h, &e)))
		if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY)
			freed += HeapFree(h, 0, e.lpData);
	T_OK(GetLastError() == ERROR_NO_MORE_ITEMS && freed == 200,
	     "HeapWalk survives freeing each busy entry (freed %d)", freed);
	SetLastError(0);
	T_OK(!HeapWalk(h, NULL) && GetLastError() == ERROR_INVALID_PARAMETER,
	     "HeapWalk(NULL entry) fails");
	memset(&e, 0, sizeof(e));
	e.lpData = static_buf;
	e.wFlags = PROCESS_HEAP_REGION;
	SetLastError(0);
	T_OK(!HeapWalk(h, &e) && GetLastError() == ERROR_INVALID_PARAMETER,
	     "HeapWalk from a position not in the heap fails");
	HeapDestroy(h);
}

static __thread DWORD seen_error;

static void *le_thread(void *arg)
{
	seen_error = GetLastError();
	SetLastError(77);
	return NULL;
}

static void last_error_per_thread(void)
{
	pthread_t t;

	SetLastError(1234);
	pthread_create(&t, NULL, le_thread, NULL);
	pthread_join(t, NULL);
	T_EQ(GetLastError(), 1234, "the last error is per thread");
}

static sigjmp_buf exc_jmp;
static struct heapdev_exception exc_seen;
static int exc_calls;

static void exc_handler(const struct heapdev_exception *e)
{
	exc_seen = *e;
	exc_calls++;
	siglongjmp(exc_jmp, 1);
}

static void generate_exceptions(void)
{
	HANDLE h = HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0);
	HANDLE h2 = HeapCreate(0, 0, 0);
	void *volatile p = NULL;
	pid_t pid;
	int st;

	exc_calls = 0;
	heapdev_set_exception_handler(exc_handler);
	if (!sigsetjmp(exc_jmp, 1))
		p = HeapAlloc(h, 0, ~(SIZE_T)0);
	T_OK(!p && exc_calls == 1 && exc_seen.code == STATUS_NO_MEMORY &&
	     exc_seen.heap == h, "HEAP_GENERATE_EXCEPTIONS heap: "
	     "STATUS_NO_MEMORY raised to the handler");
	if (!sigsetjmp(exc_jmp, 1))
		p = HeapAlloc(h2, HEAP_GENERATE_EXCEPTIONS, ~(SIZE_T)0);
	T_OK(exc_calls == 2, "per-call HEAP_GENERATE_EXCEPTIONS raises");
	p = HeapAlloc(h2, 0, ~(SIZE_T)0);
	T_OK(!p && exc_calls == 2, "no exception without the flag");
	if (!sigsetjmp(exc_jmp, 1))
		p = HeapReAlloc(h, 0, static_buf, 10);
	T_OK(exc_calls == 3 && exc_seen.code == STATUS_ACCESS_VIOLATION,
	     "HeapReAlloc of a bad pointer raises STATUS_ACCESS_VIOLATION");
	T_OK(HeapFree(h, 0, HeapAlloc(h, 0, 5)), "no exception on success");
	heapdev_set_exception_handler(NULL);

	pid = fork();
	if (!pid) {
		HANDLE c = HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0);

		close(2);
		HeapAlloc(c, 0, ~(SIZE_T)0);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	T_OK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "without a handler "
	     "the exception raises SIGABRT");
	HeapDestroy(h);
	HeapDestroy(h2);
}

static void exec_heap(void)
{
	static const unsigned char code[] = { 0xb8, 0x2a, 0, 0, 0, 0xc3 };
	HANDLE h = HeapCreate(HEAP_CREATE_ENABLE_EXECUTE, 0, 0);
	int (*fn)(void);
	pid_t pid;
	int st;

	fn = (int (*)(void))HeapAlloc(h, 0, sizeof(code));
	memcpy((void *)fn, code, sizeof(code));
	T_EQ(fn(), 42, "HEAP_CREATE_ENABLE_EXECUTE: code runs from the heap");
	HeapDestroy(h);

	pid = fork();
	if (!pid) {
		HANDLE c = HeapCreate(0, 0, 0);

		signal(SIGSEGV, SIG_DFL);	/* not the sanitizer's */
		fn = (int (*)(void))HeapAlloc(c, 0, sizeof(code));
		memcpy((void *)fn, code, sizeof(code));
		_exit(fn() == 42 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	T_OK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
	     "without it, executing heap memory faults");
}

/* A private page at the first free page of [from, to), or MAP_FAILED. */
static char *map_free_page(char *from, char *to)
{
	void *p;

	for (; from < to; from += 4096) {
		p = mmap(from, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE |
			 MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (p == from)
			return p;
		if (p != MAP_FAILED)
			munmap(p, 4096);	/* an old kernel's hint */
	}
	return MAP_FAILED;
}

/*
 * A span shorter than 4 MiB shares its 4 MiB granule with whatever the
 * process maps next to it: unmapping the heap must leave that alone.
 */
static void neighbour_mappings(void)
{
	HANDLE h = HeapCreate(0, 0, 64 << 10);
	void *big = HeapAlloc(GetProcessHeap(), 0, 1536 << 10);
	char *n1 = MAP_FAILED, *n2 = MAP_FAILED;
	uintptr_t lg;
	bool ok;

	HeapFree(GetProcessHeap(), 0, big);
	big = HeapAlloc(GetProcessHeap(), 0, 1536 << 10);	/* large span */
	lg = (uintptr_t)big & ~(uintptr_t)((4 << 20) - 1);
	/*
	 * Any free page of each granule will do: the library's own metadata
	 * and the block itself may sit anywhere in it.
	 */
	if (h) {
		char *g = (char *)((uintptr_t)h & ~(uintptr_t)((4 << 20) - 1));

		n1 = map_free_page(g, g + (4 << 20));
	}
	if (big)
		n2 = map_free_page((char *)lg, (char *)lg + (4 << 20));
	if (n1 == MAP_FAILED || n2 == MAP_FAILED) {
		T_OK(0, "could map pages next to a small heap and a large "
		     "block");
		return;
	}
	n1[0] = 'x';
	n2[0] = 'y';
	HeapDestroy(h);
	HeapFree(GetProcessHeap(), 0, big);
	h = HeapCreate(0, 0, 0);	/* may reuse a cached address range */
	ok = HeapFree(h, 0, HeapAlloc(h, 0, 100));
	ok &= n1[0] == 'x' && n2[0] == 'y';
	T_OK(ok, "unmapping a small heap or a large block leaves other "
	     "mappings in the same 4 MiB granule alone");
	munmap(n1, 4096);
	munmap(n2, 4096);
	HeapDestroy(h);
}

/* ---- HEAPDEV_INHERIT: a fork child keeps the heap ---- */

static struct heapdev_heap *inh_heap;
static char *inh_block;
static volatile int inh_hook_saw;	/* 1: kept, 2: gone, in the hook */

static void inh_hook_child(void)
{
	if (inh_heap)
		inh_hook_saw = heapdev_heap_of(inh_block) == inh_heap ? 1 : 2;
}

static bool all_bytes(const char *p, size_t n, char c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != c)
			return false;
	return true;
}

/* More inheritable heaps than the fork handlers' first arrays hold. */
static void inherit_many(void)
{
	struct heapdev_options o = { .size = sizeof(o),
				     .flags = HEAPDEV_INHERIT };
	struct heapdev_heap *hs[40];
	int *ps[40];
	int i, n = 0, st;
	pid_t pid;

	for (; n < 40; n++) {
		if (heapdev_create(&o, &hs[n]))
			break;
		ps[n] = heapdev_alloc(hs[n], sizeof(int), 0);
		if (!ps[n]) {
			heapdev_destroy(hs[n]);
			break;
		}
		*ps[n] = n;
	}
	pid = fork();
	if (!pid) {
		struct heapdev_heap_info info = { .size = sizeof(info) };
		int bad = 0;

		for (i = 0; i < n; i++)
			bad += heapdev_get_info(hs[i], &info) || *ps[i] != i ||
			       heapdev_free(hs[i], ps[i], 0);
		_exit(bad ? 1 : 0);
	}
	waitpid(pid, &st, 0);
	T_OK(n == 40 && WIFEXITED(st) && !WEXITSTATUS(st), "HEAPDEV_INHERIT: "
	     "a child keeps %d inheritable heaps and their blocks (status %#x)",
	     n, st);
	for (i = 0; i < n; i++)
		heapdev_destroy(hs[i]);
}

static void inherit_heaps(void)
{
	struct heapdev_options o = { .size = sizeof(o),
				     .flags = HEAPDEV_INHERIT };
	HANDLE other = HeapCreate(0, 0, 0);
	char *big, *q, *pp = HeapAlloc(GetProcessHeap(), 0, 300);
	size_t n = 0;
	pid_t pid;
	int st;

	T_EQ(heapdev_create(&o, &inh_heap), 0, "HEAPDEV_INHERIT heap created");
	T_EQ(heapdev_atfork(NULL, NULL, inh_hook_child), 0,
	     "heapdev_atfork registers a child handler");
	inh_block = heapdev_alloc(inh_heap, 100, 0);
	big = heapdev_alloc(inh_heap, 3 << 20, 0);
	q = HeapAlloc(other, 0, 50);
	if (!inh_block || !big || !q || !pp) {
		T_OK(0, "inherit: allocations");
		return;
	}
	memset(inh_block, 'i', 100);
	memset(big, 'b', 3 << 20);
	memset(pp, 'p', 300);
	pid = fork();
	if (!pid) {
		int bad = 0;

		bad |= (inh_hook_saw != 1) << 0;
		bad |= (!all_bytes(inh_block, 100, 'i') ||
			!all_bytes(big, 3 << 20, 'b')) << 1;
		bad |= (heapdev_size(inh_heap, inh_block, 0, &n) || n != 100) << 2;
		memset(inh_block, 'c', 100);
		bad |= (heapdev_free(inh_heap, inh_block, 0) ||
			heapdev_free(inh_heap, big, 0)) << 3;
		bad |= (heapdev_validate(inh_heap, NULL, 0) != 0) << 4;
		bad |= (!heapdev_alloc(inh_heap, 5000, 0)) << 5;
		/* The process heap is inheritable; a HeapCreate heap is not. */
		bad |= (!all_bytes(pp, 300, 'p') ||
			!HeapFree(GetProcessHeap(), 0, pp)) << 6;
		bad |= (HeapAlloc(other, 0, 10) != NULL ||
			GetLastError() != ERROR_INVALID_HANDLE) << 7;
		bad |= (heapdev_destroy(inh_heap) != 0) << 8;
		_exit(bad);
	}
	waitpid(pid, &st, 0);
	T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "HEAPDEV_INHERIT: the child "
	     "reads, writes, frees and allocates in its copy of the heap and "
	     "of the process heap; HeapCreate heaps stay the parent's (status %#x)",
	     WIFEXITED(st) ? WEXITSTATUS(st) : st);
	T_OK(all_bytes(inh_block, 100, 'i') && all_bytes(big, 3 << 20, 'b') &&
	     all_bytes(pp, 300, 'p') && !heapdev_validate(inh_heap, NULL, 0),
	     "HEAPDEV_INHERIT: the parent's heap is untouched");
	T_EQ(heapdev_destroy(inh_heap), 0, "HEAPDEV_INHERIT heap destroyed");
	inh_heap = NULL;
	inherit_many();
	HeapFree(GetProcessHeap(), 0, pp);
	HeapDestroy(other);
}

static void fork_child(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *p = HeapAlloc(h, 0, 100);
	pid_t pid;
	int st;

	pid = fork();
	if (!pid) {
		int bad = 0;
		HANDLE c;

		bad |= HeapAlloc(h, 0, 10) != NULL ||
		       GetLastError() != ERROR_INVALID_HANDLE;
		bad |= (HeapFree(h, 0, p) ? 1 : 0) << 1;
		bad |= (GetProcessHeaps(0, NULL) != 1) << 2;
		c = HeapCreate(0, 0, 0);
		bad |= (!c || !HeapFree(c, 0, HeapAlloc(c, 0, 10))) << 3;
		_exit(bad);
	}
	waitpid(pid, &st, 0);
	T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "after fork the child has "
	     "none of the parent's HeapCreate heaps but can create its own (status %d)",
	     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	T_OK(HeapSize(h, 0, p) == 100, "the parent's heap is unaffected");
	HeapDestroy(h);
}

/* ---- the native API ---- */

static void native_api(void)
{
	struct heapdev_options o = { .size = sizeof(o) };
	struct heapdev_heap *h, *h2, *list[64];
	struct heapdev_heap_info info = { .size = sizeof(info) };
	struct heapdev_walk_entry w;
	size_t n, count;
	void *p, *q;
	int err, e0;

	o.flags = 0x80;
	T_EQ(heapdev_create(&o, &h), -EINVAL, "heapdev_create: unknown flag");
	o.flags = 0;
	o.size = 8;
	T_EQ(heapdev_create(&o, &h), -EINVAL, "heapdev_create: short struct");
	o.size = sizeof(o);
	{
		/* a caller built against a newer, larger struct */
		struct {
			struct heapdev_options o;
			uint64_t more[2];
		} big = { .o = { .size = sizeof(big) } };

		err = heapdev_create(&big.o, &h);
		T_EQ(err, 0, "heapdev_create: larger struct, zero tail");
		if (!err)
			heapdev_destroy(h);
		big.more[1] = 1;
		T_EQ(heapdev_create(&big.o, &h), -E2BIG, "heapdev_create: "
		     "larger struct, non-zero tail: -E2BIG");
		big.o.size = sizeof(big.o) + 8;
		T_EQ(heapdev_create(&big.o, &h), 0, "heapdev_create: the "
		     "tail is read up to @size only");
		heapdev_destroy(h);
		big.o.size = 8192;
		T_EQ(heapdev_create(&big.o, &h), -E2BIG, "heapdev_create: "
		     "size above 4096: -E2BIG");
	}
	o.backend = 9;
	T_EQ(heapdev_create(&o, &h), -EINVAL, "heapdev_create: bad backend");
	o.backend = HEAPDEV_BACKEND_DEFAULT;
	T_EQ(heapdev_create(NULL, NULL), -EINVAL, "heapdev_create: no out");
	errno = 4242;
	err = heapdev_create(NULL, &h);
	T_OK(!err && errno == 4242, "heapdev_create(NULL opts); errno "
	     "untouched");
	o.maximum = 1 << 20;
	o.initial = 1 << 16;
	T_EQ(heapdev_create(&o, &h2), 0, "heapdev_create: fixed heap");

	p = heapdev_alloc(h, 100, HEAPDEV_ZERO);
	T_OK(p && !((uintptr_t)p & 15), "heapdev_alloc");
	T_OK(!heapdev_size(h, p, 0, &n) && n == 100, "heapdev_size");
	q = heapdev_realloc(h, p, 5000, HEAPDEV_ZERO);
	T_OK(q && all_zero(q, 5000), "heapdev_realloc with HEAPDEV_ZERO");
	errno = 0;
	T_OK(!heapdev_realloc(h, q, 1 << 20, HEAPDEV_IN_PLACE) &&
	     errno == ENOMEM, "heapdev_realloc HEAPDEV_IN_PLACE: ENOMEM");
	p = heapdev_realloc(h, NULL, 10, 0);
	T_OK(p && !heapdev_validate(h, p, 0), "heapdev_realloc(NULL) "
	     "allocates");
	errno = 0;
	T_OK(!heapdev_alloc(h2, 2 << 20, 0) && errno == ENOMEM,
	     "heapdev_alloc above the fixed limit: ENOMEM");
	errno = 0;
	T_OK(!heapdev_alloc((struct heapdev_heap *)static_buf, 1, 0) &&
	     errno == EINVAL, "heapdev_alloc on a bad heap: EINVAL");
	errno = 0;
	T_OK(!heapdev_realloc(h, static_buf, 10, 0) && errno == EINVAL,
	     "heapdev_realloc of a bad pointer: EINVAL");
	e0 = errno = 99;
	T_EQ(heapdev_free(h, static_buf, 0), -EINVAL, "heapdev_free: bad "
	     "pointer -EINVAL");
	T_EQ(heapdev_free((struct heapdev_heap *)static_buf, p, 0), -EBADF,
	     "heapdev_free: bad heap -EBADF");
	T_EQ(heapdev_size(h, static_buf, 0, &n), -EINVAL, "heapdev_size: bad "
	     "pointer");
	T_EQ(heapdev_validate(h, static_buf, 0), -EINVAL, "heapdev_validate: "
	     "bad pointer");
	T_EQ(heapdev_validate(h, NULL, 0), 0, "heapdev_validate: whole heap");
	T_EQ(heapdev_free(h, NULL, 0), 0, "heapdev_free(NULL)");
	T_EQ(errno, e0, "control calls leave errno alone");
	T_EQ(heapdev_lock(h), 0, "heapdev_lock");
	T_EQ(heapdev_lock(h), 0, "heapdev_lock again (recursive)");
	T_EQ(heapdev_unlock(h), 0, "heapdev_unlock");
	T_EQ(heapdev_unlock(h), 0, "heapdev_unlock again");
	T_EQ(heapdev_unlock(h), -EPERM, "heapdev_unlock not held: -EPERM");
	T_EQ(heapdev_get_info(h, &info), 0, "heapdev_get_info");
	T_OK(info.allocated == 5010 && info.blocks == 2 &&
	     info.committed >= 8192 && info.segments == 1 && !info.maximum,
	     "info counters (allocated %llu, blocks %llu)",
	     (unsigned long long)info.allocated,
	     (unsigned long long)info.blocks);
	info.size = 4;
	T_EQ(heapdev_get_info(h, &info), -EINVAL, "heapdev_get_info: short");
	memset(&w, 0, sizeof(w));
	n = 0;
	while (!(err = heapdev_walk(h, &w)))
		n += w.kind == HEAPDEV_WALK_BUSY;
	T_OK(err == -ENOENT && n == 2, "heapdev_walk sees both blocks");
	T_EQ(heapdev_compact(h, 0, &n), 0, "heapdev_compact");
	T_EQ(heapdev_heaps(list, 64, &count), 0, "heapdev_heaps");
	T_OK(count >= 3 && list[0] == heapdev_process_heap() &&
	     list[count - 2] == h && list[count - 1] == h2,
	     "heapdev_heaps: process heap first, creation order");
	T_EQ(heapdev_enable_lfh(h2), -EINVAL, "heapdev_enable_lfh on a fixed "
	     "heap");
	T_EQ(heapdev_enable_lfh(h), 0, "heapdev_enable_lfh");
	T_EQ(heapdev_trim(h), 0, "heapdev_trim(h)");
	T_EQ(heapdev_trim(NULL), 0, "heapdev_trim(NULL)");
	T_OK(!strcmp(heapdev_version(), "0.1.0") ||
	     strchr(heapdev_version(), '.'), "heapdev_version %s",
	     heapdev_version());
	T_EQ(heapdev_destroy(heapdev_process_heap()), -EBUSY,
	     "heapdev_destroy(process heap): -EBUSY");
	T_EQ(heapdev_destroy(h), 0, "heapdev_destroy");
	T_EQ(heapdev_destroy(h), -EBADF, "heapdev_destroy twice: -EBADF");
	T_EQ(heapdev_destroy(h2), 0, "heapdev_destroy fixed");
}

/*
 * heapdev_trim(NULL) compacts every serialized heap but leaves
 * HEAPDEV_NO_SERIALIZE heaps alone (their owner may be using them without
 * a lock); heapdev_trim() of such a heap by name compacts it.
 */
static void trim_all(void)
{
	struct heapdev_options o = { .size = sizeof(o) };
	struct heapdev_heap_info ns0 = { .size = sizeof(ns0) }, ns1 = ns0;
	struct heapdev_heap_info ns2 = ns0, s0 = ns0, s1 = ns0;
	struct heapdev_heap *ns, *ser;
	void *p[2][48];
	int i, k;

	o.flags = HEAPDEV_NO_SERIALIZE;
	if (heapdev_create(&o, &ns) || heapdev_create(NULL, &ser)) {
		T_OK(0, "trim: heaps created");
		return;
	}
	for (k = 0; k < 2; k++)
		for (i = 0; i < 48; i++)
			p[k][i] = heapdev_alloc(k ? ser : ns, 60000, 0);
	for (k = 0; k < 2; k++)
		for (i = 0; i < 48; i++)
			heapdev_free(k ? ser : ns, p[k][i], 0);
	heapdev_get_info(ns, &ns0);
	heapdev_get_info(ser, &s0);
	T_EQ(heapdev_trim(NULL), 0, "heapdev_trim(NULL)");
	heapdev_get_info(ns, &ns1);
	heapdev_get_info(ser, &s1);
	T_OK(s1.committed < s0.committed && s1.committed <= 256 << 10,
	     "heapdev_trim(NULL) decommits a serialized heap's free pages "
	     "(%llu -> %llu bytes committed)",
	     (unsigned long long)s0.committed,
	     (unsigned long long)s1.committed);
	T_OK(ns1.committed == ns0.committed && ns0.committed > 256 << 10,
	     "but not a HEAPDEV_NO_SERIALIZE heap's (%llu -> %llu)",
	     (unsigned long long)ns0.committed,
	     (unsigned long long)ns1.committed);
	T_EQ(heapdev_trim(ns), 0, "heapdev_trim(no-serialize heap)");
	heapdev_get_info(ns, &ns2);
	T_OK(ns2.committed <= 256 << 10, "which compacts it when named "
	     "(%llu bytes committed)", (unsigned long long)ns2.committed);
	heapdev_destroy(ns);
	heapdev_destroy(ser);
}

/*
 * heapdev_walk's overhead follows the Win32 formulas rather than counting
 * the bytes beyond size: the next entry is at addr + size + overhead + 16
 * after a busy medium block and at addr + size + 2 * overhead (overhead
 * 32) after a free one (48-byte free blocks report size 0).  A fixed heap
 * has medium blocks only.
 */
static void native_walk_overhead(void)
{
	struct heapdev_options o = { .size = sizeof(o), .maximum = 1 << 20 };
	struct heapdev_walk_entry w, prev;
	bool busy_ok = true, free_ok = true;
	int nbusy = 0, nfree = 0, err, i;
	struct heapdev_heap *h;
	void *p[40];

	if (heapdev_create(&o, &h)) {
		T_OK(0, "walk overhead: heap created");
		return;
	}
	for (i = 0; i < 40; i++)
		p[i] = heapdev_alloc(h, 1 + 61 * i, 0);
	for (i = 0; i < 40; i += 3)
		heapdev_free(h, p[i], 0);
	memset(&w, 0, sizeof(w));
	memset(&prev, 0, sizeof(prev));
	while (!(err = heapdev_walk(h, &w))) {
		uintptr_t a = (uintptr_t)prev.addr, next = (uintptr_t)w.addr;

		if (prev.kind == HEAPDEV_WALK_BUSY) {
			nbusy++;
			busy_ok &= next == a + prev.size + prev.overhead + 16;
		} else if (prev.kind == HEAPDEV_WALK_FREE) {
			nfree++;
			free_ok &= prev.overhead == 32 &&
				   next == a + (prev.size ? prev.size + 64 :
						48);
		}
		prev = w;
	}
	T_OK(err == -ENOENT && nbusy > 20 && busy_ok, "heapdev_walk: busy "
	     "medium block: next entry at addr + size + overhead + 16 (%d)",
	     nbusy);
	T_OK(nfree > 10 && free_ok, "heapdev_walk: free medium block: "
	     "overhead 32, next entry at addr + size + 2 * overhead (%d)",
	     nfree);
	heapdev_destroy(h);
}

static void backends(void)
{
	struct heapdev_options o = { .size = sizeof(o) };
	struct heapdev_heap *h;
	int err;

	o.backend = HEAPDEV_BACKEND_MEMFD;
	err = heapdev_create(&o, &h);
	T_OK(!err && heapdev_free(h, heapdev_alloc(h, 10, 0), 0) == 0,
	     "explicit memfd backend");
	if (!err)
		heapdev_destroy(h);
	o.backend = HEAPDEV_BACKEND_DEVICE;
	err = heapdev_create(&o, &h);
	if (access("/dev/heapdev", F_OK)) {
		T_EQ(err, -ENOENT, "explicit device backend without "
		     "/dev/heapdev: -ENOENT, no fallback");
	} else {
		T_OK(!err, "explicit device backend");
		if (!err)
			heapdev_destroy(h);
	}
}

/* Run in a fresh process without HEAPDEV_BACKEND (see api_suite_child). */
static void default_backend(const char *self)
{
	pid_t pid = fork();
	int st;

	if (!pid) {
		char *argv[] = { (char *)self, "--child-default-backend", NULL };
		char *envp[] = { NULL };

		/* argv[0] rather than /proc/self/exe, which may be valgrind */
		execve(strchr(self, '/') ? self : "/proc/self/exe", argv, envp);
		_exit(99);
	}
	waitpid(pid, &st, 0);
	if (access("/dev/heapdev", F_OK))
		T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 41, "no /dev/heapdev "
		     "and no HEAPDEV_BACKEND: HeapCreate fails with "
		     "ERROR_NOT_ENOUGH_MEMORY (no silent fallback)");
	else
		T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 40, "default backend "
		     "is the device");
}

/* heapdev_alloc_aligned() and heapdev_heap_of() on a heap of each kind. */
static void aligned_and_owner(void)
{
	static const size_t aligns[] = { 1, 16, 32, 64, 256, 4096, 65536,
					 1 << 20, 4 << 20, 16 << 20 };
	static const size_t sizes[] = { 0, 1, 24, 100, 5000, 70000,
					2 << 20 };
	struct heapdev_options fo = { .size = sizeof(fo), .maximum = 8 << 20,
				      .backend = HEAPDEV_BACKEND_DEFAULT };
	struct heapdev_heap *h, *f;
	size_t a, i, n;
	void *p, *q;
	int kind;

	T_EQ(heapdev_create(NULL, &h), 0, "aligned: growable heap");
	T_EQ(heapdev_create(&fo, &f), 0, "aligned: fixed heap");
	for (kind = 0; kind < 2; kind++) {
		struct heapdev_heap *x = kind ? f : h;
		int bad = 0, lost = 0, zero = 0, owner = 0;

		for (a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
			for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
				if (kind && (sizes[i] >= (1 << 20) ||
					     aligns[a] >= (1 << 20)))
					continue;
				p = heapdev_alloc_aligned(x, sizes[i],
							  aligns[a],
							  HEAPDEV_ZERO);
				if (!p || ((uintptr_t)p & (aligns[a] - 1)) ||
				    ((uintptr_t)p & 15)) {
					bad++;
					continue;
				}
				if (!all_zero(p, sizes[i]))
					zero++;
				memset(p, 0x5A, sizes[i]);
				if (heapdev_size(x, p, 0, &n) || n != sizes[i] ||
				    heapdev_validate(x, p, 0))
					lost++;
				if (heapdev_heap_of(p) != x ||
				    (sizes[i] &&
				     heapdev_heap_of((char *)p + sizes[i] - 1) !=
				     x))
					owner++;
				if (heapdev_free(x, p, 0) ||
				    heapdev_free(x, p, 0) != -EINVAL)
					lost++;
			}
		}
		T_EQ(bad, 0, "heapdev_alloc_aligned: aligned blocks (%s heap)",
		     kind ? "fixed" : "growable");
		T_EQ(zero, 0, "heapdev_alloc_aligned: HEAPDEV_ZERO (%s heap)",
		     kind ? "fixed" : "growable");
		T_EQ(lost, 0, "heapdev_alloc_aligned: exact size, valid, freed "
		     "once (%s heap)", kind ? "fixed" : "growable");
		T_EQ(owner, 0, "heapdev_heap_of: first and last byte (%s heap)",
		     kind ? "fixed" : "growable");
		T_EQ(heapdev_validate(x, NULL, 0), 0, "heap valid after "
		     "aligned blocks (%s heap)", kind ? "fixed" : "growable");
	}
	p = heapdev_alloc_aligned(h, 3000, 4096, 0);
	q = heapdev_realloc(h, p, 9000, 0);
	T_OK(q && !heapdev_size(h, q, 0, &n) && n == 9000,
	     "heapdev_realloc of an aligned block");
	heapdev_free(h, q, 0);
	errno = 0;
	T_OK(!heapdev_alloc_aligned(h, 10, 0, 0) && errno == EINVAL,
	     "heapdev_alloc_aligned: alignment 0 is EINVAL");
	errno = 0;
	T_OK(!heapdev_alloc_aligned(h, 10, 48, 0) && errno == EINVAL,
	     "heapdev_alloc_aligned: alignment 48 is EINVAL");
	errno = 0;
	n = SIZE_MAX - 100;	/* through a variable: gcc knows it too big */
	T_OK(!heapdev_alloc_aligned(h, *(volatile size_t *)&n, 4096, 0) &&
	     errno == ENOMEM, "heapdev_alloc_aligned: huge size is ENOMEM");
	errno = 0;
	T_OK(!heapdev_alloc_aligned((struct heapdev_heap *)static_buf, 10, 64,
				    0) && errno == EINVAL,
	     "heapdev_alloc_aligned: bad heap is EINVAL");
	p = heapdev_alloc(h, 100, 0);
	T_OK(heapdev_heap_of(p) == h && heapdev_heap_of(h) == h,
	     "heapdev_heap_of: a block and the handle");
	T_OK(!heapdev_heap_of(static_buf) && !heapdev_heap_of(NULL) &&
	     !heapdev_heap_of((void *)~0UL) && !heapdev_heap_of(&n),
	     "heapdev_heap_of: static, NULL, wild and stack addresses");
	q = heapdev_alloc(h, 3 << 20, 0);
	T_OK(q && heapdev_heap_of((char *)q + (2 << 20)) == h,
	     "heapdev_heap_of: inside a large block");
	heapdev_free(h, q, 0);
	T_OK(heapdev_heap_of(q) == NULL, "heapdev_heap_of: a freed large "
	     "block");
	T_EQ(heapdev_destroy(h), 0, "aligned: destroy");
	T_OK(heapdev_heap_of(p) == NULL, "heapdev_heap_of: a destroyed heap");
	T_EQ(heapdev_destroy(f), 0, "aligned: destroy fixed");
}

int api_suite_child(int argc, char **argv)
{
	HANDLE h;

	if (argc < 2 || strcmp(argv[1], "--child-default-backend"))
		return -1;
	h = HeapCreate(0, 0, 0);
	if (h)
		return 40;
	return GetLastError() == ERROR_NOT_ENOUGH_MEMORY ? 41 : 42;
}

void api_suite(const char *self)
{
	case_1_to_3();
	case_4();
	case_5();
	case_6_to_13();
	case_14();
	case_15_to_19();
	case_20_to_26();
	case_25_26_kinds();
	case_27_to_30();
	case_31_to_33();
	case_34_to_41();
	case_42_to_46();
	case_47_48();
	case_49_50();
	case_51_to_55();
	bad_handles();
	bad_pointers();
	user_flags();
	summary_and_compact();
	growth_and_segments();
	walk_robust();
	last_error_per_thread();
	generate_exceptions();
	exec_heap();
	neighbour_mappings();
	fork_child();
	inherit_heaps();
	native_api();
	aligned_and_owner();
	trim_all();
	native_walk_overhead();
	backends();
	default_backend(self);
}
