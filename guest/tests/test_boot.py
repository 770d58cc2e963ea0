"""argon-guest end to end under QEMU/KVM (microvm, PVH entry), plus checks of the
built images. Run by `make guest-check`; skipped where /dev/kvm or QEMU is missing.

QEMU's isa-debug-exit on argon's exit port turns the guest's status byte s into
QEMU's exit status 2*s+1, so statuses are checked as they would be under argon-vmm.
"""
import os
import re
import shutil
import struct
import subprocess
import time

import pytest

BUILD = os.path.join(os.path.dirname(__file__), "..", "..", "build")
ELF = os.path.join(BUILD, "argon-guest")
BZIMAGE = os.path.join(BUILD, "argon-guest.bzImage")
STRIPPED = os.path.join(BUILD, "guest", "argon-guest.stripped")
HOST_BENCH = os.path.join(BUILD, "cpu-bench-host")
PVM_HOST = os.path.exists("/sys/module/kvm_pvm")

needs_kvm = pytest.mark.skipif(
    not (os.access("/dev/kvm", os.R_OK | os.W_OK) and shutil.which("qemu-system-x86_64")),
    reason="needs /dev/kvm and qemu-system-x86_64")


def qemu(cmd=None, smp=1, mem=128, stdin=None, timeout=60, devices=(), cmdline=""):
    """Boots argon-guest; returns (guest status or None, output). devices: extra QEMU
    arguments; cmdline: extra kernel parameters."""
    args = ["qemu-system-x86_64", "-M", "microvm,acpi=on", "-enable-kvm",
            "-cpu", "host,-arch-capabilities", "-m", str(mem), "-smp", str(smp),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0x610,iosize=1",
            "-kernel", ELF] + list(devices)
    if cmd is not None:
        args += ["-append", f'{cmdline} argon.cmd="{cmd}"'.strip()]
    p = subprocess.run(args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=timeout)
    out = p.stdout.decode(errors="replace").replace("\r\n", "\n")
    status = (p.returncode - 1) // 2 if p.returncode % 2 == 1 else None
    return status, out


def info(out):
    return dict(m.groups() for m in re.finditer(r"^(\w+): (\S+)$", out, re.M))


def test_elf_has_pvh_note_and_64bit_entry():
    data = open(ELF, "rb").read()
    assert data[:4] == b"\x7fELF" and data[4] == 2
    entry, phoff = struct.unpack_from("<QQ", data, 24)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    assert entry == 0x100200
    notes = []
    for i in range(phnum):
        ptype, _, off, vaddr, paddr, filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if ptype == 1:
            assert vaddr == paddr and paddr >= 0x100000
        if ptype == 4:
            notes.append(data[off:off + filesz])
    namesz, descsz, ntype = struct.unpack_from("<III", notes[0])
    assert (namesz, ntype, notes[0][12:16]) == (4, 18, b"Xen\0")
    pvh_entry = struct.unpack_from("<Q", notes[0], 16)[0]
    assert 0x100000 <= pvh_entry < 0x100200


def test_bzimage_header():
    bz = open(BZIMAGE, "rb").read()
    elf = open(STRIPPED, "rb").read()
    assert bz[0x202:0x206] == b"HdrS" and struct.unpack_from("<H", bz, 0x1fe)[0] == 0xaa55
    assert struct.unpack_from("<H", bz, 0x206)[0] >= 0x020c
    assert struct.unpack_from("<H", bz, 0x236)[0] & 1          # XLF_KERNEL_64
    assert bz[0x234] == 0                                        # not relocatable
    assert struct.unpack_from("<I", bz, 0x214)[0] == 0x100000    # code32_start
    assert struct.unpack_from("<Q", bz, 0x258)[0] == 0x100000    # pref_address
    pm = (bz[0x1f1] + 1) * 512
    assert 0x202 + bz[0x201] >= 0x264                            # header covers init_size
    poff, plen = struct.unpack_from("<II", bz, 0x248)
    assert bz[pm + poff:pm + poff + plen] == elf                 # uncompressed ELF payload
    assert struct.unpack_from("<I", bz, 0x1f4)[0] * 16 >= len(bz) - pm
    assert struct.unpack_from("<I", bz, 0x260)[0] >= len(bz) - pm
    # The protected-mode part is the image as loaded at 1 MiB: +0x200 is the 64-bit entry.
    phoff = struct.unpack_from("<Q", elf, 32)[0]
    _, _, off, _, paddr, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", elf, phoff)
    assert paddr == 0x100000
    assert bz[pm:pm + filesz] == elf[off:off + filesz]


