// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * The boot arena of libheapdev-malloc: where malloc() serves the calls it
 * cannot send to a heapdev heap, because they come from inside libheapdev
 * (or from a libc function libheapdev calls, such as pthread_atfork())
 * while the drop-in is already in a libheapdev call on the same thread.
 *
 * One reservation of HDM_BOOT_SIZE bytes of address space (PROT_NONE,
 * made read-write as it fills), so that free() recognises its blocks by
 * address with one compare.  Power-of-two size classes from 32 bytes,
 * LIFO free lists, a 16-byte header before each block: small, bounded
 * and never in the way of the heaps.  The blocks are ordinary anonymous
 * memory, so a fork() child keeps them.
 */
#include "hdm.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HDM_BOOT_STEP		(256u << 10)	/* made read-write at a time */
#define HDM_BOOT_MIN_SHIFT	5		/* 32-byte blocks, header included */
#define HDM_BOOT_CLASSES	26		/* up to 1 GiB */
#define HDM_BOOT_BUSY		0x68646d42u	/* "hdmB" */
#define HDM_BOOT_FREE		0x68646d46u	/* "hdmF" */

/* Just before the data; a freed block keeps magic and offset. */
struct hdm_boot_hdr {
	uint32_t magic;
	uint32_t offset;	/* from the start of the slot to the data */
	union {
		struct {
			uint32_t cls;
			uint32_t size;	/* requested, capped at UINT32_MAX */
		};
		struct hdm_boot_hdr *next;	/* free: the class's list */
	};
};

/*
 * Until the first boot allocation, the base is the top GiB of the 64-bit
 * space (kernel addresses): hdm_boot_owns() matches no user pointer.
 */
uintptr_t hdm_boot_base = HDM_BOOT_NONE;
static uintptr_t hdm_boot_top, hdm_boot_rw;
static struct hdm_boot_hdr *hdm_boot_free_list[HDM_BOOT_CLASSES];

/*
 * The lock: a spin lock that remembers the pid of its holder.  A fork()
 * child finds the lock as the parent's forking thread left it, and
 * libheapdev's own fork handler frees blocks here in the child, possibly
 * before the drop-in's handler has run: a lock held by another process
 * is one the child may take over (the drop-in's prepare handler took it,
 * so nothing was half-way through a change).
 */
static atomic_int hdm_boot_lock_word;
static pid_t hdm_boot_lock_pid;

static void hdm_boot_lock(void)
{
	int spins = 0;

	while (atomic_exchange_explicit(&hdm_boot_lock_word, 1,
					memory_order_acquire)) {
		if (++spins > 64) {
			if (hdm_boot_lock_pid && hdm_boot_lock_pid != getpid())
				break;		/* left by the parent */
			sched_yield();
			spins = 0;
		}
	}
	hdm_boot_lock_pid = getpid();
}

static void hdm_boot_unlock(void)
{
	hdm_boot_lock_pid = 0;
	atomic_store_explicit(&hdm_boot_lock_word, 0, memory_order_release);
}

void hdm_boot_atfork_prepare(void)
{
	hdm_boot_lock();
}

void hdm_boot_atfork_parent(void)
{
	hdm_boot_unlock();
}

void hdm_boot_atfork_child(void)
{
	hdm_boot_lock_pid = 0;
	atomic_store_explicit(&hdm_boot_lock_word, 0, memory_order_release);
}

