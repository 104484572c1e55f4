// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: medium blocks, a two-level segregated fit (TLSF) allocator.
 *
 * Free blocks sit on doubly-linked lists, one per size bin: 16 linear bins
 * of 16 bytes below 256 bytes, then 16 bins per power of two (at most 6.25%
 * rounding).  A search rounds the request up to the next bin boundary, so
 * that the first block of any non-empty bin at or above it fits (good fit,
 * O(1) with two bit scans).  Freed blocks coalesce at once with free
 * neighbours through the boundary tags (HD_F_PREV_FREE and the footer).
 *
 * Free-list links are stored XOR-encoded with a per-heap secret and their
 * own address, and checked (aligned, inside a segment of the heap,
 * committed, pointing at a free block) before they are followed: a
 * use-after-free write is reported as corruption instead of steering the
 * allocator.
 *
 * Decommit policy: when the heap's free committed bytes exceed
 * max(HD_DECOMMIT_SLACK, 1/16 of its committed bytes), the largest free blocks
 * give their whole pages back (only blocks with at least HD_DECOMMIT_BLOCK
 * of them) until half of that limit is reached.  In between nothing
 * happens, so a heap that oscillates does not commit and decommit the same
 * pages over and over.
 */
#include <errno.h>

#include "medium.h"

static void hd_mapping(size_t size, unsigned int *fl, unsigned int *sl)
{
	unsigned int m;

	if (size < (1U << (HD_SL_SHIFT + 4))) {
		*fl = 0;
		*sl = (unsigned int)(size >> 4);
		return;
	}
	m = 63 - __builtin_clzll(size);
	*fl = m - (HD_SL_SHIFT + 4) + 1;
	*sl = (unsigned int)(size >> (m - HD_SL_SHIFT)) ^ HD_SL;
}

/*
 * The free bytes the heap may keep committed: proportional to the heap,
 * so that a small heap does not keep several times its live memory.
 */
size_t hd_medium_slack(const struct hd_mheap *h)
{
	size_t slack = h->c->bh.committed / 16;

	return slack > HD_DECOMMIT_SLACK ? slack : HD_DECOMMIT_SLACK;
}

/*
 * The heap keeps more free committed memory than its slack.  An excess of
 * more than HD_TRIM_NOW slacks above what the last trim could not give
 * back (free blocks too small to hold whole pages: @trim_floor) is
 * decommitted at once when the heap's free memory is above HD_DECOMMIT_NOW
 * (a heap that shrank), at most every HD_TRIM_GAP; a smaller one (more
 * than a slack) only once it has lasted HD_DECOMMIT_DELAY, so that
 * a heap whose free memory swings around the slack does not commit and
 * decommit the same pages over and over, and a heap whose free memory is
 * in small pieces does not scan for pages on every free.
 */
#define HD_TRIM_NOW	4	/* slacks of excess decommitted at once */
#define HD_TRIM_GAP	10000000ULL	/* ns between two trims at once */

static void hd_maybe_trim(struct hd_mheap *h)
{
	size_t slack = hd_medium_slack(h), over = h->trim_floor + slack;
	uint64_t now;

	if (h->free_bytes <= over)
		return;
	now = hd_now();
	if (h->free_bytes <= over + HD_TRIM_NOW * slack ||
	    h->free_bytes <= HD_DECOMMIT_NOW ||
	    now - h->trim_last < HD_TRIM_GAP) {
		if (!h->trim_since) {
			h->trim_since = now;
			return;
		}
		if (now - h->trim_since < HD_DECOMMIT_DELAY)
			return;
	}
	h->trim_since = 0;
	h->trim_last = now;
	hd_medium_trim(h, false);
	h->trim_floor = h->free_bytes > slack / 2 ? h->free_bytes - slack / 2 :
			0;
}

