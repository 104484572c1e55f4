// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: hole punches in the background, for the memfd backend.
 *
 * Destroying a big memfd heap ends in one fallocate(PUNCH_HOLE) over its
 * window, and the time of that call is the kernel freeing every page of
 * the heap: for 10^6 live blocks it is most of HeapDestroy.  Nothing the
 * caller does next needs those pages gone, so the punch is queued to an
 * io_uring of the library's own (IORING_OP_FALLOCATE, which the kernel
 * always runs in its io-wq worker, never in the submitting thread) and
 * HeapDestroy returns once the heap's mappings are inaccessible; the
 * punch zaps them in the worker, and the caller unmaps them afterwards
 * (backend.c).
 *
 * The queue owns no memory and lets no window be reused early: a punch
 * carries the caller's tag, which the caller gets back from
 * hd_punch_done() only once the range is empty.  A punch
 * that fails in the worker is done again here, synchronously.  At most
 * HD_PUNCH_SLOTS punches and HD_PUNCH_BYTES committed bytes are in
 * flight: beyond either, hd_punch_start() waits for earlier ones, so a
 * loop that creates and destroys heaps cannot run ahead of the kernel.
 * Without io_uring (a seccomp filter, the io_uring_disabled sysctl, a
 * kernel built without it) hd_punch_start() refuses and the caller
 * punches at once.
 *
 * A fork() child unmaps its copy of the parent's ring and closes its
 * descriptor (hd_punch_atfork_child()): a child never waits for, or
 * reaps, the parent's punches.  (The mappings are inherited and unmapped
 * rather than MADV_DONTFORK, so that tools that track the address space,
 * valgrind, see the child's as it is.)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backend_int.h"

#define HD_PUNCH_BYTES	(256ULL << 20)	/* committed bytes in flight, at most */

/* LOST: abandoned while the kernel may still run it (hd_ring_abandon()) */
enum { HD_SLOT_FREE, HD_SLOT_BUSY, HD_SLOT_DONE, HD_SLOT_LOST };

struct hd_punch_slot {
	uint64_t off, len, bytes, tag;
	int fd;
	int state;
};

static pthread_mutex_t hd_punch_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct hd_punch_slot hd_pslots[HD_PUNCH_SLOTS];
static _Atomic unsigned int hd_punch_used;	/* slots busy or done */
static uint64_t hd_punch_bytes;			/* bytes of busy slots */
static unsigned int hd_punch_busy;
static bool hd_punch_off;	/* io_uring is unavailable: never retried */

/* The ring: its descriptor and the three mappings of the io_uring ABI. */
static int hd_ring_fd = -1;
static void *hd_sq_map, *hd_cq_map;
static size_t hd_sq_len, hd_cq_len, hd_sqes_len;
static struct io_uring_sqe *hd_sqes;
static unsigned int *hd_sq_tail, *hd_sq_mask, *hd_sq_array;
static unsigned int *hd_cq_head, *hd_cq_tail, *hd_cq_mask;
static struct io_uring_cqe *hd_cqes;

static void hd_ring_unmap(void)
{
	if (hd_sqes)
		munmap(hd_sqes, hd_sqes_len);
	if (hd_cq_map && hd_cq_map != hd_sq_map)
		munmap(hd_cq_map, hd_cq_len);
	if (hd_sq_map)
		munmap(hd_sq_map, hd_sq_len);
	hd_sqes = NULL;
	hd_sq_map = hd_cq_map = NULL;
}

static void *hd_ring_map(size_t len, uint64_t off)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, hd_ring_fd, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

/* Set the ring up (mutex held).  Return: 0 or a negative errno. */
static int hd_ring_setup(void)
{
	struct io_uring_params p = { 0 };
	long fd;

	fd = syscall(__NR_io_uring_setup, HD_PUNCH_SLOTS, &p);
	if (fd < 0)
		return -errno;
	hd_ring_fd = (int)fd;
	hd_sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned int);
	hd_cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP) {
		if (hd_cq_len > hd_sq_len)
			hd_sq_len = hd_cq_len;
		hd_cq_len = hd_sq_len;
	}
	hd_sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
	hd_sq_map = hd_ring_map(hd_sq_len, IORING_OFF_SQ_RING);
	hd_cq_map = !hd_sq_map ? NULL :
		    p.features & IORING_FEAT_SINGLE_MMAP ? hd_sq_map :
		    hd_ring_map(hd_cq_len, IORING_OFF_CQ_RING);
	hd_sqes = hd_cq_map ? hd_ring_map(hd_sqes_len, IORING_OFF_SQES) : NULL;
	if (!hd_sqes || p.sq_entries < HD_PUNCH_SLOTS ||
	    p.cq_entries < HD_PUNCH_SLOTS) {
		hd_ring_unmap();
		close(hd_ring_fd);
		hd_ring_fd = -1;
		return -ENOMEM;
	}
	hd_sq_tail = (unsigned int *)((char *)hd_sq_map + p.sq_off.tail);
	hd_sq_mask = (unsigned int *)((char *)hd_sq_map + p.sq_off.ring_mask);
	hd_sq_array = (unsigned int *)((char *)hd_sq_map + p.sq_off.array);
	hd_cq_head = (unsigned int *)((char *)hd_cq_map + p.cq_off.head);
	hd_cq_tail = (unsigned int *)((char *)hd_cq_map + p.cq_off.tail);
	hd_cq_mask = (unsigned int *)((char *)hd_cq_map + p.cq_off.ring_mask);
	hd_cqes = (struct io_uring_cqe *)((char *)hd_cq_map + p.cq_off.cqes);
	return 0;
}

