#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# ksrc.sh
#
# Take from Debian's linux-source-6.1 package, at build time, the few files
# heapdev uses but must never commit: the kselftest harness and framework
# (tools/testing/selftests: Makefile, lib.mk, kselftest/, run_kselftest.sh,
# for building heapdev's selftests inside a kernel tree) and checkpatch.pl
# with its data files.  They land in $HEAPDEV_CACHE/ksrc-6.1; the path is
# printed.  The harness directory is laid out so that
# "../kselftest_harness.h" resolves from $DIR/ksft/heapdev.

. "$(dirname "$0")/common.sh"

dir=$HEAPDEV_CACHE/ksrc-6.1
if [ ! -f "$dir/done-2" ]; then
	say "extracting kselftest harness and checkpatch from linux-source-6.1"
	rm -rf "$dir"
	apt_download "$dir/deb" linux-source-6.1
	dpkg -x "$dir"/deb/linux-source-6.1_*.deb "$dir/pkg"
	tarball=$(ls "$dir"/pkg/usr/src/linux-source-6.1.tar.*)
	tar -xaf "$tarball" -C "$dir" \
		linux-source-6.1/tools/testing/selftests/kselftest.h \
		linux-source-6.1/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.1/tools/testing/selftests/lib.mk \
		linux-source-6.1/tools/testing/selftests/Makefile \
		linux-source-6.1/tools/testing/selftests/kselftest \
		linux-source-6.1/tools/testing/selftests/run_kselftest.sh \
		linux-source-6.1/tools/scripts \
		linux-source-6.1/scripts/subarch.include \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch
	mkdir -p "$dir/ksft/heapdev"
	cp "$dir"/linux-source-6.1/tools/testing/selftests/kselftest*.h "$dir/ksft/"
	rm -rf "$dir/deb" "$dir/pkg"
	touch "$dir/done-2"
fi
echo "$dir"
