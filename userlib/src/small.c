// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: runs of small blocks: size classes, carving and releasing runs,
 * refills, collecting frees from other threads, frees and checks (see
 * small.h for the design; ctx.c has contexts, remote frees and whole-heap
 * operations).
 *
 * 79 size classes cover requests up to 16376 bytes: strides of 32 to 1024
 * bytes in steps of 16 (round_up(max(n, 16) + 8, 16), as native LFH
 * blocks), then four strides per power of two up to 16 KiB.
 *
 * Runs are sized by demand: the first run of a class is small (a page, or
 * two to four slots), and each new run the class needs is twice the
 * previous one, up to 32 slots (16-256 KiB), as Windows grows its LFH
 * subsegments.  A run that empties goes back to the medium allocator at
 * once, except for classes below 1 KiB, which keep one cached empty run
 * (more while the heap's cached empty runs hold at most
 * HD_EMPTY_CACHE_BYTES), so that blocks that come and go in batches do
 * not create and release runs for every batch (see hd_empty_cacheable()),
 * and for the current runs of classes of 4 KiB and more on a heap that
 * threads share, which their context keeps for HD_DECOMMIT_DELAY (see
 * hd_run_keep()).
 */
#include <errno.h>

#include "small.h"

#define HD_RUN_W1(cls)	(hd_w1(0) | 0x7E000ULL | (cls))

/*
 * The current run of classes of this stride and more is released when it
 * empties (on a heap that threads share, once it has been empty for
 * HD_DECOMMIT_DELAY): their first runs hold few big slots, and a class
 * used now and then would otherwise keep 16-36 KiB for nothing.
 */
#define HD_CUR_RELEASE_MIN	4096

#define HD_T4(c)	c, c, c, c
#define HD_T16(c)	HD_T4(c), HD_T4(c), HD_T4(c), HD_T4(c)
#define HD_T64(c)	HD_T16(c), HD_T16(c), HD_T16(c), HD_T16(c)

/*
 * hd_class_tab[(n + 23) / 16] is the class of an n-byte request: index i
 * needs a stride of at least 16 * i.  Classes 0..62 have strides 32..1024
 * in steps of 16; then 1280, 1536, 1792, 2048, 2560, ... 16384.
 */
const uint8_t hd_class_tab[(HD_SMALL_MAX + 23) / 16 + 1] = {
	0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
	14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
	30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45,
	46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
	62,				/* 1024 */
	HD_T16(63),			/* 1040..1280 */
	HD_T16(64), HD_T16(65), HD_T16(66),
	HD_T16(67), HD_T16(67),		/* ..2560 */
	HD_T16(68), HD_T16(68), HD_T16(69), HD_T16(69),
	HD_T16(70), HD_T16(70),		/* ..4096 */
	HD_T64(71), HD_T64(72), HD_T64(73), HD_T64(74),	/* ..8192 */
	HD_T64(75), HD_T64(75), HD_T64(76), HD_T64(76),
	HD_T64(77), HD_T64(77), HD_T64(78), HD_T64(78),	/* ..16384 */
};

_Static_assert(HD_NCLASS - HD_BIG_CLASS <= 32, "a bit of hd_ctx.kept each");

static const uint16_t hd_big_strides[HD_NCLASS - HD_BIG_CLASS] = {
	1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
	5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384,
};

static uint32_t hd_stride(unsigned int c)
{
	return c < HD_BIG_CLASS ? 32 + 16 * c :
	       hd_big_strides[c - HD_BIG_CLASS];
}

/*
 * The largest run of a class: 32 slots (so that a class in heavy use does
 * not cycle through runs that fill and empty with every few blocks), at
 * least 16 KiB and at most 256 KiB.
 */
static uint32_t hd_run_max(uint32_t stride)
{
	uint32_t bytes = hd_round_page(32ULL * stride + HD_HDR);

	if (bytes < (16U << 10))
		bytes = 16U << 10;
	return bytes > (256U << 10) ? 256U << 10 : bytes;
}

/*
 * The first run of a class: whole pages holding at least six slots (three
 * from 1280 bytes, two from 4 KiB), with at most 1/5 of it lost to the
 * rounding (a few more pages when needed).  Six: a class's first
 * allocations are laid out side by side, as on Windows (the 18 that
 * activate it take three slots).
 */
