#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# kselftest-tree.sh
#
# Show that selftests/ works as a kernel selftest directory: copy it (with
# uapi/heapdev.h next to the sources) into Debian's linux-source-6.1 tree
# as tools/testing/selftests/heapdev, then build and install it with the
# kernel's own kselftest makefiles:
#   make -C tools/testing/selftests TARGETS=heapdev install INSTALL_PATH=...
# Prints the install path; its run_kselftest.sh runs the tests on a target
# (check.sh runs it inside the 6.1 VM).

. "$(dirname "$0")/common.sh"

need_pkgs make gcc rsync
ksrc=$("$HEAPDEV_TOP/scripts/ksrc.sh")
tree=$HEAPDEV_BUILD/kselftest-tree
out=$HEAPDEV_BUILD/kselftest-install
rm -rf "$tree" "$out"
mkdir -p "$tree"
cp -a "$ksrc/linux-source-6.1/." "$tree/"
dst=$tree/tools/testing/selftests/heapdev
mkdir -p "$dst"
cp "$HEAPDEV_TOP"/selftests/{Makefile,settings,*.c,*.h} "$dst/"
cp "$HEAPDEV_TOP/uapi/heapdev.h" "$dst/"
make -s -C "$tree/tools/testing/selftests" TARGETS=heapdev >&2
make -s -C "$tree/tools/testing/selftests" TARGETS=heapdev install \
	INSTALL_PATH="$out" >&2
[ -x "$out/run_kselftest.sh" ] && grep -q '^heapdev:' "$out/kselftest-list.txt" ||
	die "kselftest install of heapdev is incomplete"
echo "$out"
