// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: threads, the call protocol's waits (HeapDestroy, pauses, grace
 * periods) and the per-thread cache of heaps (see heap.h).
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "heap.h"

__thread struct hd_tls hd_tls __attribute__((tls_model("initial-exec"))) = {
	.hc = { [0 ... HD_TCACHE - 1] = { 0, &hd_null_ctx } },
	.state = HD_ST_IDLE,
	.tix = HD_NTCTX,
};

/*
 * Threads that have called the library, for the waits to look at.  A
 * record lives from a thread's first call to its exit.
 */
struct hd_thr {
	struct hd_tls *tls;
	_Atomic(struct hd_lock *) *waiting;
	struct hd_thr *next, *prev;
};

/*
 * Writers: threads joining and leaving; readers: the waits, which never
 * block one another (a pause may start while a destroy waits) and keep
 * the threads they look at from exiting.
 */
static pthread_rwlock_t hd_thr_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct hd_thr *hd_thr_head;
static unsigned int hd_nthr;
static uint64_t hd_tix_used;		/* thread indices in use */
static pthread_once_t hd_thr_once = PTHREAD_ONCE_INIT;
static pthread_key_t hd_thr_key;

/*
 * Locks no heap has: hd_waiting of a thread inside a wait of its own, a
 * destroy's (it touches its heap again only once every call on it has
 * ended), or a pause's or grace period's (which go on working on their
 * heap afterwards: a destroy of that heap waits for them).
 */
static struct hd_lock hd_q_destroy, hd_q_other;

static void hd_tcache_reset(void)
{
	unsigned int i;

	for (i = 0; i < HD_TCACHE; i++) {
		hd_tls.hc[i].handle = 0;
		hd_tls.hc[i].ctx = &hd_null_ctx;
	}
}

/*
 * A thread exits: its contexts' runs go to their classes (each as a call
 * on its heap, so that a HeapDestroy of the heap waits for it, and after
 * any pause of the heap), then the thread leaves the registry.
 */
