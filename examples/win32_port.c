// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * A small program written for Windows private heaps, compiled unchanged on
 * Linux: it includes only <heapdev/win32.h> and links with -lheapdev.
 *
 * A word-frequency table kept in its own heap: entries are allocated with
 * HEAP_ZERO_MEMORY, the table grows with HeapReAlloc, HeapSize tells the
 * capacity, a HeapWalk under HeapLock sums the heap's use, and
 * HeapDestroy drops everything at once.
 *
 * With HEAPSTAT naming the heapstat tool, the admin view of this process
 * is shown while the table is complete (that part is Linux-only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <heapdev/win32.h>

typedef struct _WORD_ENTRY {
	LPSTR lpszWord;
	DWORD dwCount;
} WORD_ENTRY, *PWORD_ENTRY;

static HANDLE g_hHeap;
static PWORD_ENTRY g_pTable;
static DWORD g_cEntries;

/* Print the admin view of this process: "$HEAPSTAT --heaps -p <pid>". */
static void ShowHeaps(const char *when)
{
	const char *heapstat = getenv("HEAPSTAT");
	char cmd[512];

	if (!heapstat)
		return;
	snprintf(cmd, sizeof(cmd), "%s --heaps -p %ld", heapstat,
		 (long)getpid());
	printf("--- admin view %s:\n", when);
	fflush(stdout);
	if (system(cmd))
		fprintf(stderr, "win32_port: %s failed\n", cmd);
}

static PWORD_ENTRY FindOrAdd(const char *word)
{
	DWORD i, cCapacity;
	SIZE_T cb;

	for (i = 0; i < g_cEntries; i++)
		if (!strcmp(g_pTable[i].lpszWord, word))
			return &g_pTable[i];

	cCapacity = (DWORD)(HeapSize(g_hHeap, 0, g_pTable) / sizeof(WORD_ENTRY));
	if (g_cEntries == cCapacity) {
		PWORD_ENTRY pNew = (PWORD_ENTRY)HeapReAlloc(g_hHeap,
				HEAP_ZERO_MEMORY, g_pTable,
				2 * cCapacity * sizeof(WORD_ENTRY));
		if (!pNew)
			return NULL;
		g_pTable = pNew;
	}
	cb = strlen(word) + 1;
	g_pTable[g_cEntries].lpszWord = (LPSTR)HeapAlloc(g_hHeap, 0, cb);
	if (!g_pTable[g_cEntries].lpszWord)
		return NULL;
	memcpy(g_pTable[g_cEntries].lpszWord, word, cb);
	return &g_pTable[g_cEntries++];
}

int main(void)
{
	static const char text[] =
		"the heap is a heap and the heap is private so the heap "
		"can be destroyed at once and the process heap stays";
	char word[32];
	const char *p = text;
	PROCESS_HEAP_ENTRY entry;
	SIZE_T cbBusy = 0, cbFree = 0;
	DWORD i, cRegions = 0;
	int n;

	g_hHeap = HeapCreate(0, 0, 0);
	if (g_hHeap == NULL) {
		printf("HeapCreate failed, error %lu\n",
		       (unsigned long)GetLastError());
		return 1;
	}
	g_pTable = (PWORD_ENTRY)HeapAlloc(g_hHeap, HEAP_ZERO_MEMORY,
					  4 * sizeof(WORD_ENTRY));
	if (g_pTable == NULL)
		return 1;

	while (sscanf(p, "%31s%n", word, &n) == 1) {
		PWORD_ENTRY pEntry = FindOrAdd(word);

		if (pEntry == NULL) {
			printf("out of memory, error %lu\n",
			       (unsigned long)GetLastError());
			return 1;
		}
		pEntry->dwCount++;
		p += n;
	}
	for (i = 0; i < g_cEntries; i++)
		printf("%-10s %lu\n", g_pTable[i].lpszWord,
		       (unsigned long)g_pTable[i].dwCount);

	if (!HeapLock(g_hHeap))
		return 1;
	entry.lpData = NULL;
	while (HeapWalk(g_hHeap, &entry)) {
		if (entry.wFlags & PROCESS_HEAP_REGION)
			cRegions++;
		else if (entry.wFlags & PROCESS_HEAP_ENTRY_BUSY)
			cbBusy += entry.cbData;
		else if (!(entry.wFlags & PROCESS_HEAP_UNCOMMITTED_RANGE))
			cbFree += entry.cbData;
	}
	if (GetLastError() != ERROR_NO_MORE_ITEMS)
		printf("HeapWalk failed, error %lu\n",
		       (unsigned long)GetLastError());
	HeapUnlock(g_hHeap);
	printf("%lu words, %lu region(s), %lu bytes busy, %lu bytes free\n",
	       (unsigned long)g_cEntries, (unsigned long)cRegions,
	       (unsigned long)cbBusy, (unsigned long)cbFree);

	if (!HeapValidate(g_hHeap, 0, NULL))
		printf("heap corrupted\n");
	ShowHeaps("with the table complete");
	if (!HeapFree(g_hHeap, 0, g_pTable))
		return 1;
	if (HeapFree(g_hHeap, 0, g_pTable) ||
	    GetLastError() != ERROR_INVALID_PARAMETER)
		printf("double free was not refused\n");
	if (!HeapDestroy(g_hHeap))
		return 1;
	printf("%lu heap(s) left in the process\n",
	       (unsigned long)GetProcessHeaps(0, NULL));
	return 0;
}
