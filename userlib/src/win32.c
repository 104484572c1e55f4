// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * heapdev: the Win32 heap API (<heapdev/win32.h>).
 *
 * The last error is per thread and is set exactly where Windows sets it
 * (WIN32_HEAP_SPEC.md, section 2 and 3.18): never on success, never by
 * HeapValidate.
 */
#include <errno.h>

#include "../include/heapdev/win32.h"
#include "api.h"

/* Call flags that take effect; unknown bits (e.g. 0xE00) are ignored. */
#define HD_W32_CALL	(HEAP_GENERATE_EXCEPTIONS | HEAP_NO_SERIALIZE | \
			 HEAP_ZERO_MEMORY | HEAP_REALLOC_IN_PLACE_ONLY)
/* Creation flags that are kept; the others are accepted and dropped. */
#define HD_W32_CREATE	(HEAP_GENERATE_EXCEPTIONS | HEAP_NO_SERIALIZE | \
			 HEAP_CREATE_ENABLE_EXECUTE)
#define HD_W32_CURSOR	0x48440000u

__thread uint32_t hd_last_error __attribute__((tls_model("initial-exec")));

DWORD WINAPI GetLastError(void)
{
	return hd_last_error;
}

void WINAPI SetLastError(DWORD code)
{
	hd_last_error = code;
}

HANDLE WINAPI HeapCreate(DWORD flOptions, SIZE_T dwInitialSize,
			 SIZE_T dwMaximumSize)
{
	struct hd_heap *h;

	if (hd_heap_create(flOptions & HD_W32_CREATE, dwInitialSize,
			   dwMaximumSize, HEAPDEV_BACKEND_DEFAULT, &h)) {
		hd_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return NULL;
	}
	return (HANDLE)h->core.handle;
}

static BOOL hd_w32_destroy(HANDLE hHeap)
{
	struct hd_heap *h;

	if (!hHeap)
		return TRUE;
	h = hd_heap_get(hHeap);
	if (!h || hd_heap_destroy(h, (uintptr_t)hHeap)) {
		hd_last_error = ERROR_INVALID_HANDLE;
		return FALSE;
	}
	return TRUE;
}

/*
 * HeapAlloc and HeapFree enter the call here and leave it on every path:
 * inline on the fast paths, in the out-of-line paths they tail-call
 * (alloc.c), so that the fast paths stay free of stack frames.
 */
LPVOID WINAPI HeapAlloc(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes)
{
	return hd_alloc_fast(hHeap, dwFlags & HD_W32_CALL, dwBytes, HD_API_W32);
}

/*
 * The exception (which may longjmp out) is raised after the call has
 * been left.
 */
LPVOID WINAPI HeapReAlloc(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem,
			  SIZE_T dwBytes)
{
	struct hd_heap *h;
	uint32_t flags;
	void *p;
	int err;

	if (lpMem) {
		p = hd_realloc_fast(hHeap, dwFlags & HD_W32_CALL, lpMem,
				    dwBytes);
		if (likely(p))
			return p;
	}
	hd_enter();
	h = hd_heap_get(hHeap);
	if (!h) {
		hd_leave();
		hd_last_error = ERROR_INVALID_HANDLE;
		return NULL;
	}
	if (!lpMem) {
		hd_leave();
		hd_last_error = NO_ERROR;
		return NULL;
	}
	flags = h->core.flags | (dwFlags & HD_W32_CALL);
	p = hd_realloc(h, lpMem, dwBytes, flags, &err);
	hd_leave();
	if (!p) {
		hd_last_error = err == -EINVAL ? ERROR_INVALID_PARAMETER :
				ERROR_NOT_ENOUGH_MEMORY;
		if (flags & HEAP_GENERATE_EXCEPTIONS)
			hd_raise(err == -EINVAL ? STATUS_ACCESS_VIOLATION :
				 STATUS_NO_MEMORY, h->core.handle, lpMem, dwBytes,
				 "HeapReAlloc");
	}
	return p;
}

BOOL WINAPI HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem)
{
	if (!lpMem)
		return TRUE;
	return hd_free_fast(hHeap, dwFlags & HD_W32_CALL, lpMem, HD_API_W32);
}

