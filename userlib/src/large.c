// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: large blocks of growable heaps, each in its own span.
 *
 * A request of HD_LARGE_MIN bytes or more (about 1 MiB, where Windows
 * switches to VirtualAlloc) gets its own mapping of the heap's window,
 * committed and populated at once:
 *
 *   base + 0     unused
 *   base + 48    16-byte header (kind, span size; requested size)
 *   base + 64    the block, 64-byte aligned as native large blocks are
 *
 * Freeing decommits and unmaps the span.  Shrinking in place decommits the
 * pages beyond the new size, as Windows does, so that a later
 * HEAP_REALLOC_IN_PLACE_ONLY growth past them fails; an ordinary realloc
 * may recommit them in place.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static size_t hd_large_total(size_t n)
{
	return (HD_LARGE_HDR + n + HD_PAGE - 1) & ~(HD_PAGE - 1);
}

static void hd_large_link(struct hd_heap *h, struct hd_large *lg)
{
	struct hd_span *sp = &lg->sp;

	sp->prev = h->larges_tail;
	sp->next = NULL;
	if (h->larges_tail)
		h->larges_tail->next = sp;
	else
		h->larges = sp;
	h->larges_tail = sp;
	h->nlarge++;
	h->large_bytes += lg->n;
	h->reserved += sp->size;
}

static void hd_large_unlink(struct hd_heap *h, struct hd_large *lg)
{
	struct hd_span *sp = &lg->sp;

	if (sp->prev)
		sp->prev->next = sp->next;
	else
		h->larges = sp->next;
	if (sp->next)
		sp->next->prev = sp->prev;
	else
		h->larges_tail = sp->prev;
	h->nlarge--;
	h->large_bytes -= lg->n;
	h->reserved -= sp->size;
}

/* Allocate a large block (no lock held; takes the heap lock briefly). */
void *hd_large_alloc(struct hd_heap *h, size_t n, uint32_t flags)
{
	size_t total = hd_large_total(n);
	struct hd_large *lg = hd_span_get(HD_SPAN_LARGE, sizeof(*lg));
	uintptr_t base, p;
	uint64_t woff;
	int err;

	if (!lg)
		return NULL;
	hd_lock_main(h, flags);
	err = hd_heap_ext_alloc(h, total, &woff);
	lg->sp.seq = ++h->seq;
	hd_unlock_main(h, flags);
	if (err)
		goto err_free;
	err = h->bh.be->map(&h->bh, woff, total, &base);
	if (err)
		goto err_ext;
	hd_lock_main(h, flags);
	err = hd_heap_commit(h, base, woff, total);
	hd_unlock_main(h, flags);
	if (err)
		goto err_unmap;
	lg->sp.kind = HD_SPAN_LARGE;
	lg->sp.heap = h;
	lg->sp.handle = h->handle;
	lg->sp.base = base;
	lg->sp.size = total;
	lg->sp.woff = woff;
	lg->n = n;
	lg->committed = total;
	p = base + HD_LARGE_HDR;
	hd_wr(h, p - HD_HDR, hd_w0(HD_K_LARGE, 0, total));
	hd_wr(h, p - 8, hd_w1(n));
	if (hd_pagemap_set(base, total, &lg->sp))
		goto err_decommit;
	hd_lock_main(h, flags);
	hd_large_link(h, lg);
	hd_unlock_main(h, flags);
	/* Fresh pages are zero: HEAP_ZERO_MEMORY costs nothing here. */
	return (void *)p;

err_decommit:
	hd_lock_main(h, flags);
	hd_heap_decommit(h, base, woff, total);
	hd_unlock_main(h, flags);
err_unmap:
	h->bh.be->unmap(&h->bh, base, total);
err_ext:
	hd_lock_main(h, flags);
	hd_heap_ext_free(h, woff, total);
	hd_unlock_main(h, flags);
err_free:
	lg->sp.kind = HD_SPAN_LARGE;
	hd_span_put(&lg->sp);
	return NULL;
}

/* Whether @p is the live block of span @lg (heap lock held). */
int hd_large_check(const struct hd_heap *h, struct hd_large *lg, uintptr_t p)
{
	uint64_t w0, w1;

	if (p != lg->sp.base + HD_LARGE_HDR)
		return -EINVAL;
	w0 = hd_rd(h, p - HD_HDR);
	w1 = hd_rd(h, p - 8);
	if (!hd_w0_ok(w0) || hd_w0_kind(w0) != HD_K_LARGE ||
	    hd_w0_size(w0) != lg->sp.size || w1 != hd_w1(lg->n))
		return -EINVAL;
	return 0;
}

/* Free a checked large block (heap lock held). */
void hd_large_free(struct hd_heap *h, struct hd_large *lg)
{
	hd_large_unlink(h, lg);
	hd_pagemap_clear(lg->sp.base, lg->sp.size);
	hd_heap_decommit(h, lg->sp.base, lg->sp.woff, lg->committed);
	h->bh.be->unmap(&h->bh, lg->sp.base, lg->sp.size);
	hd_heap_ext_free(h, lg->sp.woff, lg->sp.size);
	hd_span_put(&lg->sp);
}

/**
 * hd_large_realloc() - resize a checked large block in place
 * @h: the heap (lock held)
 * @lg: the block's span
 * @n: the new size
 * @flags: effective flags
 * @err: out: -ENOMEM when it cannot stay in place
 *
 * Return: the block, or NULL (unchanged).
 */
void *hd_large_realloc(struct hd_heap *h, struct hd_large *lg, size_t n,
		       uint32_t flags, int *err)
{
	size_t total = hd_large_total(n);
	uintptr_t p = lg->sp.base + HD_LARGE_HDR;

	if (total > lg->sp.size ||
	    (total > lg->committed && (flags & HEAPDEV_IN_PLACE))) {
		*err = -ENOMEM;
		return NULL;
	}
	if (total > lg->committed) {
		if (hd_heap_commit(h, lg->sp.base + lg->committed,
				   lg->sp.woff + lg->committed,
				   total - lg->committed)) {
			*err = -ENOMEM;
			return NULL;
		}
		lg->committed = total;
	} else if (total < lg->committed &&
		   !hd_heap_decommit(h, lg->sp.base + total,
				     lg->sp.woff + total,
				     lg->committed - total)) {
		lg->committed = total;
	}
	h->large_bytes += n - lg->n;
	lg->n = n;
	hd_wr(h, p - 8, hd_w1(n));
	return (void *)p;
}

/* Heap destroy (or fork child): drop every large span. */
void hd_larges_free_all(struct hd_heap *h, bool unmap)
{
	struct hd_span *sp, *next;

	for (sp = h->larges; sp; sp = next) {
		next = sp->next;
		if (unmap)
			h->bh.be->unmap(&h->bh, sp->base, sp->size);
		hd_span_put(sp);
	}
	h->larges = h->larges_tail = NULL;
}