/* Whether @x can be a free block of @h (before following a link to it). */
bool hd_free_block_ok(const struct hd_mheap *h, uintptr_t x)
{
	struct hd_seg *s;

	if (x & 15)
		return false;
	s = hd_seg_of(h, x);
	if (!s || x < s->area || x + HD_MIN_BLOCK > s->end ||
	    !hd_seg_committed(s, x))
		return false;
	return hd_w0_kind(hd_rd(h->c, x)) == HD_K_MFREE;
}

/*
 * Whether the free block at @b of segment @s (taken from a free list, or
 * found after a block) is intact: header, word 1, a size that stays inside
 * the segment, and the footer.  A block whose header an overflow or a
 * write after free damaged is never split, merged or decommitted on the
 * strength of its size field.  Return: its size, or 0.
 */
static size_t hd_free_intact(const struct hd_mheap *h, const struct hd_seg *s,
			     uintptr_t b)
{
	uint64_t w;
	size_t size;

	if (!s || (b & 15) || b < s->area || b + HD_MIN_BLOCK > s->end ||
	    !hd_seg_committed(s, b))
		return 0;
	w = hd_rd(h->c, b);
	size = hd_w0_size(w);
	if (!hd_w0_ok(w) || hd_w0_kind(w) != HD_K_MFREE ||
	    size < HD_MIN_BLOCK || size > s->end - b ||
	    hd_rd(h->c, b + 8) != HD_FREE_W1 ||
	    !hd_seg_committed(s, b + size - 8) ||
	    hd_rd(h->c, b + size - 8) != hd_w0(HD_K_FOOT, 0, size))
		return 0;
	return size;
}

void hd_tlsf_insert(struct hd_mheap *h, uintptr_t b, size_t size)
{
	unsigned int fl, sl;
	uintptr_t head;

	hd_mapping(size, &fl, &sl);
	head = h->bins[fl][sl];
	hd_wrlink(h->c, b + 16, head);
	hd_wrlink(h->c, b + 24, 0);
	if (head)
		hd_wrlink(h->c, head + 24, b);
	h->bins[fl][sl] = b;
	h->sl_map[fl] |= 1U << sl;
	h->fl_map |= 1ULL << fl;
	h->free_bytes += size;
}

/* A free list is corrupted: report it and drop the whole list. */
static HD_COLD void hd_tlsf_corrupt(struct hd_mheap *h, unsigned int fl,
				    unsigned int sl, uintptr_t b)
{
	hd_corrupt(h->c->handle, (void *)(b + HD_HDR), "corrupted free-list link");
	h->bins[fl][sl] = 0;
	h->sl_map[fl] &= ~(1U << sl);
	if (!h->sl_map[fl])
		h->fl_map &= ~(1ULL << fl);
}

void hd_tlsf_remove(struct hd_mheap *h, uintptr_t b, size_t size)
{
	uintptr_t next = hd_rdlink(h->c, b + 16), prev = hd_rdlink(h->c, b + 24);
	unsigned int fl, sl;

	hd_mapping(size, &fl, &sl);
	h->free_bytes -= size;
	if ((next && !hd_free_block_ok(h, next)) ||
	    (prev && !hd_free_block_ok(h, prev)) ||
	    (!prev && h->bins[fl][sl] != b)) {
		hd_tlsf_corrupt(h, fl, sl, b);
		return;
	}
	if (next)
		hd_wrlink(h->c, next + 24, prev);
	if (prev) {
		hd_wrlink(h->c, prev + 16, next);
		return;
	}
	h->bins[fl][sl] = next;
	if (!next) {
		h->sl_map[fl] &= ~(1U << sl);
		if (!h->sl_map[fl])
			h->fl_map &= ~(1ULL << fl);
	}
}

/*
 * The free block at @b (@size bytes, on its list) loses its first bytes to
 * the busy block before it and becomes @nb (@nsize bytes, same end): when
 * both sizes map to the same bin, its list links move to @nb and the list
 * keeps its order, which is cheaper than a remove and an insert.  Reads
 * the links before it writes any (@nb may be as close as @b + 16); the
 * caller writes @nb's header afterwards.  Return: false when the bins
 * differ (nothing done).
 */
