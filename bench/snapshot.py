"""The `snapshot` part of bench/bench.py (issue 9): argon-vmm's full snapshots
against QEMU 7.2's migration-to-file, in one run, the restores alternating.

For each guest size (default 128 MiB and 1 GiB) one source VM of each VMM boots
argon-guest, writes every page it can get with `mem-fill` (the guest's whole free
RAM), runs `cpu-bench` next to build/cpu-bench-host, and is saved:

  argon   PATCH /vm Paused, PUT /snapshot/create {Full, state, mem} (a state file
          and a sparse memory file, fdatasync'ed), to the scratch directory on
          disk and once more to /dev/shm (tmpfs: no disk in the figure)
  QEMU    guest RAM is memory-backend-file share=on in /dev/shm; QMP `stop`, then
          `migrate exec:cat > FILE` (the plain stream: RAM and devices), to disk
          and to /dev/shm, and, with the x-ignore-shared capability, `migrate
          exec:cat > FILE` again: devices only, the RAM stays in the shared file.

Then N rounds, each restoring argon, QEMU x-ignore-shared and QEMU stream in a
rotating order (so all three see the same background load):

  argon   `argon-vmm --restore STATE --mem-file MEM --timings`; `echo restored` is
          written to its stdin right after the spawn (argon reads its console
          once the VM runs).
  QEMU    the same machine with `-incoming defer -qmp unix:...`: QMP
          qmp_capabilities, migrate-set-capabilities (events, x-ignore-shared
          for the shared kind), migrate-incoming exec:cat FILE, wait for the
          MIGRATION event `completed`, `cont`, then `echo restored` on stdin
          (typed any earlier it would reach the 16550 before its state is
          loaded from the stream, and be overwritten). The shared kind needs the
          RAM file as it was at the snapshot: the restored guest writes to it, so
          every run first copies a pristine copy over it (not timed; its cost is
          shown apart).

The marker: t0 = CLOCK_MONOTONIC just before the spawn, answered = when the
launcher has read the line `restored` that the guest prints (not the echo of the
typed command). Right then: /proc/PID/status, the guest RAM mapping's lines
of /proc/PID/smaps and the CPU time of all the process's threads
(/proc/PID/task/*/schedstat). Then one more restore of each kind runs cpu-bench.
"""

import http.client
import json
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

import vmlib
from vmlib import VM, BenchError

RUN = os.environ.get("ARGON_BENCH_RUN") or str(os.getpid())
PREFIX = f"argon-bench-{RUN}-snap"
PROMPT = rb"argon> "
ANSWER = rb"\nrestored\r?\n"   # the guest's output line, not the echoed "echo restored"
FILL_RX = rb"(mem-fill: addr (0x[0-9a-f]+) bytes (\d+) sha256 ([0-9a-f]+)|mem-fill: no [^\r\n]*)\r?\n"
SUM_RX = rb"mem-sum: addr \S+ bytes \d+ sha256 ([0-9a-f]+)\r?\n"
CPU_RX = rb"cpu-bench: rounds (\d+) cycles (\d+) ns_per_round ([\d.]+)\r?\n"
TIMINGS_RX = re.compile(rb"timings: kvm_ready ([-\d.]+) ms, first_instruction ([-\d.]+) ms, "
                        rb"first_byte ([-\d.]+) ms")
CREATE_LOG_RX = re.compile(rb"\((\d+) MiB written, (\d+) MiB holes, ([\d.]+) ms\)")
KINDS = ("argon", "qemu-shared", "qemu-stream")
# cpu-bench before and after: pairs of (host run, guest run) for --snap-cpu-seconds;
# the best of each side (noise from the shared host only ever slows a run, so the
# bests converge).
MIB = 1 << 20
MAX_BANDWIDTH = 1 << 40  # bytes/s for QEMU's migrate-set-parameters: no throttle


def log(msg):
    print(f"# {msg}", flush=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs, unit="", nd=2, scale=1.0):
    """'median (min-max)'."""
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "n/a"
    u = f" {unit}" if unit else ""
    if len(xs) == 1:
        return f"{xs[0]:.{nd}f}{u}"
    return f"{statistics.median(xs):.{nd}f}{u} ({min(xs):.{nd}f}-{max(xs):.{nd}f})"


def ratio_str(a, b, nd=3):
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return f"{r:.{nd}f}" if r < 100 else f"{r:,.0f}"


# ---------------------------------------------------------------- small clients


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def api(path, method, url, body):
    c = UnixHTTP(path)
    try:
        c.request(method, url, body=json.dumps(body),
                  headers={"Content-Type": "application/json", "Accept": "application/json"})
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        if r.status not in (200, 204):
            raise BenchError(f"argon API {method} {url}: {r.status} {text}")
        return text
    finally:
        c.close()


def wait_socket(path, proc, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"VMM exited (status {proc.returncode}) before {path} appeared")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            time.sleep(0.0002)
    raise BenchError(f"no socket {path} within {timeout_s} s")


