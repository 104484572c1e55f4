// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: contexts, a thread's view of a heap's small blocks (small.h):
 * their life, the runs they give up (delayed lists, abandonment), frees
 * into runs that other contexts own (remote marks and chains), and the
 * operations on every run of a heap, which need it held still (a pause).
 *
 * A context struct lives as long as the process: a thread keeps the
 * contexts it made in a list of its own (so that a stale entry of its
 * per-thread cache can only ever name one of its own contexts), recycles
 * those whose heap was destroyed, and gives them all to a process-wide
 * pool when it exits.  The context of a HEAP_NO_SERIALIZE heap, and the
 * shared context of threads beyond HD_NTCTX, are part of the heap.
 */
#include <errno.h>
#include <pthread.h>

#include "small.h"

/* What per-thread caches name before they name a heap: never live. */
struct hd_ctx hd_null_ctx = { .live = 1 };

static pthread_mutex_t hd_ctx_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_ctx *hd_ctx_pool;	/* through @tnext */

static void hd_ctx_reset(struct hd_ctx *ctx, struct hd_sheap *s,
			 struct hd_heap *h, uintptr_t owner, uint32_t tix)
{
	unsigned int c;

	ctx->heap = h;
	ctx->s = s;
	ctx->owner = owner;
	for (c = 0; c < HD_NCLASS; c++) {
		ctx->cur[c] = HD_EMPTY_RUN;
		ctx->partial[c] = NULL;
	}
	ctx->full = NULL;
	atomic_store_explicit(&ctx->delayed, NULL, memory_order_relaxed);
	ctx->hnext = ctx->tnext = NULL;
	ctx->tix = tix;
	atomic_store_explicit(&ctx->dead, false, memory_order_relaxed);
	ctx->xrun = NULL;
	ctx->xn = 0;
	ctx->kept = 0;
	ctx->ticks = 0;
}

/*
 * Set up the heap's own context: the one of a HEAP_NO_SERIALIZE heap
 * (live from now on, owner 0: every free into its runs is local), or the
 * shared one of a serialized heap (never live, owner HD_OWNER_NONE,
 * except on a fixed heap, which has no runs).
 */
int hd_ctx_init0(struct hd_sheap *s, struct hd_heap *h)
{
	bool ns = s->c->flags & HEAPDEV_NO_SERIALIZE;

	hd_ctx_reset(&s->ctx0, s, h, ns ? 0 : HD_OWNER_NONE, HD_NTCTX);
	/* A fixed heap has no runs: any thread may cache its context. */
	atomic_store_explicit(&s->ctx0.live, ns || s->c->fixed ?
			      s->c->handle : 0, memory_order_release);
	s->ctxs = &s->ctx0;
	return 0;
}

/*
 * A context struct for the calling thread: one of its own whose heap was
 * destroyed, else one from the pool.  The thread gives none of its own
 * away before it exits: its per-thread cache may still name them, and a
 * struct that another thread made live under a heap whose handle an old
 * entry names would be handed out by that entry.
 */
static struct hd_ctx *hd_ctx_new(struct hd_ctx **tlist)
{
	struct hd_ctx **pp, *ctx;

	for (pp = tlist; *pp; pp = &(*pp)->tnext) {
		ctx = *pp;
		if (atomic_load_explicit(&ctx->dead, memory_order_acquire)) {
			*pp = ctx->tnext;
			return ctx;
		}
	}
	pthread_mutex_lock(&hd_ctx_mutex);
	ctx = hd_ctx_pool;
	if (ctx)
		hd_ctx_pool = ctx->tnext;
	pthread_mutex_unlock(&hd_ctx_mutex);
	return ctx ? ctx : hd_meta_alloc(sizeof(*ctx));
}

/**
 * hd_ctx_get() - the calling thread's context on a heap
 * @s: the heap's small blocks
 * @h: the heap
 * @tix: the thread's index
 * @tlist: the thread's list of contexts
 *
 * Return: the heap's own context on a HEAP_NO_SERIALIZE heap; the
 * thread's private context, made on first use; or NULL (no index of its
 * own, no memory, or the heap is being destroyed), when the caller uses
 * the shared context under the LFH lock.
 */
