"""Running VMs for the benchmarks: spawn, read the serial console with
deadlines, type commands, read /proc, count exits with perf, and never leave a
process behind.

Python 3 standard library only. Every child runs in its own session, is
registered in LIVE, and is killed (its whole process group) by kill_all(),
which bench.py calls on exit and on SIGINT/SIGTERM/SIGHUP.
"""

import os
import re
import select
import signal
import subprocess
import time

LIVE = set()  # Popen objects that may still be running
CLEANUPS = []  # callables that remove what a run made (netns, files), run last first


class BenchError(Exception):
    pass


def kill_group(proc, sig=signal.SIGKILL):
    """Kill a child's process group (it leads its own session)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap(proc):
    kill_group(proc)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    LIVE.discard(proc)


def at_cleanup(fn):
    """Register fn to run at kill_all(), after every process is gone."""
    CLEANUPS.append(fn)


def kill_all():
    """Kill every child, then run the registered cleanups."""
    for proc in list(LIVE):
        reap(proc)
    run_cleanups()


def run_cleanups():
    """Run the registered cleanups, last first, each once."""
    while CLEANUPS:
        fn = CLEANUPS.pop()
        try:
            fn()
        except Exception as e:  # a cleanup must not stop the others
            print(f"# cleanup {getattr(fn, '__qualname__', fn)} failed: {e}", flush=True)


def spawn(argv, env=None, pass_fds=(), stdin=subprocess.PIPE):
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, pass_fds=pass_fds,
                            start_new_session=True)
    LIVE.add(proc)
    return proc


def proc_status(pid):
    """The kB fields of /proc/PID/status we use, as ints (kB)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmSwap"):
                out[key] = int(rest.split()[0])
    return out