static uint32_t hd_run_min(uint32_t stride)
{
	uint32_t k = stride <= 1024 ? 6 : stride < 4096 ? 3 : 2;
	uint32_t bytes = hd_round_page((uint64_t)k * stride + HD_HDR);

	while ((bytes - HD_HDR) % stride > bytes / 5 &&
	       bytes < hd_run_max(stride))
		bytes += HD_PAGE;
	return bytes;
}

void hd_small_init(struct hd_sheap *s, struct hd_core *c, struct hd_mheap *m)
{
	unsigned int k;

	s->c = c;
	s->m = m;
	hd_lock_init(&s->lock, !(c->flags & HEAPDEV_NO_SERIALIZE));
	for (k = 0; k < HD_NCLASS; k++) {
		struct hd_class *cls = &s->cls[k];

		cls->stride = hd_stride(k);
		cls->run_min = hd_run_min(cls->stride);
		cls->run_max = hd_run_max(cls->stride);
		cls->run_bytes = cls->run_min;
	}
}

/* ---- run states and lists ---- */

static bool hd_has(const struct hd_run *run, uintptr_t p)
{
	return p - run->start < run->span;
}

uintptr_t hd_run_end(const struct hd_run *run)
{
	return run->start + run->span;
}

/* Set a run's state, and which local free will need the slow path. */
void hd_run_state(struct hd_run *run, uint8_t state)
{
	atomic_store_explicit(&run->state, state, memory_order_relaxed);
	if (state == HD_RUN_PARTIAL ||
	    (state == HD_RUN_CURRENT && run->stride >= HD_CUR_RELEASE_MIN))
		run->care = 0;
	else if (state == HD_RUN_FULL)
		run->care = run->used - 1;
	else
		run->care = UINT32_MAX;
}

void hd_list_add(struct hd_run **head, struct hd_run *run)
{
	run->prev = NULL;
	run->next = *head;
	if (*head)
		(*head)->prev = run;
	*head = run;
}

void hd_list_del(struct hd_run **head, struct hd_run *run)
{
	if (run->prev)
		run->prev->next = run->next;
	else
		*head = run->next;
	if (run->next)
		run->next->prev = run->prev;
	run->next = run->prev = NULL;
}

/* Make @run owned by @ctx (its owner's thread, or none). */
static void hd_run_own(struct hd_ctx *ctx, struct hd_run *run)
{
	atomic_store_explicit(&run->ctx, ctx, memory_order_relaxed);
	atomic_store_explicit(&run->omask, ctx->owner ? ~0ULL : 0,
			      memory_order_relaxed);
	atomic_store_explicit(&run->owner, ctx->owner ? ctx->owner :
			      HD_OWNER_NONE, memory_order_release);
}

void hd_run_disown(struct hd_run *run)
{
	atomic_store_explicit(&run->ctx, NULL, memory_order_relaxed);
	atomic_store_explicit(&run->omask, ~0ULL, memory_order_relaxed);
	atomic_store_explicit(&run->owner, HD_OWNER_NONE,
			      memory_order_release);
}

/* ---- run descriptors (allocator lock) ---- */

static struct hd_run *hd_run_get(struct hd_sheap *s, uint32_t nslots)
{
	struct hd_run *run = s->pool;

	if (run) {
		s->pool = run->next;
	} else {
		run = hd_meta_alloc(sizeof(*run));
		if (!run)
			return NULL;
		run->anext = s->runs;
		s->runs = run;
	}
	if (run->scap < nslots) {
		void *sz = hd_meta_realloc((void *)run->sizes,
					   run->scap * sizeof(*run->sizes),
					   nslots * sizeof(*run->sizes));

		if (!sz) {
			run->next = s->pool;
			s->pool = run;
			return NULL;
		}
		run->sizes = sz;
		run->scap = nslots;
	}
	return run;
}

/*
 * Hand out the next never-used slots (a page worth, at least eight) on
 * the local free list, in address order: a class's first allocations are
 * laid out as on Windows.
 */
