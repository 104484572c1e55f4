// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: heap objects: creation, destruction, the registry of heaps, the
 * process heap and what a fork child keeps.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "heap.h"

static pthread_mutex_t hd_reg_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t hd_proc_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_heap *hd_reg_head, *hd_reg_tail;
static size_t hd_reg_count;
static _Atomic(struct hd_heap *) hd_proc;
static pthread_once_t hd_init_once = PTHREAD_ONCE_INIT;
static struct hd_heap *hd_heap_pool;	/* recycled heap structs */
/* Heaps between the claim of HeapDestroy and their release (hd_reg_mutex). */
static struct hd_heap *hd_dying_head;
static uint64_t hd_seed;
static _Atomic uint64_t hd_seed_ctr;

/* Warm heaps (below). */
#define HD_WARM_MAX	2
#define HD_WARM_BYTES	(512UL << 10)
#define HD_WARM_AGE_NS	(100ULL * 1000 * 1000)

struct hd_warm {
	struct hd_bheap bh;
	uintptr_t base;
	size_t size;
	size_t committed;
	uint64_t since;
};

static pthread_mutex_t hd_warm_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_warm hd_warm[HD_WARM_MAX];	/* oldest first */
static unsigned int hd_nwarm;

/* ---- fork ---- */

/*
 * The inheritable heaps (created with HEAPDEV_INHERIT: the process heap
 * and the drop-in malloc's heaps) held still across a fork(): from the
 * prepare handler to the parent's or child's, their heap, LFH and
 * allocator locks are held and other threads' calls are paused, so that
 * the child's copy of each is consistent.  The handles are taken from the
 * registry first and each heap is then looked up and locked in a call of
 * its own, as HeapLock does: a heap destroyed meanwhile is skipped, and
 * the registry's mutex is never held while a heap lock is awaited (a
 * thread holding HeapLock may create or destroy heaps).
 */
static uintptr_t *hd_fork_hh;		/* handles, then held heaps */
static struct hd_heap **hd_fork_set;
static struct hd_bheap **hd_fork_bhs;
static size_t hd_fork_n, hd_fork_cap;

static bool hd_fork_room(size_t n)
{
	size_t cap = hd_fork_cap;
	void *a, *b, *c;

	if (n <= cap)
		return true;
	while (cap < n)
		cap = cap ? 2 * cap : 16;
	/* All three or none: each array's size is hd_fork_cap's. */
	a = hd_meta_alloc(cap * sizeof(*hd_fork_hh));
	b = hd_meta_alloc(cap * sizeof(*hd_fork_set));
	c = hd_meta_alloc(cap * sizeof(*hd_fork_bhs));
	if (!a || !b || !c) {
		if (a)
			hd_meta_free(a, cap * sizeof(*hd_fork_hh));
		if (b)
			hd_meta_free(b, cap * sizeof(*hd_fork_set));
		if (c)
			hd_meta_free(c, cap * sizeof(*hd_fork_bhs));
		return false;
	}
	if (hd_fork_cap) {
		hd_meta_free(hd_fork_hh, hd_fork_cap * sizeof(*hd_fork_hh));
		hd_meta_free(hd_fork_set, hd_fork_cap * sizeof(*hd_fork_set));
		hd_meta_free(hd_fork_bhs, hd_fork_cap * sizeof(*hd_fork_bhs));
	}
	hd_fork_hh = a;
	hd_fork_set = b;
	hd_fork_bhs = c;
	hd_fork_cap = cap;
	return true;
}

/* Take the handles of the inheritable heaps; Return: how many. */
static size_t hd_fork_collect(void)
{
	struct hd_heap *h;
	size_t n;

	for (;;) {
		pthread_mutex_lock(&hd_reg_mutex);
		n = 0;
		for (h = hd_reg_head; h; h = h->rnext)
			n += h->core.bh.inherit;
		if (n <= hd_fork_cap) {
			n = 0;
			for (h = hd_reg_head; h; h = h->rnext)
				if (h->core.bh.inherit)
					hd_fork_hh[n++] = h->core.handle;
			pthread_mutex_unlock(&hd_reg_mutex);
			return n;
		}
		pthread_mutex_unlock(&hd_reg_mutex);
		/* Without memory the child keeps no heap. */
		if (!hd_fork_room(n))
			return 0;
	}
}

