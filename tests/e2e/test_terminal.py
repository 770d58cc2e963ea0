"""A console on a terminal: argon-vmm (and argon run) put it in raw mode, so every key,
Ctrl-C included, reaches the guest, and give it back exactly as they found it however
they end: the guest powering off, a signal, a configuration or image refused before or
after the terminal went raw. Each runs on a pseudo-terminal of its own."""
import os
import pty
import select
import signal
import termios
import time

import pytest

from conftest import CLI, GUEST, VMM, needs_kvm, vmm_env

pytestmark = needs_kvm


def read_until(fd, marker, timeout=30):
    buf, deadline = b"", time.monotonic() + timeout
    while marker not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {buf[-2000:]!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def drain(fd):
    """Reads what is left so the child never blocks on a full terminal."""
    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 4096):
                return
        except OSError:
            return


class OnPty:
    """argv on a new pseudo-terminal (stdin, stdout and stderr)."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, env)
        self.before = termios.tcgetattr(self.fd)

    def raw_now(self):
        return not (termios.tcgetattr(self.fd)[3] & (termios.ECHO | termios.ICANON | termios.ISIG))

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            drain(self.fd)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
            assert time.monotonic() < deadline, "still running"
            time.sleep(0.01)

    def restored(self):
        return termios.tcgetattr(self.fd) == self.before

    def close(self):
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def on_pty():
    started = []

    def start(argv, env=None):
        p = OnPty(argv, env or vmm_env())
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


PROMPT = [VMM, "--kernel", GUEST, "--cmdline", "console=ttyS0"]


def test_keys_reach_the_guest_and_poweroff_restores(on_pty):
    p = on_pty(PROMPT)
    read_until(p.fd, b"argon> ")
    assert p.raw_now(), "the console is not raw while the guest runs"
    # Ctrl-C and Ctrl-\ are bytes for the guest, not signals for the VMM.
    os.write(p.fd, b"\x03\x1cecho still here\r")
    read_until(p.fd, b"\nstill here")
    os.write(p.fd, b"poweroff\r")
    assert p.wait() == 0
    assert p.restored()


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 84), (signal.SIGHUP, 84),
                                        (signal.SIGQUIT, -signal.SIGQUIT)])
def test_a_signal_restores(on_pty, sig, status):
    p = on_pty(PROMPT)
    read_until(p.fd, b"argon> ")
    assert p.raw_now()
    os.kill(p.pid, sig)
    assert p.wait() == status
    assert p.restored()


def test_a_bad_configuration_leaves_the_terminal_alone(on_pty, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"machine-config": {"vcpu_count": 0}}')
    p = on_pty([VMM, "--config", str(cfg)])
    assert p.wait() == 64
    assert p.restored()


def test_an_image_refused_after_the_terminal_went_raw_restores(on_pty, tmp_path):
    bogus = tmp_path / "vmlinuz"
    bogus.write_bytes(b"not a kernel" * 100)
    p = on_pty([VMM, "--kernel", str(bogus)])
    assert p.wait() == 65
    assert p.restored()


def test_argon_run_killed_at_the_prompt_restores(on_pty):
    env = vmm_env()
    env["ARGON_VMM"] = VMM
    p = on_pty([CLI, "run"], env)
    read_until(p.fd, b"argon> ")
    assert p.raw_now()
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait() == 84
    assert p.restored()


def test_argon_run_ctrl_d_ends_the_session_and_restores(on_pty):
    env = vmm_env()
    env["ARGON_VMM"] = VMM
    p = on_pty([CLI, "run"], env)
    read_until(p.fd, b"argon> ")
    os.write(p.fd, b"exit-code-test\r")
    read_until(p.fd, b"argon> ")
    os.write(p.fd, b"\x04")  # Ctrl-D, typed: the prompt ends with the worst status
    assert p.wait() == 2
    assert p.restored()
