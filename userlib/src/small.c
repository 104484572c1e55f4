// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the low-fragmentation heap (LFH): size classes served from runs.
 *
 * 79 size classes cover requests up to 16376 bytes: slot strides of 32 to
 * 1024 bytes in steps of 16 (so a slot is round_up(n + 8, 16) bytes, like
 * native LFH blocks), then four strides per power of two up to 16 KiB.
 * A class is activated after HD_LFH_TRIGGER (18) allocations of its size,
 * as Windows does; before that its requests are medium blocks.
 *
 * A run is a medium block of whole pages whose user area starts on a page
 * boundary, cut into slots: [8-byte header][data].  The segment's granule
 * table maps every page of the run to it, so a pointer finds its run in two
 * loads.  Each run keeps a LIFO free list of slots (links encoded like the
 * medium ones), a count of slots in use, and a bump index below which slots
 * have been handed out at least once.
 *
 * Runs are sized by demand: the first run of a class is small (a page, or
 * two to four slots), and each new run the class needs is twice the previous one,
 * up to 32 slots (16-256 KiB), as Windows grows its LFH subsegments.  A
 * heap that uses a class a little pays a page for it, not 16-256 KiB.
 *
 * Each class has a current run (the fast path pops from it), a list of
 * partial runs, and for classes below 1 KiB a list of cached empty runs
 * (one per class, more while the heap's cached empty runs hold at most
 * HD_EMPTY_CACHE_BYTES, so that a class whose blocks come and go in
 * batches does not create and release runs for every batch).  A run that
 * empties beyond that goes back to the medium allocator at once.
 */
#include <errno.h>

#include "internal.h"

#define HD_RUN_W1(cls)	(hd_w1(0) | 0x7E000ULL | (cls))
#define HD_RUNS_PER_CHUNK 63

/* In no affinity slot: frees of medium blocks must not take a slot lock. */
struct hd_run hd_dummy_run = { .aff = HD_AFF_NONE };

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

static const uint16_t hd_big_strides[HD_NCLASS - 63] = {
	1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096,
	5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384,
};

struct hd_run_chunk {
	struct hd_run_chunk *next;
	struct hd_run runs[HD_RUNS_PER_CHUNK];
};

static uint32_t hd_stride(unsigned int c)
{
	return c < 63 ? 32 + 16 * c : hd_big_strides[c - 63];
}

/* Empty runs of classes of this stride and more are never cached. */
#define HD_EMPTY_CACHE_MAX	1024
/*
 * The current run of classes of this stride and more is released when it
 * empties: their first runs hold few big slots, and a class used now and
 * then would otherwise keep 16-36 KiB for nothing.
 */
#define HD_CUR_RELEASE_MIN	4096

static uint32_t hd_round_run(uint64_t bytes)
{
	return (uint32_t)((bytes + HD_PAGE - 1) & ~(HD_PAGE - 1));
}

/*
 * The largest run of a class: 32 slots (so that a class in heavy use does
 * not cycle through runs that fill and empty with every few blocks), at
 * least 16 KiB and at most 256 KiB.
 */
static uint32_t hd_run_max(uint32_t stride)
{
	uint32_t bytes = hd_round_run(32ULL * stride + 24);

	if (bytes < (16U << 10))
		bytes = 16U << 10;
	return bytes > (256U << 10) ? 256U << 10 : bytes;
}

/*
 * The first run of a class: whole pages holding at least four slots (three
 * from 1280 bytes, two from 4 KiB: a class used a little should not cost
 * more than a few blocks), with at most 1/5 of it lost to the rounding (a
 * few more pages when needed).
 */
static uint32_t hd_run_min(uint32_t stride)
{
	uint32_t k = stride <= 1024 ? 4 : stride < 4096 ? 3 : 2;
	uint32_t bytes = hd_round_run((uint64_t)k * stride + 24);

	while ((bytes - 24) % stride > bytes / 5 && bytes < hd_run_max(stride))
		bytes += HD_PAGE;
	return bytes;
}

