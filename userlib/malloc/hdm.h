/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * libheapdev-malloc internals, shared by malloc.c, boot.c and
 * new_delete.cc.  Nothing here is exported: the drop-in's only symbols
 * are the malloc family and the C++ operators (libheapdev-malloc.map).
 */
#ifndef HEAPDEV_MALLOC_HDM_H
#define HEAPDEV_MALLOC_HDM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HDM_HIDDEN __attribute__((visibility("hidden")))
#define HDM_EXPORT __attribute__((visibility("default")))

/* The boot arena (boot.c): a reservation of HDM_BOOT_SIZE bytes. */
#define HDM_BOOT_SIZE		(1ULL << 30)
#define HDM_BOOT_NONE		((uintptr_t)0 - HDM_BOOT_SIZE)
HDM_HIDDEN extern uintptr_t hdm_boot_base;
HDM_HIDDEN void *hdm_boot_alloc(size_t n, size_t align, int zero);
HDM_HIDDEN void hdm_boot_free(void *p, const char *fn);
HDM_HIDDEN size_t hdm_boot_size(const void *p, const char *fn);
HDM_HIDDEN void hdm_boot_atfork_prepare(void);
HDM_HIDDEN void hdm_boot_atfork_parent(void);
HDM_HIDDEN void hdm_boot_atfork_child(void);

/* Is @p in the boot arena's reservation? */
static inline int hdm_boot_owns(const void *p)
{
	return (uintptr_t)p - hdm_boot_base < HDM_BOOT_SIZE;
}

/*
 * hdm_fatal() - report a bad pointer on the malloc path and abort()
 * @fn: the entry point ("free", "realloc", "operator delete", ...)
 * @what: the diagnosis, glibc's words where they exist ("double free
 *	detected", "invalid pointer", ...)
 * @p: the pointer
 * @heap: the heap it was checked against, or NULL
 */
HDM_HIDDEN __attribute__((noreturn, cold)) void
hdm_fatal(const char *fn, const char *what, const void *p, const void *heap);

/* For new_delete.cc: NULL on failure (errno set), never throws. */
HDM_HIDDEN void *hdm_new(size_t n, size_t align);
/* @size 0: unsized; @align 0: not an aligned delete. */
HDM_HIDDEN void hdm_delete(void *p, size_t size, size_t align,
			   const char *fn);

#ifdef __cplusplus
}
#endif

#endif
