// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: heap walks, whole-heap validation and counters.
 *
 * A walk keeps no state outside the entry: the next entry is found from the
 * previous one (its address, kind and the sequence number of its span kept
 * in the cursor).  Blocks freed or merged between two calls do not derail
 * it: when the previous entry no longer starts a block, the segment's block
 * chain is scanned for the first block after it.
 */
#include <errno.h>

#include "heap.h"

enum { HD_CUR_REGION = 1, HD_CUR_BLOCK, HD_CUR_GAP, HD_CUR_LARGE };

#define HD_REGION_HDR	(HD_SEG_HDR - 2 * HD_HDR)

/*
 * A walk takes every lock of the heap: the layout of segments and runs
 * stays put, while the owners of runs keep allocating and freeing their
 * slots (as on Windows, where LFH blocks change under HeapLock): a slot's
 * entry is what its size entry says at the moment it is read.
 */
static void hd_walk_lock(struct hd_heap *h, uint32_t flags)
{
	hd_lock_if(&h->core.lock, flags);
	hd_lock_if(&h->s.lock, flags);
	hd_lock_if(&h->core.mlock, flags);
}

static void hd_walk_unlock(struct hd_heap *h, uint32_t flags)
{
	hd_unlock_if(&h->core.mlock, flags);
	hd_unlock_if(&h->s.lock, flags);
	hd_unlock_if(&h->core.lock, flags);
}

/* The run whose slots start at @p in its page, or NULL. */
static struct hd_run *hd_run_at(uintptr_t p)
{
	struct hd_run *run = hd_gran_run(hd_gran_of(p), p);

	return run == HD_EMPTY_RUN ? NULL : run;
}

/*
 * The region index of segment @s: its position among the heap's segments,
 * skipping HD_REGION_LARGE, the index of large blocks (as native heaps
 * report them), so that every region's index stays distinct.
 */
static uint32_t hd_region_index(const struct hd_seg *s)
{
	return s->index < HD_REGION_LARGE ? s->index : s->index + 1;
}

static int hd_emit_region(struct hd_seg *s, struct hd_walk *w)
{
	w->addr = s->sp.base;
	w->size = HD_REGION_HDR;
	w->overhead = 0;
	w->kind = HEAPDEV_WALK_REGION;
	w->region = hd_region_index(s);
	w->committed = s->committed;
	w->uncommitted = s->sp.size - s->committed;
	w->first_block = s->area;
	w->last_block = s->end;
	w->cursor[0] = s->sp.seq;
	w->cursor[1] = HD_CUR_REGION;
	return 0;
}

static int hd_emit_large(struct hd_large *lg, struct hd_walk *w)
{
	w->addr = lg->sp.base + lg->off;
	w->size = lg->n;
	w->overhead = 0;
	w->kind = HEAPDEV_WALK_LARGE;
	w->region = HD_REGION_LARGE;
	w->cursor[0] = lg->sp.seq;
	w->cursor[1] = HD_CUR_LARGE;
	return 0;
}

/* The first span after the segment with sequence number @seq. */
static int hd_emit_after_seg(struct hd_heap *h, uint64_t seq,
			     struct hd_walk *w)
{
	struct hd_span *sp;

	for (sp = h->m.segs; sp; sp = sp->next)
		if (sp->seq > seq)
			return hd_emit_region((struct hd_seg *)sp, w);
	if (h->l.larges)
		return hd_emit_large((struct hd_large *)h->l.larges, w);
	return -ENOENT;
}

/*
 * Whether busy slot @p of @run was freed by another thread (not collected
 * yet).  The word is the block's own while it is busy, and its owner may
 * be writing it: a walk reads it without synchronising, on purpose.
 */
__attribute__((no_sanitize("thread")))
static bool hd_slot_xfreed(const struct hd_run *run, uintptr_t p)
{
	return *(const volatile uint64_t *)(p + 8) == hd_xmark(run, p);
}

/* Slot @i of @run. */
static int hd_emit_slot(struct hd_seg *s, struct hd_run *run, uint32_t i,
			struct hd_walk *w)
{
	uintptr_t p = run->start + (uintptr_t)i * run->stride;
	unsigned int v = atomic_load_explicit(&run->sizes[i],
					      memory_order_relaxed);

	w->addr = p;
	if (v && v - 1 + 8 <= run->stride && !hd_slot_xfreed(run, p)) {
		w->size = v - 1;
		w->overhead = run->stride - (uint32_t)w->size;
		w->kind = HEAPDEV_WALK_BUSY;
	} else {
		w->size = run->stride - 8;
		w->overhead = 8;
		w->kind = HEAPDEV_WALK_FREE;
	}
	w->region = hd_region_index(s);
	w->cursor[0] = s->sp.seq;
	w->cursor[1] = HD_CUR_BLOCK;
	return 0;
}

