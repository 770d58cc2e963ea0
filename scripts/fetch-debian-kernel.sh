#!/bin/bash
# Prints the path of Debian's stock cloud kernel (boot/vmlinuz-*, a bzImage kept as
# shipped) on stdout, downloading it first when it is not cached yet.
#
# The metapackage linux-image-cloud-amd64 only depends on the real, versioned image
# package (linux-image-<abi>-cloud-amd64). That package is fetched with `apt-get
# download` (no install, no root needed when the apt lists are there), unpacked with
# `dpkg-deb -x`, and only its vmlinuz is kept, in a cache outside the source tree:
#
#   ${ARGON_CACHE:-/var/cache/argon}/debian-kernel/<package version>/vmlinuz-<abi>
#
# Running it again with the same version available reuses the cache. If apt cannot
# resolve the package (no lists, no network) but a kernel is cached, the newest
# cached one is printed with a warning. Everything but the path goes to stderr.
set -euo pipefail

META=linux-image-cloud-amd64
CACHE_ROOT="${ARGON_CACHE:-/var/cache/argon}/debian-kernel"

die() {
	echo "fetch-debian-kernel: error: $*" >&2
	exit 1
}

note() {
	echo "fetch-debian-kernel: $*" >&2
}

for tool in apt-cache apt-get dpkg-deb flock; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: this script needs a Debian system (apt, dpkg, util-linux)"
done

# The real package behind the metapackage, e.g. linux-image-6.1.0-56-cloud-amd64.
real_package() {
	apt-cache depends "$META" 2>/dev/null |
		sed -n 's/^ *|\{0,1\}Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1
}

# Fills PKG and VERSION from apt; returns 1 when apt does not know the metapackage.
resolve() {
	PKG="$(real_package)"
	if [[ -z "$PKG" ]]; then
		if [[ "$(id -u)" -eq 0 ]]; then
			note "apt does not know $META yet; running apt-get update"
			apt-get update -qq >&2 || note "apt-get update failed"
			PKG="$(real_package)"
		else
			note "apt does not know $META and we are not root: run 'apt-get update' as root"
		fi
	fi
	[[ -n "$PKG" ]] || return 1
	VERSION="$(apt-cache show --no-all-versions "$PKG" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)"
	[[ -n "$VERSION" ]] || die "apt knows $PKG but reports no version for it"
	# A Debian version may contain ':' (epoch); keep directory names plain.
	VERSION="${VERSION//:/_}"
}

# Prints the vmlinuz in a version directory, if there is exactly one.
cached_kernel() {
	local found=("$1"/vmlinuz-*)
	[[ -f "${found[0]}" && ${#found[@]} -eq 1 ]] && echo "${found[0]}"
}

newest_cached() {
	local dir best=""
	for dir in "$CACHE_ROOT"/*/; do
		[[ -d "$dir" ]] || continue
		cached_kernel "${dir%/}" >/dev/null || continue
		best="${dir%/}"
	done
	[[ -n "$best" ]] && cached_kernel "$best"
}

# Downloads $PKG into a scratch directory inside the cache, unpacks it, and moves
# the single vmlinuz into $1 (created only when everything worked).
download_into() {
	local dest="$1" work deb kernels
	work="$(mktemp -d "$CACHE_ROOT/.work.XXXXXX")"
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" EXIT
	note "downloading $PKG ($VERSION)"
	# _apt must be able to write here when apt-get runs as root (sandboxed download).
	chmod 0755 "$work"
	chown _apt "$work" 2>/dev/null || true
	(cd "$work" && apt-get download -q "$PKG" >&2) ||
		die "apt-get download $PKG failed (network? try 'apt-get update')"
	deb="$(find "$work" -maxdepth 1 -name '*.deb' | head -n 1)"
	[[ -n "$deb" ]] || die "apt-get download $PKG produced no .deb in $work"
	dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
	kernels=("$work"/root/boot/vmlinuz-*)
	[[ -f "${kernels[0]}" ]] || die "$PKG contains no boot/vmlinuz-*"
	[[ ${#kernels[@]} -eq 1 ]] || die "$PKG contains ${#kernels[@]} boot/vmlinuz-* files, expected one"
	mkdir -p "$work/out"
	mv "${kernels[0]}" "$work/out/"
	chmod 0644 "$work/out/"vmlinuz-*
	mv "$work/out" "$dest" || die "cannot move the kernel into $dest"
	rm -rf "$work"
	trap - EXIT
}

main() {
	mkdir -p "$CACHE_ROOT" 2>/dev/null || die "cannot create cache directory $CACHE_ROOT (set ARGON_CACHE to a writable place)"
	[[ -w "$CACHE_ROOT" ]] || die "cache directory $CACHE_ROOT is not writable (set ARGON_CACHE to a writable place)"
	# One fetch at a time per cache; a second caller waits and then finds the cache.
	exec 9>"$CACHE_ROOT/.lock"
	flock 9

	if ! resolve; then
		local old
		old="$(newest_cached)" || die "cannot resolve $META with apt and no kernel is cached in $CACHE_ROOT"
		note "warning: cannot resolve $META with apt; using cached $old"
		echo "$old"
		return 0
	fi
	local dest="$CACHE_ROOT/$VERSION" kernel
	if kernel="$(cached_kernel "$dest")"; then
		echo "$kernel"
		return 0
	fi
	[[ ! -e "$dest" ]] || die "$dest exists but holds no single vmlinuz-*; remove it and run again"
	download_into "$dest"
	kernel="$(cached_kernel "$dest")" || die "no vmlinuz in $dest after download"
	echo "$kernel"
}

main "$@"