void hd_classes_init(struct hd_heap *h)
{
	unsigned int c, k;

	for (c = 0; c < HD_NCLASS; c++) {
		struct hd_class *cls = &h->cls[c];

		h->cur[c] = &hd_dummy_run;
		for (k = 0; k < HD_NAFF; k++)
			h->aff[k].cur[c] = &hd_dummy_run;
		cls->stride = hd_stride(c);
		cls->run_min = hd_run_min(cls->stride);
		cls->run_max = hd_run_max(cls->stride);
		cls->run_bytes = cls->run_min;
	}
}

/* Run structs come from per-heap chunks (main lock held). */
static struct hd_run *hd_run_get(struct hd_heap *h)
{
	struct hd_run *run = h->run_pool;

	if (!run) {
		struct hd_run_chunk *ch = hd_meta_alloc(sizeof(*ch));
		int i;

		if (!ch)
			return NULL;
		ch->next = h->run_chunks;
		h->run_chunks = ch;
		for (i = HD_RUNS_PER_CHUNK - 1; i >= 0; i--) {
			ch->runs[i].next = h->run_pool;
			h->run_pool = &ch->runs[i];
		}
		run = h->run_pool;
	}
	h->run_pool = run->next;
	/*
	 * @aff is read without a lock by frees that hold a stale pointer (a
	 * double free): it is never cleared to 0, a slot's number.
	 */
	memset(run, 0, offsetof(struct hd_run, aff));
	memset((char *)run + offsetof(struct hd_run, aff) + sizeof(run->aff),
	       0, sizeof(*run) - offsetof(struct hd_run, aff) -
	       sizeof(run->aff));
	atomic_store_explicit(&run->aff, HD_AFF_NONE, memory_order_relaxed);
	return run;
}

/* Set a run's state, and which free will need the slow path. */
static void hd_run_state(struct hd_run *run, uint8_t state)
{
	run->state = state;
	if (state == HD_RUN_PARTIAL ||
	    (state == HD_RUN_CURRENT && run->stride >= HD_CUR_RELEASE_MIN))
		run->care = 0;
	else if (state == HD_RUN_FULL)
		run->care = run->used - 1;
	else
		run->care = UINT32_MAX;
}

static void hd_run_put(struct hd_heap *h, struct hd_run *run)
{
	hd_run_state(run, HD_RUN_DEAD);
	run->next = h->run_pool;
	h->run_pool = run;
}

void hd_runs_free_all(struct hd_heap *h)
{
	struct hd_run_chunk *ch = h->run_chunks, *next;

	for (; ch; ch = next) {
		next = ch->next;
		hd_meta_free(ch, sizeof(*ch));
	}
	h->run_chunks = NULL;
	h->run_pool = NULL;
}

/* Whether the run has a usable free slot (not the end-of-list sentinel). */
static bool hd_run_has_free(const struct hd_run *run)
{
	return run->free - run->first < run->span;
}

/* Hand out up to a page worth of never-used slots (free list empty). */
static void hd_run_extend(struct hd_heap *h, struct hd_run *run)
{
	uint32_t k = 4096 / run->stride, i;
	uintptr_t p;

	if (k < 4)
		k = 4;
	if (k > run->nslots - run->bump)
		k = run->nslots - run->bump;
	for (i = run->bump + k; i-- > run->bump;) {
		p = run->first + (uintptr_t)i * run->stride;
		hd_wr(h, p - 8, hd_sfree(run->cls));
		hd_wrlink(h, p, run->free);
		run->free = p;
	}
	run->bump += k;
}

static void hd_gtab_set(struct hd_seg *s, struct hd_run *run, size_t bytes,
			struct hd_run *val)
{
	size_t g = (run->first - 16 - s->sp.base) >> HD_GRANULE_SHIFT;
	size_t i;

	/* Atomic: frees on shared heaps look runs up before taking a lock. */
	for (i = 0; i < bytes >> HD_GRANULE_SHIFT; i++)
		atomic_store_explicit((_Atomic(struct hd_run *) *)&s->gtab[g + i],
				      val, memory_order_relaxed);
}

/* Carve a new run for class @c out of the medium allocator (lock held). */
static struct hd_run *hd_run_new(struct hd_heap *h, unsigned int c)
{
	struct hd_class *cls = &h->cls[c];
	uint32_t bytes = cls->run_bytes;
	struct hd_seg *s;
	struct hd_run *run;
	uintptr_t b;