/* Punch @s's range in this thread (a punch the worker could not do). */
static void hd_punch_now(const struct hd_punch_slot *s)
{
	int err;

	do {
		err = fallocate(s->fd, FALLOC_FL_PUNCH_HOLE |
				FALLOC_FL_KEEP_SIZE, (off_t)s->off,
				(off_t)s->len) ? errno : 0;
	} while (err == EINTR);
	if (err)
		hd_dbg("heapdev: memfd: punching a destroyed heap's window: %s",
		       hd_errstr(-err));
}

/* Mark the punches the kernel has finished done (mutex held). */
static void hd_ring_reap(void)
{
	unsigned int head = *hd_cq_head;
	unsigned int tail = __atomic_load_n(hd_cq_tail, __ATOMIC_ACQUIRE);

	for (; head != tail; head++) {
		const struct io_uring_cqe *c = &hd_cqes[head & *hd_cq_mask];
		struct hd_punch_slot *s;

		if (c->user_data >= HD_PUNCH_SLOTS)
			continue;
		s = &hd_pslots[c->user_data];
		if (s->state != HD_SLOT_BUSY)
			continue;	/* one hd_ring_abandon() did */
		if (c->res < 0) {
			if (c->res == -EINVAL || c->res == -EOPNOTSUPP)
				hd_punch_off = true;	/* no IORING_OP_FALLOCATE */
			hd_punch_now(s);
		}
		s->state = HD_SLOT_DONE;
		hd_punch_bytes -= s->bytes;
		hd_punch_busy--;
	}
	__atomic_store_n(hd_cq_head, head, __ATOMIC_RELEASE);
}

/*
 * The ring cannot be waited on: punch what is in flight here, so that its
 * pages are given back, and use the ring no more (mutex held).  The
 * kernel may still run those requests later, so their tags are never
 * given back: their windows are not reused (their metadata and
 * inaccessible mappings stay, at most HD_PUNCH_SLOTS of them, on a path
 * that io_uring_enter() failing on its own ring makes unreachable in
 * practice).
 */
static void hd_ring_abandon(int err)
{
	unsigned int i, n = 0;

	hd_dbg("heapdev: memfd: io_uring_enter: %s", hd_errstr(err));
	hd_punch_off = true;
	for (i = 0; i < HD_PUNCH_SLOTS; i++) {
		if (hd_pslots[i].state != HD_SLOT_BUSY)
			continue;
		hd_punch_now(&hd_pslots[i]);
		hd_pslots[i].state = HD_SLOT_LOST;
		n++;
	}
	hd_punch_busy = 0;
	hd_punch_bytes = 0;
	atomic_fetch_sub_explicit(&hd_punch_used, n, memory_order_relaxed);
}

/* Wait until a punch in flight finishes (mutex held, one is busy). */
static void hd_ring_wait(void)
{
	long r = syscall(__NR_io_uring_enter, hd_ring_fd, 0, 1,
			 IORING_ENTER_GETEVENTS, NULL, 0);

	if (r < 0 && errno != EINTR)
		hd_ring_abandon(-errno);
	else
		hd_ring_reap();
}

/**
 * hd_punch_start() - punch a hole in the background
 * @fd: the file
 * @off: first byte
 * @len: bytes
 * @bytes: committed bytes the punch frees (for the limit on bytes in
 *	flight)
 * @tag: given back by hd_punch_done() once the range is empty
 *
 * May wait for earlier punches (at most HD_PUNCH_SLOTS and HD_PUNCH_BYTES
 * in flight).
 *
 * Return: 0 when queued, or a negative errno when the caller must punch
 * itself: io_uring is unavailable, or every slot holds a finished punch
 * that hd_punch_done() has not collected.
 */
