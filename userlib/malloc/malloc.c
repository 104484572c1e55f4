// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libheapdev-malloc: the malloc family over heapdev heaps, for LD_PRELOAD
 * or for linking first.  See heapdev-malloc(3).
 *
 * Every block comes from the heapdev process heap (HEAPDEV_MALLOC_HEAPS=
 * process, the default) or from a heap per thread (=thread).  A thread's
 * heap is cached in initial-exec TLS (hdm_tl): malloc() is one TLS load
 * and one call of heapdev_alloc().  The first call of each thread goes
 * through hdm_setup(), which makes the thread's first libheapdev call
 * with hdm_depth set: anything glibc allocates meanwhile (pthread_atfork,
 * pthread_setspecific, ...) comes from the boot arena (boot.c), never
 * from a heap that is being set up.
 *
 * Bad pointers on the malloc path end the process (hdm_fatal), as glibc
 * does: a Win32 caller of the same heaps still gets FALSE from HeapFree,
 * since the library itself is not switched to terminate on corruption.
 */
#include "hdm.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <heapdev.h>

#define HDM_TLS __thread __attribute__((tls_model("initial-exec")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define HDM_PAGE 4096ul

extern char **environ;

/* The thread's heap, NULL until hdm_setup(). */
static HDM_TLS struct heapdev_heap *hdm_tl;
/* In hdm_setup() or the fork handlers: allocations go to the boot arena. */
static HDM_TLS int hdm_depth;
/* The thread's own heap has been retired (per-thread mode, thread exit). */
static HDM_TLS bool hdm_tl_done;

enum { HDM_CFG_NONE, HDM_CFG_BUSY, HDM_CFG_OK, HDM_CFG_FAILED };
static atomic_int hdm_cfg;		/* the environment has been read */
static bool hdm_per_thread;		/* HEAPDEV_MALLOC_HEAPS=thread */
static bool hdm_fallback;		/* HEAPDEV_MALLOC_FALLBACK=memfd */
static bool hdm_commit_now;		/* HEAPDEV_MALLOC_COMMIT=now */
static bool hdm_use_memfd;		/* the fallback was taken */
static bool hdm_failed;			/* no heap: malloc() fails */
static pthread_key_t hdm_key;

/* The process-wide heap: heapdev_process_heap(), or the memfd fallback. */
static struct heapdev_heap *_Atomic hdm_proc;
static atomic_int hdm_proc_lock;

/* Per-thread mode: heaps of exited threads that still hold blocks. */
#define HDM_ORPHANS 256
static struct heapdev_heap *hdm_orphans[HDM_ORPHANS];
static unsigned int hdm_norphans;
static atomic_int hdm_orphan_lock;

/*
 * Per-thread mode: the set of heaps malloc() uses besides the process
 * heap (open addressing, written under hdm_orphan_lock, read without a
 * lock: an entry is there before its heap's first block exists, and goes
 * only once the heap is empty), so that free() refuses blocks of heaps
 * the program created itself.
 */
#define HDM_HSET 4096
#define HDM_TOMB ((struct heapdev_heap *)1)
static struct heapdev_heap *_Atomic hdm_hset[HDM_HSET];
static unsigned int hdm_nhset;

/*
 * Heap mappings of the parent at the last fork(): in the child, blocks
 * there are gone (heapdev heaps are not inherited), the ranges are kept
 * reserved so that no new heap reuses them, and free() of such a block
 * does nothing.
 */
#define HDM_FORK_RANGES 16384
static struct { uintptr_t lo, hi; } hdm_fork_range[HDM_FORK_RANGES];
static unsigned int hdm_nfork;		/* ranges recorded */
static unsigned int hdm_nghost;		/* of them, reserved in this process */
static atomic_bool hdm_fork_note;

static void hdm_spin_lock(atomic_int *l)
{
	while (atomic_exchange_explicit(l, 1, memory_order_acquire))
		sched_yield();
}