	b = hd_medium_alloc_block(h, bytes, HD_GRANULE, HD_K_RUN, &s);
	if (!b)
		return NULL;
	run = hd_run_get(h);
	if (!run) {
		hd_medium_release_block(h, s, b);
		return NULL;
	}
	hd_wr(h, b + 8, HD_RUN_W1(c));
	run->first = b + HD_HDR + 16;
	run->stride = cls->stride;
	run->nslots = (bytes - 24) / cls->stride;
	run->span = run->nslots * run->stride;
	run->span16 = run->span >> 4;
	run->free = run->first + run->span;
	run->hbusy = hd_sbusy(0, c);
	run->hfree = hd_sfree(c);
	run->recip = (uint32_t)(((1ULL << 32) + run->stride - 1) / run->stride);
	run->cls = (uint16_t)c;
	run->seg = s;
	run->block = b;
	run->bytes = bytes;
	hd_gtab_set(s, run, bytes, run);
	hd_run_extend(h, run);
	h->run_bytes += bytes;
	/* The class needs runs: its next one is bigger. */
	if (bytes < cls->run_max)
		cls->run_bytes = bytes * 2 < cls->run_max ? bytes * 2 :
				 cls->run_max;
	return run;
}

/* Give an empty run back to the medium allocator (both locks held). */
static void hd_run_release(struct hd_heap *h, struct hd_run *run)
{
	struct hd_class *cls = &h->cls[run->cls];
	struct hd_seg *s = run->seg;
	uint32_t bytes = run->bytes;
	uint64_t w = hd_rd(h, run->block);

	/*
	 * An underflow of the first slot may have reached the run's block
	 * header: then the block's size cannot be trusted and the run stays
	 * where it is, out of service.
	 */
	if (!hd_w0_ok(w) || hd_w0_kind(w) != HD_K_RUN ||
	    hd_w0_size(w) < bytes || hd_w0_size(w) >= bytes + HD_MIN_BLOCK ||
	    hd_rd(h, run->block + 8) != HD_RUN_W1(run->cls)) {
		hd_small_corrupt_run(h, run, run->first, "damaged run header");
		hd_run_state(run, HD_RUN_FULL);
		return;
	}

	/*
	 * The slot headers stay: the run is empty, so none of them says
	 * "busy", and a stale pointer into it is refused.
	 */
	hd_gtab_set(s, run, bytes, &hd_dummy_run);
	h->run_bytes -= bytes;
	hd_wr(h, run->block + 8, hd_w1(0));
	hd_medium_release_block(h, s, run->block);
	hd_run_put(h, run);
	/* The class needs fewer runs: its next one is smaller. */
	if (cls->run_bytes > cls->run_min)
		cls->run_bytes = hd_round_run(cls->run_bytes / 2) >
				 cls->run_min ?
				 hd_round_run(cls->run_bytes / 2) :
				 cls->run_min;
}

static void hd_partial_add(struct hd_class *cls, struct hd_run *run)
{
	hd_run_state(run, HD_RUN_PARTIAL);
	run->prev = NULL;
	run->next = cls->partial;
	if (cls->partial)
		cls->partial->prev = run;
	cls->partial = run;
}

static void hd_partial_del(struct hd_class *cls, struct hd_run *run)
{
	if (run->prev)
		run->prev->next = run->next;
	else
		cls->partial = run->next;
	if (run->next)
		run->next->prev = run->prev;
	run->next = run->prev = NULL;
}

/*
 * The partial run to allocate from next: the fullest of the first
 * HD_PARTIAL_SCAN, so that the emptier ones drain and can be released
 * (a random working set otherwise keeps every run of a class about as
 * full as the others).
 */
#define HD_PARTIAL_SCAN	8

static struct hd_run *hd_partial_pick(struct hd_class *cls)
{
	struct hd_run *run = cls->partial, *best = run;
	unsigned int i;

	for (i = 0; run && i < HD_PARTIAL_SCAN; i++, run = run->next)
		if (run->used * (uint64_t)best->nslots >
		    best->used * (uint64_t)run->nslots)
			best = run;
	return best;
}

