#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later OR MIT
#
# vm-payload.sh DIR: gather the drop-in's VM test (make malloc-vm) in DIR:
# the test programs, a few Debian programs (sort, perl, sqlite3) and every
# shared library they need, the dynamic loader included (the VM's
# initramfs has no shared libc), and vm-run.sh, which runs them there
# through the loader on the device backend.  $BUILD is the library's
# build directory.
set -e
out=$1
here=$(dirname "$0")
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
progs="/usr/bin/sort /usr/bin/perl /usr/bin/sqlite3"
tests="malloc_test malloc_thread_test malloc_fork_test new_test"
for p in $progs; do
	cp "$p" "$out/bin/"
done
for t in $tests malloc_static_test; do
	cp "$BUILD/malloc/test/$t" "$out/bin/"
done
cp -L "$BUILD/libheapdev.so.1" "$BUILD/libheapdev-malloc.so.1" "$out/lib/"
for f in $progs $(for t in $tests; do echo "$BUILD/malloc/test/$t"; done) \
	"$BUILD/libheapdev-malloc.so.1"; do
	ldd "$f" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }'
done | sort -u | while read -r lib; do
	case $lib in
	*/libheapdev.so.1|*/libheapdev-malloc.so.1) ;;
	*) cp -L "$lib" "$out/lib/" ;;
	esac
done
cp "$here/vm-run.sh" "$out/run.sh"
chmod 755 "$out/run.sh"
echo "malloc-vm: $(ls "$out/bin" | wc -l) programs, $(ls "$out/lib" | wc -l) libraries in $out"