static void hd_run_extend(struct hd_run *run)
{
	uint32_t k = 4096 / run->stride, i;
	uintptr_t p;

	if (k < 8)
		k = 8;
	if (k > run->nslots - run->bump)
		k = run->nslots - run->bump;
	for (i = run->bump + k; i-- > run->bump;) {
		p = run->start + (uintptr_t)i * run->stride;
		*(uintptr_t *)p = run->free ^ run->lkey ^ p;
		run->free = p;
	}
	run->bump += k;
}

/* Carve a new run for class @c out of the medium allocator (allocator lock). */
static struct hd_run *hd_run_new(struct hd_sheap *s, unsigned int c)
{
	struct hd_class *cls = &s->cls[c];
	uint32_t bytes = cls->run_bytes, nslots = (bytes - HD_HDR) /
						  cls->stride;
	struct hd_seg *seg;
	struct hd_run *run;
	uintptr_t b;

	b = hd_medium_alloc_block(s->m, bytes, HD_PAGE, HD_K_RUN, &seg);
	if (!b)
		return NULL;
	run = hd_run_get(s, nslots);
	if (!run) {
		hd_medium_release_block(s->m, seg, b);
		return NULL;
	}
	hd_wr(s->c, b + 8, HD_RUN_W1(c));
	run->start = b + HD_HDR;
	run->stride = cls->stride;
	run->nslots = nslots;
	run->span = nslots * cls->stride;
	run->recip = ((1ULL << 40) + cls->stride - 1) / cls->stride;
	run->lkey = s->c->lsecret;
	run->ckey = s->c->secret;
	memset((void *)run->sizes, 0, nslots * sizeof(*run->sizes));
	run->free = run->dfree = hd_run_end(run);
	run->used = 0;
	run->bump = 0;
	run->nbytes = 0;
	atomic_store_explicit(&run->notified, 0, memory_order_relaxed);
	atomic_store_explicit(&run->xfree, 0, memory_order_relaxed);
	atomic_store_explicit(&run->xbytes, 0, memory_order_relaxed);
	run->cls = (uint16_t)c;
	run->seg = seg;
	run->bytes = bytes;
	run->next = run->prev = run->dnext = NULL;
	hd_run_disown(run);
	hd_run_state(run, HD_RUN_CURRENT);
	hd_run_extend(run);
	hd_pages_set_run(run->start, bytes - HD_HDR, run);
	s->run_bytes += bytes;
	atomic_store_explicit(&s->seen, true, memory_order_relaxed);
	/* The class needs runs: its next one is bigger. */
	if (bytes < cls->run_max)
		cls->run_bytes = bytes * 2 < cls->run_max ? bytes * 2 :
				 cls->run_max;
	return run;
}

/*
 * Give an empty run back to the medium allocator (allocator lock held);
 * its descriptor goes to limbo.  A run whose block header an underflow of
 * its first slot damaged stays where it is, out of service, on no list.
 */
void hd_run_release(struct hd_sheap *s, struct hd_run *run)
{
	struct hd_class *cls = &s->cls[run->cls];
	uint64_t w = hd_rd(s->c, hd_run_block(run));

	if (!hd_w0_ok(w) || hd_w0_kind(w) != HD_K_RUN ||
	    hd_w0_size(w) < run->bytes ||
	    hd_w0_size(w) >= run->bytes + HD_MIN_BLOCK ||
	    hd_rd(s->c, hd_run_block(run) + 8) != HD_RUN_W1(run->cls)) {
		hd_corrupt(s->c->handle, (void *)run->start,
			   "damaged run header (run kept out of service)");
		hd_run_disown(run);
		hd_run_state(run, HD_RUN_DEAD);
		return;
	}
	hd_pages_set_run(run->start, run->bytes - HD_HDR, HD_EMPTY_RUN);
	s->run_bytes -= run->bytes;
	hd_wr(s->c, hd_run_block(run) + 8, hd_w1(0));
	hd_medium_release_block(s->m, run->seg, hd_run_block(run));
	hd_run_disown(run);
	hd_run_state(run, HD_RUN_DEAD);
	run->next = s->limbo;
	s->limbo = run;
	atomic_store_explicit(&s->nlimbo, atomic_load_explicit(
		&s->nlimbo, memory_order_relaxed) + 1, memory_order_relaxed);
	/* The class needs fewer runs: its next one is smaller. */
	if (cls->run_bytes > cls->run_min) {
		uint32_t half = hd_round_page(cls->run_bytes / 2);

		cls->run_bytes = half > cls->run_min ? half : cls->run_min;
	}
}