/* Hold heap @hh still (a call on it, as HeapLock and HeapWalk take it). */
static struct hd_heap *hd_fork_hold(uintptr_t hh)
{
	struct hd_heap *h;
	uint32_t flags;

	hd_enter();
	h = hd_heap_get((const void *)hh);
	if (h) {
		flags = h->core.flags;
		hd_lock_if(&h->core.lock, flags);
		hd_lock_if(&h->s.lock, flags);
		hd_lock_if(&h->core.mlock, flags);
		hd_pause(h, flags);
	}
	hd_leave();
	return h;
}

static void hd_fork_release(struct hd_heap *h)
{
	uint32_t flags = h->core.flags;

	hd_unpause(h, flags);
	hd_unlock_if(&h->core.mlock, flags);
	hd_unlock_if(&h->s.lock, flags);
	hd_unlock_if(&h->core.lock, flags);
}

/* heapdev_atfork(): handlers that run around these. */
#define HD_FORK_HOOKS	4
static struct {
	void (*prepare)(void), (*parent)(void), (*child)(void);
} hd_fork_hooks[HD_FORK_HOOKS];
static _Atomic unsigned int hd_nfork_hooks;

static void hd_atfork_prepare(void)
{
	size_t i, n;

	for (i = atomic_load(&hd_nfork_hooks); i-- > 0;)
		if (hd_fork_hooks[i].prepare)
			hd_fork_hooks[i].prepare();
	n = hd_fork_collect();

	hd_fork_n = 0;
	for (i = 0; i < n; i++) {
		struct hd_heap *h = hd_fork_hold(hd_fork_hh[i]);

		if (h) {
			hd_fork_bhs[hd_fork_n] = &h->core.bh;
			hd_fork_set[hd_fork_n++] = h;
		}
	}
	hd_backend_fork_prepare(hd_fork_bhs, hd_fork_n);
	pthread_mutex_lock(&hd_proc_mutex);
	pthread_mutex_lock(&hd_reg_mutex);
	hd_meta_atfork_prepare();
	hd_backend_fork_lock();
}

static void hd_atfork_parent(void)
{
	size_t i;

	hd_meta_atfork_parent();
	pthread_mutex_unlock(&hd_reg_mutex);
	pthread_mutex_unlock(&hd_proc_mutex);
	hd_backend_fork_parent();
	for (i = hd_fork_n; i-- > 0;)
		hd_fork_release(hd_fork_set[i]);
	hd_fork_n = 0;
	for (i = 0; i < atomic_load(&hd_nfork_hooks); i++)
		if (hd_fork_hooks[i].parent)
			hd_fork_hooks[i].parent();
}

static void hd_heap_free_meta(struct hd_heap *h);
static void hd_heap_struct_put_locked(struct hd_heap *h);
static void hd_registry_del_locked(struct hd_heap *h);

/* In the child: whether heap @h is one it kept. */
static bool hd_fork_kept(const struct hd_heap *h)
{
	size_t i;

	for (i = 0; i < hd_fork_n; i++)
		if (hd_fork_set[i] == h)
			return true;
	return false;
}

/*
 * A kept heap in the child: released from the fork's hold, and the
 * contexts of the threads that did not come along given up, as at their
 * exit (their runs go to their classes for the child's threads to adopt).
 */
static void hd_fork_adopt(struct hd_heap *h)
{
	struct hd_ctx *ctx;

	hd_fork_release(h);
	for (;;) {
		for (ctx = h->s.ctxs; ctx; ctx = ctx->hnext)
			if (ctx != &h->s.ctx0 && ctx->owner != hd_self())
				break;
		if (!ctx)
			break;
		/* No registration: it could allocate, in a fork handler. */
		hd_enter_fast();
		hd_use(h);
		hd_ctx_abandon(ctx);
		hd_leave();
		hd_ctx_release(ctx);
	}
}

/*
 * The child keeps the inheritable heaps whose memory it got (the module's
 * copy, or the copy of the memfd the prepare handler made) and forgets
 * every other heap (device mappings are VM_DONTCOPY, memfd mappings
 * MADV_DONTFORK).
 */
