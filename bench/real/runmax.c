// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench/real: runmax FILE PROGRAM [ARG...]: run PROGRAM and write its exit
 * status and peak RSS (wait4's ru_maxrss, KiB, its children included) to
 * FILE as "status maxrss_kb".  The benchmark starts programs through this
 * small program because a child's ru_maxrss also counts the memory of the
 * process it was forked from, up to its exec (Python's, in run.py).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: runmax FILE PROGRAM [ARG...]\n");
		return 2;
	}
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		execv(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) != pid)
		return 2;
	f = fopen(argv[1], "w");
	if (!f)
		return 2;
	fprintf(f, "%d %ld\n", WIFEXITED(status) ? WEXITSTATUS(status) :
		128 + WTERMSIG(status), ru.ru_maxrss);
	fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
