"""Full snapshots (issue 9): argon-guest with 2 vCPUs is paused and snapshotted, its
VMM killed, and a new argon-vmm runs it on from the snapshot. The restored guest must
answer at its prompt, compute at the speed it did before (on a PVM host that needs
the VIF page MSR 0x4b564d10 restored: without it the guest runs under KVM's emulator,
~15,000x slower, and this test times out), hold the memory it wrote, and see its clock
go on, never back. Also: PUT /snapshot/load, what the API refuses, and hostile
snapshot files."""
import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib

import pytest

from api_client import Api, VmmProcess, fault, read_console_until
from conftest import GUEST, HOST_CPU_BENCH, VMM, needs, needs_kvm, vmm_env

pytestmark = needs_kvm
MIB = 1 << 20
MEM_MIB = 256
EXIT_NO_FILE, EXIT_SNAPSHOT, EXIT_SIGNAL = 66, 67, 84
# cpu-bench before and after, each run paired with the same code run on the host just
# before it (build/cpu-bench-host): on this shared 2-CPU host a run can be 2x slower
# when another process is scheduled, and ~1.3x for seconds at a time when one runs on
# the sibling hyperthread, so raw figures taken minutes apart are not comparable. The
# speed is the best guest run over the best host run of the same stretch of time (~1.02
# natively, ~15,000 emulated): noise only ever slows a run, so each best converges;
# after must be within 5% of before.
BENCH_ROUNDS = 1000   # ~50 ms natively: short runs are often left alone by the host
MAX_SLOWDOWN = 1.05
BEFORE_RUNS = 7
# Pairs after the restore stop as soon as the bests are within 5%, or after this long:
# on a quiet host three pairs do; while other work holds both CPUs for seconds at a
# time (seen: 20 pairs in 3 s all slowed 1.25x), a longer stretch finds quiet moments.
# An emulated guest (~15,000x) is caught before, by the short run with a 5 s timeout.
AFTER_BUDGET_S = 30
PROMPT = b"argon> "


class Guest:
    """argon-vmm's console: one command at a time, output read up to the next prompt."""

    def __init__(self, args, env=None):
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen([VMM] + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env or vmm_env())
        self.buffer = b""

    def expect(self, marker, timeout=30):
        self.buffer = read_console_until(self.proc.stdout, self.buffer, marker, timeout, 3000,
                                         lambda: "\nstderr:\n" + self.stderr())
        text = self.buffer.decode(errors="replace")
        self.buffer = self.buffer[self.buffer.index(marker) + len(marker):]
        return text

    def run(self, line, timeout=30):
        """Types line and returns its output (up to the next prompt)."""
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self.expect(PROMPT, timeout)

    def stderr(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.stderr.read().decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def field(text, pattern):
    m = re.search(pattern, text)
    assert m, f"no {pattern!r} in:\n{text}"
    return m.groups() if len(m.groups()) > 1 else m.group(1)


def cycles(out):
    return int(field(out, r"cpu-bench: rounds \d+ cycles (\d+)"))


class Speed:
    """cpu-bench in the guest and on the host, alternately; ratio() = best / best."""

    def __init__(self, run_guest):
        self.run_guest, self.guest, self.host = run_guest, [], []

    def pair(self):
        h = subprocess.run([HOST_CPU_BENCH, str(BENCH_ROUNDS)], capture_output=True,
                           text=True, timeout=60)
        assert h.returncode == 0, h.stderr
        self.host.append(cycles(h.stdout))
        self.guest.append(cycles(self.run_guest(f"cpu-bench {BENCH_ROUNDS}")))
        return self

    def ratio(self):
        return min(self.guest) / min(self.host)


def clock(g):
    return tuple(int(x) for x in field(g.run("clock"), r"clock: tsc (\d+) ns (\d+) ticks (\d+)"))


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="as", dir="/tmp")  # short: a socket path fits 108 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def started():
    procs = []
    yield procs
    for p in procs:
        p.kill()


