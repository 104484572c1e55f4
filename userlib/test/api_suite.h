/* SPDX-License-Identifier: LGPL-2.1-or-later OR MIT */
#ifndef HEAPDEV_TEST_API_SUITE_H
#define HEAPDEV_TEST_API_SUITE_H

#include <stdbool.h>
#include <stddef.h>

/* Run every API check; results go to t.h's counters. */
void api_suite(const char *self);

/*
 * Helper modes of the test binary (re-executed by the suite): returns the
 * exit status, or -1 when argv asks for no helper mode.
 */
int api_suite_child(int argc, char **argv);

/* Shared by the tests linked with api_suite.c. */

/* A growable heap whose size class of @n is served by LFH runs. */
void *api_lfh_heap(size_t n);

/* Whether all @n bytes at @p are @v. */
bool api_all_byte(const void *p, size_t n, unsigned char v);

/* Whether *@flag becomes non-zero (acquire) within @ms milliseconds. */
bool api_flag_within(volatile int *flag, int ms);

#endif
