#!/usr/bin/env bash
# Installs the Debian packages argon needs that are missing, and says why each is
# needed. Groups: build and test (default), bench, fuzz. Quiet when nothing is missing.
# Needs only bash, dpkg and apt: it runs on Debian's minimal base, before make and the
# compiler exist (./run.sh installs the build group, ./test.sh build and test).
#
#   scripts/install-deps.sh [GROUP...]          install what is missing
#   scripts/install-deps.sh --list [GROUP...]   print the groups' packages, one a line
#
# The lists below are the one place argon's Debian packages are named: a new library,
# daemon or tool (argond's SQLite, dnsmasq, nftables, OpenSSL, libcbor, libseccomp...)
# goes here, with why, in the group that first needs it, and in the README's table.
# ./run.sh, ./test.sh, make run/test/bench/fuzz and CI then install it, and
# tests/e2e/test_deps.py fails when the Makefile links, or a test runs or imports,
# something from a package that is not here (nor pulled in, nor in the minimal base).
set -euo pipefail

declare -A why=(
	[build-essential]="build: gcc, make, binutils for argon-vmm, argon and argon-guest"
	[libjansson-dev]="build: JSON configuration files and (later) the REST API"
	[liburing-dev]="build: asynchronous block I/O on io_uring (virtio-blk)"
	[zlib1g-dev]="build: gzip-compressed bzImage payloads"
	[liblz4-dev]="build: LZ4-compressed bzImage payloads (Debian's kernels)"
	[libzstd-dev]="build: zstd-compressed bzImage payloads"
	[liblzma-dev]="build: xz and lzma-compressed bzImage payloads"
	[libbz2-dev]="build: bzip2-compressed bzImage payloads"
	[liblzo2-dev]="build: LZO-compressed bzImage payloads"
	[libcmocka-dev]="test: unit tests"
	[python3-pytest]="test: end-to-end tests that boot real guests"
	[acpica-tools]="test: iasl disassembles the DSDT argon generates"
	[iproute2]="test: ip creates the network namespaces, taps and bridges of the network tests"
	[iputils-ping]="test: the host pings a guest over a tap"
	[curl]="test: Firecracker's getting-started curl recipes replayed against the API"
	[valgrind]="test: the API's memory check under valgrind (nothing definitely lost)"
	[qemu-system-x86]="bench: QEMU's microvm machine, the peer in every benchmark"
	[fio]="bench: the host's own figure for the disk patterns the guest runs (the ceiling)"
	[linux-perf]="bench: counts exits to the VMM (kvm:kvm_userspace_exit) for both VMMs"
	[clang]="fuzz: libFuzzer targets"
	[libclang-rt-14-dev]="fuzz: libFuzzer and sanitizer runtimes for clang"
)
declare -A group=(
	[build]="build-essential libjansson-dev liburing-dev zlib1g-dev liblz4-dev libzstd-dev liblzma-dev libbz2-dev liblzo2-dev"
	[test]="libcmocka-dev python3-pytest acpica-tools iproute2 iputils-ping curl valgrind"
	[bench]="qemu-system-x86 fio linux-perf"
	[fuzz]="clang libclang-rt-14-dev"
)

list=false
if [ "${1:-}" = --list ]; then list=true; shift; fi
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(build test)

packages=()
for g in "${groups[@]}"; do
	[ -n "${group[$g]:-}" ] || { echo "install-deps: unknown group '$g' (expected: ${!group[*]})" >&2; exit 2; }
	for p in ${group[$g]}; do packages+=("$p"); done
done
if $list; then printf '%s\n' "${packages[@]}"; exit 0; fi

for tool in dpkg-query apt-get; do
	command -v "$tool" >/dev/null 2>&1 ||
		{ echo "install-deps: '$tool' not found: argon installs its packages with Debian's dpkg and apt (Debian 12)" >&2; exit 1; }
done
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing missing Debian packages:"
for p in "${missing[@]}"; do printf '  %-20s %s\n' "$p" "${why[$p]}"; done
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install them (run as root or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