static bool hd_tlsf_shift(struct hd_mheap *h, uintptr_t b, size_t size,
			  uintptr_t nb, size_t nsize)
{
	unsigned int fl, sl, nfl, nsl;
	uintptr_t next, prev;

	hd_mapping(size, &fl, &sl);
	hd_mapping(nsize, &nfl, &nsl);
	if (fl != nfl || sl != nsl)
		return false;
	next = hd_rdlink(h->c, b + 16);
	prev = hd_rdlink(h->c, b + 24);
	if ((next && !hd_free_block_ok(h, next)) ||
	    (prev && !hd_free_block_ok(h, prev)) ||
	    (!prev && h->bins[fl][sl] != b)) {
		h->free_bytes -= size;
		hd_tlsf_corrupt(h, fl, sl, b);
		hd_tlsf_insert(h, nb, nsize);
		return true;
	}
	hd_wrlink(h->c, nb + 16, next);
	hd_wrlink(h->c, nb + 24, prev);
	if (next)
		hd_wrlink(h->c, next + 24, nb);
	if (prev)
		hd_wrlink(h->c, prev + 16, nb);
	else
		h->bins[fl][sl] = nb;
	h->free_bytes -= size - nsize;
	return true;
}

/* Blocks of the request's own bin examined when no larger bin has one. */
#define HD_EXACT_SCAN	16

/*
 * A candidate free block of at least @size bytes, or 0, and the bin it is
 * on: the first block of the first non-empty bin above the request's bin
 * (good fit, O(1)), else one that fits among the first blocks of the
 * request's own bin.
 */
static uintptr_t hd_tlsf_pick(struct hd_mheap *h, size_t size,
			      unsigned int *flp, unsigned int *slp)
{
	unsigned int fl, sl, m, i;
	size_t rounded = size;
	uint32_t sl_map;
	uint64_t fl_map;
	uintptr_t b;

	if (size >= (1U << (HD_SL_SHIFT + 4))) {
		m = 63 - __builtin_clzll(size);
		rounded += (1ULL << (m - HD_SL_SHIFT)) - 1;
	}
	hd_mapping(rounded, &fl, &sl);
	if (fl < HD_FL) {
		sl_map = h->sl_map[fl] & (~0U << sl);
		fl_map = h->fl_map & (~0ULL << (fl + 1));
		if (sl_map || fl_map) {
			if (!sl_map) {
				fl = __builtin_ctzll(fl_map);
				sl_map = h->sl_map[fl];
			}
			*flp = fl;
			*slp = __builtin_ctz(sl_map);
			return h->bins[fl][*slp];
		}
	}
	if (rounded == size)
		return 0;
	hd_mapping(size, &fl, &sl);
	if (fl >= HD_FL)
		return 0;
	*flp = fl;
	*slp = sl;
	b = h->bins[fl][sl];
	for (i = 0; b && i < HD_EXACT_SCAN; i++) {
		if (!hd_free_block_ok(h, b))
			return b;	/* reported by the caller */
		if (hd_w0_size(hd_rd(h->c, b)) >= size)
			return b;
		b = hd_rdlink(h->c, b + 16);
	}
	return 0;
}

/*
 * An intact free block of at least @size bytes, or 0.  A candidate that
 * fails hd_free_intact() (an overflow or a write after free reached it)
 * is reported and its whole bin dropped, then the search starts again;
 * every round empties a bin, so this ends.
 */
static uintptr_t hd_tlsf_find(struct hd_mheap *h, size_t size)
{
	unsigned int fl, sl;
	uintptr_t b;
	size_t got;

	for (;;) {
		b = hd_tlsf_pick(h, size, &fl, &sl);
		if (!b)
			return 0;
		got = hd_free_intact(h, hd_seg_of(h, b), b);
		if (got >= size)
			return b;
		if (!got)
			hd_tlsf_corrupt(h, fl, sl, b);
		else
			return 0;	/* intact but too small: cannot be */
	}
}