static void hdm_spin_unlock(atomic_int *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

/* ---- messages ---- */

static void hdm_vsay(const char *fmt, va_list ap)
{
	char buf[768];
	int n;

	memcpy(buf, "heapdev-malloc: ", 16);
	n = vsnprintf(buf + 16, sizeof(buf) - 17, fmt, ap);
	if (n < 0)
		return;
	n += 16;
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

static __attribute__((format(printf, 1, 2))) void hdm_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hdm_vsay(fmt, ap);
	va_end(ap);
}

void hdm_fatal(const char *fn, const char *what, const void *p,
	       const void *heap)
{
	if (heap)
		hdm_say("%s(): %s: %p is not a live block of heap %p; aborting",
			fn, what, p, heap);
	else
		hdm_say("%s(): %s: %p is not in any heap of this process; aborting",
			fn, what, p);
	abort();
}

static const char *hdm_errstr(int err)
{
	const char *s = strerrordesc_np(err);

	return s ? s : "unknown error";
}

static bool hdm_debug(void)
{
	const char *s = getenv("HEAPDEV_DEBUG");

	return s && *s && *s != '0';
}

/* ---- configuration and the process-wide heap ---- */

static void hdm_atfork_prepare(void);
static void hdm_atfork_parent(void);
static void hdm_atfork_child(void);
static void hdm_thread_exit(void *heap);

/*
 * Whether environment variable @name asks for @other rather than @dflt
 * (unset and empty mean @dflt); anything else is reported once and makes
 * every allocation fail.
 */
static bool hdm_env_choice(const char *name, const char *dflt,
			   const char *other)
{
	const char *s = getenv(name);

	if (!s || !*s || !strcmp(s, dflt))
		return false;
	if (!strcmp(s, other))
		return true;
	hdm_say("%s=%s: not \"%s\" or \"%s\"; malloc() fails from now on",
		name, s, dflt, other);
	hdm_failed = true;
	return false;
}

/* Read the environment once.  hdm_depth is set. */
static void hdm_configure(void)
{
	hdm_per_thread = hdm_env_choice("HEAPDEV_MALLOC_HEAPS", "process",
					"thread");
	hdm_fallback = hdm_env_choice("HEAPDEV_MALLOC_FALLBACK", "none",
				      "memfd");
	hdm_commit_now = hdm_env_choice("HEAPDEV_MALLOC_COMMIT", "touch",
					"now");
	/* Around libheapdev's own: the child sees the heaps it kept. */
	if (heapdev_atfork(hdm_atfork_prepare, hdm_atfork_parent,
			   hdm_atfork_child)) {
		hdm_say("pthread_atfork() failed; malloc() fails from now on");
		hdm_failed = true;
	}
	if (hdm_per_thread && pthread_key_create(&hdm_key, hdm_thread_exit)) {
		hdm_say("pthread_key_create() failed; malloc() fails from now on");
		hdm_failed = true;
	}
}

/*
 * 1: configured; 0: too early (the environment is not set up yet: the
 * dynamic loader is still starting the process); -1: no heap, ever.
 */
static int hdm_config(void)
{
	int st = atomic_load_explicit(&hdm_cfg, memory_order_acquire);
	int none = HDM_CFG_NONE;

	if (likely(st == HDM_CFG_OK))
		return 1;
	if (st == HDM_CFG_FAILED)
		return -1;
	if (!environ)
		return 0;
	if (atomic_compare_exchange_strong(&hdm_cfg, &none, HDM_CFG_BUSY)) {
		hdm_configure();
		atomic_store_explicit(&hdm_cfg, hdm_failed ? HDM_CFG_FAILED :
				      HDM_CFG_OK, memory_order_release);
	}
	while ((st = atomic_load_explicit(&hdm_cfg, memory_order_acquire)) ==
	       HDM_CFG_BUSY)
		sched_yield();
	return st == HDM_CFG_OK ? 1 : -1;
}

/* Whether the default backend is the device ($HEAPDEV_BACKEND). */
static bool hdm_backend_is_device(void)
{
	const char *s = getenv("HEAPDEV_BACKEND");

	return !s || !*s || !strcmp(s, "device");
}

/*
 * A heap the drop-in allocates from: large blocks get their pages on first
 * touch, as glibc's mmap'ed chunks do (HEAPDEV_MALLOC_COMMIT=now: at once).
 */
static struct heapdev_heap *hdm_heap_ready(struct heapdev_heap *h)
{
	if (h && !hdm_commit_now)
		heapdev_set_lazy_commit(h, 1);
	return h;
}

static struct heapdev_heap *hdm_memfd_heap(void)
{
	struct heapdev_options o = {
		.size = sizeof(o), .flags = HEAPDEV_INHERIT,
		.backend = HEAPDEV_BACKEND_MEMFD,
	};
	struct heapdev_heap *h;
	int err = heapdev_create(&o, &h);

	if (err) {
		hdm_say("cannot create a memfd heap: %s; malloc() fails from now on",
			hdm_errstr(-err));
		return NULL;
	}
	return hdm_heap_ready(h);
}

/*
 * A mapping named "heapdev-malloc" in /proc/PID/maps, which heapstat(1)
 * looks for: it costs one VMA and no memory (PROT_NONE, never touched).
 */
static void hdm_mark_process(void)
{
	int fd = memfd_create("heapdev-malloc", MFD_CLOEXEC);

	if (fd < 0)
		return;
	if (mmap(NULL, HDM_PAGE, PROT_NONE, MAP_SHARED, fd, 0) == MAP_FAILED &&
	    hdm_debug())
		hdm_say("cannot map the heapstat marker: %s",
			hdm_errstr(errno));
	close(fd);
}

/* Create the process-wide heap.  hdm_depth is set; hdm_proc_lock held. */
static struct heapdev_heap *hdm_proc_create(void)
{
	static bool marked;
	struct heapdev_heap *h = NULL;
	int err;

	if (hdm_use_memfd)
		return hdm_memfd_heap();
	h = heapdev_process_heap();
	if (h) {
		if (!marked) {
			hdm_mark_process();
			marked = true;
		}
		return hdm_heap_ready(h);
	}
	err = errno;
	if (hdm_fallback && hdm_backend_is_device() && err != ENOMEM &&
	    err != EDQUOT) {
		hdm_say("cannot create the process heap on /dev/heapdev: %s; using the memfd backend (HEAPDEV_MALLOC_FALLBACK=memfd)",
			hdm_errstr(err));
		hdm_use_memfd = true;
		return hdm_memfd_heap();
	}
	if (err == ENOENT && hdm_backend_is_device())
		hdm_say("cannot create the process heap: /dev/heapdev: %s; malloc() fails from now on (load the heapdev module, or set HEAPDEV_BACKEND=memfd, or HEAPDEV_MALLOC_FALLBACK=memfd to use memfd when the device cannot be opened)",
			hdm_errstr(err));
	else if (err == EINVAL && !hdm_backend_is_device())
		hdm_say("cannot create the process heap: HEAPDEV_BACKEND=%s is not \"device\" or \"memfd\"; malloc() fails from now on",
			getenv("HEAPDEV_BACKEND"));
	else
		hdm_say("cannot create the process heap%s: %s; malloc() fails from now on",
			hdm_backend_is_device() ? " on /dev/heapdev" : "",
			hdm_errstr(err));
	return NULL;
}

static struct heapdev_heap *hdm_proc_heap(void)
{
	struct heapdev_heap *h = atomic_load_explicit(&hdm_proc,
						      memory_order_acquire);

	if (likely(h) || hdm_failed)
		return h;
	hdm_spin_lock(&hdm_proc_lock);
	h = atomic_load_explicit(&hdm_proc, memory_order_relaxed);
	if (!h && !hdm_failed) {
		h = hdm_proc_create();
		if (!h)
			hdm_failed = true;
		atomic_store_explicit(&hdm_proc, h, memory_order_release);
	}
	hdm_spin_unlock(&hdm_proc_lock);
	return h;
}

/* ---- per-thread heaps ---- */

static unsigned int hdm_hash(const struct heapdev_heap *h)
{
	return (unsigned int)(((uintptr_t)h >> 16) * 0x9E3779B97F4A7C15ull >>
			      52) & (HDM_HSET - 1);
}

/* hdm_orphan_lock held.  false: the set is full. */
static bool hdm_hset_add(struct heapdev_heap *h)
{
	unsigned int i = hdm_hash(h);

	if (hdm_nhset >= HDM_HSET / 2)
		return false;
	while (hdm_hset[i] && hdm_hset[i] != HDM_TOMB)
		i = (i + 1) & (HDM_HSET - 1);
	atomic_store_explicit(&hdm_hset[i], h, memory_order_release);
	hdm_nhset++;
	return true;
}

/* hdm_orphan_lock held. */
static void hdm_hset_del(struct heapdev_heap *h)
{
	unsigned int i = hdm_hash(h);
	struct heapdev_heap *e;

	while ((e = hdm_hset[i])) {
		if (e == h) {
			atomic_store_explicit(&hdm_hset[i], HDM_TOMB,
					      memory_order_relaxed);
			hdm_nhset--;
			return;
		}
		i = (i + 1) & (HDM_HSET - 1);
	}
}

/* Is @h a heap of malloc()'s? */
static bool hdm_mine(const struct heapdev_heap *h)
{
	unsigned int i, n;
	struct heapdev_heap *e;

	if (h == atomic_load_explicit(&hdm_proc, memory_order_relaxed))
		return true;
	if (!hdm_per_thread)
		return false;
	i = hdm_hash(h);
	for (n = 0; n < HDM_HSET; n++) {
		e = atomic_load_explicit(&hdm_hset[i], memory_order_acquire);
		if (!e)
			return false;
		if (e == h)
			return true;
		i = (i + 1) & (HDM_HSET - 1);
	}
	return false;
}

static bool hdm_main_thread(void)
{
	return gettid() == getpid();
}

static struct heapdev_heap *hdm_thread_heap_new(void)
{
	struct heapdev_options o = { .size = sizeof(o) };
	struct heapdev_heap *h = NULL;
	int err;

	hdm_spin_lock(&hdm_orphan_lock);
	if (hdm_norphans)
		h = hdm_orphans[--hdm_norphans];
	hdm_spin_unlock(&hdm_orphan_lock);
	if (h)
		return h;
	o.backend = hdm_use_memfd ? HEAPDEV_BACKEND_MEMFD :
		    HEAPDEV_BACKEND_DEFAULT;
	/* A fork() child keeps it, as it keeps the process heap. */
	o.flags = HEAPDEV_INHERIT | (hdm_commit_now ? 0 : HEAPDEV_LAZY_COMMIT);
	err = heapdev_create(&o, &h);
	if (!err) {
		hdm_spin_lock(&hdm_orphan_lock);
		if (!hdm_hset_add(h)) {
			heapdev_destroy(h);
			err = -ENOSPC;
		}
		hdm_spin_unlock(&hdm_orphan_lock);
	}
	if (err) {
		/* The process heap serves this thread instead. */
		if (hdm_debug())
			hdm_say("cannot create a heap for thread %d: %s; it uses the process heap",
				gettid(), hdm_errstr(-err));
		return NULL;
	}
	return h;
}

/* Thread exit (per-thread mode): destroy the heap, or keep it for reuse. */
static void hdm_thread_exit(void *v)
{
	struct heapdev_heap *h = v;
	struct heapdev_heap_info info = { .size = sizeof(info) };

	hdm_tl_done = true;
	hdm_tl = hdm_proc_heap();	/* later destructors' calls */
	if (!h || h == hdm_tl)
		return;
	hdm_depth++;
	if (!heapdev_get_info(h, &info) && !info.blocks) {
		hdm_spin_lock(&hdm_orphan_lock);
		hdm_hset_del(h);
		hdm_spin_unlock(&hdm_orphan_lock);
		heapdev_destroy(h);
	} else {
		hdm_spin_lock(&hdm_orphan_lock);
		if (hdm_norphans < HDM_ORPHANS)
			hdm_orphans[hdm_norphans++] = h;
		hdm_spin_unlock(&hdm_orphan_lock);
	}
	hdm_depth--;
}

/*
 * hdm_setup() - the calling thread's heap, on its first call
 *
 * Return: the heap; NULL with *boot set when the call must be served by
 * the boot arena (inside hdm_setup() already, or too early in the
 * process's start); NULL with errno ENOMEM when there is no heap.
 */
static struct heapdev_heap *hdm_setup(bool *boot)
{
	struct heapdev_heap *h, *own = NULL;
	int c;

	*boot = false;
	if (hdm_depth) {
		*boot = true;
		return NULL;
	}
	hdm_depth++;
	c = hdm_config();
	if (c <= 0) {
		hdm_depth--;
		*boot = !c;
		errno = ENOMEM;
		return NULL;
	}
	h = hdm_proc_heap();
	if (h && hdm_per_thread && !hdm_tl_done && !hdm_main_thread()) {
		own = hdm_thread_heap_new();
		if (own) {
			pthread_setspecific(hdm_key, own);
			h = own;
		}
	}
	if (h) {
		/* The thread's first libheapdev call: it registers there. */
		struct heapdev_heap_info info = { .size = sizeof(info) };

		(void)heapdev_get_info(h, &info);
		hdm_tl = h;
	}
	hdm_depth--;
	if (!h)
		errno = ENOMEM;
	return h;
}

/*
 * The heap to free @p into (not a boot block): the process heap, or in
 * per-thread mode the heap whose memory holds @p if it is one of
 * malloc()'s (the thread's own, checked first, or another's).
 */
static inline struct heapdev_heap *hdm_owner(const void *p)
{
	struct heapdev_heap *h;

	if (!hdm_per_thread)
		return hdm_tl;
	h = heapdev_heap_of(p);
	if (likely(h == hdm_tl) || !h || hdm_mine(h))
		return h;
	return NULL;
}

/* ---- bad pointers ---- */

/* A block the parent had when it forked: gone in this child. */
static bool hdm_prefork(const void *p)
{
	unsigned int i;

	for (i = 0; i < hdm_nghost; i++)
		if ((uintptr_t)p >= hdm_fork_range[i].lo &&
		    (uintptr_t)p < hdm_fork_range[i].hi)
			return true;
	return false;
}

/*
 * @p was refused by the heap @h it was checked against (or @h is NULL:
 * no heap was found).  Returns only for a free of a pre-fork block in a
 * child, which does nothing.
 */
static void hdm_bad(const void *p, struct heapdev_heap *h, const char *fn,
		    bool freeing)
{
	struct heapdev_heap *owner = heapdev_heap_of(p);

	if (!owner && hdm_prefork(p)) {
		if (!freeing) {
			hdm_say("%s(): %p was allocated before fork(): its memory is not in the child (heapdev heaps are not inherited); aborting",
				fn, p);
			abort();
		}
		if (hdm_debug() && !atomic_exchange(&hdm_fork_note, true))
			hdm_say("%s(%p): a block allocated before fork(), not in this child: nothing to free (reported once)",
				fn, p);
		return;
	}
	if (!owner)
		hdm_fatal(fn, "invalid pointer", p, NULL);
	if (!hdm_mine(owner)) {
		hdm_say("%s(): invalid pointer: %p is in heap %p, which malloc() does not use; aborting",
			fn, p, (void *)owner);
		abort();
	}
	hdm_fatal(fn, "double free or corruption", p, owner);
}

/* ---- the malloc family ---- */

static void *hdm_alloc_slow(size_t n, size_t align, unsigned int flags)
{
	bool boot;
	struct heapdev_heap *h = hdm_setup(&boot);
	void *p;

	if (!h)
		return boot ? hdm_boot_alloc(n, align,
					     !!(flags & HEAPDEV_ZERO)) : NULL;
	if (align > 16)
		p = heapdev_alloc_aligned(h, n, align, flags);
	else
		p = heapdev_alloc(h, n, flags);
	if (!p && errno != EINVAL)
		errno = ENOMEM;
	return p;
}

HDM_EXPORT void *malloc(size_t n)
{
	struct heapdev_heap *h = hdm_tl;
	void *p;

	if (unlikely(!h))
		return hdm_alloc_slow(n, 0, 0);
	p = heapdev_alloc(h, n, 0);
	if (unlikely(!p))
		errno = ENOMEM;		/* EDQUOT too: malloc() says ENOMEM */
	return p;
}

HDM_EXPORT void *calloc(size_t nmemb, size_t size)
{
	struct heapdev_heap *h = hdm_tl;
	size_t n;
	void *p;

	if (unlikely(__builtin_mul_overflow(nmemb, size, &n))) {
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(!h))
		return hdm_alloc_slow(n, 0, HEAPDEV_ZERO);
	p = heapdev_alloc(h, n, HEAPDEV_ZERO);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

static __attribute__((noinline)) void hdm_free_slow(void *p, const char *fn)
{
	struct heapdev_heap *h;
	bool boot;

	if (hdm_boot_owns(p)) {
		hdm_boot_free(p, fn);
		return;
	}
	if (!hdm_tl && !hdm_setup(&boot) && !boot && !hdm_nghost)
		hdm_fatal(fn, "invalid pointer", p, NULL);	/* no heap */
	h = hdm_owner(p);
	if (!h || heapdev_free(h, p, 0))
		hdm_bad(p, h, fn, true);
}

/*
 * Boot blocks are told apart before heapdev_free() sees them: to the
 * library they are bad pointers, which a program that enabled
 * termination on corruption (HeapEnableTerminationOnCorruption) would
 * die of.
 */
HDM_EXPORT void free(void *p)
{
	struct heapdev_heap *h;

	if (unlikely(!p))
		return;
	h = hdm_owner(p);
	if (unlikely(!h || hdm_boot_owns(p) || heapdev_free(h, p, 0)))
		hdm_free_slow(p, "free");
}

HDM_EXPORT void cfree(void *p);
HDM_EXPORT void cfree(void *p)
{
	free(p);
}

static void *hdm_boot_realloc(void *p, size_t n)
{
	size_t old = hdm_boot_size(p, "realloc");
	void *q = malloc(n);

	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	hdm_boot_free(p, "realloc");
	return q;
}

/* heapdev_realloc() failed: a bad pointer, or no memory. */
static __attribute__((noinline, cold)) void *
hdm_realloc_failed(const void *p, struct heapdev_heap *h)
{
	if (errno == EINVAL)
		hdm_bad(p, h, "realloc", false);
	errno = ENOMEM;
	return NULL;
}

/* realloc() of a block the fast path did not resize. */
static __attribute__((noinline)) void *hdm_realloc_slow(void *p, size_t n)
{
	struct heapdev_heap *h;
	void *q;

	if (unlikely(!n)) {
		free(p);		/* glibc: realloc(p, 0) frees p */
		return NULL;
	}
	if (unlikely(hdm_boot_owns(p)))
		return hdm_boot_realloc(p, n);
	h = hdm_owner(p);
	if (unlikely(!h)) {
		bool boot;

		if (!hdm_tl)
			hdm_setup(&boot);
		h = hdm_owner(p);
		if (!h)
			hdm_bad(p, NULL, "realloc", false);
	}
	q = heapdev_realloc(h, p, n, 0);
	return likely(q) ? q : hdm_realloc_failed(p, h);
}

/*
 * realloc(NULL, n) is a tail call of malloc(), and a block of the
 * thread's heap (a heap per process) is resized with one call; the rest
 * is in hdm_realloc_slow().
 */
HDM_EXPORT void *realloc(void *p, size_t n)
{
	struct heapdev_heap *h = hdm_tl;
	void *q;

	if (!p)
		return malloc(n);
	if (unlikely(!h || !n || hdm_per_thread || hdm_boot_owns(p)))
		return hdm_realloc_slow(p, n);
	q = heapdev_realloc(h, p, n, 0);
	return likely(q) ? q : hdm_realloc_failed(p, h);
}

HDM_EXPORT void *reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(nmemb, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

/* @align: a power of two. */
static void *hdm_aligned(size_t align, size_t n)
{
	struct heapdev_heap *h = hdm_tl;
	void *p;

	if (align <= 16)
		return malloc(n);
	if (unlikely(!h))
		return hdm_alloc_slow(n, align, 0);
	p = heapdev_alloc_aligned(h, n, align, 0);
	if (!p && errno != EINVAL)
		errno = ENOMEM;
	return p;
}

static bool hdm_pow2(size_t a)
{
	return a && !(a & (a - 1));
}

HDM_EXPORT int posix_memalign(void **memptr, size_t align, size_t n)
{
	int saved = errno, err;
	void *p;

	if (!hdm_pow2(align) || align % sizeof(void *))
		return EINVAL;
	p = hdm_aligned(align, n);
	if (!p) {
		err = errno == EINVAL ? EINVAL : ENOMEM;
		errno = saved;
		return err;
	}
	*memptr = p;
	errno = saved;
	return 0;
}

HDM_EXPORT void *aligned_alloc(size_t align, size_t n)
{
	if (!hdm_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return hdm_aligned(align, n);
}

HDM_EXPORT void *memalign(size_t align, size_t n)
{
	/* glibc's rules: not a power of two is rounded up to one. */
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!hdm_pow2(align))
		align = align ? (size_t)1 << (64 - __builtin_clzl(align)) : 1;
	return hdm_aligned(align, n);
}

HDM_EXPORT void *valloc(size_t n)
{
	return hdm_aligned(HDM_PAGE, n);
}

HDM_EXPORT void *pvalloc(size_t n)
{
	if (n > SIZE_MAX - (HDM_PAGE - 1)) {
		errno = ENOMEM;
		return NULL;
	}
	return hdm_aligned(HDM_PAGE, (n + HDM_PAGE - 1) & ~(HDM_PAGE - 1));
}

/* The size of a live block; anything else ends the process. */
static size_t hdm_size_of(const void *p, const char *fn)
{
	struct heapdev_heap *h;
	size_t n;

	if (hdm_boot_owns(p))
		return hdm_boot_size(p, fn);
	h = hdm_owner(p);
	if (!h) {
		bool boot;

		if (!hdm_tl)
			hdm_setup(&boot);
		h = hdm_owner(p);
	}
	if (!h || heapdev_size(h, p, 0, &n))
		hdm_bad(p, h, fn, false);
	return n;
}

HDM_EXPORT size_t malloc_usable_size(void *p)
{
	return p ? hdm_size_of(p, "malloc_usable_size") : 0;
}

HDM_EXPORT int malloc_trim(size_t pad)
{
	struct heapdev_heap *h = hdm_proc_heap();
	struct heapdev_heap_info a = { .size = sizeof(a) }, b = a;

	(void)pad;
	if (!h || heapdev_get_info(h, &a))
		return 0;
	if (hdm_per_thread)
		heapdev_trim(NULL);
	else
		heapdev_compact(h, 0, NULL);
	if (heapdev_get_info(h, &b))
		return 0;
	return b.committed < a.committed || hdm_per_thread;
}

/* ---- for the C++ operators (new_delete.cc) ---- */

void *hdm_new(size_t n, size_t align)
{
	return align > 16 ? hdm_aligned(align, n) : malloc(n);
}

void hdm_delete(void *p, size_t size, size_t align, const char *fn)
{
	struct heapdev_heap *h;
	size_t n;

	if (!p)
		return;
	if (align && (uintptr_t)p & (align - 1)) {
		hdm_say("%s(): %p is not aligned to %zu as this delete says: new/delete mismatch; aborting",
			fn, p, align);
		abort();
	}
	if (hdm_boot_owns(p) || !hdm_owner(p)) {
		if (size && (n = hdm_size_of(p, fn)) != size)
			goto mismatch;
		hdm_free_slow(p, fn);
		return;
	}
	h = hdm_owner(p);
	if (size) {
		if (heapdev_size(h, p, 0, &n)) {
			hdm_bad(p, h, fn, true);
			return;
		}
		if (n != size)
			goto mismatch;
	}
	if (heapdev_free(h, p, 0))
		hdm_bad(p, h, fn, true);
	return;
mismatch:
	hdm_say("%s(): %p is a block of %zu bytes, this delete says %zu: new/delete mismatch; aborting",
		fn, p, n, size);
	abort();
}

/* ---- fork ---- */

/* Parse a "lo-hi perms off dev ino path" line of /proc/self/maps. */
static void hdm_fork_line(const char *s, const char *end)
{
	uintptr_t lo = 0, hi = 0;
	const char *path;
	int field = 0;

	while (s < end && *s != '-') {
		int c = *s++;

		lo = lo << 4 | (uintptr_t)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
	}
	for (s++; s < end && *s != ' '; s++) {
		int c = *s;

		hi = hi << 4 | (uintptr_t)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
	}
	/* perms, offset, dev, inode, then the path */
	for (; s < end && field < 4; field++) {
		while (s < end && *s == ' ')
			s++;
		while (s < end && *s != ' ')
			s++;
	}
	while (s < end && *s == ' ')
		s++;
	path = s;
	if (!((end - path == 12 && !memcmp(path, "/dev/heapdev", 12)) ||
	      (end - path >= 14 && !memcmp(path, "/memfd:heapdev", 14) &&
	       (end - path == 14 || path[14] == ' '))))
		return;
	if (hdm_nfork && hdm_fork_range[hdm_nfork - 1].hi == lo &&
	    hdm_nfork > hdm_nghost) {
		hdm_fork_range[hdm_nfork - 1].hi = hi;
		return;
	}
	if (hdm_nfork < HDM_FORK_RANGES) {
		hdm_fork_range[hdm_nfork].lo = lo;
		hdm_fork_range[hdm_nfork].hi = hi;
		hdm_nfork++;
	}
}

/* Record the heaps' mappings (prepare handler: no allocation). */
static void hdm_fork_scan(void)
{
	char buf[4096];
	size_t have = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	hdm_nfork = hdm_nghost;
	if (fd < 0)
		return;
	for (;;) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - have);
		char *s = buf, *nl;

		if (r <= 0)
			break;
		have += r;
		while ((nl = memchr(s, '\n', buf + have - s))) {
			hdm_fork_line(s, nl);
			s = nl + 1;
		}
		have = buf + have - s;
		memmove(buf, s, have);
		if (have == sizeof(buf))
			have = 0;	/* a line longer than the buffer */
	}
	close(fd);
}

static void hdm_atfork_prepare(void)
{
	hdm_depth++;
	hdm_fork_scan();
	hdm_boot_atfork_prepare();
}

static void hdm_atfork_parent(void)
{
	hdm_boot_atfork_parent();
	hdm_depth--;
}

/* In the child: whether libheapdev kept heap @h (HEAPDEV_INHERIT). */
static bool hdm_kept(struct heapdev_heap *h)
{
	struct heapdev_heap_info info = { .size = sizeof(info) };

	return h && h != HDM_TOMB && !heapdev_get_info(h, &info);
}

/*
 * The child keeps the heaps libheapdev kept (its heaps are created with
 * HEAPDEV_INHERIT: the process heap and the per-thread heaps, with a copy
 * of their memory made at the fork), and the heaps of the threads that
 * did not come along become orphans for its new threads.
 */
static void hdm_fork_keep(void)
{
	struct heapdev_heap *set[HDM_HSET / 2], *h;
	unsigned int i, n = 0;

	h = atomic_load_explicit(&hdm_proc, memory_order_relaxed);
	if (h && !hdm_kept(h)) {
		if (hdm_debug())
			hdm_say("fork(): the child has no copy of the process heap (an older module, or a limit): blocks allocated before the fork are not in the child");
		atomic_store_explicit(&hdm_proc, NULL, memory_order_relaxed);
	}
	if (!hdm_kept(hdm_tl))
		hdm_tl = NULL;
	for (i = 0; i < HDM_HSET && n < HDM_HSET / 2; i++) {
		h = hdm_hset[i];
		if (hdm_kept(h))
			set[n++] = h;
	}
	memset((void *)hdm_hset, 0, sizeof(hdm_hset));
	hdm_nhset = 0;
	hdm_norphans = 0;
	for (i = 0; i < n; i++) {
		hdm_hset_add(set[i]);
		if (set[i] != hdm_tl && hdm_norphans < HDM_ORPHANS)
			hdm_orphans[hdm_norphans++] = set[i];
	}
}

/*
 * The child: keep the parent's heaps that libheapdev kept, and the ranges
 * of the others reserved (PROT_NONE, no memory) so that its new heaps
 * never reuse them (with an older module, which cannot copy heaps, that
 * is every heap; a new process heap is made on the next call then).  Only
 * system calls: a child that calls only async-signal-safe functions
 * before exec may fork.
 */
static void hdm_atfork_child(void)
{
	unsigned int i, n = hdm_nghost;

	hdm_boot_atfork_child();
	for (i = hdm_nghost; i < hdm_nfork; i++) {
		uintptr_t lo = hdm_fork_range[i].lo;
		size_t len = hdm_fork_range[i].hi - lo;
		void *p = mmap((void *)lo, len, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			       MAP_FIXED_NOREPLACE, -1, 0);

		/* Still mapped: a heap the child kept. */
		if (p == MAP_FAILED && errno == EEXIST)
			continue;

		/*
		 * Without MAP_FIXED_NOREPLACE (before Linux 4.17) the kernel
		 * took the address as a hint: give that mapping back.  The
		 * range stays on the list either way: free() of its blocks
		 * does nothing.
		 */
		if (p != MAP_FAILED && (uintptr_t)p != lo)
			munmap(p, len);
		hdm_fork_range[n++] = hdm_fork_range[i];
	}
	hdm_nghost = hdm_nfork = n;
	hdm_proc_lock = 0;
	hdm_orphan_lock = 0;
	hdm_fork_keep();
	hdm_tl_done = false;
	hdm_depth--;
}

/* Set the process up before main(), whatever calls malloc() first. */
static __attribute__((constructor)) void hdm_init(void)
{
	bool boot;

	if (!hdm_tl)
		hdm_setup(&boot);
}