def boot_source(workdir, started, vcpus=2):
    """argon-guest at its prompt, with the API on workdir/api.sock."""
    v = VmmProcess(VMM, os.path.join(workdir, "api.sock"),
                   ["--kernel", GUEST, "--vcpus", str(vcpus), "--memory", str(MEM_MIB)],
                   env=vmm_env())
    started.append(v)
    v.expect(PROMPT)
    return v


def command(v, line, timeout=30):
    v.send(line.encode() + b"\n")
    return v.expect(PROMPT, timeout)


def snapshot(v, workdir):
    """Pauses v and snapshots it; returns (state path, memory path, seconds)."""
    state, mem = os.path.join(workdir, "vm.snap"), os.path.join(workdir, "vm.mem")
    v.api.ok("PATCH", "/vm", {"state": "Paused"})
    t0 = time.monotonic()
    v.api.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state,
                                         "mem_file_path": mem})
    return state, mem, time.monotonic() - t0


def test_a_restored_guest_runs_on_at_native_speed(workdir, started):
    v = boot_source(workdir, started)
    info = command(v, "info")
    assert "cpus_online: 2" in info, info
    mode = field(info, r"mode: (\w+)")
    addr, nbytes, digest = field(command(v, "mem-fill 8 4242"),
                                 r"mem-fill: addr (0x[0-9a-f]+) bytes (\d+) sha256 ([0-9a-f]+)")
    before_clock = clock_of(v)
    speed = Speed(lambda c: command(v, c, 60))
    for _ in range(BEFORE_RUNS):
        speed.pair()
    before = speed.ratio()
    state, mem, create_s = snapshot(v, workdir)
    v.kill()

    # The memory file: the guest's size, sparse, and the bytes the guest wrote.
    st = os.stat(mem)
    assert st.st_size == MEM_MIB * MIB
    assert st.st_blocks * 512 < 64 * MIB, "the memory file is not sparse"
    with open(mem, "rb") as f:
        f.seek(int(addr, 16))
        assert hashlib.sha256(f.read(int(nbytes))).hexdigest() == digest

    g = Guest(["--restore", state, "--mem-file", mem])
    started.append(g)
    g.run("echo restored")
    restore_s = time.monotonic() - g.spawned
    # Native speed first with a short run: emulated, 20 rounds take ~10 s, not 1 ms.
    g.run("cpu-bench 20", timeout=5)
    after_clock = clock(g)
    assert all(a >= b for a, b in zip(after_clock, before_clock)), (before_clock, after_clock)
    assert field(g.run(f"mem-sum {addr} {nbytes}"), r"sha256 ([0-9a-f]+)") == digest
    info = g.run("info")
    assert "cpus_online: 2" in info and f"mode: {mode}" in info, info
    after = Speed(lambda c: g.run(c, 60))
    deadline = time.monotonic() + AFTER_BUDGET_S
    while len(after.guest) < 3 or (after.ratio() / before >= MAX_SLOWDOWN
                                   and time.monotonic() < deadline):
        after.pair()
    ratio = after.ratio() / before
    print(f"snapshot create {create_s * 1000:.1f} ms (state {os.path.getsize(state)} bytes, "
          f"memory {st.st_blocks * 512 / MIB:.1f} MiB on disk of {MEM_MIB}); restore spawn "
          f"-> prompt {restore_s * 1000:.1f} ms; cpu-bench guest/host before {before:.4f}, "
          f"after {after.ratio():.4f} (x{ratio:.3f}, {len(after.guest)} pairs)")
    assert ratio < MAX_SLOWDOWN, (before, after.guest, after.host)
    g.proc.stdin.write(b"poweroff\n")
    g.proc.stdin.flush()
    assert g.proc.wait(timeout=30) == 0
    assert "Sanitizer" not in g.stderr()


