// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench.c: the heap workloads, one source for every allocator.
 *
 * Built once per allocator with -DALLOC_HEADER='"alloc_X.h"' (see the
 * Makefile); alloc_win32.h builds against heapdev's <heapdev/win32.h> on
 * Linux and against <windows.h> with mingw-w64 for Wine, so heapdev and
 * Wine's HeapAlloc run the very same code.  An allocator header defines
 * struct bheap (a heap), struct bctx (what one thread holds to use it) and
 * a_create, a_attach, a_detach, a_alloc, a_free, a_realloc, a_destroy,
 * a_committed (see alloc_win32.h for the simplest one).
 *
 * The workloads are written here from the descriptions of mimalloc-bench's
 * programs (glibc-simple, glibc-thread, larson, xmalloc-test,
 * malloc-large), not from their code:
 *
 *   lifo, fifo   one size (-s, default 16 B): allocate a batch (-b, 100) of
 *                blocks, write every byte, free them in reverse (lifo) or
 *                allocation (fifo) order; an op is one alloc + one free;
 *                with -h 2, successive blocks alternate between two heaps
 *   wset         glibc-thread style: each thread (-t) keeps -N (1024)
 *                slots; an op frees a random slot and allocates a size
 *                drawn with probability ~ 1/size^2 from 16 B to 32 KiB,
 *                then writes one byte per 64-byte line; all threads share
 *                one heap
 *   larson       -t threads, each with -N (1000) blocks of 8..1000 B; an op
 *                frees a random block and allocates a new one (2 bytes
 *                written); after every -g (10000) ops per thread the
 *                threads end and new threads carry on with the same
 *                arrays, so blocks are freed by threads that did not
 *                allocate them; one shared heap
 *   xmalloc      producer/consumer: one thread allocates batches of 256
 *                blocks of -s (64) bytes and queues them (at most 64
 *                batches), another frees them; one shared heap
 *   large        20 live blocks of 5..25 MiB; an op frees a random one and
 *                allocates a new one, writing one byte per 4 KiB page (the
 *                page faults of fresh memory are part of what it measures)
 *   realloc      16 buffers grown round-robin by 1..128 bytes with realloc
 *                (the new last byte written), each restarting at 16 B when
 *                it passes 64 KiB; an op is one realloc
 *   tree         an N-body octree rebuilt every step (issue 14's "tree
 *                of small nodes rebuilt and freed many times, several
 *                sizes"): -N (20000) bodies drift a little each step;
 *                each of -n steps inserts every body into a new tree
 *                (internal nodes of 104 B, leaves of 56 B holding up to
 *                4 bodies, and a 24..88 B list per leaf of the bodies'
 *                indices, grown by one slot at a time) and then frees
 *                the tree; an op is one node or
 *                list allocated and freed; --mem samples the heap's
 *                commit when each tree is complete
 *   destroy      allocate -N blocks of 16..256 B (not timed), then time
 *                releasing them: -H destroy (destroy the heap) or -H free
 *                (free each block, in allocation order); -c cycles of
 *                this (default 10^6 / N, 2 to 30) after one warm-up cycle
 *   shortlived   time whole heap lives: create a heap, allocate -N (1000)
 *                blocks of 16..256 B, destroy it; -c cycles (default
 *                1000) after 10 warm-up lives; an op is one block
 *
 * Every timed phase runs on a heap that has been through a warm-up pass of
 * the same workload, so that page faults of fresh memory are out of the
 * small-block loops.  Output: one line "RESULT key=value ...".
 *
 * Under callgrind the timed phase is bracketed by CALLGRIND_ZERO_STATS and
 * CALLGRIND_DUMP_STATS_AT("timed"): each dump holds the instructions of
 * one timed phase, all threads included.
 */
#include "port.h"
#include ALLOC_HEADER

#if !defined(_WIN32) && __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS do { } while (0)
#define CALLGRIND_DUMP_STATS_AT(s) do { } while (0)
#endif

/* ---- options and results ---- */

static struct {
	const char *workload;
	int serialized;
	long long ops;
	int threads;
	size_t size;
	long nlive;
	int batch;
	long gen;
	long cycles;
	int heaps;
	int mem;
	int how_destroy;
	uint64_t seed;
} opt = {
	.serialized = 1,
	.threads = 1,
	.seed = 0x9E3779B97F4A7C15ULL,
};

static struct {
	double sec;
	long long ops;
	long long peak_live;
	long long peak_committed;
	int parts;
} res;

static double t0;

static void timed_begin(void)
{
	CALLGRIND_ZERO_STATS;
	t0 = now_sec();
}

static void timed_end(void)
{
	res.sec += now_sec() - t0;
	res.parts++;
	CALLGRIND_DUMP_STATS_AT("timed");
}

static void die(const char *what)
{
	fprintf(stderr, "bench[%s]: %s\n", ALLOC_NAME, what);
	exit(2);
}

static struct bheap *create(void)
{
	struct bheap *b = a_create(opt.serialized);

	if (!b)
		die("cannot create a heap (for heapdev on a host without the "
		    "module: HEAPDEV_BACKEND=memfd)");
	return b;
}

static void *xalloc(struct bctx *c, size_t n)
{
	void *p = a_alloc(c, n);

	if (!p)
		die("allocation failed");
	return p;
}

/* Write one byte per 64-byte line and the last byte. */
static inline void touch_lines(char *p, size_t n, char v)
{
	size_t off;

	for (off = 0; off < n; off += 64)
		p[off] = v;
	p[n - 1] = v;
}

/* ---- lifo / fifo ---- */

static NOINLINE void simple_rounds(struct bctx *c, void **v, long long rounds,
				   int batch, size_t size, int fifo)
{
	long long r;
	int i;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < batch; i++) {
			v[i] = xalloc(c, size);
			memset(v[i], i, size);
		}
		if (fifo)
			for (i = 0; i < batch; i++)
				a_free(c, v[i]);
		else
			for (i = batch - 1; i >= 0; i--)
				a_free(c, v[i]);
	}
}

