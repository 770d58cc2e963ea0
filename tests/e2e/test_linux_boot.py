"""Linux's boot path, checked by Linux: Debian's stock cloud kernel, unmodified, boots
in argon-vmm (under KVM's instruction emulator on PVM hosts, where it cannot get far)
and prints how it parsed argon's command line, e820 map, initrd and firmware tables.
Both VMs run side by side, and each is stopped as soon as every line has appeared."""
import os
import re
import select
import subprocess
import time

import pytest

from conftest import ROOT, Console, needs_kvm

pytestmark = needs_kvm

MEMORY_MIB = 256
# noxsave/clearcpuid keep the emulator away from instructions it lacks (PVM.md).
CMDLINE = ("earlyprintk=ttyS0,115200 console=ttyS0 clearcpuid=xsave,avx,avx2,cx16 "
           "nokaslr")


@pytest.fixture(scope="module")
def debian_kernel():
    r = subprocess.run([os.path.join(ROOT, "scripts", "fetch-debian-kernel.sh")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "could not fetch Debian's cloud kernel:\n" + r.stderr
    path = r.stdout.strip()
    assert os.path.isfile(path), path
    return path


def expected_lines(vcpus):
    low_end = MEMORY_MIB * 1024 * 1024 - 1
    return [
        re.escape("Command line: " + CMDLINE),
        re.escape("BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable"),
        re.escape("BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved"),
        re.escape(f"BIOS-e820: [mem 0x0000000000100000-0x{low_end:016x}] usable"),
        r"RAMDISK: \[mem 0x[0-9a-f]+-0x[0-9a-f]+\]",
        r"ACPI: RSDP 0x00000000000E0000 [0-9A-F]+ \(v02 ",
        r"ACPI: XSDT 0x[0-9A-F]+ ",
        r"ACPI: FACP 0x[0-9A-F]+ ",
        r"ACPI: DSDT 0x[0-9A-F]+ ",
        r"ACPI: APIC 0x[0-9A-F]+ ",
        re.escape(f"smpboot: Allowing {vcpus} CPUs, 0 hotplug CPUs"),
    ]


def read_available(c, timeout):
    """Appends whatever the console has within timeout; False once it has closed."""
    ready, _, _ = select.select([c.proc.stdout], [], [], timeout)
    if not ready:
        return True
    chunk = os.read(c.proc.stdout.fileno(), 65536)
    c.buffer += chunk
    return bool(chunk)


def wait_for_all(runs, deadline_s):
    """Reads every console until each has printed all its lines (then stops that VM),
    its VM ends, or the deadline passes. Returns the runs still missing lines."""
    deadline = time.monotonic() + deadline_s
    pending = dict(runs)
    unfinished = {}
    while pending and time.monotonic() < deadline:
        for vcpus, (c, patterns) in list(pending.items()):
            alive = read_available(c, 0.1)
            text = c.buffer.decode(errors="replace")
            if all(p.search(text) for p in patterns):
                c.kill()
                del pending[vcpus]
            elif not alive:
                unfinished[vcpus] = pending.pop(vcpus)
    unfinished.update(pending)
    return unfinished


def test_stock_debian_kernel_accepts_argons_boot_parameters(debian_kernel, tmp_path, console):
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(os.urandom(300 * 1024))
    runs = {}
    for vcpus in (1, 4):
        c = console(["--kernel", debian_kernel, "--initrd", str(initrd), "--vcpus", str(vcpus),
                     "--memory", str(MEMORY_MIB), "--cmdline", CMDLINE, "--log-level", "info"])
        runs[vcpus] = (c, [re.compile(p) for p in expected_lines(vcpus)])
    missing = wait_for_all(runs, deadline_s=240)
    report = []
    for vcpus, (c, patterns) in missing.items():
        text = c.buffer.decode(errors="replace")
        absent = [p.pattern for p in patterns if not p.search(text)]
        report.append(f"--vcpus {vcpus}: never printed {absent}\nconsole tail:\n{text[-3000:]}")
    assert not missing, "\n".join(report)
    for vcpus, (c, _) in runs.items():
        log = c.stderr()
        m = re.search(r"initrd at 0x([0-9a-f]+)-0x([0-9a-f]+)", log)
        assert m, log
        text = c.buffer.decode(errors="replace")
        start, end = int(m.group(1), 16), int(m.group(2), 16)
        page_end = ((end + 1 + 4095) & ~4095) - 1  # the kernel reserves whole pages
        assert f"RAMDISK: [mem 0x{start:08x}-0x{page_end:08x}]" in text, text[:3000]
        assert re.search(r"compression (lz4|gzip|xz|zstd|lzma|bzip2|lzo)", log), log
        # The stock kernel is not PVM-aware: on a PVM host argon-vmm says so, once.
        warning = "this kernel will run under KVM's instruction emulator"
        assert log.count(warning) == (1 if os.path.exists("/sys/module/kvm_pvm") else 0), log
