// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Conformance audit against WIN32_HEAP_SPEC.md: the observed-behaviour
 * statements of sections 1-3 that no other test asserts.  The numbered
 * cases of section 4 are in api_suite.c ("case N"); each message here
 * names the spec section it checks.
 *
 * Where the spec only gives Wine's or the documented behaviour and the
 * library documents a choice (heapdev-win32(3), "Deviations from
 * Windows"), the check asserts that choice and says so.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "api_suite.h"
#include "t.h"

#define P	sizeof(void *)
#define A	((SIZE_T)0x8000 * P)
#define PG	((SIZE_T)4096)
#define KiB	((SIZE_T)1024)
#define MiB	((SIZE_T)1024 * 1024)
#define SENTINEL 0xdeadbeefu

static char static_buf[256] __attribute__((aligned(64)));

/* The walk entry of @p, or false. */
static bool entry_of(HANDLE h, const void *p, PROCESS_HEAP_ENTRY *out)
{
	PROCESS_HEAP_ENTRY e;

	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e)) {
		if (e.lpData == p && !(e.wFlags & PROCESS_HEAP_REGION)) {
			*out = e;
			return true;
		}
	}
	return false;
}

/* ---- 1: constants ---- */

static void constants(void)
{
	bool ok;

	ok = HEAP_NO_SERIALIZE == 1 && HEAP_GROWABLE == 2 &&
	     HEAP_GENERATE_EXCEPTIONS == 4 && HEAP_ZERO_MEMORY == 8 &&
	     HEAP_REALLOC_IN_PLACE_ONLY == 0x10 &&
	     HEAP_TAIL_CHECKING_ENABLED == 0x20 &&
	     HEAP_FREE_CHECKING_ENABLED == 0x40 &&
	     HEAP_DISABLE_COALESCE_ON_FREE == 0x80 &&
	     HEAP_CREATE_ALIGN_16 == 0x10000 &&
	     HEAP_CREATE_ENABLE_TRACING == 0x20000 &&
	     HEAP_CREATE_ENABLE_EXECUTE == 0x40000 &&
	     HEAP_SETTABLE_USER_VALUE == 0x100 &&
	     HEAP_SETTABLE_USER_FLAGS == 0xE00;
	T_OK(ok, "1.1: heap flag values");
	ok = PROCESS_HEAP_REGION == 1 && PROCESS_HEAP_UNCOMMITTED_RANGE == 2 &&
	     PROCESS_HEAP_ENTRY_BUSY == 4 &&
	     PROCESS_HEAP_ENTRY_MOVEABLE == 0x10 &&
	     PROCESS_HEAP_ENTRY_DDESHARE == 0x20 &&
	     sizeof(PROCESS_HEAP_ENTRY) == 40 && sizeof(HEAP_SUMMARY) == 40;
	T_OK(ok, "1.2, 1.4: entry flags; structure sizes (64-bit)");
	ok = HeapCompatibilityInformation == 0 &&
	     HeapEnableTerminationOnCorruption == 1 &&
	     HeapOptimizeResources == 3 &&
	     HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION == 1 &&
	     sizeof(HEAP_OPTIMIZE_RESOURCES_INFORMATION) == 8;
	T_OK(ok, "1.3: information classes");
	ok = NO_ERROR == 0 && ERROR_INVALID_HANDLE == 6 &&
	     ERROR_NOT_ENOUGH_MEMORY == 8 && ERROR_GEN_FAILURE == 31 &&
	     ERROR_INVALID_PARAMETER == 87 &&
	     ERROR_INSUFFICIENT_BUFFER == 122 &&
	     ERROR_NO_MORE_ITEMS == 259 && ERROR_NOACCESS == 998 &&
	     STATUS_NO_MEMORY == 0xC0000017u &&
	     STATUS_ACCESS_VIOLATION == 0xC0000005u &&
	     STATUS_HEAP_CORRUPTION == 0xC0000374u;
	T_OK(ok, "1.5: error and status codes");
}

/* ---- 1.1: flags ---- */