static SIZE_T hd_w32_size(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
	struct hd_heap *h = hd_heap_get(hHeap);
	size_t n;

	if (!h) {
		hd_last_error = ERROR_INVALID_HANDLE;
		return (SIZE_T)-1;
	}
	if (hd_size(h, lpMem, h->core.flags | (dwFlags & HD_W32_CALL), &n)) {
		hd_last_error = ERROR_INVALID_PARAMETER;
		return (SIZE_T)-1;
	}
	return n;
}

static BOOL hd_w32_validate(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
	struct hd_heap *h = hd_heap_get(hHeap);
	uint32_t flags;

	if (!h)
		return FALSE;
	flags = h->core.flags | (dwFlags & HD_W32_CALL);
	if (!lpMem)
		return !hd_validate_heap(h, flags);
	return !hd_validate_block(h, lpMem, flags);
}

static DWORD hd_clamp32(uint64_t v)
{
	return v > 0xFFFFFFFFu ? 0xFFFFFFFFu : (DWORD)v;
}

static void hd_entry_from_walk(LPPROCESS_HEAP_ENTRY e, const struct hd_walk *w)
{
	memset(e, 0, sizeof(*e));
	e->lpData = (PVOID)w->addr;
	e->cbData = hd_clamp32(w->size);
	e->cbOverhead = w->overhead > 255 ? 255 : (BYTE)w->overhead;
	/* segments past the 254th share 255: a BYTE has no more room */
	e->iRegionIndex = w->region > 255 ? 255 : (BYTE)w->region;
	switch (w->kind) {
	case HEAPDEV_WALK_REGION:
		e->wFlags = PROCESS_HEAP_REGION;
		e->Region.dwCommittedSize = hd_clamp32(w->committed);
		e->Region.dwUnCommittedSize = hd_clamp32(w->uncommitted);
		e->Region.lpFirstBlock = (LPVOID)w->first_block;
		e->Region.lpLastBlock = (LPVOID)w->last_block;
		return;
	case HEAPDEV_WALK_BUSY:
	case HEAPDEV_WALK_LARGE:
		e->wFlags = PROCESS_HEAP_ENTRY_BUSY;
		break;
	case HEAPDEV_WALK_UNCOMMITTED:
		e->wFlags = PROCESS_HEAP_UNCOMMITTED_RANGE;
		break;
	default:
		e->wFlags = 0;
		break;
	}
	e->Block.dwReserved[0] = (DWORD)w->cursor[0];
	e->Block.dwReserved[1] = (DWORD)(w->cursor[0] >> 32);
	e->Block.dwReserved[2] = HD_W32_CURSOR | (DWORD)w->cursor[1];
}

/* Rebuild the walk position from an entry; false if it is not ours. */
static bool hd_walk_from_entry(struct hd_walk *w, LPPROCESS_HEAP_ENTRY e)
{
	memset(w, 0, sizeof(*w));
	w->addr = (uintptr_t)e->lpData;
	if (!w->addr)
		return true;
	if (e->wFlags & PROCESS_HEAP_REGION) {
		w->cursor[1] = 1;
		return true;
	}
	if ((e->Block.dwReserved[2] & 0xFFFF0000u) != HD_W32_CURSOR)
		return false;
	w->cursor[0] = e->Block.dwReserved[0] |
		       (uint64_t)e->Block.dwReserved[1] << 32;
	w->cursor[1] = e->Block.dwReserved[2] & 0xFFFF;
	return true;
}

static BOOL hd_w32_walk(HANDLE hHeap, LPPROCESS_HEAP_ENTRY lpEntry)
{
	struct hd_heap *h = hd_heap_get(hHeap);
	struct hd_walk w;
	int err;

	if (!h) {
		hd_last_error = ERROR_INVALID_HANDLE;
		return FALSE;
	}
	if (!lpEntry || !hd_walk_from_entry(&w, lpEntry)) {
		hd_last_error = ERROR_INVALID_PARAMETER;
		return FALSE;
	}
	err = hd_walk(h, &w);
	if (err) {
		hd_last_error = err == -ENOENT ? ERROR_NO_MORE_ITEMS :
				ERROR_INVALID_PARAMETER;
		return FALSE;
	}
	hd_entry_from_walk(lpEntry, &w);
	return TRUE;
}

