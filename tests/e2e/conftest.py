"""Shared fixtures for end-to-end tests: they start the real binaries and boot real
guests on /dev/kvm. Every wait has a deadline; nothing sleeps and hopes."""
import os
import subprocess
import sys

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

# The first word of every command the tests start, for test_deps.py: each must come
# from a package scripts/install-deps.sh installs.
STARTED_PROGRAMS = set()


def _record_program(event, args):
    if event == "subprocess.Popen":
        argv = args[1]
        if isinstance(argv, (list, tuple)) and argv:
            STARTED_PROGRAMS.add(os.fsdecode(argv[0]))
        elif isinstance(argv, (str, bytes)) and argv:
            STARTED_PROGRAMS.add(os.fsdecode(argv).split()[0])


sys.addaudithook(_record_program)
# Modules loaded before any test module: Python's own and pytest's (and whatever a
# .pth file of this machine loads), not something a test asked for.
STARTUP_MODULES = set(sys.modules)


def pytest_configure(config):
    config.addinivalue_line("markers", "after_all_others: runs once every other test has run")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.get_closest_marker("after_all_others") is not None)


# Exit statuses (src/common/exit_status.h).
EXIT_USAGE, EXIT_IMAGE, EXIT_NO_FILE, EXIT_NO_KVM = 64, 65, 66, 69
EXIT_TRIPLE_FAULT, EXIT_KVM_INTERNAL = 80, 81


# Facilities a machine may lack (packages are not among them: ./test.sh installs those,
# and a test that misses one fails). Each check returns None when the facility is
# there, else a few words naming what is missing; a test that needs it is skipped with
# one line, "missing: ...", as its reason. Where the facilities exist the test runs.
def _device(path, what):
    if not os.path.exists(path):
        return f"{path} ({what})"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"read-write access to {path} for uid {os.geteuid()}"
    return None


def _root_is_a_mount_point():
    # A chroot into a plain directory has none; then `ip netns exec` and `unshare
    # --propagation private`, which change /'s propagation, fail with EINVAL.
    try:
        with open("/proc/self/mountinfo") as f:
            if any(line.split()[4] == "/" for line in f):
                return None
    except OSError:
        return "/proc (to tell whether / is a mount point)"
    return ("/ as a mount point (a plain chroot?), which ip netns exec and "
            "unshare --propagation private need")


def _root():
    # A container's root may lack what the tests do as root: mounts and namespaces
    # (CAP_SYS_ADMIN), taps and bridges (CAP_NET_ADMIN).
    if os.geteuid() != 0:
        return f"root (running as uid {os.geteuid()})"
    with open("/proc/self/status") as f:
        effective = int(next(line for line in f if line.startswith("CapEff:")).split()[1], 16)
    lacking = [name for name, bit in (("CAP_SYS_ADMIN", 21), ("CAP_NET_ADMIN", 12))
               if not effective >> bit & 1]
    return f"root's {' and '.join(lacking)} (a restricted container?)" if lacking else None


def _kvm_refuses_others():
    mode = os.stat("/dev/kvm").st_mode if os.path.exists("/dev/kvm") else 0
    if mode & 0o006:
        return f"a /dev/kvm closed to other users (its mode is {mode & 0o777:o})"
    return None


FACILITIES = {
    "kvm": lambda: _device("/dev/kvm", "no KVM on this host"),
    "tun": lambda: _device("/dev/net/tun", "no tun/tap driver"),
    "root": _root,
    "mount-point-root": _root_is_a_mount_point,
    "kvm-closed-to-others": _kvm_refuses_others,
}


def missing(*facilities):
    """One line naming those of these facilities this machine lacks, or None."""
    lacking = [why for why in (FACILITIES[name]() for name in facilities) if why]
    return "missing: " + "; ".join(lacking) if lacking else None


def needs(*facilities):
    """Marks a test (or a module, as pytestmark) that needs these facilities."""
    why = missing(*facilities)
    return pytest.mark.skipif(why is not None, reason=why or "")


def require(*facilities):
    """The same inside a fixture or a test body."""
    why = missing(*facilities)
    if why:
        pytest.skip(why)


needs_kvm = needs("kvm")
HAVE_KVM = missing("kvm") is None


def pytest_report_header(config):
    lines = [f"missing: {why}; the tests that need it are skipped"
             for why in filter(None, (check() for check in FACILITIES.values()))]
    if HAVE_KVM:
        pvm = os.path.exists("/sys/module/kvm_pvm")
        lines.append(f"/dev/kvm: {'PVM backend' if pvm else 'hardware-virtualized'}; "
                     f"VMM under test: {VMM}")
    return lines


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