static void create_flags(void)
{
	static const DWORD flags[] = {
		HEAP_GROWABLE, HEAP_DISABLE_COALESCE_ON_FREE,
		HEAP_CREATE_SEGMENT_HEAP, HEAP_CREATE_HARDENED, HEAP_CLASS_1,
		HEAP_CREATE_ALIGN_16, HEAP_CREATE_ENABLE_TRACING,
		HEAP_ZERO_MEMORY, HEAP_REALLOC_IN_PLACE_ONLY,
		0x04000000, 0x01000000, 0x10000000, 0x20000000, 0x40000000,
		0x80000000,
	};
	bool created = true, plain = true;
	unsigned int i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		HANDLE h = HeapCreate(flags[i], 0, 0);
		ULONG two = 2;
		void *p;

		if (!h) {
			created = false;
			continue;
		}
		p = HeapAlloc(h, 0, 17);
		/* serialized (LFH allowed), exact size, 16-byte aligned */
		plain &= p && HeapSize(h, 0, p) == 17 &&
			 !((uintptr_t)p & 15) &&
			 HeapSetInformation(h, HeapCompatibilityInformation,
					    &two, sizeof(two));
		plain &= HeapFree(h, 0, p) && HeapDestroy(h);
	}
	T_OK(created, "1.1: undocumented and debug bits never make "
	     "HeapCreate fail");
	T_OK(plain, "1.1: they are dropped: the heaps behave as "
	     "HeapCreate(0, 0, 0) (HEAP_CREATE_ALIGN_16: 16-byte blocks)");
}

static int exc_calls;
static uint32_t exc_code;

/* Returning from the handler makes the call return its failure value. */
static void count_exc(const struct heapdev_exception *e)
{
	exc_calls++;
	exc_code = e->code;
}

static void call_flags(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	HANDLE g = HeapCreate(HEAP_GENERATE_EXCEPTIONS, 0, 0);
	unsigned char *p, *q;
	bool ok;

	p = HeapAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, 100);
	T_OK(p && HeapSize(h, 0, p) == 100, "1.1: HeapAlloc ignores "
	     "HEAP_REALLOC_IN_PLACE_ONLY");
	HeapFree(h, 0, p);

	p = HeapAlloc(h, 0x00100000 | 0x80000000 | HEAP_CLASS_1, 30);
	q = HeapReAlloc(h, 0x00100000 | 0x80000000, p, 3000);
	ok = p && q && HeapSize(h, 0x40000000, q) == 3000 &&
	     HeapValidate(h, 0x20000000, q);
	T_OK(ok, "1.1: unknown call bits are ignored, never rejected");
	HeapFree(h, 0, q);

	exc_calls = 0;
	heapdev_set_exception_handler(count_exc);
	p = HeapAlloc(g, 0, 10);
	SetLastError(0);
	ok = !HeapFree(g, HEAP_GENERATE_EXCEPTIONS, static_buf) &&
	     GetLastError() == ERROR_INVALID_PARAMETER;
	SetLastError(0);
	ok &= HeapSize(g, HEAP_GENERATE_EXCEPTIONS, static_buf) == (SIZE_T)-1 &&
	      GetLastError() == ERROR_INVALID_PARAMETER;
	ok &= !HeapValidate(g, HEAP_GENERATE_EXCEPTIONS, static_buf);
	ok &= HeapFree(g, 0, p);
	ok &= !HeapFree(g, 0, p);
	T_OK(ok && exc_calls == 0, "1.1: HEAP_GENERATE_EXCEPTIONS has no "
	     "effect on HeapFree, HeapSize and HeapValidate (%d raised)",
	     exc_calls);
	heapdev_set_exception_handler(NULL);
	HeapDestroy(g);
	HeapDestroy(h);
}

/* 1.2: current Windows never reports MOVEABLE or DDESHARE. */
static void entry_flags(void)
{
	HANDLE h = api_lfh_heap(40);
	SIZE_T sizes[] = { 0, 40, 3000, 100000, 2 * MiB };
	PROCESS_HEAP_ENTRY e;
	void *ps[5];
	bool ok = true;
	int i, busy = 0;

	for (i = 0; i < 5; i++)
		ps[i] = HeapAlloc(h, 0, sizes[i]);
	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e)) {
		ok &= !(e.wFlags & (PROCESS_HEAP_ENTRY_MOVEABLE |
				    PROCESS_HEAP_ENTRY_DDESHARE));
		busy += !!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY);
	}
	T_OK(ok && busy == 5, "1.2: busy entries of every kind have no "
	     "MOVEABLE or DDESHARE flag");
	for (i = 0; i < 5; i++)
		HeapFree(h, 0, ps[i]);
	HeapDestroy(h);
}

