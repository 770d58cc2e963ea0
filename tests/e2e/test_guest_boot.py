"""argon-guest boots in argon-vmm through both entries, with every vCPU and all its
memory visible to the guest, and reports the machine as it is."""
import os
import re

import pytest

from conftest import GUEST, GUEST_BZIMAGE, needs_kvm, parse_fields, run_guest

pytestmark = needs_kvm


@pytest.mark.parametrize("vcpus", [1, 2, 4, 8])
@pytest.mark.parametrize("memory", [128, 1024, 4096])
def test_info_agrees_with_the_configuration(vcpus, memory):
    r = run_guest("info", vcpus=vcpus, memory=memory)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "argon-guest: ready" in r.stdout
    info = parse_fields(r.stdout)
    assert int(info["cpus_online"]) == vcpus, r.stdout
    assert int(info["cpus_present"]) == vcpus, r.stdout
    assert int(info["memory_mib"]) == memory, r.stdout
    expected_mode = "pvm" if os.path.exists("/sys/module/kvm_pvm") else "hardware"
    assert info["mode"] == expected_mode
    assert int(info["tsc_khz"]) > 100000


@pytest.mark.parametrize("image", [GUEST, GUEST_BZIMAGE], ids=["elf-pvh", "bzimage-64bit"])
def test_both_boot_entries_reach_the_guest(image):
    r = run_guest("info", vcpus=2, kernel=image, extra=["--log-level", "info"])
    assert r.returncode == 0, r.stdout + r.stderr
    entry = "PVH" if image == GUEST else "64-bit Linux"
    assert f"{entry} entry" in r.stderr
    assert int(parse_fields(r.stdout)["cpus_online"]) == 2


def test_timings_cover_every_stage():
    r = run_guest("info", extra=["--timings"])
    assert r.returncode == 0, r.stderr
    m = re.search(r"kvm_ready ([\d.]+) ms, first_instruction ([\d.]+) ms, first_byte ([\d.]+) ms, "
                  r"exit ([\d.]+) ms", r.stderr)
    assert m, r.stderr
    stages = [float(x) for x in m.groups()]
    assert all(s > 0 for s in stages) and stages == sorted(stages), stages
    assert re.search(r"exits:.* IO=\d+", r.stderr), r.stderr
