#!/usr/bin/env python3
"""argon-vmm's API: how soon the socket answers after the process starts, and how
long requests take while argon-guest runs block and network workloads.

  socket ready   exec of `argon-vmm --api-sock` -> the first successful connect(),
                 against the floor: a C program that only creates and listens on a
                 unix socket (bench/api_floor.c). Also argon-vmm's own figure (its
                 info log, from ARGON_START_NS set just before exec).
  API latency    round trips on one kept-alive connection (raw socket, so the
                 client adds little): GET /machine-config, GET /metrics (a
                 Prometheus scrape), PUT /actions FlushMetrics (writes a metrics
                 line), PATCH /balloon (changes the balloon's target) -- first
                 before boot, then with the guest idle at its prompt, then during
                 blk-bench, then during net-bench tx (UDP over a tap, needs root).

Goals (the issue's): socket ready in under 5 ms, API median under 100 us.
Needs build/argon-vmm, build/argon-guest, cc, /dev/kvm; root for the network part.
Python 3 standard library only. Prints a table; --json for machine output.
"""
import argparse
import atexit
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
VMM = os.environ.get("ARGON_VMM", os.path.join(BUILD, "argon-vmm"))
GUEST = os.environ.get("ARGON_GUEST", os.path.join(BUILD, "argon-guest"))
FLOOR_SRC = os.path.join(ROOT, "bench", "api_floor.c")
FLOOR = os.path.join(BUILD, "bench", "api-floor")
HOST_IP, GUEST_IP, UDP_PORT = "10.213.9.1", "10.213.9.2", 9999

CHILDREN = []
CLEANUPS = []


def cleanup():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    CHILDREN.clear()
    while CLEANUPS:
        CLEANUPS.pop()()


def on_signal(sig, frame):
    cleanup()
    sys.exit(128 + sig)


def spawn(argv, env=None, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL):
    p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                         start_new_session=True)
    CHILDREN.append(p)
    return p


