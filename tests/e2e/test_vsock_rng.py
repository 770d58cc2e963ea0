"""virtio-vsock in both directions through Firecracker's hybrid unix-socket model, and
virtio-rng handing the guest real entropy."""
import os
import socket
import threading

from api_client import Api, sample
from conftest import GUEST, needs_kvm, run_guest

pytestmark = needs_kvm


def connect_to_guest(uds, port, timeout=20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        chunk = s.recv(1)
        assert chunk, "the VMM closed the connection before answering CONNECT"
        line += chunk
    assert line.startswith(b"OK "), line
    return s


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, f"closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def metric(text, name, **labels):
    value = sample(text, name, **labels)
    assert value is not None, f"{name} {labels} missing from GET /metrics"
    return value


def test_host_connects_to_a_guest_listener(tmp_path, console):
    uds, api = str(tmp_path / "v.sock"), str(tmp_path / "api.sock")
    c = console(["--kernel", GUEST, "--vsock", f"cid=3,uds={uds}", "--api-sock", api,
                 "--cmdline", 'console=ttyS0 argon.cmd="vsock-echo 1234 60 1"'])
    c.expect(b"vsock-echo: listening cid 3 port 1234")
    s = connect_to_guest(uds, 1234)
    payload = os.urandom(200_000)  # more than one credit window's worth of packets
    sender = threading.Thread(target=s.sendall, args=(payload,))
    sender.start()
    assert recv_exactly(s, len(payload)) == payload
    sender.join()
    # The device's counters: the echo went both ways through one open stream.
    m = Api(api).get("/metrics")[1]
    assert metric(m, "argon_vsock_bytes_total", direction="rx") >= len(payload)
    assert metric(m, "argon_vsock_bytes_total", direction="tx") >= len(payload)
    assert metric(m, "argon_vsock_packets_total", direction="tx") > 0
    assert metric(m, "argon_vsock_connections") == 1
    assert metric(m, "argon_vsock_errors_total", kind="dropped") == 0
    assert metric(m, "argon_vsock_errors_total", kind="credit") == 0
    s.close()
    c.expect(b"vsock-echo: connections 1 bytes 200000")
    assert c.wait() == 0


def test_guest_connects_to_a_host_listener(tmp_path):
    uds = str(tmp_path / "v.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(f"{uds}_5000")
    listener.listen(1)
    listener.settimeout(30)

    def echo_once():
        conn, _ = listener.accept()
        with conn:
            data = conn.recv(4096)
            conn.sendall(data.upper())

    server = threading.Thread(target=echo_once)
    server.start()
    r = run_guest("vsock-connect 5000 hello from the guest", extra=["--vsock", f"cid=3,uds={uds}"])
    server.join(timeout=30)
    listener.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "vsock-connect: reply HELLO FROM THE GUEST" in r.stdout


def test_connecting_to_a_closed_host_port_fails_cleanly(tmp_path):
    uds = str(tmp_path / "v.sock")
    r = run_guest("vsock-connect 5001 anyone;echo still-here", extra=["--vsock", f"cid=3,uds={uds}"])
    assert "still-here" in r.stdout
    assert r.returncode == 1, r.stdout + r.stderr


def test_entropy_reaches_the_guest():
    r = run_guest("rng-read 4096", extra=["--rng"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "rng-read: requested 4096 received 4096" in r.stdout
    assert r.stdout.rstrip().endswith("ok") or " ok" in r.stdout
