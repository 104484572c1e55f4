/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * port.h: what the workloads need from the platform, for Linux (glibc) and
 * for Windows (mingw-w64, run under wine64): a monotonic clock, threads,
 * raw memory for the harness's own arrays (never from the heap under test),
 * the peak resident set size, and a small random number generator.
 */
#ifndef BENCH_PORT_H
#define BENCH_PORT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#include <psapi.h>
#else
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#endif

#define NOINLINE __attribute__((noinline))

/* ---- time ---- */

#ifdef _WIN32
static inline double now_sec(void)
{
	static double inv;
	LARGE_INTEGER c;

	if (!inv) {
		LARGE_INTEGER f;

		QueryPerformanceFrequency(&f);
		inv = 1.0 / (double)f.QuadPart;
	}
	QueryPerformanceCounter(&c);
	return (double)c.QuadPart * inv;
}
#else
static inline double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#endif

/* ---- threads ---- */

typedef void (*thread_fn)(void *arg);

struct thread {
	thread_fn fn;
	void *arg;
#ifdef _WIN32
	HANDLE h;
#else
	pthread_t t;
#endif
};

#ifdef _WIN32
static DWORD WINAPI thread_tramp(LPVOID p)
{
	struct thread *t = p;

	t->fn(t->arg);
	return 0;
}

static inline int thread_start(struct thread *t, thread_fn fn, void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->h = CreateThread(NULL, 0, thread_tramp, t, 0, NULL);
	return t->h ? 0 : -1;
}

static inline void thread_join(struct thread *t)
{
	WaitForSingleObject(t->h, INFINITE);
	CloseHandle(t->h);
}

static inline void cpu_yield(void)
{
	SwitchToThread();
}
#else
static void *thread_tramp(void *p)
{
	struct thread *t = p;

	t->fn(t->arg);
	return NULL;
}

static inline int thread_start(struct thread *t, thread_fn fn, void *arg)
{
	t->fn = fn;
	t->arg = arg;
	return pthread_create(&t->t, NULL, thread_tramp, t) ? -1 : 0;
}

static inline void thread_join(struct thread *t)
{
	pthread_join(t->t, NULL);
}

static inline void cpu_yield(void)
{
	sched_yield();
}
#endif

/* ---- raw memory for the harness (outside every heap under test) ---- */

static inline void *raw_alloc(size_t n)
{
	void *p;

	n = (n + 4095) & ~(size_t)4095;
#ifdef _WIN32
	p = VirtualAlloc(NULL, n, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#else
	p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		p = NULL;
#endif
	if (!p) {
		fprintf(stderr, "bench: out of memory for the harness\n");
		exit(2);
	}
	return p;
}

static inline void raw_free(void *p, size_t n)
{
	n = (n + 4095) & ~(size_t)4095;
#ifdef _WIN32
	(void)n;
	VirtualFree(p, 0, MEM_RELEASE);
#else
	munmap(p, n);
#endif
}

/* Peak resident set size of the process in bytes (0 if unknown). */
static inline long long peak_rss_bytes(void)
{
#ifdef _WIN32
	PROCESS_MEMORY_COUNTERS pmc;

	if (GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof(pmc)))
		return (long long)pmc.PeakWorkingSetSize;
	return 0;
#else
	/* VmHWM, not getrusage(): ru_maxrss survives execve. */
	char line[128];
	long long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %lld", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
#endif
}

/* ---- random numbers: xorshift64*, one state per thread ---- */

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n). */
static inline uint32_t rnd_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(((rnd(s) >> 32) * (uint64_t)n) >> 32);
}

#endif /* BENCH_PORT_H */
