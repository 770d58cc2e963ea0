"""What a pause does to time: the guest's clock (argon-guest's uptime, read from
kvm-clock) does not count the paused time, and the devices' rate limiters earn no
tokens while paused, so a pause cannot be used to save up a burst."""
import re
import time

import pytest

from api_client import VmmProcess, metric
from conftest import GUEST, VMM, needs_kvm, vmm_env

pytestmark = needs_kvm
PAUSE_S = 2.0


@pytest.fixture
def vm(tmp_path):
    started = []

    def start(extra=None):
        v = VmmProcess(VMM, str(tmp_path / "api.sock"), env=vmm_env(),
                       extra=["--kernel", GUEST, "--cmdline", "console=ttyS0"] + (extra or []))
        v.expect(b"argon> ")
        started.append(v)
        return v

    yield start
    for v in started:
        v.kill()


def command(v, line):
    """Runs a command at the prompt; returns (host seconds it took, its output)."""
    t0 = time.monotonic()
    v.send(line + b"\r")
    out = v.expect(b"argon> ")
    return time.monotonic() - t0, out


def paused(v, seconds):
    assert v.api.patch("/vm", {"state": "Paused"}) == (204, "")
    time.sleep(seconds)
    assert v.api.patch("/vm", {"state": "Resumed"}) == (204, "")


def uptime(v):
    out = command(v, b"uptime")[1]
    m = re.search(r"uptime: (\d+\.\d+) s \((\S+)\)", out)
    assert m, out
    return float(m.group(1)), m.group(2)


def test_the_guest_clock_skips_a_pause(vm):
    v = vm()
    before, source = uptime(v)
    assert source == "kvm-clock"
    t0 = time.monotonic()
    paused(v, PAUSE_S)
    after, _ = uptime(v)
    host = time.monotonic() - t0
    assert host >= PAUSE_S
    # The guest saw the few milliseconds around the pause, not the pause.
    assert after - before < 0.5, (before, after, host)
    assert after > before
    v.send(b"poweroff\r")
    assert v.wait() == 0


def test_rate_limiter_buckets_do_not_fill_while_paused(vm):
    # 4 KiB/s: a bucket of 4096 bytes refilled in 1000 ms, full at start.
    v = vm(["--rng=bw=4K"])
    took, out = command(v, b"rng-read 4096")
    assert "received 4096" in out
    paused(v, PAUSE_S)
    # After the pause the bucket holds what the running time earned (a few ms' worth),
    # not the 4096 bytes 2 s of wall time would have given: 2048 bytes wait ~0.5 s.
    took, out = command(v, b"rng-read 2048")
    assert "received 2048" in out, out
    assert took >= 0.35, f"2048 bytes in {took:.3f}s after a pause: the bucket refilled"
    text = v.api.get("/metrics")[1]
    assert metric(text, "argon_rate_limiter_throttled_total", device="entropy") >= 1
    v.send(b"poweroff\r")
    assert v.wait() == 0