/* Set and clear HD_F_PREV_* flags in the header at @b. */
void hd_set_prev(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
		 unsigned int set, unsigned int clear)
{
	uint64_t w;

	if (b >= s->end)
		return;
	w = hd_rd(h->c, b);
	hd_wr(h->c, b, (w | set) & ~(uint64_t)clear);
}

/*
 * Turn [b, b + size) into a free block on the free lists and tell the next
 * block.  @flags: HD_F_PREV_GAP when a gap precedes it.
 */
void hd_make_free(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
		  size_t size, unsigned int flags)
{
	hd_wr(h->c, b, hd_w0(HD_K_MFREE, flags & HD_F_PREV_GAP, size));
	hd_wr(h->c, b + 8, HD_FREE_W1);
	hd_wr(h->c, b + size - 8, hd_w0(HD_K_FOOT, 0, size));
	hd_tlsf_insert(h, b, size);
	hd_set_prev(h, s, b + size, HD_F_PREV_FREE, HD_F_PREV_GAP);
}

/* A header that ends up inside a larger free block must not decode. */
static void hd_wipe(uintptr_t b)
{
	((uint64_t *)b)[0] = 0;
	((uint64_t *)b)[1] = 0;
}

/*
 * Merge [b, b + *size) with a free block before and after it, taking them
 * off the free lists.  Return: the start of the merged range; *size and
 * *flags describe it.
 */
uintptr_t hd_free_coalesce(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
			   size_t *size, unsigned int *flags)
{
	uintptr_t next;

	if (*flags & HD_F_PREV_FREE) {
		uint64_t foot = hd_rd(h->c, b - 8), pw = 0;
		size_t psize = hd_w0_size(foot);
		uintptr_t p = b - psize;
		bool ok = hd_w0_ok(foot) && hd_w0_kind(foot) == HD_K_FOOT &&
			  psize >= HD_MIN_BLOCK && p >= s->area &&
			  hd_seg_committed(s, p);

		if (ok) {
			pw = hd_rd(h->c, p);
			ok = hd_w0_kind(pw) == HD_K_MFREE &&
			     hd_w0_size(pw) == psize;
		}
		if (!ok) {
			hd_corrupt(h->c->handle, (void *)(b + HD_HDR),
				   "corrupted footer of the previous block");
		} else {
			hd_tlsf_remove(h, p, psize);
			hd_wipe(b);
			b = p;
			*size += psize;
			*flags = hd_w0_flags(pw);
		}
	}
	*flags &= ~HD_F_PREV_FREE;
	next = b + *size;
	if (next < s->end) {
		size_t nsize = hd_free_intact(h, s, next);

		if (nsize) {
			hd_tlsf_remove(h, next, nsize);
			hd_wipe(next);
			*size += nsize;
		}
	}
	return b;
}

/* The header address of an aligned block of @bsize bytes inside @b. */
static uintptr_t hd_align_in(uintptr_t b, size_t align)
{
	uintptr_t x = ((b + HD_HDR + align - 1) & ~(align - 1)) - HD_HDR;

	if (x != b && x - b < HD_MIN_BLOCK)
		x += align;
	return x;
}

/*
 * A free block of the bin of @bsize that holds a block of @bsize bytes
 * whose user address is @align-aligned, or 0: the hole an LFH run left
 * behind fits the next run of that size, while hd_tlsf_find() would ask
 * for @align more bytes.  Looks at the first HD_EXACT_SCAN blocks only.
 */
static uintptr_t hd_tlsf_find_aligned(struct hd_mheap *h, size_t bsize,
				      size_t align)
{
	unsigned int fl, sl, i;
	uintptr_t b;

	hd_mapping(bsize, &fl, &sl);
	if (fl >= HD_FL)
		return 0;
	b = h->bins[fl][sl];
	for (i = 0; b && i < HD_EXACT_SCAN; i++) {
		size_t got = hd_free_intact(h, hd_seg_of(h, b), b);

		if (!got)
			return 0;	/* hd_tlsf_find() will report it */
		if (hd_align_in(b, align) + bsize <= b + got)
			return b;
		b = hd_rdlink(h->c, b + 16);
		if (b && !hd_free_block_ok(h, b))
			return 0;
	}
	return 0;
}

