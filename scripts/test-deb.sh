#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# test-deb.sh: the Debian packages build and are sound.
#
# Copies the tracked files into build/deb/heapdev-VERSION, runs
# "dpkg-buildpackage -us -uc -b", checks that heapdev-dkms, libheapdev1,
# libheapdev-dev and heapdev-utils carry what they should, that lintian
# reports no error or warning, and that a program builds with pkg-config
# against the unpacked libheapdev-dev + libheapdev1 and runs.
# Prints "N passed, N failed".

. "$(dirname "$0")/common.sh"

need_pkgs debhelper dh-dkms lintian fakeroot build-essential pkg-config

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
nok() { fail=$((fail + 1)); echo "not ok - $*"; }
t() { local name=$1; shift; if "$@"; then ok "$name"; else nok "$name"; fi; }

cd "$HEAPDEV_TOP"
version=$(cat VERSION)
out=$HEAPDEV_BUILD/deb
src=$out/heapdev-$version
rm -rf "$out"
mkdir -p "$src"
git ls-files -z | xargs -0 cp -P --parents -t "$src"

t "debian/changelog is at version $version (VERSION)" \
	test "$(cd "$src" && dpkg-parsechangelog -S Version)" = "$version"

if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b"
else
	nok "dpkg-buildpackage -us -uc -b"
	tail -n 30 "$out/build.log"
fi

has() {
	local deb=$1 path=$2
	dpkg-deb -c "$out/$deb" 2>/dev/null | awk '{print $6}' | grep -q "^\.$path\$"
}
arch=$(dpkg --print-architecture)
multi=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
t "heapdev-dkms: module source" has "heapdev-dkms_${version}_all.deb" "/usr/src/heapdev-$version/module/heap.c"
t "heapdev-dkms: dkms.conf" has "heapdev-dkms_${version}_all.deb" "/usr/src/heapdev-$version/dkms.conf"
t "heapdev-dkms: udev rule" has "heapdev-dkms_${version}_all.deb" "/lib/udev/rules.d/60-heapdev.rules"
t "heapdev-dkms: heapdev(4)" has "heapdev-dkms_${version}_all.deb" "/usr/share/man/man4/heapdev.4.gz"
t "heapdev-dkms: postinst runs dkms" sh -c \
	"dpkg-deb -I '$out/heapdev-dkms_${version}_all.deb' postinst | grep -q dkms"
t "libheapdev1: the shared library" has "libheapdev1_${version}_$arch.deb" "/usr/lib/$multi/libheapdev.so.1"
t "libheapdev-dev: headers" has "libheapdev-dev_${version}_$arch.deb" "/usr/include/heapdev/win32.h"
t "libheapdev-dev: uapi header" has "libheapdev-dev_${version}_$arch.deb" "/usr/include/heapdev/uapi.h"
t "libheapdev-dev: heapdev.pc" has "libheapdev-dev_${version}_$arch.deb" "/usr/lib/$multi/pkgconfig/heapdev.pc"
t "libheapdev-dev: static library" has "libheapdev-dev_${version}_$arch.deb" "/usr/lib/$multi/libheapdev.a"
t "heapdev-utils: heapstat" has "heapdev-utils_${version}_$arch.deb" "/usr/bin/heapstat"

# Exit status 0 means it ran and found no error or warning (info tags,
# printed below, are allowed).
if lintian --fail-on error,warning --display-info \
	"$out/heapdev_${version}_$arch.changes" >"$out/lintian.log" 2>&1; then
	ok "lintian: no errors or warnings"
else
	nok "lintian: no errors or warnings"
fi
grep -v 'root privileges' "$out/lintian.log" | sed 's/^/    lintian: /'

# Use the packages: unpack them and build against them.
root=$out/root
for p in libheapdev1 libheapdev-dev; do
	dpkg-deb -x "$out/${p}_${version}_$arch.deb" "$root"
done
cat >"$out/use.c" <<'EOF'
#include <heapdev/win32.h>

int main(void)
{
	HANDLE h = HeapCreate(HEAP_NO_SERIALIZE, 0, 0);
	void *p = h ? HeapAlloc(h, 0, 32) : NULL;

	return p && HeapSize(h, 0, p) == 32 && HeapDestroy(h) ? 0 : 1;
}
EOF
export PKG_CONFIG_PATH=$root/usr/lib/$multi/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
# The .pc names /usr paths; the sysroot variable maps them into $root.
# shellcheck disable=SC2046
t "a program builds against the packages with pkg-config" \
	cc -o "$out/use" "$out/use.c" $(pkg-config --cflags --libs heapdev)
t "and runs with the packaged libheapdev.so.1" \
	env HEAPDEV_BACKEND=memfd LD_LIBRARY_PATH="$root/usr/lib/$multi" "$out/use"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