def clock_of(v):
    out = command(v, "clock")
    return tuple(int(x) for x in field(out, r"clock: tsc (\d+) ns (\d+) ticks (\d+)"))


def test_snapshot_load_through_the_api_stays_paused_until_resumed(workdir, started):
    v = boot_source(workdir, started, vcpus=1)
    ticks = clock_of(v)[2]
    state, mem, _ = snapshot(v, workdir)
    v.kill()
    w = VmmProcess(VMM, os.path.join(workdir, "b.sock"), env=vmm_env())
    started.append(w)
    body = {"snapshot_path": state, "mem_backend": {"backend_type": "File",
                                                    "backend_path": mem}}
    w.api.ok("PUT", "/snapshot/load", dict(body, resume_vm=False))
    assert w.api.ok("GET", "/")["state"] == "Paused"
    assert w.api.ok("GET", "/machine-config")["vcpu_count"] == 1
    w.send(b"clock\n")  # typed while paused: the guest reads it once resumed
    time.sleep(0.2)
    status, body2 = w.api.put("/snapshot/load", body)
    assert status == 400, body2
    w.api.ok("PATCH", "/vm", {"state": "Resumed"})
    out = w.expect(PROMPT)
    assert int(field(out, r"ticks (\d+)")) >= ticks
    # resume_vm true: running at once.
    x = VmmProcess(VMM, os.path.join(workdir, "c.sock"), env=vmm_env())
    started.append(x)
    x.api.ok("PUT", "/snapshot/load", dict(body, resume_vm=True))
    assert x.api.ok("GET", "/")["state"] == "Running"
    assert "hello" in command(x, "echo hello")


def test_what_the_snapshot_api_refuses(workdir, started, tmp_path):
    state, mem = os.path.join(workdir, "s"), os.path.join(workdir, "m")
    v = boot_source(workdir, started, vcpus=1)
    body = {"snapshot_type": "Full", "snapshot_path": state, "mem_file_path": mem}
    status, b = v.api.put("/snapshot/create", body)
    assert status == 400 and "not paused" in fault(b), b
    v.api.ok("PATCH", "/vm", {"state": "Paused"})
    status, b = v.api.put("/snapshot/create", dict(body, snapshot_type="Diff"))
    assert status == 400 and "only \"Full\"" in fault(b), b
    status, b = v.api.put("/snapshot/create", dict(body, bogus=1))
    assert status == 400 and "snapshot.bogus: unknown field" in fault(b), b
    status, b = v.api.put("/snapshot/create", dict(body, mem_file_path=state))
    assert status == 400 and "the same file" in fault(b), b
    status, b = v.api.put("/snapshot/load", {"snapshot_path": state})
    assert status == 400 and "after starting" in fault(b), b
    assert not os.path.exists(state) and not os.path.exists(mem)
    v.kill()

    # Before boot: nothing to snapshot; a load after a boot source: Firecracker's refusal.
    e = VmmProcess(VMM, os.path.join(workdir, "e.sock"), env=vmm_env())
    started.append(e)
    status, b = e.api.put("/snapshot/create", body)
    assert status == 400 and "before starting" in fault(b), b
    e.api.ok("PUT", "/boot-source", {"kernel_image_path": GUEST})
    status, b = e.api.put("/snapshot/load", {"snapshot_path": GUEST, "mem_file_path": GUEST})
    assert status == 400 and "after configuring boot-specific" in fault(b), b


@pytest.fixture
def good_snapshot(workdir, started):
    v = boot_source(workdir, started, vcpus=1)
    state, mem, _ = snapshot(v, workdir)
    v.kill()
    return state, mem


def restore_fails(state, mem, status, *words):
    r = subprocess.run([VMM, "--restore", state, "--mem-file", mem], capture_output=True,
                       text=True, timeout=30, env=vmm_env(), stdin=subprocess.DEVNULL)
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    assert r.returncode == status, r.stderr
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], r.stderr
    assert "Sanitizer" not in r.stderr


