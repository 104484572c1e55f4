#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# run.sh [SERIES]: what "make run" does.  Builds the module for Debian's
# SERIES kernel (default 6.12), the demo programs and, when present, the
# library's examples; boots the kernel under QEMU with the module loaded
# and runs scripts/vm-demo.job, which shows the admin view before, during
# and after each program.

. "$(dirname "$0")/common.sh"

series=${1:-6.12}
need_pkgs gcc make qemu-system-x86 busybox-static cpio dwarves

make -s -C "$HEAPDEV_TOP" tools BUILD="$HEAPDEV_BUILD" >&2
files=(-f "$HEAPDEV_BUILD/tools/heapdev-demo" -f "$HEAPDEV_BUILD/tools/heapstat")
if [ -f "$HEAPDEV_TOP/examples/Makefile" ]; then
	make -s -C "$HEAPDEV_TOP/examples" BUILD="$HEAPDEV_BUILD/examples" \
		LIBBUILD="$HEAPDEV_BUILD/userlib" >&2
	order=$(mktemp -d)
	trap 'rm -rf "$order"' EXIT
	for p in "$HEAPDEV_BUILD"/examples/*; do
		[ -x "$p" ] || continue
		files+=(-f "$p")
		basename "$p" >>"$order/demo-order"
	done
	files+=(-f "$order/demo-order")
fi

"$HEAPDEV_TOP/scripts/vm-run.sh" -q -k "$series" "${files[@]}" \
	"$HEAPDEV_TOP/scripts/vm-demo.job"
