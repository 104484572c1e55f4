// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"

int t_pass, t_fail, t_verbose = 1;

void t_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

void t_check(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	if (cond)
		t_pass++;
	else
		t_fail++;
	if (cond && !t_verbose)
		return;
	printf("%sok %d - ", cond ? "" : "not ", t_pass + t_fail);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!cond)
		printf(" (%s:%d)", file, line);
	fputc('\n', stdout);
	fflush(stdout);
}

int t_done(void)
{
	printf("%d passed, %d failed\n", t_pass, t_fail);
	fflush(stdout);
	return t_fail ? 1 : 0;
}

long long t_memfd_bytes(void)
{
	char path[64], link[64];
	struct stat st;
	ssize_t n;
	int fd;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (!strncmp(link, "/memfd:heapdev", 14) && !fstat(fd, &st))
			return (long long)st.st_blocks * 512;
	}
	return -1;
}