/* ---- 2: last error ---- */

/* Successful calls leave the last error alone (section 2, 6). */
static void success_keeps_error(void)
{
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	PROCESS_HEAP_ENTRY e;
	HANDLE h, buf[64];
	ULONG u, two = 2;
	bool ok = true;
	void *p;

	SetLastError(SENTINEL);
	h = HeapCreate(0, 0, 0);
	p = HeapAlloc(h, HEAP_ZERO_MEMORY, 100);
	p = HeapReAlloc(h, 0, p, 5000);
	ok &= HeapSize(h, 0, p) == 5000;
	ok &= HeapValidate(h, 0, p) && HeapValidate(h, 0, NULL);
	memset(&e, 0, sizeof(e));
	ok &= HeapWalk(h, &e);
	ok &= HeapLock(h) && HeapUnlock(h);
	ok &= HeapQueryInformation(h, HeapCompatibilityInformation, &u,
				   sizeof(u), NULL);
	ok &= HeapSetInformation(h, HeapCompatibilityInformation, &two,
				 sizeof(two));
	ok &= HeapSummary(h, 0, &s);
	ok &= HeapCompact(h, 0) > 0;
	ok &= GetProcessHeaps(64, buf) >= 2 && GetProcessHeap() != NULL;
	ok &= HeapFree(h, 0, p) && HeapFree(h, 0, NULL);
	ok &= HeapDestroy(h);
	T_OK(ok, "2: the calls succeed");
	T_EQ(GetLastError(), SENTINEL, "2: successful calls leave the last "
	     "error unchanged");
}

static void process_heaps(void)
{
	HANDLE h = HeapCreate(0, 0, 0), buf[64];
	DWORD n = GetProcessHeaps(0, NULL), m;

	memset(buf, 0, sizeof(buf));
	m = n <= 64 ? GetProcessHeaps(n, buf) : 0;
	T_OK(m == n && buf[0] == GetProcessHeap() && buf[n - 1] == h,
	     "2: GetProcessHeaps(N == total) stores all N handles");
	HeapDestroy(h);
}

/* HeapLock/HeapUnlock of a bad handle: the documented "LE set" side. */
static void lock_bad_handle(void)
{
	SetLastError(0);
	T_OK(!HeapLock((HANDLE)static_buf) &&
	     GetLastError() == ERROR_INVALID_HANDLE,
	     "2: HeapLock(bad handle): FALSE, ERROR_INVALID_HANDLE "
	     "(doc: set; Wine leaves it)");
	SetLastError(0);
	T_OK(!HeapUnlock((HANDLE)static_buf) &&
	     GetLastError() == ERROR_INVALID_HANDLE,
	     "2: HeapUnlock(bad handle): FALSE, ERROR_INVALID_HANDLE");
}

