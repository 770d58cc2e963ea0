#!/usr/bin/env bash
# argon-vmm against QEMU's microvm on the same guest, side by side in one run.
# `make bench` builds everything, then runs this. Options go to bench/bench.py
# (--runs N, --vcpus N, --memory MIB, --cpu-runs N, --exit-runs N, ...; --help).
# `bench/run-all.sh --devices` runs the virtio device benchmarks instead (block,
# net, vsock; about 3.5 minutes); `--only snapshot` the snapshot benchmarks (about
# 3 minutes; memory files in a temporary directory and in /dev/shm, removed at the end).
#
# Needs: build/argon-vmm, build/argon-guest, build/cpu-bench-host,
# qemu-system-x86_64 (Debian: qemu-system-x86), /dev/kvm, and for exit counts
# perf (Debian: linux-perf) run as root; --devices also fio (Debian: fio) and,
# for its net rows, root and iproute2. Writes nothing but stdout/stderr, except
# --devices: three disk images and sockets in a temporary directory and a network
# namespace of its own, all removed at the end.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."

# Every process of this run (bench.py, VMMs, perf) carries this in its
# environment, so a stray can be found by it even if bench.py died hard.
export ARGON_BENCH_RUN=$$
child=
cleanup() {
	export -n ARGON_BENCH_RUN
	# bench.py kills its VMs itself on exit and on SIGINT/SIGTERM/SIGHUP.
	if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null || true
		wait "$child" 2>/dev/null || true
	fi
	# Anything left (bench.py killed with SIGKILL): end it by its id.
	local p
	for p in /proc/[0-9]*; do
		[[ ${p#/proc/} == "$$" ]] && continue
		if grep -qzx "ARGON_BENCH_RUN=$$" "$p/environ" 2>/dev/null; then
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
	# And what the device benchmarks make, named after this run (bench/devices.py):
	# the network namespace with its taps, the directory with images and sockets.
	if ip netns list 2>/dev/null | grep -qw "argon-bench-$$"; then
		ip netns del "argon-bench-$$" 2>/dev/null || true
	fi
	rm -rf "${TMPDIR:-/tmp}/argon-bench-$$-"*
	# The snapshot part's memory files on tmpfs (bench/snapshot.py).
	rm -rf "/dev/shm/argon-bench-$$-"*
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

# A hard stop in case anything hangs; bench.py keeps to its own budget first.
timeout --foreground -k 10 780 python3 -u bench/bench.py "$@" &
child=$!
set +e
wait "$child"
rc=$?
set -e
child=
# The API: socket-ready time against its floor, request latency under guest I/O
# (not with --devices, which asks for the device benchmarks alone, nor with an
# --only that names none of boot, exits, session: e.g. --only snapshot).
only=
prev=
for arg in "$@"; do
	[[ $prev == --only ]] && only=$arg
	[[ $arg == --only=* ]] && only=${arg#--only=}
	prev=$arg
done
if [[ " $* " != *" --devices "* ]] &&
	{ [[ -z $only ]] || [[ ,$only, == *,boot,* || ,$only, == *,exits,* || ,$only, == *,session,* ]]; }; then
	timeout --foreground -k 10 300 python3 -u bench/api_bench.py || [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