/* The entry whose header is at @x in @s (or what follows the segment). */
static int hd_emit_at(struct hd_heap *h, struct hd_seg *s, uintptr_t x,
		      struct hd_walk *w)
{
	uint64_t v, v1;
	size_t size;

	if (x >= s->end)
		return hd_emit_after_seg(h, s->sp.seq, w);
	if (x < s->area || !hd_seg_committed(s, x))
		return -EINVAL;
	v = hd_rd(&h->core, x);
	size = hd_w0_size(v);
	if (!hd_w0_ok(v) || size < HD_MIN_BLOCK || size > s->end - x)
		return -EINVAL;
	w->addr = x + HD_HDR;
	w->region = hd_region_index(s);
	w->cursor[0] = s->sp.seq;
	w->cursor[1] = HD_CUR_BLOCK;
	switch (hd_w0_kind(v)) {
	case HD_K_MBUSY:
		v1 = hd_rd(&h->core, x + 8) & ((1ULL << 40) - 1);
		w->size = v1;
		w->overhead = (uint32_t)(size - HD_HDR - v1);
		w->kind = HEAPDEV_WALK_BUSY;
		return 0;
	case HD_K_MFREE:
		w->size = size >= 64 ? size - 64 : 0;
		w->overhead = 32;
		w->kind = HEAPDEV_WALK_FREE;
		return 0;
	case HD_K_GAP:
		w->size = size - HD_HDR;
		w->overhead = 0;
		w->kind = HEAPDEV_WALK_UNCOMMITTED;
		w->cursor[1] = HD_CUR_GAP;
		return 0;
	case HD_K_RUN: {
		struct hd_run *run = hd_run_at(x + HD_HDR);

		if (!run || hd_run_block(run) != x)
			return -EINVAL;
		return hd_emit_slot(s, run, 0, w);
	}
	default:
		return -EINVAL;
	}
}

/* Header address of the first block of @s starting after @x. */
static uintptr_t hd_block_after(struct hd_heap *h, struct hd_seg *s,
				uintptr_t x)
{
	uintptr_t b = s->area;

	while (b < s->end && b <= x) {
		uint64_t v;

		if (!hd_seg_committed(s, b))
			return s->end;
		v = hd_rd(&h->core, b);
		if (!hd_w0_ok(v) || hd_w0_size(v) < HD_MIN_BLOCK ||
		    hd_w0_size(v) > s->end - b)
			return s->end;
		b += hd_w0_size(v);
	}
	return b;
}

/* The entry after a block, slot or gap entry of segment @s. */
static int hd_walk_next_in_seg(struct hd_heap *h, struct hd_seg *s,
			       struct hd_walk *w)
{
	uintptr_t p = w->addr, x;
	struct hd_run *run;
	uint64_t v;

	/* A forged or stale entry that is not inside its segment. */
	if (p < s->area + HD_HDR || p > s->end)
		return -EINVAL;
	if (w->cursor[1] == HD_CUR_GAP) {
		struct hd_gap *g = hd_gap_find(s, p - HD_HDR);

		if (g)
			return hd_emit_at(h, s, g->end, w);
		return hd_emit_at(h, s, hd_block_after(h, s, p - HD_HDR), w);
	}
	run = p >= s->sp.base && p < s->end ? hd_run_at(p) : NULL;
	if (run && hd_run_index(run, p) >= 0) {
		uint32_t i = (uint32_t)hd_run_index(run, p) + 1;

		if (i < run->nslots)
			return hd_emit_slot(s, run, i, w);
		v = hd_rd(&h->core, hd_run_block(run));
		return hd_emit_at(h, s, hd_run_block(run) + hd_w0_size(v), w);
	}
	x = p - HD_HDR;
	if (x >= s->area && x < s->end && hd_seg_committed(s, x)) {
		v = hd_rd(&h->core, x);
		if (hd_w0_ok(v) && (hd_w0_kind(v) == HD_K_MBUSY ||
				    hd_w0_kind(v) == HD_K_MFREE) &&
		    hd_w0_size(v) >= HD_MIN_BLOCK &&
		    hd_w0_size(v) <= s->end - x)
			return hd_emit_at(h, s, x + hd_w0_size(v), w);
	}
	return hd_emit_at(h, s, hd_block_after(h, s, x), w);
}

