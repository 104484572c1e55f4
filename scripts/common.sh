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