static SIZE_T hd_w32_compact(HANDLE hHeap, DWORD dwFlags)
{
	struct hd_heap *h = hd_heap_get(hHeap);
	size_t largest = 0;

	if (!h) {
		hd_last_error = ERROR_INVALID_HANDLE;
		return 0;
	}
	hd_api_compact(hHeap, dwFlags & HEAP_NO_SERIALIZE, &largest);
	if (!largest)
		hd_last_error = NO_ERROR;
	return largest;
}

static BOOL hd_w32_lock(HANDLE hHeap)
{
	if (hd_api_lock(hHeap)) {
		hd_last_error = ERROR_INVALID_HANDLE;
		return FALSE;
	}
	return TRUE;
}

static BOOL hd_w32_unlock(HANDLE hHeap)
{
	int err = hd_api_unlock(hHeap);

	if (err) {
		hd_last_error = err == -EPERM ? ERROR_NOT_OWNER :
				ERROR_INVALID_HANDLE;
		return FALSE;
	}
	return TRUE;
}

HANDLE WINAPI GetProcessHeap(void)
{
	int err = 0;
	struct hd_heap *h = hd_process_heap(&err);

	if (!h) {
		hd_last_error = ERROR_NOT_ENOUGH_MEMORY;
		return NULL;
	}
	return (HANDLE)h->core.handle;
}

DWORD WINAPI GetProcessHeaps(DWORD NumberOfHeaps, PHANDLE ProcessHeaps)
{
	size_t n;

	if (!GetProcessHeap())
		return 0;
	n = hd_heap_handles(ProcessHeaps, ProcessHeaps ? NumberOfHeaps : 0);
	return n > 0xFFFFFFFFu ? 0xFFFFFFFFu : (DWORD)n;
}

static BOOL hd_w32_query(HANDLE HeapHandle,
			 HEAP_INFORMATION_CLASS HeapInformationClass,
			 PVOID HeapInformation, SIZE_T HeapInformationLength,
			 PSIZE_T ReturnLength)
{
	struct hd_heap *h = hd_heap_get(HeapHandle);

	if (!h) {
		hd_last_error = ERROR_NOACCESS;
		return FALSE;
	}
	if (HeapInformationClass != HeapCompatibilityInformation) {
		hd_last_error = ERROR_INVALID_PARAMETER;
		return FALSE;
	}
	if (ReturnLength)
		*ReturnLength = sizeof(ULONG);
	if (!HeapInformation || HeapInformationLength < sizeof(ULONG)) {
		hd_last_error = ERROR_INSUFFICIENT_BUFFER;
		return FALSE;
	}
	*(ULONG *)HeapInformation = atomic_load(&h->compat);
	return TRUE;
}

static BOOL hd_set_compat(HANDLE hh, PVOID info, SIZE_T len)
{
	struct hd_heap *h = hd_heap_get(hh);
	ULONG v;

	if (!h) {
		hd_last_error = ERROR_INVALID_HANDLE;
		return FALSE;
	}
	if (!info || len < sizeof(ULONG)) {
		hd_last_error = ERROR_INSUFFICIENT_BUFFER;
		return FALSE;
	}
	v = *(ULONG *)info;
	if (v == 2 && (h->core.fixed || (h->core.flags & HEAP_NO_SERIALIZE))) {
		hd_last_error = ERROR_INVALID_PARAMETER;
		return FALSE;
	}
	if (v == 2 || (v == 0 && !atomic_load(&h->compat))) {
		if (v == 2)
			atomic_store(&h->compat, 2);
		return TRUE;
	}
	hd_last_error = ERROR_GEN_FAILURE;
	return FALSE;
}

static BOOL hd_set_optimize(HANDLE hh, PVOID info, SIZE_T len)
{
	const HEAP_OPTIMIZE_RESOURCES_INFORMATION *o = info;
	int err;

	if (!o || len < sizeof(*o)) {
		hd_last_error = ERROR_INSUFFICIENT_BUFFER;
		return FALSE;
	}
	if (o->Version != HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION ||
	    o->Flags) {
		hd_last_error = ERROR_INVALID_PARAMETER;
		return FALSE;
	}
	err = hd_api_trim(hh);
	if (err) {
		hd_last_error = err == -ENOMEM ? ERROR_NOT_ENOUGH_MEMORY :
				ERROR_INVALID_HANDLE;
		return FALSE;
	}
	return TRUE;
}

