/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
/*
 * Minimal TAP-style test helpers shared by the heapdev tests.
 *
 * Every check prints "ok N - what" or "not ok N - what"; t_done() prints
 * the closing "N passed, N failed" line and returns the exit status.
 */
#ifndef HEAPDEV_TEST_T_H
#define HEAPDEV_TEST_T_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

extern int t_pass, t_fail, t_verbose;

void t_check(int cond, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int t_done(void);
void t_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Bytes the library's memfd holds (memfd backend), or -1 without one. */
long long t_memfd_bytes(void);

#define T_OK(cond, ...) t_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define T_EQ(a, b, ...) do {						\
	unsigned long long t_a_ = (unsigned long long)(a);		\
	unsigned long long t_b_ = (unsigned long long)(b);		\
	if (t_a_ != t_b_)						\
		t_diag("%s:%d: %s = %#llx, expected %s = %#llx",	\
		       __FILE__, __LINE__, #a, t_a_, #b, t_b_);		\
	t_check(t_a_ == t_b_, __FILE__, __LINE__, __VA_ARGS__);		\
} while (0)

#endif
