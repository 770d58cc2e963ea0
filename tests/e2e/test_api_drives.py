"""PATCH /drives/{id} after boot, end to end (Firecracker's "update block device"): a
running argon-guest's disk is swapped for another image through the API; the guest
reads the new image's data, is told of the change by a configuration interrupt, and
the device holds it to the new capacity; the old image is released; a refused image
changes nothing; a new rate limiter takes effect; GET /vm/config follows."""
import fcntl
import os
import re
import shutil
import tempfile
import time

import pytest

from api_client import VmmProcess, fault
from conftest import GUEST, VMM, needs_kvm, run_guest, vmm_env

pytestmark = needs_kvm
MIB = 1 << 20
SEED_A, SEED_B = 7, 4242


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="ag", dir="/tmp")  # a unix socket path fits in 108 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def vmm(sockdir):
    started = []

    def start():
        v = VmmProcess(VMM, os.path.join(sockdir, "api.sock"), ["--log-level", "info"],
                       env=vmm_env())
        started.append(v)
        return v

    yield start
    for v in started:
        if v.proc.poll() is None:
            v.stop()
        assert "Sanitizer" not in v.stderr(), v.stderr()


def image(path, mib):
    with open(path, "wb") as f:
        f.truncate(mib * MIB)
    return str(path)


def run(v, cmd):
    """Types cmd at argon-guest's prompt; returns what it printed."""
    v.send(cmd.encode() + b"\r")
    return v.expect(b"argon> ")


def blk_irqs(v):
    """Interrupts argon-guest has taken from its virtio-blk device (virtio-list)."""
    out = run(v, "virtio-list")
    return int(re.search(r"virtio-list: \d+ blk .* irqs (\d+)", out).group(1))


def throttled(v):
    text = v.api.get("/metrics")[1]
    m = re.search(r'^argon_rate_limiter_throttled_total\{[^}]*"block:data"\} (\S+)', text, re.M)
    return float(m.group(1)) if m else 0.0


def boot_with(v, disk):
    v.api.ok("PUT", "/boot-source", {"kernel_image_path": GUEST, "boot_args": "console=ttyS0"})
    # Writeback: the guest's flush is offered (Firecracker's default, Unsafe, has none).
    v.api.ok("PUT", "/drives/data", {"drive_id": "data", "path_on_host": disk,
                                     "is_root_device": False, "is_read_only": False,
                                     "cache_type": "Writeback"})
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.expect(b"argon> ")


def test_patch_drive_swaps_the_image_under_a_running_guest(vmm, tmp_path):
    disk_a = image(tmp_path / "a.img", 8)
    disk_b = image(tmp_path / "b.img", 4)  # smaller: its capacity differs
    r = run_guest(f"blk-write 0 4 {SEED_B}", extra=["--disk", disk_b])  # another VM fills B
    assert r.returncode == 0, r.stdout + r.stderr
    v = vmm()
    boot_with(v, disk_a)
    assert f"blk-write: disk 0 bytes {4 * MIB} flushed" in run(v, f"blk-write 0 4 {SEED_A}")
    irqs = blk_irqs(v)

    assert v.api.patch("/drives/data", {"drive_id": "data", "path_on_host": disk_b}) == (204, "")
    assert v.api.get("/vm/config")[1]["drives"][0]["path_on_host"] == disk_b
    # The configuration-change interrupt reaches the guest (no I/O in between). KVM
    # delivers an irqfd's edge asynchronously, so on a loaded host it may come after
    # the console's next line: look again until a deadline.
    deadline = time.monotonic() + 10
    while blk_irqs(v) <= irqs:
        assert time.monotonic() < deadline, "no configuration-change interrupt"
    # The guest now reads B's data, not what it wrote to A.
    assert f"blk-verify: ok disk 0 bytes {4 * MIB}" in run(v, f"blk-verify 0 4 {SEED_B}")
    assert "blk-verify: ok" not in run(v, f"blk-verify 0 4 {SEED_A}")
    # The guest sees B's size (argon-guest re-reads the capacity on every disk command)
    # and refuses to run past it; the device's own check of the new end is unit-tested.
    assert f"blk-info: capacity_sectors {4 * MIB // 512}" in run(v, "blk-info 0")
    assert "blk-verify: disk 0 has only 4 MiB" in run(v, f"blk-verify 0 8 {SEED_B}")
    # A kept what the guest wrote before the swap, and argon-vmm let go of it.
    with open(disk_a, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert f.read(512) != bytes(512)
    r = run_guest(f"blk-verify 0 4 {SEED_A}", extra=["--disk", disk_a])
    assert "blk-verify: ok" in r.stdout, r.stdout + r.stderr

    # A new image the device refuses (locked by someone else) changes nothing.
    disk_c = image(tmp_path / "c.img", 4)
    with open(disk_c, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_SH)
        status, body = v.api.patch("/drives/data", {"drive_id": "data", "path_on_host": disk_c})
    assert status == 400
    assert fault(body) == (f"Unable to patch the block device: drive 'data': {disk_c}: "
                           "locked by another process (is another VMM using this disk?)")
    assert v.api.get("/vm/config")[1]["drives"][0]["path_on_host"] == disk_b
    assert "blk-verify: ok" in run(v, f"blk-verify 0 4 {SEED_B}")

    # Back to A: the guest finds its own data again.
    assert v.api.patch("/drives/data", {"drive_id": "data", "path_on_host": disk_a}) == (204, "")
    assert "blk-verify: ok" in run(v, f"blk-verify 0 4 {SEED_A}")
    v.send(b"poweroff\r")
    assert v.wait() == 0
    assert f"drive data: now {disk_b}, 8192 sectors" in v.stderr()


def test_patch_drive_rate_limiter_after_boot(vmm, tmp_path):
    disk = image(tmp_path / "d.img", 8)
    v = vmm()
    boot_with(v, disk)
    run(v, "blk-write 0 4 1")
    assert throttled(v) == 0
    # 1 MiB per 100 ms: reading 4 MiB has to wait for the bucket.
    limiter = {"bandwidth": {"size": MIB, "one_time_burst": 0, "refill_time": 100}, "ops": None}
    assert v.api.patch("/drives/data", {"drive_id": "data", "rate_limiter": limiter}) == (204, "")
    drive = v.api.get("/vm/config")[1]["drives"][0]
    assert drive["rate_limiter"]["bandwidth"]["size"] == MIB
    assert drive["path_on_host"] == disk
    assert "blk-verify: ok" in run(v, "blk-verify 0 4 1")
    assert throttled(v) > 0
    v.send(b"poweroff\r")
    assert v.wait() == 0
