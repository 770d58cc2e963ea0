"""A guest that breaks ends argon-vmm with a distinct status and a message naming the
exit and the guest's RIP. The guests are a few instructions, assembled here."""
import os
import re
import subprocess

import pytest

from conftest import EXIT_KVM_INTERNAL, EXIT_TRIPLE_FAULT, needs_kvm, run_vmm

pytestmark = needs_kvm

PVM_HOST = os.path.exists("/sys/module/kvm_pvm")
LOAD_ADDRESS = 0x200000


def tiny_kernel(tmp_path, body):
    """An ELF vmlinux (64-bit Linux entry, no PVH note) whose code is body."""
    src = tmp_path / "tiny.S"
    src.write_text(".code64\n.globl _start\n.text\n_start:\n" + body +
                   "\nmov $0x610, %dx\nmov $0, %al\nout %al, %dx\n1: hlt\njmp 1b\n")
    obj, elf = tmp_path / "tiny.o", tmp_path / "tiny.elf"
    subprocess.run(["as", "-o", str(obj), str(src)], check=True)
    subprocess.run(["ld", f"-Ttext={LOAD_ADDRESS:#x}", "-e", "_start", "-o", str(elf), str(obj)],
                   check=True)
    return str(elf)


def test_triple_fault(tmp_path):
    # The boot IDT is empty: #UD cannot be delivered, nor the #GP and #DF that follow.
    kernel = tiny_kernel(tmp_path, "ud2")
    r = run_vmm(["--kernel", kernel])
    assert r.returncode == EXIT_TRIPLE_FAULT, r.stderr
    m = re.search(r"guest triple fault \(KVM_EXIT_SHUTDOWN\) at RIP 0x([0-9a-f]+)", r.stderr)
    assert m, r.stderr
    assert int(m.group(1), 16) == LOAD_ADDRESS


@pytest.mark.skipif(not PVM_HOST, reason="only KVM's instruction emulator (PVM hosts) lacks popcnt")
def test_emulation_failure_names_the_exit_and_rip(tmp_path):
    kernel = tiny_kernel(tmp_path, "nop\npopcnt %rax, %rax")
    r = run_vmm(["--kernel", kernel])
    assert r.returncode == EXIT_KVM_INTERNAL, r.stderr
    m = re.search(r"KVM internal error \(KVM_EXIT_INTERNAL_ERROR, suberror 1: emulation "
                  r"failure\) at RIP 0x([0-9a-f]+)", r.stderr)
    assert m, r.stderr
    assert int(m.group(1), 16) == LOAD_ADDRESS + 1


def test_a_working_tiny_guest_ends_cleanly(tmp_path):
    r = run_vmm(["--kernel", tiny_kernel(tmp_path, "nop")])
    assert r.returncode == 0, r.stderr
