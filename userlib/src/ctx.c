// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: contexts, a thread's view of a heap's small blocks (small.h).
 *
 * A context struct lives as long as the process: a thread keeps the
 * contexts it made in a list of its own (so that a stale entry of its
 * per-thread cache can only ever name one of its own contexts), recycles
 * those whose heap was destroyed, and gives them all to a process-wide
 * pool when it exits.  The context of a HEAP_NO_SERIALIZE heap, and the
 * shared context of threads beyond HD_NTCTX, are part of the heap.
 */
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

static struct hd_ctx *hd_ctx_new(struct hd_ctx **tlist)
{
	struct hd_ctx **pp, *ctx = NULL, *dead;

	/* A context of this thread whose heap was destroyed. */
	for (pp = tlist; *pp;) {
		dead = *pp;
		if (!atomic_load_explicit(&dead->dead, memory_order_acquire)) {
			pp = &dead->tnext;
			continue;
		}
		*pp = dead->tnext;
		if (!ctx)
			ctx = dead;
		else
			hd_ctx_release(dead);
	}
	if (ctx)
		return ctx;
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
		hd_ctx_release(ctx);
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

void hd_ctx_atfork_child(void)
{
	pthread_mutex_init(&hd_ctx_mutex, NULL);
}
