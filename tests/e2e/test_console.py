"""The serial console both ways: the guest's prompt answers typed commands, and
'argon run' drives it from a real terminal in raw mode, quits on Ctrl-] and gives
the terminal back as it found it."""
import os
import pty
import select
import subprocess
import termios
import time

from conftest import CLI, GUEST, needs_kvm

pytestmark = needs_kvm


def test_typed_commands_reach_the_guest(console):
    c = console(["--kernel", GUEST, "--vcpus", "2", "--cmdline", "console=ttyS0"])
    c.expect(b"argon> ")
    c.send(b"echo typed by a person\n")
    c.expect(b"typed by a person")
    c.send(b"info\n")
    out = c.expect(b"tsc_khz: ")
    assert "cpus_online: 2" in out
    c.send(b"poweroff\n")
    assert c.wait() == 0


def read_until(fd, marker, timeout):
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {buf[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


def test_argon_run_interactive_restores_the_terminal():
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(CLI, [CLI, "run", "--vcpus", "1"])
    try:
        before = termios.tcgetattr(fd)
        read_until(fd, b"argon> ", 30)
        assert not (termios.tcgetattr(fd)[3] & termios.ECHO), "terminal not in raw mode"
        os.write(fd, b"echo raw mode works\r")
        read_until(fd, b"raw mode works", 30)
        os.write(fd, b"\x1d")  # Ctrl-]
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.WIFEXITED(status), status
        after = termios.tcgetattr(fd)
        assert after[3] == before[3], "local modes not restored"
        assert after[0] == before[0] and after[1] == before[1], "input/output modes not restored"
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
