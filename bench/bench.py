#!/usr/bin/env python3
"""argon-vmm against QEMU's microvm, side by side in one run, on the same
guest image (build/argon-guest) with the same vCPUs and memory.

  boot        N boots of each to "argon-guest: ready" (argon.cmd="poweroff")
  memory      RssAnon + RssFile of each VMM at the guest's prompt
  cpu-bench   the guest's cpu-bench under both, and build/cpu-bench-host
  exit-bench  the guest's exit-bench under both
  exits       user-space exits per operation, counted by the kernel's
              kvm:kvm_userspace_exit tracepoint (perf stat)

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

    def argv(self, cmdline):
        c = self.ctx
        return [c.argon_vmm, "--kernel", c.guest, "--vcpus", str(c.args.vcpus),
                "--memory", str(c.args.memory), "--cmdline", cmdline, "--timings"]


class Qemu:
    name = "qemu-microvm"

    def __init__(self, ctx):
        self.ctx = ctx

    def argv(self, cmdline):
        c = self.ctx
        m = c.args.memory
        # microvm as lean as the guest allows: no option ROMs, no PIT, PIC or RTC
        # (the guest uses the LAPIC timer and kvmclock), the ISA 16550 for the
        # console, ACPI on because the guest powers off through the FADT's
        # sleep register, the command line passed as is. Guest RAM is a memfd,
        # as in argon, so it counts as RssShmem and not as VMM overhead.
        machine = ("microvm,acpi=on,x-option-roms=off,pit=off,pic=off,rtc=off,"
                   "isa-serial=on,auto-kernel-cmdline=off,memory-backend=ram")
        return [c.qemu, "-M", machine,
                "-object", f"memory-backend-memfd,id=ram,size={m}M",
                "-enable-kvm", "-cpu", "host,-arch-capabilities",
                "-m", f"{m}M", "-smp", str(c.args.vcpus),
                "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                "-serial", "stdio", "-kernel", c.guest, "-append", cmdline]


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


def counted(ctx, vm, name, line, result_rx, timeout_s):
    """run_cmd inside a perf window; returns (match, counts or None)."""
    if not ctx.perf:
        return run_cmd(ctx, vm, name, line, result_rx, timeout_s), None
    pw = PerfWindow(ctx.perf, EVENTS, vm.pid)
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
    t.section(f"cpu-bench {a.cpu_rounds}: {a.cpu_runs} runs each (argon, qemu, host in "
              f"rotation), ns per SHA-256 round over 4 KiB; exits/op = user-space exits "
              f"per command, typed line and result line included")
    ga = ratio(min(cpa), hbest) if cpa and hbest else None
    t.add("cpu-bench ns/round (best)", min(cpa) if cpa else None, min(cpq) if cpq else None, "ns",
          ea=exits_str(A.get("cpu_count")), eq=exits_str(Q.get("cpu_count")),
          goal=(f"argon within 1% of host: {'MET' if ga <= 1.01 else 'NOT MET'} "
                f"({(ga - 1) * 100:+.2f}%)") if ga else "")
    t.add("cpu-bench ns/round (median)", med(cpa), med(cpq), "ns")
    t.add("  host (build/cpu-bench-host), best", hbest, "-", "ns", rat=False)
    t.add("  best / host best", ratio(min(cpa), hbest) if cpa else None,
          ratio(min(cpq), hbest) if cpq else None, "", rat=False, nd=4)

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

    print("\nCommands")
    seen = set()
    for what, cmd in ctx.commands:
        if (what, cmd) in seen:
            continue
        seen.add((what, cmd))
        print(f"  {what}:\n    {cmd}")
    if ctx.perf:
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
    ctx.note("ready = the launcher read 'argon-guest: ready' on the VMM's stdout; t0 = "
             "CLOCK_MONOTONIC just before spawning (argon gets it as ARGON_START_NS, so its "
             "--timings stages share the origin)")
    ctx.note("QEMU x86 has no firmware-less direct boot: microvm runs qboot (bios-microvm.bin), "
             "which loads the PVH kernel through fw_cfg; its real-mode code runs under KVM's "
             "instruction emulator on PVM hosts")
    for n_ in ctx.notes:
        print(f"  - {n_}")


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
                        "exit-bench)")
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
    res = {v.name: {} for v in ctx.vmms}
    t_start = time.monotonic()
    if "boot" in parts:
        boot_suite(ctx, res)
    if "exits" in parts:
        boot_exits(ctx, res)
    res["host"] = {}
    if "session" in parts:
        sessions(ctx, res)
    log(f"measured in {time.monotonic() - t_start:.0f} s")
    report(ctx, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