static void hd_atfork_child(void)
{
	struct hd_heap *h, *next, *proc;
	struct hd_span *sp;
	size_t i, kept = 0;

	hd_meta_atfork_child();
	hd_page_atfork_child();
	hd_ctx_atfork_child();
	/* Taken by this thread in the prepare handler. */
	pthread_mutex_unlock(&hd_reg_mutex);
	pthread_mutex_unlock(&hd_proc_mutex);
	/* A heap claimed by a destroy in another thread is not kept. */
	for (i = 0; i < hd_fork_n; i++) {
		h = hd_fork_set[i];
		if (hd_live(h) == h->core.handle &&
		    hd_backend_fork_keep(&h->core.bh))
			hd_fork_set[kept++] = h;
	}
	hd_fork_n = kept;
	hd_thread_atfork_child(hd_fork_kept);
	for (i = 0; i < hd_fork_n; i++)
		hd_fork_adopt(hd_fork_set[i]);
	/*
	 * A destroy was in progress in another thread: its heaps are left
	 * alone (that thread is not here to finish, and they may be half
	 * torn down).  Their spans may still be in the page map: the spans
	 * stay allocated in the child, and their heap is not live.
	 */
	hd_dying_head = NULL;
	proc = atomic_load(&hd_proc);
	for (h = hd_reg_head; h; h = next) {
		next = h->rnext;
		if (hd_fork_kept(h))
			continue;
		hd_registry_del_locked(h);
		/*
		 * An inheritable heap whose copy the child did not get: the
		 * module copied its mappings (which fault), so unmap them, as
		 * if they had not been inherited.
		 */
		if (h->core.bh.inherit) {
			hd_segs_unmap(&h->m);
		} else {
			for (sp = h->m.segs; sp; sp = sp->next)
				hd_span_unregister(sp);
		}
		hd_larges_free_all(&h->l, h->core.bh.inherit);
		hd_heap_free_meta(h);
		hd_heap_struct_put_locked(h);
	}
	if (proc && !hd_fork_kept(proc))
		atomic_store(&hd_proc, NULL);
	hd_fork_n = 0;
	/* Warm heaps' mappings are not inherited (MADV_DONTFORK). */
	pthread_mutex_init(&hd_warm_mutex, NULL);
	hd_nwarm = 0;
	hd_backend_atfork_child();
	for (i = 0; i < atomic_load(&hd_nfork_hooks); i++)
		if (hd_fork_hooks[i].child)
			hd_fork_hooks[i].child();
}

static void hd_global_init(void)
{
	if (getrandom(&hd_seed, sizeof(hd_seed), GRND_NONBLOCK) !=
	    sizeof(hd_seed)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		hd_seed = (uint64_t)ts.tv_nsec * HD_KEYMUL ^
			  (uint64_t)(uintptr_t)&ts ^ (uint64_t)getpid() << 32;
	}
}

/*
 * The fork handlers are registered when the library is loaded, not when
 * the first heap is created: glibc's pthread_atfork() allocates, and when
 * heapdev is the process's malloc (libheapdev-malloc) that allocation
 * would re-enter heap creation.
 */
static pthread_once_t hd_atfork_once = PTHREAD_ONCE_INIT;
static int hd_atfork_err;

static void hd_atfork_register(void)
{
	hd_atfork_err = -pthread_atfork(hd_atfork_prepare, hd_atfork_parent,
					hd_atfork_child);
}

static void __attribute__((constructor)) hd_register_atfork(void)
{
	pthread_once(&hd_atfork_once, hd_atfork_register);
}

int heapdev_atfork(void (*prepare)(void), void (*parent)(void),
		   void (*child)(void))
{
	static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
	unsigned int n;

	/* Before the constructor, when malloc() is called that early. */
	pthread_once(&hd_atfork_once, hd_atfork_register);
	if (hd_atfork_err)
		return hd_atfork_err;
	pthread_mutex_lock(&mutex);
	n = atomic_load(&hd_nfork_hooks);
	if (n < HD_FORK_HOOKS) {
		hd_fork_hooks[n].prepare = prepare;
		hd_fork_hooks[n].parent = parent;
		hd_fork_hooks[n].child = child;
		atomic_store(&hd_nfork_hooks, n + 1);
	}
	pthread_mutex_unlock(&mutex);
	return n < HD_FORK_HOOKS ? 0 : -ENOSPC;
}

/* splitmix64 over a process-wide random seed. */
static uint64_t hd_random(void)
{
	uint64_t z = hd_seed + atomic_fetch_add(&hd_seed_ctr, 1) *
		     0x9E3779B97F4A7C15ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return (z ^ (z >> 31)) | 1;
}

/* ---- the registry ---- */

void hd_registry_unlock(void)
{
	pthread_mutex_unlock(&hd_reg_mutex);
}