static int hdm_boot_reserve(void)
{
	void *p = mmap(NULL, HDM_BOOT_SIZE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	hdm_boot_top = hdm_boot_rw = (uintptr_t)p;
	atomic_store_explicit((_Atomic uintptr_t *)&hdm_boot_base,
			      (uintptr_t)p, memory_order_release);
	return 0;
}

/* A fresh slot of 2^(cls + MIN_SHIFT) bytes; the lock is held. */
static void *hdm_boot_carve(unsigned int cls)
{
	size_t len = (size_t)1 << (cls + HDM_BOOT_MIN_SHIFT);
	uintptr_t p = hdm_boot_top;

	if (hdm_boot_base == HDM_BOOT_NONE && hdm_boot_reserve())
		return NULL;
	if (len >= 4096)
		p = (hdm_boot_top + 4095) & ~(uintptr_t)4095;
	else
		p = hdm_boot_top;
	if (p + len > hdm_boot_base + HDM_BOOT_SIZE)
		return NULL;
	if (p + len > hdm_boot_rw) {
		uintptr_t end = (p + len + HDM_BOOT_STEP - 1) &
				~(uintptr_t)(HDM_BOOT_STEP - 1);

		if (end > hdm_boot_base + HDM_BOOT_SIZE)
			end = hdm_boot_base + HDM_BOOT_SIZE;
		if (mprotect((void *)hdm_boot_rw, end - hdm_boot_rw,
			     PROT_READ | PROT_WRITE))
			return NULL;
		hdm_boot_rw = end;
	}
	hdm_boot_top = p + len;
	return (void *)p;
}

void *hdm_boot_alloc(size_t n, size_t align, int zero)
{
	struct hdm_boot_hdr *h, *old;
	unsigned int cls = 0;
	uintptr_t slot, data;
	size_t need;

	if (n > HDM_BOOT_SIZE || align > 4096) {
		errno = ENOMEM;
		return NULL;
	}
	/* Room for the header and, past 16, for aligning the data. */
	need = n + sizeof(*h) + (align > 16 ? align : 0);
	while (((size_t)1 << (cls + HDM_BOOT_MIN_SHIFT)) < need)
		cls++;
	if (cls >= HDM_BOOT_CLASSES) {
		errno = ENOMEM;
		return NULL;
	}
	hdm_boot_lock();
	old = hdm_boot_free_list[cls];
	if (old) {
		hdm_boot_free_list[cls] = old->next;
		slot = (uintptr_t)(old + 1) - old->offset;
	} else {
		slot = (uintptr_t)hdm_boot_carve(cls);
	}
	hdm_boot_unlock();
	if (!slot) {
		errno = ENOMEM;
		return NULL;
	}
	if (align < 16)
		align = 16;
	data = (slot + sizeof(*h) + align - 1) & ~(uintptr_t)(align - 1);
	h = (struct hdm_boot_hdr *)data - 1;
	h->magic = HDM_BOOT_BUSY;
	h->cls = cls;
	h->offset = (uint32_t)(data - slot);
	h->size = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	if (zero)
		memset((void *)data, 0, n);
	return (void *)data;
}

/* The header of a live boot block, or NULL (and the reason). */
static struct hdm_boot_hdr *hdm_boot_hdr(const void *p, const char **why)
{
	struct hdm_boot_hdr *h = (struct hdm_boot_hdr *)p - 1;

	if ((uintptr_t)p & 15 || (uintptr_t)h < hdm_boot_base ||
	    (uintptr_t)p >= hdm_boot_top) {
		*why = "invalid pointer";
		return NULL;
	}
	if (h->magic == HDM_BOOT_FREE) {
		*why = "double free detected";
		return NULL;
	}
	if (h->magic != HDM_BOOT_BUSY || h->cls >= HDM_BOOT_CLASSES ||
	    h->offset < sizeof(*h) ||
	    h->offset > ((size_t)1 << (h->cls + HDM_BOOT_MIN_SHIFT))) {
		*why = "invalid pointer";
		return NULL;
	}
	return h;
}

void hdm_boot_free(void *p, const char *fn)
{
	const char *why = "invalid pointer";
	struct hdm_boot_hdr *h;
	unsigned int cls;
	uintptr_t slot;
	size_t len;

	hdm_boot_lock();	/* two frees of one block: one of them sees it */
	h = hdm_boot_hdr(p, &why);
	if (!h) {
		hdm_boot_unlock();
		hdm_fatal(fn, why, p, NULL);
	}
	cls = h->cls;
	h->magic = HDM_BOOT_FREE;
	slot = (uintptr_t)p - h->offset;
	len = (size_t)1 << (cls + HDM_BOOT_MIN_SHIFT);
	if (len >= (256u << 10)) {
		/* Big slots give their pages back (the header's page stays),
		 * before the slot is on the list for someone else. */
		uintptr_t from = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;

		hdm_boot_unlock();
		madvise((void *)from, slot + len - from, MADV_DONTNEED);
		hdm_boot_lock();
	}
	h->next = hdm_boot_free_list[cls];
	hdm_boot_free_list[cls] = h;
	hdm_boot_unlock();
}

size_t hdm_boot_size(const void *p, const char *fn)
{
	const char *why = "invalid pointer";
	struct hdm_boot_hdr *h = hdm_boot_hdr(p, &why);

	if (!h)
		hdm_fatal(fn, why, p, NULL);
	return h->size;
}
