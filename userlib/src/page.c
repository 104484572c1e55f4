// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the page layer: the page map, spans, a heap's window and its
 * commits (see page.h).
 */
#include <errno.h>
#include <pthread.h>

#include "page.h"

unsigned char hd_empty_run[512] __attribute__((aligned(64)));

_Atomic uintptr_t *hd_pm;
_Atomic uintptr_t hd_pm_limit;
struct hd_gran hd_null_gran = {
	.ptab = { [0 ... HD_GRAN_PAGES - 1] =
		  (struct hd_run *)(void *)hd_empty_run },
};

static pthread_mutex_t hd_pm_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_gran *hd_gran_pool;	/* linked through @pnext */

#define HD_GRAN_BYTES	hd_round_page(sizeof(struct hd_gran))

static void hd_gran_fill(struct hd_gran *g, struct hd_run *run)
{
	unsigned int i;

	for (i = 0; i < HD_GRAN_PAGES; i++)
		atomic_store_explicit(&g->ptab[i], run, memory_order_relaxed);
}

/* Reserve the table (once, mutex held).  Return: 0 or -ENOMEM. */
static int hd_pm_init_locked(void)
{
	if (atomic_load_explicit(&hd_pm_limit, memory_order_relaxed))
		return 0;
	hd_pm = hd_os_reserve(HD_PM_ENTRIES * sizeof(*hd_pm));
	if (!hd_pm)
		return -ENOMEM;
	atomic_store_explicit(&hd_pm_limit, HD_PM_ENTRIES,
			      memory_order_release);
	return 0;
}

static struct hd_gran *hd_gran_get_locked(void)
{
	struct hd_gran *g = hd_gran_pool;

	if (g) {
		hd_gran_pool = g->pnext;
		if (g->dirty)
			hd_gran_fill(g, HD_EMPTY_RUN);
		g->dirty = false;
		return g;
	}
	g = hd_os_alloc(HD_GRAN_BYTES);
	if (g)
		hd_gran_fill(g, HD_EMPTY_RUN);
	return g;
}

/*
 * Unregister the granules [first, end) of @sp (mutex held).  The granules
 * of a large span share one descriptor, which goes back to the pool once.
 */
static void hd_unregister_locked(struct hd_span *sp, uintptr_t first,
				 uintptr_t end)
{
	struct hd_gran *prev = NULL;
	uintptr_t i;

	for (i = first; i < end && i < HD_PM_ENTRIES; i++) {
		uintptr_t e = atomic_load_explicit(&hd_pm[i],
						   memory_order_relaxed);
		struct hd_gran *g = (struct hd_gran *)((uintptr_t)&hd_null_gran +
						       e);

		if (!e || (g != prev && hd_gran_span(g) != sp))
			continue;
		atomic_store_explicit(&hd_pm[i], 0, memory_order_release);
		if (g == prev)
			continue;
		prev = g;
		atomic_store_explicit(&g->handle, 0, memory_order_relaxed);
		atomic_store_explicit(&g->span, NULL, memory_order_relaxed);
		g->pnext = hd_gran_pool;
		hd_gran_pool = g;
	}
}

/*
 * Register @sp for every granule it covers, with its heap's handle and
 * every page on the empty run.  A large span has no runs, so all its
 * granules share one descriptor: a block of 3.8 GB costs one 12 KiB
 * descriptor, not one per 4 MiB (sort's buffer under the drop-in: 1,146
 * descriptors, 13 MB, before).  Return: 0 or -ENOMEM (nothing registered).
 */
int hd_span_register(struct hd_span *sp)
{
	uintptr_t first = sp->base >> HD_CHUNK_SHIFT;
	uintptr_t last = (sp->base + sp->size - 1) >> HD_CHUNK_SHIFT, i;
	struct hd_gran *shared = NULL;
	int err;

	pthread_mutex_lock(&hd_pm_mutex);
	err = hd_pm_init_locked();
	if (!err && last >= HD_PM_ENTRIES)
		err = -ENOMEM;
	for (i = first; !err && i <= last; i++) {
		struct hd_gran *g = shared ? shared : hd_gran_get_locked();

		if (!g) {
			err = -ENOMEM;
			break;
		}
		if (sp->kind == HD_SPAN_LARGE)
			shared = g;
		atomic_store_explicit(&g->span, sp, memory_order_relaxed);
		atomic_store_explicit(&g->handle, sp->handle,
				      memory_order_relaxed);
		atomic_store_explicit(&hd_pm[i], (uintptr_t)g -
				      (uintptr_t)&hd_null_gran,
				      memory_order_release);
	}
	if (err)
		hd_unregister_locked(sp, first, i);
	pthread_mutex_unlock(&hd_pm_mutex);
	return err;
}

/*
 * Take @sp out of the page map.  Its descriptors go back to the pool; a
 * reader that found one before may still read it (never unmapped).
 */
void hd_span_unregister(struct hd_span *sp)
{
	if (!atomic_load_explicit(&hd_pm_limit, memory_order_relaxed))
		return;
	pthread_mutex_lock(&hd_pm_mutex);
	hd_unregister_locked(sp, sp->base >> HD_CHUNK_SHIFT,
			     ((sp->base + sp->size - 1) >> HD_CHUNK_SHIFT) + 1);
	pthread_mutex_unlock(&hd_pm_mutex);
}

/*
 * Set the handle that frees check in every granule of @sp: the heap's
 * handle, or 0 while a destroy or a pause keeps calls out.
 */
