"""virtio-blk end to end, as the issue asks: flushed data survives SIGKILL of the VMM,
a read-only disk refuses writes, discard gives blocks back to the host, and a full
host filesystem becomes I/O errors for the guest while the VM lives on."""
import os
import signal
import subprocess

import pytest

from conftest import Console, needs, needs_kvm, run_guest

pytestmark = needs_kvm

MIB = 1 << 20


def image(path, size_mib):
    with open(path, "wb") as f:
        f.truncate(size_mib * MIB)
    return str(path)


def test_flushed_data_survives_sigkill(tmp_path, console):
    disk = image(tmp_path / "d.img", 64)
    c = console(["--disk", disk, "--kernel", __import__("conftest").GUEST,
                 "--cmdline", 'console=ttyS0 argon.cmd="blk-write 0 8 1234;echo done-waiting;'
                              'cpu-bench 100000"'])
    c.expect(b"blk-write: disk 0 bytes 8388608 flushed")
    # The guest saw its flush complete: kill the VMM before it can do anything more.
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait(timeout=10)
    r = run_guest("blk-verify 0 8 1234", extra=["--disk", disk])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "blk-verify: ok" in r.stdout


def test_verify_detects_other_data(tmp_path):
    disk = image(tmp_path / "d.img", 16)
    assert run_guest("blk-write 0 4 1", extra=["--disk", disk]).returncode == 0
    r = run_guest("blk-verify 0 4 2", extra=["--disk", disk])
    assert r.returncode == 1, r.stdout
    assert "blk-verify: ok" not in r.stdout


def test_read_only_disk_refuses_writes(tmp_path):
    disk = image(tmp_path / "ro.img", 16)
    before = open(disk, "rb").read(MIB)
    r = run_guest("blk-info;blk-write 0 1 5;echo still-running", extra=["--disk", disk + ",ro"])
    assert "blk-info: read_only 1" in r.stdout
    assert "blk-write: io error" in r.stdout, r.stdout
    assert "still-running" in r.stdout
    assert r.returncode == 1
    assert open(disk, "rb").read(MIB) == before


def allocated_bytes(path):
    return os.stat(path).st_blocks * 512


def test_discard_gives_blocks_back(tmp_path):
    disk = image(tmp_path / "d.img", 64)
    assert run_guest("blk-write 0 32 9", extra=["--disk", disk]).returncode == 0
    written = allocated_bytes(disk)
    assert written >= 32 * MIB
    r = run_guest("blk-discard 0 32", extra=["--disk", disk])
    assert r.returncode == 0, r.stdout + r.stderr
    assert allocated_bytes(disk) <= written - 30 * MIB, (written, allocated_bytes(disk))


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "argon-test", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


@needs("root")  # to mount a small tmpfs
def test_full_filesystem_is_an_io_error_not_a_crash(small_fs):
    disk = image(small_fs / "d.img", 16)  # 16 MiB sparse image on a 2 MiB filesystem
    r = run_guest("blk-write 0 8 3;echo vm-alive", extra=["--disk", disk])
    assert "blk-write: io error" in r.stdout, r.stdout + r.stderr
    assert "vm-alive" in r.stdout
    assert r.returncode == 1, r.stderr


def test_two_disks_are_independent(tmp_path):
    a, b = image(tmp_path / "a.img", 16), image(tmp_path / "b.img", 16)
    r = run_guest("blk-write 0 2 11;blk-write 1 2 22;blk-verify 0 2 11;blk-verify 1 2 22",
                  extra=["--disk", a, "--disk", b + ",id=data"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("blk-verify: ok") == 2


def test_a_locked_image_is_refused(tmp_path, console):
    disk = image(tmp_path / "d.img", 16)
    first = console(["--disk", disk, "--kernel", __import__("conftest").GUEST,
                     "--cmdline", "console=ttyS0"])
    first.expect(b"argon> ")
    r = run_guest("info", extra=["--disk", disk])
    assert r.returncode == 66, r.stderr
    assert disk in r.stderr and "lock" in r.stderr.lower()


def test_rate_limiter_holds_the_bandwidth(tmp_path, console):
    """A 10 MiB/s bucket (full at start, as Firecracker's) and a 40 MiB write: after the
    first 10 MiB the rest must take 3 s, within 10%."""
    import time
    disk = image(tmp_path / "d.img", 64)
    rate = 10 * MIB
    c = console(["--disk", f"{disk},bw=10M", "--kernel", __import__("conftest").GUEST,
                 "--cmdline", 'console=ttyS0 argon.cmd="blk-write 0 40 5"'])
    c.expect(b"argon-guest: ready")
    start = time.monotonic()
    c.expect(b"blk-write: disk 0 bytes 41943040 flushed", timeout=30)
    elapsed = time.monotonic() - start
    expected = (40 * MIB - rate) / rate
    assert abs(elapsed - expected) <= 0.1 * expected, (elapsed, expected)
    assert c.wait() == 0
