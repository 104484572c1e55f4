// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the heap lock.
 *
 * A Win32 heap lock is a recursive critical section.  Most heaps are only
 * ever used by the thread that created them (a heap per request, per
 * tenant, per component), so the lock starts biased towards its creator:
 * that thread takes and releases it with plain loads and stores of a depth
 * counter, no atomic read-modify-write and no fence.
 *
 * The first time another thread wants the lock, it revokes the bias: it
 * takes the futex mutex, sets @revoking, and calls membarrier(PRIVATE
 * EXPEDITED), which runs a full memory barrier on every CPU running a
 * thread of this process.  Afterwards the biased owner's plain store of its
 * depth is visible, and the owner is guaranteed to see @revoking on its
 * next acquisition (the asymmetric Dekker pattern of liburcu and folly).
 * The revoker waits until the depth is 0 (the owner may be holding the
 * lock through HeapLock for a long time: it sleeps on a futex), clears the
 * bias, and the lock is a plain recursive futex mutex from then on.
 *
 * Without membarrier (old kernels, seccomp filters, valgrind) locks start
 * unbiased; so do they in ThreadSanitizer builds (HEAPDEV_TSAN).
 */
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

__thread _Atomic(struct hd_lock *) hd_waiting
	__attribute__((tls_model("initial-exec")));

static pthread_once_t hd_bias_once = PTHREAD_ONCE_INIT;
static bool hd_bias_ok;

static void hd_bias_probe(void)
{
	long cmds;

#ifdef HEAPDEV_TSAN
	/*
	 * ThreadSanitizer cannot see the ordering that membarrier() gives
	 * the biased owner's plain stores: it would report every revocation
	 * as a race.  TSan builds (make tsan) use unbiased locks, whose
	 * atomics it understands, and need no suppression.
	 */
	return;
#endif
	cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return;
	if (syscall(__NR_membarrier,
		    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0))
		return;
	hd_bias_ok = true;
}

/*
 * A full memory barrier on every CPU that runs a thread of this process:
 * membarrier(), or else the IPIs of a TLB shootdown, which a permission
 * change of a present page sends to every CPU that may cache its entry
 * (the fallback of folly's asymmetricHeavyBarrier).
 */
void hd_heavy_barrier(void)
{
	static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
	static _Atomic char *page;

	if (hd_bias_supported() &&
	    !syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0))
		return;
	pthread_mutex_lock(&mutex);
	if (!page) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		page = p == MAP_FAILED ? NULL : p;
	}
	if (page && !mprotect((void *)page, 4096, PROT_READ | PROT_WRITE)) {
		/* present, so that the permission change flushes */
		atomic_store_explicit(page, 0, memory_order_relaxed);
		mprotect((void *)page, 4096, PROT_READ);
	} else {
		atomic_thread_fence(memory_order_seq_cst);
	}
	pthread_mutex_unlock(&mutex);
}

/* Whether biased locks can be revoked safely in this process. */
bool hd_bias_supported(void)
{
	pthread_once(&hd_bias_once, hd_bias_probe);
	return hd_bias_ok;
}

/*
 * Sleep while *@addr == @val, a waiter of lock @l (NULL: of no lock): a
 * HeapDestroy or a pause of another heap does not wait for this thread
 * meanwhile.
 *
 * A release store: a destroy may return from waiting on this thread on
 * seeing @l without reading a newer call state (its last value may be its
 * own mark, made while this thread was still in a call on the heap being
 * destroyed, which it has left since), so everything this thread did
 * before sleeping, that call included, must happen before the destroy
 * through this store and the acquire load there.
 */
static void hd_futex_wait_ts(_Atomic uint32_t *addr, uint32_t val,
			     struct hd_lock *l, const struct timespec *ts)
{
	if (l)
		atomic_store_explicit(&hd_waiting, l, memory_order_release);
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, ts, NULL, 0);
	if (l)
		atomic_store_explicit(&hd_waiting, NULL, memory_order_relaxed);
}

void hd_futex_wait(_Atomic uint32_t *addr, uint32_t val, struct hd_lock *l)
{
	hd_futex_wait_ts(addr, val, l, NULL);
}

void hd_futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

uint64_t hd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void hd_lock_init(struct hd_lock *l, bool biased)
{
	atomic_init(&l->bias, biased && hd_bias_supported() ? hd_self() : 0);
	atomic_init(&l->depth, 0);
	atomic_init(&l->revoking, 0);
	atomic_init(&l->word, 0);
	atomic_init(&l->owner, 0);
	l->count = 0;
}

/*
 * Pause-loops a contended lock spins for before it sleeps (as glibc's
 * adaptive mutexes do): the heap's critical sections are a few list
 * operations, far shorter than a futex wait and wake-up, which cost tens
 * of microseconds under a hypervisor.  Only while no one sleeps on it.
 */
#define HD_SPIN		100

/* Drepper's futex mutex ("Futexes are tricky", mutex3), spinning first. */
static void hd_word_lock(struct hd_lock *l)
{
	uint32_t c = 0;
	unsigned int i;

	if (atomic_compare_exchange_strong_explicit(&l->word, &c, 1,
						    memory_order_acquire,
						    memory_order_relaxed))
		return;
	for (i = 0; i < HD_SPIN && c == 1; i++) {
		__builtin_ia32_pause();
		c = atomic_load_explicit(&l->word, memory_order_relaxed);
		if (!c && atomic_compare_exchange_strong_explicit(
				&l->word, &c, 1, memory_order_acquire,
				memory_order_relaxed))
			return;
	}
	if (c != 2)
		c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	while (c) {
		hd_futex_wait(&l->word, 2, l);
		c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	}
}

