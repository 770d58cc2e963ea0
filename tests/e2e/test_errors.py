"""Clear errors, nothing half-started: each bad input is one line naming the file or
field and what was expected, with a documented status, and no VM runs."""
import subprocess

import pytest

from conftest import (EXIT_IMAGE, EXIT_NO_FILE, EXIT_NO_KVM, EXIT_USAGE, GUEST, VMM, needs,
                      needs_kvm, run_vmm, vmm_env)


def error_line(r):
    lines = [l for l in r.stderr.splitlines() if " error: " in l]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_no_kernel_given():
    r = run_vmm([])
    assert r.returncode == EXIT_USAGE
    assert "no kernel: give --kernel PATH" in error_line(r)


@needs_kvm
def test_missing_kernel_file(tmp_path):
    r = run_vmm(["--kernel", str(tmp_path / "nope")])
    assert r.returncode == EXIT_NO_FILE, r.stderr
    assert str(tmp_path / "nope") in error_line(r)


@needs_kvm
def test_not_a_kernel(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, I am not a kernel\n" * 100)
    r = run_vmm(["--kernel", str(bogus)])
    assert r.returncode == EXIT_IMAGE, r.stderr
    line = error_line(r)
    assert str(bogus) in line and "not a Linux bzImage or x86-64 ELF kernel" in line


@needs_kvm
@pytest.mark.parametrize("keep", [16, 600, 4096])
def test_truncated_kernel(tmp_path, keep):
    data = open(GUEST, "rb").read()
    cut = tmp_path / "cut"
    cut.write_bytes(data[:keep])
    r = run_vmm(["--kernel", str(cut)])
    assert r.returncode == EXIT_IMAGE, r.stderr
    assert str(cut) in error_line(r)


@needs_kvm
def test_initrd_that_does_not_fit(tmp_path):
    big = tmp_path / "initrd"
    with open(big, "wb") as f:
        f.truncate(200 << 20)
    r = run_vmm(["--kernel", GUEST, "--memory", "64", "--initrd", str(big)])
    assert r.returncode == EXIT_IMAGE, r.stderr
    assert str(big) in error_line(r)


@needs_kvm
def test_missing_initrd(tmp_path):
    r = run_vmm(["--kernel", GUEST, "--initrd", str(tmp_path / "none")])
    assert r.returncode == EXIT_NO_FILE, r.stderr
    assert "none" in error_line(r)


@pytest.mark.parametrize("args,message", [
    (["--memory", "0"], "--memory '0': expected a size from 16 MiB up to the host's memory"),
    (["--memory", "-5"], "--memory '-5': expected a size from 16 MiB"),
    (["--memory", "lots"], "--memory 'lots': expected a size from 16 MiB"),
    (["--memory", "1G5"], "--memory '1G5': expected a size from 16 MiB"),
    (["--vcpus", "0"], "--vcpus '0': expected a whole number from 1 to 32"),
    (["--vcpus", "33"], "--vcpus '33': expected a whole number from 1 to 32"),
    (["--log-level", "loud"], "--log-level 'loud': expected error, warn, info or debug"),
])
def test_bad_values(args, message):
    r = run_vmm(["--kernel", GUEST] + args)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert message in error_line(r)


@needs_kvm
def test_more_memory_than_the_host_has():
    r = run_vmm(["--kernel", GUEST, "--memory", str(1 << 29)])
    assert r.returncode == EXIT_USAGE, r.stderr
    assert "--memory '536870912': 536870912 MiB is more than this host's" in error_line(r)


def test_more_memory_in_a_config_file_than_the_host_has(tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"boot-source": {"kernel_image_path": "%s"}, "machine-config": '
                   '{"vcpu_count": 1, "mem_size_mib": %d}}' % (GUEST, 1 << 29))
    r = run_vmm(["--config", str(cfg)])
    assert r.returncode == EXIT_USAGE, r.stderr
    assert f"{cfg}: machine-config.mem_size_mib: 536870912 MiB is more than this host's" \
        in error_line(r)


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"machine-config": {"vcpu_count": -2}}')
    r = run_vmm(["--config", str(cfg)])
    assert r.returncode == EXIT_USAGE
    assert f"{cfg}: machine-config.vcpu_count: -2 is out of range, expected 1..32" in error_line(r)


@needs_kvm
def test_config_file_boots(tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"boot-source": {"kernel_image_path": "%s", "boot_args": '
                   '"console=ttyS0 argon.cmd=\\"info\\""}, "machine-config": '
                   '{"vcpu_count": 2, "mem_size_mib": 256}}' % GUEST)
    r = run_vmm(["--config", str(cfg)])
    assert r.returncode == 0, r.stderr
    assert "cpus_online: 2" in r.stdout


def _unshare_run(shell):
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
                          capture_output=True, text=True, timeout=30, env=vmm_env())


@needs("root", "mount-point-root")  # to hide /dev/kvm in a mount namespace
def test_no_dev_kvm():
    r = _unshare_run(f"mount -t tmpfs none /dev && exec {VMM} --kernel {GUEST}")
    assert r.returncode == EXIT_NO_KVM, r.stderr
    assert "/dev/kvm: No such file or directory" in error_line(r)


@needs("kvm", "root", "kvm-closed-to-others")  # root, to drop to an unprivileged user
def test_no_permission_on_dev_kvm():
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", VMM,
                        "--kernel", GUEST], capture_output=True, text=True, timeout=30,
                       env=vmm_env())
    assert r.returncode == EXIT_NO_KVM, r.stderr
    assert "/dev/kvm: Permission denied" in error_line(r)
