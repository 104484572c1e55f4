#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# vm-run.sh [options] [--] JOB [ARGS...]
#
# Boot a Debian kernel under QEMU (software emulation, 2 CPUs) with a small
# busybox initramfs, load heapdev.ko built for that kernel, and run JOB
# inside: a shell script (a path on the host) or, with -c, a command line.
# Files given with -f are copied to /opt/heapdev, which is on PATH.
# The console goes to stdout and to the log file; the exit status is the
# job's, or 125 when the VM died before the job finished.
#
#   -k SERIES   kernel series: 5.10, 6.1 (default), 6.12, or debug (the 7.2
#               debug kernel of debug-kernel.sh)
#   -f FILE     copy FILE into /opt/heapdev in the VM (repeatable; for a
#               directory, its contents); -f NAME=FILE copies it to
#               /opt/heapdev/NAME instead
#   -p PARAMS   module parameters for insmod
#   -n          do not load the module
#   -c          JOB is a command line, not a script
#   -t SECONDS  give up after this long (default 900)
#   -m MIB      guest memory (default 1536)
#   -l LOG      console log (default build/vm/<kernel>/console.log, the
#               latest run's; concurrent runs each write their own temporary
#               log and the last to finish leaves it there)
#   -q          print only the job's output, not the kernel's boot noise
#
# Example: scripts/vm-run.sh -k 6.12 -f build/selftests -c -- \
#              'heapdev_mmap_test'

. "$(dirname "$0")/common.sh"

series=6.1 timeout=900 mem=1536 params= noload= cmdline= log= quiet=
files=()
while getopts "k:f:p:nct:m:l:q" opt; do
	case $opt in
	k) series=$OPTARG ;;
	f) files+=("$OPTARG") ;;
	p) params=$OPTARG ;;
	n) noload=1 ;;
	c) cmdline=1 ;;
	t) timeout=$OPTARG ;;
	m) mem=$OPTARG ;;
	l) log=$OPTARG ;;
	q) quiet=1 ;;
	*) sed -n '3,25p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || die "usage: vm-run.sh [options] JOB [ARGS...] (see the header)"

need_pkgs qemu-system-x86 busybox-static cpio

if [ "$series" = debug ]; then
	read -r kver _ vmlinuz <<<"$("$HEAPDEV_TOP/scripts/debug-kernel.sh")"
	kver=$kver-debug
else
	read -r _ kver _ vmlinuz <<<"$("$HEAPDEV_TOP/scripts/kernels.sh" "$series")"
fi
ko=
[ -n "$noload" ] || ko=$("$HEAPDEV_TOP/scripts/build-module.sh" "$series")

vmdir=$HEAPDEV_BUILD/vm/$kver
mkdir -p "$vmdir"
final_log=${log:-$vmdir/console.log}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/heapdev-vm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
log=$tmp/console.log
mkdir -p "$root"/{bin,lib,etc,opt/heapdev,proc,sys,dev,tmp}
chmod 755 "$root"

cp /bin/busybox "$root/bin/busybox"
cp "$HEAPDEV_TOP/scripts/vm-init.sh" "$root/init"
chmod 755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' \
	>"$root/etc/passwd"
printf 'root:x:0:\nheapdev:x:990:\nnogroup:x:65534:\n' >"$root/etc/group"
if [ -n "$ko" ]; then
	cp "$ko" "$root/lib/heapdev.ko"
	printf '%s\n' "$params" >"$root/lib/heapdev.params"
fi
for f in "${files[@]}"; do
	dest=$root/opt/heapdev/
	if [[ $f == *=* ]]; then
		dest=$root/opt/heapdev/${f%%=*}
		f=${f#*=}
	fi
	[ -e "$f" ] || die "no such file: $f"
	if [ -d "$f" ]; then
		mkdir -p "$dest"
		cp -a "$f"/. "$dest"
	else
		cp -a "$f" "$dest"
	fi
done

if [ -n "$cmdline" ]; then
	printf '%s\n' "$*" >"$root/job"
	: >"$root/job.args"
else
	[ -f "$1" ] || die "no such job script: $1"
	cp "$1" "$root/job"
	shift
	printf '%q ' "$@" >"$root/job.args"
fi

initrd=$tmp/initramfs.cpio.gz
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd"

append="console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off"
boot() {
	set +e
	timeout --foreground "$timeout" qemu-system-x86_64 \
		-machine q35 -cpu max -smp 2 -m "$mem" \
		-nographic -no-reboot -nodefaults -serial stdio \
		-kernel "$vmlinuz" -initrd "$initrd" -append "$append${1-}" </dev/null |
		tr -d '\r' | tee "$log" |
		if [ -n "$quiet" ]; then
			sed -n '/^\[ *[0-9.]*\]/d; /HEAPDEV-VM-/d; p'
		else
			cat
		fi
	set -e
}
# Under software emulation a boot very rarely dies before userspace runs
# (an early-boot oops while patching kernel text with two vCPUs) or logs a
# kernel report before heapdev is loaded (seen once: KASAN wild-memory-
# access in do_raw_spin_lock 3 ms into a boot of the debug kernel).  That
# says nothing about heapdev, so such a boot is retried once, and the
# retry runs the job even if it logs a report again.  A job that started
# is never retried.
boot
if ! grep -q 'HEAPDEV-VM-BOOTED' "$log"; then
	if grep -q 'HEAPDEV-VM-BOOT-REPORT' "$log"; then
		say "VM on $kver logged a kernel report before heapdev was loaded; retrying once:"
		sed -n '/HEAPDEV-VM-BOOT-REPORT/,$p' "$log" | grep -E 'BUG:|WARNING:|Oops|general protection' | head -n 5 >&2
	else
		say "VM on $kver died during boot; retrying once"
	fi
	cp "$log" "$final_log.first-boot"
	boot " heapdev_vm.retry"
fi
cp "$log" "$final_log"
log=$final_log

status=$(sed -n 's/^HEAPDEV-VM-EXIT=\([0-9]*\)$/\1/p' "$log" | tail -n 1)
if [ -z "$status" ]; then
	say "VM on $kver died or timed out before the job finished (log: $log)"
	exit 125
fi
exit "$status"