static void hd_word_unlock(struct hd_lock *l)
{
	if (atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2)
		hd_futex_wake(&l->word, 1);
}

/*
 * Called with the futex mutex held: take the bias away for good.  The
 * owner never wakes us (its release is a plain store), so poll its depth:
 * revocation happens once per heap, and the owner may hold the lock for a
 * long time through HeapLock.
 */
static void hd_revoke(struct hd_lock *l)
{
	struct timespec ts = { 0, 1000 * 1000 };
	uint32_t d;

	atomic_store_explicit(&l->revoking, 1, memory_order_relaxed);
	syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	while ((d = atomic_load_explicit(&l->depth, memory_order_acquire)))
		hd_futex_wait_ts(&l->depth, d, l, &ts);
	atomic_store_explicit(&l->bias, 0, memory_order_release);
	atomic_store_explicit(&l->revoking, 0, memory_order_release);
	hd_futex_wake(&l->revoking, INT32_MAX);
}

void hd_lock_slow(struct hd_lock *l)
{
	uintptr_t self = hd_self();

	if (atomic_load_explicit(&l->owner, memory_order_relaxed) == self) {
		l->count++;
		return;
	}
	/* Recursion of the biased owner. */
	if (atomic_load_explicit(&l->bias, memory_order_relaxed) == self &&
	    atomic_load_explicit(&l->depth, memory_order_relaxed)) {
		atomic_store_explicit(&l->depth, atomic_load_explicit(
			&l->depth, memory_order_relaxed) + 1,
			memory_order_relaxed);
		return;
	}
	/* The biased owner backed off a revocation: let it finish. */
	while (atomic_load_explicit(&l->bias, memory_order_acquire) == self &&
	       atomic_load_explicit(&l->revoking, memory_order_acquire))
		hd_futex_wait(&l->revoking, 1, l);
	hd_word_lock(l);
	if (atomic_load_explicit(&l->bias, memory_order_acquire))
		hd_revoke(l);
	atomic_store_explicit(&l->owner, self, memory_order_relaxed);
	l->count = 1;
}

void hd_unlock_slow(struct hd_lock *l)
{
	if (--l->count)
		return;
	atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
	hd_word_unlock(l);
}

/* Whether the calling thread holds @l. */
bool hd_lock_held(struct hd_lock *l)
{
	uintptr_t self = hd_self();

	if (atomic_load_explicit(&l->bias, memory_order_relaxed) == self)
		return atomic_load_explicit(&l->depth, memory_order_relaxed);
	return atomic_load_explicit(&l->owner, memory_order_relaxed) == self;
}

/*
 * One round of waiting for a lock held for a few instructions (or, rarely,
 * for a whole walk): spin a little, then yield, then sleep in short steps,
 * so that a waiter of higher real-time priority cannot starve a preempted
 * holder.
 */
void hd_backoff(unsigned int *tries)
{
	const struct timespec step = { 0, 50 * 1000 };

	++*tries;
	if (*tries < 128)
		__builtin_ia32_pause();
	else if (*tries < 160)
		sched_yield();
	else
		nanosleep(&step, NULL);
}

/*
 * Whether some thread holds @l right now: a hint (nothing stops it from
 * changing the moment after).
 */
bool hd_lock_busy(struct hd_lock *l)
{
	if (atomic_load_explicit(&l->bias, memory_order_relaxed))
		return atomic_load_explicit(&l->depth, memory_order_relaxed);
	return atomic_load_explicit(&l->word, memory_order_relaxed);
}

/*
 * Take @l at once or not at all: held by no one (and unbiased, or biased
 * to this thread and free).  Return: whether it was taken.
 */
bool hd_lock_try(struct hd_lock *l)
{
	uint32_t z = 0;

	uintptr_t bias = atomic_load_explicit(&l->bias, memory_order_relaxed);

	if (bias == hd_self()) {
		if (hd_lock_fast(l))
			return true;
		if (!atomic_load_explicit(&l->depth, memory_order_relaxed))
			return false;	/* being revoked */
		atomic_store_explicit(&l->depth, atomic_load_explicit(
			&l->depth, memory_order_relaxed) + 1,
			memory_order_relaxed);
		return true;
	}
	if (bias)
		return false;
	if (atomic_load_explicit(&l->owner, memory_order_relaxed) == hd_self()) {
		l->count++;
		return true;
	}
	if (!atomic_compare_exchange_strong_explicit(&l->word, &z, 1,
						     memory_order_acquire,
						     memory_order_relaxed))
		return false;
	atomic_store_explicit(&l->owner, hd_self(), memory_order_relaxed);
	l->count = 1;
	return true;
}

/* Give up every hold the calling thread has on @l (HeapDestroy). */
void hd_lock_drop(struct hd_lock *l)
{
	uintptr_t self = hd_self();

	if (atomic_load_explicit(&l->bias, memory_order_relaxed) == self) {
		atomic_store_explicit(&l->depth, 0, memory_order_release);
		return;
	}
	if (atomic_load_explicit(&l->owner, memory_order_relaxed) != self)
		return;
	l->count = 1;
	hd_unlock_slow(l);
}
