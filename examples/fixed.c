// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * A fixed-size heap sized up front for a deterministic workload.
 *
 * A sensor pipeline keeps at most QUEUE_MAX samples of at most SAMPLE_MAX
 * bytes.  The heap is created fixed (dwMaximumSize != 0) with room for
 * exactly that, committed at creation (dwInitialSize == dwMaximumSize), so
 * the memory is guaranteed to be there: on /dev/heapdev the kernel has
 * allocated and charged every page when HeapCreate returns, and it will
 * refuse to let the heap grow past its maximum whatever happens.  An
 * overload shows up as an allocation failure, immediately and always at
 * the same point, not as swapping or the OOM killer.
 *
 * With HEAPSTAT naming the heapstat tool, the admin view of this process
 * is shown while the heap is full.
 *
 *   fixed                    (HEAPDEV_BACKEND=memfd without /dev/heapdev)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <heapdev/win32.h>

#define QUEUE_MAX	256
#define SAMPLE_MAX	1000
/* Per-block overhead: 16-byte header, 16-byte granularity. */
#define BLOCK_MAX	((SAMPLE_MAX + 16 + 15) / 16 * 16)
/* The first 2 KiB of the heap hold its own header. */
#define HEAP_BYTES	(QUEUE_MAX * BLOCK_MAX + 2048)

static void *queue[QUEUE_MAX];

/* Print the admin view of this process: "$HEAPSTAT --heaps -p <pid>". */
static void show_heaps(const char *when)
{
	const char *heapstat = getenv("HEAPSTAT");
	char cmd[512];

	if (!heapstat)
		return;
	snprintf(cmd, sizeof(cmd), "%s --heaps -p %ld", heapstat,
		 (long)getpid());
	printf("--- admin view %s:\n", when);
	fflush(stdout);
	if (system(cmd))
		fprintf(stderr, "fixed: %s failed\n", cmd);
}

static SIZE_T sample_size(unsigned int i)
{
	return 200 + (i * 7919) % (SAMPLE_MAX - 199);
}

int main(void)
{
	HANDLE heap = HeapCreate(0, HEAP_BYTES, HEAP_BYTES);
	HEAP_SUMMARY sum = { .cb = sizeof(sum) };
	unsigned int i, head = 0, failures_at = 0;
	PROCESS_HEAP_ENTRY e;
	SIZE_T busy = 0;

	if (!heap) {
		fprintf(stderr, "HeapCreate failed (%u): load the heapdev "
			"module or set HEAPDEV_BACKEND=memfd\n",
			(unsigned int)GetLastError());
		return 1;
	}
	HeapSummary(heap, 0, &sum);
	printf("fixed heap: %zu bytes reserved, %zu committed up front\n",
	       sum.cbReserved, sum.cbCommitted);

	/* Steady state: a ring of QUEUE_MAX samples of varying size. */
	for (i = 0; i < 100000; i++) {
		SIZE_T n = sample_size(i);

		if (queue[head])
			HeapFree(heap, 0, queue[head]);
		queue[head] = HeapAlloc(heap, 0, n);
		if (!queue[head]) {
			fprintf(stderr, "allocation %u failed in steady "
				"state\n", i);
			return 1;
		}
		memset(queue[head], (int)i, n);
		head = (head + 1) % QUEUE_MAX;
	}
	printf("100000 samples through a ring of %d: no failure\n", QUEUE_MAX);

	/* Overload: keep everything; the heap refuses at its limit. */
	for (i = 0; i < 100000; i++) {
		void *p = HeapAlloc(heap, 0, SAMPLE_MAX);

		if (!p) {
			failures_at = i;
			break;
		}
	}
	printf("overload: refused after %u extra samples, last error %u "
	       "(ERROR_NOT_ENOUGH_MEMORY = %u)\n", failures_at,
	       (unsigned int)GetLastError(), (unsigned int)ERROR_NOT_ENOUGH_MEMORY);
	show_heaps("with the heap full (committed never grew)");

	memset(&e, 0, sizeof(e));
	HeapLock(heap);
	while (HeapWalk(heap, &e))
		if (e.wFlags & PROCESS_HEAP_ENTRY_BUSY)
			busy += e.cbData;
	HeapUnlock(heap);
	HeapSummary(heap, 0, &sum);
	printf("walk: %zu bytes in use; summary: %zu allocated, %zu "
	       "committed (never more than the %zu reserved)\n", busy,
	       sum.cbAllocated, sum.cbCommitted, sum.cbMaxReserve);
	printf("HeapValidate: %s\n", HeapValidate(heap, 0, NULL) ? "ok" :
	       "CORRUPT");
	HeapDestroy(heap);
	return failures_at ? 0 : 1;
}
