#!/usr/bin/env bash
# Issue 15's check, repeatable: the README's two commands, verbatim and nothing else,
# as root in a fresh Debian 12 root made by `debootstrap --variant=minbase bookworm`
# (no compiler, no make, as Debian's minimal images), holding only a clone of this
# repository's HEAD (commit first), with the host's /dev (kvm, net/tun), /proc and
# /sys. Prints each command's time and how many packages it installed; fails when
# either command fails. Takes a few minutes.
#
#   scripts/fresh-debian-check.sh [--mount-point-root]
#
# In a plain chroot / is not a mount point, so the tests that enter a network or mount
# namespace are skipped, saying so. --mount-point-root bind-mounts the root onto itself
# first, as a booted machine or a container has it, so that they run too.
#
# Needs root, debootstrap and Debian's archive. Every mount is made in a private mount
# namespace, so none outlives the run; the root is made under /var/tmp and removed at
# the end. ARGON_MINBASE_TAR=FILE keeps the debootstrap result in FILE for the next run.
set -euo pipefail

die() {
	echo "fresh-debian-check: $*" >&2
	exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mount_root=false
case "${1:-}" in
--mount-point-root) mount_root=true ;;
"") ;;
*) die "usage: $0 [--mount-point-root]" ;;
esac
[ "$(id -u)" -eq 0 ] || die "needs root (chroot, mounts)"
command -v debootstrap >/dev/null || die "needs debootstrap (apt-get install debootstrap)"

# The commands of the README's "Two commands on a fresh machine", comments dropped.
mapfile -t cmds < <(awk '/^## Two commands on a fresh machine/ { s = 1 }
	s && /^```sh/ { b = 1; next }  b && /^```/ { exit }
	b { sub(/[ \t]*#.*/, ""); if ($0 != "") print }' "$here/README.md")
[ ${#cmds[@]} -eq 2 ] || die "found ${#cmds[@]} commands in the README's first code block, expected two"

work=$(mktemp -d /var/tmp/argon-fresh.XXXXXX)
root=$work/root
cleanup() {
	# Anything still running inside the root was started by this run: end it by its id.
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" != "$root" ] || kill -KILL "${p#/proc/}" 2>/dev/null || true
	done
	# The mounts lived in the namespace only; never delete through one that did not go.
	if awk -v r="$root" '$5 == r || index($5, r "/") == 1 { found = 1 } END { exit !found }' \
		/proc/self/mountinfo; then
		echo "fresh-debian-check: something is still mounted under $root; left in place" >&2
		return
	fi
	rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${ARGON_MINBASE_TAR:-}" ] && [ -f "$ARGON_MINBASE_TAR" ]; then
	mkdir "$root"
	tar -xpf "$ARGON_MINBASE_TAR" -C "$root"
else
	echo "fresh-debian-check: debootstrap --variant=minbase bookworm"
	debootstrap --variant=minbase bookworm "$root" "${ARGON_DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
		>"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
	if [ -n "${ARGON_MINBASE_TAR:-}" ]; then
		mkdir -p "$(dirname "$ARGON_MINBASE_TAR")"
		tar -C "$root" --numeric-owner -cf "$ARGON_MINBASE_TAR" .
	fi
fi
git clone -q "$here" "$root/root/argon"
echo "fresh-debian-check: $(git -C "$root/root/argon" log -1 --format='%h %s')"

# shellcheck disable=SC2016
unshare --mount --propagation private -- bash -euo pipefail -c '
	trap "echo \"fresh-debian-check: failed: \$BASH_COMMAND\" >&2" ERR
	root=$1 mount_root=$2
	shift 2
	if $mount_root; then mount --bind "$root" "$root"; fi
	mount --rbind /dev "$root/dev"
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	in_root() {
		chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/bash -c "$1"
	}
	installed() { chroot "$root" dpkg-query -W -f="\${Status}\n" | grep -c "install ok installed"; }
	for cmd in "$@"; do
		before=$(installed) start=$EPOCHREALTIME
		echo "fresh-debian-check: # $cmd"
		rc=0
		in_root "cd /root/argon && $cmd" </dev/null || rc=$?
		end=$EPOCHREALTIME
		printf "fresh-debian-check: %s: status %d after %s s, %d packages installed\n" "$cmd" "$rc" \
			"$(awk -v a="$start" -v b="$end" "BEGIN { printf \"%.1f\", b - a }")" "$(($(installed) - before))"
		[ "$rc" -eq 0 ] || exit "$rc"
	done
' _ "$root" "$mount_root" "${cmds[@]}"
echo "fresh-debian-check: both commands passed ($( $mount_root && echo "/ a mount point" || echo "a plain chroot"))"