/*
 * The current run @run has no free slot on its list: give it the next
 * never-used slots if it has some (and check that its list really ended).
 * Return: false when the run is full.
 */
static bool hd_run_regrow(struct hd_heap *h, struct hd_run *run)
{
	if (run->free != run->first + run->span)
		hd_small_corrupt_run(h, run, run->free,
				     "corrupted free-list link");
	if (run->bump >= run->nslots)
		return false;
	hd_run_extend(h, run);
	return true;
}

/*
 * Make *@curp (heap->cur[c], or a run of an affinity slot's that is in no
 * list) a run with a free slot.  Called with the LFH lock held; may drop it
 * to take the heap lock.  Return: false when no memory.
 */
static bool hd_refill(struct hd_heap *h, unsigned int c, uint32_t flags,
		      struct hd_run **curp)
{
	struct hd_class *cls = &h->cls[c];
	struct hd_run *run;

	for (;;) {
		run = *curp;
		if (hd_run_has_free(run))
			return true;
		if (run != &hd_dummy_run) {
			if (hd_run_regrow(h, run))
				return true;
			hd_run_state(run, HD_RUN_FULL);
			*curp = &hd_dummy_run;
		}
		run = hd_partial_pick(cls);
		if (run) {
			hd_partial_del(cls, run);
		} else {
			run = cls->empty;
			if (run) {
				cls->empty = run->next;
				h->empty_bytes -= run->bytes;
			}
		}
		if (run) {
			hd_run_state(run, HD_RUN_CURRENT);
			*curp = run;
			continue;
		}
		hd_unlock_lfh(h, flags);
		hd_lock_main(h, flags);
		run = hd_run_new(h, c);
		hd_lock_lfh(h, flags);
		hd_unlock_main(h, flags);
		if (!run)
			return false;
		if (*curp == &hd_dummy_run) {
			hd_run_state(run, HD_RUN_CURRENT);
			*curp = run;
		} else {
			hd_partial_add(cls, run);
		}
	}
}

/*
 * Allocation of a small size whose class has no free slot at hand, or is
 * not active yet.  Called with the LFH lock held; returns with it released.
 */
void *hd_small_alloc_slow(struct hd_heap *h, size_t n, uint32_t flags)
{
	return hd_small_alloc_cls(h, n, hd_class_of(n), flags);
}

/*
 * The same with a slot of class @c, which may be bigger than @n needs (a
 * realloc that moves a growing block leaves it room).  Called with the
 * LFH lock held; returns with it released.
 */
void *hd_small_alloc_cls(struct hd_heap *h, size_t n, unsigned int c,
			 uint32_t flags)
{
	struct hd_class *cls = &h->cls[c];
	struct hd_run *run;
	uintptr_t p, next;
	uint64_t key;

	if (!cls->active) {
		if (h->fixed || ++cls->count < HD_LFH_TRIGGER) {
			hd_unlock_lfh(h, flags);
			return hd_medium_alloc(h, n, flags);
		}
		cls->active = 1;
		h->lfh_seen = true;
		if (!(h->flags & HEAPDEV_NO_SERIALIZE))
			atomic_store(&h->compat, 2);
	}
	for (;;) {
		if (!hd_refill(h, c, flags, &h->cur[c])) {
			hd_unlock_lfh(h, flags);
			return NULL;
		}
		run = h->cur[c];
		p = run->free;
		key = hd_key(h, p - 8);
		next = hd_rdlink(h, p);
		if (likely((*(uint64_t *)(p - 8) ^ key) == run->hfree))
			break;
		hd_small_corrupt_run(h, run, p, "corrupted free slot");
	}
	run->free = next;
	run->used++;
	*(uint64_t *)(p - 8) = hd_sbusy(n, c) ^ key;
	hd_unlock_lfh(h, flags);
	if (flags & HEAPDEV_ZERO)
		memset((void *)p, 0, n);
	return (void *)p;
}

