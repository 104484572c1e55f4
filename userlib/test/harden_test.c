// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * Hardening: corrupted canaries of small blocks, headers of medium and
 * large blocks, buffer
 * overflows into the next header, writes to freed blocks (free-list links,
 * footers), a corrupted segment signature; and, with
 * HeapEnableTerminationOnCorruption, the end of the process with a message
 * naming the heap and the pointer for bad frees and reallocs, and none for
 * the queries (HeapValidate, HeapSize) nor for NULL (checked in forked
 * children).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <heapdev.h>
#include <heapdev/win32.h>

#include "api_suite.h"
#include "t.h"

static char static_buf[64] __attribute__((aligned(16)));

/* Every call must refuse the corrupted block @p; restoring fixes it. */
static void refused(HANDLE h, unsigned char *p, unsigned char *byte,
		    size_t n, const char *what)
{
	unsigned char saved = *byte;
	bool ok;

	*byte ^= 0x41;
	SetLastError(0);
	ok = !HeapFree(h, 0, p) && GetLastError() == ERROR_INVALID_PARAMETER;
	SetLastError(0);
	ok &= HeapSize(h, 0, p) == (SIZE_T)-1 &&
	      GetLastError() == ERROR_INVALID_PARAMETER;
	SetLastError(0);
	ok &= !HeapReAlloc(h, 0, p, n + 1) &&
	      GetLastError() == ERROR_INVALID_PARAMETER;
	ok &= !HeapValidate(h, 0, p);
	T_OK(ok, "%s: free, size, realloc and validate refuse the block",
	     what);
	T_OK(!HeapValidate(h, 0, NULL), "%s: HeapValidate(NULL) finds it",
	     what);
	*byte = saved;
	T_OK(HeapSize(h, 0, p) == n && HeapValidate(h, 0, NULL),
	     "%s: restored, the block and the heap are valid again", what);
}

static void header_corruption(void)
{
	HANDLE h = api_lfh_heap(40);
	unsigned char *s = HeapAlloc(h, 0, 40), *m = HeapAlloc(h, 0, 30000);
	unsigned char *l = HeapAlloc(h, 0, 3 << 20);

	/* a 40-byte block has a stride of 48: its canary is s[40..47] */
	refused(h, s, s + 47, 40, "LFH block, top canary byte");
	refused(h, s, s + 40, 40, "LFH block, low canary byte");
	refused(h, m, m - 16, 30000, "medium block, kind byte");
	refused(h, m, m - 12, 30000, "medium block, size bytes");
	refused(h, m, m - 2, 30000, "medium block, requested-size word");
	refused(h, l, l - 16, 3 << 20, "large block, header");
	refused(h, l, l - 3, 3 << 20, "large block, size word");
	HeapDestroy(h);
}

static void overflow(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, 100), *q = HeapAlloc(h, 0, 100);
	unsigned char saved[16];
	size_t gap = (size_t)(q - p);

	memcpy(saved, q - 16, 16);
	memset(p, 0x41, gap);		/* 100 bytes and a bit too many */
	T_OK(!HeapValidate(h, 0, NULL), "overflow into the next header: "
	     "HeapValidate(NULL) is FALSE");
	T_OK(!HeapFree(h, 0, q) && HeapValidate(h, 0, p),
	     "the overwritten block cannot be freed, its neighbour is fine");
	memcpy(q - 16, saved, 16);
	T_OK(HeapValidate(h, 0, NULL) && HeapFree(h, 0, q),
	     "repaired, the heap is valid again");
	HeapDestroy(h);
}

static void use_after_free(void)
{
	HANDLE h = HeapCreate(0, 0, 0), l;
	unsigned char *a = HeapAlloc(h, 0, 2000), *b = HeapAlloc(h, 0, 2000);
	unsigned char *c = HeapAlloc(h, 0, 2000), *q, *x, *y;
	bool ok = true;
	int i;

	HeapFree(h, 0, b);
	memset(b, 0x41, 16);		/* the free-list links */
	T_OK(!HeapValidate(h, 0, NULL), "write to a freed medium block's "
	     "links: HeapValidate(NULL) is FALSE");
	for (i = 0; i < 50; i++) {
		q = HeapAlloc(h, 0, 2000);
		ok &= q && HeapValidate(h, 0, q);
	}
	T_OK(ok, "later allocations stay sane (the bad list is dropped)");
	HeapDestroy(h);

	h = HeapCreate(0, 0, 0);
	a = HeapAlloc(h, 0, 2000);
	b = HeapAlloc(h, 0, 2000);
	c = HeapAlloc(h, 0, 2000);
	HeapFree(h, 0, b);
	memset(c - 24, 0x41, 8);	/* b's footer */
	T_OK(!HeapValidate(h, 0, NULL), "write to a freed block's footer: "
	     "HeapValidate(NULL) is FALSE");
	T_OK(HeapFree(h, 0, c) && HeapValidate(h, 0, a),
	     "freeing the next block does not follow the bad footer");
	HeapDestroy(h);

	l = api_lfh_heap(64);
	x = HeapAlloc(l, 0, 64);
	y = HeapAlloc(l, 0, 64);
	HeapFree(l, 0, x);
	memset(x, 0x41, 8);		/* the slot's free-list link */
	T_OK(!HeapValidate(l, 0, NULL), "write to a freed LFH slot: "
	     "HeapValidate(NULL) is FALSE");
	ok = true;
	for (i = 0; i < 600; i++) {
		q = HeapAlloc(l, 0, 64);
		ok &= q && HeapValidate(l, 0, q) &&
		      (uintptr_t)q != 0x4141414141414141ULL;
		memset(q, 0, 64);
	}
	T_OK(ok && HeapValidate(l, 0, y), "the run is taken out of service; "
	     "allocations come from good runs");
	HeapDestroy(l);
}