class QMP:
    """QEMU's QMP on a unix socket: one command at a time, events kept."""

    def __init__(self, path, proc, timeout_s=20.0):
        self.sock = wait_socket(path, proc, timeout_s)
        self.sock.settimeout(timeout_s)
        self.f = self.sock.makefile("rb")
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise BenchError("QMP closed")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode())
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise BenchError(f"QMP {name}: {r['error']}")
            return r.get("return")

    def wait_event(self, pred, timeout_s):
        for e in self.events:
            if pred(e):
                self.events.remove(e)
                return e
        self.sock.settimeout(timeout_s)
        while True:
            r = self._read()
            if "event" in r and pred(r):
                return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- /proc


def thread_cpu(pid):
    """{thread name: CPU ns} from /proc/PID/task/*/{comm,schedstat}."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[comm] = out.get(comm, 0) + int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


def cpu_ns(pid):
    """CPU time of every thread of pid so far (schedstat, ns)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_ns(pid):
    """utime+stime+cutime+cstime of /proc/PID/stat (ns, in clock ticks): threads that
    ended (QEMU's migration thread) and reaped children (the `cat` of an exec:
    migration) included, which task/*/schedstat misses."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) * 1_000_000_000 // TICK
    except (OSError, ValueError, IndexError):
        return None


def mapping_kb(pid, name_part):
    """Summed smaps fields (kB) of the mappings whose name contains name_part."""
    out = {}
    hit = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(None, 5)
                hit = len(parts) > 5 and name_part in parts[5]
            elif hit and first.endswith(":") and first[:-1] in (
                    "Rss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty",
                    "Anonymous"):
                out[first[:-1]] = out.get(first[:-1], 0) + int(line.split()[1])
    return out


def memory_now(pid, guest_map):
    st = vmlib.proc_status(pid)
    g = mapping_kb(pid, guest_map)
    return {"anon": st.get("RssAnon"), "file": st.get("RssFile"), "shmem": st.get("RssShmem"),
            "guest_rss": g.get("Rss", 0), "guest_anon": g.get("Anonymous", 0),
            "guest_file": g.get("Private_Clean", 0) + g.get("Shared_Clean", 0)
            if g.get("Anonymous", 0) == 0 else g.get("Rss", 0) - g.get("Anonymous", 0)}


# ---------------------------------------------------------------- the guest


def command(vm, line, rx, timeout_s):
    vm.send(line + "\n")
    m, t = vm.expect(rx, timeout_s, what=line)
    vm.expect(PROMPT, timeout_s, what=f"prompt after {line}")
    return m, t


def fill(vm, timeout_s=120):
    """mem-fill until the guest has no fresh memory left: 64 MiB pieces, then down
    to 1 MiB. Returns (MiB written, [(addr, bytes, sha256)])."""
    total, regions = 0, []
    for piece in (64, 16, 4, 1):
        while True:
            m, _ = command(vm, f"mem-fill {piece} {len(regions) + 1}", FILL_RX, timeout_s)
            if not m.group(2):
                break
            regions.append((m.group(2).decode(), int(m.group(3)), m.group(4).decode()))
            total += piece
    return total, regions


def host_cycles(ctx, rounds):
    out = subprocess.run([ctx.cpu_host, str(rounds)], capture_output=True, text=True,
                         timeout=120).stdout
    m = re.search(r"cpu-bench: rounds \d+ cycles (\d+)", out)
    return int(m.group(1)) if m else None


def cpu_pairs(ctx, vm, rounds, budget_s, min_pairs=3, timeout_s=60):
    """cpu-bench ROUNDS in the guest, each after build/cpu-bench-host ROUNDS on the
    host, for budget_s seconds (at least min_pairs pairs): a fixed stretch of time,
    not "until it looks good", so before and after are measured alike. Returns
    (guest cycles per round list, host cycles per round list)."""
    g, h = [], []
    t0 = time.monotonic()
    while len(g) < min_pairs or time.monotonic() - t0 < budget_s:
        hc = host_cycles(ctx, rounds)
        if hc:
            h.append(hc / rounds)
        m, _ = command(vm, f"cpu-bench {rounds}", CPU_RX, timeout_s)
        g.append(int(m.group(2)) / int(m.group(1)))
    return g, h


def write_floor(path, mib, sync):
    """The kernel's own cost of what a create does: pwrite MIB MiB (one 1 MiB
    buffer of random bytes, again and again) to a new file, fdatasync if sync."""
    buf = os.urandom(MIB)
    t0 = time.monotonic_ns()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        for i in range(mib):
            os.pwrite(fd, buf, i * MIB)
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    dt = time.monotonic_ns() - t0
    unlink(path)
    return dt


# ---------------------------------------------------------------- the VMMs


class Env:
    def __init__(self, ctx):
        self.ctx = ctx
        a = ctx.args
        self.vcpus = a.vcpus
        self.disk = tempfile.mkdtemp(prefix=PREFIX + "-")
        self.shm = tempfile.mkdtemp(prefix=PREFIX + "-", dir="/dev/shm")
        vmlib.at_cleanup(self.remove)

    def remove(self):
        shutil.rmtree(self.disk, ignore_errors=True)
        shutil.rmtree(self.shm, ignore_errors=True)

    def argon_boot(self, mib, sock):
        c = self.ctx
        return [c.argon_vmm, "--api-sock", sock, "--kernel", c.guest, "--vcpus",
                str(self.vcpus), "--memory", str(mib), "--log-level", "info"]

    def argon_restore(self, state, mem):
        return [self.ctx.argon_vmm, "--restore", state, "--mem-file", mem, "--timings"]

    def qemu(self, mib, ram_obj, qmp, incoming=None):
        c = self.ctx
        machine = ("microvm,acpi=on,x-option-roms=off,pit=off,pic=off,rtc=off,"
                   "isa-serial=on,auto-kernel-cmdline=off,memory-backend=ram")
        argv = [c.qemu, "-M", machine, "-object", ram_obj,
                "-enable-kvm", "-cpu", "host,-arch-capabilities",
                "-m", f"{mib}M", "-smp", str(self.vcpus),
                "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                "-serial", "stdio", "-kernel", c.guest, "-append", "console=ttyS0",
                "-qmp", f"unix:{qmp},server=on,wait=off"]
        if incoming:
            argv += ["-incoming", incoming]
        return argv

    def ram_file(self, mib):
        return os.path.join(self.shm, f"qemu-ram-{mib}")

    def shared_obj(self, mib):
        return f"memory-backend-file,id=ram,size={mib}M,mem-path={self.ram_file(mib)},share=on"

    @staticmethod
    def memfd_obj(mib):
        return f"memory-backend-memfd,id=ram,size={mib}M"


def unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def blocks_mib(path):
    try:
        return os.stat(path).st_blocks * 512 / MIB
    except OSError:
        return None


def argon_source(env, mib, S, boot_timeout):
    """Boot, fill, cpu-bench, then two snapshots (disk, tmpfs)."""
    ctx = env.ctx
    sock = os.path.join(env.disk, f"a{mib}.sock")
    unlink(sock)
    vm = VM(env.argon_boot(mib, sock))
    try:
        vm.expect(PROMPT, boot_timeout, what="argon prompt")
        t = time.monotonic()
        S["filled_mib"], S["regions"] = fill(vm)
        S["fill_s"] = time.monotonic() - t
        S["cpu_before"] = cpu_pairs(ctx, vm, ctx.args.snap_cpu_rounds, ctx.args.snap_cpu_seconds)
        S["rss_source"] = vmlib.proc_status(vm.pid)
        api(sock, "PATCH", "/vm", {"state": "Paused"})
        for where, d in (("disk", env.disk), ("tmpfs", env.shm)):
            state, mem = os.path.join(d, f"argon-{mib}.snap"), os.path.join(d, f"argon-{mib}.mem")
            load = open("/proc/loadavg").read().split()[0]
            c0 = proc_cpu_ns(vm.pid)
            t0 = time.monotonic_ns()
            api(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full",
                                                 "snapshot_path": state, "mem_file_path": mem})
            dt = time.monotonic_ns() - t0
            vm._pump(time.monotonic_ns() + 50_000_000)
            logm = list(CREATE_LOG_RX.finditer(vm.err))
            S[f"create_{where}"] = {
                "ns": dt, "cpu_ns": (proc_cpu_ns(vm.pid) or 0) - (c0 or 0), "load": load,
                "written_mib": int(logm[-1].group(1)) if logm else None,
                "holes_mib": int(logm[-1].group(2)) if logm else None,
                "mem_ms": float(logm[-1].group(3)) if logm else None,
                "file_mib": blocks_mib(mem), "state_bytes": os.path.getsize(state)}
            if where == "disk":
                S["state"], S["mem"] = state, mem
            else:
                unlink(state), unlink(mem)
            S[f"floor_{where}"] = write_floor(os.path.join(d, "floor"), S["filled_mib"],
                                              where == "disk")
    finally:
        vm.close()


def qmp_migrate(q, uri, timeout_s):
    t0 = time.monotonic_ns()
    q.cmd("migrate", uri=uri)
    while True:
        st = q.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"):
            break
        if time.monotonic_ns() - t0 > timeout_s * 1e9:
            raise BenchError(f"migrate {uri}: not done in {timeout_s} s")
        time.sleep(0.001)
    dt = time.monotonic_ns() - t0
    if st["status"] != "completed":
        raise BenchError(f"migrate {uri}: {st}")
    return dt, st


def qemu_source(env, mib, S, boot_timeout):
    ctx = env.ctx
    qsock = os.path.join(env.disk, f"q{mib}.qmp")
    unlink(qsock)
    unlink(env.ram_file(mib))
    vm = VM(env.qemu(mib, env.shared_obj(mib), qsock), set_start_env=False)
    q = None
    try:
        vm.expect(PROMPT, boot_timeout, what="QEMU prompt")
        q = QMP(qsock, vm.proc)
        t = time.monotonic()
        S["filled_mib"], S["regions"] = fill(vm)
        S["fill_s"] = time.monotonic() - t
        S["cpu_before"] = cpu_pairs(ctx, vm, ctx.args.snap_cpu_rounds, ctx.args.snap_cpu_seconds)
        S["rss_source"] = vmlib.proc_status(vm.pid)
        # QEMU's default max-bandwidth is 128 MiB/s (MAX_THROTTLE): lift it.
        q.cmd("migrate-set-parameters", **{"max-bandwidth": MAX_BANDWIDTH})
        q.cmd("stop")
        plans = (("create_disk", False, os.path.join(env.disk, f"qemu-{mib}.stream")),
                 ("create_tmpfs", False, os.path.join(env.shm, f"qemu-{mib}.stream")),
                 ("create_shared", True, os.path.join(env.disk, f"qemu-{mib}.shared")))
        for i, (key, shared, path) in enumerate(plans):
            if i:  # a completed migration leaves the source unable to migrate again until run
                q.cmd("cont")
                q.cmd("stop")
            q.cmd("migrate-set-capabilities",
                  capabilities=[{"capability": "x-ignore-shared", "state": shared}])
            load = open("/proc/loadavg").read().split()[0]
            c0 = proc_cpu_ns(vm.pid)
            dt, st = qmp_migrate(q, f"exec:cat > {shlex.quote(path)}", 120)
            time.sleep(0.05)  # QEMU reaps the exec: child (cat) from its main loop
            S[key] = {"ns": dt, "cpu_ns": (proc_cpu_ns(vm.pid) or 0) - (c0 or 0), "load": load,
                      "qemu_total_ms": st.get("total-time"),
                      "transferred_mib": st.get("ram", {}).get("transferred", 0) / MIB,
                      "file_mib": blocks_mib(path), "state_bytes": os.path.getsize(path)}
            if key == "create_tmpfs":
                unlink(path)
        S["stream"] = plans[0][2]
        S["shared"] = plans[2][2]
        # The restored guest writes into the shared RAM file: keep it as it was.
        S["pristine"] = env.ram_file(mib) + ".pristine"
        t0 = time.monotonic_ns()
        shutil.copyfile(env.ram_file(mib), S["pristine"])
        S["copy_ns"] = time.monotonic_ns() - t0
    finally:
        if q:
            q.close()
        vm.close()


# ---------------------------------------------------------------- restores


def restore_argon(env, mib, A, cpu=False):
    r = {"load": open("/proc/loadavg").read().split()[0]}
    # No ARGON_START_NS: --timings then count from argon-vmm's main(), so they leave
    # process start out (Firecracker's restore target does too); the launcher's
    # spawn -> answer includes it.
    vm = VM(env.argon_restore(A["state"], A["mem"]), set_start_env=False)
    try:
        vm.send("echo restored\n")
        _, t = vm.expect(ANSWER, 10, what="restored")
        r["answer_ns"] = t - vm.t0_ns
        r["threads"] = thread_cpu(vm.pid)
        r["cpu_ns"] = sum(r["threads"].values()) if r["threads"] else None
        r["mem"] = memory_now(vm.pid, os.path.basename(A["mem"]))
        if cpu:
            r["cpu_after"] = cpu_pairs(env.ctx, vm, env.ctx.args.snap_cpu_rounds,
                                      env.ctx.args.snap_cpu_seconds)
            addr, nbytes, digest = A["regions"][-1]
            m, _ = command(vm, f"mem-sum {addr} {nbytes}", SUM_RX, 30)
            r["sum_ok"] = m.group(1).decode() == digest
        vm.send("poweroff\n")
        vm.wait_exit(10)
        m = TIMINGS_RX.search(vm.err)
        if m:
            r["kvm_ready_ms"], r["first_insn_ms"], r["first_byte_ms"] = (
                float(m.group(i)) for i in (1, 2, 3))
    finally:
        vm.close()
    return r


def restore_qemu(env, mib, Q, shared, cpu=False):
    r = {}
    if shared:
        t0 = time.monotonic_ns()
        shutil.copyfile(Q["pristine"], env.ram_file(mib))
        r["copy_ns"] = time.monotonic_ns() - t0
    r["load"] = open("/proc/loadavg").read().split()[0]
    qsock = os.path.join(env.disk, f"r{mib}.qmp")
    unlink(qsock)
    ram = env.shared_obj(mib) if shared else env.memfd_obj(mib)
    vm = VM(env.qemu(mib, ram, qsock, incoming="defer"), set_start_env=False)
    q = None
    try:
        q = QMP(qsock, vm.proc)
        r["qmp_ns"] = time.monotonic_ns() - vm.t0_ns
        q.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "events", "state": True},
            {"capability": "x-ignore-shared", "state": shared}])
        q.cmd("migrate-incoming", uri=f"exec:cat {shlex.quote(Q['shared' if shared else 'stream'])}")
        e = q.wait_event(lambda ev: ev.get("event") == "MIGRATION" and ev["data"]["status"] in
                         ("completed", "failed"), 120)
        if e["data"]["status"] != "completed":
            raise BenchError(f"QEMU incoming migration {e['data']['status']}")
        r["loaded_ns"] = time.monotonic_ns() - vm.t0_ns
        q.cmd("cont")
        r["cont_ns"] = time.monotonic_ns() - vm.t0_ns
        vm.send("echo restored\n")
        _, t = vm.expect(ANSWER, 10, what="restored")
        r["answer_ns"] = t - vm.t0_ns
        r["cpu_ns"] = cpu_ns(vm.pid)
        r["mem"] = memory_now(vm.pid, env.ram_file(mib) if shared else "memfd:ram")
        if cpu:
            limit = env.ctx.args.snap_cpu_timeout
            rounds = env.ctx.args.snap_qemu_rounds
            hc = host_cycles(env.ctx, env.ctx.args.snap_cpu_rounds)
            t0 = time.monotonic()
            vm.send(f"cpu-bench {rounds}\n")
            try:
                m, _ = vm.expect(CPU_RX, limit, what="cpu-bench")
                r["cpu_after"] = ([int(m.group(2)) / int(m.group(1))],
                                  [hc / env.ctx.args.snap_cpu_rounds] if hc else [])
                r["cpu_after_s"] = time.monotonic() - t0
            except BenchError:
                r["cpu_after"] = None
                r["cpu_after_s"] = None
                r["cpu_timeout_s"] = limit
    finally:
        if q:
            q.close()
        vm.close()
    return r


def rotate(xs, i):
    i %= len(xs)
    return xs[i:] + xs[:i]


def spawn_floor(n):
    """Spawn -> reading the output line of /bin/echo, from this launcher."""
    out = []
    for _ in range(n):
        vm = VM(["/bin/echo", "restored"], set_start_env=False)
        vm.out += b"\n"  # the marker wants a line before it
        try:
            _, t = vm.expect(rb"\nrestored\r?\n", 5)
            out.append(t - vm.t0_ns)
        finally:
            vm.wait_exit(5)
    return out


def suite(ctx, res):
    a = ctx.args
    R = res["snapshot"] = {"sizes": {}, "floor": []}
    env = Env(ctx)
    R["disk_dir"], R["shm_dir"] = env.disk, env.shm
    sizes = [int(s) for s in a.snap_sizes.split(",")]
    ctx.commands.append(("snapshot: argon source (then PATCH /vm Paused, PUT /snapshot/create)",
                         shlex.join(env.argon_boot(sizes[-1], "DIR/a.sock"))))
    ctx.commands.append(("snapshot: argon restore (`echo restored` written to stdin at once; "
                         "ARGON_START_NS unset, so --timings count from main())",
                         shlex.join(env.argon_restore("DIR/argon-S.snap", "DIR/argon-S.mem"))))
    ctx.commands.append(("snapshot: QEMU source (QMP migrate-set-parameters max-bandwidth 2^40; "
                         "stop; migrate-set-capabilities x-ignore-shared off|on; migrate "
                         "exec:cat > FILE; cont; stop between migrations)",
                         shlex.join(env.qemu(sizes[-1], env.shared_obj(sizes[-1]), "DIR/q.qmp"))))
    ctx.commands.append(("snapshot: QEMU restore (QMP: migrate-set-capabilities events on, "
                         "x-ignore-shared on|off; migrate-incoming exec:cat FILE; wait MIGRATION "
                         "completed; cont; then `echo restored` on stdin); stream kind has "
                         "-object " + env.memfd_obj(sizes[-1]),
                         shlex.join(env.qemu(sizes[-1], env.shared_obj(sizes[-1]), "DIR/r.qmp",
                                             incoming="defer"))))
    ctx.commands.append(("snapshot: typed at each source's prompt before the snapshot",
                         "mem-fill 64 N (until 'no fresh memory'), then 16, 4, 1 MiB pieces; "
                         f"cpu-bench {a.snap_cpu_rounds} for {a.snap_cpu_seconds:g} s, each after build/cpu-bench-host "
                         f"{a.snap_cpu_rounds}"))
    try:
        R["floor"] = spawn_floor(max(3, a.snap_runs))
        for mib in sizes:
            Z = R["sizes"][mib] = {"argon": {}, "qemu": {}, "runs": {k: [] for k in KINDS}}
            log(f"snapshot {mib} MiB: argon source: boot, fill every free page, cpu-bench, "
                "snapshot to disk and tmpfs")
            argon_source(env, mib, Z["argon"], a.boot_timeout)
            log(f"snapshot {mib} MiB: QEMU source: the same, migrate stream to disk and tmpfs, "
                "then x-ignore-shared")
            qemu_source(env, mib, Z["qemu"], a.boot_timeout)
        # Sizes and kinds alternate in every round, so all six series share the load.
        log(f"snapshot: {a.snap_runs} rounds, each restoring every size with every kind, "
            "in rotating order")
        for i in range(a.snap_runs):
            if ctx.left() < 60:
                ctx.note(f"snapshot: stopped after {i} rounds (budget)")
                break
            for mib in rotate(sizes, i):
                Z = R["sizes"][mib]
                for kind in rotate(list(KINDS), i):
                    if kind == "argon":
                        r = restore_argon(env, mib, Z["argon"])
                    else:
                        r = restore_qemu(env, mib, Z["qemu"], kind == "qemu-shared")
                    Z["runs"][kind].append(r)
        for mib in sizes:
            Z = R["sizes"][mib]
            log(f"snapshot {mib} MiB: cpu-bench after a restore of each kind")
            Z["after"] = {"argon": restore_argon(env, mib, Z["argon"], cpu=True)}
            for kind in ("qemu-shared", "qemu-stream"):
                Z["after"][kind] = restore_qemu(env, mib, Z["qemu"], kind == "qemu-shared",
                                                cpu=True)
    except BenchError as e:
        R["error"] = str(e)
        log(f"snapshot: {e}")


# ---------------------------------------------------------------- report


class Table:
    HEAD = ("row", "argon", "qemu x-ignore-shared", "ratio", "qemu stream", "ratio", "goal")

    def __init__(self):
        self.rows = []

    def add(self, *cells):
        self.rows.append(tuple(str(c) for c in cells) + ("",) * (len(self.HEAD) - len(cells)))

    def section(self, title):
        self.rows.append(title)

    def render(self):
        rows = [r for r in self.rows if not isinstance(r, str)]
        w = [max(len(r[i]) for r in rows + [self.HEAD]) for i in range(len(self.HEAD))]
        out = []
        for r in [self.HEAD] + self.rows:
            if isinstance(r, str):
                out.append(f"-- {r}")
            else:
                out.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
        return "\n".join(out)


def vals(runs, key, sub=None):
    out = []
    for r in runs:
        v = r.get(key) if sub is None else (r.get(key) or {}).get(sub)
        out.append(v)
    return [v for v in out if v is not None]


def goal_str(ok, text):
    return f"{'MET' if ok else 'NOT MET'}: {text}"


def speed(pair):
    """best guest cycles per round / best host cycles per round."""
    if not pair or not pair[0] or not pair[1]:
        return None
    return min(pair[0]) / min(pair[1])


def report(ctx, res):
    R = res.get("snapshot")
    if R is None:
        return
    a = ctx.args
    print("\nSnapshots (issue 9): restore, RSS, create, cpu-bench after restore")
    print(f"  {a.snap_runs} restores of each kind per size, rotating; median (min-max); "
          "ratio = argon / QEMU")
    t = Table()
    answers, cpus, insns = {}, {}, {}
    floor = med(R["floor"])
    for mib, Z in R["sizes"].items():
        runs = Z["runs"]
        ans = {k: vals(runs[k], "answer_ns") for k in KINDS}
        answers[mib] = med(ans["argon"])
        cpus[mib] = med(vals(runs["argon"], "cpu_ns"))
        insns[mib] = med(vals(runs["argon"], "first_insn_ms"))
        ma, ms_, mq = (med(ans[k]) for k in KINDS)
        t.section(f"{mib} MiB guest, {Z['argon'].get('filled_mib', '?')} MiB written by the guest "
                  f"(argon), {Z['qemu'].get('filled_mib', '?')} MiB (QEMU); "
                  f"load {', '.join(sorted(set(r['load'] for k in KINDS for r in runs[k])))}")
        t.add("spawn -> 'restored' answered (ms)", spread(ans["argon"], nd=2, scale=1e-6),
              spread(ans["qemu-shared"], nd=1, scale=1e-6), ratio_str(ma, ms_),
              spread(ans["qemu-stream"], nd=1, scale=1e-6), ratio_str(ma, mq),
              goal_str(ma is not None and ma <= 5e6, f"<= 5 ms (argon {ma / 1e6:.2f} ms)")
              if ma else "")
        ar = runs["argon"]
        fi = med(vals(ar, "first_insn_ms"))
        t.add("  argon from main() (--timings): state loaded, KVM set up (kvm_ready)",
              spread(vals(ar, "kvm_ready_ms")))
        t.add("  argon from main(): first KVM_RUN (restore done, process start left out)",
              spread(vals(ar, "first_insn_ms")), "", "", "", "",
              goal_str(fi <= 5.0, f"<= 5 ms, Firecracker's measure ({fi:.2f} ms)") if fi else "")
        t.add("  argon from main(): first console byte (the echo of the typed line)",
              spread(vals(ar, "first_byte_ms")))
        qs, qt = runs["qemu-shared"], runs["qemu-stream"]
        t.add("  QEMU: spawn -> QMP up (process start)", "",
              spread(vals(qs, "qmp_ns"), nd=1, scale=1e-6), "",
              spread(vals(qt, "qmp_ns"), nd=1, scale=1e-6))
        t.add("  QEMU: spawn -> incoming migration completed", "",
              spread(vals(qs, "loaded_ns"), nd=1, scale=1e-6), "",
              spread(vals(qt, "loaded_ns"), nd=1, scale=1e-6))
        cpu = {k: vals(runs[k], "cpu_ns") for k in KINDS}
        ca, cs, cq = (med(cpu[k]) for k in KINDS)
        t.add("host CPU of the restoring process to the answer (ms, all threads)",
              spread(cpu["argon"], nd=2, scale=1e-6), spread(cpu["qemu-shared"], nd=1, scale=1e-6),
              ratio_str(ca, cs), spread(cpu["qemu-stream"], nd=1, scale=1e-6), ratio_str(ca, cq))
        if Z["qemu"].get("copy_ns"):
            t.add("  QEMU x-ignore-shared: copy the pristine RAM file before each restore "
                  "(not in the figures above; ms)", "",
                  spread(vals(qs, "copy_ns"), nd=0, scale=1e-6))
        mem = {k: [r["mem"] for r in runs[k] if r.get("mem")] for k in KINDS}

        def mm(k, f):
            return med([f(m) for m in mem[k]])
        own = {k: mm(k, lambda m: (m["anon"] + m["file"] - (m["guest_rss"] if k == "argon" else 0)) / 1024)
               for k in KINDS}
        tot = {k: mm(k, lambda m: (m["anon"] + m["file"]) / 1024) for k in KINDS}
        t.add("RSS after restore: RssAnon+RssFile (MiB)", f"{tot['argon']:.2f}",
              f"{tot['qemu-shared']:.2f}", ratio_str(tot["argon"], tot["qemu-shared"]),
              f"{tot['qemu-stream']:.2f}", ratio_str(tot["argon"], tot["qemu-stream"]))
        t.add("  guest RAM pages in the process (MiB; argon: in RssFile/RssAnon, QEMU: RssShmem)",
              f"{mm('argon', lambda m: m['guest_rss'] / 1024):.2f} (read {mm('argon', lambda m: m['guest_file'] / 1024):.2f}, "
              f"written {mm('argon', lambda m: m['guest_anon'] / 1024):.2f})",
              f"{mm('qemu-shared', lambda m: m['shmem'] / 1024):.2f}", "",
              f"{mm('qemu-stream', lambda m: m['shmem'] / 1024):.2f}")
        oa = own["argon"]
        t.add("  VMM's own = RssAnon+RssFile - guest pages (MiB)", f"{oa:.2f}",
              f"{own['qemu-shared']:.2f}", ratio_str(oa, own["qemu-shared"]),
              f"{own['qemu-stream']:.2f}", ratio_str(oa, own["qemu-stream"]),
              goal_str(oa <= 4.0, f"<= 4 MiB + guest pages (argon {oa:.2f} MiB)"))
        A, Q = Z["argon"], Z["qemu"]
        for where, qkey in (("disk", "create_disk"), ("tmpfs", "create_tmpfs")):
            ca_, cq_ = A.get(f"create_{where}"), Q.get(qkey)
            if not ca_ or not cq_:
                continue
            cs_ = Q.get("create_shared") if where == "disk" else None
            ga = ca_["ns"] / 1e9
            t.add(f"create a full snapshot, to {where} (s; load {ca_['load']}/{cq_['load']})",
                  f"{ga:.3f}", f"{cs_['ns'] / 1e9:.3f} (devices only)" if cs_ else "-",
                  ratio_str(ca_["ns"], cs_["ns"]) if cs_ else "-",
                  f"{cq_['ns'] / 1e9:.3f}", ratio_str(ca_["ns"], cq_["ns"]),
                  goal_str(ga <= 1.0, f"<= 1 s for 1 GiB written (argon {ga:.3f} s)")
                  if mib >= 1024 and where == "disk" else "")
            fl = A.get(f"floor_{where}")
            if fl:
                t.add(f"  floor: pwrite {A['filled_mib']} MiB from one buffer"
                      + (" + fdatasync" if where == "disk" else "") + " (s)", f"{fl / 1e9:.3f}")
            t.add(f"  VMM host CPU during it, with QEMU's `cat` (s); file (MiB on {where})",
                  f"{ca_['cpu_ns'] / 1e9:.3f}; {ca_['file_mib']:.0f}",
                  f"{cs_['cpu_ns'] / 1e9:.3f}; {cs_['state_bytes'] / 1024:.0f} KiB" if cs_ else "",
                  "", f"{cq_['cpu_ns'] / 1e9:.3f}; {cq_['file_mib']:.0f}")
        af = Z.get("after", {})
        ca_b = (A.get("cpu_before") or ([], []))[0]
        ca_a = ((af.get("argon") or {}).get("cpu_after") or ([], []))[0]
        raw = min(ca_a) / min(ca_b) if ca_a and ca_b else None
        sb_, sa_ = speed(A.get("cpu_before")), speed((af.get("argon") or {}).get("cpu_after"))
        ra = sa_ / sb_ if sa_ and sb_ else None
        qb = (Q.get("cpu_before") or ([], []))[0]

        def qcell(k):
            r = af.get(k) or {}
            if r.get("cpu_timeout_s"):
                return f"did not finish {a.snap_qemu_rounds} rounds in {r['cpu_timeout_s']:.0f} s"
            if r.get("cpu_after") and qb:
                sq, sqb = speed(r["cpu_after"]), speed(Q.get("cpu_before"))
                return (f"{r['cpu_after'][0][0] / min(qb):,.0f}x ({sq / sqb:,.0f}x; "
                        f"{r.get('cpu_after_s', 0):.1f} s)") if sq and sqb else "n/a"
            return "n/a"
        t.add("cpu-bench after restore / before (best guest cycles per round; in brackets "
              "each over the best host run of its window)",
              f"{raw:.4f} ({ra:.4f})" if ra and raw else "n/a", qcell("qemu-shared"), "", qcell("qemu-stream"), "",
              goal_str(raw is not None and raw <= 1.02,
                       f"at most 2% slower (argon {100 * (raw - 1):+.1f}%)") if raw else "")
        if af.get("argon", {}).get("sum_ok") is not None:
            t.add("  argon: mem-sum of the last filled region after restore",
                  "matches" if af["argon"]["sum_ok"] else "DIFFERS")
    sz = sorted(answers)
    if len(sz) >= 2 and answers[sz[0]] and answers[sz[-1]]:
        r = answers[sz[-1]] / answers[sz[0]]
        t.section("sizes")
        t.add(f"argon restore {sz[-1]} MiB / {sz[0]} MiB (medians)", f"{r:.3f}", "", "", "", "",
              goal_str(r <= 1.2, f"<= 1.2x ({r:.2f}x)"))
        if cpus.get(sz[0]) and cpus.get(sz[-1]):
            t.add("  the same, host CPU of the restoring process to the answer",
                  f"{cpus[sz[-1]] / cpus[sz[0]]:.3f}")
        if insns.get(sz[0]) and insns.get(sz[-1]):
            t.add("  the same, main() -> first KVM_RUN", f"{insns[sz[-1]] / insns[sz[0]]:.3f}")
    if floor:
        t.add("floor: spawn -> the line of /bin/echo restored (same launcher; ms)",
              spread(R["floor"], nd=2, scale=1e-6))
    print(t.render())
    if R.get("error"):
        print(f"  ERROR: {R['error']}")
    print("\nSnapshot details")
    for mib, Z in R["sizes"].items():
        for k in KINDS:
            xs = [f"{r['answer_ns'] / 1e6:.2f}" for r in Z["runs"][k] if r.get("answer_ns")]
            print(f"  {mib} MiB {k}: answered (ms) {' '.join(xs)}")
        names = sorted({n for r in Z["runs"]["argon"] for n in r.get("threads", {})})
        print(f"  {mib} MiB argon: CPU to the answer by thread, median ms: " + ", ".join(
            f"{n} {med([r['threads'].get(n, 0) for r in Z['runs']['argon'] if r.get('threads')]) / 1e6:.2f}"
            for n in names))
        for k, side in (("argon", Z["argon"]), ("qemu", Z["qemu"])):
            print(f"  {mib} MiB {k} source: filled {side.get('filled_mib')} MiB in "
                  f"{side.get('fill_s', 0):.1f} s; cpu-bench before (guest/host cycles per round) "
                  f"{speed(side.get('cpu_before')) or 0:.4f}")
            for key in ("create_disk", "create_tmpfs", "create_shared"):
                if side.get(key):
                    print(f"    {key}: {json.dumps(side[key])}")
        for k, r in Z.get("after", {}).items():
            src = Z["argon" if k == "argon" else "qemu"]
            b, a_ = src.get("cpu_before"), r.get("cpu_after")
            if b and a_:
                sb, sa = speed(b), speed(a_)
                print(f"  {mib} MiB {k} cpu-bench guest cycles per round: before best "
                      f"{min(b[0]):.0f} median {med(b[0]):.0f} ({len(b[0])} runs; host best "
                      f"{min(b[1]):.0f}), after best {min(a_[0]):.0f} median {med(a_[0]):.0f} "
                      f"({len(a_[0])} runs; host best {min(a_[1]):.0f}); guest/host before "
                      f"{sb:.4f} after {sa:.4f}" if sb and sa else "")
    ctx.note("snapshot: the disk is the host's /tmp ("
             + (subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "-T", R["disk_dir"]],
                               capture_output=True, text=True).stdout.strip() or "?")
             + "); argon's create ends with fdatasync of the memory file, QEMU's `exec:cat > FILE` "
             "does not sync; the tmpfs rows take the disk out of both")
    ctx.note("snapshot: restores read memory files the create just wrote (in the page cache); "
             "argon maps its file MAP_PRIVATE (pages load on first touch, guest writes stay "
             "private), QEMU stream reads the whole stream into a memfd, QEMU x-ignore-shared maps "
             "the live RAM file shared (the restored guest writes into it: one restore per copy)")
    ctx.note("snapshot: argon's guest pages are counted from /proc/PID/smaps of the memory-file "
             "mapping (clean file pages are in RssFile, written ones in RssAnon); QEMU's guest RAM "
             "is shared memory (RssShmem), not in RssAnon+RssFile")