/*
 * Whether empty run @run may wait on its class's empty list (LFH lock):
 * classes below 1 KiB keep empty runs while the heap's cached ones hold
 * at most HD_EMPTY_CACHE_BYTES, so that blocks that come and go in
 * batches do not create and release runs for every batch.  The bound is
 * fixed: one that grew with the heap's committed bytes kept what it
 * cached committed, and so let itself grow.
 */
bool hd_empty_cacheable(const struct hd_sheap *s, const struct hd_run *run)
{
	return run->stride < HD_EMPTY_CACHE_MAX &&
	       s->empty_bytes + run->bytes <= HD_EMPTY_CACHE_BYTES;
}

/*
 * An empty run that is on no list, not current and owned by no one any
 * more: cache it for its class, or release it (takes the locks, as
 * @flags allows).
 */
void hd_run_empty(struct hd_sheap *s, struct hd_run *run,
			 uint32_t flags)
{
	struct hd_class *cls = &s->cls[run->cls];

	hd_run_disown(run);
	hd_lock_if(&s->lock, flags);
	if (hd_empty_cacheable(s, run)) {
		hd_run_state(run, HD_RUN_CACHED);
		hd_list_add(&cls->empty, run);
		s->empty_bytes += run->bytes;
		hd_unlock_if(&s->lock, flags);
		return;
	}
	hd_unlock_if(&s->lock, flags);
	hd_lock_if(&s->c->mlock, flags);
	hd_run_release(s, run);
	hd_unlock_if(&s->c->mlock, flags);
}

/*
 * The owner of empty run @run gives it up (cached or released).  A run
 * that a remote free found full is on @ctx's delayed list (@notified)
 * even after local frees made it partial or current again: the list is
 * taken first (this run is dropped from it), so that no released
 * descriptor, reused for another run, is left on it.
 */
static void hd_run_give_up(struct hd_ctx *ctx, struct hd_run *run,
			   uint32_t flags)
{
	if (atomic_load_explicit(&run->notified, memory_order_acquire))
		hd_ctx_delayed(ctx);
	hd_run_empty(ctx->s, run, flags);
}

/* ---- collecting frees from other threads ---- */

/*
 * Move the slots other threads freed into @run (its owner, or exclusive
 * access) onto its local free list.  A link that does not lead to a slot
 * of the run is reported and ends the list there.
 */
void hd_small_collect(struct hd_sheap *s, struct hd_run *run)
{
	uintptr_t x = atomic_exchange_explicit(&run->xfree, 0,
					       memory_order_acquire);
	uint32_t count = 0;
	size_t bytes = 0;

	while (x) {
		long i = hd_run_index(run, x);
		unsigned int v;
		uintptr_t next;

		v = i < 0 || count >= run->nslots ? 0 :
		    atomic_load_explicit(&run->sizes[i], memory_order_relaxed);
		if (!v || *(uint64_t *)(x + 8) != hd_xmark(run, x)) {
			hd_corrupt(s->c->handle, (void *)x, i < 0 ?
				   "corrupted remote free list" :
				   "block freed twice, once by another thread "
				   "(the rest of the run's remote list is lost)");
			break;
		}
		next = *(uintptr_t *)x ^ run->lkey ^ x;
		atomic_store_explicit(&run->sizes[i], 0, memory_order_relaxed);
		*(uint64_t *)(x + 8) = 0;
		*(uintptr_t *)x = run->free ^ run->lkey ^ x;
		run->free = x;
		count++;
		bytes += v - 1;
		x = next;
	}
	run->used -= count < run->used ? count : run->used;
	run->nbytes -= bytes < run->nbytes ? bytes : run->nbytes;
}

/* ---- allocation ---- */

/*
 * A free slot of @run failed its check: report it (this may end the
 * process) and stop allocating from the run's lists and never-used
 * slots.  Blocks in use can still be freed into it.
 */
