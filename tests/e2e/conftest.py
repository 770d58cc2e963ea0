"""Shared fixtures for end-to-end tests: they start the real binaries and boot real
guests on /dev/kvm. Every wait has a deadline; nothing sleeps and hopes."""
import os
import subprocess

import pytest

from api_client import read_console_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
# The sanitizer build runs the end-to-end tests too, so a memory error in a real
# boot fails the suite; ARGON_VMM overrides (e.g. the optimized build).
VMM = os.environ.get("ARGON_VMM", os.path.join(BUILD, "asan", "argon-vmm"))
CLI = os.path.join(BUILD, "argon")
GUEST = os.path.join(BUILD, "argon-guest")
GUEST_BZIMAGE = os.path.join(BUILD, "argon-guest.bzImage")
HOST_CPU_BENCH = os.path.join(BUILD, "cpu-bench-host")

HAVE_KVM = os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)

# Exit statuses (src/common/exit_status.h).
EXIT_USAGE, EXIT_IMAGE, EXIT_NO_FILE, EXIT_NO_KVM = 64, 65, 66, 69
EXIT_TRIPLE_FAULT, EXIT_KVM_INTERNAL = 80, 81

needs_kvm = pytest.mark.skipif(not HAVE_KVM, reason="SKIPPED LOUDLY: no usable /dev/kvm on this host")


def pytest_report_header(config):
    if not HAVE_KVM:
        return "WARNING: /dev/kvm is missing or not accessible: every test that boots a guest is SKIPPED"
    pvm = os.path.exists("/sys/module/kvm_pvm")
    return f"/dev/kvm: {'PVM backend' if pvm else 'hardware-virtualized'}; VMM under test: {VMM}"


def vmm_env():
    env = dict(os.environ)
    # Leak checking stays on; guest memory is a big mapping, not a leak.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def run_vmm(args, timeout=60, stdin=subprocess.DEVNULL):
    """Runs argon-vmm to completion; returns CompletedProcess with text output."""
    return subprocess.run([VMM] + args, stdin=stdin, capture_output=True, text=True,
                          timeout=timeout, env=vmm_env())


def run_guest(cmd, vcpus=1, memory=128, kernel=GUEST, extra=None, timeout=60):
    """Boots argon-guest with argon.cmd="cmd" and waits for it to end."""
    args = ["--kernel", kernel, "--vcpus", str(vcpus), "--memory", str(memory),
            "--cmdline", f'console=ttyS0 argon.cmd="{cmd}"'] + (extra or [])
    return run_vmm(args, timeout=timeout)


def parse_fields(text):
    """'key: value' lines from argon-guest's info output."""
    fields = {}
    for line in text.splitlines():
        if ": " in line:
            key, _, value = line.partition(": ")
            fields[key.strip()] = value.strip()
    return fields


class Console:
    """A running VMM whose console we read with deadlines."""

    def __init__(self, args, env=None, prefix=None):
        # prefix runs the VMM under another command (e.g. "ip netns exec NS").
        self.proc = subprocess.Popen((prefix or []) + [VMM] + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env or vmm_env())
        self.buffer = b""

    def expect(self, marker, timeout=30):
        """Reads the console until marker (bytes) appears; returns everything so far."""
        self.buffer = read_console_until(
            self.proc.stdout, self.buffer, marker, timeout, 4000,
            lambda: "\nstderr:\n" + self.proc.stderr.read().decode())
        return self.buffer.decode(errors="replace")

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, timeout=30):
        rc = self.proc.wait(timeout=timeout)
        self.buffer += self.proc.stdout.read()
        return rc

    def stderr(self):
        return self.proc.stderr.read().decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def console():
    started = []

    def start(args, env=None, prefix=None):
        c = Console(args, env, prefix)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