static void hd_thread_exit(void *arg)
{
	struct hd_thr *t = arg;
	struct hd_ctx *ctx, *next;

	for (ctx = hd_tls.ctxs; ctx; ctx = next) {
		struct hd_heap *h = ctx->heap;

		next = ctx->tnext;
		hd_enter_fast();
		if (!atomic_load_explicit(&ctx->dead, memory_order_acquire)) {
			hd_use(h);
			if (atomic_load_explicit(&h->paused,
						 memory_order_acquire))
				hd_pause_wait(h);
			hd_ctx_abandon(ctx);
		}
		hd_leave();
		hd_ctx_release(ctx);
	}
	hd_tls.ctxs = NULL;
	pthread_rwlock_wrlock(&hd_thr_lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		hd_thr_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	hd_nthr--;
	if (hd_tls.tix < HD_NTCTX)
		hd_tix_used &= ~(1ULL << hd_tls.tix);
	pthread_rwlock_unlock(&hd_thr_lock);
	hd_meta_free(t, sizeof(*t));
	/*
	 * A call from a later destructor registers the thread again: it
	 * must miss the per-thread cache, which would skip that.
	 */
	hd_tls.reg = false;
	hd_tls.tix = HD_NTCTX;
	hd_tcache_reset();
}

static void hd_thr_key_init(void)
{
	pthread_key_create(&hd_thr_key, hd_thread_exit);
}

/*
 * The first call of a thread (before the call looks at any heap): add it
 * to the threads the waits look at, and give it an index (its context on
 * each heap).  Without memory for the record the thread stays
 * unregistered, and HeapDestroy cannot know of its calls.
 */
void hd_thread_register(void)
{
	struct hd_thr *t = hd_meta_alloc(sizeof(*t));

	if (!t)
		return;
	pthread_once(&hd_thr_once, hd_thr_key_init);
	t->tls = &hd_tls;
	t->waiting = &hd_waiting;
	pthread_rwlock_wrlock(&hd_thr_lock);
	t->next = hd_thr_head;
	if (hd_thr_head)
		hd_thr_head->prev = t;
	hd_thr_head = t;
	hd_nthr++;
	if (~hd_tix_used) {
		hd_tls.tix = (uint32_t)__builtin_ctzll(~hd_tix_used);
		hd_tix_used |= 1ULL << hd_tls.tix;
	} else {
		hd_tls.tix = HD_NTCTX;
	}
	pthread_rwlock_unlock(&hd_thr_lock);
	/*
	 * Registered before pthread_setspecific(), which may allocate: when
	 * heapdev is the process's malloc that allocation comes back here.
	 */
	hd_tls.reg = true;
	pthread_setspecific(hd_thr_key, t);
}

/*
 * The fork child has one thread: keep its record only, and its contexts
 * on the heaps the child keeps (@kept).
 */
void hd_thread_atfork_child(bool (*kept)(const struct hd_heap *h))
{
	struct hd_thr *t, *next, *self = NULL;
	struct hd_ctx *ctx, **pp;

	pthread_rwlock_init(&hd_thr_lock, NULL);
	for (t = hd_thr_head; t; t = next) {
		next = t->next;
		if (t->tls == &hd_tls)
			self = t;
		else
			hd_meta_free(t, sizeof(*t));
	}
	hd_thr_head = self;
	hd_nthr = !!self;
	hd_tix_used = self && hd_tls.tix < HD_NTCTX ? 1ULL << hd_tls.tix : 0;
	if (self)
		self->next = self->prev = NULL;
	/* The contexts on forgotten heaps are forgotten too. */
	for (pp = &hd_tls.ctxs; (ctx = *pp);) {
		if (!atomic_load_explicit(&ctx->dead, memory_order_relaxed) &&
		    kept(ctx->heap)) {
			pp = &ctx->tnext;
			continue;
		}
		*pp = ctx->tnext;
		hd_ctx_release(ctx);
	}
	hd_tcache_reset();
	atomic_store_explicit(&hd_tls.state, HD_ST_IDLE, memory_order_relaxed);
}

/* ---- waits ---- */

enum hd_wait_mode { HD_W_DESTROY, HD_W_PAUSE, HD_W_GRACE };

static void hd_wait_step(unsigned int *spins)
{
	struct timespec ts = { 0, 50 * 1000 };

	/* Most calls last well under a microsecond. */
	if (++*spins < 1000)
		__builtin_ia32_pause();
	else if (*spins < 1100)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/*
 * Wait until thread @t has left the call it is in, as far as @mode needs:
 *
 *   destroy  calls on @h or on a heap not known yet; threads asleep on
 *            another heap's lock are working on that heap;
 *   pause    the same, and threads asleep on @h's locks (the pausing
 *            thread holds them) are not waited for either;
 *   grace    every call: the thread's state must change once.
 *
 * Threads inside a destroy's wait are never waited for, threads inside a
 * pause's or a grace period's only by a destroy.  The waiter
 * marks the state it saw (HD_ST_MARK); the owner's next store (naming its
 * heap, leaving, entering another call) clears the mark.  A call enters
 * only once and names its heap only after seeing it live, so an unmarked
 * "unknown heap" after a marked one is a new call, which cannot find @h.
 */
static void hd_wait_thread(const struct hd_heap *h, struct hd_thr *t,
			   enum hd_wait_mode mode)
{
	uintptr_t v = atomic_load_explicit(&t->tls->state,
					   memory_order_seq_cst);
	unsigned int spins = 0;
	bool marked_any = false;

	for (;;) {
		uintptr_t heap = v & ~(HD_ST_CALL | HD_ST_MARK);
		struct hd_lock *w = atomic_load_explicit(t->waiting,
							 memory_order_acquire);

		if ((v & ~HD_ST_MARK) == HD_ST_IDLE || w == &hd_q_destroy ||
		    (w == &hd_q_other && mode != HD_W_DESTROY))
			return;
		if (w == &hd_q_other)
			w = NULL;	/* a destroy waits for it like a call */
		if (mode == HD_W_GRACE) {
			if (marked_any && !(v & HD_ST_MARK))
				return;
			if (w)
				return;
		} else {
			if (heap && heap != (uintptr_t)h)
				return;
			if (w && (mode == HD_W_PAUSE ||
				  (w != &h->core.lock && w != &h->s.lock &&
				   w != &h->core.mlock)))
				return;
			if (!heap && !(v & HD_ST_MARK) && marked_any)
				return;
		}
		if (!(v & HD_ST_MARK)) {
			if (atomic_compare_exchange_strong(&t->tls->state, &v,
							   v | HD_ST_MARK)) {
				marked_any = mode == HD_W_GRACE || !heap;
				v |= HD_ST_MARK;
			}
			continue;
		}
		hd_wait_step(&spins);
		v = atomic_load_explicit(&t->tls->state, memory_order_seq_cst);
	}
}

/* Wait for every other registered thread as @mode says (see above). */
static void hd_wait_all(const struct hd_heap *h, enum hd_wait_mode mode)
{
	struct hd_lock *prev = atomic_load_explicit(&hd_waiting,
						    memory_order_relaxed);
	struct hd_thr *t;

	/* release: see hd_futex_wait_ts() */
	atomic_store_explicit(&hd_waiting, mode == HD_W_DESTROY ?
			      &hd_q_destroy : &hd_q_other,
			      memory_order_release);
	pthread_rwlock_rdlock(&hd_thr_lock);
	if (hd_nthr > 1) {
		hd_heavy_barrier();
		for (t = hd_thr_head; t; t = t->next)
			if (t->tls != &hd_tls)
				hd_wait_thread(h, t, mode);
	}
	pthread_rwlock_unlock(&hd_thr_lock);
	atomic_store_explicit(&hd_waiting, prev, memory_order_relaxed);
}

/**
 * hd_quiesce() - wait for the calls that may still use a claimed heap
 * @h: a heap whose @live, contexts and granule handles were cleared
 *
 * Every thread's hd_enter() stores "in a call, heap unknown" before it
 * looks at a heap or the page map, and a call names its heap (hd_use())
 * only after it saw that heap live; the barrier orders those stores
 * against the claim.  So a thread either was inside a call that may work
 * on @h when the claim happened, and is waited for here until it leaves
 * that call, or it sees the claim and fails.  What a failing call may
 * still read (the page map, span, heap and context structs) is never
 * freed.  Without other threads, nothing to do.
 */
void hd_quiesce(const struct hd_heap *h)
{
	hd_wait_all(h, HD_W_DESTROY);
}

/**
 * hd_pause() - hold heap @h still: no other thread uses it until
 * hd_unpause()
 * @h: the heap, whose heap, LFH and allocator locks the caller holds
 * @flags: effective flags; HEAP_NO_SERIALIZE means the caller already
 *	has the heap to itself
 *
 * Calls that start meanwhile fail their fast paths (the contexts' @live
 * and the segments' granule handles are 0) and wait in hd_heap_get();
 * calls in progress are waited for.
 */
void hd_pause(struct hd_heap *h, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE)) {
		atomic_store_explicit(&h->paused, 1, memory_order_relaxed);
		hd_ctx_set_live(&h->s, 0);
		hd_segs_set_handle(&h->m, 0);
		hd_wait_all(h, HD_W_PAUSE);
	}
	/* What every thread freed is on the runs' lists from now on. */
	hd_ctx_xflush_all(&h->s);
}