struct hd_ctx *hd_ctx_get(struct hd_sheap *s, struct hd_heap *h,
			  uint32_t tix, struct hd_ctx **tlist)
{
	struct hd_ctx *ctx;

	if ((s->c->flags & HEAPDEV_NO_SERIALIZE) || s->c->fixed)
		return &s->ctx0;
	if (tix >= HD_NTCTX)
		return NULL;
	ctx = atomic_load_explicit(&s->tctx[tix], memory_order_relaxed);
	if (ctx)
		return ctx;
	ctx = hd_ctx_new(tlist);
	if (!ctx)
		return NULL;
	hd_ctx_reset(ctx, s, h, hd_self(), tix);
	hd_lock(&s->lock);
	if (s->dying) {
		hd_unlock(&s->lock);
		/* back to the thread's list, for its next heap */
		atomic_store_explicit(&ctx->dead, true, memory_order_relaxed);
		ctx->tnext = *tlist;
		*tlist = ctx;
		return NULL;
	}
	atomic_store_explicit(&ctx->live, s->c->handle, memory_order_release);
	ctx->hnext = s->ctxs;
	s->ctxs = ctx;
	atomic_store_explicit(&s->tctx[tix], ctx, memory_order_relaxed);
	hd_unlock(&s->lock);
	ctx->tnext = *tlist;
	*tlist = ctx;
	return ctx;
}

/* Give a context that is in no heap to the process-wide pool. */
void hd_ctx_release(struct hd_ctx *ctx)
{
	atomic_store_explicit(&ctx->live, 0, memory_order_relaxed);
	pthread_mutex_lock(&hd_ctx_mutex);
	ctx->tnext = hd_ctx_pool;
	hd_ctx_pool = ctx;
	pthread_mutex_unlock(&hd_ctx_mutex);
}

/*
 * Let calls use the heap's contexts again (@live: the handle), or keep
 * them out (0) while a pause holds the heap (LFH lock held).  The shared
 * context of a serialized heap stays out.
 */
void hd_ctx_set_live(struct hd_sheap *s, uintptr_t live)
{
	struct hd_ctx *ctx;

	for (ctx = s->ctxs; ctx; ctx = ctx->hnext) {
		if (ctx == &s->ctx0 && ctx->owner && !s->c->fixed)
			continue;
		atomic_store_explicit(&ctx->live, live, memory_order_release);
	}
}

/*
 * HeapDestroy (LFH lock held): no context may be used or made any more;
 * their threads recycle the private ones.
 */
void hd_ctx_kill_all(struct hd_sheap *s)
{
	struct hd_ctx *ctx;

	s->dying = true;
	for (ctx = s->ctxs; ctx; ctx = ctx->hnext) {
		atomic_store_explicit(&ctx->live, 0, memory_order_release);
		atomic_store_explicit(&ctx->dead, true, memory_order_release);
	}
}

/*
 * Push every context's chain of remote frees (a pause: the threads are
 * out of their calls on the heap, or the caller has it to itself).
 */
void hd_ctx_xflush_all(struct hd_sheap *s)
{
	struct hd_ctx *ctx;

	for (ctx = s->ctxs; ctx; ctx = ctx->hnext)
		hd_ctx_xflush(ctx);
}

void hd_ctx_atfork_child(void)
{
	pthread_mutex_init(&hd_ctx_mutex, NULL);
}

/* ---- contexts: delayed runs, abandonment ---- */

/*
 * Take the full runs that remote frees made non-full back as partial
 * ones (their owner).  Entries for runs that are not @ctx's full runs any
 * more (the notice raced with the run's state) are dropped.  A run is on
 * at most one delayed list: @notified is set by the free that pushes it
 * and cleared only here, when it comes off.
 */