/* The same, block i in heap i % 2: a program with two heaps in use. */
static NOINLINE void simple_rounds2(struct bctx *c, void **v, long long rounds,
				    int batch, size_t size, int fifo)
{
	long long r;
	int i;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < batch; i++) {
			v[i] = xalloc(&c[i & 1], size);
			memset(v[i], i, size);
		}
		if (fifo)
			for (i = 0; i < batch; i++)
				a_free(&c[i & 1], v[i]);
		else
			for (i = batch - 1; i >= 0; i--)
				a_free(&c[i & 1], v[i]);
	}
}

static void w_simple(int fifo)
{
	int batch = opt.batch ? opt.batch : 100;
	size_t size = opt.size ? opt.size : 16;
	long long rounds = opt.ops / batch, warm = rounds / 10 + 10;
	void **v = raw_alloc(batch * sizeof(*v));
	struct bheap *b[2];
	struct bctx c[2];
	int i, nh = opt.heaps == 2 ? 2 : 1;

	for (i = 0; i < nh; i++) {
		b[i] = create();
		a_attach(b[i], &c[i]);
	}
	if (nh == 2) {
		simple_rounds2(c, v, warm, batch, size, fifo);
		timed_begin();
		simple_rounds2(c, v, rounds, batch, size, fifo);
		timed_end();
	} else {
		simple_rounds(c, v, warm, batch, size, fifo);
		timed_begin();
		simple_rounds(c, v, rounds, batch, size, fifo);
		timed_end();
	}
	res.ops = rounds * batch;
	for (i = 0; i < nh; i++) {
		a_detach(b[i], &c[i]);
		a_destroy(b[i]);
	}
}

/* ---- wset ---- */

#define SIZE_TAB 65536

/* Sizes with density ~ 1/s^2 on [lo, hi]: inverse transform sampling. */
static uint32_t *inverse_square_table(uint64_t seed, double lo, double hi)
{
	uint32_t *t = raw_alloc(SIZE_TAB * sizeof(*t));
	uint64_t s = seed;
	int i;

	for (i = 0; i < SIZE_TAB; i++) {
		double u = (double)(rnd(&s) >> 11) / 9007199254740992.0;
		double x = 1.0 / (1.0 / lo - u * (1.0 / lo - 1.0 / hi));

		t[i] = x > hi ? (uint32_t)hi : (uint32_t)x;
	}
	return t;
}

