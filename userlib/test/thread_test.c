// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Threads: concurrent first use of the process heap, two- and four-thread
 * stress on one shared heap with cross-thread frees, walks, summaries and
 * compaction (which also revokes the creator's lock bias under load),
 * threads of one heap allocating from runs of their own (affinity slots),
 * HeapLock blocking every kind of call with
 * timeouts, concurrent creation and destruction of heaps, and trimming
 * every heap against a HeapLock holder and against the owner of a
 * HEAP_NO_SERIALIZE heap.
 *
 * A watchdog (alarm) turns a deadlock into a failure.
 */
#include <pthread.h>
#include <sched.h>
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

/*
 * Walk the whole heap under HeapLock: every entry has an address, and the
 * walk ends with ERROR_NO_MORE_ITEMS.
 */
static bool walk_all(HANDLE h)
{
	PROCESS_HEAP_ENTRY e = { 0 };
	bool ok = true;

	if (!HeapLock(h))
		return false;
	while (HeapWalk(h, &e))
		if (!e.lpData)
			ok = false;
	if (GetLastError() != ERROR_NO_MORE_ITEMS)
		ok = false;
	return HeapUnlock(h) && ok;
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
		} else if (r == 92 && k < 4) {
			if (!walk_all(st->h))
				st->errors++;
		} else if (r == 93 && k < 8) {
			HEAP_SUMMARY s = { .cb = sizeof(s) };

			if (!HeapSummary(st->h, 0, &s) ||
			    s.cbAllocated > s.cbCommitted)
				st->errors++;
		} else if (r == 94 && k < 4) {
			SetLastError(0);
			if (!HeapCompact(st->h, 0) && GetLastError())
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

/* ---- threads of a shared heap allocate from runs of their own ---- */

#define AFF_N	32

struct aff_thread {
	HANDLE h;
	int id;
	atomic_int *turn;
	uintptr_t p[AFF_N];
};

/* Allocate AFF_N blocks of 200 bytes, in turn with the other thread. */
static void *aff_main(void *arg)
{
	struct aff_thread *a = arg;
	int i;

	for (i = 0; i < AFF_N; i++) {
		while (atomic_load(a->turn) != 2 * i + a->id)
			sched_yield();
		a->p[i] = (uintptr_t)HeapAlloc(a->h, 0, 200);
		atomic_fetch_add(a->turn, 1);
	}
	return NULL;
}

/*
 * Two threads that allocate one block each in turn from one serialized
 * heap: from one run, their blocks would sit next to each other; each
 * thread has a current run of its own (an affinity slot), so they do
 * not.
 */
static void affinity_runs(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	atomic_int turn = 0;
	struct aff_thread a[2] = {
		{ .h = h, .id = 0, .turn = &turn },
		{ .h = h, .id = 1, .turn = &turn },
	};
	pthread_t t[2];
	void *keep[24];
	int i, near = 0, null = 0;

	for (i = 0; i < 24; i++)	/* the class is active now */
		keep[i] = HeapAlloc(h, 0, 200);
	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, aff_main, &a[i]);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < AFF_N; i++) {
		uintptr_t d = a[0].p[i] > a[1].p[i] ? a[0].p[i] - a[1].p[i] :
			      a[1].p[i] - a[0].p[i];

		null += !a[0].p[i] || !a[1].p[i];
		near += d < 512;
	}
	T_EQ(null, 0, "two threads allocated %d blocks each in turn",
	     AFF_N);
	T_OK(near <= 2, "their blocks come from separate runs (%d of %d "
	     "pairs adjacent)", near, AFF_N);
	for (i = 0; i < AFF_N; i++) {
		HeapFree(h, 0, (void *)a[0].p[i]);
		HeapFree(h, 0, (void *)a[1].p[i]);
	}
	for (i = 0; i < 24; i++)
		HeapFree(h, 0, keep[i]);
	T_OK(HeapValidate(h, 0, NULL), "heap valid afterwards");
	HeapDestroy(h);
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

/*
 * HeapLock in one thread of a shared heap, whose own affinity slot has a
 * run of a class with room: another thread's allocation of that class
 * comes from that run instead of waiting to carve a run of its own (spec
 * case 54: LFH allocations do not wait for HeapLock).
 */
static void *lfh_alloc_main(void *arg)
{
	struct blocker *b = arg;

	b->p = HeapAlloc(b->h, 0, 200);
	atomic_store(&b->done, 1);
	return NULL;
}

static void *touch_main(void *arg)
{
	HeapFree(arg, 0, HeapAlloc(arg, 0, 200));
	return NULL;
}

static void lock_vs_slot(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	struct blocker b = { .h = h };
	void *keep[15];
	pthread_t t;
	bool early;
	int i;

	for (i = 0; i < 20; i++)	/* the class is active now */
		HeapFree(h, 0, HeapAlloc(h, 0, 200));
	pthread_create(&t, NULL, touch_main, h);	/* the heap is shared */
	pthread_join(t, NULL);
	for (i = 0; i < 15; i++)	/* this slot's run, mostly used */
		keep[i] = HeapAlloc(h, 0, 200);
	HeapLock(h);
	pthread_create(&t, NULL, lfh_alloc_main, &b);
	early = wait_done(&b, 3000);
	HeapUnlock(h);
	pthread_join(t, NULL);
	T_OK(early && b.p, "HeapLock does not block another thread's LFH "
	     "allocation while a run of its class has room");
	HeapFree(h, 0, b.p);
	for (i = 0; i < 15; i++)
		HeapFree(h, 0, keep[i]);
	T_OK(HeapValidate(h, 0, NULL), "heap valid afterwards");
	HeapDestroy(h);
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

static atomic_int churn_stop;

/* Trims every heap while the others are created and destroyed. */
static void *churn_trim_main(void *arg)
{
	while (!atomic_load(&churn_stop))
		if (heapdev_trim(NULL))
			churn_errors++;
	return arg;
}

static void churn(void)
{
	DWORD before = GetProcessHeaps(0, NULL);
	pthread_t t[4], trim;
	int i;

	pthread_create(&trim, NULL, churn_trim_main, NULL);
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, churn_main, NULL);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	atomic_store(&churn_stop, 1);
	pthread_join(trim, NULL);
	T_EQ(churn_errors, 0, "4 threads creating, using and destroying 800 "
	     "heaps while a fifth trims every heap");
	T_EQ(GetProcessHeaps(0, NULL), before, "registry back to %u heaps",
	     before);
}

/* ---- trimming every heap while a thread holds HeapLock ---- */

struct trim_lock {
	HANDLE x;
	atomic_int locked, go, step, release, trimmed;
	BOOL trim_ok;
};

/* Holds HeapLock(x) while it creates, destroys and lists heaps. */
static void *trim_holder(void *arg)
{
	struct trim_lock *d = arg;
	struct timespec ts = { 0, 1000 * 1000 };
	HANDLE y, list[64];

	HeapLock(d->x);
	atomic_store(&d->locked, 1);
	while (!atomic_load(&d->go))
		nanosleep(&ts, NULL);
	y = HeapCreate(0, 0, 0);
	atomic_store(&d->step, 1);
	if (y)
		HeapDestroy(y);
	atomic_store(&d->step, 2);
	GetProcessHeaps(64, list);
	atomic_store(&d->step, 3);
	while (!atomic_load(&d->release))
		nanosleep(&ts, NULL);
	HeapUnlock(d->x);
	return NULL;
}

static void *trim_all_main(void *arg)
{
	HEAP_OPTIMIZE_RESOURCES_INFORMATION o = {
		HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION, 0
	};
	struct trim_lock *d = arg;

	d->trim_ok = HeapSetInformation(NULL, HeapOptimizeResources, &o,
					sizeof(o));
	atomic_store(&d->trimmed, 1);
	return NULL;
}

static bool wait_flag(atomic_int *f, int v, int ms)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };
	int i;

	for (i = 0; i < ms / 2 && atomic_load(f) < v; i++)
		nanosleep(&ts, NULL);
	return atomic_load(f) >= v;
}

