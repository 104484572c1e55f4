#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# check.sh: every test of heapdev, as run by "make check".
#
#   host:  checkpatch --strict and sparse on the module, warning-free
#          module builds against 5.10, 6.1, 6.12 and 7.2, the library's host
#          tests (memfd backend, ASan/UBSan), make install/uninstall and
#          DKMS (test-install.sh), the Debian packages (test-deb.sh), the
#          selftests built inside a kernel tree (kselftest-tree.sh)
#   VM:    for each kernel in $KERNELS (default "5.10 6.1 6.12"), boot it under
#          QEMU, load the module and run scripts/vm-check.job
#
# KERNELS=debug runs the VM part on the KASAN/lockdep/kmemleak/fault
# injection kernel of debug-kernel.sh instead (what "make check-debug"
# does, with CHECK_HOST=0 to skip the host checks).
#
# Prints a line per suite, "N passed, N failed" per kernel and overall,
# and exits non-zero when anything failed.

. "$(dirname "$0")/common.sh"

KERNELS=${KERNELS:-5.10 6.1 6.12}
results=$HEAPDEV_BUILD/check
rm -rf "$results"
mkdir -p "$results"

total_pass=0 total_fail=0 total_skip=0

# record GROUP NAME PASS FAIL [SKIP]
record() {
	local group=$1 name=$2 p=$3 f=$4 s=${5:-0}
	printf '%-8s %-40s %5d passed %4d failed %4d skipped\n' \
		"$group" "$name" "$p" "$f" "$s"
	echo "$group $name $p $f $s" >>"$results/results"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	total_skip=$((total_skip + s))
}

# step NAME COMMAND...: one check that passes when COMMAND succeeds.
step() {
	local name=$1 log=$results/$1.log
	shift
	if "$@" >"$log" 2>&1; then
		record host "$name" 1 0
	else
		record host "$name" 0 1
		sed 's/^/    /' "$log" | tail -n 40
	fi
}

# counted NAME LOG COMMAND...: a suite that ends with "N passed, N failed".
counted() {
	local name=$1 log=$2 ok=1 line p f
	shift 2
	"$@" >"$log" 2>&1 || ok=0
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" |
		awk '{p += $1; f += $3} END {print p + 0, f + 0}')
	read -r p f <<<"$line"
	[ "$ok" = 1 ] || [ "$f" != 0 ] || f=1
	record host "$name" "$p" "$f"
	[ "$f" = 0 ] || grep -E '^not ok|FAILED|Error [0-9]|Assertion|Sanitizer' "$log" | tail -n 40 | sed 's/^/    /'
}

