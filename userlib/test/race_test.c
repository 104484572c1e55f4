// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * HeapDestroy racing the other calls on the same heap.
 *
 * The outcome heapdev defines (DESIGN.md, "Destroying a heap in use"):
 *
 *  - HeapDestroy waits for the calls on the heap that are in progress in
 *    other threads; they complete as if the destroy came after them (a
 *    call blocked on the heap lock completes once the lock is released);
 *  - a call that starts after HeapDestroy has begun fails: NULL / FALSE /
 *    (SIZE_T)-1 with ERROR_INVALID_HANDLE (HeapValidate: FALSE);
 *  - no call ever faults or writes into memory that is no longer mapped.
 *
 * Worker threads call HeapAlloc, HeapFree, HeapReAlloc, HeapSize,
 * HeapValidate, HeapWalk, HeapCompact and HeapSummary on one heap while
 * the main thread destroys it after a random delay; every call records
 * whether HeapDestroy had already returned when it started.  The workers
 * never touch block memory themselves (that would be their own use after
 * destroy).  Rounds use growable, fixed and LFH-active heaps.
 *
 *   race_test [ROUNDS]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <heapdev/win32.h>

#include "t.h"

#define NWORKERS	3
#define NBLOCKS		16

struct round {
	HANDLE h;
	atomic_int go;		/* workers may start */
	atomic_int destroyed;	/* HeapDestroy has returned */
	atomic_int stop;
	atomic_long calls;	/* calls made */
	atomic_long ok_before;	/* calls that worked, started before */
	atomic_long failed;	/* calls refused with ERROR_INVALID_HANDLE */
	atomic_long late_ok;	/* worked although started after: a bug */
	atomic_long bad_error;	/* failed with another error: a bug */
};

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A worker's counts, added to the round's when it ends. */
struct counts {
	long calls, ok_before, failed, late_ok, bad_error;
};

/* Account for one call: @worked, and the last error when it did not. */
static void account(struct counts *n, bool after, bool worked)
{
	n->calls++;
	if (worked) {
		if (after)
			n->late_ok++;
		else
			n->ok_before++;
		return;
	}
	if (GetLastError() == ERROR_INVALID_HANDLE)
		n->failed++;
	else if (!after && GetLastError() == ERROR_NOT_ENOUGH_MEMORY)
		n->ok_before++;		/* a full fixed heap */
	else
		n->bad_error++;
}

/* One call on the heap; @blk holds this worker's blocks. */
static void one_call(struct round *r, struct counts *c, void **blk,
		     uint64_t *seed)
{
	HANDLE h = r->h;
	unsigned int k = xs(seed) % NBLOCKS, op = xs(seed) % 9;
	size_t n = xs(seed) % 3 ? xs(seed) % 300 : xs(seed) % 40000;
	bool after = atomic_load(&r->destroyed);
	PROCESS_HEAP_ENTRY e;
	HEAP_SUMMARY s = { .cb = sizeof(s) };
	SIZE_T sz;
	void *p;

	SetLastError(0);
	switch (op) {
	case 0: case 1:
		if (blk[k])
			break;
		p = HeapAlloc(h, 0, n);
		account(c, after, p != NULL);
		blk[k] = p;
		return;
	case 2:
		if (!blk[k])
			break;
		account(c, after, HeapFree(h, 0, blk[k]));
		blk[k] = NULL;
		return;
	case 3:
		if (!blk[k])
			break;
		p = HeapReAlloc(h, 0, blk[k], n);
		account(c, after, p != NULL);
		if (p)
			blk[k] = p;
		return;
	case 4:
		if (!blk[k])
			break;
		sz = HeapSize(h, 0, blk[k]);
		account(c, after, sz != (SIZE_T)-1);
		return;
	case 5:
		if (!blk[k])
			break;
		/* HeapValidate sets no last error: FALSE means refused */
		SetLastError(ERROR_INVALID_HANDLE);
		account(c, after, HeapValidate(h, 0, blk[k]));
		return;
	case 6:
		memset(&e, 0, sizeof(e));
		account(c, after, HeapWalk(h, &e));
		return;
	case 7:
		account(c, after, HeapSummary(h, 0, &s));
		return;
	default:
		SetLastError(ERROR_INVALID_HANDLE);
		account(c, after, HeapValidate(h, 0, NULL));
		return;
	}
	sz = HeapCompact(h, 0);
	account(c, after, sz || GetLastError() == NO_ERROR);
}

static void *worker(void *arg)
{
	struct round *r = arg;
	uint64_t seed = (uintptr_t)&seed ^ (uint64_t)time(NULL) * 2654435761u;
	void *blk[NBLOCKS] = { 0 };
	struct counts c = { 0 };
	int after = 0;

	while (!atomic_load(&r->go))
		;
	/* go on for a while after the destroy, with stale pointers */
	while (!atomic_load(&r->stop) && after < 200) {
		one_call(r, &c, blk, &seed);
		after += atomic_load(&r->destroyed);
	}
	atomic_fetch_add(&r->calls, c.calls);
	atomic_fetch_add(&r->ok_before, c.ok_before);
	atomic_fetch_add(&r->failed, c.failed);
	atomic_fetch_add(&r->late_ok, c.late_ok);
	atomic_fetch_add(&r->bad_error, c.bad_error);
	return NULL;
}

static void sleep_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