/*
 * HeapSetInformation(NULL, HeapOptimizeResources) waits for the lock of
 * a heap that another thread holds; that thread then creates, destroys
 * and lists heaps.  Neither may wait for the other.  If they do, the
 * threads are stuck for good and are left behind.
 */
static void trim_vs_lock(void)
{
	struct trim_lock *d = calloc(1, sizeof(*d));
	pthread_t holder, trimmer;
	bool done;

	d->x = HeapCreate(0, 0, 0);
	HeapFree(d->x, 0, HeapAlloc(d->x, 0, 100));
	pthread_create(&holder, NULL, trim_holder, d);
	wait_flag(&d->locked, 1, 5000);
	pthread_create(&trimmer, NULL, trim_all_main, d);
	/* time for the trim to block on x's lock */
	usleep(100 * 1000);
	atomic_store(&d->go, 1);
	done = wait_flag(&d->step, 3, 5000);
	T_OK(done, "HeapOptimizeResources(NULL) waiting for a heap's lock "
	     "does not block its holder's HeapCreate, HeapDestroy and "
	     "GetProcessHeaps (reached step %d of 3)", atomic_load(&d->step));
	if (!done)
		return;
	T_OK(!atomic_load(&d->trimmed), "the trim waits for the HeapLock "
	     "holder");
	atomic_store(&d->release, 1);
	pthread_join(holder, NULL);
	pthread_join(trimmer, NULL);
	T_OK(d->trim_ok, "and completes once it is released");
	T_OK(HeapValidate(d->x, 0, NULL) && HeapDestroy(d->x),
	     "the locked heap is fine afterwards");
	free(d);
}