void hd_unpause(struct hd_heap *h, uint32_t flags)
{
	if (flags & HEAPDEV_NO_SERIALIZE)
		return;
	/* A HeapDestroy that claimed the heap meanwhile keeps them out. */
	if (!h->s.dying) {
		hd_segs_set_handle(&h->m, h->core.handle);
		hd_ctx_set_live(&h->s, h->core.handle);
	}
	atomic_store_explicit(&h->paused, 0, memory_order_release);
	hd_futex_wake(&h->paused, INT32_MAX);
}

/*
 * A call that found @h paused (its own call on @h is named): sleep until
 * the pause ends, as a waiter of @h's LFH lock, which the pausing thread
 * holds and does not wait for.  It reads nothing of @h until it has seen
 * the heap live again.
 */
void hd_pause_wait(struct hd_heap *h)
{
	while (atomic_load_explicit(&h->paused, memory_order_acquire))
		hd_futex_wait(&h->paused, 1, &h->s.lock);
}

/*
 * Released run descriptors of @h are in limbo: once every call that was
 * in progress has ended, none can still read them, and they are reused.
 * Called at the end of a call's work, with no lock held.
 */
void hd_grace(struct hd_heap *h, uint32_t flags)
{
	struct hd_run *list;

	hd_lock_if(&h->core.mlock, flags);
	list = hd_small_limbo_take(&h->s);
	hd_unlock_if(&h->core.mlock, flags);
	if (!list)
		return;
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_wait_all(h, HD_W_GRACE);
	hd_lock_if(&h->core.mlock, flags);
	hd_small_limbo_free(&h->s, list);
	hd_unlock_if(&h->core.mlock, flags);
}

/* ---- the per-thread cache ---- */

/*
 * The calling thread's context on @h (and the cache entry for it), or
 * NULL: the thread uses the shared context, under the LFH lock.
 */
struct hd_ctx *hd_my_ctx(struct hd_heap *h)
{
	uintptr_t hh = h->core.handle;
	struct hd_ctx *ctx = hd_tcache(hh)->ctx;

	if (hd_tcache(hh)->handle == hh &&
	    atomic_load_explicit(&ctx->live, memory_order_acquire) == hh)
		return ctx;
	ctx = hd_ctx_get(&h->s, h, hd_tls.tix, &hd_tls.ctxs);
	if (ctx && atomic_load_explicit(&ctx->live, memory_order_acquire) ==
	    hh) {
		hd_tcache(hh)->handle = hh;
		hd_tcache(hh)->ctx = ctx;
	}
	return ctx;
}

/*
 * The live heap whose handle is @hh (page map lookup), or NULL.  A heap
 * held by a pause is waited for.  The thread's context on it goes into
 * the per-thread cache.
 */
struct hd_heap *hd_heap_get_slow(const void *hh)
{
	for (;;) {
		struct hd_span *sp = hd_gran_span(hd_gran_of((uintptr_t)hh));
		struct hd_heap *h;

		if (!sp || sp->base != (uintptr_t)hh || !sp->heap ||
		    hd_live(sp->heap) != (uintptr_t)hh)
			return NULL;
		h = sp->heap;
		hd_use(h);
		if (unlikely(atomic_load_explicit(&h->paused,
						  memory_order_acquire))) {
			hd_pause_wait(h);
			continue;
		}
		hd_my_ctx(h);
		return h;
	}
}
