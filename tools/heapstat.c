// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapstat: show heapdev heaps per process, from the admin view
 * /proc/heapdev.  See heapstat(1).
 */

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROC_FILE	"/proc/heapdev"
#define SYS_PAGES	"/sys/class/misc/heapdev/pages"

struct heap {
	int pid;
	char comm[64];
	unsigned int id;
	char flags[8];
	unsigned long long committed, reserved, maximum, resident;
	int mappings;
};

struct proc {
	int pid;
	char comm[64];
	unsigned int heaps;
	int mappings;
	int malloc;		/* 1: uses libheapdev-malloc, 0: no, -1: unknown */
	unsigned long long committed, reserved, resident;
};

enum sort_key { SORT_COMMITTED, SORT_RESERVED, SORT_HEAPS, SORT_PID, SORT_COMM };

static struct {
	const char *file;
	enum sort_key sort;
	int *pids;
	int npids;
	bool heaps;
	bool json;
	bool raw_bytes;
	double watch;
	long count;
} opt = { .file = PROC_FILE, .count = -1 };

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: heapstat [OPTION]...\n"
		"Show the heapdev heaps of every process you may see, from " PROC_FILE ".\n\n"
		"  -p, --pid PID[,PID...]  only these processes (repeatable)\n"
		"  -s, --sort KEY          committed (default), reserved, heaps, pid, comm\n"
		"  -a, --heaps             one line per heap instead of per process\n"
		"  -w, --watch[=SECONDS]   refresh in place every SECONDS (default 1)\n"
		"  -n, --count N           with --watch, stop after N refreshes\n"
		"  -j, --json              machine-readable output\n"
		"  -b, --bytes             sizes in bytes instead of KiB/MiB/GiB/TiB\n"
		"  -f, --file PATH         read PATH instead of " PROC_FILE "\n"
		"  -h, --help              this help\n\n"
		"Root sees every process; other users see their own.\n");
}

/* Undo the admin view's \ooo escapes of blanks and backslashes. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && isdigit((unsigned char)s[1]) &&
		    isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3])) {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

static bool wanted(int pid)
{
	int i;

	if (!opt.npids)
		return true;
	for (i = 0; i < opt.npids; i++)
		if (opt.pids[i] == pid)
			return true;
	return false;
}

/* Read the admin view; returns the number of heaps or -errno. */
static int read_heaps(struct heap **out)
{
	struct heap *v = NULL, h;
	size_t n = 0, cap = 0;
	char line[512];
	FILE *f = fopen(opt.file, "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		int k = sscanf(line, "%d %63s %u %7s %llu %llu %llu %d %llu",
			       &h.pid, h.comm, &h.id, h.flags, &h.committed,
			       &h.reserved, &h.maximum, &h.mappings,
			       &h.resident);

		if (k < 8)
			continue;	/* the header, or a line we do not know */
		if (k == 8)		/* a module without lazy commit */
			h.resident = h.committed;
		if (!wanted(h.pid))
			continue;
		unescape(h.comm);
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			v = realloc(v, cap * sizeof(*v));
			if (!v) {
				fclose(f);
				return -ENOMEM;
			}
		}
		v[n++] = h;
	}
	fclose(f);
	*out = v;
	return (int)n;
}

/*
 * Does process @pid use the drop-in malloc (heapdev-malloc(3))?  The
 * drop-in maps a page of a memfd named "heapdev-malloc", and the shared
 * library's name says so too.  -1 when its maps cannot be read.
 */
static int uses_malloc(int pid)
{
	char path[64], line[512];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "heapdev-malloc") != NULL;
	fclose(f);
	return found;
}

static const char *malloc_str(int m)
{
	return m > 0 ? "yes" : m == 0 ? "-" : "?";
}

static size_t group(const struct heap *h, int n, struct proc **out)
{
	struct proc *p = calloc(n ? n : 1, sizeof(*p));
	size_t np = 0, j;
	int i;

	if (!p)
		return 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < np; j++)
			if (p[j].pid == h[i].pid)
				break;
		if (j == np) {
			p[np].pid = h[i].pid;
			p[np].malloc = uses_malloc(h[i].pid);
			snprintf(p[np].comm, sizeof(p[np].comm), "%s", h[i].comm);
			np++;
		}
		p[j].heaps++;
		p[j].mappings += h[i].mappings;
		p[j].committed += h[i].committed;
		p[j].reserved += h[i].reserved;
		p[j].resident += h[i].resident;
	}
	*out = p;
	return np;
}