def with_section(data, kind, ident, payload):
    """The state file data with one more section (snapfile.h's layout)."""
    sec = (struct.pack("<H", len(kind)) + kind + struct.pack("<H", len(ident)) + ident
           + struct.pack("<IQI", 1, len(payload), zlib.crc32(payload)) + payload)
    count = struct.unpack_from("<I", data, 16)[0] + 1
    head = data[:16] + struct.pack("<I", count)
    return head + struct.pack("<I", zlib.crc32(head)) + data[24:] + sec


def test_hostile_snapshot_files_are_refused_in_one_line(good_snapshot, workdir):
    state, mem = good_snapshot
    data = open(state, "rb").read()
    bad = os.path.join(workdir, "bad.snap")
    # A flipped byte in the middle: the section's checksum.
    open(bad, "wb").write(data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1])
                          + data[len(data) // 2 + 1:])
    restore_fails(bad, mem, EXIT_SNAPSHOT, bad)
    open(bad, "wb").write(data[:len(data) - 7])  # cut short
    restore_fails(bad, mem, EXIT_SNAPSHOT, bad)
    open(bad, "wb").write(b"not a snapshot at all, just words")
    restore_fails(bad, mem, EXIT_SNAPSHOT, bad)
    # Well formed, but with state this argon would leave out: refused, not half restored.
    open(bad, "wb").write(with_section(data, b"drives", b"rootfs", b"\0" * 16))
    restore_fails(bad, mem, EXIT_SNAPSHOT, bad, "section drives/rootfs: not one this argon")
    open(bad, "wb").write(with_section(data, b"vcpu", b"1", b"\0" * 16))
    restore_fails(bad, mem, EXIT_SNAPSHOT, "section vcpu/1: not one this argon")
    restore_fails(os.path.join(workdir, "missing.snap"), mem, EXIT_NO_FILE, "missing.snap")
    short = os.path.join(workdir, "short.mem")
    with open(short, "wb") as f:
        f.truncate(MEM_MIB * MIB - 4096)
    restore_fails(state, short, EXIT_SNAPSHOT, short, "bytes")
    restore_fails(state, os.path.join(workdir, "none.mem"), EXIT_NO_FILE, "none.mem")


def test_restore_options_go_together():
    r = subprocess.run([VMM, "--restore", "/nonexistent"], capture_output=True, text=True,
                       timeout=30, env=vmm_env())
    assert r.returncode == 64 and "--mem-file" in r.stderr, r.stderr
    r = subprocess.run([VMM, "--restore", "a", "--mem-file", "b", "--kernel", GUEST],
                       capture_output=True, text=True, timeout=30, env=vmm_env())
    assert r.returncode == 64 and "comes from the snapshot" in r.stderr, r.stderr


def test_a_restored_vm_snapshots_again(good_snapshot, workdir, started):
    """Its memory is the first memory file mapped private: the new memory file holds
    that file's data and whatever the guest wrote since, and the old file stays as it
    was (the guest's writes never reach it; writing over it is refused)."""
    state, mem = good_snapshot
    before = hashlib.sha256(open(mem, "rb").read()).hexdigest()
    v = VmmProcess(VMM, os.path.join(workdir, "r.sock"), ["--restore", state, "--mem-file", mem],
                   env=vmm_env())
    started.append(v)
    addr, nbytes, digest = field(command(v, "mem-fill 2 77"),
                                 r"mem-fill: addr (0x[0-9a-f]+) bytes (\d+) sha256 ([0-9a-f]+)")
    v.api.ok("PATCH", "/vm", {"state": "Paused"})
    status, b = v.api.put("/snapshot/create", {"snapshot_path": state + "2", "mem_file_path": mem})
    assert status == 400 and "mapped from that file" in fault(b), b
    v.api.ok("PUT", "/snapshot/create", {"snapshot_path": state + "2", "mem_file_path": mem + "2"})
    v.kill()
    assert hashlib.sha256(open(mem, "rb").read()).hexdigest() == before
    g = Guest(["--restore", state + "2", "--mem-file", mem + "2"])
    started.append(g)
    assert field(g.run(f"mem-sum {addr} {nbytes}"), r"sha256 ([0-9a-f]+)") == digest


@needs("kvm", "root", "tun", "mount-point-root")  # a tap in a netns (ip netns exec)
def test_a_guest_with_a_disk_a_net_and_a_vsock_runs_on_after_a_restore(workdir, started):
    """Issue 9's scenario: 2 vCPUs, a disk, a net (a tap in a namespace made here) and
    a vsock; the guest writes its disk, answers pings and talks over vsock, is paused,
    snapshotted, killed and restored in a new process from the two files alone: the
    disk holds what it wrote, its clock goes on, pings are answered and a new vsock
    stream works (the old ones were reset, virtio 1.2 5.10.6.6)."""
    from test_net import sh, tap
    ns = f"argon-snap-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sh("ip", "link", "set", "lo", "up", ns=ns)
        tap(ns, "argsnap0", address="10.93.0.1/24")
        run_issue_scenario(workdir, started, ns)
    finally:
        for p in started:
            p.kill()
        subprocess.run(["ip", "netns", "del", ns], check=True)


def ping_while_echoing(v, ns):
    v.send(b"net-echo 4 10.93.0.2/24\n")
    v.expect(b"net-echo: ip 10.93.0.2/24")
    r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "2", "-W", "2", "10.93.0.2"],
                       capture_output=True, text=True, timeout=30)
    v.expect(PROMPT, 30)
    assert r.returncode == 0, r.stdout + r.stderr


