#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0-only
#
# /init of heapdev's test VM (packed by vm-run.sh).  Mounts the usual
# filesystems, loads heapdev.ko when present, runs /job with the arguments
# in /job.args, and powers off after printing HEAPDEV-VM-EXIT=<status>.

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
