"""argon-guest's virtio-rng and virtio-balloon drivers against argon's devices."""
import re
import subprocess

import pytest

from conftest import VMM, needs_kvm, run_guest

pytestmark = needs_kvm


def vmm_has(option):
    try:
        out = subprocess.run([VMM, "--help"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False
    return option in out.stdout + out.stderr


@pytest.mark.skipif(not vmm_has("--rng"), reason="argon-vmm has no --rng option yet")
def test_rng_read_gets_plausible_bytes():
    r = run_guest("rng-read 4096;rng-read 1", extra=["--rng"])
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^rng-read: requested 4096 received (\d+) distinct (\d+) ok$", r.stdout, re.M)
    assert m and int(m.group(1)) == 4096 and int(m.group(2)) > 200, r.stdout


def test_rng_read_without_device_fails():
    r = run_guest("rng-read")
    assert r.returncode == 1 and "rng-read: no virtio-rng device" in r.stdout, r.stdout


@pytest.mark.skipif(not vmm_has("--balloon"), reason="argon-vmm has no --balloon option yet")
def test_balloon_reaches_the_target_and_answers_stats():
    r = run_guest("balloon;balloon 3;balloon-status", memory=256,
                  extra=["--balloon", "64,stats=1"], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "balloon: target_pages 16384 actual_pages 16384" in r.stdout
    m = re.search(r"^balloon-status: target_pages 16384 actual_pages 16384 held_pages 16384 "
                  r"stats_answered (\d+)$", r.stdout, re.M)
    assert m and int(m.group(1)) >= 1, r.stdout


@pytest.mark.skipif(not vmm_has("--balloon"), reason="argon-vmm has no --balloon option yet")
def test_balloon_bigger_than_free_memory_fails_cleanly():
    r = run_guest("balloon", memory=64, extra=["--balloon", "60"], timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "balloon: cannot reach target_pages 15360: no free pages left" in r.stdout