void hd_span_set_handle(struct hd_span *sp, uintptr_t handle)
{
	uintptr_t a;

	for (a = sp->base; a < sp->base + sp->size; a += HD_CHUNK) {
		struct hd_gran *g = hd_gran_of(a);

		if (hd_gran_span(g) == sp)
			atomic_store_explicit(&g->handle, handle,
					      memory_order_release);
	}
}

/* Make every page of [addr, addr + len) (one span) name @run. */
void hd_pages_set_run(uintptr_t addr, size_t len, struct hd_run *run)
{
	uintptr_t a;

	for (a = addr; a < addr + len; a += HD_PAGE) {
		struct hd_gran *g = hd_gran_of(a);

		if (run != HD_EMPTY_RUN)
			g->dirty = true;
		atomic_store_explicit(&g->ptab[(a >> HD_PAGE_SHIFT) &
					       (HD_GRAN_PAGES - 1)],
				      run, memory_order_release);
	}
}

/* ---- span structs ---- */

static pthread_mutex_t hd_span_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_span *hd_seg_pool, *hd_large_pool;

static struct hd_span **hd_span_pool(int kind)
{
	return kind == HD_SPAN_LARGE ? &hd_large_pool : &hd_seg_pool;
}

/*
 * A zeroed span struct of @size bytes for @kind, except @heap, which a
 * stale reader may follow: it always points to a heap struct (or NULL on
 * a new struct).
 */
void *hd_span_get(int kind, size_t size)
{
	struct hd_span **pool = hd_span_pool(kind), *sp;

	pthread_mutex_lock(&hd_span_mutex);
	sp = *pool;
	if (sp)
		*pool = sp->next;
	pthread_mutex_unlock(&hd_span_mutex);
	if (!sp)
		return hd_meta_alloc(size);
	sp->kind = 0;
	memset(&sp->handle, 0, size - offsetof(struct hd_span, handle));
	return sp;
}

void hd_span_put(struct hd_span *sp)
{
	struct hd_span **pool = hd_span_pool(sp->kind);

	pthread_mutex_lock(&hd_span_mutex);
	sp->next = *pool;
	*pool = sp;
	pthread_mutex_unlock(&hd_span_mutex);
}

void hd_page_atfork_child(void)
{
	pthread_mutex_init(&hd_pm_mutex, NULL);
	pthread_mutex_init(&hd_span_mutex, NULL);
}

/* ---- a heap's window and commits ---- */

/* A window of @window bytes, all of it free.  Return: 0 or -ENOMEM. */
int hd_core_init(struct hd_core *c, uint64_t window)
{
	c->ext = hd_meta_alloc(sizeof(*c->ext));
	if (!c->ext)
		return -ENOMEM;
	c->ext[0].start = 0;
	c->ext[0].end = window;
	c->next_ext = c->ext_cap = 1;
	return 0;
}

void hd_core_free(struct hd_core *c)
{
	hd_meta_free(c->ext, c->ext_cap * sizeof(*c->ext));
	c->ext = NULL;
	c->next_ext = c->ext_cap = 0;
}

/* First fit of @size bytes in the window.  Return: 0 or -ENOMEM. */
int hd_window_alloc(struct hd_core *c, uint64_t size, uint64_t *off)
{
	uint32_t i;

	for (i = 0; i < c->next_ext; i++) {
		struct hd_extent *e = &c->ext[i];

		if (e->end - e->start < size)
			continue;
		*off = e->start;
		e->start += size;
		if (e->start == e->end) {
			memmove(e, e + 1, (c->next_ext - i - 1) * sizeof(*e));
			c->next_ext--;
		}
		return 0;
	}
	return -ENOMEM;
}

void hd_window_free(struct hd_core *c, uint64_t off, uint64_t size)
{
	uint32_t i = 0;
	struct hd_extent *e;

	while (i < c->next_ext && c->ext[i].start < off)
		i++;
	if (i > 0 && c->ext[i - 1].end == off) {
		c->ext[i - 1].end += size;
		if (i < c->next_ext && c->ext[i].start == off + size) {
			c->ext[i - 1].end = c->ext[i].end;
			memmove(&c->ext[i], &c->ext[i + 1],
				(c->next_ext - i - 1) * sizeof(*e));
			c->next_ext--;
		}
		return;
	}
	if (i < c->next_ext && c->ext[i].start == off + size) {
		c->ext[i].start = off;
		return;
	}
	if (c->next_ext == c->ext_cap) {
		uint32_t cap = c->ext_cap ? 2 * c->ext_cap : 8;

		e = hd_meta_realloc(c->ext, c->ext_cap * sizeof(*e),
				    cap * sizeof(*e));
		if (!e)
			return;	/* the window range is lost, nothing else */
		c->ext = e;
		c->ext_cap = cap;
	}
	memmove(&c->ext[i + 1], &c->ext[i], (c->next_ext - i) * sizeof(*e));
	c->ext[i].start = off;
	c->ext[i].end = off + size;
	c->next_ext++;
}

int hd_commit(struct hd_core *c, uintptr_t addr, uint64_t woff, size_t len,
	      bool lazy)
{
	int err = c->bh.be->commit(&c->bh, addr, woff, len, lazy);

	if (err) {
		hd_commit_err = err;	/* for hd_alloc_errno() */
		hd_dbg("heapdev: heap %p: commit of %zu bytes failed: %s",
		       (void *)c->handle, len, hd_errstr(err));
	}
	return err;
}

int hd_decommit(struct hd_core *c, uintptr_t addr, uint64_t woff, size_t len)
{
	int err = c->bh.be->decommit(&c->bh, addr, woff, len);

	if (err)
		hd_dbg("heapdev: heap %p: decommit of %zu bytes failed: %s",
		       (void *)c->handle, len, hd_errstr(err));
	return err;
}
