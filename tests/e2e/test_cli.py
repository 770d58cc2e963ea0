"""The argon command for people: --version and help, sizes with suffixes, help that
says ranges and defaults, messages without log stamps unless --verbose, signals that
reach the VM (and no VM left behind), stdin that ends the session when it ends, and
the warning for a kernel that is not PVM-aware on a PVM host."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import CLI, GUEST, GUEST_BZIMAGE, VMM, needs_kvm, vmm_env

PVM_HOST = os.path.exists("/sys/module/kvm_pvm")
WARNING = "this kernel will run under KVM's instruction emulator, thousands of times slower"


def env():
    e = vmm_env()
    e["ARGON_VMM"] = VMM
    return e


def argon(args, stdin=subprocess.DEVNULL, timeout=60, input=None):
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=timeout,
                          env=env(), stdin=None if input is not None else stdin, input=input)


def test_version():
    for args in (["--version"], ["version"]):
        r = argon(args)
        assert r.returncode == 0 and re.fullmatch(r"argon \d+\.\d+\.\d+\n", r.stdout), r


def test_help():
    for args in (["help"], ["--help"]):
        r = argon(args)
        assert r.returncode == 0
        assert "run " in r.stdout and "help " in r.stdout and "version " in r.stdout
    r = argon(["help", "run"])
    assert r.returncode == 0 and r.stdout == argon(["run", "--help"]).stdout
    r = argon(["help", "nope"])
    assert r.returncode == 64 and "unknown command 'nope'" in r.stderr


def test_run_help_says_ranges_and_defaults():
    out = argon(["run", "--help"]).stdout
    assert re.search(r"--vcpus N\s+vCPUs, 1\.\.32 \(default 1\)", out), out
    assert re.search(r"--memory SIZE\s+guest memory, 16 MiB up to the host's RAM \(default "
                     r"128 MiB\)", out), out
    assert "512M, 2G" in out and "Exit status" in out
    vmm_help = subprocess.run([VMM, "--help"], capture_output=True, text=True, env=env()).stdout
    assert "1..32 (default 1)" in vmm_help and "(default 128 MiB)" in vmm_help


def test_unknown_command_and_option_name_what_was_typed():
    r = argon(["runn"])
    assert r.returncode == 64 and r.stderr.startswith("argon: error: unknown command 'runn'")
    r = argon(["run", "--memroy", "1G"])
    assert r.returncode == 64 and "unknown option '--memroy'" in r.stderr, r.stderr


@needs_kvm
@pytest.mark.parametrize("size,mib", [("1G", 1024), ("1g", 1024), ("512M", 512), ("300", 300),
                                      ("65536K", 64)])
def test_memory_takes_a_suffix(size, mib):
    r = argon(["run", "--memory", size, "--", "info"])
    assert r.returncode == 0, r.stderr
    assert f"memory_mib: {mib}" in r.stdout


@needs_kvm
def test_messages_are_for_people_unless_verbose(tmp_path):
    missing = tmp_path / "vmlinuz"
    r = argon(["run", "--kernel", str(missing), "--", "info"])
    assert r.returncode == 66
    assert r.stderr.splitlines()[-1] == \
        f"argon-vmm: error: {missing}: cannot open kernel image: No such file or directory"
    r = argon(["run", "--verbose", "--kernel", str(missing), "--", "info"])
    assert r.returncode == 66
    line = [l for l in r.stderr.splitlines() if "error" in l][-1]
    assert re.match(r"^\[\s*\d+\.\d{6}\] argon-vmm error: \w+: ", line), line


def running(pid):
    """True while pid runs (a zombie waiting for its reaper has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def vmm_child(argon_pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{argon_pid}/task/{argon_pid}/children") as f:
                kids = f.read().split()
        except FileNotFoundError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise AssertionError("argon run started no argon-vmm")


def start_at_prompt():
    """argon run with no command, stdin a pipe we keep open, at the guest's prompt."""
    p = subprocess.Popen([CLI, "run"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env())
    out, deadline = b"", time.monotonic() + 30
    while b"argon> " not in out:
        assert time.monotonic() < deadline, out
        out += os.read(p.stdout.fileno(), 4096)
    return p, vmm_child(p.pid)


def wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while running(pid):
        assert time.monotonic() < deadline, f"argon-vmm {pid} still runs"
        time.sleep(0.01)


@needs_kvm
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_argon_run_stops_its_vm(sig):
    p, vmm = start_at_prompt()
    os.kill(p.pid, sig)
    assert p.wait(timeout=10) == 84
    wait_gone(vmm)
    err = p.stderr.read().decode()
    assert f"stopped by signal {int(sig)}" in err, err
    for f in (p.stdin, p.stdout, p.stderr):
        f.close()


@needs_kvm
def test_argon_run_killed_leaves_no_vm():
    p, vmm = start_at_prompt()
    p.kill()  # SIGKILL: argon cannot forward it; the kernel tells argon-vmm
    p.wait(timeout=10)
    wait_gone(vmm)
    for f in (p.stdin, p.stdout, p.stderr):
        f.close()


@needs_kvm
def test_the_session_ends_when_stdin_does():
    r = argon(["run"], stdin=subprocess.DEVNULL, timeout=30)
    assert r.returncode == 0, r.stderr
    r = argon(["run"], input="echo piped in\nexit 5\n", timeout=30)
    assert r.returncode == 5 and "piped in" in r.stdout, r.stdout + r.stderr
    # The worst status of the commands, as `argon run -- a;b` gives.
    r = argon(["run"], input="no-such-command\necho after it\n", timeout=30)
    assert r.returncode == 2 and "after it" in r.stdout, r.stdout + r.stderr
    r = argon(["run"], input="echo no newline at the end", timeout=30)
    assert r.returncode == 0 and "no newline at the end\n" in r.stdout, r.stdout


@needs_kvm
@pytest.mark.skipif(not PVM_HOST, reason="the warning is for PVM hosts")
def test_a_kernel_that_is_not_pvm_aware_is_warned_about(tmp_path):
    src, obj, elf = tmp_path / "t.S", tmp_path / "t.o", tmp_path / "t.elf"
    src.write_text(".code64\n.globl _start\n.text\n_start:\nmov $0x610, %dx\nmov $0, %al\n"
                   "out %al, %dx\n1: hlt\njmp 1b\n")
    subprocess.run(["as", "-o", str(obj), str(src)], check=True)
    subprocess.run(["ld", "-Ttext=0x200000", "-e", "_start", "-o", str(elf), str(obj)],
                   check=True)
    r = argon(["run", "--kernel", str(elf)])
    assert r.returncode == 0, r.stderr
    assert r.stderr.count(WARNING) == 1, r.stderr
    assert "argon-vmm: warning: the kernel is not PVM-aware" in r.stderr


@needs_kvm
@pytest.mark.parametrize("kernel", [GUEST, GUEST_BZIMAGE])
def test_argon_guest_is_not_warned_about(kernel):
    r = argon(["run", "--vcpus", "2", "--kernel", kernel, "--", "info"])
    assert r.returncode == 0, r.stderr
    assert "PVM-aware" not in r.stderr, r.stderr
    if PVM_HOST:
        assert "mode: pvm" in r.stdout
