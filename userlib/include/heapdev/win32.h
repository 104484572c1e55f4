/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * heapdev/win32.h: the Win32 private-heap API on Linux.
 *
 * Declares HeapCreate, HeapAlloc, HeapReAlloc, HeapFree, HeapSize,
 * HeapDestroy, HeapValidate, HeapWalk, HeapCompact, HeapLock, HeapUnlock,
 * GetProcessHeap, GetProcessHeaps, HeapQueryInformation, HeapSetInformation,
 * HeapSummary, GetLastError and SetLastError with their Win32 names, types,
 * flag values and 64-bit structure layouts, so that code written for
 * Windows heaps compiles unchanged and links with -lheapdev.
 *
 * Behaviour follows what Windows does (the "observed" column of the
 * project's WIN32_HEAP_SPEC.md), not only its documentation:
 *
 *  - HeapSize returns the exact requested size; blocks are 16-byte aligned.
 *  - Per-call flags are OR-ed with the creation flags.
 *  - HeapAlloc/HeapReAlloc set ERROR_NOT_ENOUGH_MEMORY when they fail for
 *    lack of memory; HeapReAlloc(h, f, NULL, n) returns NULL with the last
 *    error NO_ERROR; HeapFree(h, f, NULL) is TRUE, even with h == NULL.
 *  - HeapValidate never changes the last error.
 *  - Invalid, freed and foreign pointers give FALSE (HeapFree), NULL
 *    (HeapReAlloc) or (SIZE_T)-1 (HeapSize) with ERROR_INVALID_PARAMETER;
 *    handles that are not live heaps give ERROR_INVALID_HANDLE.
 *  - HeapCreate fails with ERROR_NOT_ENOUGH_MEMORY when no backend is
 *    available (no /dev/heapdev and HEAPDEV_BACKEND not set to "memfd");
 *    set HEAPDEV_DEBUG=1 to get the reason on stderr.
 *
 * HEAP_GENERATE_EXCEPTIONS: Linux has no structured exceptions.  A failing
 * HeapAlloc or HeapReAlloc on a heap or call with this flag calls the
 * handler installed with heapdev_set_exception_handler() (<heapdev.h>); the
 * handler gets the STATUS_* code Windows would raise and may longjmp out.
 * Without a handler the library prints the exception on stderr and raises
 * SIGABRT, the counterpart of an unhandled exception ending the process.
 *
 * HeapSetInformation(HeapEnableTerminationOnCorruption): from then on a
 * detected corruption (bad header, double/foreign/wild HeapFree or
 * HeapReAlloc, corrupted free list) prints the heap and the pointer on
 * stderr and calls abort().  HeapSize and HeapValidate of a bad block only
 * fail, and NULL (HeapSize(h, 0, NULL), HeapReAlloc(h, 0, NULL, n)) is
 * never corruption.
 *
 * Structures assume the LP64 ABI of x86-64 Linux (SIZE_T and pointers are
 * 64 bits; DWORD, LONG and ULONG are 32 bits, as on Win64).
 */
#ifndef HEAPDEV_WIN32_H
#define HEAPDEV_WIN32_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef HEAPDEV_API
#define HEAPDEV_API __attribute__((visibility("default")))
#endif

#ifndef WINAPI
#define WINAPI
#endif

#ifdef __cplusplus
#define HEAPDEV_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define HEAPDEV_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

typedef int BOOL;
typedef char CHAR;
typedef CHAR *LPSTR;
typedef const CHAR *LPCSTR;
typedef unsigned int UINT;
typedef uint8_t BYTE;
typedef uint16_t WORD;
typedef uint32_t DWORD;
typedef int32_t LONG;
typedef uint32_t ULONG;
typedef size_t SIZE_T;
typedef SIZE_T *PSIZE_T;
typedef void *PVOID;
typedef void *LPVOID;
typedef const void *LPCVOID;
typedef void *HANDLE;
typedef HANDLE *PHANDLE;
typedef DWORD *LPDWORD;

/* Heap flags (winnt.h values). */
#define HEAP_NO_SERIALIZE		0x00000001
#define HEAP_GROWABLE			0x00000002
#define HEAP_GENERATE_EXCEPTIONS	0x00000004
#define HEAP_ZERO_MEMORY		0x00000008
#define HEAP_REALLOC_IN_PLACE_ONLY	0x00000010
#define HEAP_TAIL_CHECKING_ENABLED	0x00000020
#define HEAP_FREE_CHECKING_ENABLED	0x00000040
#define HEAP_DISABLE_COALESCE_ON_FREE	0x00000080
#define HEAP_CREATE_SEGMENT_HEAP	0x00000100
#define HEAP_CREATE_HARDENED		0x00000200
#define HEAP_SETTABLE_USER_VALUE	0x00000100
#define HEAP_SETTABLE_USER_FLAG1	0x00000200
#define HEAP_SETTABLE_USER_FLAG2	0x00000400
#define HEAP_SETTABLE_USER_FLAG3	0x00000800
#define HEAP_SETTABLE_USER_FLAGS	0x00000E00
#define HEAP_CLASS_0			0x00000000
#define HEAP_CLASS_1			0x00001000
#define HEAP_CLASS_MASK			0x0000F000
#define HEAP_CREATE_ALIGN_16		0x00010000
#define HEAP_CREATE_ENABLE_TRACING	0x00020000
#define HEAP_CREATE_ENABLE_EXECUTE	0x00040000
#define HEAP_MAXIMUM_TAG		0x0FFF
#define HEAP_PSEUDO_TAG_FLAG		0x8000
#define HEAP_TAG_SHIFT			18

/* PROCESS_HEAP_ENTRY.wFlags */
#define PROCESS_HEAP_REGION		0x0001
#define PROCESS_HEAP_UNCOMMITTED_RANGE	0x0002
#define PROCESS_HEAP_ENTRY_BUSY		0x0004
#define PROCESS_HEAP_SEG_ALLOC		0x0008
#define PROCESS_HEAP_ENTRY_MOVEABLE	0x0010
#define PROCESS_HEAP_ENTRY_DDESHARE	0x0020

/* Last-error values the heap functions set. */
#define ERROR_SUCCESS			0L
#define NO_ERROR			0L
#define ERROR_INVALID_HANDLE		6L
#define ERROR_NOT_ENOUGH_MEMORY		8L
#define ERROR_OUTOFMEMORY		14L
#define ERROR_GEN_FAILURE		31L
#define ERROR_INVALID_PARAMETER		87L
#define ERROR_INSUFFICIENT_BUFFER	122L
#define ERROR_NO_MORE_ITEMS		259L
#define ERROR_NOT_OWNER			288L
#define ERROR_NOACCESS			998L

/* Exception codes of HEAP_GENERATE_EXCEPTIONS and of fail-fast. */
#define STATUS_ACCESS_VIOLATION		((DWORD)0xC0000005L)
#define STATUS_NO_MEMORY		((DWORD)0xC0000017L)
#define STATUS_HEAP_CORRUPTION		((DWORD)0xC0000374L)

typedef struct _PROCESS_HEAP_ENTRY {
	PVOID lpData;
	DWORD cbData;
	BYTE cbOverhead;
	BYTE iRegionIndex;
	WORD wFlags;
	union {
		struct {
			HANDLE hMem;
			DWORD dwReserved[3];
		} Block;
		struct {
			DWORD dwCommittedSize;
			DWORD dwUnCommittedSize;
			LPVOID lpFirstBlock;
			LPVOID lpLastBlock;
		} Region;
	};
} PROCESS_HEAP_ENTRY, *LPPROCESS_HEAP_ENTRY, *PPROCESS_HEAP_ENTRY;

HEAPDEV_STATIC_ASSERT(sizeof(PROCESS_HEAP_ENTRY) == 40,
		      "PROCESS_HEAP_ENTRY must have the Win64 layout");
HEAPDEV_STATIC_ASSERT(offsetof(PROCESS_HEAP_ENTRY, Block.hMem) == 16,
		      "PROCESS_HEAP_ENTRY must have the Win64 layout");

typedef struct _HEAP_SUMMARY {
	DWORD cb;
	SIZE_T cbAllocated;
	SIZE_T cbCommitted;
	SIZE_T cbReserved;
	SIZE_T cbMaxReserve;
} HEAP_SUMMARY, *PHEAP_SUMMARY;
typedef PHEAP_SUMMARY LPHEAP_SUMMARY;

HEAPDEV_STATIC_ASSERT(sizeof(HEAP_SUMMARY) == 40,
		      "HEAP_SUMMARY must have the Win64 layout");

typedef enum _HEAP_INFORMATION_CLASS {
	HeapCompatibilityInformation = 0,
	HeapEnableTerminationOnCorruption = 1,
	HeapOptimizeResources = 3,
} HEAP_INFORMATION_CLASS;

#define HEAP_OPTIMIZE_RESOURCES_CURRENT_VERSION 1

typedef struct _HEAP_OPTIMIZE_RESOURCES_INFORMATION {
	DWORD Version;
	DWORD Flags;
} HEAP_OPTIMIZE_RESOURCES_INFORMATION, *PHEAP_OPTIMIZE_RESOURCES_INFORMATION;

/*
 * Heap handles are the base addresses of the heaps' first regions (64 KiB
 * aligned, as on Windows); a struct heapdev_heap * of <heapdev.h> is the
 * same value.
 */
HEAPDEV_API HANDLE WINAPI HeapCreate(DWORD flOptions, SIZE_T dwInitialSize,
				     SIZE_T dwMaximumSize);
HEAPDEV_API BOOL WINAPI HeapDestroy(HANDLE hHeap);
HEAPDEV_API LPVOID WINAPI HeapAlloc(HANDLE hHeap, DWORD dwFlags,
				    SIZE_T dwBytes);
HEAPDEV_API LPVOID WINAPI HeapReAlloc(HANDLE hHeap, DWORD dwFlags,
				      LPVOID lpMem, SIZE_T dwBytes);
HEAPDEV_API BOOL WINAPI HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem);
HEAPDEV_API SIZE_T WINAPI HeapSize(HANDLE hHeap, DWORD dwFlags,
				   LPCVOID lpMem);