static uint32_t *uniform_table(uint64_t seed, uint32_t lo, uint32_t hi)
{
	uint32_t *t = raw_alloc(SIZE_TAB * sizeof(*t));
	uint64_t s = seed;
	int i;

	for (i = 0; i < SIZE_TAB; i++)
		t[i] = lo + rnd_below(&s, hi - lo + 1);
	return t;
}

struct worker {
	struct thread th;
	int id;
	struct bheap *b;
	struct bctx c;
	uint64_t rng;
	void **slot;
	uint32_t *len;
	const uint32_t *sizes;
	long nslots;
	long long ops;
	long long live, peak_live, peak_committed;
	long long k;
};

static _Atomic int ready, go, finished;

static void wait_go(void)
{
	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&go))
		cpu_yield();
}

/* Let the threads go once all are ready; return when all have finished. */
static void run_timed(int nthreads)
{
	while (atomic_load(&ready) < nthreads)
		cpu_yield();
	timed_begin();
	atomic_store(&go, 1);
	while (atomic_load(&finished) < nthreads)
		cpu_yield();
	timed_end();
}

static NOINLINE void wset_ops(struct worker *w, long long ops)
{
	long nslots = w->nslots;
	long long k, end = w->k + ops;

	for (k = w->k; k < end; k++) {
		uint32_t i = rnd_below(&w->rng, (uint32_t)nslots);
		uint32_t n = w->sizes[k & (SIZE_TAB - 1)];
		char *p;

		if (w->slot[i])
			a_free(&w->c, w->slot[i]);
		p = xalloc(&w->c, n);
		touch_lines(p, n, (char)k);
		w->slot[i] = p;
	}
	w->k = end;
}

/* The same, tracking live bytes and sampling the heap's commit. */
static void wset_ops_mem(struct worker *w, long long ops)
{
	long long k, end = w->k + ops, c;
	long long every = A_MEM_EVERY * (w->nslots > 1024 ? w->nslots / 1024 : 1);

	for (k = w->k; k < end; k++) {
		uint32_t i = rnd_below(&w->rng, (uint32_t)w->nslots);
		uint32_t n = w->sizes[k & (SIZE_TAB - 1)];
		char *p;

		if (w->slot[i]) {
			a_free(&w->c, w->slot[i]);
			w->live -= w->len[i];
		}
		p = xalloc(&w->c, n);
		touch_lines(p, n, (char)k);
		w->slot[i] = p;
		w->len[i] = n;
		w->live += n;
		if (w->live > w->peak_live)
			w->peak_live = w->live;
		if (k % every == 0) {
			c = a_committed(w->b);
			if (c > w->peak_committed)
				w->peak_committed = c;
		}
	}
	w->k = end;
}

static void wset_thread(void *arg)
{
	struct worker *w = arg;

	a_attach(w->b, &w->c);
	if (opt.mem) {
		/* Fill, then the timed ops; peaks cover both. */
		wset_ops_mem(w, w->nslots);
		wait_go();
		wset_ops_mem(w, w->ops);
	} else {
		wset_ops(w, w->nslots * 4 + w->ops / 10);
		wait_go();
		wset_ops(w, w->ops);
	}
	atomic_fetch_add(&finished, 1);
	while (atomic_load(&go) != 2)
		cpu_yield();
	a_detach(w->b, &w->c);
}

static void w_wset(void)
{
	int t, nt = opt.threads;
	struct worker *w = raw_alloc(nt * sizeof(*w));
	struct bheap *b = create();
	uint32_t *sizes = inverse_square_table(opt.seed, 16, 32768);
	long nslots = opt.nlive ? opt.nlive : 1024;

	for (t = 0; t < nt; t++) {
		w[t].id = t;
		w[t].b = b;
		w[t].rng = opt.seed + 1000 * (t + 1);
		w[t].nslots = nslots;
		w[t].slot = raw_alloc(nslots * sizeof(void *));
		w[t].len = raw_alloc(nslots * sizeof(uint32_t));
		w[t].sizes = sizes;
		w[t].k = t * 7919;
		w[t].ops = opt.ops / nt;
		thread_start(&w[t].th, wset_thread, &w[t]);
	}
	run_timed(nt);
	atomic_store(&go, 2);
	for (t = 0; t < nt; t++) {
		thread_join(&w[t].th);
		res.ops += w[t].ops;
		res.peak_live += w[t].peak_live;
		if (w[t].peak_committed > res.peak_committed)
			res.peak_committed = w[t].peak_committed;
	}
	if (opt.mem) {
		long long c = a_committed(b);

		if (c > res.peak_committed)
			res.peak_committed = c;
	}
}

