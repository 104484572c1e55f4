// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: diagnostics, termination on corruption, and the Linux
 * counterpart of HEAP_GENERATE_EXCEPTIONS.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base.h"

_Atomic int hd_terminate;
/* The last commit refused to this thread (hd_heap_commit()), or 0. */
__thread int hd_commit_err __attribute__((tls_model("initial-exec")));
int hd_debug = -1;
static _Atomic(heapdev_exception_handler_t) hd_exc_handler;

static bool hd_debug_on(void)
{
	if (hd_debug < 0) {
		const char *s = getenv("HEAPDEV_DEBUG");

		hd_debug = s && *s && *s != '0';
	}
	return hd_debug;
}

/*
 * Write one line to stderr.  Formatted on the stack and written with one
 * write(2): no stdio buffer and no allocation, since the library may be
 * the process's malloc and these lines come from allocation paths.
 */
static void __attribute__((format(printf, 1, 0))) hd_vline(const char *fmt,
							    va_list ap)
{
	char line[512];
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);

	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static void __attribute__((format(printf, 1, 2))) hd_line(const char *fmt,
							  ...)
{
	va_list ap;

	va_start(ap, fmt);
	hd_vline(fmt, ap);
	va_end(ap);
}

/* One line on stderr, only with HEAPDEV_DEBUG set. */
void hd_dbg(const char *fmt, ...)
{
	va_list ap;

	if (!hd_debug_on())
		return;
	va_start(ap, fmt);
	hd_vline(fmt, ap);
	va_end(ap);
}

/*
 * The text of the errno values the library reports (strerror() may
 * allocate to translate its message).
 */
const char *hd_errstr(int err)
{
	switch (err < 0 ? -err : err) {
	case ENOMEM: return "Cannot allocate memory";
	case EDQUOT: return "Disk quota exceeded (a limit of /dev/heapdev)";
	case ENOENT: return "No such file or directory";
	case EACCES: return "Permission denied";
	case EPERM: return "Operation not permitted";
	case EINVAL: return "Invalid argument";
	case EPROTO: return "Protocol error";
	case ENOSPC: return "No space left on device";
	case EFBIG: return "File too large";
	case EINTR: return "Interrupted system call";
	case EBADF: return "Bad file descriptor";
	case ENODEV: return "No such device";
	case ENXIO: return "No such device or address";
	case EMFILE: return "Too many open files";
	case ENFILE: return "Too many open files in system";
	case EOPNOTSUPP: return "Operation not supported";
	default: return "Unknown error";
	}
}

/*
 * A corrupted header or free list, or a double, foreign or wild free, was
 * found.  With termination on corruption enabled the process ends here.
 */
void hd_corrupt(uintptr_t handle, const void *p, const char *what)
{
	if (atomic_load_explicit(&hd_terminate, memory_order_relaxed)) {
		hd_line("heapdev: heap corruption in heap %p at %p: %s; "
			"terminating (HeapEnableTerminationOnCorruption, "
			"STATUS_HEAP_CORRUPTION 0xC0000374)", (void *)handle,
			p, what);
		abort();
	}
	hd_dbg("heapdev: heap %p, block %p: %s", (void *)handle, p, what);
}

/*
 * The errno of a native allocation that failed for lack of memory:
 * EDQUOT when a commit of this call was refused by a module limit (the
 * per-heap, per-file or per-user limit of /dev/heapdev), ENOMEM for
 * everything else.  The Win32 calls report ERROR_NOT_ENOUGH_MEMORY for
 * both.  Clears the record (each allocation path clears it on entry).
 */
int hd_alloc_errno(void)
{
	int err = hd_commit_err;

	hd_commit_err = 0;
	return err == -EDQUOT ? EDQUOT : ENOMEM;
}

/* HEAP_GENERATE_EXCEPTIONS: see heapdev_set_exception_handler(). */
void hd_raise(uint32_t code, uintptr_t handle, void *ptr, size_t size,
	      const char *fn)
{
	struct heapdev_exception e = {
		.code = code, .heap = (void *)handle,
		.ptr = ptr, .size = size, .function = fn,
	};
	heapdev_exception_handler_t fnp =
		atomic_load_explicit(&hd_exc_handler, memory_order_acquire);

	if (fnp) {
		fnp(&e);
		return;
	}
	hd_line("heapdev: %s(heap %p, %p, %zu bytes) raised %s (0x%08X) "
		"under HEAP_GENERATE_EXCEPTIONS", fn, e.heap, ptr, size,
		code == 0xC0000017u ? "STATUS_NO_MEMORY" :
		"STATUS_ACCESS_VIOLATION", code);
	raise(SIGABRT);
}

heapdev_exception_handler_t
heapdev_set_exception_handler(heapdev_exception_handler_t fn)
{
	return atomic_exchange(&hd_exc_handler, fn);
}

int heapdev_terminate_on_corruption(void)
{
	atomic_store(&hd_terminate, 1);
	return 0;
}
