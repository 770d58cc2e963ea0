#!/usr/bin/env python3
"""argon-vmm against QEMU's microvm, side by side in one run, on the same
guest image (build/argon-guest) with the same vCPUs and memory.

  boot        N boots of each to "argon-guest: ready" (argon.cmd="poweroff")
  memory      RssAnon + RssFile of each VMM at the guest's prompt
  cpu-bench   the guest's cpu-bench under both, and build/cpu-bench-host
  exit-bench  the guest's exit-bench under both
  exits       user-space exits per operation, counted by the kernel's
              kvm:kvm_userspace_exit tracepoint (perf stat)
  devices     (--devices) virtio-blk, virtio-net and virtio-vsock: blk-bench
              against fio on the host, net-bench tx to a UDP socket in a
              private netns, vsock-bench (argon only: QEMU has no user-space
              vsock), with exits per request, frame and MiB
  snapshot    (--only snapshot) full snapshots: spawn -> the guest answers
              after a restore (128 MiB, 1 GiB with every page written), RSS
              right after, create time, cpu-bench after/before; argon against
              QEMU's x-ignore-shared and stream migration (bench/snapshot.py)

Python 3 standard library only; bench/run-all.sh is the entry point.
Figures go to stdout; progress lines start with '#'.
"""

import argparse
import atexit
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import devices  # noqa: E402
import snapshot  # noqa: E402
import vmlib  # noqa: E402
from vmlib import VM, BenchError, PerfEvents, PerfWindow  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

READY = rb"argon-guest: ready"
PROMPT = rb"argon> "
# Result lines, matched only once complete (console output arrives in pieces).
CPU_RX = re.compile(rb"cpu-bench: rounds (\d+) cycles (\d+) ns_per_round ([\d.]+)\r?\n")
EXIT_RX = re.compile(rb"exit-bench: pio_ns (\S+) mmio_ns (\S+) hypercall_ns (\S+)\r?\n")
MEM_RX = re.compile(rb"mem-bench: touch_mib_s (\d+) copy_mib_s (\d+)\r?\n")
TIMINGS_RX = re.compile(rb"timings: kvm_ready ([-\d.]+) ms, first_instruction ([-\d.]+) ms, "
                        rb"first_byte ([-\d.]+) ms, exit ([-\d.]+) ms")
ARGON_EXITS_RX = re.compile(rb"^exits:(.*)$", re.M)

KVM_EXIT_IO, KVM_EXIT_MMIO = 2, 6

# What perf counts. kvm_userspace_exit fires each time KVM_RUN returns to the
# VMM (an exit the VMM handles, or a signal); the filtered copies split out
# port I/O and MMIO. kvm_exit is every exit KVM sees, where the backend fires it.
EVENTS = PerfEvents([
    ("user", "kvm:kvm_userspace_exit", None),
    ("user_io", "kvm:kvm_userspace_exit", f"reason == {KVM_EXIT_IO}"),
    ("user_mmio", "kvm:kvm_userspace_exit", f"reason == {KVM_EXIT_MMIO}"),
    ("kvm_exit", "kvm:kvm_exit", None),
    ("pio_all", "kvm:kvm_pio", None),
])


def log(msg):
    print(f"# {msg}", flush=True)


def ms(ns):
    return ns / 1e6


def fmt_num(v, unit="", nd=None):
    if v is None:
        return "n/a"
    if nd is None:
        nd = 3 if abs(v) < 10 else 2 if abs(v) < 100 else 1
    return f"{v:.{nd}f}{(' ' + unit) if unit else ''}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# ---------------------------------------------------------------- the two VMMs


class Argon:
    name = "argon"

    def __init__(self, ctx):
        self.ctx = ctx

    def argv(self, cmdline, extra=()):
        c = self.ctx
        return [c.argon_vmm, "--kernel", c.guest, "--vcpus", str(c.args.vcpus),
                "--memory", str(c.args.memory), "--cmdline", cmdline, "--timings",
                *extra]


class Qemu:
    name = "qemu-microvm"

    def __init__(self, ctx):
        self.ctx = ctx

    def argv(self, cmdline, extra=(), machine_extra=""):
        c = self.ctx
        m = c.args.memory
        # microvm as lean as the guest allows: no option ROMs, no PIT, PIC or RTC
        # (the guest uses the LAPIC timer and kvmclock), the ISA 16550 for the
        # console, ACPI on because the guest powers off through the FADT's
        # sleep register, the command line passed as is. Guest RAM is a memfd,
        # as in argon, so it counts as RssShmem and not as VMM overhead.
        machine = ("microvm,acpi=on,x-option-roms=off,pit=off,pic=off,rtc=off,"
                   "isa-serial=on,auto-kernel-cmdline=off,memory-backend=ram" + machine_extra)
        return [c.qemu, "-M", machine,
                "-object", f"memory-backend-memfd,id=ram,size={m}M",
                "-enable-kvm", "-cpu", "host,-arch-capabilities",
                "-m", f"{m}M", "-smp", str(c.args.vcpus),
                "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                "-serial", "stdio", "-kernel", c.guest, "-append", cmdline, *extra]


# ---------------------------------------------------------------- context


class Ctx:
    def __init__(self, args):
        self.args = args
        b = os.path.join(REPO, args.build) if not os.path.isabs(args.build) else args.build
        self.argon_vmm = os.path.abspath(args.argon_vmm or os.path.join(b, "argon-vmm"))
        self.guest = os.path.abspath(args.guest or os.path.join(b, "argon-guest"))
        self.cpu_host = os.path.join(b, "cpu-bench-host")
        self.qemu = shutil.which(args.qemu) or args.qemu
        self.perf = shutil.which("perf")
        self.perf_note = None
        self.deadline = time.monotonic() + args.budget
        self.notes = []
        self.commands = []
        self.vmms = [Argon(self), Qemu(self)]
        self.main_parts = True  # boot, exits or session asked for
        self.fio = None
        self.dev_events = EVENTS

    def left(self):
        return self.deadline - time.monotonic()

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)