/* ---- larson ---- */

static void larson_thread(void *arg)
{
	struct worker *w = arg;
	long long k;

	a_attach(w->b, &w->c);
	for (k = 0; k < w->ops; k++) {
		uint32_t i = rnd_below(&w->rng, (uint32_t)w->nslots);
		uint32_t n = w->sizes[(w->k + k) & (SIZE_TAB - 1)];
		char *p;

		a_free(&w->c, w->slot[i]);
		p = xalloc(&w->c, n);
		p[0] = (char)k;
		p[n - 1] = (char)k;
		w->slot[i] = p;
	}
	w->k += w->ops;
	a_detach(w->b, &w->c);
}

static void w_larson(void)
{
	int t, nt = opt.threads;
	long nslots = opt.nlive ? opt.nlive : 1000;
	long long per_gen = opt.gen ? opt.gen : 10000;
	long long gens = opt.ops / (per_gen * nt), g;
	struct worker *w = raw_alloc(nt * sizeof(*w));
	uint32_t *sizes = uniform_table(opt.seed, 8, 1000);
	struct bheap *b = create();
	struct bctx main_c;
	long i;

	if (gens < 1)
		gens = 1;
	a_attach(b, &main_c);
	for (t = 0; t < nt; t++) {
		w[t].b = b;
		w[t].rng = opt.seed + 77 * (t + 1);
		w[t].nslots = nslots;
		w[t].slot = raw_alloc(nslots * sizeof(void *));
		w[t].sizes = sizes;
		w[t].k = t * 7919;
		for (i = 0; i < nslots; i++)
			w[t].slot[i] = xalloc(&main_c, sizes[(t * 131 + i) &
							 (SIZE_TAB - 1)]);
	}
	/* Warm-up: one generation. */
	for (t = 0; t < nt; t++) {
		w[t].ops = per_gen;
		thread_start(&w[t].th, larson_thread, &w[t]);
	}
	for (t = 0; t < nt; t++)
		thread_join(&w[t].th);
	timed_begin();
	for (g = 0; g < gens; g++) {
		for (t = 0; t < nt; t++)
			thread_start(&w[t].th, larson_thread, &w[t]);
		for (t = 0; t < nt; t++)
			thread_join(&w[t].th);
	}
	timed_end();
	res.ops = gens * per_gen * nt;
	a_detach(b, &main_c);
}

/* ---- xmalloc: producer / consumer ---- */

#define XQ	64	/* batches in flight */
#define XB	256	/* blocks per batch */

static void **xring;
static _Atomic long long xhead, xtail;
static long long xbatches;

static void xmalloc_producer(void *arg)
{
	struct worker *w = arg;
	long long b;
	int i;

	a_attach(w->b, &w->c);
	for (b = 0; b < XQ; b++) {	/* warm-up: one ring's worth */
		for (i = 0; i < XB; i++)
			xring[i] = xalloc(&w->c, w->nslots);
		for (i = 0; i < XB; i++)
			a_free(&w->c, xring[i]);
	}
	wait_go();
	for (b = 0; b < xbatches; b++) {
		void **batch = xring + (b % XQ) * XB;

		while (b - atomic_load_explicit(&xtail, memory_order_acquire)
		       >= XQ)
			cpu_yield();
		for (i = 0; i < XB; i++) {
			char *p = xalloc(&w->c, w->nslots);

			p[0] = (char)i;
			batch[i] = p;
		}
		atomic_store_explicit(&xhead, b + 1, memory_order_release);
	}
	atomic_fetch_add(&finished, 1);
	while (atomic_load(&go) != 2)
		cpu_yield();
	a_detach(w->b, &w->c);
}