int hd_punch_start(int fd, uint64_t off, uint64_t len, uint64_t bytes,
		   uint64_t tag)
{
	struct io_uring_sqe *sqe;
	unsigned int i, t;
	int err = 0;
	long r;

	pthread_mutex_lock(&hd_punch_mutex);
	if (hd_punch_off) {
		err = -EOPNOTSUPP;
		goto out;
	}
	if (hd_ring_fd < 0) {
		err = hd_ring_setup();
		if (err) {
			hd_dbg("heapdev: memfd: no io_uring (%s): destroyed "
			       "heaps are released at once", hd_errstr(err));
			hd_punch_off = true;
			goto out;
		}
	}
	hd_ring_reap();
	while (hd_punch_busy &&
	       (hd_punch_busy == HD_PUNCH_SLOTS ||
		hd_punch_bytes + bytes > HD_PUNCH_BYTES))
		hd_ring_wait();
	for (i = 0; i < HD_PUNCH_SLOTS; i++)
		if (hd_pslots[i].state == HD_SLOT_FREE)
			break;
	if (i == HD_PUNCH_SLOTS || hd_punch_off) {
		err = -EBUSY;
		goto out;
	}
	hd_pslots[i] = (struct hd_punch_slot){ .off = off, .len = len,
					       .bytes = bytes, .tag = tag,
					       .fd = fd,
					       .state = HD_SLOT_BUSY };
	t = *hd_sq_tail;
	sqe = &hd_sqes[t & *hd_sq_mask];
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_FALLOCATE;
	sqe->fd = fd;
	sqe->off = off;
	sqe->addr = len;	/* fallocate's length */
	sqe->len = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;	/* mode */
	sqe->user_data = i;
	hd_sq_array[t & *hd_sq_mask] = t & *hd_sq_mask;
	__atomic_store_n(hd_sq_tail, t + 1, __ATOMIC_RELEASE);
	do {
		r = syscall(__NR_io_uring_enter, hd_ring_fd, 1, 0, 0, NULL, 0);
	} while (r < 0 && errno == EINTR);
	if (r != 1) {
		/* The entry stays unsubmitted: the ring is not used again. */
		err = r < 0 ? -errno : -EIO;
		hd_dbg("heapdev: memfd: io_uring_enter: %s", hd_errstr(err));
		hd_pslots[i].state = HD_SLOT_FREE;
		hd_punch_off = true;
		goto out;
	}
	hd_punch_busy++;
	hd_punch_bytes += bytes;
	atomic_fetch_add_explicit(&hd_punch_used, 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&hd_punch_mutex);
	return err;
}

/**
 * hd_punch_done() - collect finished punches
 * @tags: out: their tags (HD_PUNCH_SLOTS entries)
 * @all: first wait until no punch is in flight; without it, collect
 *	nothing when another thread holds the queue
 *
 * Return: how many tags were stored; each one's range is empty.
 */
unsigned int hd_punch_done(uint64_t *tags, bool all)
{
	unsigned int i, n = 0;

	if (!atomic_load_explicit(&hd_punch_used, memory_order_relaxed))
		return 0;
	/*
	 * Collecting is opportunistic: a heap's create or destroy does not
	 * wait behind a thread that holds the queue while it waits for the
	 * kernel (back-pressure in hd_punch_start(), or @all).
	 */
	if (all)
		pthread_mutex_lock(&hd_punch_mutex);
	else if (pthread_mutex_trylock(&hd_punch_mutex))
		return 0;
	if (hd_ring_fd >= 0) {
		hd_ring_reap();
		while (all && hd_punch_busy)
			hd_ring_wait();
	}
	for (i = 0; i < HD_PUNCH_SLOTS; i++) {
		if (hd_pslots[i].state != HD_SLOT_DONE)
			continue;
		tags[n++] = hd_pslots[i].tag;
		hd_pslots[i].state = HD_SLOT_FREE;
	}
	atomic_fetch_sub_explicit(&hd_punch_used, n, memory_order_relaxed);
	pthread_mutex_unlock(&hd_punch_mutex);
	return n;
}

/**
 * hd_punch_pending() - whether punches are in flight
 */
bool hd_punch_pending(void)
{
	return atomic_load_explicit(&hd_punch_used, memory_order_relaxed);
}

/*
 * fork(): the slots are consistent in the child because the mutex is held
 * across the fork (prepare, then parent or child).  The prepare handler
 * may wait for a punch that a thread waits for under the mutex.
 */
void hd_punch_fork_prepare(void)
{
	pthread_mutex_lock(&hd_punch_mutex);
}

void hd_punch_fork_parent(void)
{
	pthread_mutex_unlock(&hd_punch_mutex);
}

/**
 * hd_punch_atfork_child() - in a fork() child: forget the parent's ring
 * @tags: out: the tags of every punch queued or finished (HD_PUNCH_SLOTS
 *	entries), which the child must not reuse: their ranges are the
 *	parent's business
 *
 * The ring's mappings are unmapped and its descriptor closed.  A later
 * punch sets up a ring of the child's own.
 *
 * Return: how many tags were stored.
 */
unsigned int hd_punch_atfork_child(uint64_t *tags)
{
	unsigned int i, n = 0;

	/* Taken by this thread in hd_punch_fork_prepare(). */
	pthread_mutex_unlock(&hd_punch_mutex);
	for (i = 0; i < HD_PUNCH_SLOTS; i++) {
		if (hd_pslots[i].state != HD_SLOT_FREE)
			tags[n++] = hd_pslots[i].tag;
		hd_pslots[i].state = HD_SLOT_FREE;
	}
	if (hd_ring_fd >= 0) {
		hd_ring_unmap();
		close(hd_ring_fd);
	}
	hd_ring_fd = -1;
	hd_punch_busy = 0;
	hd_punch_bytes = 0;
	atomic_store_explicit(&hd_punch_used, 0, memory_order_relaxed);
	return n;
}