static void hd_run_corrupt(struct hd_sheap *s, struct hd_run *run,
			   uintptr_t p, const char *what)
{
	hd_corrupt(s->c->handle, (void *)p, what);
	run->free = run->dfree = hd_run_end(run);
	run->bump = run->nslots;
}

/*
 * The current run @run of @ctx has no free slot on its local list: swap
 * in the deferred list, collect remote frees, or hand out never-used
 * slots.  Return: false when the run is full.
 */
static bool hd_run_regrow(struct hd_sheap *s, struct hd_run *run)
{
	if (run->free != hd_run_end(run))
		hd_run_corrupt(s, run, run->free, "corrupted free-list link");
	if (run->dfree != hd_run_end(run)) {
		run->free = run->dfree;
		run->dfree = hd_run_end(run);
		return true;
	}
	if (atomic_load_explicit(&run->xfree, memory_order_relaxed)) {
		hd_small_collect(s, run);
		if (hd_has(run, run->free))
			return true;
	}
	if (run->bump >= run->nslots)
		return false;
	hd_run_extend(run);
	return true;
}

/*
 * Retire the full current run @run to @ctx's full list, unless a remote
 * free got in first (then the caller collects it).  The first remote free
 * into a retired run tells the owner (hd_small_free_remote()): either it
 * sees the state FULL, or this side sees its slot on the remote list
 * (two stores and two loads, all sequentially consistent).
 */
static bool hd_run_retire(struct hd_ctx *ctx, struct hd_run *run)
{
	hd_run_state(run, HD_RUN_FULL);
	/* sequentially consistent, like the remote side's push and load */
	atomic_exchange_explicit(&run->state, HD_RUN_FULL,
				 memory_order_seq_cst);
	if (atomic_load_explicit(&run->xfree, memory_order_seq_cst)) {
		hd_run_state(run, HD_RUN_CURRENT);
		return false;
	}
	hd_list_add(&ctx->full, run);
	return true;
}

/*
 * A run of class @c with room for @ctx from the class: a cached empty one,
 * an abandoned one (adopted), or a new one.  Takes the locks (as @flags
 * allows).  Return: the run, owned by @ctx and current, or NULL.
 */
static struct hd_run *hd_class_take(struct hd_ctx *ctx, unsigned int c,
				    uint32_t flags)
{
	struct hd_sheap *s = ctx->s;
	struct hd_class *cls = &s->cls[c];
	struct hd_run *run;

	hd_lock_if(&s->lock, flags);
	run = cls->empty;
	if (run) {
		hd_list_del(&cls->empty, run);
		s->empty_bytes -= run->bytes;
	} else {
		run = cls->abandoned;
		if (run)
			hd_list_del(&cls->abandoned, run);
	}
	if (run) {
		hd_run_own(ctx, run);
		hd_run_state(run, HD_RUN_CURRENT);
		hd_unlock_if(&s->lock, flags);
		hd_small_collect(s, run);
		return run;
	}
	hd_unlock_if(&s->lock, flags);
	hd_lock_if(&s->c->mlock, flags);
	run = hd_run_new(s, c);
	hd_unlock_if(&s->c->mlock, flags);
	if (run)
		hd_run_own(ctx, run);
	return run;
}

/*
 * The partial run to allocate from next: the fullest of the first
 * HD_PARTIAL_SCAN, so that the emptier ones drain and can be released (a
 * random working set otherwise keeps every run of a class about as full
 * as the others).
 */
#define HD_PARTIAL_SCAN	8

static struct hd_run *hd_partial_pick(struct hd_run *run)
{
	struct hd_run *best = run;
	unsigned int i;

	for (i = 0; run && i < HD_PARTIAL_SCAN; i++, run = run->next)
		if (run->used > best->used)
			best = run;
	return best;
}

