// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libheapdev-malloc and fork().  The drop-in's heaps are created with
 * HEAPDEV_INHERIT, so a child gets its own copy of every block its parent
 * had, at the same address, as with glibc's malloc (heapdev-malloc(3)):
 *
 *   - the child reads its parent's blocks, writes them, frees and
 *     reallocates them, and the parent sees none of it;
 *   - blocks that other threads of the parent allocated are freed in the
 *     child like any other (their threads' contexts are given up there);
 *   - grandchildren get the child's blocks, fork + exec works, and a child
 *     that calls only async-signal-safe functions works;
 *   - children forked while other threads allocate and free all work.
 */
#include <pthread.h>
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

#define NOTHER 100

static char *other[NOTHER];	/* allocated by another thread */

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

static int all_are(const char *p, size_t n, char c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/* The parent's blocks are the child's, at the same addresses. */
static int child_reads_writes(void *arg)
{
	if (!heapdev_heap_of(pre) || !heapdev_heap_of(pre_big))
		return 2;
	if (!all_are(pre, 64, 'p') || !all_are(pre_big, 3 << 20, 'q'))
		return 3;
	memset(pre, 'c', 64);
	memset(pre_big, 'd', 3 << 20);
	if (malloc_usable_size(pre) < 64)
		return 4;
	return 0;
}

static int child_frees_reallocs(void *arg)
{
	char *q = realloc(pre, 100000);
	int i;

	if (!q || !all_are(q, 64, 'p'))
		return 2;
	free(q);
	free(pre_big);
	/* Blocks of a thread that did not come along. */
	for (i = 0; i < NOTHER; i++) {
		if (!all_are(other[i], 48, 'o'))
			return 3;
		free(other[i]);
	}
	return child_allocates(NULL) ? 4 : 0;
}

static int child_double_free(void *arg)
{
	free(pre);
	free(pre);	/* the child's copy was freed: glibc-style abort */
	return 0;
}

static int grandchild(void *arg)
{
	char *mine = arg;

	if (!all_are(mine, 100, 'm') || !all_are(pre, 64, 'p'))
		return 2;
	free(mine);
	free(pre);
	return child_allocates(NULL) ? 3 : 0;
}

static int child_forks(void *arg)
{
	struct hdm_child c;
	char *mine = malloc(100);

	if (!mine)
		return 2;
	memset(mine, 'm', 100);
	hdm_in_child(grandchild, mine, &c);
	if (!hdm_exited(&c, 0))
		return 10 + (WIFEXITED(c.status) ? WEXITSTATUS(c.status) : 9);
	/* The grandchild's frees were its own. */
	return all_are(mine, 100, 'm') && all_are(pre, 64, 'p') ? 0 : 3;
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

static int child_after_churn(void *arg)
{
	if (!all_are(pre, 64, 'p'))
		return 5;
	return child_allocates(NULL);
}

static void *allocate_other(void *arg)
{
	int i;

	for (i = 0; i < NOTHER; i++) {
		other[i] = malloc(48);
		if (other[i])
			memset(other[i], 'o', 48);
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
	pthread_create(&t[0], NULL, allocate_other, NULL);
	pthread_join(t[0], NULL);

	hdm_in_child(child_allocates, NULL, &c);
	T_OK(hdm_exited(&c, 0), "the child's malloc() and free() work (20 x 1000 blocks)");
	hdm_in_child(child_reads_writes, NULL, &c);
	T_OK(hdm_exited(&c, 0), "the child reads and writes its parent's blocks, at the same addresses (%#x)",
	     c.status);
	T_OK(all_are(pre, 64, 'p') && all_are(pre_big, 3 << 20, 'q'),
	     "the child's writes are its own");
	hdm_in_child(child_frees_reallocs, NULL, &c);
	T_OK(hdm_exited(&c, 0) && !c.err[0], "the child frees and reallocates its parent's blocks, another thread's too (%#x)",
	     c.status);
	hdm_in_child(child_double_free, NULL, &c);
	T_OK(hdm_aborted(&c) && strstr(c.err, "free(): "),
	     "a double free of an inherited block in the child: SIGABRT and a message");
	hdm_in_child(child_forks, NULL, &c);
	T_OK(hdm_exited(&c, 0), "grandchildren get the child's blocks and free their own copies (%#x)",
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
		hdm_in_child(child_after_churn, NULL, &c);
		ok &= hdm_exited(&c, 0);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	T_OK(ok, "%d forks while two threads allocate: every child has its parent's blocks and allocates", nforks);

	T_OK(all_are(pre, 64, 'p') && pre_big[(3 << 20) - 1] == 'q' &&
	     all_are(other[0], 48, 'o'),
	     "the parent's blocks are untouched");
	for (i = 0; i < NOTHER; i++)
		free(other[i]);
	free(pre);
	free(pre_big);
	return t_done();
}
