// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libheapdev-malloc and fork().  heapdev heaps are not inherited, so the
 * child gets none of the blocks its parent allocated before fork(); what
 * it does get, and what the drop-in documents (heapdev-malloc(3)):
 *
 *   - malloc() and free() work: a new process heap on the first call;
 *   - a pre-fork block's address is reserved and inaccessible (SIGSEGV),
 *     and no new heap reuses it;
 *   - free() of a pre-fork block does nothing; realloc() and
 *     malloc_usable_size() of one end the process with a message;
 *   - a child that calls only async-signal-safe functions, then exec or
 *     _exit, works; so do grandchildren.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <heapdev.h>

#include "t.h"
#include "hdm_test.h"

static char *pre;		/* allocated before fork() */
static char *pre_big;

static sigjmp_buf jb;

static void on_segv(int sig)
{
	siglongjmp(jb, 1);
}

/* 0: @p cannot be read (SIGSEGV); 1: it can. */
static int readable(const volatile char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	int r;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(jb, 1))
		r = 0;
	else
		r = (p[0], 1);
	sigaction(SIGSEGV, &old, NULL);
	return r;
}

static int child_allocates(void *arg)
{
	void *v[1000];
	int i, j;

	for (j = 0; j < 20; j++) {
		for (i = 0; i < 1000; i++) {
			v[i] = malloc((size_t)(i * 37 + j) % 5000);
			if (!v[i])
				return 2;
			memset(v[i], i, (size_t)(i * 37 + j) % 5000);
		}
		for (i = 0; i < 1000; i++)
			free(v[i]);
	}
	return 0;
}

static int child_heap_apart(void *arg)
{
	char *p = malloc(64), *q = malloc(8 << 20);
	struct heapdev_heap *h = heapdev_heap_of(p);

	if (!p || !q || !h || h != heapdev_process_heap())
		return 2;
	if (heapdev_heap_of(pre) || heapdev_heap_of(pre_big))
		return 3;	/* the old addresses belong to no heap */
	if (readable(pre) || readable(pre_big))
		return 4;	/* not the parent's memory, not reused */
	return 0;
}

static int child_frees_prefork(void *arg)
{
	free(pre);
	free(pre_big);
	free(pre);		/* twice: still nothing to do */
	return 0;
}

static int child_reallocs_prefork(void *arg)
{
	void *q = realloc(pre, 100);

	return q ? 2 : 3;
}

static int child_sizes_prefork(void *arg)
{
	return (int)malloc_usable_size(pre);
}

static int grandchild(void *arg)
{
	struct hdm_child c;
	void *mine = malloc(100);

	/* The child's own block: gone in the grandchild, free() is a no-op. */
	hdm_in_child(child_frees_prefork, NULL, &c);
	if (!hdm_exited(&c, 0))
		return 2;
	hdm_in_child(child_allocates, NULL, &c);
	if (!hdm_exited(&c, 0))
		return 3;
	pre = mine;
	hdm_in_child(child_frees_prefork, NULL, &c);
	return hdm_exited(&c, 0) ? 0 : 4;
}

static int child_execs(void *arg)
{
	char *const argv[] = { "sh", "-c", "exit 7", NULL };

	execv("/bin/sh", argv);
	return 99;
}

static int child_async_safe(void *arg)
{
	static const char msg[] = "only write() and _exit()";

	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) != sizeof(msg) - 1)
		_exit(2);
	_exit(0);
}

/* fork() while other threads allocate and free. */
static atomic_int stop;

static void *churn(void *arg)
{
	while (!atomic_load(&stop)) {
		void *p = malloc(200), *q = malloc(70000);

		free(p);
		free(q);
	}
	return NULL;
}

/* argv[1]: forks while threads allocate (default 50) */
int main(int argc, char **argv)
{
	struct hdm_child c;
	pthread_t t[2];
	int i, ok, nforks = argc > 1 ? atoi(argv[1]) : 50;

	pre = malloc(64);
	pre_big = malloc(3 << 20);
	memset(pre, 'p', 64);
	memset(pre_big, 'q', 3 << 20);

	hdm_in_child(child_allocates, NULL, &c);
	T_OK(hdm_exited(&c, 0), "the child's malloc() and free() work (20 x 1000 blocks)");
	hdm_in_child(child_heap_apart, NULL, &c);
	T_OK(hdm_exited(&c, 0), "the child's heap is new; pre-fork blocks are in no heap, reserved, unreadable (%#x)",
	     c.status);
	hdm_in_child(child_frees_prefork, NULL, &c);
	T_OK(hdm_exited(&c, 0) && !c.err[0], "free() of pre-fork blocks in the child does nothing");
	hdm_in_child(child_reallocs_prefork, NULL, &c);
	T_OK(hdm_aborted(&c) && strstr(c.err, "realloc(): ") &&
	     strstr(c.err, "was allocated before fork()"),
	     "realloc() of a pre-fork block in the child: SIGABRT and a message");
	hdm_in_child(child_sizes_prefork, NULL, &c);
	T_OK(hdm_aborted(&c) && strstr(c.err, "malloc_usable_size(): "),
	     "malloc_usable_size() of a pre-fork block in the child: SIGABRT and a message");
	hdm_in_child(grandchild, NULL, &c);
	T_OK(hdm_exited(&c, 0), "grandchildren: free() of their parent's and grandparent's blocks does nothing, malloc works (%#x)",
	     c.status);
	hdm_in_child(child_execs, NULL, &c);
	T_OK(hdm_exited(&c, 7), "fork() + exec");
	hdm_in_child(child_async_safe, NULL, &c);
	T_OK(hdm_exited(&c, 0) && !strcmp(c.err, "only write() and _exit()"),
	     "a child that calls only async-signal-safe functions");

	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	ok = 1;
	for (i = 0; i < nforks; i++) {
		hdm_in_child(child_allocates, NULL, &c);
		ok &= hdm_exited(&c, 0);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	T_OK(ok, "%d forks while two threads allocate: every child allocates", nforks);

	T_OK(pre[0] == 'p' && pre_big[(3 << 20) - 1] == 'q',
	     "the parent's blocks are untouched");
	free(pre);
	free(pre_big);
	return t_done();
}