/*
 * A run of class @c with room, taken from the current runs of the other
 * affinity slots (LFH lock held), or &hd_dummy_run.  Used instead of
 * carving a new run (which takes the heap lock) while another thread
 * holds the heap lock, through HeapLock for instance: LFH allocations do
 * not wait for HeapLock while a run of their class has room (spec case
 * 54).  Not otherwise: two threads that start on a class at the same time
 * would take each other's run on every allocation.
 */
static struct hd_run *hd_aff_steal(struct hd_heap *h, unsigned int c,
				   unsigned int self)
{
	struct hd_run *run;
	unsigned int k;

	for (k = 0; k < HD_NAFF; k++) {
		struct hd_aff *a = &h->aff[k];

		if (k == self)
			continue;
		hd_aff_lock(a);
		run = a->cur[c];
		if (hd_run_has_free(run) ||
		    (run != &hd_dummy_run && run->bump < run->nslots)) {
			a->cur[c] = &hd_dummy_run;
			atomic_store_explicit(&run->aff, HD_AFF_NONE,
					      memory_order_relaxed);
			hd_aff_unlock(a);
			return run;
		}
		hd_aff_unlock(a);
	}
	return &hd_dummy_run;
}

/*
 * Allocation of an LFH size on a shared heap (see struct hd_aff): pop a
 * slot of the current run of the thread's affinity slot under the slot's
 * lock; when it has none, take the LFH lock, retire it and install a run
 * from the class (partial, empty or new).  No lock held on entry or
 * return.
 */
void *hd_aff_alloc(struct hd_heap *h, size_t n, uint32_t flags)
{
	unsigned int c = hd_class_of(n), k = hd_tls.aff % HD_NAFF;
	struct hd_aff *a = &h->aff[k];
	struct hd_class *cls = &h->cls[c];
	bool global = false;
	struct hd_run *run, *tmp;
	uintptr_t p;

	hd_aff_lock(a);
	run = a->cur[c];
	if (likely(hd_run_has_free(run)))
		goto pop;
	hd_aff_unlock(a);
	hd_lfh_lock_shared(h, flags);
	if (!cls->active)
		return hd_small_alloc_slow(h, n, flags);
	global = true;
	for (;;) {
		hd_aff_lock(a);
		run = a->cur[c];
		if (hd_run_has_free(run))
			goto pop;
		if (run != &hd_dummy_run) {
			if (hd_run_regrow(h, run))
				goto pop;
			a->cur[c] = &hd_dummy_run;
			atomic_store_explicit(&run->aff, HD_AFF_NONE,
					      memory_order_relaxed);
			hd_run_state(run, HD_RUN_FULL);
		}
		hd_aff_unlock(a);
		/* The heap's own current run first, then the class's. */
		tmp = h->cur[c];
		h->cur[c] = &hd_dummy_run;
		if (tmp == &hd_dummy_run && !cls->partial && !cls->empty &&
		    hd_lock_busy(&h->lock) && !hd_lock_held(&h->lock))
			tmp = hd_aff_steal(h, c, k);
		if (!hd_refill(h, c, flags, &tmp)) {
			hd_unlock(&h->lfh_lock);
			return NULL;
		}
		hd_aff_lock(a);
		if (a->cur[c] == &hd_dummy_run) {
			a->cur[c] = tmp;
			atomic_store_explicit(&tmp->aff, (uint8_t)k,
					      memory_order_relaxed);
			/*
			 * Current: frees into it need no more than the slot's
			 * lock, except the one that empties a run of a class
			 * of 4 KiB or more (hd_aff_free_empty()).
			 */
			run = tmp;
			goto pop;
		}
		/* Another thread of the slot installed one meanwhile. */
		hd_aff_unlock(a);
		hd_partial_add(cls, tmp);
	}
pop:
	p = run->free;
	run->free = hd_rdlink(h, p);
	run->used++;
	*(uint64_t *)(p - 8) = (run->hbusy | (uint64_t)n << 24) ^
			       hd_key(h, p - 8);
	hd_aff_unlock(a);
	if (global)
		hd_unlock(&h->lfh_lock);
	if (flags & HEAPDEV_ZERO)
		memset((void *)p, 0, n);
	return (void *)p;
}

