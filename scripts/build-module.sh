#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# build-module.sh SERIES [make args...]
#
# Build heapdev.ko against a cached Debian kernel (6.1, 6.12; see
# kernels.sh), the prepared 7.2 compile-check tree (7.2, ksrc-7.2.sh) or
# the debug kernel (debug, debug-kernel.sh), in build/kmod/<kernel>/ so
# that builds for different kernels never share objects.  Warnings are
# errors.  Prints the path of heapdev.ko.
#
# Debian 11's 5.10 headers name gcc-10 as their compiler, which bookworm
# does not have; gcc (12) builds the module for them instead.

. "$(dirname "$0")/common.sh"

[ $# -ge 1 ] || die "usage: build-module.sh SERIES [make args...]"
series=$1
shift

need_pkgs gcc make dwarves

if [ "$series" = 7.2 ]; then
	kbuild=$("$HEAPDEV_TOP/scripts/ksrc-7.2.sh")
	kver=7.2-defconfig
elif [ "$series" = debug ]; then
	read -r kver kbuild _ <<<"$("$HEAPDEV_TOP/scripts/debug-kernel.sh")"
	kver=$kver-debug
else
	read -r _ kver kbuild _ <<<"$("$HEAPDEV_TOP/scripts/kernels.sh" "$series")"
fi

out=$HEAPDEV_BUILD/kmod/$kver
mkdir -p "$out"
# Mirror the sources (only what Kbuild needs) into the per-kernel folder.
for f in Kbuild VERSION module uapi; do
	rm -rf "${out:?}/$f.new"
	cp -a "$HEAPDEV_TOP/$f" "$out/$f.new"
	if ! diff -rq "$out/$f.new" "$out/$f" >/dev/null 2>&1; then
		rm -rf "${out:?}/$f"
		mv "$out/$f.new" "$out/$f"
	else
		rm -rf "${out:?}/$f.new"
	fi
done

cc=()
kcc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$kbuild/.config" 2>/dev/null)
if [ -n "$kcc" ] && ! command -v "$kcc" >/dev/null; then
	cc=(CC=gcc)
fi

log=$out/build.log
if ! make -C "$kbuild" M="$out" HEAPDEV_WERROR=y "${cc[@]}" "$@" modules >"$log" 2>&1; then
	cat "$log" >&2
	die "module build against $kver failed"
fi
# Any compiler or modpost diagnostic counts as a failure.
if grep -E 'warning:|WARNING:|error:' "$log" >&2; then
	die "module build against $kver printed warnings"
fi
echo "$out/heapdev.ko"
