"""Host-side machinery for the device benchmarks (bench.py --devices): disk
images, fio, a network namespace with taps, a UDP sink inside it, the host end
of argon's hybrid vsock, argon's own metrics, and the guest's result lines.

Nothing here boots a VM; bench.py does that with vmlib. Every resource made
here is registered with vmlib.at_cleanup(), so it is removed on a normal exit,
on an error and on SIGINT/SIGTERM/SIGHUP alike. Names carry the run's marker
(ARGON_BENCH_RUN, else our pid) so run-all.sh can remove them even if bench.py
died hard. Python 3 standard library only.
"""

import json
import os
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import vmlib
from vmlib import BenchError

RUN = os.environ.get("ARGON_BENCH_RUN") or str(os.getpid())
PREFIX = f"argon-bench-{RUN}"  # the netns name and the temporary directory's prefix

# ---------------------------------------------------------------- guest result lines

BLK_RX = re.compile(rb"blk-bench: randread_qd1_iops (\d+) randread_qd32_iops (\d+) "
                    rb"randwrite_qd1_iops (\d+) randwrite_qd32_iops (\d+) seqread_mib_s (\d+) "
                    rb"seqwrite_mib_s (\d+)\r?\nblk-bench: requests (\d+) kicks (\d+) "
                    rb"interrupts (\d+)\r?\n")
BLK_KEYS = ("randread_qd1_iops", "randread_qd32_iops", "randwrite_qd1_iops",
            "randwrite_qd32_iops", "seqread_mib_s", "seqwrite_mib_s")
NET_TX_RX = re.compile(rb"net-bench: tx_frames_s (\d+) tx_mib_s (\d+) tx_frames (\d+)\r?\n"
                       rb"net-bench: kicks (\d+)\r?\n")
VSOCK_RX = re.compile(rb"vsock-bench: tx_mib_s (\d+) rx_mib_s (\d+)\r?\n"
                      rb"vsock-bench: tx_bytes (\d+) rx_bytes (\d+) tx_kicks (\d+)\r?\n")
VLIST_RX = re.compile(rb"virtio-list: devices (\d+)\r?\n")
VLIST_LINE = re.compile(rb"virtio-list: (\d+) (\S+) id \d+ version \d+ base (0x[0-9a-f]+) "
                        rb"gsi (\d+) irqs (\d+)")


def parse_blk(m):
    v = [int(x) for x in m.groups()]
    out = dict(zip(BLK_KEYS, v[:6]))
    out.update(requests=v[6], kicks=v[7], interrupts=v[8])
    return out


def parse_net_tx(m):
    v = [int(x) for x in m.groups()]
    return {"frames_s": v[0], "mib_s": v[1], "frames": v[2], "kicks": v[3]}


def parse_vsock(m):
    v = [int(x) for x in m.groups()]
    return {"tx_mib_s": v[0], "rx_mib_s": v[1], "tx_bytes": v[2], "rx_bytes": v[3],
            "tx_kicks": v[4]}


def parse_virtio_list(text):
    """{device name: interrupts taken so far} from virtio-list's lines (the
    first device of each kind)."""
    out = {}
    for m in VLIST_LINE.finditer(text):
        out.setdefault(m.group(2).decode(), int(m.group(5)))
    return out


# ---------------------------------------------------------------- scratch space


class Scratch:
    """A temporary directory for images and sockets, removed at cleanup."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix=PREFIX + "-")
        vmlib.at_cleanup(self.remove)

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name):
        return os.path.join(self.path, name)


def make_image(path, mib):
    """A raw image of MiB filled with random data (every block allocated, no
    holes: a hole reads as zeroes without touching the page cache), synced so
    no writeback is pending, then read once so it sits in the page cache as a
    guest's reads would find it."""
    block = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for i in range(mib):
            # vary each MiB a little so no two blocks are equal
            os.write(fd, i.to_bytes(8, "little") + block[8:])
        os.fdatasync(fd)
    finally:
        os.close(fd)
    warm_cache(path)


