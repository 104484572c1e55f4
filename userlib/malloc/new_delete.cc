// SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
/*
 * libheapdev-malloc: C++ operator new and delete in every form (plain,
 * array, nothrow, aligned, sized) over the drop-in's heaps.
 *
 * new follows the standard: on failure it calls the new-handler until one
 * gives memory, and throws std::bad_alloc when there is none (the nothrow
 * forms return nullptr).  delete checks what it is told: a sized delete
 * whose size is not the block's (heapdev knows every block's exact size)
 * and an aligned delete of a pointer without that alignment are
 * new/delete mismatches, and end the process like a bad free.
 */
#include <cstddef>
#include <new>

#include "hdm.h"

namespace {

void *hdm_new_loop(std::size_t n, std::size_t align)
{
	for (;;) {
		void *p = hdm_new(n, align);

		if (p)
			return p;
		std::new_handler h = std::get_new_handler();

		if (!h)
			throw std::bad_alloc();
		h();
	}
}

void *hdm_new_nothrow(std::size_t n, std::size_t align) noexcept
{
	try {
		return hdm_new_loop(n, align);
	} catch (...) {
		return nullptr;
	}
}

} // namespace

#define HDM_AL(a) static_cast<std::size_t>(a)

HDM_EXPORT void *operator new(std::size_t n)
{
	return hdm_new_loop(n, 0);
}

HDM_EXPORT void *operator new[](std::size_t n)
{
	return hdm_new_loop(n, 0);
}

HDM_EXPORT void *operator new(std::size_t n, const std::nothrow_t &) noexcept
{
	return hdm_new_nothrow(n, 0);
}

HDM_EXPORT void *operator new[](std::size_t n, const std::nothrow_t &) noexcept
{
	return hdm_new_nothrow(n, 0);
}

HDM_EXPORT void *operator new(std::size_t n, std::align_val_t a)
{
	return hdm_new_loop(n, HDM_AL(a));
}

HDM_EXPORT void *operator new[](std::size_t n, std::align_val_t a)
{
	return hdm_new_loop(n, HDM_AL(a));
}

HDM_EXPORT void *operator new(std::size_t n, std::align_val_t a,
			      const std::nothrow_t &) noexcept
{
	return hdm_new_nothrow(n, HDM_AL(a));
}

HDM_EXPORT void *operator new[](std::size_t n, std::align_val_t a,
				const std::nothrow_t &) noexcept
{
	return hdm_new_nothrow(n, HDM_AL(a));
}

HDM_EXPORT void operator delete(void *p) noexcept
{
	hdm_delete(p, 0, 0, "operator delete");
}

HDM_EXPORT void operator delete[](void *p) noexcept
{
	hdm_delete(p, 0, 0, "operator delete[]");
}

HDM_EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept
{
	hdm_delete(p, 0, 0, "operator delete");
}

HDM_EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept
{
	hdm_delete(p, 0, 0, "operator delete[]");
}

HDM_EXPORT void operator delete(void *p, std::size_t n) noexcept
{
	hdm_delete(p, n, 0, "operator delete");
}

HDM_EXPORT void operator delete[](void *p, std::size_t n) noexcept
{
	hdm_delete(p, n, 0, "operator delete[]");
}

HDM_EXPORT void operator delete(void *p, std::align_val_t a) noexcept
{
	hdm_delete(p, 0, HDM_AL(a), "operator delete");
}

HDM_EXPORT void operator delete[](void *p, std::align_val_t a) noexcept
{
	hdm_delete(p, 0, HDM_AL(a), "operator delete[]");
}

HDM_EXPORT void operator delete(void *p, std::align_val_t a,
				const std::nothrow_t &) noexcept
{
	hdm_delete(p, 0, HDM_AL(a), "operator delete");
}

HDM_EXPORT void operator delete[](void *p, std::align_val_t a,
				  const std::nothrow_t &) noexcept
{
	hdm_delete(p, 0, HDM_AL(a), "operator delete[]");
}

HDM_EXPORT void operator delete(void *p, std::size_t n,
				std::align_val_t a) noexcept
{
	hdm_delete(p, n, HDM_AL(a), "operator delete");
}

HDM_EXPORT void operator delete[](void *p, std::size_t n,
				  std::align_val_t a) noexcept
{
	hdm_delete(p, n, HDM_AL(a), "operator delete[]");
}