static void hd_registry_add(struct hd_heap *h, bool front)
{
	pthread_mutex_lock(&hd_reg_mutex);
	if (front) {
		h->rnext = hd_reg_head;
		if (hd_reg_head)
			hd_reg_head->rprev = h;
		else
			hd_reg_tail = h;
		hd_reg_head = h;
	} else {
		h->rprev = hd_reg_tail;
		if (hd_reg_tail)
			hd_reg_tail->rnext = h;
		else
			hd_reg_head = h;
		hd_reg_tail = h;
	}
	hd_reg_count++;
	pthread_mutex_unlock(&hd_reg_mutex);
}

/* hd_reg_mutex held (or in the single-threaded fork child). */
static void hd_registry_del_locked(struct hd_heap *h)
{
	if (h->rprev)
		h->rprev->rnext = h->rnext;
	else
		hd_reg_head = h->rnext;
	if (h->rnext)
		h->rnext->rprev = h->rprev;
	else
		hd_reg_tail = h->rprev;
	h->rnext = h->rprev = NULL;
	hd_reg_count--;
}

static void hd_registry_del(struct hd_heap *h)
{
	pthread_mutex_lock(&hd_reg_mutex);
	hd_registry_del_locked(h);
	pthread_mutex_unlock(&hd_reg_mutex);
}

/* Copy up to @cap live heaps into @out; return how many there are. */
size_t hd_heap_refs(struct hd_heap_ref *out, size_t cap)
{
	struct hd_heap *h;
	size_t n = 0, count;

	pthread_mutex_lock(&hd_reg_mutex);
	count = hd_reg_count;
	if (count <= cap)
		for (h = hd_reg_head; h; h = h->rnext) {
			out[n].heap = h;
			out[n++].handle = h->core.handle;
		}
	pthread_mutex_unlock(&hd_reg_mutex);
	return count;
}

/* Copy the handles of the live heaps (process heap first) when they fit. */
size_t hd_heap_handles(void **out, size_t cap)
{
	struct hd_heap *h;
	size_t n = 0, count;

	pthread_mutex_lock(&hd_reg_mutex);
	count = hd_reg_count;
	if (out && count <= cap)
		for (h = hd_reg_head; h; h = h->rnext)
			out[n++] = (void *)h->core.handle;
	pthread_mutex_unlock(&hd_reg_mutex);
	return count;
}

/* ---- heap structs ---- */

/* A zeroed heap struct, recycled when possible. */
static struct hd_heap *hd_heap_struct_get(void)
{
	struct hd_heap *h;

	pthread_mutex_lock(&hd_reg_mutex);
	h = hd_heap_pool;
	if (h)
		hd_heap_pool = h->rnext;
	pthread_mutex_unlock(&hd_reg_mutex);
	if (!h) {
		h = hd_meta_alloc(sizeof(*h));
		if (!h)
			return NULL;
		atomic_init(&h->live, 0);
	}
	/*
	 * Threads may still read @live, and the @live of the heap's own
	 * context, through their stale per-thread cache: both stay 0
	 * (atomic) until the heap is ready.
	 */
	memset((char *)h + sizeof(h->live), 0,
	       (char *)&h->s.ctx0.live - ((char *)h + sizeof(h->live)));
	memset((char *)(&h->s.ctx0.live + 1), 0,
	       (char *)(h + 1) - (char *)(&h->s.ctx0.live + 1));
	return h;
}

/* Called with hd_reg_mutex held (or in the single-threaded fork child). */
static void hd_heap_struct_put_locked(struct hd_heap *h)
{
	atomic_store_explicit(&h->live, 0, memory_order_release);
	h->rnext = hd_heap_pool;
	hd_heap_pool = h;
}

static void hd_heap_struct_put(struct hd_heap *h)
{
	pthread_mutex_lock(&hd_reg_mutex);
	hd_heap_struct_put_locked(h);
	pthread_mutex_unlock(&hd_reg_mutex);
}

static void hd_heap_free_meta(struct hd_heap *h)
{
	hd_segs_free(&h->m);
	hd_small_free_all(&h->s);
	hd_core_free(&h->core);
}

/* ---- warm heaps ---- */

