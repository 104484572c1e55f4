#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# ksrc-7.2.sh
#
# Prepare a Linux 7.2 tree to compile heapdev against: Debian's
# linux-source-7.2 from sid, configured with x86_64_defconfig and
# "make modules_prepare" (gcc-12 is enough for that; Debian's own 7.2
# headers want gcc-16), plus the Module.symvers of Debian's 7.2 amd64
# kernel so that modpost checks every symbol the module uses.
#
# apt gets a private configuration naming only sid, under the cache; the
# system's own apt sources are never touched.  Prints the tree's path.

. "$(dirname "$0")/common.sh"

dir=$HEAPDEV_CACHE/linux-7.2
tree=$dir/linux-source-7.2
if [ -f "$dir/done" ]; then
	echo "$tree"
	exit 0
fi

need_pkgs gcc make bc flex bison libelf-dev libssl-dev xz-utils
rm -rf "$dir"
mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs"

mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	/etc/apt/sources.list.d/*.sources 2>/dev/null |
	sed -nE 's/^(URIs:|deb(-src)?( \[[^]]*\])?)[[:space:]]+([^[:space:]]+).*/\4/p' |
	grep -E '/debian/?$' | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb $mirror sid main" >"$dir/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$dir/apt/sources.list"
	-o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$dir/apt/lists"
	-o "Dir::Cache=$dir/apt/cache"
	-o APT::Sandbox::User=root)

say "fetching linux-source-7.2 from sid ($mirror)"
apt-get "${apt_opts[@]}" update -q >&2
hdrs=$(apt-cache "${apt_opts[@]}" search --names-only \
	'^linux-headers-7\.2\.[0-9]+\+deb[0-9]+-amd64$' | awk '{print $1}' |
	sort -V | tail -n 1)
[ -n "$hdrs" ] || die "sid has no linux-headers-7.2 amd64 package"
(cd "$dir/debs" && apt-get "${apt_opts[@]}" download -q linux-source-7.2 "$hdrs" >&2)

dpkg -x "$dir"/debs/linux-source-7.2_*.deb "$dir/pkg"
tar -xaf "$dir"/pkg/usr/src/linux-source-7.2.tar.* -C "$dir"
dpkg -x "$dir"/debs/"$hdrs"_*.deb "$dir/hdrs"
cp "$dir"/hdrs/usr/src/"$hdrs"/Module.symvers "$tree/Module.symvers"
rm -rf "$dir/pkg" "$dir/hdrs" "$dir/debs"

say "preparing $tree (x86_64_defconfig, modules_prepare)"
make -C "$tree" -s x86_64_defconfig >&2
make -C "$tree" -s -j"$(nproc)" modules_prepare >&2
touch "$dir/done"
echo "$tree"