void hd_ctx_delayed(struct hd_ctx *ctx)
{
	struct hd_run *run = atomic_exchange_explicit(&ctx->delayed, NULL,
						      memory_order_acquire);
	struct hd_run *next;

	for (; run; run = next) {
		next = run->dnext;
		/* off the list: the next remote free may tell again */
		atomic_store_explicit(&run->notified, 0, memory_order_release);
		if (atomic_load_explicit(&run->ctx, memory_order_relaxed) !=
		    ctx || atomic_load_explicit(&run->state,
						memory_order_relaxed) !=
		    HD_RUN_FULL)
			continue;
		hd_list_del(&ctx->full, run);
		hd_small_collect(ctx->s, run);
		if (!run->used) {
			hd_run_empty(ctx->s, run, 0);
			continue;
		}
		hd_run_state(run, HD_RUN_PARTIAL);
		hd_list_add(&ctx->partial[run->cls], run);
	}
}

/* Hand @run of an exiting thread's context to its class (LFH lock). */
static void hd_run_abandon(struct hd_sheap *s, struct hd_run *run)
{
	struct hd_class *cls = &s->cls[run->cls];

	hd_run_disown(run);
	if (!run->used && !atomic_load_explicit(&run->xfree,
						memory_order_relaxed) &&
	    hd_empty_cacheable(s, run)) {
		hd_run_state(run, HD_RUN_CACHED);
		hd_list_add(&cls->empty, run);
		s->empty_bytes += run->bytes;
		return;
	}
	hd_run_state(run, HD_RUN_ABANDONED);
	hd_list_add(&cls->abandoned, run);
}

/**
 * hd_ctx_abandon() - give up a context whose thread exits
 * @ctx: a private context of the calling thread
 *
 * Its runs go to their classes (cached when empty, else abandoned: the
 * next context that needs a run of the class adopts them), and the
 * context leaves its heap.  Nothing happens to a context whose heap was
 * destroyed.  The caller is in a call on the heap (heap.h).
 */
void hd_ctx_abandon(struct hd_ctx *ctx)
{
	struct hd_sheap *s = ctx->s;
	struct hd_run *run, *next;
	struct hd_ctx **pp;
	unsigned int c;

	hd_lock(&s->lock);
	if (atomic_load_explicit(&ctx->dead, memory_order_acquire)) {
		hd_unlock(&s->lock);
		return;
	}
	hd_ctx_xflush(ctx);
	for (c = 0; c < HD_NCLASS; c++) {
		if (ctx->cur[c] != HD_EMPTY_RUN)
			hd_run_abandon(s, ctx->cur[c]);
		ctx->cur[c] = HD_EMPTY_RUN;
		for (run = ctx->partial[c]; run; run = next) {
			next = run->next;
			hd_run_abandon(s, run);
		}
		ctx->partial[c] = NULL;
	}
	for (run = ctx->full; run; run = next) {
		next = run->next;
		hd_run_abandon(s, run);
	}
	ctx->full = NULL;
	/* Its runs are disowned: no free tells this context any more. */
	for (run = atomic_exchange_explicit(&ctx->delayed, NULL,
					    memory_order_acquire); run;
	     run = next) {
		next = run->dnext;
		atomic_store_explicit(&run->notified, 0, memory_order_release);
	}
	for (pp = &s->ctxs; *pp; pp = &(*pp)->hnext) {
		if (*pp == ctx) {
			*pp = ctx->hnext;
			break;
		}
	}
	if (ctx->tix < HD_NTCTX)
		atomic_store_explicit(&s->tctx[ctx->tix], NULL,
				      memory_order_relaxed);
	atomic_store_explicit(&ctx->live, 0, memory_order_release);
	atomic_store_explicit(&ctx->dead, true, memory_order_release);
	hd_unlock(&s->lock);
}

/* ---- frees from other threads ---- */

/*
 * Push the chain @head .. @tail of marked slots (linked like a free list,
 * @tail's link set here) onto @run's remote list with one compare-and-
 * swap, and tell the owner of a full run (once: the first push after the
 * owner took the run back clears nothing, the owner clears @notified).
 */