def reap(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    CHILDREN.remove(p)


# ------------------------------------------------------------------ socket ready

def wait_connectable(path, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return True
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{proc.args[0]} exited: {proc.stderr.read().decode()}")
            time.sleep(0.00005)
        finally:
            s.close()
    raise SystemExit(f"no socket at {path} within {timeout}s")


def time_to_socket(argv, path, env=None):
    """ms from just before exec to the first successful connect()."""
    env = dict(env or os.environ)
    if os.path.exists(path):
        os.unlink(path)
    t0 = time.monotonic_ns()
    env["ARGON_START_NS"] = str(t0)
    p = spawn(argv, env=env)
    wait_connectable(path, p)
    t1 = time.monotonic_ns()
    p.send_signal(signal.SIGTERM)
    try:
        err = p.communicate(timeout=10)[1].decode(errors="replace")
    except subprocess.TimeoutExpired:
        err = ""
    reap(p)
    own = re.search(r"ready ([0-9.]+) ms after process start", err)
    return (t1 - t0) / 1e6, float(own.group(1)) if own else None


def build_floor():
    os.makedirs(os.path.dirname(FLOOR), exist_ok=True)
    subprocess.run(["cc", "-O2", "-o", FLOOR, FLOOR_SRC], check=True)


def socket_ready(runs, tmp):
    build_floor()
    path = os.path.join(tmp, "ready.sock")
    floor, argon, own = [], [], []
    for _ in range(runs):  # alternate, so load on the host hits both alike
        floor.append(time_to_socket([FLOOR, path], path)[0])
        ext, internal = time_to_socket([VMM, "--api-sock", path, "--log-level", "info"], path)
        argon.append(ext)
        if internal is not None:
            own.append(internal)
    return {"floor_ms": floor, "argon_ms": argon, "argon_own_ms": own}


# ------------------------------------------------------------------ API latency

class Client:
    """One kept-alive connection, raw: a request's bytes out, one response in."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def roundtrip(self, request):
        t0 = time.perf_counter_ns()
        self.s.sendall(request)
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"Content-Length: (\d+)", head)
                n = int(m.group(1)) if m else 0
                if len(rest) >= n:
                    self.buf = rest[n:]
                    break
            chunk = self.s.recv(262144)
            if not chunk:
                raise SystemExit("the API closed the connection")
            self.buf += chunk
        t1 = time.perf_counter_ns()
        status = int(head.split(b" ", 2)[1])
        return (t1 - t0) / 1000, status

    def close(self):
        self.s.close()


def req(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    return (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(data)}\r\n\r\n"
            .encode() + data)


def requests_for(started):
    ops = {"GET /machine-config": req("GET", "/machine-config"),
           "GET /metrics": req("GET", "/metrics")}
    if started:
        ops["PUT /actions FlushMetrics"] = req("PUT", "/actions", {"action_type": "FlushMetrics"})
        ops["PATCH /balloon"] = None  # alternates between two targets
    else:
        ops["PUT /machine-config"] = req("PUT", "/machine-config",
                                         {"vcpu_count": 2, "mem_size_mib": 256})
    return ops


def measure(client, started, seconds, min_count=200):
    """Round-robins the operations for `seconds` (at least min_count of each)."""
    ops = requests_for(started)
    lat = {name: [] for name in ops}
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline or min(len(v) for v in lat.values()) < min_count:
        for name, request in ops.items():
            if request is None:
                request = req("PATCH", "/balloon", {"amount_mib": 4 * (i % 2)})
            us, status = client.roundtrip(request)
            if status not in (200, 204):
                raise SystemExit(f"{name}: status {status}")
            lat[name].append(us)
        i += 1
    return lat


def summary(values):
    v = sorted(values)
    return {"n": len(v), "median": statistics.median(v), "p99": v[min(len(v) - 1, int(len(v) * 0.99))]}


class Vmm:
    def __init__(self, sock, tmp):
        self.sock = sock
        self.p = spawn([VMM, "--api-sock", sock], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        wait_connectable(sock, self.p)
        self.out = b""

    def type(self, line):
        self.p.stdin.write(line.encode() + b"\r")
        self.p.stdin.flush()

    def expect(self, pattern, timeout=60):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.out):
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"no {pattern!r} from the guest; console:\n"
                                 + self.out.decode(errors="replace")[-2000:])
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    raise SystemExit("console closed: " + self.p.stderr.read().decode())
                self.out += chunk
        m = re.search(pattern, self.out)
        self.out = self.out[m.end():]


def make_tap():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return None
    name = f"agb{os.getpid() % 100000}"
    subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True)
    CLEANUPS.append(lambda: subprocess.run(["ip", "link", "del", name], check=False))
    subprocess.run(["ip", "addr", "add", f"{HOST_IP}/24", "dev", name], check=True)
    subprocess.run(["ip", "link", "set", name, "up"], check=True)
    return name


def configure(c, tmp, tap):
    disk = os.path.join(tmp, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(256 << 20)
    steps = [req("PUT", "/boot-source", {"kernel_image_path": GUEST, "boot_args":
                                         f"console=ttyS0 argon.ip={GUEST_IP}/24"}),
             req("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}),
             req("PUT", "/drives/bench", {"drive_id": "bench", "path_on_host": disk,
                                          "is_root_device": False, "is_read_only": False}),
             req("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True}),
             req("PUT", "/metrics", {"metrics_path": os.path.join(tmp, "metrics.json")})]
    if tap:
        steps.append(req("PUT", "/network-interfaces/eth0", {"iface_id": "eth0",
                                                             "host_dev_name": tap}))
    for r in steps:
        if c.roundtrip(r)[1] != 204:
            raise SystemExit(f"configuring failed: {r[:60]!r}")


def latency(seconds, tmp):
    tap = make_tap()
    v = Vmm(os.path.join(tmp, "api.sock"), tmp)
    c = Client(v.sock)
    phases = {"before boot": measure(c, False, seconds)}
    configure(c, tmp, tap)
    if c.roundtrip(req("PUT", "/actions", {"action_type": "InstanceStart"}))[1] != 204:
        raise SystemExit("InstanceStart failed: " + v.p.stderr.read().decode())
    v.expect(rb"argon> ")
    phases["guest idle"] = measure(c, True, seconds)
    work_ms = int(seconds * 1000 / 4) + 250
    v.type(f"blk-bench 0 {work_ms}")
    v.expect(rb"blk-bench:")  # running
    phases["during blk-bench"] = measure(c, True, seconds)
    v.expect(rb"argon> ")
    if tap:
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind((HOST_IP, UDP_PORT))
        CLEANUPS.append(sink.close)
        v.type(f"net-bench tx {HOST_IP} {UDP_PORT} {int(seconds) + 2}")
        time.sleep(0.5)  # ARP, then the flood
        phases["during net-bench tx"] = measure(c, True, seconds)
        v.expect(rb"argon> ", timeout=seconds + 30)
    metrics = c.roundtrip(req("GET", "/metrics"))
    c.close()
    reap(v.p)
    return phases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ready-runs", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=4.0, help="per latency phase")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(cleanup)
    tmp = tempfile.mkdtemp(prefix="agb", dir="/tmp")
    CLEANUPS.insert(0, lambda: shutil.rmtree(tmp, ignore_errors=True))

    ready = socket_ready(args.ready_runs, tmp)
    phases = latency(args.seconds, tmp)
    result = {"socket_ready": {k: summary(v) for k, v in ready.items()},
              "latency_us": {p: {op: summary(v) for op, v in ops.items()}
                             for p, ops in phases.items()}}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"socket ready, ms from exec ({args.ready_runs} runs each, median / p99):")
    for k, label in (("floor_ms", "floor (socket+bind+listen only)"),
                     ("argon_ms", "argon-vmm --api-sock"),
                     ("argon_own_ms", "argon-vmm, its own figure")):
        s = result["socket_ready"][k]
        print(f"  {label:34s} {s['median']:7.3f} / {s['p99']:7.3f}")
    print("API round trips, us (median / p99, n):")
    for phase, ops in result["latency_us"].items():
        print(f"  {phase}:")
        for op, s in ops.items():
            print(f"    {op:28s} {s['median']:8.1f} / {s['p99']:8.1f}  ({s['n']})")


if __name__ == "__main__":
    main()