/*
 * Keep the emptied current run @run of @ctx (a class of HD_CUR_RELEASE_MIN
 * or more) instead of releasing it now, on a heap whose locks are shared
 * by threads.  These classes hold a block or two at a time in most
 * programs, so their current run empties and is needed again all the
 * time; releasing it each time is a run given back and another carved,
 * four acquisitions of the LFH and allocator locks, each an atomic
 * operation on a line the other threads write, and a futex sleep when
 * they collide.  The run is kept until it has been empty for
 * HD_DECOMMIT_DELAY (hd_keep_expire(), as long as a free medium block's
 * pages stay committed), or until HeapCompact or the thread's exit; a
 * context keeps at most HD_KEEP_BYTES of them.  A heap used by one thread
 * (a biased lock) releases the run at once: it keeps its footprint.
 * Return: whether @run is kept (else the caller releases it).
 */
static bool hd_run_keep(struct hd_ctx *ctx, struct hd_run *run)
{
	unsigned int k = run->cls - HD_BIG_CLASS;
	size_t bytes = run->bytes;
	uint32_t m = ctx->kept & ~(1U << k);

	while (m) {
		unsigned int j = (unsigned int)__builtin_ctz(m);
		const struct hd_run *r = ctx->cur[HD_BIG_CLASS + j];

		m &= m - 1;
		if (r != HD_EMPTY_RUN && !r->used)
			bytes += r->bytes;
		else
			ctx->kept &= ~(1U << j);
	}
	if (bytes > HD_KEEP_BYTES)
		return false;
	ctx->kept |= 1U << k;
	ctx->kept_since[k] = hd_now();
	return true;
}

/*
 * Release the kept runs of @ctx that are still empty after
 * HD_DECOMMIT_DELAY, except that of class @skip (being refilled).
 */
static void hd_keep_expire(struct hd_ctx *ctx, unsigned int skip,
			   uint32_t flags)
{
	uint64_t now = hd_now();
	uint32_t m = ctx->kept;

	while (m) {
		unsigned int k = (unsigned int)__builtin_ctz(m);
		unsigned int c = HD_BIG_CLASS + k;
		struct hd_run *run = ctx->cur[c];

		m &= m - 1;
		if (c == skip)
			continue;
		if (run != HD_EMPTY_RUN && !run->used) {
			if (now - ctx->kept_since[k] < HD_DECOMMIT_DELAY)
				continue;
			ctx->cur[c] = HD_EMPTY_RUN;
			hd_run_give_up(ctx, run, flags);
		}
		ctx->kept &= ~(1U << k);
	}
}

/*
 * Make @ctx's current run of class @c one with a free slot at hand.
 * Return: false when there is no memory.
 */
static bool hd_refill(struct hd_ctx *ctx, unsigned int c, uint32_t flags)
{
	struct hd_sheap *s = ctx->s;
	struct hd_run *run;

	if (unlikely(ctx->kept) && !(++ctx->ticks % HD_KEEP_CHECK))
		hd_keep_expire(ctx, c, flags);
	for (;;) {
		run = ctx->cur[c];
		if (hd_has(run, run->free))
			return true;
		if (run != HD_EMPTY_RUN) {
			if (hd_run_regrow(s, run))
				return true;
			if (!hd_run_retire(ctx, run))
				continue;
			ctx->cur[c] = HD_EMPTY_RUN;
		}
		if (atomic_load_explicit(&ctx->delayed, memory_order_relaxed))
			hd_ctx_delayed(ctx);
		run = hd_partial_pick(ctx->partial[c]);
		if (run) {
			hd_list_del(&ctx->partial[c], run);
			hd_run_state(run, HD_RUN_CURRENT);
		} else {
			run = hd_class_take(ctx, c, flags);
			if (!run)
				return false;
		}
		ctx->cur[c] = run;
	}
}

/**
 * hd_small_alloc() - allocate a block of @n bytes from class @cls
 * @ctx: the caller's context (under the LFH lock for the shared one)
 * @n: size (at most the class's stride - 8)
 * @cls: an active class
 * @flags: effective flags
 *
 * The slow path of HD_RUN_POP, and the allocation of a slot bigger than
 * @n needs (a realloc that moves a growing block leaves it room).  The
 * popped slot is checked: a free slot in the run whose size entry says
 * free.  Return: the block, or NULL when there is no memory.
 */