static void xmalloc_consumer(void *arg)
{
	struct worker *w = arg;
	long long b;
	int i;

	a_attach(w->b, &w->c);
	wait_go();
	for (b = 0; b < xbatches; b++) {
		void **batch = xring + (b % XQ) * XB;

		while (atomic_load_explicit(&xhead, memory_order_acquire) <= b)
			cpu_yield();
		for (i = 0; i < XB; i++)
			a_free(&w->c, batch[i]);
		atomic_store_explicit(&xtail, b + 1, memory_order_release);
	}
	atomic_fetch_add(&finished, 1);
	while (atomic_load(&go) != 2)
		cpu_yield();
	a_detach(w->b, &w->c);
}

static void w_xmalloc(void)
{
	struct worker *w = raw_alloc(2 * sizeof(*w));
	struct bheap *b = create();
	int t;

	xring = raw_alloc(XQ * XB * sizeof(void *));
	xbatches = opt.ops / XB;
	for (t = 0; t < 2; t++) {
		w[t].b = b;
		w[t].nslots = (long)(opt.size ? opt.size : 64);
	}
	thread_start(&w[0].th, xmalloc_producer, &w[0]);
	thread_start(&w[1].th, xmalloc_consumer, &w[1]);
	run_timed(2);
	atomic_store(&go, 2);
	thread_join(&w[0].th);
	thread_join(&w[1].th);
	res.ops = xbatches * XB;
}

/* ---- large ---- */

static NOINLINE void large_ops(struct bctx *c, void **v, size_t *len,
			       uint64_t *rng, long long ops)
{
	long long k;

	for (k = 0; k < ops; k++) {
		uint32_t i = rnd_below(rng, 20);
		size_t n = ((size_t)5 << 20) + rnd_below(rng, 20u << 20);
		size_t off;
		char *p;

		if (v[i])
			a_free(c, v[i]);
		p = xalloc(c, n);
		for (off = 0; off < n; off += 4096)
			p[off] = (char)k;
		p[n - 1] = 1;
		v[i] = p;
		len[i] = n;
	}
}

static void w_large(void)
{
	void **v = raw_alloc(20 * sizeof(*v));
	size_t *len = raw_alloc(20 * sizeof(*len));
	struct bheap *b = create();
	uint64_t rng = opt.seed;
	struct bctx c;
	int i;

	a_attach(b, &c);
	for (i = 0; i < 20; i++)	/* the 20 live blocks */
		v[i] = xalloc(&c, ((size_t)5 << 20) + rnd_below(&rng, 20u << 20));
	large_ops(&c, v, len, &rng, 20);
	timed_begin();
	large_ops(&c, v, len, &rng, opt.ops);
	timed_end();
	res.ops = opt.ops;
	for (i = 0; i < 20; i++)
		a_free(&c, v[i]);
	a_detach(b, &c);
	a_destroy(b);
}

/* ---- realloc ---- */

#define RBUF 16

static NOINLINE void realloc_ops(struct bctx *c, char **v, size_t *len,
				 const uint32_t *grow, long long k0,
				 long long ops)
{
	long long k;

	for (k = k0; k < k0 + ops; k++) {
		int i = (int)(k % RBUF);
		size_t n = len[i] + grow[k & (SIZE_TAB - 1)];
		char *p;

		if (n > (64u << 10)) {
			a_free(c, v[i]);
			v[i] = xalloc(c, 16);
			len[i] = 16;
			continue;
		}
		p = a_realloc(c, v[i], n);
		if (!p)
			die("realloc failed");
		p[n - 1] = (char)k;
		v[i] = p;
		len[i] = n;
	}
}