static struct hd_span *hd_span_by_seq(struct hd_span *list, uint64_t seq)
{
	for (; list; list = list->next)
		if (list->seq == seq)
			return list;
	return NULL;
}

static int hd_walk_locked(struct hd_heap *h, struct hd_walk *w)
{
	struct hd_span *sp;

	if (!w->addr)
		return hd_emit_region((struct hd_seg *)h->m.segs, w);
	switch (w->cursor[1]) {
	case HD_CUR_REGION:
		sp = hd_span_of(w->addr);
		if (!sp || sp->heap != h || sp->kind == HD_SPAN_LARGE ||
		    sp->base != w->addr)
			return -EINVAL;
		return hd_emit_at(h, (struct hd_seg *)sp,
				  ((struct hd_seg *)sp)->area, w);
	case HD_CUR_BLOCK:
	case HD_CUR_GAP:
		sp = hd_span_by_seq(h->m.segs, w->cursor[0]);
		if (!sp)
			return hd_emit_after_seg(h, w->cursor[0], w);
		return hd_walk_next_in_seg(h, (struct hd_seg *)sp, w);
	case HD_CUR_LARGE:
		for (sp = h->l.larges; sp; sp = sp->next)
			if (sp->seq > w->cursor[0])
				return hd_emit_large((struct hd_large *)sp, w);
		return -ENOENT;
	default:
		return -EINVAL;
	}
}

/**
 * hd_walk() - the entry after @w (or the first one when w->addr is 0)
 * @h: the heap
 * @w: in/out
 *
 * Return: 0, -ENOENT at the end, -EINVAL for a position not in @h.
 */
int hd_walk(struct hd_heap *h, struct hd_walk *w)
{
	int err;

	hd_walk_lock(h, h->core.flags);
	err = hd_walk_locked(h, w);
	hd_walk_unlock(h, h->core.flags);
	return err;
}

/* ---- validation ---- */

struct hd_vstate {
	size_t nfree;
	size_t free_bytes;
};

static int hd_validate_run(struct hd_heap *h, uintptr_t b)
{
	struct hd_run *run = hd_run_at(b + HD_HDR);

	if (!run || hd_run_block(run) != b ||
	    atomic_load_explicit(&run->state, memory_order_relaxed) ==
	    HD_RUN_DEAD)
		return -EINVAL;
	return hd_small_validate_run(&h->s, run);
}

static int hd_validate_free(struct hd_heap *h, struct hd_seg *s, uintptr_t b,
			    size_t size)
{
	uintptr_t next = hd_rdlink(&h->core, b + 16), prev = hd_rdlink(&h->core, b + 24);

	if (!hd_seg_committed(s, b + size - 8) ||
	    hd_rd(&h->core, b + size - 8) != hd_w0(HD_K_FOOT, 0, size) ||
	    hd_rd(&h->core, b + 8) != HD_FREE_W1)
		return -EINVAL;
	if (next) {
		struct hd_seg *ns = hd_seg_of(&h->m, next);

		if ((next & 15) || !ns || next < ns->area ||
		    !hd_seg_committed(ns, next) ||
		    hd_w0_kind(hd_rd(&h->core, next)) != HD_K_MFREE ||
		    hd_rdlink(&h->core, next + 24) != b)
			return -EINVAL;
	}
	if (prev) {
		struct hd_seg *ps = hd_seg_of(&h->m, prev);

		if ((prev & 15) || !ps || prev < ps->area ||
		    !hd_seg_committed(ps, prev) ||
		    hd_w0_kind(hd_rd(&h->core, prev)) != HD_K_MFREE ||
		    hd_rdlink(&h->core, prev + 16) != b)
			return -EINVAL;
	}
	return 0;
}

/* Check the block chain of a segment against its gaps and free lists. */
static int hd_validate_seg(struct hd_heap *h, struct hd_seg *s,
			   struct hd_vstate *vs)
{
	unsigned int prev = 0, kind, need;
	uintptr_t b = s->area;
	uint32_t g = 0;