def warm_cache(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass


# ---------------------------------------------------------------- fio, the ceiling


# The guest's blk-bench phases as fio jobs: same sizes, queue depths and random
# 4 KiB-aligned offsets over the whole image; io_uring on the file through the
# page cache (no O_DIRECT), as argon's backend does. --invalidate=0: fio would
# otherwise drop the file's page cache before each job and measure the disk.
FIO_JOBS = (
    ("randread_qd1_iops", "randread", "4k", 1),
    ("randread_qd32_iops", "randread", "4k", 32),
    ("randwrite_qd1_iops", "randwrite", "4k", 1),
    ("randwrite_qd32_iops", "randwrite", "4k", 32),
    ("seqread_mib_s", "read", "1M", 4),
    ("seqwrite_mib_s", "write", "1M", 4),
)


def fio_argv(fio, image, mib, seconds):
    argv = [fio, "--output-format=json", f"--filename={image}", f"--size={mib}M",
            "--ioengine=io_uring", "--direct=0", "--invalidate=0", "--norandommap",
            "--randrepeat=0", "--time_based", f"--runtime={seconds}"]
    for i, (name, rw, bs, qd) in enumerate(FIO_JOBS):
        argv += [f"--name={name}", f"--rw={rw}", f"--bs={bs}", f"--iodepth={qd}"]
        if i:
            argv.append("--stonewall")
    return argv


def fio_run(argv, timeout_s):
    """Runs fio; returns {phase: IOPS or MiB/s} like blk-bench's line."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise BenchError(f"fio took longer than {timeout_s} s")
    try:
        jobs = {j["jobname"]: j for j in json.loads(p.stdout[p.stdout.index("{"):])["jobs"]}
    except (ValueError, KeyError) as e:
        raise BenchError(f"fio: no JSON result ({e}); stderr: {p.stderr[-300:]!r}")
    out = {}
    for name, rw, _, _ in FIO_JOBS:
        side = jobs[name]["write" if "write" in rw else "read"]
        out[name] = side["iops"] if name.endswith("_iops") else side["bw"] / 1024.0
    return out


# ---------------------------------------------------------------- network


def sh(*argv, check=True):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: {p.stderr.strip() or p.returncode}")
    return p


class Netns:
    """A network namespace of our own with persistent taps in it. The VMMs run
    inside it (ip netns exec), so their taps, and every frame they send, stay
    there; deleting it at cleanup takes the taps with it."""

    def __init__(self):
        self.name = PREFIX
        sh("ip", "netns", "add", self.name)
        vmlib.at_cleanup(self.delete)
        sh("ip", "-n", self.name, "link", "set", "lo", "up")
        self.taps = []

    def add_tap(self, tap, cidr):
        sh("ip", "-n", self.name, "tuntap", "add", "dev", tap, "mode", "tap")
        self.taps.append(tap)
        sh("ip", "-n", self.name, "addr", "add", cidr, "dev", tap)
        sh("ip", "-n", self.name, "link", "set", tap, "up")

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def delete(self):
        for tap in self.taps:
            sh("ip", "-n", self.name, "link", "del", tap, check=False)
        self.taps = []
        sh("ip", "netns", "del", self.name, check=False)


# The UDP sink, run inside the namespace. A thread counts datagrams on one
# socket; each line on stdin is answered with the counts so far as JSON
# ("reset" zeroes them first), plus the namespace's UDP receive-buffer drops
# and each tap's received frames, so a loss shows where it happened.
SINK_CODE = r"""
import json, os, socket, sys, threading, time
port, taps = int(sys.argv[1]), sys.argv[2:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
s.bind(("0.0.0.0", port))
st = [0, 0, 0, 0]
def loop():
    buf = bytearray(65536)
    now = time.monotonic_ns
    while True:
        n = s.recv_into(buf)
        t = now()
        if not st[0]:
            st[2] = t
        st[0] += 1; st[1] += n; st[3] = t
threading.Thread(target=loop, daemon=True).start()
def udp_drops():
    rows = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:]))["RcvbufErrors"])
def tap_rx(t):
    try:
        return int(open(f"/sys/class/net/{t}/statistics/rx_packets").read())
    except OSError:
        return -1
print("ready", flush=True)
for line in sys.stdin:
    if line.startswith("reset"):
        st[:] = [0, 0, 0, 0]
    print(json.dumps({"frames": st[0], "bytes": st[1], "first_ns": st[2], "last_ns": st[3],
                      "rcvbuf_drops": udp_drops(), "tap_rx": {t: tap_rx(t) for t in taps}}),
          flush=True)
