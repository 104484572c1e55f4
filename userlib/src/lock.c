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

#include "fast.h"
#include "internal.h"

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
 * Sleep while *@addr == @val, a waiter of lock @l: a HeapDestroy of
 * another heap does not wait for this thread meanwhile.
 *
 * A release store: hd_wait_thread() may return on seeing @l without
 * reading a newer @state (its last value may be its own mark, made while
 * this thread was still in a call on the heap being destroyed, which it
 * has left since), so everything this thread did before sleeping, that
 * call included, must happen before the destroy through this store and
 * the acquire load there.
 */
static void hd_futex_wait_on(struct hd_lock *l, _Atomic uint32_t *addr,
			     uint32_t val, const struct timespec *ts)
{
	atomic_store_explicit(&hd_tls.waiting, l, memory_order_release);
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, ts, NULL, 0);
	atomic_store_explicit(&hd_tls.waiting, NULL, memory_order_relaxed);
}

static void hd_futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
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

/* Drepper's futex mutex ("Futexes are tricky", mutex3). */
static void hd_word_lock(struct hd_lock *l)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong_explicit(&l->word, &c, 1,
						    memory_order_acquire,
						    memory_order_relaxed))
		return;
	if (c != 2)
		c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire);
	while (c) {
		hd_futex_wait_on(l, &l->word, 2, NULL);
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
		hd_futex_wait_on(l, &l->depth, d, &ts);
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
		hd_futex_wait_on(l, &l->revoking, 1, NULL);
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
 * Wait for an affinity slot's lock.  Holders keep it for a few
 * instructions, or for a whole-heap walk or validation: spin a little,
 * then yield, then sleep in short steps, so that a waiter of higher
 * real-time priority cannot starve a preempted holder.
 */
void hd_aff_lock_slow(struct hd_aff *a)
{
	const struct timespec step = { 0, 50 * 1000 };
	unsigned int tries = 0;

	do {
		while (atomic_load_explicit(&a->word, memory_order_relaxed)) {
			tries++;
			if (tries < 128)
				__builtin_ia32_pause();
			else if (tries < 160)
				sched_yield();
			else
				nanosleep(&step, NULL);
		}
	} while (atomic_exchange_explicit(&a->word, 1, memory_order_acquire));
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

/*
 * Tail end of the inline allocation path when a waiter must be woken: it
 * leaves the API call (see fast.h).
 */
void *hd_wake_ret(struct hd_lock *l, void *p, size_t n, uint32_t flags)
{
	hd_futex_wake(&l->word, 1);
	if (flags & HEAPDEV_ZERO)
		memset(p, 0, n);
	hd_leave();
	return p;
}
