// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libheapdev-malloc with threads: random malloc/realloc/free with blocks
 * handed between threads (freed by another thread than the one that
 * allocated them), thread-specific data destructors that allocate and
 * free while the thread exits, and, with HEAPDEV_MALLOC_HEAPS=thread,
 * one heap per thread, kept alive by blocks other threads still hold and
 * reused by later threads.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

#include <heapdev.h>

#include "t.h"

#define NTHREADS 4
#define SLOTS 4096
#define OPS_DEFAULT 200000
static int OPS = OPS_DEFAULT;

struct blk {
	uint32_t size;
	uint32_t tag;
	unsigned char data[];
};

static _Atomic(struct blk *) slot[SLOTS];
static atomic_int corrupt, failed;
static int per_thread;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static struct blk *mk(uint64_t *s)
{
	uint64_t r = rnd(s);
	size_t n = r % 8 ? r % 600 : r % 70000;
	struct blk *b = malloc(sizeof(*b) + n);

	if (!b) {
		atomic_fetch_add(&failed, 1);
		return NULL;
	}
	b->size = (uint32_t)n;
	b->tag = (uint32_t)(r >> 32);
	memset(b->data, b->tag & 0xff, n);
	return b;
}

static void ck(const struct blk *b)
{
	uint32_t i;

	for (i = 0; i < b->size; i++)
		if (b->data[i] != (b->tag & 0xff)) {
			atomic_fetch_add(&corrupt, 1);
			return;
		}
}

static void *worker(void *arg)
{
	uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
	int i;

	for (i = 0; i < OPS; i++) {
		unsigned int k = rnd(&s) % SLOTS;
		struct blk *b = mk(&s), *old;

		if (!b)
			continue;
		if (rnd(&s) % 4 == 0) {
			/* grow it in place or move it, keeping its bytes */
			size_t n = b->size + rnd(&s) % 3000;
			struct blk *g = realloc(b, sizeof(*b) + n);

			if (!g) {
				atomic_fetch_add(&failed, 1);
			} else {
				memset(g->data + g->size, g->tag & 0xff,
				       n - g->size);
				g->size = (uint32_t)n;
				b = g;
			}
		}
		old = atomic_exchange(&slot[k], b);
		if (old) {
			ck(old);
			free(old);	/* often another thread's block */
		}
	}
	return NULL;
}

/* ---- thread exit: destructors that allocate ---- */

static pthread_key_t key;
static atomic_int dtor_ok;

static void dtor(void *v)
{
	char *p = v, *q = malloc(5000);

	if (q && p && p[0] == 'k') {
		memset(q, 1, 5000);
		atomic_fetch_add(&dtor_ok, 1);
	}
	free(q);
	free(p);
}

static void *tsd_thread(void *arg)
{
	char *p = malloc(100);

	p[0] = 'k';
	pthread_setspecific(key, p);
	return NULL;
}

/* ---- per-thread heaps ---- */

static void *heap_of_thread(void *arg)
{
	void **out = arg;

	out[0] = malloc(100);		/* stays live after the thread exits */
	out[1] = heapdev_heap_of(out[0]);
	return NULL;
}

static void *short_thread(void *arg)
{
	void *p = malloc(1000);

	free(p);
	return NULL;
}

static size_t nheaps(void)
{
	size_t n = 0;

	heapdev_heaps(NULL, 0, &n);
	return n;
}

/* argv[1]: operations per thread (default 200000) */
int main(int argc, char **argv)
{
	pthread_t t[NTHREADS];
	void *res[2][2];
	size_t before, after;
	const char *mode = getenv("HEAPDEV_MALLOC_HEAPS");
	int i;

	if (argc > 1)
		OPS = atoi(argv[1]);
	per_thread = mode && !strcmp(mode, "thread");
	t_diag("mode: %s", per_thread ? "a heap per thread" : "the process heap");

	for (i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < SLOTS; i++) {
		struct blk *b = atomic_exchange(&slot[i], NULL);

		if (b) {
			ck(b);
			free(b);
		}
	}
	T_EQ(atomic_load(&corrupt), 0, "%d threads x %d random malloc/realloc/free, cross-thread frees: every block intact",
	     NTHREADS, OPS);
	T_EQ(atomic_load(&failed), 0, "no allocation failed");

	pthread_key_create(&key, dtor);
	for (i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, tsd_thread, NULL);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	T_EQ(atomic_load(&dtor_ok), NTHREADS,
	     "thread-specific data destructors allocate and free at thread exit");

	for (i = 0; i < 2; i++) {
		pthread_create(&t[i], NULL, heap_of_thread, res[i]);
		pthread_join(t[i], NULL);
	}
	if (per_thread) {
		T_OK(res[0][1] && res[1][1] && res[0][1] != heapdev_process_heap() &&
		     res[1][1] != heapdev_process_heap(),
		     "HEAPDEV_MALLOC_HEAPS=thread: threads allocate from heaps of their own");
		T_OK(res[0][1] == res[1][1],
		     "the heap of an exited thread that still has blocks is reused by the next thread");
	} else {
		T_OK(res[0][1] == heapdev_process_heap() &&
		     res[1][1] == heapdev_process_heap(),
		     "every thread allocates from the process heap");
	}
	free(res[0][0]);
	free(res[1][0]);
	T_OK(malloc_usable_size(malloc(1)) == 1, "the main thread frees the exited threads' blocks");

	before = nheaps();
	for (i = 0; i < 200; i++) {
		pthread_create(&t[0], NULL, short_thread, NULL);
		pthread_join(t[0], NULL);
	}
	after = nheaps();
	T_OK(after <= before + 1, "200 short threads leave no heaps behind (%zu heaps before, %zu after)",
	     before, after);
	return t_done();
}