"""


class UdpSink:
    """The host end of net-bench tx: counts what reaches a socket in the netns."""

    def __init__(self, netns, port, taps):
        self.proc = vmlib.spawn(netns.prefix() + ["python3", "-u", "-c", SINK_CODE, str(port)]
                                + list(taps))
        vmlib.at_cleanup(lambda: vmlib.reap(self.proc))
        if self._line(10) != "ready":
            raise BenchError("the UDP sink did not start: "
                             + self.proc.stderr.read1(2000).decode(errors="replace"))

    def _line(self, timeout_s):
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], timeout_s)
        if not r:
            raise BenchError("the UDP sink did not answer")
        return self.proc.stdout.readline().decode().strip()

    def ask(self, cmd="count"):
        self.proc.stdin.write(cmd.encode() + b"\n")
        self.proc.stdin.flush()
        return json.loads(self._line(10))

    def close(self):
        vmlib.reap(self.proc)


# ---------------------------------------------------------------- vsock


class VsockHost:
    """The host end of vsock-bench PORT with argon's hybrid vsock: a guest
    connection to host port P arrives on the unix socket <uds>_P. On PORT we
    read and discard; on PORT+1 we write until the guest closes. Serves any
    number of runs; per-run byte counts in .got / .sent (lists)."""

    CHUNK = 256 << 10

    def __init__(self, uds, port):
        self.got, self.sent, self.errors = [], [], []
        self.stop = threading.Event()
        self.socks = []
        for p, fn in ((port, self._reader), (port + 1, self._writer)):
            path = f"{uds}_{p}"
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            s.listen(4)
            s.settimeout(0.2)
            self.socks.append((s, path))
            threading.Thread(target=self._serve, args=(s, fn), daemon=True).start()
        vmlib.at_cleanup(self.close)

    def _serve(self, s, fn):
        while not self.stop.is_set():
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(15)
            try:
                with c:
                    fn(c)
            except OSError as e:
                self.errors.append(str(e))

    def _reader(self, c):
        buf, n = bytearray(1 << 20), 0
        try:
            while (k := c.recv_into(buf)):
                n += k
        finally:
            self.got.append(n)

    def _writer(self, c):
        data, n = b"\xa5" * self.CHUNK, 0
        try:
            while not self.stop.is_set():
                c.sendall(data)
                n += len(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the guest closed: the end of the run
        finally:
            self.sent.append(n)

    def close(self):
        self.stop.set()
        for s, path in self.socks:
            s.close()
            try:
                os.unlink(path)
            except OSError:
                pass
        self.socks = []


# ---------------------------------------------------------------- argon's metrics


def http_get_unix(path, url, timeout_s=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout_s)
    try:
        s.connect(path)
        s.sendall(f"GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while (chunk := s.recv(65536)):
            data += chunk
    finally:
        s.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise BenchError(f"GET {url} on {path}: {head[:80]!r}")
    return body.decode(errors="replace")


METRIC_RX = re.compile(r'^(argon_\w+)(?:\{([^}]*)\})? (\S+)$', re.M)


def argon_metrics(api_sock):
    """argon-vmm's GET /metrics (Prometheus text) as {'name{labels}': value};
    None if the API does not answer."""
    try:
        text = http_get_unix(api_sock, "/metrics")
    except (OSError, BenchError):
        return None
    return {f"{m.group(1)}{{{m.group(2) or ''}}}": float(m.group(3))
            for m in METRIC_RX.finditer(text)}


def metrics_delta(before, after, keep=("exits_total", "accesses_total", "notifies_total",
                                       "interrupts_total", "ops_total", "packets_total",
                                       "dropped_total", "steal_seconds", "run_seconds",
                                       "cpu_seconds")):
    """after - before for the counters that explain a device figure; zero rows
    dropped."""
    if not before or not after:
        return None
    out = {}
    for k, v in after.items():
        if any(f in k for f in keep) and v - before.get(k, 0) != 0:
            out[k.replace("argon_", "")] = round(v - before.get(k, 0), 6)
    return out


def metric_sum(delta, name, label_part=""):
    """Sum of delta entries of family `name` whose labels contain label_part."""
    if not delta:
        return None
    return sum(v for k, v in delta.items() if k.startswith(name + "{") and label_part in k)


# ---------------------------------------------------------------- where the VMM's time went


VCPU_COMM = re.compile(r"^(vcpu\d+|CPU \d+/KVM)$")  # argon's and QEMU's (debug-threads=on)


def thread_times(pid):
    """{tid: (comm, cpu_ns, run_delay_ns)} for every thread of pid, from
    /proc/PID/task/TID/schedstat (time on a CPU, time runnable but waiting
    for one). KVM's own kernel threads attached to the process are left out."""
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
                cpu, delay, _ = (int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        if not comm.startswith("kvm-"):
            out[tid] = (comm, cpu, delay)
    return out


def thread_delta(before, after, wall_ns):
    """CPU and wait time over a window: vCPU threads apart from the rest of
    the VMM (device emulation, event loops, I/O workers). Threads that ended
    inside the window are missed (short-lived io_uring workers)."""
    d = {"wall_ns": wall_ns, "vcpu_cpu_ns": 0, "vcpu_wait_ns": 0, "other_cpu_ns": 0,
         "other": {}, "other_wait": {}}
    for tid, (comm, cpu, delay) in after.items():
        c0, w0 = before.get(tid, (comm, 0, 0))[1:]
        if VCPU_COMM.match(comm):
            d["vcpu_cpu_ns"] += cpu - c0
            d["vcpu_wait_ns"] += delay - w0
        else:
            comm = re.sub(r"-\d+$", "", comm)  # iou-wrk-1234: one name for all workers
            d["other_cpu_ns"] += cpu - c0
            d["other"][comm] = d["other"].get(comm, 0) + cpu - c0
            d["other_wait"][comm] = d["other_wait"].get(comm, 0) + delay - w0
    return d
