// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * C++ operator new and delete of libheapdev-malloc: every form, the
 * new-handler and std::bad_alloc, thread_local destructors, the standard
 * containers, and the new/delete mismatches the drop-in detects (each in
 * a fork() child, which must abort with a message).
 */
#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <heapdev.h>

extern "C" {
#include "t.h"
}
#include "hdm_test.h"

static struct heapdev_heap *ph;

static bool ours(const void *p)
{
	return p && heapdev_heap_of(p) == ph;
}

static bool aligned_to(const void *p, std::size_t a)
{
	return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
}

struct alignas(4096) Page {
	char b[4096];
};

struct Dtor {
	int v = 1;
	~Dtor() { v = 0; }
};

static void test_forms()
{
	void *p;

	p = ::operator new(100);
	T_OK(ours(p), "operator new(size_t)");
	::operator delete(p);
	p = ::operator new[](100);
	T_OK(ours(p), "operator new[](size_t)");
	::operator delete[](p);
	p = ::operator new(100, std::nothrow);
	T_OK(ours(p), "operator new(size_t, nothrow)");
	::operator delete(p, std::nothrow);
	p = ::operator new[](100, std::nothrow);
	T_OK(ours(p), "operator new[](size_t, nothrow)");
	::operator delete[](p, std::nothrow);
	p = ::operator new(100);
	::operator delete(p, 100);
	T_OK(1, "operator delete(void *, size_t) with the right size");
	p = ::operator new[](300);
	::operator delete[](p, 300);
	T_OK(1, "operator delete[](void *, size_t) with the right size");

	for (std::size_t a = 32; a <= (std::size_t(1) << 22); a <<= 1) {
		std::align_val_t al = static_cast<std::align_val_t>(a);

		p = ::operator new(a + 3, al);
		T_OK(ours(p) && aligned_to(p, a), "operator new(size_t, align_val_t(%zu))", a);
		::operator delete(p, a + 3, al);
	}
	std::align_val_t al = static_cast<std::align_val_t>(256);

	p = ::operator new[](1000, al);
	T_OK(ours(p) && aligned_to(p, 256), "operator new[](size_t, align_val_t)");
	::operator delete[](p, al);
	p = ::operator new(10, al, std::nothrow);
	T_OK(ours(p) && aligned_to(p, 256), "operator new(size_t, align_val_t, nothrow)");
	::operator delete(p, al, std::nothrow);
	p = ::operator new[](10, al, std::nothrow);
	T_OK(ours(p) && aligned_to(p, 256), "operator new[](size_t, align_val_t, nothrow)");
	::operator delete[](p, al, std::nothrow);
	p = ::operator new(10, al);
	::operator delete(p, al);
	p = ::operator new[](10, al);
	::operator delete[](p, 10, al);
	T_OK(1, "aligned deletes: plain, sized, array");

	Page *pg = new Page;
	T_OK(ours(pg) && aligned_to(pg, 4096), "new of an alignas(4096) type");
	delete pg;
	Page *pgs = new Page[3];
	T_OK(ours(pgs) && aligned_to(pgs, 4096), "new[] of an alignas(4096) type");
	delete[] pgs;
	Dtor *d = new Dtor[5];
	T_OK(d[4].v == 1, "new[] of a type with a destructor (array cookie)");
	delete[] d;
}

static int handler_calls;

static void handler()
{
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);
}