def smaps_rollup(pid):
    """Pss fields (kB) of /proc/PID/smaps_rollup: shared pages divided among
    the processes that map them."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key.startswith("Pss") or key.startswith("Private"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


def smaps_by_file(pid):
    """Resident kB per mapping name from /proc/PID/smaps ("[anon]" for
    unnamed), largest first."""
    sizes = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else "[anon]"
                name = os.path.basename(name) if name.startswith("/") else name
            elif first == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(line.split()[1])
    return sorted(((k, v) for k, v in sizes.items() if v), key=lambda kv: -kv[1])


def children_of(pid):
    """Direct children of pid (for perf stat -- CMD: the VM is perf's child)."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


class VM:
    """One VMM process with its console on stdout and its log on stderr.

    t0_ns is CLOCK_MONOTONIC just before the spawn; first_byte_ns,
    exit_ns and marks[...] are absolute CLOCK_MONOTONIC readings taken when
    the launcher saw the event (the chunk that held it was read)."""

    def __init__(self, argv, env=None, pass_fds=(), set_start_env=True):
        env = dict(os.environ if env is None else env)
        env["ARGON_START_NS"] = "0"
        self.t0_ns = time.monotonic_ns()
        if set_start_env:
            env["ARGON_START_NS"] = str(self.t0_ns)
        self.proc = spawn(argv, env=env, pass_fds=pass_fds)
        self.argv = argv
        self.out = bytearray()
        self.err = bytearray()
        self.pos = 0  # console position already consumed by expect()
        self.first_byte_ns = None
        self.exit_ns = None
        self.rc = None
        self._open = {self.proc.stdout.fileno(): self.out,
                      self.proc.stderr.fileno(): self.err}
        for fd in self._open:
            os.set_blocking(fd, False)

    @property
    def pid(self):
        return self.proc.pid

    def _pump(self, deadline_ns):
        """Read whatever is available (waiting until deadline_ns at most).
        Returns False once both pipes are closed."""
        if not self._open:
            return False
        timeout = max(0.0, (deadline_ns - time.monotonic_ns()) / 1e9)
        ready, _, _ = select.select(list(self._open), [], [], timeout)
        now = time.monotonic_ns()
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                continue
            buf = self._open[fd]
            if not data:
                del self._open[fd]
                continue
            if buf is self.out and self.first_byte_ns is None:
                self.first_byte_ns = now
            buf += data
        return True

    def expect(self, pattern, timeout_s, what=None):
        """Wait for regex `pattern` (bytes) on the console after the last
        match; returns (match, monotonic ns when seen)."""
        rx = re.compile(pattern)
        deadline = time.monotonic_ns() + int(timeout_s * 1e9)
        while True:
            m = rx.search(self.out, self.pos)
            if m:
                self.pos = m.end()
                return m, time.monotonic_ns()
            if time.monotonic_ns() >= deadline:
                raise BenchError(f"timeout after {timeout_s} s waiting for "
                                 f"{what or pattern!r}; {self.tail()}")
            if not self._pump(deadline):
                if self.proc.poll() is not None:
                    m = rx.search(self.out, self.pos)
                    if m:
                        self.pos = m.end()
                        return m, time.monotonic_ns()
                    raise BenchError(f"VMM exited (status {self.proc.returncode}) before "
                                     f"{what or pattern!r}; {self.tail()}")
                time.sleep(0.001)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait_exit(self, timeout_s):
        """Drain both pipes until EOF and reap; kill on timeout. Returns the
        exit status, or None if it had to be killed."""
        deadline = time.monotonic_ns() + int(timeout_s * 1e9)
        while self._open and time.monotonic_ns() < deadline:
            self._pump(deadline)
        try:
            self.rc = self.proc.wait(timeout=max(0.0, (deadline - time.monotonic_ns()) / 1e9))
            self.exit_ns = time.monotonic_ns()
        except subprocess.TimeoutExpired:
            self.rc = None
        self.close()
        return self.rc

    def close(self):
        reap(self.proc)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass

    def tail(self, n=300):
        out = self.out[-n:].decode(errors="replace")
        err = self.err[-n:].decode(errors="replace")
        return f"console tail: {out!r}; stderr tail: {err!r}"


# ---------------------------------------------------------------- perf


def parse_perf_csv(text, labels):
    """perf stat -x, lines, in event order, matched to labels.
    Returns {label: int or None (not counted/supported)}."""
    rows = [l for l in text.splitlines() if l.count(",") >= 2 and not l.startswith("#")]
    out = {}
    for label, line in zip(labels, rows):
        val = line.split(",")[0].strip()
        out[label] = int(val) if val.isdigit() else None
    for label in labels[len(rows):]:
        out[label] = None
    return out


class PerfEvents:
    """A list of (label, event, filter-or-None) for perf stat."""

    def __init__(self, spec):
        self.spec = spec
        self.labels = [s[0] for s in spec]

    def args(self):
        a = []
        for _, ev, flt in self.spec:
            a += ["-e", ev]
            if flt:
                a += ["--filter", flt]
        return a


def perf_wrap(perf, events, log_fd):
    """Prefix for `perf stat ... -- CMD` counting the whole life of CMD."""
    return [perf, "stat", "-x,", "--log-fd", str(log_fd)] + events.args() + ["--"]


def read_all(fd, timeout_s=5.0):
    os.set_blocking(fd, False)
    data = bytearray()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


class PerfWindow:
    """perf stat attached to a running VMM (-p PID), started disabled and
    switched on and off through its control pipe, so the counts cover exactly
    the operation between enable() and disable()."""

    def __init__(self, perf, events, pid):
        self.events = events
        ctl_r, self.ctl_w = os.pipe()
        self.ack_r, ack_w = os.pipe()
        self.log_r, log_w = os.pipe()
        argv = [perf, "stat", "-x,", "--log-fd", str(log_w), "-p", str(pid),
                "-D", "-1", "--control", f"fd:{ctl_r},{ack_w}"] + events.args()
        self.proc = subprocess.Popen(argv, pass_fds=(ctl_r, ack_w, log_w),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        LIVE.add(self.proc)
        for fd in (ctl_r, ack_w, log_w):
            os.close(fd)

    def _command(self, cmd, timeout_s=10.0):
        os.write(self.ctl_w, cmd + b"\n")
        r, _, _ = select.select([self.ack_r], [], [], timeout_s)
        if not r or b"ack" not in os.read(self.ack_r, 64):
            err = b""
            if self.proc.poll() is not None:
                err = self.proc.stderr.read()
            raise BenchError(f"perf did not acknowledge {cmd!r}: {err.decode(errors='replace')}")

    def enable(self):
        self._command(b"enable")

    def disable(self):
        self._command(b"disable")

    def finish(self):
        """Stop perf and return {label: count}."""
        self.proc.send_signal(signal.SIGINT)
        text = read_all(self.log_r, 10.0)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        reap(self.proc)
        for fd in (self.ctl_w, self.ack_r, self.log_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc.stderr.close()
        return parse_perf_csv(text, self.events.labels)

    def abort(self):
        reap(self.proc)
        for fd in (self.ctl_w, self.ack_r, self.log_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc.stderr.close()
