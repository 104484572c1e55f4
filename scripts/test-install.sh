#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# test-install.sh: heapdev installs like real software.
#
#   - every man page passes "mandoc -T lint" and renders with "man -l"
#   - "make install DESTDIR=..." stages the library, headers, heapdev.pc,
#     heapstat, man pages, udev rule and the module (built for Debian's
#     cached 6.12 kernel); a program and the examples build against the
#     staging area with pkg-config, link with -lheapdev and run
#   - "make uninstall DESTDIR=..." leaves nothing behind
#   - "make install-dkms DESTDIR=..." stages a DKMS source tree, and
#     "dkms build" (with private DKMS trees, nothing touches /var/lib/dkms)
#     builds it for the cached 6.1 and 6.12 kernels
#
# Prints "N passed, N failed".

. "$(dirname "$0")/common.sh"

need_pkgs make gcc mandoc man-db pkg-config dkms

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
nok() { fail=$((fail + 1)); echo "not ok - $*"; }
t() { local name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/heapdev-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$HEAPDEV_TOP"
version=$(cat VERSION)

# Man pages.
for m in man/*.[1-8]; do
	[ -L "$m" ] && continue
	t "mandoc lint $m" sh -c "mandoc -T lint -W warning '$m' && [ -z \"\$(mandoc -T lint -W warning '$m')\" ]"
	t "man -l $m renders" sh -c "MANWIDTH=80 man -l '$m' 2>&1 >/dev/null | grep -q . && exit 1 || exit 0"
done

# Staged install.
read -r _ kver kbuild _ <<<"$("$HEAPDEV_TOP/scripts/kernels.sh" 6.12)"
stage=$tmp/stage
if make -s install DESTDIR="$stage" KDIR="$kbuild" KVER="$kver" \
	>"$tmp/install.log" 2>&1; then
	ok "make install DESTDIR"
else
	nok "make install DESTDIR"
	tail -n 30 "$tmp/install.log"
fi
make -s -C "$kbuild" M="$HEAPDEV_TOP" clean >/dev/null 2>&1 || true
for f in usr/local/include/heapdev.h usr/local/include/heapdev/win32.h \
	usr/local/include/heapdev/uapi.h usr/local/lib/libheapdev.a \
	usr/local/lib/libheapdev.so usr/local/lib/pkgconfig/heapdev.pc \
	usr/local/bin/heapstat usr/local/share/man/man4/heapdev.4 \
	usr/local/share/man/man1/heapstat.1 etc/udev/rules.d/60-heapdev.rules; do
	t "installed /$f" test -e "$stage/$f"
done
t "installed heapdev.ko for $kver" sh -c "ls '$stage/lib/modules/$kver/updates/'heapdev.ko* >/dev/null"

export PKG_CONFIG_PATH=$stage/usr/local/lib/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$stage
t "pkg-config knows heapdev $version" test "$(pkg-config --modversion heapdev)" = "$version"
cat >"$tmp/hello.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <heapdev/win32.h>

int main(void)
{
	HANDLE h = HeapCreate(0, 0, 0);
	char *p = h ? HeapAlloc(h, HEAP_ZERO_MEMORY, 100) : NULL;

	if (!p)
		return 1;
	strcpy(p, "hello");
	printf("%s %zu\n", p, (size_t)HeapSize(h, 0, p));
	return HeapDestroy(h) ? 0 : 2;
}
EOF
libdir=$stage/usr/local/lib
# shellcheck disable=SC2046
t "a Win32 program builds with pkg-config" \
	cc -Wall -Werror -o "$tmp/hello" "$tmp/hello.c" $(pkg-config --cflags --libs heapdev)
t "it runs against the staged libheapdev.so" sh -c \
	"HEAPDEV_BACKEND=memfd LD_LIBRARY_PATH='$libdir' '$tmp/hello' | grep -qx 'hello 100'"
# shellcheck disable=SC2046
t "it links statically too" \
	cc -static -o "$tmp/hello-static" "$tmp/hello.c" $(pkg-config --static --cflags --libs heapdev)
for ex in examples/*.c; do
	[ -f "$ex" ] || continue
	# shellcheck disable=SC2046
	t "example $(basename "$ex") builds with pkg-config" \
		cc -Wall -Werror -o "$tmp/$(basename "$ex" .c)" "$ex" \
		$(pkg-config --cflags --libs heapdev)
done

t "make uninstall DESTDIR" make -s uninstall DESTDIR="$stage" KVER="$kver" \
	>/dev/null 2>&1
left=$(find "$stage" -type f -o -type l)
t "nothing left after uninstall" test -z "$left"
[ -z "$left" ] || echo "$left"

# DKMS, with private trees.
dk=$tmp/dkms
t "make install-dkms DESTDIR" make -s install-dkms DESTDIR="$dk/stage" \
	DKMSSRC=/src/heapdev-"$version"
t "dkms.conf names version $version" \
	grep -qx "PACKAGE_VERSION=\"$version\"" "$dk/stage/src/heapdev-$version/dkms.conf"
mkdir -p "$dk/tree"
t "dkms add" dkms add --dkmstree "$dk/tree" --sourcetree "$dk/stage/src" \
	-m heapdev -v "$version" >"$dk/add.log" 2>&1
for series in 6.1 6.12; do
	read -r _ kver kbuild _ <<<"$("$HEAPDEV_TOP/scripts/kernels.sh" "$series")"
	t "dkms build for $kver" sh -c "dkms build --dkmstree '$dk/tree' \
		--sourcetree '$dk/stage/src' -m heapdev -v '$version' -k '$kver' \
		--kernelsourcedir '$kbuild' >'$dk/build-$series.log' 2>&1 &&
		ls '$dk/tree/heapdev/$version/$kver/'*/module/heapdev.ko* >/dev/null" ||
		tail -n 20 "$dk/build-$series.log"
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