static void hd_run_xpush(struct hd_run *run, uintptr_t head, uintptr_t tail)
{
	uintptr_t old = atomic_load_explicit(&run->xfree, memory_order_relaxed);
	struct hd_ctx *ctx;
	struct hd_run *d;
	uint8_t z = 0;

	do {
		*(uintptr_t *)tail = old ^ run->lkey ^ tail;
	} while (!atomic_compare_exchange_weak_explicit(&run->xfree, &old, head,
							memory_order_seq_cst,
							memory_order_relaxed));
	/* The owner stores the state, then looks at @xfree (small.c). */
	if (atomic_load_explicit(&run->state, memory_order_seq_cst) !=
	    HD_RUN_FULL)
		return;
	/* a plain load first: no write, so no bounce of the line */
	if (atomic_load_explicit(&run->notified, memory_order_relaxed) ||
	    !atomic_compare_exchange_strong(&run->notified, &z, 1))
		return;
	ctx = atomic_load_explicit(&run->ctx, memory_order_relaxed);
	if (!ctx)
		return;
	d = atomic_load_explicit(&ctx->delayed, memory_order_relaxed);
	do {
		run->dnext = d;
	} while (!atomic_compare_exchange_weak_explicit(&ctx->delayed, &d, run,
							memory_order_release,
							memory_order_relaxed));
}

/*
 * Whether @p is a live slot of @run that a thread other than its owner
 * may free; if so, mark it.  Return: 0, -EINVAL or -EAGAIN as for
 * hd_small_free_remote().
 */
static int hd_run_xmark(struct hd_run *run, uintptr_t p)
{
	long i = hd_run_index(run, p);

	if (run == HD_EMPTY_RUN)
		return -EAGAIN;
	if (i < 0 || !hd_run_busy(run, i, p))
		return -EINVAL;
	*(uint64_t *)(p + 8) = hd_xmark(run, p);
	return 0;
}

/**
 * hd_small_free_remote() - free @p of @run from a thread that does not
 * own the run
 * @s: the heap's small blocks
 * @run: the run the page map gave for @p
 * @p: the block
 *
 * No lock and one atomic instruction: the slot's second word gets the
 * run's *remote mark* (its key and address, so that user data cannot
 * make it by chance), which refuses a second free of the block, and the
 * slot is pushed onto the run's remote list with one compare-and-swap.
 * Its size entry is cleared by the owner when it collects the list
 * (hd_small_collect()), which also finds what no call could refuse (two
 * threads freeing one block at the same moment) and reports it.  @run
 * may be a descriptor that was released and reused since the page map
 * was read: then @p fails the checks (released runs are empty, and
 * descriptors are reused only after a grace period).
 * Return: 0, -EINVAL (not a live block: nothing changed) or -EAGAIN (@p
 * is in no run).
 */
int hd_small_free_remote(struct hd_sheap *s, struct hd_run *run, uintptr_t p)
{
	int err = hd_run_xmark(run, p);

	(void)s;
	if (!err)
		hd_run_xpush(run, p, p);
	return err;
}

/**
 * hd_small_free_batch() - free @p of @run, owned by another thread,
 * through the caller's context
 * @ctx: the calling thread's private context on the heap
 * @run: the run the page map gave for @p
 * @p: the block
 *
 * As hd_small_free_remote(), but consecutive frees into one run are
 * chained in @ctx (marked at once, so every later call refuses them) and
 * pushed together: every HD_XBATCH frees, at a free into another run,
 * and before anything needs the heap's exact state (hd_ctx_xflush()).
 * The chain holds its slots busy as far as the owner knows, so the run
 * stays in service until it is pushed.
 * Return: as hd_small_free_remote().
 */
int hd_small_free_batch(struct hd_ctx *ctx, struct hd_run *run, uintptr_t p)
{
	int err = hd_run_xmark(run, p);

	if (err)
		return err;
	if (ctx->xrun != run) {
		hd_ctx_xflush(ctx);
		ctx->xrun = run;
		ctx->xtail = p;
		ctx->xn = 0;
	} else {
		*(uintptr_t *)p = ctx->xhead ^ run->lkey ^ p;
	}
	ctx->xhead = p;
	if (++ctx->xn >= HD_XBATCH)
		hd_ctx_xflush(ctx);
	return 0;
}