/*
 * Split a free block just taken off the lists: keep @bsize bytes at @b
 * (header written by the caller), give the rest back when it can be a
 * block of its own.  Return: the block's final size.
 */
static size_t hd_split(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
		       size_t size, size_t bsize)
{
	if (size - bsize >= HD_MIN_BLOCK) {
		hd_wr(h->c, b + bsize, hd_w0(HD_K_MFREE, 0, size - bsize));
		hd_make_free(h, s, b + bsize, size - bsize, 0);
		return bsize;
	}
	hd_set_prev(h, s, b + size, 0, HD_F_PREV_FREE);
	return size;
}

/*
 * A block of @s was taken off the free lists: the segment's count and the
 * trim bookkeeping follow.
 */
static void hd_block_taken(struct hd_mheap *h, struct hd_seg *s)
{
	s->nbusy++;
	if (h->trim_since && h->free_bytes <= hd_medium_slack(h))
		h->trim_since = 0;
	if (h->trim_floor > h->free_bytes)
		h->trim_floor = h->free_bytes;
}

/**
 * hd_medium_alloc_block() - take a block out of the free lists
 * @h: the heap (lock held)
 * @bsize: block size, a multiple of 16, at least HD_MIN_BLOCK
 * @align: 0, or the alignment of the block's user address
 * @kind: HD_K_MBUSY or HD_K_RUN, written into word 0
 * @segp: out: the segment of the block
 *
 * Grows the heap when no free block fits.  Return: the header address, or
 * 0 when the heap cannot provide the block.
 */
uintptr_t hd_medium_alloc_block(struct hd_mheap *h, size_t bsize, size_t align,
				unsigned int kind, struct hd_seg **segp)
{
	size_t need = align ? bsize + align + HD_MIN_BLOCK : bsize, size;
	unsigned int flags;
	struct hd_seg *s;
	uintptr_t b = 0;
	uint64_t w;

	if (align)
		b = hd_tlsf_find_aligned(h, bsize, align);
	if (!b)
		b = hd_tlsf_find(h, need);
	if (!b) {
		if (hd_grow(h, need))
			return 0;
		b = hd_tlsf_find(h, need);
		if (!b)
			return 0;
	}
	s = hd_seg_of(h, b);
	w = hd_rd(h->c, b);
	size = hd_w0_size(w);
	flags = hd_w0_flags(w);
	hd_tlsf_remove(h, b, size);
	if (align) {
		uintptr_t x = hd_align_in(b, align);

		if (x != b) {
			hd_wr(h->c, b, hd_w0(HD_K_MFREE, flags, x - b));
			hd_wr(h->c, b + 8, HD_FREE_W1);
			hd_wr(h->c, x - 8, hd_w0(HD_K_FOOT, 0, x - b));
			hd_tlsf_insert(h, b, x - b);
			size -= x - b;
			b = x;
			flags = HD_F_PREV_FREE;
		}
	}
	size = hd_split(h, s, b, size, bsize);
	hd_wr(h->c, b, hd_w0(kind, flags, size));
	hd_block_taken(h, s);
	*segp = s;
	return b;
}

/* Medium block size for a request of @n bytes. */
static size_t hd_bsize(size_t n)
{
	size_t b = (n + HD_HDR + 15) & ~(size_t)15;

	return b < HD_MIN_BLOCK ? HD_MIN_BLOCK : b;
}

/*
 * A medium block of @n bytes whose address is a multiple of @align (0 or
 * a power of two above 16; the free space in front of an aligned block
 * stays a free block).  Return: the block or NULL.
 */