/*
 * On a backend that can park pages (memfd), HeapDestroy of a small
 * growable heap keeps it *warm*: its window, the mapping of its only
 * segment and that segment's committed pages (a prefix of at most
 * HD_WARM_BYTES) stay as they are, made inaccessible (PROT_NONE) and out
 * of the page map, so that its handle, its pointers and any access to its
 * memory are refused or fault as after a real destroy.  The next
 * HeapCreate of a growable heap of the same backend, executability and
 * first-segment size takes it: no window to create, nothing to map and,
 * up to what the old heap had, nothing to commit; its segment is
 * initialised afresh (the pages keep the old heap's bytes, as reused
 * blocks do; HEAP_ZERO_MEMORY still zeroes).  At most HD_WARM_MAX heaps
 * are warm; one that has been for HD_WARM_AGE_NS is released (its pages
 * given back) by the next create or destroy, and heapdev_trim(NULL)
 * releases them all.  The device backend never keeps a heap warm: its
 * admin view and page counters show a destroyed heap gone when
 * HeapDestroy returns.
 */
/* Release @n warm heaps taken out of the cache (no lock held). */
static void hd_warm_free(struct hd_warm *w, unsigned int n)
{
	for (; n; n--, w++) {
		const struct hd_backend *be = w->bh.be;

		if (be->destroy_begin)
			be->destroy_begin(&w->bh);
		else
			be->destroy(&w->bh);
		be->unmap(&w->bh, w->base, w->size);
		if (be->destroy_begin)
			be->destroy(&w->bh);
	}
}

/* Take entry @i out of the cache (mutex held). */
static struct hd_warm hd_warm_del_locked(unsigned int i)
{
	struct hd_warm w = hd_warm[i];

	memmove(&hd_warm[i], &hd_warm[i + 1], (--hd_nwarm - i) * sizeof(w));
	return w;
}

/*
 * Take the warm heaps that are too old (all of them if @all) out of the
 * cache into @out (mutex held).  Return: how many.
 */
static unsigned int hd_warm_expire_locked(struct hd_warm *out, bool all)
{
	uint64_t now = hd_now();
	unsigned int n = 0;

	while (hd_nwarm && (all || now - hd_warm[0].since >= HD_WARM_AGE_NS))
		out[n++] = hd_warm_del_locked(0);
	return n;
}

/* Release the warm heaps that are too old (all of them if @all). */
void hd_warm_release(bool all)
{
	struct hd_warm old[HD_WARM_MAX];
	unsigned int n;

	pthread_mutex_lock(&hd_warm_mutex);
	n = hd_warm_expire_locked(old, all);
	pthread_mutex_unlock(&hd_warm_mutex);
	hd_warm_free(old, n);
}

/*
 * Take a warm heap for a new heap @c whose first segment has @size bytes,
 * accessible again.  Return: whether there was one (in @w).
 */