static void test_failure()
{
	bool thrown = false;
	void *volatile p;

	try {
		p = ::operator new(SIZE_MAX / 2);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	T_OK(thrown, "operator new(SIZE_MAX / 2) throws std::bad_alloc");
	thrown = false;
	try {
		p = ::operator new[](SIZE_MAX / 2, static_cast<std::align_val_t>(64));
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	T_OK(thrown, "aligned operator new[] too big throws std::bad_alloc");
	p = ::operator new(SIZE_MAX / 2, std::nothrow);
	T_OK(!p, "operator new(SIZE_MAX / 2, nothrow) returns nullptr");
	p = ::operator new(SIZE_MAX / 2, static_cast<std::align_val_t>(128), std::nothrow);
	T_OK(!p, "aligned nothrow new too big returns nullptr");
	std::set_new_handler(handler);
	thrown = false;
	try {
		p = ::operator new(SIZE_MAX / 2);
	} catch (const std::bad_alloc &) {
		thrown = true;
	}
	T_OK(thrown && handler_calls == 3,
	     "the new-handler is called until it gives up (%d calls), then bad_alloc",
	     handler_calls);
	handler_calls = 0;
	std::set_new_handler(handler);
	p = ::operator new(SIZE_MAX / 2, std::nothrow);
	T_OK(!p && handler_calls == 3, "nothrow new calls the new-handler too");
	(void)p;
}

static std::atomic<int> tl_done;

struct TL {
	std::vector<std::string> v;
	TL() { v.assign(100, std::string(100, 'x')); }
	~TL()
	{
		std::string s(1000, 'y');	/* allocates while the thread exits */
		if (v.size() == 100 && s.size() == 1000)
			tl_done++;
	}
};

static thread_local TL tl;

static void test_containers_threads()
{
	std::map<int, std::string> m;
	std::vector<std::unique_ptr<int[]>> v;
	bool ok = true;

	for (int i = 0; i < 100000; i++) {
		m[i] = std::to_string(i) + std::string(i % 50, 'z');
		if (i % 3 == 0)
			v.emplace_back(new int[i % 100 + 1]);
	}
	for (int i = 0; i < 100000; i += 2)
		m.erase(i);
	for (auto &kv : m)
		ok &= kv.second.compare(0, std::to_string(kv.first).size(),
					std::to_string(kv.first)) == 0;
	T_OK(ok && m.size() == 50000, "std::map and std::string churn");
	v.clear();

	std::vector<std::thread> th;
	for (int i = 0; i < 4; i++)
		th.emplace_back([] {
			std::vector<std::vector<char>> w;
			for (int j = 0; j < 20000; j++)
				w.emplace_back(j % 300, 'a');
			(void)tl.v.size();
		});
	for (auto &t : th)
		t.join();
	T_EQ(tl_done.load(), 4, "thread_local destructors allocate and free at thread exit");
}

/* ---- mismatches ---- */

static int scalar_delete_of_array(void *)
{
	Dtor *d = new Dtor[4];

	::operator delete(static_cast<void *>(d));	/* the block starts before d */
	return 0;
}

static int sized_delete_wrong(void *)
{
	void *p = ::operator new(100);

	::operator delete(p, 64);
	return 0;
}

static int sized_array_delete_wrong(void *)
{
	void *p = ::operator new[](48);

	::operator delete[](p, 4800);
	return 0;
}

static int aligned_delete_wrong(void *)
{
	char *p = static_cast<char *>(::operator new(16));

	if (aligned_to(p, 4096))	/* make it certainly misaligned */
		p = static_cast<char *>(::operator new(16));
	::operator delete(p, static_cast<std::align_val_t>(4096));
	return 0;
}

static int double_delete(void *)
{
	int *volatile p = new int(5);	/* volatile: no elision of the pair */

	delete p;
	delete p;
	return 0;
}

static int delete_stack(void *)
{
	int x;
	int *volatile p = &x;

	delete p;
	return 0;
}

int main()
{
	static const struct {
		const char *name;
		int (*fn)(void *);
		const char *msg;
	} bad[] = {
		{ "scalar delete of a new[] with an array cookie", scalar_delete_of_array,
		  "operator delete(): double free or corruption" },
		{ "sized delete with the wrong size", sized_delete_wrong,
		  "is a block of 100 bytes, this delete says 64: new/delete mismatch" },
		{ "sized delete[] with the wrong size", sized_array_delete_wrong,
		  "is a block of 48 bytes, this delete says 4800: new/delete mismatch" },
		{ "aligned delete of an unaligned block", aligned_delete_wrong,
		  "is not aligned to 4096 as this delete says: new/delete mismatch" },
		{ "double delete", double_delete, "operator delete(): double free or corruption" },
		{ "delete of a stack address", delete_stack, "operator delete(): invalid pointer" },
	};
	struct hdm_child c;

	ph = heapdev_process_heap();
	test_forms();
	test_failure();
	test_containers_threads();
	for (const auto &b : bad) {
		hdm_in_child(b.fn, nullptr, &c);
		T_OK(hdm_aborted(&c) && std::strstr(c.err, b.msg),
		     "%s: SIGABRT and \"%s\"", b.name, b.msg);
		if (!hdm_aborted(&c) || !std::strstr(c.err, b.msg))
			t_diag("status %#x, stderr: %s", c.status, c.err);
	}
	return t_done();
}
