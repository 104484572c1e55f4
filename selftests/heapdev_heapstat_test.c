// SPDX-License-Identifier: GPL-2.0-only
/*
 * heapstat, the admin tool over /proc/heapdev: it shows this process's
 * heaps with the right sizes, filters, sorts, refreshes and speaks JSON.
 * Looks for the tool in $HEAPSTAT, then next to this program; skipped when
 * it is absent (as in a kernel tree, which does not carry it).
 */

#define _GNU_SOURCE

#include <libgen.h>

#include "../kselftest_harness.h"
#include "heapdev_util.h"

static char heapstat[512];

static bool find_heapstat(void)
{
	char self[512];
	ssize_t n;

	if (getenv("HEAPSTAT")) {
		snprintf(heapstat, sizeof(heapstat), "%s", getenv("HEAPSTAT"));
		return access(heapstat, X_OK) == 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	snprintf(heapstat, sizeof(heapstat), "%s/heapstat", dirname(self));
	return access(heapstat, X_OK) == 0;
}

/* Run heapstat with @args; its output goes to @out, returns exit status. */
static int run(const char *args, char *out, size_t len)
{
	char cmd[1024];
	size_t got = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", heapstat, args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (got < len - 1) {
		size_t n = fread(out + got, 1, len - 1 - got, p);

		if (!n)
			break;
		got += n;
	}
	out[got] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

FIXTURE(hs) {
	int fd;
	struct heapdev_create a, b;
	char out[16384];
};

FIXTURE_SETUP(hs)
{
	self->fd = hd_open();
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, HD_DEV " is missing");
	if (!find_heapstat())
		SKIP(return, "heapstat not found (set HEAPSTAT)");
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, hd_create(self->fd, 0, 12288, 0, &self->a));
	ASSERT_EQ(0, hd_create(self->fd, HEAPDEV_HEAP_EXEC, 4096, 65536,
			       &self->b));
}

FIXTURE_TEARDOWN(hs)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(hs, json_shows_own_heaps_exactly)
{
	char args[64], want[256];

	HD_SKIPPED_IN_SETUP();

	snprintf(args, sizeof(args), "--json -p %d", getpid());
	ASSERT_EQ(0, run(args, self->out, sizeof(self->out)));
	snprintf(want, sizeof(want), "\"pid\":%d,", getpid());
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, "\"heaps\":2,\"committed\":16384,"));
	snprintf(want, sizeof(want),
		 "{\"id\":%u,\"growable\":true,\"executable\":false,\"committed\":12288,",
		 self->a.heap_id);
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	snprintf(want, sizeof(want),
		 "{\"id\":%u,\"growable\":false,\"executable\":true,\"committed\":4096,\"reserved\":65536,\"maximum\":65536,",
		 self->b.heap_id);
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
}

TEST_F(hs, table_per_process_and_per_heap)
{
	char args[64], want[64];

	HD_SKIPPED_IN_SETUP();

	snprintf(args, sizeof(args), "-b -p %d", getpid());
	ASSERT_EQ(0, run(args, self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "COMMITTED"));
	EXPECT_NE(NULL, strstr(self->out, "16384"));
	EXPECT_NE(NULL, strstr(self->out, "1 process, 2 heaps"));

	snprintf(args, sizeof(args), "--heaps --sort pid -p %d", getpid());
	ASSERT_EQ(0, run(args, self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, " G- "));
	EXPECT_NE(NULL, strstr(self->out, " FX "));
	snprintf(want, sizeof(want), "%d", getpid());
	EXPECT_NE(NULL, strstr(self->out, want));
}

TEST_F(hs, filter_excludes_other_pids)
{
	HD_SKIPPED_IN_SETUP();

	ASSERT_EQ(0, run("--json -p 1", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "\"processes\":[]"));
}

TEST_F(hs, watch_refreshes_and_stops)
{
	char args[64];
	char *p;
	int n = 0;

	HD_SKIPPED_IN_SETUP();

	snprintf(args, sizeof(args), "--watch=0.1 --count 3 -p %d", getpid());
	ASSERT_EQ(0, run(args, self->out, sizeof(self->out)));
	for (p = self->out; (p = strstr(p, "\033[H\033[2J")); p++)
		n++;
	EXPECT_EQ(3, n);
}

TEST_F(hs, bad_options_fail_with_usage)
{
	HD_SKIPPED_IN_SETUP();

	EXPECT_EQ(2, run("--sort nonsense", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "unknown sort key"));
	EXPECT_EQ(2, run("-p 12x", self->out, sizeof(self->out)));
	EXPECT_EQ(2, run("--watch=0", self->out, sizeof(self->out)));
	EXPECT_EQ(2, run("--count 2", self->out, sizeof(self->out)));
	EXPECT_EQ(0, run("--help", self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "Usage: heapstat"));
	EXPECT_EQ(1, run("-f /nonexistent", self->out, sizeof(self->out)));
}

TEST_F(hs, lazy_commit_shows_as_committed_not_resident)
{
	struct heapdev_info info;
	char args[64], want[256];
	char *p;

	HD_SKIPPED_IN_SETUP();
	ASSERT_EQ(0, hd_info(self->fd, &info));
	if (!(info.features & HEAPDEV_FEAT_LAZY_COMMIT))
		SKIP(return, "the module has no HEAPDEV_FEAT_LAZY_COMMIT");

	/* Heap a: 12 KiB committed at once, then 64 KiB more lazily. */
	ASSERT_EQ(0, hd_commit(self->fd, self->a.heap_id, 16384, 65536,
			       HEAPDEV_COMMIT_LAZY, NULL));
	p = hd_map(self->fd, &self->a, 0, 81920, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	p[16384] = 1;		/* one lazy page touched */
	snprintf(args, sizeof(args), "--json -p %d", getpid());
	ASSERT_EQ(0, run(args, self->out, sizeof(self->out)));
	snprintf(want, sizeof(want),
		 "{\"id\":%u,\"growable\":true,\"executable\":false,\"committed\":77824,",
		 self->a.heap_id);
	EXPECT_NE(NULL, strstr(self->out, want)) TH_LOG("%s", self->out);
	EXPECT_NE(NULL, strstr(self->out, "\"mappings\":1,\"resident\":16384}"))
		TH_LOG("%s", self->out);
	/* Per process: 76 KiB + 4 KiB committed, 16 KiB + 4 KiB resident. */
	EXPECT_NE(NULL, strstr(self->out, "\"resident\":20480,\"heap_list\""))
		TH_LOG("%s", self->out);
	snprintf(args, sizeof(args), "-b -p %d", getpid());
	ASSERT_EQ(0, run(args, self->out, sizeof(self->out)));
	EXPECT_NE(NULL, strstr(self->out, "RESIDENT"));
	EXPECT_NE(NULL, strstr(self->out, " 81920      20480 ")) TH_LOG("%s", self->out);
	munmap(p, 81920);
}

TEST_HARNESS_MAIN
