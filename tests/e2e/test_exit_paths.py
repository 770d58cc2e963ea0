"""How a VM ends: power-off and reboot end argon-vmm with 0, a guest command's status
passes through, and host signals stop it with a documented status."""
import signal
import time

import pytest

from conftest import CLI, needs_kvm, run_guest

pytestmark = needs_kvm


def test_poweroff_ends_with_status_0():
    r = run_guest("echo bye;poweroff")
    assert r.returncode == 0, r.stderr
    assert "bye" in r.stdout


def test_reboot_ends_with_status_0():
    r = run_guest("reboot", extra=["--log-level", "info"])
    assert r.returncode == 0, r.stderr
    assert "reset" in r.stderr


@pytest.mark.parametrize("status", [1, 7, 63])
def test_guest_status_passes_through(status):
    r = run_guest(f"exit {status}")
    assert r.returncode == status, r.stdout + r.stderr


def test_unknown_guest_command_is_status_2():
    r = run_guest("no-such-command")
    assert r.returncode == 2, r.stdout + r.stderr


def test_sigterm_stops_the_vm(console):
    c = console(["--kernel", __import__("conftest").GUEST, "--cmdline", "console=ttyS0"])
    c.expect(b"argon> ")
    c.proc.send_signal(signal.SIGTERM)
    assert c.wait() == 84
    assert "stopped by signal 15" in c.stderr()


def test_argon_run_passes_status_and_output_through():
    import subprocess
    r = subprocess.run([CLI, "run", "--", "echo", "through", "argon;exit", "5"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "through argon" in r.stdout
