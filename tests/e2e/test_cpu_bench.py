"""The virtualization overhead on computation: argon-guest's cpu-bench against the
same code (same source, same flags) run on the host. Runs alternate and the best of
each side is compared, so another process stealing the CPU cannot fake a result
either way.

Both sides are compared in TSC cycles per round, not nanoseconds: the guest turns
cycles into time with the TSC frequency KVM reports, the host with its own clock
source, and a host whose TSC calibration is off by a few percent (a busy machine at
boot) would otherwise show that error as virtualization overhead. The TSC ticks at
the same rate inside and outside the guest (argon-vmm does not scale it)."""
import re
import subprocess

from conftest import HOST_CPU_BENCH, needs_kvm, run_guest

pytestmark = needs_kvm

ROUNDS = 3000
# Alternating pairs until the best figures agree, at most this many: another
# process can only make a side slower, so more pairs only sharpen both bests.
MAX_TRIES = 15
# "within a few percent": the benchmark reports the exact figure; this bound keeps
# the test meaningful on a noisy 2-core machine.
MAX_RATIO = 1.05


def cycles_and_ns_per_round(text):
    m = re.search(r"cpu-bench: rounds (\d+) cycles (\d+) ns_per_round ([\d.]+)", text)
    assert m, text
    assert int(m.group(1)) == ROUNDS
    return int(m.group(2)) / ROUNDS, float(m.group(3))


def test_guest_computes_as_fast_as_the_host():
    host, guest = [], []
    for _ in range(MAX_TRIES):
        h = subprocess.run([HOST_CPU_BENCH, str(ROUNDS)], capture_output=True, text=True,
                           timeout=60)
        assert h.returncode == 0, h.stderr
        host.append(cycles_and_ns_per_round(h.stdout))
        g = run_guest(f"cpu-bench {ROUNDS}")
        assert g.returncode == 0, g.stdout + g.stderr
        guest.append(cycles_and_ns_per_round(g.stdout))
        if len(guest) >= 3 and min(guest)[0] / min(host)[0] < MAX_RATIO:
            break
    ratio = min(guest)[0] / min(host)[0]
    print(f"cpu-bench cycles/round: guest best {min(guest)[0]:.0f}, host best "
          f"{min(host)[0]:.0f}, ratio {ratio:.4f} (ns/round: guest {min(guest)[1]:.1f}, "
          f"host {min(host)[1]:.1f})")
    assert ratio < MAX_RATIO, (guest, host)
