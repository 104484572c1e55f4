#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# debug-kernel.sh
#
# Build (once) a Linux 7.2 kernel with KASAN, lockdep, DEBUG_VM, kmemleak
# and fault injection for "make check-debug": Debian's linux-source-7.2
# from sid, x86_64_defconfig + kvm_guest.config + debug-kernel.config,
# compiled with the host's gcc.  The tree is cached in
# $HEAPDEV_CACHE/debug-7.2/<hash of the config and source version>, so
# later runs only rebuild the module; a cold build takes 40 to 55 minutes
# on two cores.  An interrupted build resumes where it stopped.
# Prints "KVER TREE BZIMAGE".
#
#   --cached   print the line only if the kernel is already built, else
#              exit 1 (build nothing)

. "$(dirname "$0")/common.sh"

cached_only=
[ "${1:-}" = --cached ] && cached_only=1

config=$HEAPDEV_TOP/scripts/debug-kernel.config
base=$HEAPDEV_CACHE/debug-7.2
if [ -n "$cached_only" ]; then
	for done in "$base"/*/done; do
		[ -f "$done" ] || continue
		tree=$(dirname "$done")/linux-source-7.2
		echo "$(make -C "$tree" -s kernelrelease) $tree $tree/arch/x86/boot/bzImage"
		exit 0
	done
	exit 1
fi

need_pkgs gcc make bc flex bison libelf-dev libssl-dev xz-utils dwarves cpio

mkdir -p "$base"

# A pristine source tree from sid (the compile-check tree is configured
# differently, so it cannot be shared).
fetch_source() {
	local dir=$base/src apt
	[ -f "$dir/done" ] && return 0
	rm -rf "$dir"
	mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs"
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -nE 's/^(URIs:|deb(-src)?( \[[^]]*\])?)[[:space:]]+([^[:space:]]+).*/\4/p' |
		grep -E '/debian/?$' | head -n 1)
	echo "deb ${mirror:-http://deb.debian.org/debian} sid main" >"$dir/apt/sources.list"
	apt=(-o "Dir::Etc::SourceList=$dir/apt/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$dir/apt/lists"
		-o "Dir::Cache=$dir/apt/cache" -o APT::Sandbox::User=root)
	apt-get "${apt[@]}" update -q >&2
	(cd "$dir/debs" && apt-get "${apt[@]}" download -q linux-source-7.2 >&2)
	dpkg -x "$dir"/debs/linux-source-7.2_*.deb "$dir/pkg"
	mv "$dir"/pkg/usr/src/linux-source-7.2.tar.* "$dir/"
	rm -rf "$dir/pkg" "$dir/debs" "$dir/apt"
	touch "$dir/done"
}

fetch_source
tarball=$(ls "$base"/src/linux-source-7.2.tar.*)
key=$( (basename "$tarball"; stat -c %s "$tarball"; cat "$config"; gcc --version | head -n 1) |
	sha256sum | cut -c1-12)
tree=$base/$key/linux-source-7.2
if [ ! -f "$base/$key/done" ]; then
	start=$(date +%s)
	if [ ! -f "$base/$key/configured" ]; then
		rm -rf "${base:?}/$key"
		mkdir -p "$base/$key"
		tar -xaf "$tarball" -C "$base/$key"
		make -C "$tree" -s x86_64_defconfig >&2
		make -C "$tree" -s kvm_guest.config >&2
		"$tree/scripts/kconfig/merge_config.sh" -m -O "$tree" \
			"$tree/.config" "$config" >&2
		make -C "$tree" -s olddefconfig >&2
		# Every option we asked for must have survived olddefconfig.
		while IFS= read -r line; do
			case $line in
			CONFIG_*=y) grep -qx "$line" "$tree/.config" ||
				die "debug kernel: $line did not stick" ;;
			esac
		done <"$config"
		touch "$base/$key/configured"
		say "building the debug kernel in $tree (40-55 minutes the first time)"
	else
		say "resuming the debug kernel build in $tree"
	fi
	make -C "$tree" -s -j"$(nproc)" bzImage modules >&2
	prev=$(cat "$base/$key/build-seconds" 2>/dev/null || echo 0)
	echo $((prev + $(date +%s) - start)) >"$base/$key/build-seconds"
	touch "$base/$key/done"
	say "debug kernel built in $(cat "$base/$key/build-seconds") s"
fi
kver=$(make -C "$tree" -s kernelrelease)
echo "$kver $tree $tree/arch/x86/boot/bzImage"
