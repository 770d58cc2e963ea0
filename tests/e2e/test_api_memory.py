"""No memory growth across 100,000 API requests (good, refused and malformed, on
kept-alive, pipelined and fresh connections), measured on the sanitizer build's RSS
with its quarantine off (so freed memory is reused and only a real leak or an
unbounded structure shows), and LeakSanitizer clean at exit. A shorter run under
valgrind checks that nothing is definitely lost."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from api_client import Api, ResponseReader, VmmProcess, parse_response, raw_exchange
from conftest import BUILD, VMM, vmm_env

BATCH = 100


def request_mix():
    """One round of requests: reads, writes, refusals that keep the connection."""
    body = json.dumps({"vcpu_count": 2, "mem_size_mib": 256}).encode()
    bad = b"{\"vcpu_count\": -2, \"mem_size_mib\": 128}"
    return [
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET /machine-config HTTP/1.1\r\n\r\n",
        b"PATCH /machine-config HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
        b"PUT /machine-config HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(bad), bad),
        b"PUT /machine-config HTTP/1.1\r\nContent-Length: 5\r\n\r\n{nope",
        b"GET /nope HTTP/1.1\r\n\r\n",
        b"GET /vm/config HTTP/1.1\r\n\r\n",
        b"PUT /drives/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /version HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\r\n",
    ]


def hammer(path, total):
    """Sends total requests, BATCH pipelined at a time, a fresh connection every 20
    batches and a malformed head (which closes its connection) every 50."""
    mix = request_mix()
    sent = 0
    while sent < total:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        reader = ResponseReader(s)
        for _ in range(20):
            n = min(BATCH, total - sent)
            if n <= 0:
                break
            s.sendall(b"".join(mix[(sent + i) % len(mix)] for i in range(n)))
            for _ in range(n):
                status = parse_response(reader.next(timeout=30))[0]
                assert status in (200, 204, 400), status
            sent += n
        s.close()
        if (sent // (20 * BATCH)) % 50 == 0:
            assert raw_exchange(path, b"GET / HTTP/1.1\nbare-lf\n\n")[0] == 400
    return sent


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="ag", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_no_growth_across_100000_requests(sockdir):
    env = vmm_env()
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:quarantine_size_mb=0"
    v = VmmProcess(VMM, os.path.join(sockdir, "m.sock"), env=env)
    hammer(v.sock, 10_000)  # warm up: allocator pools, connection buffers
    before = rss_kib(v.proc.pid)
    start = time.monotonic()
    hammer(v.sock, 100_000)
    elapsed = time.monotonic() - start
    after = rss_kib(v.proc.pid)
    print(f"RSS {before} KiB -> {after} KiB over 100000 requests in {elapsed:.1f} s")
    assert after - before < 1024, (before, after)
    rc, err = v.stop()
    assert rc == 84, err
    assert "Sanitizer" not in err, err


def test_valgrind_finds_nothing_lost(sockdir):
    vmm = os.path.join(BUILD, "argon-vmm")  # valgrind wants the build without ASan
    path = os.path.join(sockdir, "vg.sock")
    proc = subprocess.Popen(["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                             "--error-exitcode=99", "-q", vmm, "--api-sock", path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            assert proc.poll() is None and time.monotonic() < deadline, "no socket under valgrind"
            time.sleep(0.05)
        hammer(path, 3000)
        api = Api(path)
        assert api.get("/")[0] == 200
        api.close()
        proc.terminate()
        rc = proc.wait(timeout=120)
        err = proc.stderr.read().decode(errors="replace")
        assert rc == 84, err
        assert "definitely lost" not in err and "Invalid" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