static void info_errors(void)
{
	HANDLE h = HeapCreate(0, 0, 0), f = HeapCreate(0, 0, 1 * MiB), h2;
	SIZE_T len = 0;
	ULONG u = 99, v;

	SetLastError(SENTINEL);
	T_OK(!HeapQueryInformation((HANDLE)static_buf,
				   HeapCompatibilityInformation, &u,
				   sizeof(u), &len) &&
	     GetLastError() == ERROR_NOACCESS && len == 0 && u == 99,
	     "2: HeapQueryInformation(invalid heap): ERROR_NOACCESS, "
	     "ReturnLength untouched");
	SetLastError(SENTINEL);
	T_OK(!HeapQueryInformation(h, HeapCompatibilityInformation, &u, 3,
				   &len) &&
	     GetLastError() == ERROR_INSUFFICIENT_BUFFER && len == 4,
	     "2: HeapQueryInformation with 3 bytes: "
	     "ERROR_INSUFFICIENT_BUFFER, length 4");
	SetLastError(SENTINEL);
	T_OK(!HeapQueryInformation(h, (HEAP_INFORMATION_CLASS)7, &u,
				   sizeof(u), NULL) &&
	     GetLastError() == ERROR_INVALID_PARAMETER,
	     "2: HeapQueryInformation(unknown class): "
	     "ERROR_INVALID_PARAMETER (Wine)");

	v = 2;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapCompatibilityInformation, &v, 3) &&
	     GetLastError() == ERROR_INSUFFICIENT_BUFFER,
	     "2: HeapSetInformation with 3 bytes: ERROR_INSUFFICIENT_BUFFER "
	     "(Wine)");
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation((HANDLE)static_buf,
				 HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == ERROR_INVALID_HANDLE,
	     "2: HeapSetInformation(bad heap): ERROR_INVALID_HANDLE (Wine)");
	v = 1;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == ERROR_GEN_FAILURE,
	     "2: HeapSetInformation(1) on a standard heap: "
	     "ERROR_GEN_FAILURE (unsupported value)");
	v = 3;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == ERROR_GEN_FAILURE,
	     "2: HeapSetInformation(3): ERROR_GEN_FAILURE");
	v = 2;
	h2 = HeapCreate(0, 0, 0);
	SetLastError(SENTINEL);
	T_OK(HeapSetInformation(h2, HeapCompatibilityInformation, &v, 4) &&
	     HeapSetInformation(h2, HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == SENTINEL,
	     "2: HeapSetInformation(2) when the LFH is on already is TRUE "
	     "(ambiguous \"LFH already on\"; documented: only a change "
	     "fails)");
	HeapDestroy(h2);
	v = 0;
	T_OK(HeapSetInformation(h, HeapCompatibilityInformation, &v, 4) &&
	     HeapQueryInformation(h, HeapCompatibilityInformation, &u, 4,
				  NULL) && u == 0,
	     "3.15: HeapSetInformation(0) on a standard heap is a TRUE "
	     "no-op (Wine)");
	v = 2;
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(f, HeapCompatibilityInformation, &v, 4) &&
	     GetLastError() == ERROR_INVALID_PARAMETER &&
	     HeapQueryInformation(f, HeapCompatibilityInformation, &u, 4,
				  NULL) && u == 0,
	     "3.15: no LFH on a fixed-size heap (doc; the error is the "
	     "library's choice, ERROR_INVALID_PARAMETER)");
	SetLastError(SENTINEL);
	T_OK(!HeapSetInformation(h, (HEAP_INFORMATION_CLASS)7, &v, 4) &&
	     GetLastError() == ERROR_INVALID_PARAMETER,
	     "3.15: HeapSetInformation(unknown class) fails with "
	     "ERROR_INVALID_PARAMETER (documented; Wine returns TRUE)");
	HeapDestroy(h);
	HeapDestroy(f);
}

/* HeapCompact: 0 means no free space and comes with NO_ERROR. */
static void compact_full(void)
{
	HANDLE f = HeapCreate(0, 64 * KiB, 64 * KiB);
	SIZE_T n, r;
	int k = 0;

	for (n = 32 * KiB; n >= 16; n /= 2)
		while (HeapAlloc(f, 0, n) && k < 10000)
			k++;
	for (n = 15; n > 0; n--)
		while (HeapAlloc(f, 0, n) && k < 10000)
			k++;
	SetLastError(SENTINEL);
	r = HeapCompact(f, 0);
	T_OK(r < 64 && (r || GetLastError() == NO_ERROR),
	     "2, 3.11: HeapCompact of a full fixed heap: %zu%s", r,
	     r ? "" : " with NO_ERROR");
	HeapDestroy(f);
}

/* A failed IN_PLACE grow of an ordinary block: ERROR_NOT_ENOUGH_MEMORY. */
static void in_place_errors(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p, *q, *r;

	p = HeapAlloc(h, 0, 20000);
	q = HeapAlloc(h, 0, 20000);	/* busy neighbour */
	memset(p, 0x5A, 20000);
	SetLastError(SENTINEL);
	r = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 30000);
	T_OK(!r && GetLastError() == ERROR_NOT_ENOUGH_MEMORY,
	     "2: HeapReAlloc IN_PLACE_ONLY grow against a busy neighbour: "
	     "NULL, ERROR_NOT_ENOUGH_MEMORY");
	T_OK(HeapSize(h, 0, p) == 20000 && api_all_byte(p, 20000, 0x5A),
	     "3.8: the block is unchanged");
	r = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 5000);
	T_OK(r == p && HeapSize(h, 0, p) == 5000 && api_all_byte(p, 5000, 0x5A),
	     "3.8: shrinking an ordinary block in place succeeds");
	SetLastError(SENTINEL);
	r = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, q, 2 * MiB);
	T_OK(!r && GetLastError() == ERROR_NOT_ENOUGH_MEMORY &&
	     HeapSize(h, 0, q) == 20000,
	     "3.8: an ordinary block never grows in place into a large one");
	HeapFree(h, 0, p);
	HeapFree(h, 0, q);
	HeapDestroy(h);
}