HEAPDEV_API BOOL WINAPI HeapValidate(HANDLE hHeap, DWORD dwFlags,
				     LPCVOID lpMem);
HEAPDEV_API BOOL WINAPI HeapWalk(HANDLE hHeap, LPPROCESS_HEAP_ENTRY lpEntry);
HEAPDEV_API SIZE_T WINAPI HeapCompact(HANDLE hHeap, DWORD dwFlags);
HEAPDEV_API BOOL WINAPI HeapLock(HANDLE hHeap);
HEAPDEV_API BOOL WINAPI HeapUnlock(HANDLE hHeap);
HEAPDEV_API HANDLE WINAPI GetProcessHeap(void);
HEAPDEV_API DWORD WINAPI GetProcessHeaps(DWORD NumberOfHeaps,
					 PHANDLE ProcessHeaps);
HEAPDEV_API BOOL WINAPI HeapQueryInformation(HANDLE HeapHandle,
					     HEAP_INFORMATION_CLASS HeapInformationClass,
					     PVOID HeapInformation,
					     SIZE_T HeapInformationLength,
					     PSIZE_T ReturnLength);
HEAPDEV_API BOOL WINAPI HeapSetInformation(HANDLE HeapHandle,
					   HEAP_INFORMATION_CLASS HeapInformationClass,
					   PVOID HeapInformation,
					   SIZE_T HeapInformationLength);
HEAPDEV_API BOOL WINAPI HeapSummary(HANDLE hHeap, DWORD dwFlags,
				    LPHEAP_SUMMARY lpSummary);
HEAPDEV_API DWORD WINAPI GetLastError(void);
HEAPDEV_API void WINAPI SetLastError(DWORD dwErrCode);

#ifdef __cplusplus
}
#endif

#endif /* HEAPDEV_WIN32_H */