	if (!hd_seg_sig_ok(&h->m, s))
		return -EINVAL;
	while (b < s->end) {
		uint64_t v;
		size_t size;

		if (!hd_seg_committed(s, b))
			return -EINVAL;
		v = hd_rd(&h->core, b);
		size = hd_w0_size(v);
		kind = hd_w0_kind(v);
		need = prev == HD_K_MFREE ? HD_F_PREV_FREE :
		       prev == HD_K_GAP ? HD_F_PREV_GAP : 0;
		if (!hd_w0_ok(v) || (size & 15) || size < HD_MIN_BLOCK ||
		    size > s->end - b || hd_w0_flags(v) != need)
			return -EINVAL;
		switch (kind) {
		case HD_K_MBUSY: {
			uint64_t v1 = hd_rd(&h->core, b + 8);
			uint64_t n = v1 & ((1ULL << 40) - 1);

			if ((v1 >> 40) != HD_MAGIC2 || n + HD_HDR > size ||
			    size - HD_HDR - n >= HD_UNUSED_MAX)
				return -EINVAL;
			break;
		}
		case HD_K_MFREE:
			if (prev == HD_K_MFREE ||
			    hd_validate_free(h, s, b, size))
				return -EINVAL;
			vs->nfree++;
			vs->free_bytes += size;
			break;
		case HD_K_GAP:
			if (g >= s->ngaps || s->gaps[g].start != b ||
			    s->gaps[g].end != b + size ||
			    ((b + HD_HDR) & (HD_PAGE - 1)))
				return -EINVAL;
			g++;
			break;
		case HD_K_RUN:
			if (hd_validate_run(h, b))
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
		prev = kind;
		b += size;
	}
	return b == s->end && g == s->ngaps ? 0 : -EINVAL;
}

/* Every free list: well linked, right bin, as many blocks as the chains. */
static int hd_validate_lists(struct hd_heap *h, const struct hd_vstate *vs)
{
	size_t n = 0, bytes = 0;
	unsigned int fl, sl;

	for (fl = 0; fl < HD_FL; fl++) {
		for (sl = 0; sl < HD_SL; sl++) {
			uintptr_t b = h->m.bins[fl][sl], prev = 0;
			bool has = h->m.sl_map[fl] & (1U << sl);

			if (!!b != has)
				return -EINVAL;
			for (; b; prev = b, b = hd_rdlink(&h->core, b + 16)) {
				struct hd_seg *s = hd_seg_of(&h->m, b);
				size_t size;

				if (!s || b < s->area ||
				    !hd_seg_committed(s, b) ||
				    hd_w0_kind(hd_rd(&h->core, b)) != HD_K_MFREE ||
				    hd_rdlink(&h->core, b + 24) != prev ||
				    ++n > vs->nfree)
					return -EINVAL;
				size = hd_w0_size(hd_rd(&h->core, b));
				bytes += size;
			}
		}
		if (!!h->m.sl_map[fl] != !!(h->m.fl_map & (1ULL << fl)))
			return -EINVAL;
	}
	return n == vs->nfree && bytes == vs->free_bytes &&
	       bytes == h->m.free_bytes ? 0 : -EINVAL;
}

/**
 * hd_validate_heap() - check every header, free block and list of @h
 * @h: the heap
 * @flags: effective flags
 *
 * Return: 0, or -EINVAL when anything is inconsistent.  Reads only
 * committed memory, whatever the corruption.
 */
int hd_validate_heap(struct hd_heap *h, uint32_t flags)
{
	struct hd_vstate vs = { 0 };
	struct hd_span *sp;
	int err = 0;

	hd_walk_lock(h, flags);
	hd_pause(h, flags);
	for (sp = h->m.segs; sp && !err; sp = sp->next)
		err = hd_validate_seg(h, (struct hd_seg *)sp, &vs);
	if (!err)
		err = hd_validate_lists(h, &vs);
	for (sp = h->l.larges; sp && !err; sp = sp->next)
		err = hd_large_check(&h->l, (struct hd_large *)sp,
				     sp->base + ((struct hd_large *)sp)->off);
	hd_unpause(h, flags);
	hd_walk_unlock(h, flags);
	return err;
}

/* ---- counters ---- */

void hd_info(struct hd_heap *h, struct heapdev_heap_info *info)
{
	uint32_t flags = h->core.flags;
	size_t sbytes, sblocks;

	hd_walk_lock(h, flags);
	hd_pause(h, flags);
	hd_small_usage(&h->s, &sbytes, &sblocks);
	hd_unpause(h, flags);
	info->flags = flags & (HEAPDEV_NO_SERIALIZE | HEAPDEV_EXEC);
	info->backend = h->core.bh.be->kind;
	info->kernel_id = h->core.bh.id;
	info->allocated = h->m.bytes + sbytes + h->l.bytes;
	info->committed = h->core.bh.committed;
	info->reserved = h->core.reserved;
	info->maximum = h->core.fixed ? h->core.bh.window : 0;
	info->blocks = h->m.blocks + sblocks + h->l.n;
	info->segments = h->m.nsegs;
	info->large = (uint32_t)h->l.n;
	info->lfh = atomic_load_explicit(&h->s.seen, memory_order_relaxed);
	hd_walk_unlock(h, flags);
}
