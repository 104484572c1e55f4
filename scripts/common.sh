# SPDX-License-Identifier: GPL-2.0-only
# Shared helpers for heapdev's scripts; sourced, never run.
#
# HEAPDEV_CACHE  where downloaded kernels, sources and built kernel trees
#                live, outside the clone so that fresh clones reuse them
#                (default ${XDG_CACHE_HOME:-$HOME/.cache}/heapdev)

set -eu

HEAPDEV_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HEAPDEV_CACHE=${HEAPDEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heapdev}
HEAPDEV_BUILD=${HEAPDEV_BUILD:-$HEAPDEV_TOP/build}
export HEAPDEV_TOP HEAPDEV_CACHE HEAPDEV_BUILD

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Install Debian packages that are missing (root only; as another user,
# name them and stop).
need_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		die "missing Debian packages (install as root): ${missing[*]}"
	fi
	say "installing: ${missing[*]}"
	local try
	for try in 1 2 3; do
		if DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" >&2; then
			return 0
		fi
		apt-get update -q >&2 || true
		sleep 2
	done
	die "apt-get install ${missing[*]} failed"
}

# Download Debian packages into the cache (no install); prints nothing.
apt_download() {
	local dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$@" >&2) ||
		{ apt-get update -q >&2 && (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$@" >&2); }
}

# The newest version of a Debian package name pattern that apt knows.
apt_newest() {
	apt-cache search --names-only "$1" 2>/dev/null | awk '{print $1}' |
		sort -V | tail -n 1
}

# The Debian mirror the system's own apt sources name.
debian_mirror() {
	local m
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -nE 's/^(URIs:|deb(-src)?( \[[^]]*\])?)[[:space:]]+([^[:space:]]+).*/\4/p' |
		grep -E '/debian/?$' | head -n 1)
	echo "${m:-http://deb.debian.org/debian}"
}

# apt_private SUITE: set the array APT_PRIVATE to options that make
# apt-get and apt-cache see only SUITE (main) of the system's mirror,
# through a configuration and lists of their own in the cache; the
# system's apt sources are never touched.  The lists are fetched the first
# time, and again when older than a week.
apt_private() {
	local suite=$1 dir=$HEAPDEV_CACHE/apt-$1
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	echo "deb $(debian_mirror) $suite main" >"$dir/sources.list"
	APT_PRIVATE=(-o "Dir::Etc::SourceList=$dir/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$dir/lists"
		-o "Dir::Cache=$dir/cache"
		-o APT::Sandbox::User=root)
	if [ -z "$(find "$dir/updated" -mtime -7 2>/dev/null)" ]; then
		apt-get "${APT_PRIVATE[@]}" update -q >&2 ||
			die "apt-get update of the private $suite configuration failed"
		touch "$dir/updated"
	fi
}
