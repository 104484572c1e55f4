#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# kernels.sh SERIES...
#
# Make Debian's kernel image and matching headers for each SERIES (5.10,
# 6.1, 6.12) available in $HEAPDEV_CACHE/kernels/SERIES, downloading them
# with apt-get download and unpacking them with dpkg -x; nothing is
# installed into the host.  6.1 and 6.12 come from the system's own apt
# sources (bookworm and its updates), 5.10 from Debian 11 "bullseye"
# through a private apt configuration in the cache (apt_private).  The
# newest ABI apt knows is taken the first time; later runs reuse what the
# cache holds (delete the folder to refresh).
#
# Prints one line per series:  SERIES KVER KBUILD_DIR VMLINUZ

. "$(dirname "$0")/common.sh"

series_packages() {
	local series=$1 image kver abi common kbuild
	case $series in
	5.10)
		image=$(apt-cache "${APT_PRIVATE[@]}" search --names-only \
			'^linux-image-5\.10\.0-[0-9]+-amd64-unsigned$' |
			awk '{print $1}' | sort -V | tail -n 1)
		;;
	6.1)
		image=$(apt_newest '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$')
		;;
	6.12)
		image=$(apt_newest '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$')
		;;
	*)
		die "unknown kernel series '$series' (known: 5.10 6.1 6.12)"
		;;
	esac
	[ -n "$image" ] || die "apt knows no kernel image for $series (run apt-get update?)"
	kver=${image#linux-image-}
	kver=${kver%-unsigned}
	abi=${kver%-amd64}
	common=linux-headers-$abi-common
	case $series in
	5.10 | 6.1) kbuild=linux-kbuild-$series ;;
	*) kbuild=linux-kbuild-$abi ;;
	esac
	echo "$kver $image linux-headers-$kver $common $kbuild"
}

prepare() {
	local series=$1 dir=$HEAPDEV_CACHE/kernels/$1 kver pkgs
	if [ ! -f "$dir/kver" ]; then
		APT_PRIVATE=()
		[ "$series" != 5.10 ] || apt_private bullseye
		read -r kver pkgs <<<"$(series_packages "$series")"
		say "fetching Debian $series kernel $kver into $dir"
		rm -rf "$dir"
		if [ "$series" = 5.10 ]; then
			mkdir -p "$dir/debs"
			(cd "$dir/debs" && apt-get "${APT_PRIVATE[@]}" download -q $pkgs >&2)
		else
			apt_download "$dir/debs" $pkgs
		fi
		local deb
		for deb in "$dir"/debs/*.deb; do
			dpkg -x "$deb" "$dir/root"
		done
		rm -rf "$dir/debs"
		echo "$kver" >"$dir/kver"
	fi
	kver=$(cat "$dir/kver")
	local kbuild=$dir/root/usr/src/linux-headers-$kver
	local vmlinuz=$dir/root/boot/vmlinuz-$kver
	[ -f "$kbuild/Makefile" ] && [ -f "$vmlinuz" ] ||
		die "$dir is incomplete: delete it and retry"
	# The headers' Makefile includes the common half by absolute path.
	sed -i "s|^include .*/usr/src/\(linux-headers-.*-common/Makefile\)$|include $dir/root/usr/src/\1|" \
		"$kbuild/Makefile"
	echo "$series $kver $kbuild $vmlinuz"
}

[ $# -gt 0 ] || die "usage: kernels.sh SERIES..."
for s in "$@"; do
	prepare "$s"
done