/* Take slot @a's lock unless @flags has HEAP_NO_SERIALIZE. */
static void hd_aff_lock_flags(struct hd_aff *a, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_aff_lock(a);
}

static void hd_aff_unlock_flags(struct hd_aff *a, uint32_t flags)
{
	if (!(flags & HEAPDEV_NO_SERIALIZE))
		hd_aff_unlock(a);
}

/* Take every affinity slot's lock (shared heaps; LFH lock held). */
void hd_aff_lock_all(struct hd_heap *h, uint32_t flags)
{
	unsigned int k;

	for (k = 0; k < HD_NAFF; k++)
		hd_aff_lock_flags(&h->aff[k], flags);
}

void hd_aff_unlock_all(struct hd_heap *h, uint32_t flags)
{
	unsigned int k;

	for (k = HD_NAFF; k-- > 0;)
		hd_aff_unlock_flags(&h->aff[k], flags);
}

/*
 * A free slot of @run failed its check: report it (this may end the
 * process) and stop allocating from the run's free list and never-used
 * slots.  Blocks in use can still be freed into it.
 */
void hd_small_corrupt_run(struct hd_heap *h, struct hd_run *run, uintptr_t p,
			  const char *what)
{
	hd_corrupt(h, (void *)p, what);
	run->free = run->first + run->span;
	run->bump = run->nslots;
}

/**
 * hd_small_check() - whether @p is a live slot of @run
 * @h: the heap (LFH lock held)
 * @run: the run covering @p
 * @p: user address
 * @n: out: the requested size
 *
 * Return: 0 or -EINVAL.
 */
int hd_small_check(const struct hd_heap *h, const struct hd_run *run,
		   uintptr_t p, size_t *n)
{
	uintptr_t d = p - run->first;
	uint64_t w;

	if (d >= run->span || run->state == HD_RUN_DEAD)
		return -EINVAL;
	if (((d * run->recip) >> 32) * run->stride != d ||
	    ((d * run->recip) >> 32) >= run->bump)
		return -EINVAL;
	w = hd_rd(h, p - 8);
	if (!hd_sbusy_is(w, run->hbusy))
		return -EINVAL;
	*n = hd_ssize(w);
	return *n + 8 <= run->stride ? 0 : -EINVAL;
}

/*
 * Release @run, empty and in no list, slot or current run: invisible to
 * allocations from now on.  Called with the LFH lock held; returns with
 * it released.  The release needs the heap lock, taken first.
 */
static void hd_run_release_empty(struct hd_heap *h, struct hd_run *run,
				 uint32_t flags)
{
	hd_run_state(run, HD_RUN_EMPTY);
	hd_unlock_lfh(h, flags);
	hd_lock_main(h, flags);
	hd_lock_lfh(h, flags);
	if (run->state == HD_RUN_EMPTY && !run->used)
		hd_run_release(h, run);
	hd_unlock_lfh(h, flags);
	hd_unlock_main(h, flags);
}

/*
 * After a free into a run that is not the current one: a full run becomes
 * partial; an empty run of a class below 1 KiB is cached (see above), or
 * released.  Called
 * with the LFH lock held; returns with it released.
 */
int hd_small_free_slow(struct hd_heap *h, struct hd_run *run, uint32_t flags)
{
	struct hd_class *cls = &h->cls[run->cls];

	/* The current run of a class of 4 KiB or more emptied: release it. */
	if (run->state == HD_RUN_CURRENT) {
		if (run->used || h->cur[run->cls] != run) {
			hd_unlock_lfh(h, flags);
			return 0;
		}
		h->cur[run->cls] = &hd_dummy_run;
		goto release;
	}
	if (run->state == HD_RUN_FULL) {
		hd_partial_add(cls, run);
		if (run->used) {
			hd_unlock_lfh(h, flags);
			return 0;
		}
	}
	if (run->used || run->state != HD_RUN_PARTIAL) {
		hd_unlock_lfh(h, flags);
		return 0;
	}
	hd_partial_del(cls, run);
	if (cls->stride < HD_EMPTY_CACHE_MAX &&
	    (!cls->empty ||
	     h->empty_bytes + run->bytes <= HD_EMPTY_CACHE_BYTES)) {
		hd_run_state(run, HD_RUN_CACHED);
		run->next = cls->empty;
		cls->empty = run;
		h->empty_bytes += run->bytes;
		hd_unlock_lfh(h, flags);
		return 0;
	}
release:
	hd_run_release_empty(h, run, flags);
	return 0;
}