/* Push @ctx's chain of remote frees, if any (its thread, or a pause). */
void hd_ctx_xflush(struct hd_ctx *ctx)
{
	if (!ctx->xrun)
		return;
	hd_run_xpush(ctx->xrun, ctx->xhead, ctx->xtail);
	ctx->xrun = NULL;
}

/* ---- whole-heap operations, with exclusive access (a pause) ---- */

typedef void (*hd_run_fn)(struct hd_sheap *s, struct hd_run *run, void *arg);

/* Call @fn on every run in service (not in limbo or the pool). */
static void hd_each_run(struct hd_sheap *s, hd_run_fn fn, void *arg)
{
	struct hd_run *run, *next;
	struct hd_ctx *ctx;
	unsigned int c;

	for (ctx = s->ctxs; ctx; ctx = ctx->hnext) {
		for (c = 0; c < HD_NCLASS; c++) {
			if (ctx->cur[c] != HD_EMPTY_RUN)
				fn(s, ctx->cur[c], arg);
			for (run = ctx->partial[c]; run; run = next) {
				next = run->next;
				fn(s, run, arg);
			}
		}
		for (run = ctx->full; run; run = next) {
			next = run->next;
			fn(s, run, arg);
		}
	}
	for (c = 0; c < HD_NCLASS; c++) {
		for (run = s->cls[c].empty; run; run = next) {
			next = run->next;
			fn(s, run, arg);
		}
		for (run = s->cls[c].abandoned; run; run = next) {
			next = run->next;
			fn(s, run, arg);
		}
	}
}

static void hd_usage_fn(struct hd_sheap *s, struct hd_run *run, void *arg)
{
	size_t *acc = arg;

	hd_small_collect(s, run);
	acc[0] += run->nbytes + (size_t)atomic_load_explicit(
		&run->xbytes, memory_order_relaxed);
	acc[1] += run->used;
}

/*
 * Bytes and number of the blocks in use in runs (exclusive access: remote
 * frees are collected first, so the counts are exact).
 */
void hd_small_usage(struct hd_sheap *s, size_t *bytes, size_t *blocks)
{
	size_t acc[2] = { 0, 0 };

	hd_each_run(s, hd_usage_fn, acc);
	*bytes = acc[0];
	*blocks = acc[1];
}

/* Release @run if it is empty (exclusive access, both locks held). */
static void hd_trim_fn(struct hd_sheap *s, struct hd_run *run, void *arg)
{
	struct hd_ctx *ctx = atomic_load_explicit(&run->ctx,
						  memory_order_relaxed);
	unsigned int c = run->cls;

	(void)arg;
	hd_small_collect(s, run);
	if (run->used)
		return;
	switch (atomic_load_explicit(&run->state, memory_order_relaxed)) {
	case HD_RUN_CURRENT:
		ctx->cur[c] = HD_EMPTY_RUN;
		break;
	case HD_RUN_PARTIAL:
		hd_list_del(&ctx->partial[c], run);
		break;
	case HD_RUN_FULL:
		hd_list_del(&ctx->full, run);
		break;
	case HD_RUN_CACHED:
		hd_list_del(&s->cls[c].empty, run);
		s->empty_bytes -= run->bytes;
		break;
	case HD_RUN_ABANDONED:
		hd_list_del(&s->cls[c].abandoned, run);
		break;
	default:
		return;
	}
	hd_run_release(s, run);
}

/*
 * Release every run without a block in use (HeapCompact; exclusive
 * access, the allocator lock held).
 */
void hd_small_trim(struct hd_sheap *s)
{
	struct hd_ctx *ctx;

	/* No run released below may stay on a delayed list (small.c). */
	for (ctx = s->ctxs; ctx; ctx = ctx->hnext)
		if (atomic_load_explicit(&ctx->delayed, memory_order_acquire))
			hd_ctx_delayed(ctx);
	hd_each_run(s, hd_trim_fn, NULL);
}

