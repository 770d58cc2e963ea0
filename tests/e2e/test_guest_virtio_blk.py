"""argon-guest's virtio-blk driver against argon's device: what the disk says about
itself, read-only disks, discard, and the benchmark's figures and kick economy
(EVENT_IDX: the guest notifies only when the device sleeps)."""
import re
import subprocess

import pytest

from conftest import VMM, needs_kvm, run_guest

MIB = 1 << 20


def vmm_has(option):
    try:
        out = subprocess.run([VMM, "--help"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False
    return option in out.stdout + out.stderr


pytestmark = [needs_kvm, pytest.mark.skipif(not vmm_has("--disk"),
                                            reason="argon-vmm has no --disk option yet")]


def image(tmp_path, size_mib=32):
    path = tmp_path / "disk.img"
    with open(path, "wb") as f:
        f.truncate(size_mib * MIB)
    return str(path)


def test_virtio_list_and_blk_info(tmp_path):
    r = run_guest("virtio-list;blk-info", extra=["--disk", image(tmp_path)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^virtio-list: 0 blk id 2 version 2 base 0xd0000000 gsi \d+ irqs \d+$", r.stdout, re.M)
    info = dict(re.findall(r"^blk-info: (\w+) (\S+)", r.stdout, re.M))
    assert int(info["capacity_bytes"]) == 32 * MIB
    assert info["read_only"] == "0"
    assert info["serial"] != "-"
    features = int(info["features"], 16)
    assert features & (1 << 32) and features & (1 << 29), "VERSION_1 and EVENT_IDX negotiated"


def test_read_only_disk_reports_io_error(tmp_path):
    r = run_guest("blk-info;blk-write 0 1", extra=["--disk", image(tmp_path) + ",ro"])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "blk-info: read_only 1" in r.stdout
    assert "blk-write: io error at sector 0" in r.stdout


def test_discard_then_write_and_verify(tmp_path):
    r = run_guest("blk-write 0 8 5;blk-discard 0 4;blk-write 0 4 6;blk-verify 0 4 6",
                  extra=["--disk", image(tmp_path)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "blk-discard: disk 0 bytes 4194304" in r.stdout
    assert "blk-verify: ok disk 0 bytes 4194304" in r.stdout


def test_bench_prints_every_figure_and_kicks_rarely(tmp_path):
    r = run_guest("blk-bench 0 200", extra=["--disk", image(tmp_path, 64)], timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^blk-bench: randread_qd1_iops (\d+) randread_qd32_iops (\d+) "
                  r"randwrite_qd1_iops (\d+) randwrite_qd32_iops (\d+) "
                  r"seqread_mib_s (\d+) seqwrite_mib_s (\d+)$", r.stdout, re.M)
    assert m, r.stdout
    assert all(int(x) > 0 for x in m.groups()), r.stdout
    k = re.search(r"^blk-bench: requests (\d+) kicks (\d+) interrupts (\d+)$", r.stdout, re.M)
    requests, kicks = int(k.group(1)), int(k.group(2))
    # Batching plus avail_event: far fewer notifications than requests at QD32.
    assert kicks < requests * 0.8, r.stdout