static void signature(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	unsigned char *sig = (unsigned char *)h;

	sig[3] ^= 0x10;
	T_OK(!HeapValidate(h, 0, NULL), "a corrupted segment signature is "
	     "found by HeapValidate(NULL)");
	sig[3] ^= 0x10;
	T_OK(HeapValidate(h, 0, NULL), "and valid again once restored");
	HeapDestroy(h);
}

/* ---- termination on corruption, in children ---- */

enum {
	T_DOUBLE, T_WILD, T_FOREIGN, T_HEADER, T_REALLOC, T_LFH_LINK,
	/* from here on, the process must survive */
	T_VALIDATE, T_SIZE, T_SIZE_NULL, T_SIZE_WILD, T_REALLOC_NULL,
	T_COUNT
};

static const char *const t_names[T_COUNT] = {
	"double free",
	"wild free",
	"foreign free",
	"free of a block with a damaged canary",
	"HeapReAlloc of a freed block",
	"corrupted LFH free list",
	"HeapValidate (must not terminate)",
	"HeapSize of a freed block (must not terminate)",
	"HeapSize(h, 0, NULL) (must not terminate)",
	"heapdev_size of NULL and of a wild pointer (must not terminate)",
	"HeapReAlloc(h, 0, NULL, n) (must not terminate)",
};

/* The calls that must not end the process; 0 when they behaved. */
static int survivor(int kind, HANDLE h, unsigned char *p)
{
	size_t n = 0;

	switch (kind) {
	case T_VALIDATE:
		return HeapValidate(h, 0, NULL) || HeapValidate(h, 0, p);
	case T_SIZE:
	case T_SIZE_NULL:
		SetLastError(0);
		return HeapSize(h, 0, p) != (SIZE_T)-1 ||
		       GetLastError() != ERROR_INVALID_PARAMETER;
	case T_SIZE_WILD:
		return heapdev_size(h, NULL, 0, &n) != -EINVAL ||
		       heapdev_size(h, static_buf, 0, &n) != -EINVAL;
	case T_REALLOC_NULL:
		SetLastError(0xdeadbeef);
		return HeapReAlloc(h, 0, NULL, 10) ||
		       GetLastError() != NO_ERROR;
	}
	return 1;
}

/* Child: enable termination, do the bad thing; print the pointer. */
static void term_child(int kind, int out)
{
	HANDLE h = api_lfh_heap(48), h2 = HeapCreate(0, 0, 0);
	unsigned char *p = HeapAlloc(h, 0, 48), *bad = p;
	char line[64];
	int n;

	HeapSetInformation(NULL, HeapEnableTerminationOnCorruption, NULL, 0);
	switch (kind) {
	case T_DOUBLE:
	case T_REALLOC:
	case T_SIZE:
		HeapFree(h, 0, p);
		break;
	case T_WILD:
		bad = (unsigned char *)static_buf;
		break;
	case T_FOREIGN:
		bad = HeapAlloc(h2, 0, 48);
		break;
	case T_HEADER:
	case T_VALIDATE:
		p[63] ^= 1;	/* stride 64: the canary's last byte */
		break;
	case T_LFH_LINK:
		HeapFree(h, 0, p);
		memset(p, 0x41, 8);
		break;
	case T_SIZE_NULL:
	case T_REALLOC_NULL:
		bad = NULL;
		break;
	}
	n = snprintf(line, sizeof(line), "%p %p\n", h, (void *)bad);
	if (write(out, line, n) != n)
		_exit(3);
	if (kind >= T_VALIDATE)
		_exit(survivor(kind, h, bad));
	switch (kind) {
	case T_REALLOC:
		HeapReAlloc(h, 0, bad, 100);
		break;
	case T_LFH_LINK:
		/* freed slots are reused once the run's free list is used up */
		for (n = 0; n < 300; n++)
			HeapAlloc(h, 0, 48);
		break;
	default:
		HeapFree(h, 0, bad);
		break;
	}
	_exit(0);
}

static void termination(void)
{
	int kind;

	for (kind = 0; kind < T_COUNT; kind++) {
		int info[2], err[2], st;
		char ptrs[128] = "", msg[1024] = "", hp[40], bp[40];
		ssize_t n;
		pid_t pid;

		if (pipe(info) || pipe(err))
			return;
		pid = fork();
		if (!pid) {
			dup2(err[1], 2);
			close(info[0]);
			close(err[0]);
			term_child(kind, info[1]);
		}
		close(info[1]);
		close(err[1]);
		n = read(info[0], ptrs, sizeof(ptrs) - 1);
		ptrs[n > 0 ? n : 0] = 0;
		n = read(err[0], msg, sizeof(msg) - 1);
		msg[n > 0 ? n : 0] = 0;
		waitpid(pid, &st, 0);
		close(info[0]);
		close(err[0]);
		if (kind >= T_VALIDATE) {
			T_OK(WIFEXITED(st) && !WEXITSTATUS(st) && !msg[0],
			     "termination on: %s", t_names[kind]);
			continue;
		}
		if (sscanf(ptrs, "%39s %39s", hp, bp) != 2)
			hp[0] = bp[0] = '?';
		T_OK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		     "termination on: %s ends the process (SIGABRT)",
		     t_names[kind]);
		T_OK(strstr(msg, "heap corruption") && strstr(msg, hp) &&
		     (kind == T_LFH_LINK || strstr(msg, bp)),
		     "termination on: %s: stderr names heap %s and block %s",
		     t_names[kind], hp, bp);
	}
}

int main(void)
{
	printf("# heapdev hardening tests\n");
	header_corruption();
	overflow();
	use_after_free();
	signature();
	termination();
	return t_done();
}