void *hd_medium_alloc(struct hd_mheap *h, size_t n, size_t align,
		      uint32_t flags)
{
	struct hd_seg *s;
	uintptr_t b;

	b = hd_medium_alloc_block(h, hd_bsize(n), align, HD_K_MBUSY, &s);
	if (!b)
		return NULL;
	hd_wr(h->c, b + 8, hd_w1(n));
	h->bytes += n;
	h->blocks++;
	if (flags & HEAPDEV_ZERO)
		memset((void *)(b + HD_HDR), 0, n);
	return (void *)(b + HD_HDR);
}

/*
 * Give a busy block (medium or run) back to the free lists, coalescing,
 * and apply the decommit policy.
 */
void hd_medium_release_block(struct hd_mheap *h, struct hd_seg *s, uintptr_t b)
{
	uint64_t w = hd_rd(h->c, b);
	size_t size = hd_w0_size(w);
	unsigned int flags = hd_w0_flags(w);

	b = hd_free_coalesce(h, s, b, &size, &flags);
	hd_make_free(h, s, b, size, flags);
	s->nbusy--;
	if (unlikely(h->free_bytes > hd_medium_slack(h)))
		hd_maybe_trim(h);
	if (unlikely(!s->nbusy) && &s->sp != h->segs)
		hd_release_empty_segments(h, false);
}

/**
 * hd_medium_check() - whether @p is a live medium block of segment @s
 * @h: the heap (lock held)
 * @s: the segment holding @p
 * @p: user address
 * @n: out: the requested size
 *
 * Reads only committed memory.  Return: 0 or -EINVAL.
 */
int hd_medium_check(const struct hd_mheap *h, struct hd_seg *s, uintptr_t p,
		    size_t *n)
{
	uintptr_t b = p - HD_HDR;
	uint64_t w, w1;
	size_t size;

	if ((p & 15) || b < s->area || b + HD_MIN_BLOCK > s->end ||
	    !hd_seg_committed(s, b))
		return -EINVAL;
	w = hd_rd(h->c, b);
	size = hd_w0_size(w);
	if (!hd_w0_ok(w) || hd_w0_kind(w) != HD_K_MBUSY ||
	    size < HD_MIN_BLOCK || size > s->end - b)
		return -EINVAL;
	w1 = hd_rd(h->c, b + 8);
	if ((w1 >> 40) != HD_MAGIC2 || (w1 & ((1ULL << 40) - 1)) + HD_HDR >
	    size || size - HD_HDR - (w1 & ((1ULL << 40) - 1)) >= HD_UNUSED_MAX)
		return -EINVAL;
	*n = hd_w1_size(w1);
	return 0;
}

/* Free a checked medium block (lock held). */
void hd_medium_free(struct hd_mheap *h, struct hd_seg *s, uintptr_t p)
{
	size_t n = hd_w1_size(hd_rd(h->c, p - 8));

	h->bytes -= n;
	h->blocks--;
	hd_medium_release_block(h, s, p - HD_HDR);
}

/* Make the block after @b a free block if it is the start of a gap. */
static void hd_commit_after(struct hd_mheap *h, struct hd_seg *s,
			    uintptr_t next, size_t want)
{
	struct hd_gap *g;
	size_t bytes;

	if (next >= s->end || hd_w0_kind(hd_rd(h->c, next)) != HD_K_GAP)
		return;
	g = hd_gap_find(s, next);
	if (!g)
		return;
	bytes = (want + HD_PAGE - 1) & ~(HD_PAGE - 1);
	hd_commit_gap(h, s, g, bytes);
}

/*
 * Shrink the busy block at @b to @bsize bytes (at most its size): the rest,
 * when it can be a block of its own, becomes free and merges with a free
 * block after it.
 */
static void hd_shrink_block(struct hd_mheap *h, struct hd_seg *s, uintptr_t b,
			    size_t bsize)
{
	uint64_t w = hd_rd(h->c, b);
	size_t rem = hd_w0_size(w) - bsize;
	unsigned int f = 0;
	uintptr_t r;

	if (rem < HD_MIN_BLOCK)
		return;
	hd_wr(h->c, b, hd_w0(HD_K_MBUSY, hd_w0_flags(w), bsize));
	hd_wr(h->c, b + bsize, hd_w0(HD_K_MFREE, 0, rem));
	r = hd_free_coalesce(h, s, b + bsize, &rem, &f);
	hd_make_free(h, s, r, rem, f);
}