def run_issue_scenario(workdir, started, ns):
    from test_guest_virtio_vsock import echo, start_server
    disk = os.path.join(workdir, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(16 * MIB)
    uds = os.path.join(workdir, "v.sock")
    prefix = ["ip", "netns", "exec", ns]
    v = VmmProcess(VMM, os.path.join(workdir, "api.sock"),
                   ["--kernel", GUEST, "--vcpus", "2", "--memory", str(MEM_MIB), "--disk", disk,
                    "--net", "tap=argsnap0,mac=AA:FC:00:00:00:09", "--vsock", f"cid=3,uds={uds}"],
                   env=vmm_env(), prefix=prefix)
    started.append(v)
    v.expect(PROMPT)
    assert "flushed" in command(v, "blk-write 0 8 7")
    start_server(uds + "_5000", echo)
    assert "reply before" in command(v, "vsock-connect 5000 before")
    ping_while_echoing(v, ns)
    addr, nbytes, digest = field(command(v, "mem-fill 4 99"),
                                 r"mem-fill: addr (0x[0-9a-f]+) bytes (\d+) sha256 ([0-9a-f]+)")
    before = clock_of(v)
    state, mem, _ = snapshot(v, workdir)
    v.kill()
    os.unlink(uds + "_5000")
    w = VmmProcess(VMM, os.path.join(workdir, "b.sock"), ["--restore", state, "--mem-file", mem],
                   env=vmm_env(), prefix=prefix)
    started.append(w)
    assert "ok disk 0" in command(w, "blk-verify 0 8 7")
    assert field(command(w, f"mem-sum {addr} {nbytes}"), r"sha256 ([0-9a-f]+)") == digest
    after = clock_of(w)
    assert all(a >= b for a, b in zip(after, before)), (before, after)
    start_server(uds + "_5000", echo)
    assert "reply after" in command(w, "vsock-connect 5000 after", 20)
    ping_while_echoing(w, ns)
    assert "cpus_online: 2" in command(w, "info")
    w.send(b"poweroff\n")
    assert w.proc.wait(timeout=30) == 0
    assert "Sanitizer" not in w.stderr()