static struct round totals;
static double destroy_ms, destroy_max_ms;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool run_round(int i, uint64_t *seed)
{
	struct round *r = calloc(1, sizeof(*r));
	pthread_t t[NWORKERS];
	bool ok;
	int j;

	r->h = HeapCreate(0, 0, i % 3 == 1 ? 2 << 20 : 0);
	if (!r->h) {
		free(r);
		return false;
	}
	if (i % 3 == 2)		/* LFH classes active before the race */
		for (j = 0; j < 40; j++)
			HeapFree(r->h, 0, HeapAlloc(r->h, 0, (size_t)j * 7));
	for (j = 0; j < NWORKERS; j++)
		pthread_create(&t[j], NULL, worker, r);
	atomic_store(&r->go, 1);
	double t0;

	sleep_us((long)(xs(seed) % 300));
	t0 = now_ms();
	ok = HeapDestroy(r->h);
	atomic_store(&r->destroyed, 1);
	t0 = now_ms() - t0;
	destroy_ms += t0;
	if (t0 > destroy_max_ms)
		destroy_max_ms = t0;
	for (j = 0; j < NWORKERS; j++)
		pthread_join(t[j], NULL);
	totals.calls += r->calls;
	totals.ok_before += r->ok_before;
	totals.failed += r->failed;
	totals.late_ok += r->late_ok;
	totals.bad_error += r->bad_error;
	free(r);
	return ok;
}

/*
 * A call blocked on HeapLock held by another thread when HeapDestroy
 * starts completes once the lock is released, before the destroy; the
 * holder's HeapUnlock works, and afterwards the handle is dead.
 */
struct blocked {
	HANDLE h;
	atomic_int state;	/* 1: holder has the lock, 2: blocked call done */
	atomic_int unlocked;
	void *got;
	BOOL unlock_ok;
};

static void *holder(void *arg)
{
	struct blocked *b = arg;

	HeapLock(b->h);
	atomic_store(&b->state, 1);
	sleep_us(100 * 1000);
	atomic_store(&b->unlocked, 1);
	b->unlock_ok = HeapUnlock(b->h);
	return NULL;
}

static void *blocked_call(void *arg)
{
	struct blocked *b = arg;

	b->got = HeapAlloc(b->h, 0, 3000);
	atomic_store(&b->state, 2);
	return NULL;
}

static void lock_holder(void)
{
	struct blocked b = { .h = HeapCreate(0, 0, 0) };
	pthread_t th, tb;
	bool destroyed;

	pthread_create(&th, NULL, holder, &b);
	while (atomic_load(&b.state) != 1)
		sleep_us(100);
	pthread_create(&tb, NULL, blocked_call, &b);
	sleep_us(20 * 1000);		/* tb is waiting for the lock now */
	destroyed = HeapDestroy(b.h);
	T_OK(destroyed && atomic_load(&b.unlocked) &&
	     atomic_load(&b.state) == 2, "HeapDestroy waits for a call "
	     "blocked on another thread's HeapLock");
	pthread_join(th, NULL);
	pthread_join(tb, NULL);
	T_OK(b.got != NULL && b.unlock_ok, "the blocked HeapAlloc completed "
	     "and the holder's HeapUnlock worked");
	SetLastError(0);
	T_OK(!HeapUnlock(b.h) && GetLastError() == ERROR_INVALID_HANDLE,
	     "afterwards the handle is dead (ERROR_INVALID_HANDLE)");
}

/* The destroying thread holds HeapLock itself: the destroy releases it. */
static void destroy_while_locked(void)
{
	struct blocked b = { .h = HeapCreate(0, 0, 0) };
	pthread_t tb;
	bool ok;

	HeapLock(b.h);
	HeapLock(b.h);
	pthread_create(&tb, NULL, blocked_call, &b);
	sleep_us(20 * 1000);
	ok = HeapDestroy(b.h);
	pthread_join(tb, NULL);
	T_OK(ok && b.got, "HeapDestroy by the HeapLock owner lets the blocked "
	     "call complete first");
	SetLastError(0);
	T_OK(!HeapAlloc(b.h, 0, 1) && GetLastError() == ERROR_INVALID_HANDLE,
	     "and the handle is dead afterwards");
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 400, i, destroyed = 0;
	uint64_t seed = (uint64_t)time(NULL) | 1;

	alarm(300);	/* a deadlock fails the test instead of hanging it */
	printf("# HeapDestroy racing %d threads' calls on the same heap, %d "
	       "rounds\n", NWORKERS, rounds);
	for (i = 0; i < rounds; i++)
		destroyed += run_round(i, &seed);
	T_EQ(destroyed, rounds, "every HeapDestroy returned TRUE (%.3f ms on "
	     "average, %.3f ms at most)", destroy_ms / rounds, destroy_max_ms);
	T_EQ(totals.late_ok, 0, "no call that started after HeapDestroy "
	     "returned worked (%ld calls: %ld worked before the destroy, %ld "
	     "refused with ERROR_INVALID_HANDLE)", totals.calls,
	     totals.ok_before, totals.failed);
	T_EQ(totals.bad_error, 0, "every refused call said "
	     "ERROR_INVALID_HANDLE");
	T_OK(totals.failed >= rounds, "calls after the destroy were refused "
	     "(%ld)", totals.failed);
	lock_holder();
	destroy_while_locked();
	T_EQ(GetProcessHeaps(0, NULL), 1, "no heap left behind");
	return t_done();
}