checkpatch() {
	local ksrc out
	ksrc=$("$HEAPDEV_TOP/scripts/ksrc.sh")
	cd "$HEAPDEV_TOP"
	out=$(perl "$ksrc/linux-source-6.1/scripts/checkpatch.pl" --no-tree \
		--strict --terse --show-types -f module/*.c module/*.h \
		uapi/*.h Kbuild || true)
	printf '%s\n' "$out"
	! printf '%s\n' "$out" | grep -q ': \(ERROR\|WARNING\|CHECK\):'
}

need_pkgs gcc make perl qemu-system-x86 busybox-static cpio sparse \
	dwarves bc flex bison libelf-dev libssl-dev xz-utils kmod valgrind

CHECK_HOST=${CHECK_HOST:-1}
echo "== host checks"
if [ "$CHECK_HOST" = 1 ]; then
	step checkpatch checkpatch
	step sparse-6.12 "$HEAPDEV_TOP/scripts/build-module.sh" 6.12 C=2 CHECK=sparse
	step build-5.10 "$HEAPDEV_TOP/scripts/build-module.sh" 5.10
	step build-6.1 "$HEAPDEV_TOP/scripts/build-module.sh" 6.1
	step build-6.12 "$HEAPDEV_TOP/scripts/build-module.sh" 6.12
	step build-7.2 "$HEAPDEV_TOP/scripts/build-module.sh" 7.2
fi
ksft=$("$HEAPDEV_TOP/scripts/ksrc.sh")/ksft
step selftests-build make -C "$HEAPDEV_TOP/selftests" KSFT_DIR="$ksft" \
	OUTPUT="$HEAPDEV_BUILD/selftests"

step tools-build make -C "$HEAPDEV_TOP" tools BUILD="$HEAPDEV_BUILD"

vmfiles=(-f "$HEAPDEV_BUILD/selftests" -f "$HEAPDEV_BUILD/tools/heapstat")
if [ -f "$HEAPDEV_TOP/userlib/Makefile" ]; then
	if [ "$CHECK_HOST" = 1 ]; then
		counted userlib-check "$results/userlib-check.log" \
			make -C "$HEAPDEV_TOP/userlib" check
	fi
	step userlib-vmtest make -C "$HEAPDEV_TOP/userlib" vmtest
	vm=$HEAPDEV_BUILD/userlib/vm/heapdev-api-test
	[ -x "$vm" ] && vmfiles+=(-f "$vm")
	# The drop-in malloc's VM run (userlib/malloc/test/vm-run.sh).
	step userlib-malloc-vm make -C "$HEAPDEV_TOP/userlib" malloc-vm
	[ -x "$HEAPDEV_BUILD/userlib/vm/malloc/run.sh" ] &&
		vmfiles+=(-f "malloc=$HEAPDEV_BUILD/userlib/vm/malloc")
fi
if [ "$CHECK_HOST" = 1 ]; then
	counted install "$results/install.log" "$HEAPDEV_TOP/scripts/test-install.sh"
	counted debian-packages "$results/deb.log" "$HEAPDEV_TOP/scripts/test-deb.sh"
	step kselftest-tree-build "$HEAPDEV_TOP/scripts/kselftest-tree.sh"
fi

for k in $KERNELS; do
	echo "== VM: Debian $k"
	log=$results/vm-$k.log
	kfiles=()
	# The kernel-tree build of the selftests runs on the kernel it came from.
	if [ "$k" = 6.1 ] && [ -x "$HEAPDEV_BUILD/kselftest-install/run_kselftest.sh" ]; then
		kfiles=(-f "kselftest-tree=$HEAPDEV_BUILD/kselftest-install")
	fi
	vmopts=() mode=normal
	if [ "$k" = debug ]; then
		# KASAN and lockdep under emulation: slower, hungrier.
		vmopts=(-m 2048 -t 5400)
		mode=debug
	fi
	set +e
	"$HEAPDEV_TOP/scripts/vm-run.sh" -k "$k" -l "$log" "${vmopts[@]}" \
		"${vmfiles[@]}" "${kfiles[@]}" \
		"$HEAPDEV_TOP/scripts/vm-check.job" "$mode" >/dev/null 2>&1
	rc=$?
	set -e
	kp=0 kf=0
	while read -r name p f s; do
		record "vm-$k" "$name" "$p" "$f" "$s"
		kp=$((kp + p))
		kf=$((kf + f))
	done < <(sed -n 's/^HEAPDEV-RESULT \([^ ]*\) pass=\([0-9]*\) fail=\([0-9]*\) skip=\([0-9]*\)$/\1 \2 \3 \4/p' "$log")
	if [ $rc = 125 ] || [ $((kp + kf)) = 0 ]; then
		record "vm-$k" vm-boot 0 1
		kf=$((kf + 1))
	fi
	if [ "$kf" != 0 ]; then
		echo "  failures on $k (full log: $log):"
		grep -E '^not ok|^# .*(Expected|FAIL)|HEAPDEV-RESULT .*fail=[1-9]|BUG:|WARNING:|Oops' \
			"$log" | sed 's/^/    /' | head -n 60
	fi
	echo "kernel $k: $kp passed, $kf failed"
done

echo "== total"
echo "($total_skip skipped: tests that need root when run as nobody)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
