// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Threads: concurrent first use of the process heap, two- and four-thread
 * stress on one shared heap with cross-thread frees (which also revokes the
 * creator's lock bias under load), HeapLock blocking every kind of call with
 * timeouts, and concurrent creation and destruction of heaps.
 *
 * A watchdog (alarm) turns a deadlock into a failure.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "t.h"

#define NSHARE	256

static HANDLE proc_seen[8];

static void *proc_first(void *arg)
{
	proc_seen[(uintptr_t)arg] = GetProcessHeap();
	return NULL;
}

static void process_heap_race(void)
{
	pthread_t t[8];
	uintptr_t i;
	bool same = true;

	for (i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, proc_first, (void *)i);
	for (i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 8; i++)
		same &= proc_seen[i] && proc_seen[i] == proc_seen[0];
	T_OK(same, "8 threads racing on the first GetProcessHeap get one heap");
	T_EQ(GetProcessHeaps(0, NULL), 1, "and only one was created");
}

struct stress {
	HANDLE h;
	_Atomic(uintptr_t) share[NSHARE];
	atomic_int errors;
	int iters;
};

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Blocks carry their size in the first word and a fill byte after it. */
static void *mk(HANDLE h, size_t n, uint64_t *seed)
{
	unsigned char *p = HeapAlloc(h, 0, n < 16 ? 16 : n);

	if (!p)
		return NULL;
	n = n < 16 ? 16 : n;
	memcpy(p, &n, sizeof(n));
	memset(p + 8, (int)(n & 0xFF), n - 8);
	(void)seed;
	return p;
}

static bool ok_block(HANDLE h, unsigned char *p)
{
	size_t n, i;

	memcpy(&n, p, sizeof(n));
	if (HeapSize(h, 0, p) != n)
		return false;
	for (i = 8; i < n; i += 61)
		if (p[i] != (unsigned char)(n & 0xFF))
			return false;
	return p[n - 1] == (unsigned char)(n & 0xFF);
}

static void *stress_main(void *arg)
{
	struct stress *st = arg;
	uint64_t seed = (uintptr_t)&seed ^ 0x1234567;
	void *mine[64] = { 0 };
	int i;

	for (i = 0; i < st->iters; i++) {
		unsigned int r = xs(&seed) % 100, k = xs(&seed) % 64;
		size_t n = xs(&seed) % (r < 90 ? 300 : 40000);

		if (r < 40) {
			if (mine[k] && (!ok_block(st->h, mine[k]) ||
					!HeapFree(st->h, 0, mine[k])))
				st->errors++;
			mine[k] = mk(st->h, n, &seed);
			if (!mine[k])
				st->errors++;
		} else if (r < 75) {
			/* hand a block to whoever comes next */
			unsigned char *p = mk(st->h, n, &seed), *old;

			old = (unsigned char *)atomic_exchange(
				&st->share[xs(&seed) % NSHARE], (uintptr_t)p);
			if (old && (!ok_block(st->h, old) ||
				    !HeapFree(st->h, 0, old)))
				st->errors++;
		} else if (r < 90 && mine[k]) {
			unsigned char *q = HeapReAlloc(st->h, 0, mine[k],
						       n < 16 ? 16 : n);

			if (!q) {
				st->errors++;
				continue;
			}
			n = n < 16 ? 16 : n;
			memcpy(q, &n, sizeof(n));
			memset(q + 8, (int)(n & 0xFF), n - 8);
			mine[k] = q;
		} else if (r < 92) {
			if (!HeapValidate(st->h, 0, NULL))
				st->errors++;
		} else if (mine[k] && !HeapValidate(st->h, 0, mine[k])) {
			st->errors++;
		}
	}
	for (i = 0; i < 64; i++)
		if (mine[i] && !HeapFree(st->h, 0, mine[i]))
			st->errors++;
	return NULL;
}

static void stress(int nthreads, int iters)
{
	struct stress *st = calloc(1, sizeof(*st));
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	pthread_t t[8];
	int i;

	st->h = HeapCreate(0, 0, 0);
	st->iters = iters;
	/* The creator uses the heap first: its lock is biased to us. */
	for (i = 0; i < 100; i++)
		HeapFree(st->h, 0, HeapAlloc(st->h, 0, 24));
	for (i = 0; i < nthreads; i++)
		pthread_create(&t[i], NULL, stress_main, st);
	for (i = 0; i < 20000; i++)
		HeapFree(st->h, 0, HeapAlloc(st->h, 0, 24));
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < NSHARE; i++)
		if (st->share[i] && !HeapFree(st->h, 0, (void *)st->share[i]))
			st->errors++;
	T_EQ(st->errors, 0, "%d threads x %d operations on one heap with "
	     "cross-thread frees", nthreads, iters);
	T_OK(HeapValidate(st->h, 0, NULL), "%d threads: heap valid afterwards",
	     nthreads);
	T_OK(HeapSummary(st->h, 0, &s) && s.cbAllocated == 0,
	     "%d threads: nothing left allocated (%zu)", nthreads,
	     s.cbAllocated);
	HeapDestroy(st->h);
	free(st);
}