static void w_realloc(void)
{
	char **v = raw_alloc(RBUF * sizeof(*v));
	size_t *len = raw_alloc(RBUF * sizeof(*len));
	uint32_t *grow = uniform_table(opt.seed, 1, 128);
	struct bheap *b = create();
	struct bctx c;
	long long warm = opt.ops / 10 + 20000;
	int i;

	a_attach(b, &c);
	for (i = 0; i < RBUF; i++) {
		v[i] = xalloc(&c, 16);
		len[i] = 16;
	}
	realloc_ops(&c, v, len, grow, 0, warm);
	timed_begin();
	realloc_ops(&c, v, len, grow, warm, opt.ops);
	timed_end();
	res.ops = opt.ops;
	for (i = 0; i < RBUF; i++)
		a_free(&c, v[i]);
	a_detach(b, &c);
	a_destroy(b);
}

/* ---- tree: an octree rebuilt every step ---- */

struct thead {
	uint32_t leaf;		/* 1: a struct tleaf, 0: a struct tnode */
	uint32_t count;		/* bodies below */
	double mass, cx, cy, cz;
};

struct tnode {			/* internal: 104 bytes */
	struct thead h;
	struct thead *child[8];
};

struct tleaf {			/* 56 bytes */
	struct thead h;
	uint32_t *list;		/* its bodies' indices */
	uint16_t nlist, cap;
};

#define TLEAF_MAX	4

struct tree {
	struct bctx *c;
	const double *pos;
	long long allocs;
	long long live, peak_live;
};

static void *talloc(struct tree *t, size_t n)
{
	t->allocs++;
	t->live += (long long)n;
	if (t->live > t->peak_live)
		t->peak_live = t->live;
	return xalloc(t->c, n);
}

static void tfree(struct tree *t, void *p, size_t n)
{
	t->live -= (long long)n;
	a_free(t->c, p);
}

static size_t tlist_size(uint32_t cap)
{
	return 8 + cap * 2 * sizeof(uint32_t);	/* 24, 40, 56, 72, 88 B */
}

static struct tleaf *tleaf(struct tree *t)
{
	struct tleaf *l = talloc(t, sizeof(*l));

	memset(l, 0, sizeof(*l));
	l->h.leaf = 1;
	l->cap = 2;
	l->list = talloc(t, tlist_size(2));
	return l;
}

static int toct(const double *p, double x, double y, double z)
{
	return (p[0] > x) | (p[1] > y) << 1 | (p[2] > z) << 2;
}

static void tadd(struct thead *h, const double *p)
{
	h->count++;
	h->mass += 1;
	h->cx += p[0];
	h->cy += p[1];
	h->cz += p[2];
}

/* Insert body @b below @n, the cube of side @h centred on (x, y, z). */
static struct thead *tinsert(struct tree *t, struct thead *n, uint32_t b,
			     double x, double y, double z, double h, int depth)
{
	const double *p = t->pos + 3 * b;
	struct tnode *in;
	int o;

	if (!n)
		n = &tleaf(t)->h;
	if (n->leaf) {
		struct tleaf *l = (struct tleaf *)n;
		uint32_t i, nl = l->nlist, *list = l->list, cap = l->cap;

		if (nl < TLEAF_MAX || depth > 24) {
			if (nl == cap) {
				uint32_t *g = talloc(t, tlist_size(cap + 1));

				memcpy(g, list, nl * sizeof(*g));
				tfree(t, list, tlist_size(cap));
				l->list = g;
				l->cap++;
			}
			l->list[l->nlist++] = b;
			tadd(n, p);
			return n;
		}
		/* Split: an internal node takes over the leaf's bodies. */
		in = talloc(t, sizeof(*in));
		memset(in, 0, sizeof(*in));
		tfree(t, l, sizeof(*l));
		for (i = 0; i < nl; i++)
			tinsert(t, &in->h, list[i], x, y, z, h, depth);
		tfree(t, list, tlist_size(cap));
		n = &in->h;
	}
	in = (struct tnode *)n;
	tadd(n, p);
	o = toct(p, x, y, z);
	in->child[o] = tinsert(t, in->child[o], b, x + (o & 1 ? h : -h) / 4,
			       y + (o & 2 ? h : -h) / 4,
			       z + (o & 4 ? h : -h) / 4, h / 2, depth + 1);
	return n;
}