/*
 * Resize the block at @b in place to @bsize bytes, using the free block
 * (and the uncommitted pages) after it; a block that grows takes @slack
 * bytes more when the free block leaves a block of its own after that, so
 * that the next small growth happens inside it (the unused bytes of a busy
 * block stay below HD_UNUSED_MAX, which hd_medium_check() allows).
 * Return: true on success.
 */
static bool hd_resize_in_place(struct hd_mheap *h, struct hd_seg *s,
			       uintptr_t b, size_t bsize, size_t slack)
{
	uint64_t w = hd_rd(h->c, b);
	size_t size = hd_w0_size(w), nsize = 0, rem;
	uintptr_t next = b + size;

	if (bsize <= size) {
		if (!slack)
			hd_shrink_block(h, s, b, bsize);
		return true;
	}
	hd_commit_after(h, s, next, bsize + slack - size);
	if (next < s->end) {
		nsize = hd_free_intact(h, s, next);
		if (nsize && size + nsize < bsize) {
			hd_commit_after(h, s, next + nsize,
					bsize - size - nsize);
			nsize = hd_free_intact(h, s, next);
		}
	}
	if (!nsize || size + nsize < bsize)
		return false;
	rem = size + nsize - bsize;
	if (rem >= slack + HD_MIN_BLOCK) {
		bsize += slack;
		rem -= slack;
	}
	if (rem >= HD_MIN_BLOCK &&
	    hd_tlsf_shift(h, next, nsize, b + bsize, rem)) {
		/* as below, but the free block only moves up */
		memset((void *)next, 0, bsize - size < 32 ? bsize - size : 32);
		hd_wr(h->c, b + bsize, hd_w0(HD_K_MFREE, 0, rem));
		hd_wr(h->c, b + bsize + 8, HD_FREE_W1);
		hd_wr(h->c, next + nsize - 8, hd_w0(HD_K_FOOT, 0, rem));
		hd_wr(h->c, b, hd_w0(HD_K_MBUSY, hd_w0_flags(w), bsize));
		return true;
	}
	hd_tlsf_remove(h, next, nsize);
	/*
	 * The free block becomes part of a busy one: its header, links and
	 * footer must neither decode nor show the caller encoded values.
	 */
	memset((void *)next, 0, 32);
	((uint64_t *)(next + nsize))[-1] = 0;
	size = hd_split(h, s, b, size + nsize, bsize);
	hd_wr(h->c, b, hd_w0(HD_K_MBUSY, hd_w0_flags(w), size));
	return true;
}

/**
 * hd_medium_realloc() - resize a checked medium block in place
 * @h: the heap (lock held)
 * @s: its segment
 * @p: the block
 * @n: new size
 *
 * Return: @p, or NULL (the block cannot be resized in place and is
 * unchanged; the caller may move it).
 */
void *hd_medium_realloc(struct hd_mheap *h, struct hd_seg *s, uintptr_t p,
			size_t n)
{
	uintptr_t b = p - HD_HDR;
	size_t old = hd_w1_size(hd_rd(h->c, b + 8));

	if ((!h->c->fixed && n >= HD_LARGE_MIN) ||
	    !hd_resize_in_place(h, s, b, hd_bsize(n),
				n > old ? HD_GROW_SLACK : 0))
		return NULL;
	hd_wr(h->c, b + 8, hd_w1(n));
	h->bytes += n - old;
	return (void *)p;
}

/*
 * A medium block of @n bytes for a block that grows and has to move,
 * taken from the end of a free block, with @room bytes (at least
 * HD_GROW_SLACK + HD_MIN_BLOCK) after it left free, so that the next
 * growth steps happen in place (HeapSize stays @n; the room is an
 * ordinary free block, which other allocations may take).  The end, not
 * the start: the start of a free block is often the room of the block
 * before it, growing too.  Return: the block or NULL.
 */