static bool hd_warm_take(struct hd_core *c, size_t size, struct hd_warm *w)
{
	struct hd_warm old[HD_WARM_MAX];
	unsigned int n, i;
	bool found = false;

	if (!c->bh.be->park)
		return false;
	pthread_mutex_lock(&hd_warm_mutex);
	n = hd_warm_expire_locked(old, false);
	for (i = hd_nwarm; i-- > 0;) {
		if (hd_warm[i].bh.be == c->bh.be &&
		    hd_warm[i].bh.exec == c->bh.exec &&
		    hd_warm[i].bh.inherit == c->bh.inherit &&
		    hd_warm[i].size == size) {
			*w = hd_warm_del_locked(i);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&hd_warm_mutex);
	hd_warm_free(old, n);
	if (found && w->bh.be->park(&w->bh, w->base, w->committed, true)) {
		hd_warm_free(w, 1);
		found = false;
	}
	return found;
}

/*
 * Keep heap @h (claimed, quiesced) warm instead of releasing it, if it is
 * small enough: one segment whose committed pages are a prefix, holding
 * every page the window has committed, and no large span.  Its segment is
 * taken out of the page map here; the caller frees the metadata.
 * Return: whether it is warm now.
 */
static bool hd_warm_park(struct hd_heap *h)
{
	struct hd_core *c = &h->core;
	struct hd_seg *s = (struct hd_seg *)h->m.segs;
	struct hd_warm w, old[HD_WARM_MAX + 1];
	unsigned int n;

	if (c->fixed || !c->bh.be->park || !s || s->sp.next || s->sp.woff ||
	    h->l.larges || h->l.lcache || s->committed > HD_WARM_BYTES ||
	    c->bh.committed != s->committed || !hd_seg_prefix_committed(s))
		return false;
	if (c->bh.be->park(&c->bh, s->sp.base, s->committed, false))
		return false;
	hd_span_unregister(&s->sp);
	w.bh = c->bh;
	w.base = s->sp.base;
	w.size = s->sp.size;
	w.committed = s->committed;
	w.since = hd_now();
	pthread_mutex_lock(&hd_warm_mutex);
	n = hd_warm_expire_locked(old, false);
	if (hd_nwarm == HD_WARM_MAX)
		old[n++] = hd_warm_del_locked(0);
	hd_warm[hd_nwarm++] = w;
	pthread_mutex_unlock(&hd_warm_mutex);
	hd_warm_free(old, n);
	return true;
}

/**
 * hd_heap_create() - create a heap
 * @flags: HEAPDEV_NO_SERIALIZE, HEAPDEV_EXEC and the Win32
 *	HEAP_GENERATE_EXCEPTIONS bit
 * @initial: bytes to commit now
 * @maximum: 0 (growable) or the fixed size
 * @backend: HEAPDEV_BACKEND_*
 * @out: the heap
 *
 * Return: 0 or a negative errno (see heapdev_create()).
 */
int hd_heap_create(uint32_t flags, uint64_t initial, uint64_t maximum,
		   int backend, struct hd_heap **out)
{
	const struct hd_backend *be;
	struct hd_warm warm;
	struct hd_heap *h;
	struct hd_core *c;
	size_t size, commit;
	int err;

	pthread_once(&hd_init_once, hd_global_init);
	if (initial > HD_WINDOW || maximum > HD_WINDOW)
		return -ENOMEM;
	err = hd_backend_select(backend, &be);
	if (err)
		return err;
	h = hd_heap_struct_get();
	if (!h)
		return -ENOMEM;
	c = &h->core;
	c->fixed = maximum != 0;
	__atomic_store_n(&c->lazy, !!(flags & HEAPDEV_LAZY_COMMIT),
			 __ATOMIC_RELAXED);
	c->bh.inherit = flags & HEAPDEV_INHERIT;
	flags &= ~(HEAPDEV_LAZY_COMMIT | HEAPDEV_INHERIT);
	c->flags = flags | (c->fixed ? HD_HF_FIXED : 0);
	c->secret = hd_random();
	c->lsecret = hd_random() & ~0xFULL;
	c->heap = h;
	hd_lock_init(&c->lock, !(flags & HEAPDEV_NO_SERIALIZE));
	hd_lock_init(&c->mlock, !(flags & HEAPDEV_NO_SERIALIZE));
	c->bh.be = be;
	c->bh.exec = flags & HEAPDEV_EXEC;
	h->m.c = c;
	h->m.next_seg = HD_SEG_FIRST;
	h->l.c = c;
	hd_small_init(&h->s, c, &h->m);

	if (c->fixed) {
		size = hd_round_page(maximum > initial ? maximum : initial);
		commit = hd_round_page(initial);
	} else {
		size = (initial + HD_SEG_HDR + HD_PAGE + HD_CHUNK - 1) &
		       ~(HD_CHUNK - 1);
		if (size < HD_SEG_FIRST)
			size = HD_SEG_FIRST;
		commit = hd_round_page(initial);
		err = hd_core_init(c, HD_WINDOW);
		if (err)
			goto err_free;
	}
	if (commit < 2 * HD_PAGE)
		commit = 2 * HD_PAGE;
	if (commit > size)
		commit = size;

	if (!c->fixed && hd_warm_take(c, size, &warm)) {
		struct hd_seg_warm sw = { warm.base, warm.committed };

		c->bh = warm.bh;
		if (!hd_seg_new(&h->m, size, commit, &sw, &err))
			goto err_destroy;
	} else {
		err = be->create(&c->bh, c->bh.exec, c->fixed ? size : 0);
		if (err)
			goto err_free;
		if (!hd_seg_new(&h->m, size, commit, NULL, &err))
			goto err_destroy;
	}
	hd_ctx_init0(&h->s, h);
	hd_registry_add(h, false);
	atomic_store_explicit(&h->live, c->handle, memory_order_release);
	*out = h;
	return 0;

err_destroy:
	be->destroy(&c->bh);
err_free:
	hd_core_free(c);
	hd_heap_struct_put(h);
	return err;
}

/* ---- destroying a heap that other threads may be using ---- */

static void hd_dying_add(struct hd_heap *h)
{
	pthread_mutex_lock(&hd_reg_mutex);
	h->dnext = hd_dying_head;
	hd_dying_head = h;
	pthread_mutex_unlock(&hd_reg_mutex);
}

/* Off the dying list and back to the pool, in one critical section. */
static void hd_dying_release(struct hd_heap *h)
{
	struct hd_heap **pp;

	pthread_mutex_lock(&hd_reg_mutex);
	for (pp = &hd_dying_head; *pp; pp = &(*pp)->dnext) {
		if (*pp == h) {
			*pp = h->dnext;
			break;
		}
	}
	hd_heap_struct_put_locked(h);
	pthread_mutex_unlock(&hd_reg_mutex);
}

/**
 * hd_heap_dying() - a heap that HeapDestroy has claimed but not released
 * @hh: its handle
 *
 * Only HeapUnlock looks there: a thread that holds HeapLock while another
 * destroys the heap must be able to release the lock that the destroy's
 * wait depends on.  Return: the heap, with hd_reg_mutex held (the caller
 * releases it with hd_registry_unlock()), or NULL (nothing held).
 */
struct hd_heap *hd_heap_dying(const void *hh)
{
	struct hd_heap *h;

	pthread_mutex_lock(&hd_reg_mutex);
	for (h = hd_dying_head; h; h = h->dnext)
		if (h->core.handle == (uintptr_t)hh)
			return h;
	pthread_mutex_unlock(&hd_reg_mutex);
	return NULL;
}

/**
 * hd_heap_destroy() - release a heap at once
 * @h: a heap that is not the process heap
 * @hh: the handle it was looked up with
 *
 * Claims the heap (lookups fail from then on; of two racing destroys one
 * gets -EBADF), makes its contexts and granules refuse calls, gives up the
 * caller's HeapLock holds, waits for the calls on the heap in progress in
 * other threads (hd_quiesce()), takes the spans out of the page map, lets
 * the backend free every page in one call and unmaps the spans.  No block
 * is visited.
 */
int hd_heap_destroy(struct hd_heap *h, uintptr_t hh)
{
	uintptr_t want = hh;
	uint32_t flags = h->core.flags;

	if (h->process_heap)
		return -EBUSY;
	if (!atomic_compare_exchange_strong(&h->live, &want, 0))
		return -EBADF;
	hd_dying_add(h);
	hd_registry_del(h);
	hd_lock_if(&h->s.lock, flags);
	hd_ctx_kill_all(&h->s);
	hd_segs_set_handle(&h->m, 0);
	hd_unlock_if(&h->s.lock, flags);
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_lock_drop(&h->core.lock);
	hd_quiesce(h);
	if (!hd_warm_park(h)) {
		const struct hd_backend *be = h->core.bh.be;

		/*
		 * One call releases every page: before the unmaps (device:
		 * they then find no page left to zap), or after them (memfd:
		 * the punch, which may run in the background, and the unmaps
		 * that wait for it).
		 */
		if (be->destroy_begin)
			be->destroy_begin(&h->core.bh);
		else
			be->destroy(&h->core.bh);
		hd_segs_unmap(&h->m);
		hd_larges_free_all(&h->l, true);
		if (be->destroy_begin)
			be->destroy(&h->core.bh);
	}
	hd_heap_free_meta(h);
	hd_dying_release(h);
	return 0;
}

/**
 * hd_process_heap() - the process heap, created on first use
 * @err: out: the creation error when NULL is returned
 */
struct hd_heap *hd_process_heap(int *err)
{
	struct hd_heap *h = atomic_load_explicit(&hd_proc,
						 memory_order_acquire);

	if (likely(h))
		return h;
	pthread_mutex_lock(&hd_proc_mutex);
	h = atomic_load_explicit(&hd_proc, memory_order_relaxed);
	if (!h) {
		/* A fork() child keeps it, as POSIX programs expect. */
		*err = hd_heap_create(HEAPDEV_INHERIT, 0, 0,
				      HEAPDEV_BACKEND_DEFAULT, &h);
		if (!*err) {
			h->process_heap = true;
			hd_registry_del(h);
			hd_registry_add(h, true);
			atomic_store_explicit(&hd_proc, h,
					      memory_order_release);
		} else {
			h = NULL;
		}
	}
	pthread_mutex_unlock(&hd_proc_mutex);
	return h;
}