/* ---- HeapLock blocks every call ---- */

enum {
	OP_ALLOC, OP_FREE_MEDIUM, OP_REALLOC, OP_SIZE, OP_VALIDATE, OP_WALK,
	OP_COMPACT, OP_SUMMARY, OP_LOCK, OP_FREE_LFH, OP_NOSER, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"HeapAlloc", "HeapFree (medium)", "HeapReAlloc", "HeapSize",
	"HeapValidate", "HeapWalk", "HeapCompact", "HeapSummary", "HeapLock",
	"HeapFree (active LFH class)", "HeapAlloc(HEAP_NO_SERIALIZE)",
};

struct blocker {
	HANDLE h;
	int op;
	void *p;
	atomic_int done;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	PROCESS_HEAP_ENTRY e;

	switch (b->op) {
	case OP_ALLOC:
		HeapFree(b->h, 0, HeapAlloc(b->h, 0, 3000));
		break;
	case OP_FREE_MEDIUM:
	case OP_FREE_LFH:
		HeapFree(b->h, 0, b->p);
		break;
	case OP_REALLOC:
		HeapReAlloc(b->h, 0, b->p, 20);
		break;
	case OP_SIZE:
		HeapSize(b->h, 0, b->p);
		break;
	case OP_VALIDATE:
		HeapValidate(b->h, 0, NULL);
		break;
	case OP_WALK:
		memset(&e, 0, sizeof(e));
		HeapWalk(b->h, &e);
		break;
	case OP_COMPACT:
		HeapCompact(b->h, 0);
		break;
	case OP_SUMMARY:
		HeapSummary(b->h, 0, &s);
		break;
	case OP_LOCK:
		HeapLock(b->h);
		HeapUnlock(b->h);
		break;
	case OP_NOSER:
		HeapFree(b->h, HEAP_NO_SERIALIZE,
			 HeapAlloc(b->h, HEAP_NO_SERIALIZE, 5000));
		break;
	}
	atomic_store(&b->done, 1);
	return NULL;
}

static bool wait_done(struct blocker *b, int ms)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	int i;

	for (i = 0; i < ms / 2 && !atomic_load(&b->done); i++)
		nanosleep(&ts, NULL);
	return atomic_load(&b->done);
}

static void lock_blocks(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	void *lfh[24];
	int op, i;

	for (i = 0; i < 24; i++)
		lfh[i] = HeapAlloc(h, 0, 8);	/* class now active */
	for (op = 0; op < OP_COUNT; op++) {
		struct blocker b = { .h = h, .op = op };
		bool blocks = op != OP_FREE_LFH && op != OP_NOSER, early, late;
		pthread_t t;

		/* the first 17 were medium blocks: the last one is an LFH slot */
		b.p = op == OP_FREE_LFH ? lfh[23] : HeapAlloc(h, 0, 3000);
		HeapLock(h);
		pthread_create(&t, NULL, blocker_main, &b);
		early = wait_done(&b, blocks ? 150 : 3000);
		HeapUnlock(h);
		late = wait_done(&b, 5000);
		pthread_join(t, NULL);
		if (blocks)
			T_OK(!early && late, "HeapLock blocks %s in another "
			     "thread until HeapUnlock", op_names[op]);
		else
			T_OK(early, "HeapLock does not block %s", op_names[op]);
		if (op != OP_FREE_MEDIUM && op != OP_FREE_LFH &&
		    op != OP_REALLOC)
			HeapFree(h, 0, b.p);
	}
	T_OK(HeapValidate(h, 0, NULL), "heap valid after the lock tests");
	HeapDestroy(h);
}

/* ---- heaps created and destroyed by several threads ---- */

static atomic_int churn_errors;

static void *churn_main(void *arg)
{
	int i, j;

	for (i = 0; i < 200; i++) {
		DWORD fl = i % 3 == 0 ? HEAP_NO_SERIALIZE : 0;
		HANDLE h = HeapCreate(fl, 0, i % 2 ? 1 << 20 : 0);
		void *p[32];

		if (!h) {
			churn_errors++;
			continue;
		}
		for (j = 0; j < 32; j++)
			p[j] = HeapAlloc(h, 0, (size_t)(j * 97 + i) % 5000);
		for (j = 0; j < 32; j += 2)
			if (!HeapFree(h, 0, p[j]))
				churn_errors++;
		if (!HeapValidate(h, 0, NULL) || !HeapDestroy(h))
			churn_errors++;
	}
	return arg;
}

static void churn(void)
{
	DWORD before = GetProcessHeaps(0, NULL);
	pthread_t t[4];
	int i;

	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, churn_main, NULL);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	T_EQ(churn_errors, 0, "4 threads creating, using and destroying 800 "
	     "heaps");
	T_EQ(GetProcessHeaps(0, NULL), before, "registry back to %u heaps",
	     before);
}

int main(void)
{
	alarm(240);	/* a deadlock fails the test instead of hanging it */
	printf("# heapdev thread tests\n");
	process_heap_race();
	stress(2, 200000);
	stress(4, 100000);
	lock_blocks();
	churn();
	return t_done();
}