void *hd_medium_alloc_room(struct hd_mheap *h, size_t n, size_t room)
{
	size_t need = hd_bsize(n + room), keep = hd_bsize(n) + HD_GROW_SLACK;
	size_t size, front;
	unsigned int flags;
	struct hd_seg *s;
	uintptr_t b;
	uint64_t w;

	b = hd_tlsf_find(h, need);
	if (!b) {
		/* the heap grows: the block may end next to a free block */
		b = hd_medium_alloc_block(h, need, 0, HD_K_MBUSY, &s);
		if (!b)
			return NULL;
		hd_shrink_block(h, s, b, keep);
		goto done;
	}
	s = hd_seg_of(h, b);
	w = hd_rd(h->c, b);
	size = hd_w0_size(w);
	flags = hd_w0_flags(w);
	hd_tlsf_remove(h, b, size);
	front = size - need;
	if (front >= HD_MIN_BLOCK) {
		hd_wr(h->c, b, hd_w0(HD_K_MFREE, flags, front));
		hd_wr(h->c, b + 8, HD_FREE_W1);
		hd_wr(h->c, b + front - 8, hd_w0(HD_K_FOOT, 0, front));
		hd_tlsf_insert(h, b, front);
		b += front;
		size = need;
		flags = HD_F_PREV_FREE;
	}
	hd_block_taken(h, s);
	/* a free block never ends next to another: no merge after it */
	size = hd_split(h, s, b, size, keep);
	hd_wr(h->c, b, hd_w0(HD_K_MBUSY, flags, size));
done:
	hd_wr(h->c, b + 8, hd_w1(n));
	h->bytes += n;
	h->blocks++;
	return (void *)(b + HD_HDR);
}

/*
 * Decommit whole free pages of large free blocks.  @all (HeapCompact):
 * every free page, regardless of the slack.  Otherwise down to half the
 * slack, largest blocks first.
 */
void hd_medium_trim(struct hd_mheap *h, bool all)
{
	size_t target = all ? 0 : hd_medium_slack(h) / 2;
	size_t min = all ? HD_PAGE : HD_DECOMMIT_BLOCK;
	int fl, sl;

	for (fl = HD_FL - 1; fl >= 0 && (all || h->free_bytes > target);
	     fl--) {
		if (!(h->fl_map & (1ULL << fl)))
			continue;
		for (sl = HD_SL - 1; sl >= 0; sl--) {
			uintptr_t b = h->bins[fl][sl], next;

			for (; b; b = next) {
				struct hd_seg *s = hd_seg_of(h, b);
				size_t size = hd_free_intact(h, s, b);

				if (!size) {
					hd_tlsf_corrupt(h, fl, sl, b);
					break;
				}
				next = hd_rdlink(h->c, b + 16);
				if (next && !hd_free_block_ok(h, next))
					next = 0;
				if (size < min + HD_MIN_BLOCK)
					continue;
				hd_decommit_free(h, s, b, size, min);
				if (!all && h->free_bytes <= target)
					return;
			}
		}
	}
}

/* The user size of the largest free committed medium block, or 0. */
size_t hd_largest_free(struct hd_mheap *h)
{
	size_t best = 0;
	uintptr_t b;
	int fl, sl;

	if (!h->fl_map)
		return 0;
	fl = 63 - __builtin_clzll(h->fl_map);
	for (sl = HD_SL - 1; sl >= 0; sl--) {
		for (b = h->bins[fl][sl]; b; b = hd_rdlink(h->c, b + 16)) {
			size_t size = hd_w0_size(hd_rd(h->c, b));

			if (size > best)
				best = size;
			if (hd_rdlink(h->c, b + 16) &&
			    !hd_free_block_ok(h, hd_rdlink(h->c, b + 16)))
				break;
		}
		if (best)
			break;
	}
	return best ? best - HD_HDR : 0;
}