def check_perf(ctx):
    """perf with the KVM tracepoints, or a reason why not."""
    if not ctx.perf:
        ctx.perf_note = ("perf not found (Debian: apt-get install linux-perf): "
                         "exits counted by argon's --timings only, none for QEMU")
        return
    try:
        r = subprocess.run([ctx.perf, "stat", "-x,", "-e", "kvm:kvm_userspace_exit", "--", "true"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        r = None
        err = str(e)
    if r is None or r.returncode != 0 or "kvm_userspace_exit" not in r.stderr:
        ctx.perf_note = ("perf cannot count kvm:kvm_userspace_exit here "
                         f"({(r.stderr.strip().splitlines() or ['?'])[-1] if r else err}); "
                         "no tracepoint counts")
        ctx.perf = None


# ---------------------------------------------------------------- parsing


def parse_argon_stderr(err):
    out = {}
    m = TIMINGS_RX.search(err)
    if m:
        out["timings"] = dict(zip(("kvm_ready", "first_instruction", "first_byte", "exit"),
                                  (float(x) for x in m.groups())))
    m = None
    for m in ARGON_EXITS_RX.finditer(err):
        pass
    if m:
        counts = {}
        for tok in m.group(1).decode().split():
            k, _, v = tok.partition("=")
            if v.isdigit():
                counts[k] = int(v)
        out["exits"] = counts
    return out


# ---------------------------------------------------------------- boot


def boot_once(ctx, vmm, count=False):
    """One boot with argon.cmd="poweroff". Times in ms from just before spawn."""
    argv = vmm.argv('console=ttyS0 argon.cmd="poweroff"')
    log_r = None
    pass_fds = ()
    if count:
        log_r, log_w = os.pipe()
        argv = vmlib.perf_wrap(ctx.perf, EVENTS, log_w) + argv
        pass_fds = (log_w,)
    vm = VM(argv, pass_fds=pass_fds)
    if count:
        os.close(log_w)
    rec = {}
    try:
        _, t_ready = vm.expect(READY, ctx.args.boot_timeout, "the ready marker")
        rec["ready"] = ms(t_ready - vm.t0_ns)
        rec["first_byte"] = ms(vm.first_byte_ns - vm.t0_ns)

        def soft_kill():
            # under perf, end only the VMM so perf still prints its counts
            for pid in vmlib.children_of(vm.pid) if count else [vm.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        rc = wait_exit_soft(vm, ctx.args.exit_timeout, soft_kill)
        rec["rc"] = rc
        rec["exit"] = ms(vm.exit_ns - vm.t0_ns) if rc is not None and not vm.killed else None
        if vm.killed:
            ctx.note(f"{vmm.name}: the guest did not power off within {ctx.args.exit_timeout} s "
                     "after the ready marker; the VMM was killed")
        rec.update(parse_argon_stderr(bytes(vm.err)))
        if count:
            rec["perf"] = vmlib.parse_perf_csv(vmlib.read_all(log_r), EVENTS.labels)
    finally:
        vm.close()
        if log_r is not None:
            os.close(log_r)
    return rec


def wait_exit_soft(vm, timeout_s, soft_kill):
    """Wait for the VMM to end by itself; on timeout, soft_kill() and drain."""
    vm.killed = False
    deadline = time.monotonic_ns() + int(timeout_s * 1e9)
    while vm._open and time.monotonic_ns() < deadline:
        vm._pump(deadline)
    try:
        vm.rc = vm.proc.wait(timeout=max(0.0, (deadline - time.monotonic_ns()) / 1e9))
        vm.exit_ns = time.monotonic_ns()
    except subprocess.TimeoutExpired:
        vm.killed = True
        soft_kill()
        end = time.monotonic_ns() + int(5e9)
        while vm._open and time.monotonic_ns() < end:
            vm._pump(end)
        try:
            vm.rc = vm.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            vm.rc = None
        vm.exit_ns = time.monotonic_ns()
    return vm.rc


def boot_suite(ctx, res):
    n = ctx.args.runs
    log(f"boot: 1 warm-up + {n} boots of each VMM, alternating; "
        f"{ctx.args.vcpus} vCPU, {ctx.args.memory} MiB")
    for vmm in ctx.vmms:
        res[vmm.name]["boot"] = []
        res[vmm.name]["boot_fail"] = []
        ctx.commands.append((f"boot ({vmm.name})",
                             shlex.join(vmm.argv('console=ttyS0 argon.cmd="poweroff"'))))
        try:
            boot_once(ctx, vmm)
        except BenchError as e:
            log(f"{vmm.name} warm-up failed: {e}")
    for i in range(n):
        order = ctx.vmms if i % 2 == 0 else list(reversed(ctx.vmms))
        for vmm in order:
            if ctx.left() < 60:
                ctx.note(f"boot: stopped after {i} rounds (time budget)")
                return
            try:
                rec = boot_once(ctx, vmm)
                res[vmm.name]["boot"].append(rec)
            except BenchError as e:
                res[vmm.name]["boot_fail"].append(str(e))
                log(f"{vmm.name} boot {i + 1} failed: {e}")
    for vmm in ctx.vmms:
        r = [b["ready"] for b in res[vmm.name]["boot"]]
        if r:
            log(f"{vmm.name}: boot to ready min {min(r):.2f} median {statistics.median(r):.2f} "
                f"max {max(r):.2f} ms over {len(r)} boots")


def boot_exits(ctx, res):
    if not ctx.perf:
        return
    k = ctx.args.count_runs
    log(f"exits: {k} boots of each under perf stat")
    for vmm in ctx.vmms:
        recs = []
        for _ in range(k):
            try:
                recs.append(boot_once(ctx, vmm, count=True))
            except BenchError as e:
                log(f"{vmm.name} counted boot failed: {e}")
        res[vmm.name]["boot_count"] = recs
    ctx.commands.append(("exits per boot (perf wraps either command above)",
                         shlex.join(vmlib.perf_wrap("perf", EVENTS, "FD")) + " <VMM command>"))


# ---------------------------------------------------------------- interactive


UNKNOWN_RX = rb"argon-guest: unknown command[^\n]*\n"


def await_prompt(ctx, vm, name, timeout_s):
    """Consume the next prompt. 'argon> ' ends without a newline; a VMM that
    buffers console output up to a newline holds it back until the next line,
    so after one miss the session stops waiting for it (the result lines
    mark the end of each command instead)."""
    if getattr(vm, "prompt_held", False):
        return
    try:
        vm.expect(PROMPT, timeout_s, "the prompt")
    except BenchError:
        if vm.proc.poll() is not None:
            raise
        vm.prompt_held = True
        ctx.note(f"{name}: the prompt 'argon> ' (no newline) did not appear on stdout within "
                 f"{timeout_s} s; it shows only once a newline follows, so the VMM holds back "
                 "console output until a newline; commands were timed to their result lines")


def run_cmd(ctx, vm, name, line, result_rx, timeout_s, perf_window=None):
    """Type a command; wait for its result line (regex) and then the prompt.
    With perf_window, count from just before typing to the result line."""
    if perf_window:
        perf_window.enable()
    vm.send(line + "\n")
    m, _ = vm.expect(rb"(?:" + result_rx.pattern + rb")|(?:" + UNKNOWN_RX + rb")",
                     timeout_s, f"the result of {line!r}")
    if perf_window:
        perf_window.disable()
    if re.match(UNKNOWN_RX, m.group(0)):
        raise BenchError(f"{name}: {m.group(0).decode(errors='replace').strip()}")
    await_prompt(ctx, vm, name, 2.0)
    return result_rx.match(m.group(0))


def counted(ctx, vm, name, line, result_rx, timeout_s, events=EVENTS):
    """run_cmd inside a perf window; returns (match, counts or None)."""
    if not ctx.perf:
        return run_cmd(ctx, vm, name, line, result_rx, timeout_s), None
    # vmm_pid: the VMM itself when vm.pid is a wrapper (timeout, ip netns exec)
    pw = PerfWindow(ctx.perf, events, getattr(vm, "vmm_pid", vm.pid))
    try:
        m = run_cmd(ctx, vm, name, line, result_rx, timeout_s, pw)
    except BaseException:
        pw.abort()
        raise
    return m, pw.finish()


ECHO_RX = re.compile(rb"\nbench-mark\r?\n")


class Session:
    """One VM per VMM waiting at the guest's prompt."""

    def __init__(self, ctx, vmm, res):
        self.ctx, self.vmm, self.name = ctx, vmm, vmm.name
        self.r = res[vmm.name]
        self.vm = None
        self.dead = False

    def guarded(self, what, fn, *args):
        """Run one step; a failure ends this VM's session, not the benchmark."""
        if self.dead:
            return None
        try:
            return fn(*args)
        except BenchError as e:
            self.r.setdefault("session_err", f"{what}: {e}")
            log(f"{self.name}: {what} failed: {e}")
            self.dead = True
            if self.vm:
                self.vm.close()
            return None

    def start(self):
        a = self.ctx.args
        argv = self.vmm.argv("console=ttyS0")
        self.ctx.commands.append((f"interactive ({self.name})", shlex.join(argv)))
        log(f"{self.name}: boot to the prompt")
        self.vm = VM(argv)
        self.vm.expect(READY, a.boot_timeout, "the ready marker")
        await_prompt(self.ctx, self.vm, self.name, 2.0)
        time.sleep(0.5)  # let the VMM settle (threads, lazy allocations)
        self.r["mem"] = vmlib.proc_status(self.vm.pid)
        self.r["smaps"] = vmlib.smaps_by_file(self.vm.pid)
        self.r["pss"] = vmlib.smaps_rollup(self.vm.pid)
        # Do guest pages land in RssShmem? Touch fresh guest memory and look.
        touch = max(4, min(32, a.memory // 4))
        self.cmd(f"mem-bench {touch}", MEM_RX, 60)
        self.r["mem_after"] = vmlib.proc_status(self.vm.pid)
        self.r["mem_touch_mib"] = touch
        # The interaction itself: typed echo, one output line.
        _, self.r["echo_count"] = counted(self.ctx, self.vm, self.name, "echo bench-mark",
                                          ECHO_RX, 10)

    def cmd(self, line, rx, timeout_s):
        return run_cmd(self.ctx, self.vm, self.name, line, rx, timeout_s)

    def counted(self, line, rx, timeout_s):
        return counted(self.ctx, self.vm, self.name, line, rx, timeout_s)

    def cpu_bench(self):
        m = self.cmd(f"cpu-bench {self.ctx.args.cpu_rounds}", CPU_RX, 120)
        self.r.setdefault("cpu", []).append(tuple(float(x) for x in m.groups()))

    def cpu_counted(self):
        m, self.r["cpu_count"] = self.counted(f"cpu-bench {self.ctx.args.cpu_rounds}", CPU_RX, 120)
        self.r["cpu_counted"] = float(m.group(3))

    def exit_bench(self):
        if self.r.get("exitb_err"):
            return
        try:
            m = self.cmd(f"exit-bench {self.ctx.args.exit_n}", EXIT_RX, 120)
        except BenchError as e:
            if self.vm.proc.poll() is not None:
                raise
            self.r["exitb_err"] = str(e)
            return
        self.r.setdefault("exitb", []).append(
            tuple(None if x == b"n/a" else float(x) for x in m.groups()))

    def exit_counted(self):
        if self.r.get("exitb"):
            _, self.r["exitb_count"] = self.counted(f"exit-bench {self.ctx.args.exit_n}",
                                                    EXIT_RX, 120)

    def stop(self):
        self.vm.send("poweroff\n")
        self.r["session_rc"] = self.vm.wait_exit(self.ctx.args.exit_timeout)
        self.r["session_stderr"] = parse_argon_stderr(bytes(self.vm.err))

    def close(self):
        if self.vm:
            self.vm.close()


def sessions(ctx, res):
    """Both VMs at their prompts at once, each idle while the other works:
    cpu-bench rounds rotate argon, qemu, host so all three see the same
    background load; exit-bench alternates the same way."""
    a = ctx.args
    ss = [Session(ctx, v, res) for v in ctx.vmms]
    try:
        for s in ss:
            s.guarded("boot to the prompt", s.start)
        log(f"cpu-bench: {a.cpu_runs} rounds of argon, qemu and host in rotation")
        host = res["host"]
        for i in range(a.cpu_runs):
            steps = [(s, s.cpu_bench) for s in ss] + [(None, lambda: host_cpu_once(ctx, host))]
            k = i % len(steps)
            for s, fn in steps[k:] + steps[:k]:
                if s is None:
                    fn()
                else:
                    s.guarded("cpu-bench", fn)
        for s in ss:
            s.guarded("cpu-bench under perf", s.cpu_counted)
        log(f"exit-bench: {a.exit_runs} rounds of argon and qemu alternating")
        for i in range(a.exit_runs):
            for s in (ss if i % 2 == 0 else list(reversed(ss))):
                s.guarded("exit-bench", s.exit_bench)
        for s in ss:
            s.guarded("exit-bench under perf", s.exit_counted)
        for s in ss:
            s.guarded("poweroff", s.stop)
    finally:
        for s in ss:
            s.close()


def host_cpu_once(ctx, r):
    if r.get("err"):
        return
    if not os.access(ctx.cpu_host, os.X_OK):
        r["err"] = f"{ctx.cpu_host} missing"
        return
    argv = [ctx.cpu_host, str(ctx.args.cpu_rounds)]
    if not r.get("cpu"):
        ctx.commands.append(("cpu-bench on the host", shlex.join(argv)))
    p = subprocess.run(argv, capture_output=True, timeout=120)
    m = CPU_RX.search(p.stdout)
    if not m:
        r["err"] = f"no cpu-bench line from {ctx.cpu_host}: {p.stdout[-200:]!r} {p.stderr[-200:]!r}"
        return
    r.setdefault("cpu", []).append(tuple(float(x) for x in m.groups()))


# ---------------------------------------------------------------- devices


# Per VMM: host address (on its tap), guest address, tap, guest MAC. Both taps
# live in the run's own network namespace; nothing leaves it.
HOST_NET = {"argon": ("10.231.1.1", "10.231.1.2", "bench-argon", "aa:fc:00:00:01:02"),
            "qemu-microvm": ("10.231.2.1", "10.231.2.2", "bench-qemu", "aa:fc:00:00:02:02")}
UDP_PORT = 9000
VSOCK_PORT = 5000  # vsock-bench writes to it and reads from VSOCK_PORT + 1
NET_HLEN = 14 + 20 + 8  # Ethernet + IPv4 + UDP headers: frame bytes = payload + 42
NET_SIZES = (1472, 18)  # UDP payloads: 1514- and 60-byte frames

# What a device costs the VMM's host side, counted with the exits: system calls,
# context switches, and io_uring submissions and punts to its worker threads
# (a buffered write ext4 cannot do without blocking goes to an io-wq worker).
DEV_EVENTS = PerfEvents(EVENTS.spec + [
    ("syscalls", "raw_syscalls:sys_enter", None),
    ("cswitch", "context-switches", None),
    ("uring_sqe", "io_uring:io_uring_submit_req", None),
    ("uring_punt", "io_uring:io_uring_queue_async_work", None),
])


def dev_events(ctx):
    """DEV_EVENTS if perf takes them here, else the exit events alone."""
    if not ctx.perf:
        return EVENTS
    try:
        r = subprocess.run([ctx.perf, "stat", "-x,"] + DEV_EVENTS.args() + ["--", "true"],
                           capture_output=True, text=True, timeout=20)
        if r.returncode == 0:
            return DEV_EVENTS
        err = (r.stderr.strip().splitlines() or ["?"])[-1]
    except (OSError, subprocess.TimeoutExpired) as e:
        err = str(e)
    ctx.note(f"devices: perf refused the syscall/io_uring events ({err}); exits only")
    return EVENTS


def microvm_virtio_cmdline(n):
    """microvm's virtio-mmio transports sit 512 bytes apart from 0xfeb00000 with
    GSI 16 + i (ACPI on, ioapic2=off), and devices fill them from i = 7 down.
    QEMU names them on the command line only without ACPI, so we do, in the
    form argon-vmm appends for its own devices."""
    return " ".join(f"virtio_mmio.device=512@{0xfeb00000 + i * 512:#x}:{16 + i}"
                    for i in range(7, 7 - n, -1))


class DevSession:
    """One VM with the benchmark devices, waiting at the guest's prompt, run as
    `timeout T [ip netns exec NS] VMM ...`; counted commands get a perf window,
    the guest's per-device interrupt counts (virtio-list) and, for argon, its
    own metrics (GET /metrics on its API socket) around them."""

    def __init__(self, ctx, vmm, argv, api_sock=None):
        self.ctx, self.vmm, self.name, self.argv = ctx, vmm, vmm.name, argv
        self.api_sock = api_sock
        self.vm = None
        self.err = None
        self.r = {}

    def guarded(self, what, fn, *args):
        """A failure ends this VM's part, not the benchmark."""
        if self.err:
            return None
        try:
            return fn(*args)
        except BenchError as e:
            self.err = f"{what}: {e}"
            log(f"{self.name}: {what} failed: {e}")
            self.close()
            return None

    def start(self):
        log(f"{self.name}: boot to the prompt with the devices")
        self.vm = VM(self.argv)
        self.vm.expect(READY, self.ctx.args.boot_timeout, "the ready marker")
        await_prompt(self.ctx, self.vm, self.name, 2.0)
        kids = vmlib.children_of(self.vm.pid)  # timeout's child is the VMM: ip execs it
        self.vm.vmm_pid = kids[0] if kids else self.vm.pid

    def irqs(self):
        p0 = self.vm.pos
        run_cmd(self.ctx, self.vm, self.name, "virtio-list", devices.VLIST_RX, 10)
        return devices.parse_virtio_list(bytes(self.vm.out[p0:self.vm.pos]))

    def measure(self, line, rx, timeout_s, count=False):
        """Runs one command; returns its result match and the VMM's CPU time
        (vCPU threads apart) over it, and with count its exit counts as well."""
        if not count:
            t0, th0 = time.monotonic_ns(), devices.thread_times(self.vm.vmm_pid)
            m = run_cmd(self.ctx, self.vm, self.name, line, rx, timeout_s)
            th1 = devices.thread_times(self.vm.vmm_pid)
            return m, devices.thread_delta(th0, th1, time.monotonic_ns() - t0), None
        irq0 = self.irqs()
        m0 = devices.argon_metrics(self.api_sock) if self.api_sock else None
        t0, th0 = time.monotonic_ns(), devices.thread_times(self.vm.vmm_pid)
        m, perf = counted(self.ctx, self.vm, self.name, line, rx, timeout_s,
                          self.ctx.dev_events)
        th1 = devices.thread_times(self.vm.vmm_pid)
        threads = devices.thread_delta(th0, th1, time.monotonic_ns() - t0)
        m1 = devices.argon_metrics(self.api_sock) if self.api_sock else None
        irq1 = self.irqs()
        return m, threads, {"perf": perf, "metrics": devices.metrics_delta(m0, m1),
                            "irqs": {k: v - irq0.get(k, 0) for k, v in irq1.items()}}

    def blk(self, count=False):
        ms_ = self.ctx.args.blk_ms
        m, th, c = self.measure(f"blk-bench 0 {ms_}", devices.BLK_RX, 6 * ms_ / 1000 + 30,
                                count)
        rec = devices.parse_blk(m)
        rec["threads"] = th
        if c:
            self.r["blk_count"] = (rec, c)
        else:
            self.r.setdefault("blk", []).append(rec)

    def net(self, sink, payload, count=False):
        s = self.ctx.args.net_seconds
        sink.ask("reset")
        m, th, c = self.measure(f"net-bench tx {HOST_NET[self.name][0]} {UDP_PORT} {s} "
                                f"{payload}", devices.NET_TX_RX, s + 20, count)
        rec = devices.parse_net_tx(m)
        rec["threads"] = th
        rec["host"] = settle(sink)
        h = rec["host"]
        dur = (h["last_ns"] - h["first_ns"]) / 1e9
        rec["host_frames_s"] = (h["frames"] - 1) / dur if dur > 0 else None
        rec["host_mib_s"] = (rec["host_frames_s"] * (payload + NET_HLEN) / 2**20
                             if rec["host_frames_s"] else None)
        key = f"net{payload}"
        if c:
            self.r[key + "_count"] = (rec, c)
        else:
            self.r.setdefault(key, []).append(rec)

    def vsock(self, host, count=False):
        s = self.ctx.args.vsock_seconds
        n0 = len(host.got), len(host.sent)
        m, th, c = self.measure(f"vsock-bench {VSOCK_PORT} {s}", devices.VSOCK_RX, 2 * s + 20,
                                count)
        rec = devices.parse_vsock(m)
        rec["threads"] = th
        end = time.monotonic() + 3
        while (len(host.got), len(host.sent)) == n0 and time.monotonic() < end:
            time.sleep(0.05)
        rec["host_got"] = host.got[-1] if len(host.got) > n0[0] else None
        rec["host_sent"] = host.sent[-1] if len(host.sent) > n0[1] else None
        if c:
            self.r["vsock_count"] = (rec, c)
        else:
            self.r.setdefault("vsock", []).append(rec)

    def stop(self):
        self.vm.send("poweroff\n")
        self.r["rc"] = self.vm.wait_exit(self.ctx.args.exit_timeout)
        self.r["stderr"] = parse_argon_stderr(bytes(self.vm.err))

    def close(self):
        if self.vm:
            self.vm.close()
            self.vm = None

    def fresh(self, image):
        """A new VM on a new image: where the host puts a VM's memory and an
        image's page cache moves copy rates by 15-20% on a nested host and stays
        for the VM's life, so each round draws anew rather than one draw deciding
        every round."""
        self.close()
        devices.make_image(image, self.ctx.args.disk_mib)
        self.start()


def settle(sink, quiet_s=0.3, limit_s=5.0):
    """The sink's counts once they stop growing (it may still be draining)."""
    end = time.monotonic() + limit_s
    last = sink.ask()
    while time.monotonic() < end:
        time.sleep(quiet_s)
        now = sink.ask()
        if now["frames"] == last["frames"]:
            return now
        last = now
    return last


def fio_once(ctx, D):
    if D.get("fio_err"):
        return
    argv = devices.fio_argv(ctx.fio, D["fio_image"], ctx.args.disk_mib,
                            max(1, round(ctx.args.blk_ms / 1000)))
    if not D.get("fio"):
        ctx.commands.append(("fio on the host, the same patterns on a third image made alike",
                             shlex.join(argv)))
    try:
        D.setdefault("fio", []).append(devices.fio_run(argv, 60 + 6 * ctx.args.blk_ms / 1000))
    except BenchError as e:
        D["fio_err"] = str(e)
        log(f"fio failed: {e}")


def rotate(steps, i):
    k = i % len(steps)
    return steps[k:] + steps[:k]


def device_sessions(ctx, D, scratch, netns):
    """The two VMs' command lines: the same disk contents, the same guest
    commands; argon also gets its hybrid vsock and API socket."""
    a = ctx.args
    wrap = ["timeout", "-k", "5", str(int(ctx.left()) + 30)] + (netns.prefix() if netns else [])
    out = []
    for vmm in ctx.vmms:
        img = scratch.file(f"{vmm.name}.img")
        hip, gip, tap, mac = HOST_NET[vmm.name]
        ip = f" argon.ip={gip}/24" if netns else ""
        if isinstance(vmm, Argon):
            api = scratch.file("api.sock")
            extra = ["--disk", img, "--vsock", f"cid=3,uds={D['uds']}", "--api-sock", api]
            if netns:
                extra += ["--net", f"tap={tap},mac={mac}"]
            argv = wrap + vmm.argv("console=ttyS0" + ip, extra)
        else:
            api = None
            # cache=writeback,aio=io_uring is argon's backend: io_uring on the raw
            # file through the page cache, flushes as fdatasync. force-legacy=false:
            # virtio 1.x transports, as argon's. vhost=off: user-space virtio-net.
            # debug-threads=on names the vCPU threads ("CPU 0/KVM") so their CPU
            # time can be told from the device side's; it changes nothing else.
            extra = ["-name", "argon-bench,debug-threads=on",
                     "-global", "virtio-mmio.force-legacy=false",
                     "-drive", f"id=d0,file={img},format=raw,if=none,cache=writeback,aio=io_uring",
                     "-device", "virtio-blk-device,drive=d0"]
            if netns:
                extra += ["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no,vhost=off",
                          "-device", f"virtio-net-device,netdev=n0,mac={mac}"]
            cmdline = f"console=ttyS0 {microvm_virtio_cmdline(2 if netns else 1)}{ip}"
            argv = wrap + vmm.argv(cmdline, extra, machine_extra=",ioapic2=off")
        ctx.commands.append((f"devices ({vmm.name})", shlex.join(argv)))
        out.append(DevSession(ctx, vmm, argv, api))
    return out


def devices_suite(ctx, res):
    """Block, net and vsock figures of argon's virtio-mmio devices against
    QEMU microvm's, with both VMs at their prompts and the runs alternating
    (blk-bench rotates with fio on the host), then one run of each under perf."""
    a = ctx.args
    D = res["devices"] = {"setup": []}
    scratch = devices.Scratch()
    sessions, sink = [], None
    try:
        # One image each for argon, QEMU and fio, alike: a writer's dirty pages
        # and their writeback stay with its own file and slow no one else's.
        log(f"devices: three {a.disk_mib} MiB images of random data in {scratch.path}, "
            "synced and in the page cache")
        for who in [v.name for v in ctx.vmms] + ["fio"]:
            devices.make_image(scratch.file(f"{who}.img"), a.disk_mib)
        D["fio_image"] = scratch.file("fio.img")
        ctx.fio = shutil.which("fio")
        if not ctx.fio:
            D["fio_err"] = "fio not found (Debian: apt-get install fio)"
        netns = None
        if os.geteuid() != 0 or not shutil.which("ip"):
            D["net_err"] = "needs root and iproute2 to make a network namespace and taps"
        else:
            netns = devices.Netns()
            for hip, _, tap, _ in HOST_NET.values():
                netns.add_tap(tap, f"{hip}/24")
            sink = devices.UdpSink(netns, UDP_PORT, [v[2] for v in HOST_NET.values()])
            D["setup"].append(f"netns {netns.name}: taps " + ", ".join(
                f"{t} {h}/24 (guest {g})" for h, g, t, _ in HOST_NET.values())
                + f"; UDP sink on port {UDP_PORT} inside it")
            ctx.commands.append(("the network namespace and its taps", "; ".join(
                [f"ip netns add {netns.name}"] + [
                    f"ip -n {netns.name} tuntap add dev {t} mode tap; "
                    f"ip -n {netns.name} addr add {h}/24 dev {t}; "
                    f"ip -n {netns.name} link set {t} up" for h, _, t, _ in HOST_NET.values()])
                + f"; ip netns exec {netns.name} python3 -c <UDP sink on 0.0.0.0:{UDP_PORT}>"))
        ctx.commands.append(("typed at each guest's prompt", "; ".join(
            [f"blk-bench 0 {a.blk_ms}"]
            + ([f"net-bench tx HOST_IP {UDP_PORT} {a.net_seconds} {p}" for p in NET_SIZES]
               if netns else [])
            + [f"vsock-bench {VSOCK_PORT} {a.vsock_seconds} (argon)",
               "virtio-list (before and after each run under perf)"])))
        D["uds"] = scratch.file("v.sock")
        vhost = devices.VsockHost(D["uds"], VSOCK_PORT)
        ctx.dev_events = dev_events(ctx)
        if ctx.perf:
            ctx.commands.append(("counts during one device command (like the line below)",
                                 shlex.join(["perf", "stat", "-x,", "-p", "<VMM pid>", "-D", "-1",
                                             "--control", "fd:<ctl>,<ack>"]
                                            + ctx.dev_events.args())))
        sessions = device_sessions(ctx, D, scratch, netns)
        for s in sessions:
            s.guarded("boot to the prompt", s.start)
        sa = sessions[0]

        def budget(need_s, what):
            if ctx.left() < need_s:
                ctx.note(f"devices: {what} skipped or cut short (time budget)")
                return False
            return True

        blk_s = 6 * a.blk_ms / 1000 + 5  # with a fresh image and boot
        log(f"blk-bench 0 {a.blk_ms}: {a.dev_runs} rounds of argon, qemu and host fio in rotation")
        for i in range(a.dev_runs):
            if not budget(3 * blk_s + 30, "blk rounds"):
                break
            steps = [(s, s.blk) for s in sessions] + [(None, lambda: fio_once(ctx, D))]
            for s, fn in rotate(steps, i):
                if s is None:
                    devices.make_image(D["fio_image"], a.disk_mib)
                else:
                    s.guarded("boot a fresh VM", s.fresh, scratch.file(f"{s.name}.img"))
                # Each starts with no dirty pages: the flusher writing back an
                # earlier round's pages (30 s old) would land in someone's phase.
                os.sync()
                fn() if s is None else s.guarded("blk-bench", fn)
        for s in sessions:
            if ctx.perf and budget(blk_s + 30, "blk-bench under perf"):
                os.sync()
                s.guarded("blk-bench under perf", s.blk, True)

        if netns:
            for payload in NET_SIZES:
                log(f"net-bench tx, {payload + NET_HLEN}-byte frames, {a.net_seconds} s: "
                    f"{a.dev_runs} rounds of argon and qemu alternating")
                for i in range(a.dev_runs):
                    if not budget(2 * a.net_seconds + 30, "net rounds"):
                        break
                    for s in rotate(sessions, i):
                        s.guarded("net-bench", s.net, sink, payload)
                for s in sessions:
                    if ctx.perf and budget(a.net_seconds + 30, "net-bench under perf"):
                        s.guarded("net-bench under perf", s.net, sink, payload, True)

        log(f"vsock-bench {VSOCK_PORT} {a.vsock_seconds}: {a.dev_runs} runs (argon only)")
        for i in range(a.dev_runs):
            if budget(2 * a.vsock_seconds + 30, "vsock rounds"):
                sa.guarded("vsock-bench", sa.vsock, vhost)
        if ctx.perf and budget(2 * a.vsock_seconds + 30, "vsock-bench under perf"):
            sa.guarded("vsock-bench under perf", sa.vsock, vhost, True)
        D["vsock_host_errors"] = list(vhost.errors)

        for s in sessions:
            s.guarded("poweroff", s.stop)
    finally:
        for s in sessions:
            s.close()
            D[s.name] = s.r
            if s.err:
                D[s.name]["err"] = s.err
        if sink:
            sink.close()
        vmlib.run_cleanups()
        D["leftovers"] = leftovers(scratch)


def leftovers(scratch):
    """What this run left behind after its cleanup: should be nothing."""
    left = []
    if os.path.exists(scratch.path):
        left.append(scratch.path)
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout \
        if shutil.which("ip") else ""
    if devices.PREFIX in ns:
        left.append(f"netns {devices.PREFIX}")
    left += [f"pid {p.pid}" for p in vmlib.LIVE if p.poll() is None]
    return left


# ---------------------------------------------------------------- report


class Table:
    HEAD = ("row", "argon", "qemu-microvm", "ratio(argon/qemu)", "exits/op argon",
            "exits/op qemu", "goal")

    def __init__(self):
        self.rows = []

    def add(self, name, a, q, unit="", rat=True, ea="", eq="", goal="", nd=None):
        """a, q: numbers (None -> n/a) or strings shown as they are."""
        def cell(v):
            return v if isinstance(v, str) else fmt_num(v, unit, nd)
        rv = ratio(a, q) if rat and not isinstance(a, str) and not isinstance(q, str) else None
        self.rows.append((name, cell(a), cell(q), fmt_num(rv, nd=3) if rv is not None else "-",
                          str(ea), str(eq), goal))

    def section(self, title):
        self.rows.append(title)

    def render(self):
        rows = [r for r in self.rows if not isinstance(r, str)]
        w = [max(len(str(r[i])) for r in rows + [self.HEAD]) for i in range(len(self.HEAD))]
        lines = []
        for r in [self.HEAD] + self.rows:
            if isinstance(r, str):
                lines.append(f"-- {r}")
                continue
            lines.append("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
        return "\n".join(lines)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def user_exits(counts):
    return counts.get("user") if counts else None


def exits_str(counts, per=1.0, nd=0):
    """'52 (IO 50, MMIO 0)' from perf counts, divided by per."""
    if not counts or counts.get("user") is None:
        return "n/a"
    f = (lambda v: f"{v / per:.{nd}f}") if per != 1.0 or nd else (lambda v: str(v))
    return f"{f(counts['user'])} (IO {f(counts.get('user_io') or 0)}, MMIO {f(counts.get('user_mmio') or 0)})"


def med_counts(recs):
    """Median of each perf label over counted boots."""
    out = {}
    for lab in EVENTS.labels:
        vals = [r["perf"].get(lab) for r in recs if r.get("perf")]
        vals = [v for v in vals if v is not None]
        out[lab] = int(statistics.median(vals)) if vals else None
    return out


def report(ctx, res):
    if ctx.main_parts:
        main_report(ctx, res)
    if "devices" in res:
        device_report(ctx, res)
    snapshot.report(ctx, res)
    closing(ctx, res)


def main_report(ctx, res):
    a = ctx.args
    t = Table()
    A, Q = res["argon"], res["qemu-microvm"]

    # boot
    t.section(f"boot: {a.vcpus} vCPU, {a.memory} MiB, {a.runs} boots each, ms from spawn; "
              f"exits/op = user-space exits from spawn to poweroff (median of {a.count_runs})")
    ba, bq = A.get("boot", []), Q.get("boot", [])
    ca = med_counts(A.get("boot_count", [])) if A.get("boot_count") else None
    cq = med_counts(Q.get("boot_count", [])) if Q.get("boot_count") else None
    ra, rq = [b["ready"] for b in ba], [b["ready"] for b in bq]
    goal = ""
    if ra:
        goal = "argon median < 10 ms: " + ("MET" if statistics.median(ra) < 10 else "NOT MET")
    t.add("boot to ready (median)", med(ra), med(rq), "ms",
          ea=exits_str(ca) if ca else "n/a", eq=exits_str(cq) if cq else "n/a", goal=goal)
    t.add("boot to ready (min)", min(ra) if ra else None, min(rq) if rq else None, "ms")
    t.add("boot to ready (max)", max(ra) if ra else None, max(rq) if rq else None, "ms")
    t.add("first console byte (median)", med([b["first_byte"] for b in ba]),
          med([b["first_byte"] for b in bq]), "ms")
    t.add("poweroff, VMM exited (median)", med([b["exit"] for b in ba]),
          med([b["exit"] for b in bq]), "ms")
    for k in ("kvm_ready", "first_instruction", "first_byte", "exit"):
        v = med([b["timings"][k] for b in ba if "timings" in b and b["timings"][k] >= 0])
        t.add(f"  argon --timings {k}", v, "-", "ms", rat=False)

    # memory
    t.section("memory at the guest's prompt (MiB; guest RAM excluded)")
    ma, mq = A.get("mem"), Q.get("mem")

    def mib(st, *keys):
        return sum(st[k] for k in keys) / 1024 if st else None
    ov_a, ov_q = mib(ma, "RssAnon", "RssFile"), mib(mq, "RssAnon", "RssFile")
    t.add("overhead RssAnon+RssFile", ov_a, ov_q, "MiB",
          goal=("argon < 2 MiB: " + ("MET" if ov_a < 2 else "NOT MET")) if ov_a is not None else "")
    t.add("  RssAnon", mib(ma, "RssAnon"), mib(mq, "RssAnon"), "MiB")
    t.add("  RssFile", mib(ma, "RssFile"), mib(mq, "RssFile"), "MiB")
    pa, pq = A.get("pss"), Q.get("pss")
    t.add("  Pss_Anon+Pss_File (shared pages split)", mib(pa, "Pss_Anon", "Pss_File"),
          mib(pq, "Pss_Anon", "Pss_File"), "MiB")
    t.add("  RssShmem (guest RAM touched)", mib(ma, "RssShmem"), mib(mq, "RssShmem"), "MiB",
          rat=False)
    t.add("peak VmHWM (includes guest RAM)", mib(ma, "VmHWM"), mib(mq, "VmHWM"), "MiB")
    t.add("peak VmHWM - RssShmem", (ma["VmHWM"] - ma["RssShmem"]) / 1024 if ma else None,
          (mq["VmHWM"] - mq["RssShmem"]) / 1024 if mq else None, "MiB")

    # cpu-bench
    host = res.get("host", {}).get("cpu", [])
    hbest = min(x[2] for x in host) if host else None
    cpa = [x[2] for x in A.get("cpu", [])]
    cpq = [x[2] for x in Q.get("cpu", [])]
    # Guest against host in TSC cycles per round: the guest's ns come from the TSC
    # frequency KVM reports, the host's from its clock source, and a miscalibrated
    # TSC would pass for overhead. The TSC ticks at one rate inside and out.
    cyc = lambda rs: min(x[1] / x[0] for x in rs) if rs else None  # noqa: E731
    hcyc, cya, cyq = cyc(host), cyc(A.get("cpu")), cyc(Q.get("cpu"))
    t.section(f"cpu-bench {a.cpu_rounds}: {a.cpu_runs} runs each (argon, qemu, host in "
              f"rotation), ns per SHA-256 round over 4 KiB; exits/op = user-space exits "
              f"per command, typed line and result line included")
    ga = ratio(cya, hcyc) if cya and hcyc else None
    t.add("cpu-bench ns/round (best)", min(cpa) if cpa else None, min(cpq) if cpq else None, "ns",
          ea=exits_str(A.get("cpu_count")), eq=exits_str(Q.get("cpu_count")),
          goal=(f"argon within 1% of host: {'MET' if ga <= 1.01 else 'NOT MET'} "
                f"({(ga - 1) * 100:+.2f}%)") if ga else "")
    t.add("cpu-bench ns/round (median)", med(cpa), med(cpq), "ns")
    t.add("  host (build/cpu-bench-host), best", hbest, "-", "ns", rat=False)
    t.add("  best / host best, in TSC cycles per round", ratio(cya, hcyc) if cya else None,
          ratio(cyq, hcyc) if cyq else None, "", rat=False, nd=4)

    # exit-bench
    t.section(f"exit-bench {a.exit_n}: ns per exit (median of {a.exit_runs}); "
              f"exits/op = user-space exits per probe")
    xa, xq = A.get("exitb", []), Q.get("exitb", [])
    n = float(a.exit_n)
    xca, xcq = A.get("exitb_count"), Q.get("exitb_count")

    def per(c, key):
        if not c or c.get(key) is None:
            return "n/a"
        return f"{c[key] / n:.3f}"
    for i, (name, key) in enumerate((("pio_ns", "user_io"), ("mmio_ns", "user_mmio"),
                                     ("hypercall_ns", None))):
        ea = per(xca, key) if key else "-"
        eq = per(xcq, key) if key else "-"
        t.add(f"exit-bench {name}", med([x[i] for x in xa]), med([x[i] for x in xq]), "ns",
              ea=ea, eq=eq)
    if xca or xcq:
        t.add("  exit-bench: all user exits per command", "-", "-", rat=False,
              ea=exits_str(xca), eq=exits_str(xcq))
    print()
    print("=" * 100)
    print(t.render())
    print("=" * 100)
    details(ctx, res)


def details(ctx, res):
    a = ctx.args
    A, Q = res["argon"], res["qemu-microvm"]
    print("\nDetails (perf labels: user = kvm:kvm_userspace_exit, user_io/user_mmio = the same "
          "filtered on KVM_EXIT_IO/MMIO, kvm_exit = kvm:kvm_exit, pio_all = kvm:kvm_pio, every "
          "port access KVM saw, including those it handled or coalesced in the kernel)")
    for name, r in (("argon", A), ("qemu-microvm", Q)):
        b = [x["ready"] for x in r.get("boot", [])]
        if b:
            print(f"  {name}: boot to ready, all runs (ms): " + " ".join(f"{x:.2f}" for x in b))
        if r.get("boot_fail"):
            print(f"  {name}: {len(r['boot_fail'])} failed boots; first: {r['boot_fail'][0]}")
        for rec in r.get("boot_count", []):
            line = f"  {name}: counted boot: perf " + (
                ", ".join(f"{k}={v}" for k, v in rec.get("perf", {}).items()))
            if "exits" in rec:
                line += "; argon's own count: " + " ".join(f"{k}={v}" for k, v in rec["exits"].items())
            print(line)
        if r.get("mem"):
            m0, m1 = r["mem"], r.get("mem_after")
            print(f"  {name}: /proc status at prompt (kB): " +
                  " ".join(f"{k}={v}" for k, v in m0.items()))
            if r.get("pss"):
                print(f"  {name}: smaps_rollup (kB): " +
                      " ".join(f"{k}={v}" for k, v in r["pss"].items()))
            if r.get("smaps"):
                print(f"  {name}: resident kB by mapping (memfd = guest RAM): " +
                      ", ".join(f"{k} {v}" for k, v in r["smaps"][:10]))
            if m1 and r.get("mem_touch_mib"):
                ds = (m1["RssShmem"] - m0["RssShmem"]) / 1024
                dan = (m1["RssAnon"] - m0["RssAnon"]) / 1024
                ok = ds >= 0.9 * r["mem_touch_mib"] and dan < 0.25 * r["mem_touch_mib"]
                print(f"  {name}: after the guest touched {r['mem_touch_mib']} MiB of fresh memory "
                      f"(mem-bench): RssShmem {ds:+.1f} MiB, RssAnon {dan:+.1f} MiB -> guest RAM "
                      + ("is in RssShmem, excluded from the overhead: verified" if ok else
                         "NOT in RssShmem: the overhead figure includes guest pages"))
        if r.get("cpu"):
            print(f"  {name}: cpu-bench ns/round: " + " ".join(f"{x[2]:.3f}" for x in r["cpu"]) +
                  "; cycles/round: " + " ".join(f"{x[1] / x[0]:.0f}" for x in r["cpu"]))
        if r.get("cpu_count"):
            print(f"  {name}: one cpu-bench under perf: {r.get('cpu_counted')} ns/round, "
                  f"exits {r['cpu_count']}")
        if r.get("echo_count"):
            print(f"  {name}: 'echo bench-mark' (the interaction alone), exits {r['echo_count']}")
        if r.get("exitb"):
            print(f"  {name}: exit-bench runs (pio, mmio, hypercall ns): " +
                  "; ".join(" ".join(fmt_num(v) for v in x) for x in r["exitb"]))
        if r.get("exitb_count"):
            print(f"  {name}: one exit-bench {a.exit_n} under perf: exits {r['exitb_count']}")
        if r.get("exitb_err"):
            print(f"  {name}: exit-bench: {r['exitb_err']}")
        if r.get("session_err"):
            print(f"  {name}: interactive session failed: {r['session_err']}")
        se = r.get("session_stderr", {})
        if se.get("exits"):
            print(f"  {name}: whole interactive session, argon's own count: " +
                  " ".join(f"{k}={v}" for k, v in se["exits"].items()))
    h = res.get("host", {})
    if h.get("cpu"):
        print("  host: cpu-bench ns/round: " + " ".join(f"{x[2]:.3f}" for x in h["cpu"]) +
              "; cycles/round: " + " ".join(f"{x[1] / x[0]:.0f}" for x in h["cpu"]))
    if h.get("err"):
        print(f"  host: {h['err']}")


def closing(ctx, res):
    """The commands that ran, then the notes (exit-counting caveats, load)."""
    A, Q = res["argon"], res["qemu-microvm"]
    print("\nCommands")
    seen = set()
    for what, cmd in ctx.commands:
        if (what, cmd) in seen:
            continue
        seen.add((what, cmd))
        print(f"  {what}:\n    {cmd}")
    if ctx.perf and ctx.main_parts:
        print("  exits during one interactive command:\n    "
              + shlex.join(["perf", "stat", "-x,", "-p", "<VMM pid>", "-D", "-1", "--control",
                            "fd:<ctl>,<ack>"] + EVENTS.args())
              + "\n    (enabled just before the command is typed, disabled when its result line appears)")

    # exit-counting caveats
    kx = [rec["perf"].get("kvm_exit") for r in (A, Q) for rec in r.get("boot_count", [])
          if rec.get("perf")]
    ux = [rec["perf"].get("user") for r in (A, Q) for rec in r.get("boot_count", [])
          if rec.get("perf")]
    if kx and all(v == 0 for v in kx) and any(ux):
        ctx.note("kvm:kvm_exit exists on this host but never fires (the PVM backend does not "
                 "trace its exits there), so exits handled inside the host kernel (hypercalls, "
                 "in-kernel LAPIC/IOAPIC, MSRs) cannot be counted; exits/op are user-space exits "
                 "(kvm:kvm_userspace_exit), about 30 us each on PVM")
    for rec in A.get("boot_count", []):
        if rec.get("perf") and rec.get("exits"):
            own = sum(rec["exits"].values())
            if rec["perf"].get("user") is not None and own != rec["perf"]["user"]:
                ctx.note(f"argon's own exit count ({own}) differs from kvm_userspace_exit "
                         f"({rec['perf']['user']}) in a counted boot")
    if ctx.perf_note:
        ctx.note(ctx.perf_note)
    end = loadavg()
    try:
        busy = max(float(ctx.load_start.split()[0]), float(end.split()[0]))
    except (ValueError, AttributeError):
        busy = 0
    if busy > 0.5:
        ctx.note(f"the host was busy with other work (load average {ctx.load_start} at start, "
                 f"{end} at the end, {os.cpu_count()} CPUs): compare run-to-run spread in "
                 "Details before trusting small differences")
    print("\nNotes")
    if ctx.main_parts:
        ctx.note("ready = the launcher read 'argon-guest: ready' on the VMM's stdout; t0 = "
                 "CLOCK_MONOTONIC just before spawning (argon gets it as ARGON_START_NS, so "
                 "its --timings stages share the origin)")
        ctx.note("QEMU x86 has no firmware-less direct boot: microvm runs qboot "
                 "(bios-microvm.bin), which loads the PVH kernel through fw_cfg; its real-mode "
                 "code runs under KVM's instruction emulator on PVM hosts")
    for n_ in ctx.notes:
        print(f"  - {n_}")


# ---------------------------------------------------------------- device report


class DevTable(Table):
    HEAD = ("row", "argon", "qemu-microvm", "argon/qemu", "host fio", "argon/fio",
            "exits/op argon", "exits/op qemu", "goal")

    def add(self, name, a, q, unit="", fio=None, ea="", eq="", goal="", nd=None,
            rv=None, rf=None):
        """rv, rf: the ratios to show (paired per round) instead of a/q, a/fio."""
        def cell(v):
            return v if isinstance(v, str) else fmt_num(v, unit, nd)
        num = not isinstance(a, str) and not isinstance(q, str)
        rv = rv if rv is not None else ratio(a, q) if num else None
        rf = rf if rf is not None else ratio(a, fio) if not isinstance(a, str) else None
        self.rows.append((name, cell(a), cell(q), fmt_num(rv, nd=3) if rv is not None else "-",
                          cell(fio) if fio is not None else "-",
                          fmt_num(rf, nd=3) if rf is not None else "-", str(ea), str(eq), goal))


def sig(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}g}"


def per_op_str(c, ops):
    """User-space exits per operation from a counted run, split by kind."""
    p = (c or {}).get("perf")
    if not p or p.get("user") is None or not ops:
        return "n/a"
    return (f"{sig(p['user'] / ops)} (IO {sig((p.get('user_io') or 0) / ops)}, "
            f"MMIO {sig((p.get('user_mmio') or 0) / ops)})")


def host_per_str(c, ops):
    """The VMM's system calls, context switches and io_uring submissions (punts
    to io-wq) per operation of a counted run."""
    p = (c or {}).get("perf")
    if not p or p.get("syscalls") is None or not ops:
        return None
    s = f"sys {sig(p['syscalls'] / ops)} csw {sig(p['cswitch'] / ops)}"
    if p.get("uring_sqe"):
        s += f" uring {sig(p['uring_sqe'] / ops)} (punted {sig(p['uring_punt'] / ops)})"
    return s


def perf_per(cnt, div_key):
    """User-space exits per operation of a counted run (rec, counts)."""
    if not cnt:
        return None
    rec, c = cnt
    p = c.get("perf") or {}
    return p["user"] / rec[div_key] if p.get("user") is not None and rec.get(div_key) else None


def host_row(t, ca, cq, key, per):
    """System calls, context switches and io_uring work of the VMM per operation."""
    ha = host_per_str(ca[1], ca[0][key]) if ca else None
    hq = host_per_str(cq[1], cq[0][key]) if cq else None
    if ha or hq:
        t.add(f"  VMM syscalls, context switches, io_uring per {per} (perf) ->", "-", "-",
              ea=ha or "n/a", eq=hq or "n/a")


def thread_rows(t, ra, rq, ops, per, qna=None):
    """Two rows from the runs' thread times: the VMM's CPU time outside its
    vCPU threads per operation (what the devices cost the host), and how long
    the vCPU thread waited for a host CPU (how much the host's load got in)."""
    def cpu(rs):
        return med([r["threads"]["other_cpu_ns"] / ops(r) / 1000 for r in rs
                    if r.get("threads") and ops(r)])

    def wait(rs):
        return med([100.0 * r["threads"]["vcpu_wait_ns"] / r["threads"]["wall_ns"] for r in rs
                    if r.get("threads") and r["threads"]["wall_ns"]])
    t.add(f"  VMM CPU per {per} outside the vCPU thread (us, median)", cpu(ra),
          qna or cpu(rq), nd=3)
    t.add("  vCPU thread runnable but waiting for a host CPU (% of the command, median)",
          wait(ra), qna or wait(rq), nd=1)


def paired(xs, ys, fn):
    """Median of fn(x)/fn(y) over runs of the same round (x and y ran back to
    back, so they met the same background load), and the ratios themselves."""
    rs = [fn(x) / fn(y) for x, y in zip(xs, ys) if fn(x) is not None and fn(y)]
    return (statistics.median(rs) if rs else None), rs


def ratio_goal(r, bar=1.0, what="argon >= qemu"):
    if r is None:
        return ""
    return f"{what}: {'MET' if r >= bar else 'NOT MET'}"


def device_report(ctx, res):
    a = ctx.args
    D = res["devices"]
    A, Q = D.get("argon", {}), D.get("qemu-microvm", {})
    t = DevTable()
    fio = D.get("fio", [])
    n = a.dev_runs

    t.section(f"block: {a.disk_mib} MiB raw image of random data in the host page cache, "
              f"`blk-bench 0 {a.blk_ms}` (4 KiB random over the whole disk, 1 MiB sequential "
              f"with 4 in flight, {a.blk_ms} ms each), median of {n} runs, each on a freshly "
              f"booted VM with a freshly made image, after a sync; host fio = the same "
              f"patterns on a third image made alike (io_uring, buffered), median of {len(fio)}; "
              "ratios and goals are medians of the per-round ratios (a round runs argon, QEMU "
              "and fio back to back, so they share the host's load at that moment)")
    names = {"randread_qd1_iops": ("randread 4 KiB QD1", "IOPS"),
             "randread_qd32_iops": ("randread 4 KiB QD32", "IOPS"),
             "randwrite_qd1_iops": ("randwrite 4 KiB QD1", "IOPS"),
             "randwrite_qd32_iops": ("randwrite 4 KiB QD32", "IOPS"),
             "seqread_mib_s": ("seqread 1 MiB QD4", "MiB/s"),
             "seqwrite_mib_s": ("seqwrite 1 MiB QD4", "MiB/s")}
    for k, (label, unit) in names.items():
        ra, rq = A.get("blk", []), Q.get("blk", [])
        va, vq = med([r[k] for r in ra]), med([r[k] for r in rq])
        vf = med([r[k] for r in fio])
        rv, _ = paired(ra, rq, lambda r: r[k])
        rf, _ = paired(ra, fio, lambda r: r[k])
        goal = ratio_goal(rv)
        if k == "randread_qd32_iops" and rf is not None:
            goal += "; " + ratio_goal(rf, 0.8, "argon >= 0.8 fio")
        t.add(f"{label} ({unit})", va, vq, fio=vf, goal=goal, nd=0, rv=rv, rf=rf)
    ca, cq = A.get("blk_count"), Q.get("blk_count")

    ua, uq = perf_per(ca, "requests"), perf_per(cq, "requests")
    t.add("  user-space exits per request (all six phases, one run under perf)", ua, uq, nd=4,
          ea=per_op_str(ca[1], ca[0]["requests"]) if ca else "n/a",
          eq=per_op_str(cq[1], cq[0]["requests"]) if cq else "n/a")
    for key, label in (("kicks", "kicks"), ("interrupts", "interrupts")):
        va = med([r[key] / r["requests"] for r in A.get("blk", []) if r["requests"]])
        vq = med([r[key] / r["requests"] for r in Q.get("blk", []) if r["requests"]])
        t.add(f"  {label} per request (guest's count, median)", va, vq, nd=4)
    host_row(t, ca, cq, "requests", "request")
    thread_rows(t, A.get("blk", []), Q.get("blk", []), lambda r: r["requests"], "request")

    if D.get("net_err"):
        t.section(f"net: n/a ({D['net_err']})")
    else:
        t.section(f"net: `net-bench tx HOST {UDP_PORT} {a.net_seconds} BYTES`, guest -> host "
                  f"UDP over a tap in the run's own netns, median of {n} runs; figures are what "
                  "the host's socket received (frames from first to last, Ethernet bytes); "
                  "ratios and goals: medians of the per-round ratios")
        for payload in NET_SIZES:
            fl = payload + NET_HLEN
            key = f"net{payload}"
            ra, rq = A.get(key, []), Q.get(key, [])
            ca, cq = A.get(key + "_count"), Q.get(key + "_count")
            va, vq = med([r["host_frames_s"] for r in ra]), med([r["host_frames_s"] for r in rq])
            rv, _ = paired(ra, rq, lambda r: r["host_frames_s"])
            t.add(f"tx {fl}-byte frames (frames/s at the host)", va, vq, nd=0, rv=rv,
                  ea=per_op_str(ca[1], ca[0]["frames"]) if ca else "n/a",
                  eq=per_op_str(cq[1], cq[0]["frames"]) if cq else "n/a", goal=ratio_goal(rv))
            if payload == NET_SIZES[0]:
                va, vq = med([r["host_mib_s"] for r in ra]), med([r["host_mib_s"] for r in rq])
                rv, _ = paired(ra, rq, lambda r: r["host_mib_s"])
                t.add(f"tx {fl}-byte frames (MiB/s at the host)", va, vq, nd=1, rv=rv,
                      goal=ratio_goal(rv))
            for what in ("kicks", "irqs"):
                def f(cnt):
                    if not cnt or not cnt[0]["frames"]:
                        return None
                    v = cnt[0]["kicks"] if what == "kicks" else cnt[1]["irqs"].get("net")
                    return v / cnt[0]["frames"] * 1000 if v is not None else None
                va, vq = f(ca), f(cq)
                t.add(f"  {'kicks' if what == 'kicks' else 'interrupts'} per 1000 frames "
                      "(guest's count, run under perf)", va, vq, nd=2)
            host_row(t, ca, cq, "frames", "frame")
            thread_rows(t, ra, rq, lambda r: r["frames"], "frame")

    t.section(f"vsock: `vsock-bench {VSOCK_PORT} {a.vsock_seconds}` (stream to host port "
              f"{VSOCK_PORT}, then from {VSOCK_PORT + 1}; host end: Python on argon's hybrid "
              f"vsock unix sockets), median of {n} runs; exits/op = exits per MiB moved (tx + rx)")
    qna = "n/a (peer)"
    ra, ca = A.get("vsock", []), A.get("vsock_count")
    mib = (ca[0]["tx_bytes"] + ca[0]["rx_bytes"]) / 2**20 if ca else None
    t.add("tx guest -> host (MiB/s)", med([r["tx_mib_s"] for r in ra]), qna, nd=0,
          ea=per_op_str(ca[1], mib) if ca else "n/a", eq="n/a")
    t.add("rx host -> guest (MiB/s)", med([r["rx_mib_s"] for r in ra]), qna, nd=0)
    if ca:
        irq = ca[1]["irqs"].get("vsock")
        t.add("  interrupts per MiB (guest's count, run under perf)",
              irq / mib if irq is not None and mib else None, qna, nd=3)
    if ca:
        t.add("  VMM syscalls, context switches per MiB (perf) ->", "-", qna,
              ea=host_per_str(ca[1], mib) or "n/a", eq="n/a")
    thread_rows(t, ra, [], lambda r: (r["tx_bytes"] + r["rx_bytes"]) / 2**20, "MiB", qna)
    print()
    print("=" * 100)
    print("virtio devices: argon-vmm against QEMU microvm (user-space virtio-mmio in both, "
          "no vhost), same guest image and commands")
    print(t.render())
    print("=" * 100)
    goals = [r[-1] for r in t.rows if not isinstance(r, str) and r[-1]]
    met = sum(g.count(": MET") for g in goals)
    total = sum(g.count(": MET") + g.count("NOT MET") for g in goals)
    print(f"goals met: {met} of {total}")
    device_details(ctx, D)


def threads_str(rec):
    th = rec.get("threads")
    if not th:
        return ""
    waits = th.get("other_wait", {})
    rest = ", ".join(f"{k} {v / 1e6:.0f} (waited {waits.get(k, 0) / 1e6:.0f})"
                     for k, v in sorted(th["other"].items(), key=lambda kv: -kv[1]) if v)
    return (f"; threads over {th['wall_ns'] / 1e6:.0f} ms: vcpu {th['vcpu_cpu_ns'] / 1e6:.0f} "
            f"(waited {th['vcpu_wait_ns'] / 1e6:.0f}), rest {th['other_cpu_ns'] / 1e6:.0f} "
            f"({rest})")


def device_details(ctx, D):
    print("\nDevice details (perf counts of one run under perf: user = kvm:kvm_userspace_exit, "
          "user_io/user_mmio by reason; argon's own GET /metrics deltas over the same command; "
          "irqs = the guest's interrupt count per device from virtio-list)")
    for line in D.get("setup", []):
        print(f"  {line}")
    print("  (threads: ms on a CPU over the command, and ms runnable but waiting for a CPU: "
          "the vCPU, then the rest of the VMM by thread name)")
    A, Q, F = D.get("argon", {}), D.get("qemu-microvm", {}), D.get("fio", [])
    for k in devices.BLK_KEYS:
        best = [max((r[k] for r in rs), default=None)
                for rs in (A.get("blk", []), Q.get("blk", []), F)]
        _, rs = paired(A.get("blk", []), Q.get("blk", []), lambda r: r[k])
        print(f"  blk {k}: best argon {sig(best[0], 6)}, qemu {sig(best[1], 6)}, fio "
              f"{sig(best[2], 6)}; argon/qemu per round " + " ".join(f"{x:.2f}" for x in rs))
    for payload in NET_SIZES:
        ra, rq = A.get(f"net{payload}", []), Q.get(f"net{payload}", [])
        _, rs = paired(ra, rq, lambda r: r["host_frames_s"])
        if ra or rq:
            print(f"  net {payload + NET_HLEN}-byte frames/s: best argon "
                  f"{sig(max((r['host_frames_s'] or 0 for r in ra), default=None), 6)}, qemu "
                  f"{sig(max((r['host_frames_s'] or 0 for r in rq), default=None), 6)}; "
                  "argon/qemu per round " + " ".join(f"{x:.2f}" for x in rs))
    for r in F:
        print("  fio: " + " ".join(f"{k} {v:.0f}" for k, v in r.items()))
    if D.get("fio_err"):
        print(f"  fio: {D['fio_err']}")
    if D.get("net_err"):
        print(f"  net: {D['net_err']}")
    for name in ("argon", "qemu-microvm"):
        r = D.get(name, {})
        for rec in r.get("blk", []):
            print(f"  {name}: blk-bench " + " ".join(f"{k} {v}" for k, v in rec.items()
                                                      if k != "threads") + threads_str(rec))
        for payload in NET_SIZES:
            for rec in r.get(f"net{payload}", []):
                h = rec["host"]
                print(f"  {name}: net-bench tx {payload + NET_HLEN}-byte frames: guest sent "
                      f"{rec['frames']} ({rec['frames_s']} frames/s, {rec['mib_s']} MiB/s, "
                      f"kicks {rec['kicks']}); host socket got {h['frames']} "
                      f"({sig(rec['host_frames_s'], 6)} frames/s), tap rx {h['tap_rx']}, "
                      f"UDP rcvbuf drops so far {h['rcvbuf_drops']}" + threads_str(rec))
        for rec in r.get("vsock", []):
            print(f"  {name}: vsock-bench " + " ".join(f"{k} {v}" for k, v in rec.items()
                                                        if k != "threads") + threads_str(rec))
        for key in ["blk_count"] + [f"net{p}_count" for p in NET_SIZES] + ["vsock_count"]:
            if r.get(key):
                rec, c = r[key]
                fig = {k: v for k, v in rec.items() if k not in ("host", "threads")}
                print(f"  {name}: {key.replace('_count', '')} under perf: {fig}")
                print(f"      perf {c['perf']}; guest irqs {c['irqs']}")
                if c.get("metrics"):
                    print(f"      argon metrics: " + ", ".join(f"{k}={v:g}"
                                                            for k, v in c["metrics"].items()))
        if r.get("stderr", {}).get("exits"):
            print(f"  {name}: whole device session, argon's own count: " +
                  " ".join(f"{k}={v}" for k, v in r["stderr"]["exits"].items()))
        if r.get("err"):
            print(f"  {name}: device session failed: {r['err']}")
    if D.get("vsock_host_errors"):
        print(f"  vsock host end errors: {D['vsock_host_errors']}")
    ctx.note("vsock has no QEMU row: QEMU 7.2's only virtio-vsock devices are vhost-vsock "
             "(kernel vhost, /dev/vhost-vsock" + (", absent here" if not os.path.exists(
                 "/dev/vhost-vsock") else "") + ") and vhost-user-vsock (an external daemon); "
             "neither is user-space virtio in QEMU, so argon's figure stands alone")
    ctx.note("net: every frame stays in the run's own network namespace (both VMMs run in it "
             "through `ip netns exec`); the host end is a Python UDP socket there, so at high "
             "frame rates it competes for the same two CPUs as the vCPU and the VMM threads")
    ctx.note("block: fio's buffered io_uring reads of cached pages complete at submission, so "
             "its QD1 and QD32 figures are alike; it is the ceiling for a VMM that reads "
             "through the page cache")
    left = D.get("leftovers")
    print("  cleanup: " + ("netns, taps, images, sockets and processes all removed (checked)"
                           if left == [] else f"LEFT BEHIND: {left}"))


# ---------------------------------------------------------------- main


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def header(ctx):
    a = ctx.args
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    backend = ("PVM (kvm_pvm)" if os.path.isdir("/sys/module/kvm_pvm") else
               "VT-x (kvm_intel)" if os.path.isdir("/sys/module/kvm_intel") else
               "AMD-V (kvm_amd)" if os.path.isdir("/sys/module/kvm_amd") else "?")
    qv = subprocess.run([ctx.qemu, "--version"], capture_output=True, text=True).stdout.splitlines()
    rev = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    pv = subprocess.run([ctx.perf, "version"], capture_output=True, text=True).stdout.strip() \
        if ctx.perf else "none"
    print(f"argon bench: {time.strftime('%Y-%m-%d %H:%M:%S')}; argon tree {rev or '?'}")
    print(f"host: {platform.node()} Linux {platform.release()}, {cpu}, {os.cpu_count()} CPUs, "
          f"KVM backend {backend}")
    print(f"peer: {qv[0] if qv else ctx.qemu}; {pv}")
    print(f"guest: {ctx.guest}; {a.vcpus} vCPU, {a.memory} MiB")
    try:
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(ctx.argon_vmm).st_mtime))
    except OSError:
        built = "?"
    print(f"argon-vmm: {ctx.argon_vmm}, built {built} (the tree is shared: a build may hold "
          "uncommitted work)")
    ctx.load_start = loadavg()
    print(f"load average at start: {ctx.load_start}")
    print()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=20, help="boots of each VMM (default 20, >= 1)")
    p.add_argument("--vcpus", type=int, default=1)
    p.add_argument("--memory", type=int, default=128, help="MiB")
    p.add_argument("--cpu-runs", type=int, default=5, help="cpu-bench runs of each (default 5)")
    p.add_argument("--exit-runs", type=int, default=3, help="exit-bench runs of each (default 3)")
    p.add_argument("--exit-n", type=int, default=5000, help="probes per exit-bench (default 5000)")
    p.add_argument("--count-runs", type=int, default=3,
                   help="boots of each under perf for exits per boot (default 3)")
    p.add_argument("--cpu-rounds", type=int, default=10000,
                   help="SHA-256 rounds per cpu-bench, guest and host (default 10000)")
    p.add_argument("--only", default="boot,exits,session",
                   help="comma list of parts: boot,exits,session (memory, cpu-bench, "
                        "exit-bench),devices,snapshot")
    p.add_argument("--devices", action="store_true",
                   help="the device benchmarks alone (--only devices); needs root for the "
                        "net rows")
    p.add_argument("--dev-runs", type=int, default=5,
                   help="rounds of each device benchmark (argon, QEMU, and fio for block; "
                        "default 5), plus one run of each under perf")
    p.add_argument("--blk-ms", type=int, default=1000,
                   help="ms per blk-bench phase and per fio job (default 1000, six phases)")
    p.add_argument("--disk-mib", type=int, default=256, help="image size (default 256)")
    p.add_argument("--net-seconds", type=int, default=2, help="per net-bench run (default 2)")
    p.add_argument("--vsock-seconds", type=int, default=2,
                   help="per vsock-bench direction (default 2)")
    p.add_argument("--snap-runs", type=int, default=10,
                   help="snapshot: restores of each kind per size (default 10)")
    p.add_argument("--snap-sizes", default="128,1024",
                   help="snapshot: guest sizes in MiB (default 128,1024)")
    p.add_argument("--snap-cpu-rounds", type=int, default=1000,
                   help="snapshot: cpu-bench rounds before and after in argon (default 1000)")
    p.add_argument("--snap-cpu-seconds", type=float, default=8.0,
                   help="snapshot: s of cpu-bench pairs before and after (default 8)")
    p.add_argument("--snap-qemu-rounds", type=int, default=5,
                   help="snapshot: cpu-bench rounds in QEMU after its restores (default 5)")
    p.add_argument("--snap-cpu-timeout", type=float, default=30.0,
                   help="snapshot: s that QEMU's cpu-bench after restore may take (default 30)")
    p.add_argument("--build", default="build")
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--argon-vmm", help="default BUILD/argon-vmm")
    p.add_argument("--guest", help="default BUILD/argon-guest")
    p.add_argument("--boot-timeout", type=float, default=20.0, help="s to the ready marker/prompt")
    p.add_argument("--exit-timeout", type=float, default=10.0, help="s from ready to VMM exit")
    p.add_argument("--budget", type=float, default=540.0, help="s for the whole run")
    a = p.parse_args()
    if a.runs < 1 or a.cpu_runs < 1 or a.exit_runs < 1 or a.vcpus < 1 or a.memory < 16:
        p.error("counts must be >= 1 and memory >= 16 MiB")
    if a.dev_runs < 1 or a.blk_ms < 1000 or a.disk_mib < 16 or a.net_seconds < 1 or \
            a.vsock_seconds < 1:
        p.error("--dev-runs, --net-seconds, --vsock-seconds >= 1, --blk-ms >= 1000, "
                "--disk-mib >= 16")
    if a.devices:
        a.only = "devices"

    atexit.register(vmlib.kill_all)

    def on_signal(sig, _frame):
        vmlib.kill_all()
        print(f"\n# stopped by signal {sig}; every VM process was killed", flush=True)
        os._exit(128 + sig)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    ctx = Ctx(a)
    missing = [f for f in (ctx.argon_vmm, ctx.guest) if not os.access(f, os.X_OK)]
    if not shutil.which(ctx.qemu):
        missing.append(ctx.qemu)
    if missing:
        print("missing: " + ", ".join(missing) + " (make all; apt-get install qemu-system-x86)",
              file=sys.stderr)
        return 2
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("/dev/kvm is missing or not accessible", file=sys.stderr)
        return 2
    check_perf(ctx)
    header(ctx)

    parts = set(a.only.split(","))
    unknown = parts - {"boot", "exits", "session", "devices", "snapshot"}
    if unknown:
        p.error(f"unknown parts: {','.join(sorted(unknown))}")
    ctx.main_parts = bool(parts & {"boot", "exits", "session"})
    res = {v.name: {} for v in ctx.vmms}
    t_start = time.monotonic()
    if "boot" in parts:
        boot_suite(ctx, res)
    if "exits" in parts:
        boot_exits(ctx, res)
    res["host"] = {}
    if "session" in parts:
        sessions(ctx, res)
    if "devices" in parts:
        devices_suite(ctx, res)
    if "snapshot" in parts:
        snapshot.suite(ctx, res)
    log(f"measured in {time.monotonic() - t_start:.0f} s")
    report(ctx, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