static uint64_t tdestroy(struct tree *t, struct thead *n)
{
	uint64_t sum;
	int i;

	if (!n)
		return 0;
	sum = n->count;
	if (n->leaf) {
		struct tleaf *l = (struct tleaf *)n;

		tfree(t, l->list, tlist_size(l->cap));
		tfree(t, l, sizeof(*l));
		return sum;
	}
	for (i = 0; i < 8; i++)
		sum += tdestroy(t, ((struct tnode *)n)->child[i]);
	tfree(t, n, sizeof(struct tnode));
	return sum;
}

static NOINLINE uint64_t tree_steps(struct tree *t, struct bheap *b,
				    double *pos, long nb, long steps,
				    uint64_t *rng, long long *peak_committed)
{
	uint64_t check = 0;
	long s, i;

	for (s = 0; s < steps; s++) {
		struct thead *root = NULL;

		for (i = 0; i < nb; i++)
			root = tinsert(t, root, (uint32_t)i, 0.5, 0.5, 0.5,
				       1.0, 0);
		if (peak_committed) {
			long long c = a_committed(b);

			if (c > *peak_committed)
				*peak_committed = c;
		}
		check += tdestroy(t, root);
		/* Drift: each body moves a little, staying in the cube. */
		for (i = 0; i < 3 * nb; i++) {
			double d = ((double)rnd_below(rng, 2001) - 1000) * 1e-6;

			pos[i] += d;
			if (pos[i] <= 0 || pos[i] >= 1)
				pos[i] -= 2 * d;
		}
	}
	return check;
}

static void w_tree(void)
{
	long nb = opt.nlive ? opt.nlive : 20000, i;
	long steps = opt.ops ? (long)opt.ops : 20;
	double *pos = raw_alloc(3 * nb * sizeof(double));
	struct bheap *b = create();
	struct bctx c;
	struct tree t = { .c = &c, .pos = pos };
	uint64_t rng = opt.seed;
	long long pc = 0;

	for (i = 0; i < 3 * nb; i++)
		pos[i] = ((double)rnd_below(&rng, 1000000) + 0.5) / 1e6;
	a_attach(b, &c);
	tree_steps(&t, b, pos, nb, 2, &rng, opt.mem ? &pc : NULL);
	t.allocs = 0;
	timed_begin();
	if (tree_steps(&t, b, pos, nb, steps, &rng, opt.mem ? &pc : NULL) == 0)
		die("empty tree");
	timed_end();
	res.ops = t.allocs;
	res.peak_live = t.peak_live;
	res.peak_committed = pc;
	a_detach(b, &c);
	a_destroy(b);
}

/* ---- destroy ---- */

static void w_destroy(void)
{
	long n = opt.nlive ? opt.nlive : 1000000, i;
	long cycles = 1000000 / n;
	void **v = raw_alloc(n * sizeof(*v));
	uint32_t *sizes = uniform_table(opt.seed, 16, 256);
	long cyc;

	if (cycles > 30)
		cycles = 30;
	if (cycles < 2)
		cycles = 2;
	if (opt.cycles)
		cycles = opt.cycles;
	if (opt.how_destroy && !A_HAS_DESTROY)
		die("this allocator has no heap to destroy");
	for (cyc = 0; cyc < cycles + 1; cyc++) {
		struct bheap *b = create();
		struct bctx c;

		a_attach(b, &c);
		for (i = 0; i < n; i++) {
			char *p = xalloc(&c, sizes[i & (SIZE_TAB - 1)]);

			p[0] = 1;
			v[i] = p;
		}
		/* The first cycle is the warm-up. */
		if (cyc)
			timed_begin();
		if (opt.how_destroy) {
			a_detach(b, &c);
			if (a_destroy(b))
				die("destroy failed");
		} else {
			for (i = 0; i < n; i++)
				a_free(&c, v[i]);
		}
		if (cyc)
			timed_end();
		if (!opt.how_destroy) {
			a_detach(b, &c);
			a_destroy(b);
		}
	}
	res.ops = n * cycles;
}

/* ---- short-lived heaps ---- */