def test_cpu_bench_host_format():
    out = subprocess.run([HOST_BENCH, "200"], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert re.fullmatch(r"cpu-bench: rounds 200 cycles \d+ ns_per_round \d+\.\d{3}\n", out)
    assert subprocess.run([HOST_BENCH, "x"], stderr=subprocess.DEVNULL).returncode == 2


@needs_kvm
@pytest.mark.parametrize("smp,mem", [(1, 128), (2, 1024), (4, 4096)])
def test_info(smp, mem):
    status, out = qemu("info", smp=smp, mem=mem)
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("argon-guest: booting")
    assert "argon-guest: ready" in lines
    i = info(out)
    assert int(i["cpus_online"]) == smp and int(i["cpus_present"]) == smp
    assert int(i["memory_mib"]) == mem
    assert i["mode"] == ("pvm" if PVM_HOST else "hardware")
    assert int(i["tsc_khz"]) > 100000
    assert re.fullmatch(r"\d+\.\d{3}", i["boot_ms"])


@needs_kvm
@pytest.mark.parametrize("cmd,status,expect", [
    ("echo hello   world", 0, "hello world\n"),
    ("exit 7;echo not reached", 7, None),
    ("no-such-command", 2, "unknown command"),
    ("cpu-bench nonsense", 2, "expected a number"),
    ("echo a;no-such;echo b", 2, "a\n"),
    ("poweroff", 0, None),
])
def test_statuses(cmd, status, expect):
    got, out = qemu(cmd)
    assert got == status, out
    if expect:
        assert expect in out
    assert "not reached" not in out


@needs_kvm
def test_benchmark_formats():
    status, out = qemu("cpu-bench 100;mem-bench 8;exit-bench 20;ipi-bench 20;memmap", smp=2)
    assert status == 0, out
    assert re.search(r"^cpu-bench: rounds 100 cycles \d+ ns_per_round \d+\.\d{3}$", out, re.M)
    assert re.search(r"^mem-bench: touch_mib_s \d+ copy_mib_s \d+$", out, re.M)
    assert re.search(r"^exit-bench: pio_ns \d+\.\d mmio_ns \d+\.\d hypercall_ns \d+\.\d$",
                     out, re.M)
    assert re.search(r"^ipi-bench: cpus 2 roundtrip_ns \d+\.\d$", out, re.M)
    assert re.search(r"^memmap: 0x0{12}-0x\w+ ram$", out, re.M)


@needs_kvm
def test_interactive_prompt():
    # The prompt reads the UART through its IOAPIC-routed interrupt.
    p = subprocess.Popen(
        ["qemu-system-x86_64", "-M", "microvm,acpi=on", "-enable-kvm", "-cpu",
         "host,-arch-capabilities", "-m", "128", "-nodefaults", "-no-user-config",
         "-nographic", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0x610,iosize=1",
         "-kernel", ELF], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    out = b""
    deadline = time.time() + 30
    while b"argon> " not in out and time.time() < deadline:
        out += os.read(p.stdout.fileno(), 4096)
    p.stdin.write(b"echo typed\rexiq\x7ft 5\r")
    p.stdin.flush()
    rest, _ = p.communicate(timeout=30)
    text = (out + rest).decode(errors="replace")
    assert "typed\r\n" in text
    assert p.returncode == 2 * 5 + 1, text


# microvm's virtio-mmio transports: 512 bytes apart from 0xfeb00000, GSI 16 + n with
# ACPI (5 + n without). Devices fill the transports from the last one down; QEMU only
# appends virtio_mmio.device= itself without ACPI, so we name them.
MICROVM_VIRTIO = " ".join(f"virtio_mmio.device=512@{0xfeb00000 + n * 512:#x}:{16 + n}"
                          for n in range(7, 3, -1))


@needs_kvm
def test_virtio_drivers_against_qemu(tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"")
    os.truncate(disk, 16 << 20)
    devices = ["-machine", "ioapic2=off", "-global", "virtio-mmio.force-legacy=false",
               "-drive", f"id=d0,file={disk},format=raw,if=none",
               "-device", "virtio-blk-device,drive=d0,serial=qemu-disk",
               "-device", "virtio-rng-device"]
    status, out = qemu("virtio-list;blk-info;blk-write 0 4 9;blk-verify 0 4 9;rng-read 256",
                       devices=devices, cmdline=MICROVM_VIRTIO)
    assert status == 0, out
    assert "blk-info: serial qemu-disk" in out
    assert "blk-write: disk 0 bytes 4194304 flushed" in out
    assert "blk-verify: ok disk 0 bytes 4194304" in out
    assert re.search(r"^rng-read: requested 256 received 256 distinct \d+ ok$", out, re.M), out