static BOOL hd_w32_set(HANDLE HeapHandle,
		       HEAP_INFORMATION_CLASS HeapInformationClass,
		       PVOID HeapInformation, SIZE_T HeapInformationLength)
{
	switch (HeapInformationClass) {
	case HeapCompatibilityInformation:
		return hd_set_compat(HeapHandle, HeapInformation,
				     HeapInformationLength);
	case HeapEnableTerminationOnCorruption:
		heapdev_terminate_on_corruption();
		return TRUE;
	case HeapOptimizeResources:
		return hd_set_optimize(HeapHandle, HeapInformation,
				       HeapInformationLength);
	default:
		hd_last_error = ERROR_INVALID_PARAMETER;
		return FALSE;
	}
}

static BOOL hd_w32_summary(HANDLE hHeap, DWORD dwFlags,
			   LPHEAP_SUMMARY lpSummary)
{
	struct heapdev_heap_info info = { .size = sizeof(info) };
	struct hd_heap *h = hd_heap_get(hHeap);

	if (!h) {
		hd_last_error = ERROR_INVALID_HANDLE;
		return FALSE;
	}
	if (dwFlags || !lpSummary || lpSummary->cb != sizeof(*lpSummary)) {
		hd_last_error = ERROR_INVALID_PARAMETER;
		return FALSE;
	}
	hd_info(h, &info);
	lpSummary->cbAllocated = info.allocated;
	lpSummary->cbCommitted = info.committed;
	lpSummary->cbReserved = info.reserved;
	lpSummary->cbMaxReserve = h->core.fixed ? h->core.bh.window : HD_WINDOW;
	return TRUE;
}

/*
 * The other public calls: each runs between hd_enter() and hd_leave(), so
 * that a HeapDestroy in another thread waits for it (see hd_quiesce()).
 */

BOOL WINAPI HeapDestroy(HANDLE hHeap)
{
	return HD_CALL(hd_w32_destroy(hHeap));
}

SIZE_T WINAPI HeapSize(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
	return HD_CALL(hd_w32_size(hHeap, dwFlags, lpMem));
}

BOOL WINAPI HeapValidate(HANDLE hHeap, DWORD dwFlags, LPCVOID lpMem)
{
	return HD_CALL(hd_w32_validate(hHeap, dwFlags, lpMem));
}

BOOL WINAPI HeapWalk(HANDLE hHeap, LPPROCESS_HEAP_ENTRY lpEntry)
{
	return HD_CALL(hd_w32_walk(hHeap, lpEntry));
}

SIZE_T WINAPI HeapCompact(HANDLE hHeap, DWORD dwFlags)
{
	return HD_CALL(hd_w32_compact(hHeap, dwFlags));
}

BOOL WINAPI HeapLock(HANDLE hHeap)
{
	return HD_CALL(hd_w32_lock(hHeap));
}

BOOL WINAPI HeapUnlock(HANDLE hHeap)
{
	return HD_CALL(hd_w32_unlock(hHeap));
}

BOOL WINAPI HeapQueryInformation(HANDLE HeapHandle,
				 HEAP_INFORMATION_CLASS HeapInformationClass,
				 PVOID HeapInformation,
				 SIZE_T HeapInformationLength,
				 PSIZE_T ReturnLength)
{
	return HD_CALL(hd_w32_query(HeapHandle, HeapInformationClass,
				   HeapInformation, HeapInformationLength,
				   ReturnLength));
}

BOOL WINAPI HeapSetInformation(HANDLE HeapHandle,
			       HEAP_INFORMATION_CLASS HeapInformationClass,
			       PVOID HeapInformation,
			       SIZE_T HeapInformationLength)
{
	return HD_CALL(hd_w32_set(HeapHandle, HeapInformationClass,
				 HeapInformation, HeapInformationLength));
}

BOOL WINAPI HeapSummary(HANDLE hHeap, DWORD dwFlags, LPHEAP_SUMMARY lpSummary)
{
	return HD_CALL(hd_w32_summary(hHeap, dwFlags, lpSummary));
}