static void w_shortlived(void)
{
	long n = opt.nlive ? opt.nlive : 1000, i;
	long cycles = opt.cycles ? opt.cycles : 1000, cyc;
	uint32_t *sizes = uniform_table(opt.seed, 16, 256);

	if (!A_HAS_DESTROY)
		die("this allocator has no heap to destroy");
	if (cycles < 1 || n < 1)
		die("shortlived needs -N and -c of at least 1");
	for (cyc = -10; cyc < cycles; cyc++) {
		struct bheap *b;
		struct bctx c;

		if (!cyc)
			timed_begin();
		b = create();
		a_attach(b, &c);
		for (i = 0; i < n; i++) {
			char *p = xalloc(&c, sizes[i & (SIZE_TAB - 1)]);

			p[0] = 1;
		}
		a_detach(b, &c);
		if (a_destroy(b))
			die("destroy failed");
	}
	timed_end();
	res.ops = n * cycles;
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench-%s WORKLOAD [-m ser|ns] [-n OPS] [-t THREADS] "
		"[-s SIZE]\n"
		"       [-b BATCH] [-N LIVE] [-g GEN] [-c CYCLES] [-h 1|2]\n"
		"       [-H destroy|free] [-S SEED] [--mem]\n"
		"WORKLOAD: lifo fifo wset larson xmalloc large realloc tree "
		"destroy\n          shortlived\n", ALLOC_NAME);
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode;
	int i;

	if (argc < 2)
		usage();
	opt.workload = argv[1];
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--mem")) {
			opt.mem = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "-m"))
			opt.serialized = strcmp(v, "ns") != 0;
		else if (!strcmp(a, "-n"))
			opt.ops = atoll(v);
		else if (!strcmp(a, "-t"))
			opt.threads = atoi(v);
		else if (!strcmp(a, "-s"))
			opt.size = (size_t)atoll(v);
		else if (!strcmp(a, "-b"))
			opt.batch = atoi(v);
		else if (!strcmp(a, "-N"))
			opt.nlive = atol(v);
		else if (!strcmp(a, "-g"))
			opt.gen = atol(v);
		else if (!strcmp(a, "-c"))
			opt.cycles = atol(v);
		else if (!strcmp(a, "-h"))
			opt.heaps = atoi(v);
		else if (!strcmp(a, "-H"))
			opt.how_destroy = !strcmp(v, "destroy");
		else if (!strcmp(a, "-S"))
			opt.seed = strtoull(v, NULL, 0) | 1;
		else
			usage();
	}
	/* The threads of wset, larson and xmalloc share one heap. */
	if (!opt.serialized && (opt.threads > 1 ||
				!strcmp(opt.workload, "xmalloc")))
		die("-m ns: a HEAP_NO_SERIALIZE heap is for one thread at a "
		    "time; use -m ser for workloads with threads");
	if (a_init())
		die("init failed");
	if (!opt.ops)
		opt.ops = 2000000;
	if (!strcmp(opt.workload, "lifo"))
		w_simple(0);
	else if (!strcmp(opt.workload, "fifo"))
		w_simple(1);
	else if (!strcmp(opt.workload, "wset"))
		w_wset();
	else if (!strcmp(opt.workload, "larson"))
		w_larson();
	else if (!strcmp(opt.workload, "xmalloc"))
		w_xmalloc();
	else if (!strcmp(opt.workload, "large"))
		w_large();
	else if (!strcmp(opt.workload, "realloc"))
		w_realloc();
	else if (!strcmp(opt.workload, "tree"))
		w_tree();
	else if (!strcmp(opt.workload, "destroy"))
		w_destroy();
	else if (!strcmp(opt.workload, "shortlived"))
		w_shortlived();
	else
		usage();

	mode = A_HAS_MODES ? (opt.serialized ? "ser" : "ns") : "-";
	printf("RESULT alloc=%s mode=%s workload=%s how=%s live=%ld "
	       "threads=%d ops=%lld sec=%.9f parts=%d peak_live=%lld "
	       "peak_committed=%lld maxrss_kb=%lld\n", ALLOC_NAME, mode,
	       opt.workload, strcmp(opt.workload, "destroy") ? "-" :
	       opt.how_destroy ? "destroy" : "free", opt.nlive, opt.threads,
	       res.ops, res.sec, res.parts, res.peak_live, res.peak_committed,
	       peak_rss_bytes() / 1024);
	fflush(stdout);
	return 0;
}
