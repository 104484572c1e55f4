#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0-only
#
# /init of heapdev's test VM (packed by vm-run.sh).  Mounts the usual
# filesystems, loads heapdev.ko when present, runs /job with the arguments
# in /job.args, and powers off after printing HEAPDEV-VM-EXIT=<status>.
#
# A kernel report (BUG:, WARNING:, Oops) already in the log before heapdev
# is loaded comes from the kernel's own boot under emulation, not from
# heapdev; the job's final log check would blame it on the module.  Such
# a boot prints HEAPDEV-VM-BOOT-REPORT and powers off without running the
# job, and vm-run.sh boots once more.  On that retry (heapdev_vm.retry on
# the command line) the job runs whatever the log says; vm-check.job then
# shows the boot's report but judges only what the kernel logged after
# the line this script writes before loading heapdev.

/bin/busybox --install -s /bin
export PATH=/opt/heapdev:/bin
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
chmod 1777 /tmp
mkdir -p /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname heapdev-vm

report='BUG:|WARNING:|Oops|general protection|Call Trace'
if ! grep -q heapdev_vm.retry /proc/cmdline &&
   dmesg | grep -E "$report" >/tmp/boot-report; then
	echo "HEAPDEV-VM-BOOT-REPORT: the kernel reported before heapdev was loaded:"
	cat /tmp/boot-report
	sync
	poweroff -f
fi

# Jobs judge the kernel log from this line on (see vm-check.job).
echo "heapdev-vm: boot done, loading heapdev" >/dev/kmsg

status=0
if [ -f /lib/heapdev.ko ]; then
	if ! insmod /lib/heapdev.ko $(cat /lib/heapdev.params 2>/dev/null); then
		echo "HEAPDEV-VM: insmod heapdev.ko failed"
		status=99
	fi
fi
echo "HEAPDEV-VM-BOOTED"
if [ $status = 0 ]; then
	cd /tmp
	eval "set -- $(cat /job.args)"
	sh /job "$@"
	status=$?
fi
echo "HEAPDEV-VM-EXIT=$status"
sync
poweroff -f