void *hd_small_alloc(struct hd_ctx *ctx, size_t n, unsigned int cls,
		     uint32_t flags)
{
	struct hd_sheap *s = ctx->s;
	struct hd_run *run;
	uintptr_t p;
	long i;

	for (;;) {
		if (!hd_refill(ctx, cls, flags))
			return NULL;
		run = ctx->cur[cls];
		p = run->free;
		i = hd_run_index(run, p);
		if (likely(i >= 0 && !atomic_load_explicit(&run->sizes[i],
							   memory_order_relaxed)))
			break;
		hd_run_corrupt(s, run, p, "corrupted free slot");
	}
	run->free = *(uintptr_t *)p ^ run->lkey ^ p;
	atomic_store_explicit(&run->sizes[i], (uint16_t)(n + 1),
			      memory_order_relaxed);
	*(uint64_t *)(p + 8) = 0;	/* no remote mark */
	*(uint64_t *)hd_canary_at(run, p) = run->ckey ^ hd_canary_at(run, p);
	run->used++;
	run->nbytes += n;
	if (flags & HEAPDEV_ZERO)
		memset((void *)p, 0, n);
	return (void *)p;
}

/* ---- frees ---- */

/**
 * hd_small_free_slow() - what a local free that hit @run->care needs
 * @ctx: the run's owning context
 * @run: the run
 * @flags: effective flags (for the locks)
 *
 * A full run becomes partial; an emptied partial run is cached or
 * released; so is an emptied current run of a class of 4 KiB or more,
 * unless the heap's locks are shared (then it is kept for a while,
 * hd_run_keep()).
 */
void hd_small_free_slow(struct hd_ctx *ctx, struct hd_run *run,
			uint32_t flags)
{
	unsigned int c = run->cls;

	switch (atomic_load_explicit(&run->state, memory_order_relaxed)) {
	case HD_RUN_CURRENT:
		if (run->used || ctx->cur[c] != run)
			return;
		if (!(flags & HEAPDEV_NO_SERIALIZE) &&
		    hd_lock_shared(&ctx->s->lock) && hd_run_keep(ctx, run))
			return;
		ctx->cur[c] = HD_EMPTY_RUN;
		break;
	case HD_RUN_FULL:
		hd_list_del(&ctx->full, run);
		hd_run_state(run, HD_RUN_PARTIAL);
		hd_list_add(&ctx->partial[c], run);
		if (run->used)
			return;
		__attribute__((fallthrough));	/* a one-slot run emptied */
	case HD_RUN_PARTIAL:
		if (run->used)
			return;
		hd_list_del(&ctx->partial[c], run);
		break;
	default:
		return;
	}
	if (atomic_load_explicit(&run->xfree, memory_order_relaxed)) {
		/* cannot happen: remote frees are of slots still counted */
		hd_small_collect(ctx->s, run);
	}
	hd_run_give_up(ctx, run, flags);
}

/**
 * hd_small_check() - whether @p is a live block of @run
 * @run: the run covering @p
 * @p: user address
 * @n: out: the requested size
 *
 * Reads the run's entries, the slot's canary, which is whole unless an
 * overflow of the block (or an underflow of the next one) reached it, and
 * its second word (a remote free that the owner has not collected yet).
 * Return: 0 or -EINVAL.
 */
int hd_small_check(const struct hd_run *run, uintptr_t p, size_t *n)
{
	long i = hd_run_index(run, p);
	unsigned int v;

	if (i < 0)
		return -EINVAL;
	v = hd_run_busy(run, i, p);
	if (!v || v - 1 + 8 > run->stride)
		return -EINVAL;
	*n = v - 1;
	return 0;
}

/*
 * Change the recorded size of live block @p of @run from @old to @n bytes
 * (n + 8 <= stride), by any thread: the byte count of a run belongs to
 * its owner, so other threads count their change apart.  Return: 0.
 */
int hd_small_resize(struct hd_run *run, uintptr_t p, size_t old, size_t n)
{
	long i = hd_run_index(run, p);

	atomic_store_explicit(&run->sizes[i], (uint16_t)(n + 1),
			      memory_order_relaxed);
	if (hd_run_local(run))
		run->nbytes += n - old;
	else
		atomic_fetch_add_explicit(&run->xbytes,
					  (int64_t)n - (int64_t)old,
					  memory_order_relaxed);
	return 0;
}