/* ---- 3.1: HeapCreate sizes ---- */

static void create_sizes(void)
{
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	HANDLE h;
	void *p;
	bool ok;

	h = HeapCreate(0, 100000, 0);
	ok = h && HeapSummary(h, 0, &s);
	T_OK(ok && s.cbCommitted >= ((100000 + PG - 1) & ~(PG - 1)),
	     "3.1: dwInitialSize is committed, rounded up to pages "
	     "(%zu bytes)", s.cbCommitted);
	HeapDestroy(h);

	h = HeapCreate(0, 0, 100000);
	ok = h && HeapSummary(h, 0, &s);
	T_OK(ok && s.cbMaxReserve == ((100000 + PG - 1) & ~(PG - 1)),
	     "3.1: dwMaximumSize is reserved, rounded up to pages (%zu)",
	     s.cbMaxReserve);
	HeapDestroy(h);

	h = HeapCreate(0, 256 * KiB, 64 * KiB);
	T_OK(h != NULL, "3.1: maximum < initial: HeapCreate succeeds");
	ok = HeapSummary(h, 0, &s);
	T_OK(ok && s.cbMaxReserve == 256 * KiB, "3.1: reserve = "
	     "max(initial, maximum) (%zu)", s.cbMaxReserve);
	p = HeapAlloc(h, 0, 128 * KiB);
	T_OK(p && HeapSize(h, 0, p) == 128 * KiB, "3.1: more than the "
	     "maximum fits");
	SetLastError(SENTINEL);
	T_OK(!HeapAlloc(h, 0, 256 * KiB) &&
	     GetLastError() == ERROR_NOT_ENOUGH_MEMORY,
	     "3.1: the heap stays fixed-size");
	HeapDestroy(h);
}

/* ---- 3.2, 3.3: sizes, the large-block threshold ---- */

static void block_sizes(void)
{
	HANDLE h = HeapCreate(0, 0, 0), f = HeapCreate(0, 0, 8 * MiB);
	SIZE_T big = 3000 * KiB + 37;
	PROCESS_HEAP_ENTRY e;
	unsigned char *p, *q;

	p = HeapAlloc(h, 0, big);
	T_OK(p && HeapSize(h, 0, p) == big, "3.2: HeapSize of 3000 KiB + 37 "
	     "is exact");
	HeapFree(h, 0, p);

	p = HeapAlloc(h, 0, 0xFD000);
	T_OK(p && entry_of(h, p, &e) && e.iRegionIndex != 64,
	     "3.3: growable heap: 0xFD000 bytes is an ordinary in-heap block");
	HeapFree(h, 0, p);
	p = HeapAlloc(h, 0, 0xFF000);
	T_OK(p && entry_of(h, p, &e) && e.iRegionIndex == 64 &&
	     e.cbData == 0xFF000 && !((uintptr_t)p & (8 * P - 1)),
	     "3.3: 0xFF000 bytes is a large block (index 64, 8P-aligned)");
	HeapFree(h, 0, p);

	p = HeapAlloc(f, 0, 0xFD000);
	T_OK(p && HeapSize(f, 0, p) == 0xFD000, "3.3: fixed heap: 0xFD000 "
	     "bytes (an ordinary block) fit");
	SetLastError(SENTINEL);
	q = HeapReAlloc(f, 0, p, 0xFFFF0);
	T_OK(!q && GetLastError() == ERROR_NOT_ENOUGH_MEMORY &&
	     HeapSize(f, 0, p) == 0xFD000,
	     "3.3: fixed heap: growing it to 0xFFFF0 fails, "
	     "ERROR_NOT_ENOUGH_MEMORY");
	HeapDestroy(f);
	HeapDestroy(h);
}

/*
 * 3.2: native stride of same-size blocks is round_up(max(n, 2P) + 8, 2P)
 * (an 8-byte header).  LFH slots follow it up to 1016 bytes; the blocks
 * served before a size class activates are medium blocks with a 16-byte
 * header (documented deviation, heapdev-win32(3)): a stride of
 * max(48, round_up(n, 16) + 16).
 */
