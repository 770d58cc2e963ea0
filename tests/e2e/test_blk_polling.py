"""What a disk costs the guest in exits and the host in CPU. The device loop polls
a busy disk and sleeps when the guest is idle: while blk-bench keeps the queue
busy, the guest is told not to notify (few kicks per request) and the metrics
count the polling; once the command is over the VMM uses next to no CPU and polls
no more. A guest that sleeps for its completions takes an interrupt each, and each
interrupt costs it one exit to argon-vmm, not two."""
import os
import re
import time

import pytest

from api_client import Api, metric
from conftest import GUEST, needs_kvm

pytestmark = needs_kvm

MIB = 1 << 20
PROMPT = b"argon> "
# An idle VMM (vCPU halted, loop asleep) costs the guest's 100 Hz timer and little
# else: a few ms of CPU a second. A loop that never stopped polling would take a
# whole CPU.
IDLE_CPU_MAX = 0.10
ATTEMPTS = 8
# Polling pays only while a CPU is free (DESIGN.md): when the guest's vCPU waits
# milliseconds for a CPU other processes hold, the loop rightly reads the gap as a
# quiet guest and sleeps. A run whose VMM threads waited for a CPU this share of
# its wall time or more says nothing about polling and is not judged.
CONTENDED_SHARE = 0.25


def vmm_cpu_seconds(pid):
    """User + system time of all the process's threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_wait_seconds(pid):
    """Time all the process's threads spent runnable, waiting for a CPU (schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def poll_metrics(api):
    """(windows, seconds) from GET /metrics."""
    text = api.ok("GET", "/metrics")
    return (metric(text, "argon_device_poll_windows_total"),
            metric(text, "argon_device_poll_seconds_total"))


def test_busy_disk_is_polled_and_idle_vm_sleeps(tmp_path, console):
    disk = tmp_path / "d.img"
    disk.write_bytes(os.urandom(16 * MIB))
    sock = str(tmp_path / "api.sock")
    c = console(["--disk", str(disk), "--kernel", GUEST, "--cmdline", "console=ttyS0",
                 "--api-sock", sock])
    c.expect(PROMPT)
    api = Api(sock)
    # Without polling every request at queue depth 1 is a kick; with it, almost none
    # on a quiet host, and 10-25% in the best of three runs with another process
    # spinning on one of the two CPUs (the loop loses its CPU mid-window, or the
    # guest its own and goes quiet for a while). Load only adds kicks: the best of
    # the runs the host left a CPU for is judged, against half.
    runs, judged = [], []
    for _ in range(ATTEMPTS):
        c.buffer = b""  # this run's lines only
        wait0, t0 = cpu_wait_seconds(c.proc.pid), time.monotonic()
        c.send(b"blk-bench 0 500 randread_qd1_iops\n")
        out = c.expect(b"interrupts")
        share = (cpu_wait_seconds(c.proc.pid) - wait0) / (time.monotonic() - t0)
        m = re.search(r"blk-bench: requests (\d+) kicks (\d+)", out)
        assert m, out
        requests, kicks = int(m.group(1)), int(m.group(2))
        c.expect(PROMPT)
        runs.append((requests, kicks, round(share, 2)))
        if share < CONTENDED_SHARE:
            judged.append((requests, kicks))
            if requests > 1000 and kicks < requests / 2:
                break
    if not judged:
        pytest.skip(f"the host kept the VMM waiting for a CPU in every run "
                    f"(requests, kicks, share of time waiting): {runs}")
    assert any(r > 1000 and k < r / 2 for r, k in judged), runs
    windows, seconds = poll_metrics(api)
    assert windows > 0 and seconds > 0, (windows, seconds)

    cpu0, t0 = vmm_cpu_seconds(c.proc.pid), time.monotonic()
    time.sleep(1.0)
    cpu1, t1 = vmm_cpu_seconds(c.proc.pid), time.monotonic()
    assert (cpu1 - cpu0) / (t1 - t0) < IDLE_CPU_MAX, (cpu1 - cpu0, t1 - t0)
    assert poll_metrics(api) == (windows, seconds)  # idle: no window opened
    api.close()

    c.send(b"poweroff\n")
    assert c.wait() == 0


def test_an_interrupt_costs_one_exit_to_the_vmm(tmp_path, console):
    """A rate-limited disk makes the guest sleep for each request, so each is an
    interrupt: the guest's read of InterruptStatus exits to argon-vmm, its write of
    InterruptACK is coalesced by KVM and does not."""
    disk = tmp_path / "d.img"
    disk.write_bytes(os.urandom(4 * MIB))
    sock = str(tmp_path / "api.sock")
    c = console(["--disk", f"{disk},ops=1000", "--kernel", GUEST, "--cmdline", "console=ttyS0",
                 "--api-sock", sock])
    c.expect(PROMPT)
    api = Api(sock)
    text = api.ok("GET", "/metrics")
    exits0 = metric(text, "argon_vcpu_exits_total", reason="MMIO")
    irqs0 = metric(text, "argon_virtio_interrupts_total", device="block:disk0")
    c.send(b"blk-bench 0 400 randread_qd1_iops\n")
    c.expect(b"interrupts")
    c.expect(PROMPT)
    text = api.ok("GET", "/metrics")
    exits = metric(text, "argon_vcpu_exits_total", reason="MMIO") - exits0
    irqs = metric(text, "argon_virtio_interrupts_total", device="block:disk0") - irqs0
    assert irqs >= 100, (irqs, exits)
    assert exits < 1.3 * irqs + 20, (irqs, exits)  # two per interrupt without coalescing
    api.close()
    c.send(b"poweroff\n")
    assert c.wait() == 0