/* ---- trimming every heap leaves HEAP_NO_SERIALIZE heaps alone ---- */

static atomic_int noser_stop;

static void *noser_trimmer(void *arg)
{
	while (!atomic_load(&noser_stop))
		heapdev_trim(NULL);
	return arg;
}

/*
 * The owner of a HEAP_NO_SERIALIZE heap uses it without any lock while
 * another thread trims every heap; a trim that compacted it would race
 * with the owner (ThreadSanitizer reports it; corrupted lists otherwise).
 */
static void trim_vs_no_serialize(void)
{
	HANDLE h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	void *p[64];
	bool ok = true;
	pthread_t t;
	int i, j;

	pthread_create(&t, NULL, noser_trimmer, NULL);
	for (i = 0; i < 300; i++) {
		for (j = 0; j < 64; j++) {
			p[j] = HeapAlloc(h, 0, 20000 + (size_t)j * 512);
			ok &= !!p[j];
			if (p[j])
				memset(p[j], j, 64);
		}
		for (j = 0; j < 64; j++)
			ok &= !p[j] || HeapFree(h, 0, p[j]);
	}
	atomic_store(&noser_stop, 1);
	pthread_join(t, NULL);
	T_OK(ok && HeapValidate(h, 0, NULL), "heapdev_trim(NULL) in another "
	     "thread does not touch a HEAP_NO_SERIALIZE heap in use");
	HeapDestroy(h);
}

int main(void)
{
	alarm(240);	/* a deadlock fails the test instead of hanging it */
	printf("# heapdev thread tests\n");
	process_heap_race();
	stress(2, 200000);
	stress(4, 100000);
	affinity_runs();
	lock_vs_slot();
	lock_blocks();
	churn();
	trim_vs_no_serialize();
	/* last: if it fails, its threads are stuck for good */
	trim_vs_lock();
	return t_done();
}