/*
 * The last free of @run, the current run of class 4 KiB or more of
 * affinity slot @k, emptied it; the slot's lock is held (and released
 * here), not the LFH lock.  Release the run as the heap's own current run
 * would be when the LFH lock is free; otherwise leave it to the slot (its
 * next allocation of the class uses it, HeapCompact releases it).
 */
void hd_aff_free_empty(struct hd_heap *h, struct hd_run *run, unsigned int k,
		       uint32_t flags)
{
	struct hd_aff *a = &h->aff[k];

	/* A try: the lock order is LFH lock, then slot locks. */
	if (!hd_lfh_trylock(h)) {
		hd_aff_unlock(a);
		return;
	}
	a->cur[run->cls] = &hd_dummy_run;
	atomic_store_explicit(&run->aff, HD_AFF_NONE, memory_order_relaxed);
	hd_aff_unlock(a);
	hd_run_release_empty(h, run, flags);
}

/*
 * Bytes and number of the blocks in use in LFH runs (both locks held).
 * Counted on demand rather than on every allocation: only HeapSummary and
 * heapdev_get_info need them.
 */
void hd_small_usage(struct hd_heap *h, size_t *bytes, size_t *blocks)
{
	struct hd_span *sp;
	size_t g, i;

	*bytes = *blocks = 0;
	for (sp = h->segs; sp; sp = sp->next) {
		struct hd_seg *s = (struct hd_seg *)sp;

		for (g = 0; s->gtab && g < (sp->size >> HD_GRANULE_SHIFT);
		     g++) {
			struct hd_run *run = s->gtab[g];

			if (run == &hd_dummy_run || run->first - 16 !=
			    sp->base + (g << HD_GRANULE_SHIFT))
				continue;
			for (i = 0; i < run->bump; i++) {
				uintptr_t p = run->first + i * run->stride;
				uint64_t w = hd_rd(h, p - 8);

				if (!hd_sbusy_is(w, run->hbusy))
					continue;
				*bytes += hd_ssize(w);
				(*blocks)++;
			}
		}
	}
}

/*
 * Release every run without a block in use: the cached empty runs, empty
 * partial runs and empty current runs (heap lock held; HeapCompact).
 */
void hd_small_trim(struct hd_heap *h, uint32_t flags)
{
	unsigned int c, k;

	hd_lock_lfh(h, flags);
	for (c = 0; c < HD_NCLASS; c++) {
		struct hd_class *cls = &h->cls[c];
		struct hd_run *run, *next;

		while (cls->empty) {
			run = cls->empty;
			cls->empty = run->next;
			h->empty_bytes -= run->bytes;
			hd_run_release(h, run);
		}
		for (run = cls->partial; run; run = next) {
			next = run->next;
			if (run->used)
				continue;
			hd_partial_del(cls, run);
			hd_run_release(h, run);
		}
		run = h->cur[c];
		if (run != &hd_dummy_run && !run->used) {
			h->cur[c] = &hd_dummy_run;
			hd_run_release(h, run);
		}
		/*
		 * Slots of a heap that was shared; with HEAP_NO_SERIALIZE
		 * the caller says that no other thread uses it now.
		 */
		for (k = 0; k < HD_NAFF; k++) {
			struct hd_aff *a = &h->aff[k];

			hd_aff_lock_flags(a, flags);
			run = a->cur[c];
			if (run == &hd_dummy_run || run->used) {
				hd_aff_unlock_flags(a, flags);
				continue;
			}
			a->cur[c] = &hd_dummy_run;
			atomic_store_explicit(&run->aff, HD_AFF_NONE,
					      memory_order_relaxed);
			hd_run_state(run, HD_RUN_EMPTY);
			hd_aff_unlock_flags(a, flags);
			hd_run_release(h, run);
		}
	}
	hd_unlock_lfh(h, flags);
}