static SIZE_T stride_of(HANDLE h, SIZE_T n)
{
	char *a = HeapAlloc(h, 0, n), *b = HeapAlloc(h, 0, n);
	char *c = HeapAlloc(h, 0, n);
	SIZE_T d = b - a;

	if (c - b != b - a)
		d = 0;
	HeapFree(h, 0, a);
	HeapFree(h, 0, b);
	HeapFree(h, 0, c);
	return d;
}

static void block_stride(void)
{
	bool lfh = true, medium = true;
	SIZE_T n;

	for (n = 0; n <= 1016; n++) {
		HANDLE h = HeapCreate(0, 0, 0);
		SIZE_T nat = ((n > 2 * P ? n : 2 * P) + 8 + 2 * P - 1) &
			     ~(2 * P - 1);
		SIZE_T med = ((n + 15) & ~(SIZE_T)15) + 16;

		if (n <= 300 && stride_of(h, n) != (med < 48 ? 48 : med))
			medium = false;
		HeapDestroy(h);
		h = api_lfh_heap(n);
		if (stride_of(h, n) != nat)
			lfh = false;
		HeapDestroy(h);
	}
	T_OK(lfh, "3.2: LFH blocks of 0..1016 bytes: native stride "
	     "round_up(max(n, 2P) + 8, 2P)");
	T_OK(medium, "3.2: deviation (documented): before the LFH, 0..300 "
	     "bytes have the medium stride max(48, round_up(n, 16) + 16)");
}

/* 3.3: large blocks come after all regions (and their blocks). */
static void large_after_regions(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	PROCESS_HEAP_ENTRY e;
	void *big[2], *ps[24];
	int i, regions = 0, large = 0, misplaced = 0;

	big[0] = HeapAlloc(h, 0, 2 * MiB);
	for (i = 0; i < 24; i++)
		ps[i] = HeapAlloc(h, 0, 500000);
	big[1] = HeapAlloc(h, 0, 3 * MiB);
	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e)) {
		if (e.iRegionIndex == 64 &&
		    e.wFlags == PROCESS_HEAP_ENTRY_BUSY) {
			large++;
			misplaced += e.lpData != big[large - 1];
		} else {
			misplaced += large > 0;
			regions += e.wFlags == PROCESS_HEAP_REGION;
		}
	}
	T_OK(regions > 1 && large == 2 && !misplaced, "3.3: large blocks "
	     "are listed after all %d regions, in allocation order",
	     regions);
	for (i = 0; i < 24; i++)
		HeapFree(h, 0, ps[i]);
	HeapDestroy(h);
}

/* 3.4: exhaustion of a fixed heap under HEAP_GENERATE_EXCEPTIONS. */
static void fixed_exceptions(void)
{
	HANDLE f = HeapCreate(HEAP_GENERATE_EXCEPTIONS, 8 * A, 8 * A);
	HANDLE g = HeapCreate(0, 8 * A, 8 * A);
	void *p;

	exc_calls = 0;
	heapdev_set_exception_handler(count_exc);
	p = HeapAlloc(f, 0, 4 * A);
	T_OK(!p && exc_calls == 1 && exc_code == STATUS_NO_MEMORY,
	     "3.4: fixed heap with HEAP_GENERATE_EXCEPTIONS: a failed "
	     "HeapAlloc raises STATUS_NO_MEMORY");
	exc_code = 0;
	p = HeapAlloc(g, HEAP_GENERATE_EXCEPTIONS, 4 * A);
	T_OK(!p && exc_calls == 2 && exc_code == STATUS_NO_MEMORY,
	     "3.4: and so does the per-call flag");
	heapdev_set_exception_handler(NULL);
	HeapDestroy(f);
	HeapDestroy(g);
}

/* ---- 3.8: LFH in-place rules ---- */

