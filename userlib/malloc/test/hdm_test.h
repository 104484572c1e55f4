/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Helpers of the drop-in's tests: run a function in a fork() child and
 * collect how it ended and what it wrote on stderr.
 */
#ifndef HEAPDEV_MALLOC_TEST_H
#define HEAPDEV_MALLOC_TEST_H

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct hdm_child {
	int status;		/* from waitpid() */
	char err[2048];		/* its stderr */
};

/*
 * Run @fn in a child with stderr on a pipe.  The child _exit()s with @fn's
 * return value.
 */
static inline void hdm_in_child(int (*fn)(void *), void *arg,
				struct hdm_child *c)
{
	int fds[2];
	size_t have = 0;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	if (pipe(fds)) {
		c->status = -1;
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		_exit(fn(arg));
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = read(fds[0], c->err + have, sizeof(c->err) - 1 - have);

		if (r <= 0)
			break;
		have += r;
	}
	close(fds[0]);
	c->err[have] = '\0';
	if (pid < 0 || waitpid(pid, &c->status, 0) != pid)
		c->status = -1;
}

static inline int hdm_aborted(const struct hdm_child *c)
{
	return WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT;
}

static inline int hdm_exited(const struct hdm_child *c, int code)
{
	return WIFEXITED(c->status) && WEXITSTATUS(c->status) == code;
}

#endif