static int cmp_u64(unsigned long long a, unsigned long long b)
{
	return a < b ? 1 : a > b ? -1 : 0;	/* descending */
}

static int cmp_proc(const void *x, const void *y)
{
	const struct proc *a = x, *b = y;

	switch (opt.sort) {
	case SORT_RESERVED:
		return cmp_u64(a->reserved, b->reserved);
	case SORT_HEAPS:
		return cmp_u64(a->heaps, b->heaps);
	case SORT_PID:
		return a->pid - b->pid;
	case SORT_COMM:
		return strcmp(a->comm, b->comm);
	default:
		return cmp_u64(a->committed, b->committed) ?: a->pid - b->pid;
	}
}

static int cmp_heap(const void *x, const void *y)
{
	const struct heap *a = x, *b = y;

	switch (opt.sort) {
	case SORT_RESERVED:
		return cmp_u64(a->reserved, b->reserved);
	case SORT_PID:
	case SORT_HEAPS:
		return a->pid != b->pid ? a->pid - b->pid : (int)(a->id - b->id);
	case SORT_COMM:
		return strcmp(a->comm, b->comm);
	default:
		return cmp_u64(a->committed, b->committed) ?:
		       (a->pid != b->pid ? a->pid - b->pid : (int)(a->id - b->id));
	}
}

