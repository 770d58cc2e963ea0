"""PUT /actions {"action_type": "SendCtrlAltDel"}, Firecracker's semantics end to end:
argon-vmm types Ctrl+Alt+Del on the guest's i8042 keyboard and raises IRQ 1;
argon-guest reads the scan codes, says so and reboots, which ends argon-vmm with
status 0. Before InstanceStart the action is refused with Firecracker's words."""
import os
import shutil
import tempfile

import pytest

from api_client import VmmProcess, fault
from conftest import GUEST, VMM, needs_kvm, vmm_env

CAD = {"action_type": "SendCtrlAltDel"}
MARK = b"argon-guest: ctrl-alt-del"


@pytest.fixture
def vmm():
    d = tempfile.mkdtemp(prefix="ag", dir="/tmp")  # a unix socket path fits in 108 bytes
    started = []

    def start(extra=None):
        v = VmmProcess(VMM, os.path.join(d, "api.sock"), extra, env=vmm_env())
        started.append(v)
        return v

    yield start
    for v in started:
        if v.proc.poll() is None:
            v.kill()
        err = v.stderr()
        assert "Sanitizer" not in err, err
    shutil.rmtree(d, ignore_errors=True)


def boot(v, cmd=None):
    args = "console=ttyS0" + (f' argon.cmd="{cmd}"' if cmd else "")
    v.api.ok("PUT", "/boot-source", {"kernel_image_path": GUEST, "boot_args": args})
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})


def test_refused_before_boot(vmm):
    v = vmm()
    status, body = v.api.put("/actions", CAD)
    assert status == 400
    assert fault(body) == "The requested operation is not supported before starting the microVM."
    assert v.api.get("/")[1]["state"] == "Not started"
    rc, err = v.stop()
    assert rc == 84, err


@needs_kvm
def test_guest_at_its_prompt_reboots(vmm):
    v = vmm(["--log-level", "info"])
    boot(v)
    v.expect(b"argon> ")
    assert v.api.put("/actions", CAD) == (204, "")
    v.expect(MARK, timeout=10)
    assert v.wait() == 0
    assert "guest reset through the ACPI reset register" in v.stderr()


@needs_kvm
def test_keys_interrupt_a_running_command(vmm):
    """The keyboard interrupt is taken whatever the guest is doing: here a cpu-bench
    that would run for many seconds."""
    v = vmm()
    boot(v, "cpu-bench 2000000")
    v.expect(b"argon-guest: ready")
    assert v.api.put("/actions", CAD) == (204, "")
    text = v.expect(MARK, timeout=10)
    assert "cpu-bench:" not in text
    assert v.wait() == 0


@needs_kvm
def test_paused_vm_takes_the_keys_on_resume(vmm):
    v = vmm()
    boot(v)
    v.expect(b"argon> ")
    assert v.api.patch("/vm", {"state": "Paused"}) == (204, "")
    assert v.api.put("/actions", CAD) == (204, "")
    with pytest.raises(AssertionError):  # nothing runs while paused
        v.expect(MARK, timeout=0.5)
    assert v.proc.poll() is None
    assert v.api.patch("/vm", {"state": "Resumed"}) == (204, "")
    v.expect(MARK, timeout=10)
    assert v.wait() == 0