/*
 * Check one run (exclusive access): every slot below @bump is busy (size
 * entry set, canary whole) or on exactly one of the free and deferred
 * lists (size entry 0) and the remote list (size entry set, remote mark);
 * the counts agree.  Return: 0 or -EINVAL.
 */
int hd_small_validate_run(struct hd_sheap *s, struct hd_run *run)
{
	uint64_t seen[HD_PAGE / 8];	/* a bit per slot: 32768 slots */
	uint32_t i, busy = 0, nfree = 0, nremote = 0;
	uintptr_t lists[3] = { run->free, run->dfree,
			       atomic_load_explicit(&run->xfree,
						    memory_order_relaxed) };
	unsigned int k;

	(void)s;
	if (run->nslots > sizeof(seen) * 8 || run->bump > run->nslots ||
	    run->span != run->nslots * run->stride)
		return -EINVAL;
	memset(seen, 0, (run->nslots + 7) / 8);
	for (i = 0; i < run->bump; i++) {
		uintptr_t p = run->start + (uintptr_t)i * run->stride;
		unsigned int v = atomic_load_explicit(&run->sizes[i],
						      memory_order_relaxed);
		uintptr_t q = hd_canary_at(run, p);

		if (!v || *(const uint64_t *)(p + 8) == hd_xmark(run, p))
			continue;	/* free, or on the remote list */
		if (v - 1 + 8 > run->stride ||
		    *(const uint64_t *)q != (run->ckey ^ q))
			return -EINVAL;
		busy++;
		seen[i / 64] |= 1ULL << (i % 64);
	}
	for (i = run->bump; i < run->nslots; i++)
		if (atomic_load_explicit(&run->sizes[i], memory_order_relaxed))
			return -EINVAL;
	for (k = 0; k < 3; k++) {
		uintptr_t p = lists[k], end = k == 2 ? 0 : hd_run_end(run);

		while (p != end) {
			long j = hd_run_index(run, p);

			if (j < 0 || (uint32_t)j >= run->bump ||
			    (seen[j / 64] >> (j % 64)) & 1 ||
			    !atomic_load_explicit(&run->sizes[j],
						  memory_order_relaxed) !=
			    (k < 2) || (k == 2 && *(const uint64_t *)(p + 8) !=
					hd_xmark(run, p)))
				return -EINVAL;
			seen[j / 64] |= 1ULL << (j % 64);
			if (k == 2)
				nremote++;
			else
				nfree++;
			p = *(uintptr_t *)p ^ run->lkey ^ p;
		}
	}
	return busy + nfree + nremote == run->bump &&
	       run->used == busy + nremote ? 0 : -EINVAL;
}

/* ---- limbo: released descriptors wait for a grace period ---- */

bool hd_small_limbo_full(const struct hd_sheap *s)
{
	return atomic_load_explicit(&s->nlimbo, memory_order_relaxed) >=
	       HD_LIMBO_BATCH;
}

/* Take the descriptors in limbo (allocator lock held). */
struct hd_run *hd_small_limbo_take(struct hd_sheap *s)
{
	struct hd_run *list = s->limbo;

	s->limbo = NULL;
	atomic_store_explicit(&s->nlimbo, 0, memory_order_relaxed);
	return list;
}

/*
 * Put descriptors taken from limbo before a grace period back into the
 * pool (allocator lock held): no call can still be reading them.
 */
void hd_small_limbo_free(struct hd_sheap *s, struct hd_run *list)
{
	struct hd_run *next;

	for (; list; list = next) {
		next = list->next;
		list->next = s->pool;
		s->pool = list;
	}
}

/* Free every run descriptor (HeapDestroy, or a fork child). */
void hd_small_free_all(struct hd_sheap *s)
{
	struct hd_run *run, *next;

	for (run = s->runs; run; run = next) {
		next = run->anext;
		hd_meta_free((void *)run->sizes,
			     run->scap * sizeof(*run->sizes));
		hd_meta_free(run, sizeof(*run));
	}
	s->runs = s->pool = s->limbo = NULL;
	atomic_store_explicit(&s->nlimbo, 0, memory_order_relaxed);
}