static const char *size_str(unsigned long long v, char *buf, size_t len)
{
	static const char *const unit[] = { "K", "M", "G", "T" };
	double d = v / 1024.0;
	int u = 0;

	if (opt.raw_bytes) {
		snprintf(buf, len, "%llu", v);
		return buf;
	}
	while (d >= 1024 && u < 3) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, d < 10 ? "%.1f%s" : "%.0f%s", d, unit[u]);
	return buf;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static long module_pages(void)
{
	FILE *f = fopen(SYS_PAGES, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void print_json(struct heap *h, int n, struct proc *p, size_t np)
{
	size_t i;
	int k, first;

	printf("{\"processes\":[");
	for (i = 0; i < np; i++) {
		printf("%s{\"pid\":%d,\"comm\":", i ? "," : "", p[i].pid);
		json_str(p[i].comm);
		printf(",\"heaps\":%u,\"committed\":%llu,\"reserved\":%llu,\"mappings\":%d,\"malloc\":%s,\"resident\":%llu,\"heap_list\":[",
		       p[i].heaps, p[i].committed, p[i].reserved, p[i].mappings,
		       p[i].malloc > 0 ? "true" : p[i].malloc == 0 ? "false" : "null",
		       p[i].resident);
		for (k = 0, first = 1; k < n; k++) {
			if (h[k].pid != p[i].pid)
				continue;
			printf("%s{\"id\":%u,\"growable\":%s,\"executable\":%s,\"committed\":%llu,\"reserved\":%llu,\"maximum\":%llu,\"mappings\":%d,\"resident\":%llu}",
			       first ? "" : ",", h[k].id, h[k].flags[0] == 'G' ? "true" : "false",
			       h[k].flags[1] == 'X' ? "true" : "false",
			       h[k].committed, h[k].reserved, h[k].maximum,
			       h[k].mappings, h[k].resident);
			first = 0;
		}
		printf("]}");
	}
	printf("],\"module_pages\":%ld}\n", module_pages());
}

static void print_table(struct heap *h, int n, struct proc *p, size_t np)
{
	unsigned long long total = 0;
	char a[32], b[32], c[32], d[32];
	size_t i;
	int k;

	if (opt.heaps) {
		printf("%7s %-16s %6s %5s %10s %10s %10s %10s %5s %6s\n", "PID",
		       "COMMAND", "HEAP", "FLAGS", "COMMITTED", "RESIDENT",
		       "RESERVED", "MAXIMUM", "MAPS", "MALLOC");
		for (k = 0; k < n; k++) {
			size_t j;
			int m = -1;

			for (j = 0; j < np; j++)
				if (p[j].pid == h[k].pid)
					m = p[j].malloc;
			printf("%7d %-16s %6u %5s %10s %10s %10s %10s %5d %6s\n",
			       h[k].pid, h[k].comm, h[k].id, h[k].flags,
			       size_str(h[k].committed, a, sizeof(a)),
			       size_str(h[k].resident, d, sizeof(d)),
			       size_str(h[k].reserved, b, sizeof(b)),
			       h[k].maximum ? size_str(h[k].maximum, c, sizeof(c)) : "-",
			       h[k].mappings, malloc_str(m));
			total += h[k].committed;
		}
	} else {
		printf("%7s %-16s %6s %10s %10s %10s %5s %6s\n", "PID",
		       "COMMAND", "HEAPS", "COMMITTED", "RESIDENT", "RESERVED",
		       "MAPS", "MALLOC");
		for (i = 0; i < np; i++) {
			printf("%7d %-16s %6u %10s %10s %10s %5d %6s\n", p[i].pid,
			       p[i].comm, p[i].heaps,
			       size_str(p[i].committed, a, sizeof(a)),
			       size_str(p[i].resident, d, sizeof(d)),
			       size_str(p[i].reserved, b, sizeof(b)),
			       p[i].mappings, malloc_str(p[i].malloc));
			total += p[i].committed;
		}
	}
	printf("%zu process%s, %d heap%s, %s committed", np,
	       np == 1 ? "" : "es", n, n == 1 ? "" : "s",
	       size_str(total, a, sizeof(a)));
	if (module_pages() >= 0 && !opt.npids)
		printf(" (module holds %s)",
		       size_str((unsigned long long)module_pages() *
				sysconf(_SC_PAGESIZE), b, sizeof(b)));
	printf("\n");
}

static int show(void)
{
	struct heap *h = NULL;
	struct proc *p = NULL;
	size_t np;
	int n = read_heaps(&h);

	if (n < 0) {
		fprintf(stderr, "heapstat: %s: %s%s\n", opt.file, strerror(-n),
			-n == ENOENT ? " (is the heapdev module loaded?)" : "");
		return 1;
	}
	qsort(h, n, sizeof(*h), cmp_heap);
	np = group(h, n, &p);
	qsort(p, np, sizeof(*p), cmp_proc);
	if (opt.json)
		print_json(h, n, p, np);
	else
		print_table(h, n, p, np);
	free(h);
	free(p);
	fflush(stdout);
	return 0;
}

static int parse_pids(const char *arg)
{
	char *copy = strdup(arg), *tok, *save = NULL, *end;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v = strtol(tok, &end, 10);

		if (*end || v <= 0 || v > 0x7fffffff) {
			fprintf(stderr, "heapstat: not a pid: '%s'\n", tok);
			free(copy);
			return -1;
		}
		opt.pids = realloc(opt.pids, (opt.npids + 1) * sizeof(int));
		if (!opt.pids) {
			free(copy);
			return -1;
		}
		opt.pids[opt.npids++] = (int)v;
	}
	free(copy);
	return 0;
}

static int parse_sort(const char *arg)
{
	static const char *const names[] = {
		[SORT_COMMITTED] = "committed", [SORT_RESERVED] = "reserved",
		[SORT_HEAPS] = "heaps", [SORT_PID] = "pid", [SORT_COMM] = "comm",
	};
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(arg, names[i])) {
			opt.sort = i;
			return 0;
		}
	}
	fprintf(stderr, "heapstat: unknown sort key '%s'\n", arg);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "sort", required_argument, NULL, 's' },
		{ "heaps", no_argument, NULL, 'a' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct timespec ts;
	char *end;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "p:s:aw::n:jbf:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_pids(optarg))
				return 2;
			break;
		case 's':
			if (parse_sort(optarg))
				return 2;
			break;
		case 'a':
			opt.heaps = true;
			break;
		case 'w':
			opt.watch = optarg ? strtod(optarg, &end) : 1.0;
			if (optarg && (*end || opt.watch <= 0)) {
				fprintf(stderr, "heapstat: bad interval '%s'\n", optarg);
				return 2;
			}
			break;
		case 'n':
			opt.count = strtol(optarg, &end, 10);
			if (*end || opt.count <= 0) {
				fprintf(stderr, "heapstat: bad count '%s'\n", optarg);
				return 2;
			}
			break;
		case 'j':
			opt.json = true;
			break;
		case 'b':
			opt.raw_bytes = true;
			break;
		case 'f':
			opt.file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "heapstat: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	if (opt.count > 0 && !opt.watch) {
		fprintf(stderr, "heapstat: --count needs --watch\n");
		return 2;
	}
	if (!opt.watch)
		return show();

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ts.tv_sec = (time_t)opt.watch;
	ts.tv_nsec = (long)((opt.watch - ts.tv_sec) * 1e9);
	while (!stop && opt.count) {
		if (!opt.json)
			printf("\033[H\033[2J");	/* home, clear: refresh in place */
		ret = show();
		if (ret || opt.count == 1)
			break;
		if (opt.count > 0)
			opt.count--;
		nanosleep(&ts, NULL);
	}
	return ret;
}