static void lfh_in_place(void)
{
	HANDLE h = api_lfh_heap(40);
	unsigned char *p, *q;
	bool ok;

	p = HeapAlloc(h, 0, 40);
	memset(p, 0x77, 40);
	q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 36);
	T_OK(q == p && HeapSize(h, 0, p) == 36, "3.8: LFH block: IN_PLACE "
	     "shrink within the size class succeeds");
	SetLastError(SENTINEL);
	q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 36);
	ok = !q && GetLastError() == ERROR_NOT_ENOUGH_MEMORY;
	q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 40);
	ok &= !q;
	T_OK(ok, "3.8: LFH block: an IN_PLACE resize that does not shrink "
	     "fails, ERROR_NOT_ENOUGH_MEMORY");
	q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 8);
	ok = !q;
	q = HeapReAlloc(h, HEAP_REALLOC_IN_PLACE_ONLY, p, 100);
	ok &= !q;
	T_OK(ok && HeapSize(h, 0, p) == 36 && api_all_byte(p, 36, 0x77),
	     "3.8: LFH block: an IN_PLACE resize to another class fails, "
	     "block unchanged");
	q = HeapReAlloc(h, 0, p, 100);
	T_OK(q && q != p && HeapSize(h, 0, q) == 100 && api_all_byte(q, 36, 0x77),
	     "3.8: LFH block: without IN_PLACE_ONLY it moves to the new "
	     "class");
	HeapFree(h, 0, q);
	HeapDestroy(h);
}

/* ---- 3.9: HeapValidate of walk entries ---- */

static void validate_entries(void)
{
	HANDLE h = api_lfh_heap(40);
	PROCESS_HEAP_ENTRY e;
	void *ps[30];
	int i, nb = 0, nn = 0;
	bool ok = true;

	for (i = 0; i < 30; i++)
		ps[i] = HeapAlloc(h, 0, i % 3 ? 40 : 3000 + 100 * i);
	for (i = 0; i < 30; i += 2)
		HeapFree(h, 0, ps[i]);
	memset(&e, 0, sizeof(e));
	SetLastError(SENTINEL);
	while (HeapWalk(h, &e)) {
		BOOL v = HeapValidate(h, 0, e.lpData);

		if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY) {
			nb++;
			ok &= !!v;
		} else if (!(e.wFlags & PROCESS_HEAP_REGION)) {
			/* a region's lpData is the heap, not a block */
			nn++;
			ok &= !v;
		} else {
			ok &= !v;
		}
	}
	T_OK(ok && nb == 15 && nn > 0, "3.9: HeapValidate is TRUE for every "
	     "BUSY entry, FALSE for every other (%d busy, %d not)", nb, nn);
	T_EQ(GetLastError(), ERROR_NO_MORE_ITEMS, "3.9: and never sets the "
	     "last error");
	for (i = 1; i < 30; i += 2)
		HeapFree(h, 0, ps[i]);
	HeapDestroy(h);
}

/* ---- 3.10: walk protocol ---- */

static void walk_protocol(void)
{
	HANDLE h = api_lfh_heap(40);
	PROCESS_HEAP_ENTRY e, first;
	void *ps[4];
	int i, n = 0, nfree = 0;
	bool ok = true;

	memset(&e, 0, sizeof(e));
	ok &= HeapWalk(h, &e) && HeapWalk(h, &e);
	memset(&first, 0, sizeof(first));
	ok &= HeapWalk(h, &first) && first.lpData == h &&
	      first.wFlags == PROCESS_HEAP_REGION;
	T_OK(ok, "3.10: an abandoned walk needs no terminating call; a new "
	     "one starts at the region");

	for (i = 0; i < 4; i++)
		ps[i] = HeapAlloc(h, 0, 40);
	HeapFree(h, 0, ps[1]);
	ok = HeapLock(h);
	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e)) {
		n++;
		if (e.wFlags == 0 && e.cbOverhead == 8)
			nfree++;
	}
	ok &= GetLastError() == ERROR_NO_MORE_ITEMS && HeapUnlock(h);
	T_OK(ok && n > 24 && nfree > 0, "3.10: a walk under HeapLock lists "
	     "the LFH slots, free ones with wFlags 0 (%d entries, %d free)",
	     n, nfree);
	for (i = 0; i < 4; i++)
		HeapFree(h, 0, ps[i]);
	HeapDestroy(h);
}

/* ---- 3.13: HeapUnlock by another thread ---- */

struct unlocker {
	HANDLE h;
	BOOL ret;
	DWORD le;
};

static void *unlocker_main(void *arg)
{
	struct unlocker *u = arg;

	SetLastError(0);
	u->ret = HeapUnlock(u->h);
	u->le = GetLastError();
	return NULL;
}

struct allocer {
	HANDLE h;
	volatile int done;
};

static void *allocer_main(void *arg)
{
	struct allocer *a = arg;

	HeapFree(a->h, 0, HeapAlloc(a->h, 0, 5000));
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void unlock_other_thread(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	struct unlocker u = { h, TRUE, 0 };
	struct allocer a = { h, 0 };
	pthread_t t;
	bool early, late;

	HeapLock(h);
	pthread_create(&t, NULL, unlocker_main, &u);
	pthread_join(t, NULL);
	T_OK(!u.ret && u.le == ERROR_NOT_OWNER, "3.13: HeapUnlock by a "
	     "thread that does not own the lock: FALSE, ERROR_NOT_OWNER "
	     "(undefined natively)");
	pthread_create(&t, NULL, allocer_main, &a);
	early = api_flag_within(&a.done, 100);
	HeapUnlock(h);
	late = api_flag_within(&a.done, 5000);
	pthread_join(t, NULL);
	T_OK(!early && late, "3.13: the owner still held the lock");
	HeapDestroy(h);
}

/* ---- 3.14: the process heap is growable and serialized ---- */

static void process_heap(void)
{
	HANDLE ph = GetProcessHeap();
	struct allocer a = { ph, 0 };
	void *p, *q;
	pthread_t t;
	bool early, late;

	p = HeapAlloc(ph, 0, 5 * A + 1);
	q = HeapAlloc(ph, 0, 8 * MiB);
	T_OK(p && q && HeapSize(ph, 0, q) == 8 * MiB, "3.14: the process "
	     "heap is growable (large blocks)");
	HeapFree(ph, 0, p);
	HeapFree(ph, 0, q);

	HeapLock(ph);
	pthread_create(&t, NULL, allocer_main, &a);
	early = api_flag_within(&a.done, 100);
	HeapUnlock(ph);
	late = api_flag_within(&a.done, 5000);
	pthread_join(t, NULL);
	T_OK(!early && late, "3.14: the process heap is serialized "
	     "(HeapLock blocks other threads)");
}

/* ---- 3.16: the LFH ---- */

static void lfh_activation(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	PROCESS_HEAP_ENTRY e;
	void *ps[40];
	ULONG u = 9, two = 2;
	int i, lfh = 0, busy = 0;

	for (i = 0; i < 17; i++)
		ps[i] = HeapAlloc(h, 0, 0);
	for (i = 0; i < 17; i++)
		HeapFree(h, 0, ps[i]);
	HeapQueryInformation(h, HeapCompatibilityInformation, &u, 4, NULL);
	T_EQ(u, 0, "3.16: 17 allocations of one size leave the LFH off");
	HeapFree(h, 0, HeapAlloc(h, 0, 0));
	HeapQueryInformation(h, HeapCompatibilityInformation, &u, 4, NULL);
	T_EQ(u, 2, "3.16: the 18th turns it on");
	HeapDestroy(h);

	h = HeapCreate(0, 0, 0);
	HeapSetInformation(h, HeapCompatibilityInformation, &two, 4);
	for (i = 0; i < 40; i++)
		ps[i] = HeapAlloc(h, 0, 20 * KiB);
	memset(&e, 0, sizeof(e));
	while (HeapWalk(h, &e)) {
		if (!(e.wFlags & PROCESS_HEAP_ENTRY_BUSY))
			continue;
		busy++;
		lfh += e.cbOverhead == 8;
	}
	T_OK(busy == 40 && !lfh, "3.16: requests above 16 KiB never use the "
	     "LFH (%d of %d blocks with LFH overhead)", lfh, busy);
	for (i = 0; i < 40; i++)
		HeapFree(h, 0, ps[i]);
	HeapDestroy(h);
}

int main(void)
{
	printf("# WIN32_HEAP_SPEC.md conformance (sections 1-3)\n");
	constants();
	create_flags();
	call_flags();
	entry_flags();
	success_keeps_error();
	process_heaps();
	lock_bad_handle();
	info_errors();
	compact_full();
	in_place_errors();
	create_sizes();
	block_sizes();
	block_stride();
	large_after_regions();
	fixed_exceptions();
	lfh_in_place();
	validate_entries();
	walk_protocol();
	unlock_other_thread();
	process_heap();
	lfh_activation();
	return t_done();
}
