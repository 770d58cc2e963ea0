"""argon-guest's virtio-vsock driver against argon's hybrid vsock (Firecracker's model):
a guest connection to host port P reaches the unix socket <uds>_P; a host process
reaches a guest port by connecting to <uds> and writing "CONNECT <port>\\n". Large
transfers only get through when both sides honour each other's credit."""
import os
import re
import socket
import subprocess
import threading

import pytest

from conftest import GUEST, VMM, needs_kvm, run_vmm


def vmm_has(option):
    try:
        out = subprocess.run([VMM, "--help"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False
    return option in out.stdout + out.stderr


pytestmark = [needs_kvm,
              pytest.mark.skipif(not vmm_has("--vsock"), reason="argon-vmm has no --vsock option yet")]


def args(uds, cmd):
    return ["--kernel", GUEST, "--memory", "128", "--vsock", f"cid=3,uds={uds}",
            "--cmdline", f'console=ttyS0 argon.cmd="{cmd}"']


def serve(path, handler, ready):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    s.settimeout(30)
    ready.set()
    try:
        c, _ = s.accept()
        with c:
            handler(c)
    finally:
        s.close()


def echo(c):
    while (data := c.recv(65536)):
        c.sendall(data)


def start_server(path, handler):
    ready = threading.Event()
    t = threading.Thread(target=serve, args=(path, handler, ready), daemon=True)
    t.start()
    ready.wait(5)
    return t


def test_guest_connects_to_host_port(tmp_path):
    uds = str(tmp_path / "v.sock")
    t = start_server(f"{uds}_5000", echo)
    r = run_vmm(args(uds, "vsock-connect 5000 hello from the guest"))
    t.join(5)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "vsock-connect: reply hello from the guest" in r.stdout


def test_connect_to_a_closed_port_is_refused(tmp_path):
    r = run_vmm(args(str(tmp_path / "v.sock"), "vsock-connect 5999 x"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "vsock-connect: connection to host port 5999 refused" in r.stdout


def host_connect(uds, port, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n"):
        line += s.recv(1)
    assert line.startswith(b"OK "), line
    return s


def test_guest_echoes_host_connections_with_credit(tmp_path, console):
    uds = str(tmp_path / "v.sock")
    c = console(args(uds, "vsock-echo 1234 60 2"))
    c.expect(b"vsock-echo: listening cid 3 port 1234")
    for size in (10, 3 << 20):  # 3 MiB: many times either side's buffer
        s = host_connect(uds, 1234)
        data = os.urandom(size)
        sender = threading.Thread(target=s.sendall, args=(data,))
        sender.start()
        got = b""
        while len(got) < size and (chunk := s.recv(1 << 20)):
            got += chunk
        sender.join()
        s.close()
        assert got == data
    assert c.wait(timeout=30) == 0
    assert re.search(rb"vsock-echo: connections 2 bytes %d dropped 0" % (10 + (3 << 20)), c.buffer)


def test_bench_both_directions(tmp_path):
    uds = str(tmp_path / "v.sock")

    def sink(c):
        while c.recv(1 << 20):
            pass

    def source(c):
        buf = b"y" * 65536
        try:
            while True:
                c.sendall(buf)
        except OSError:
            pass

    t1 = start_server(f"{uds}_6000", sink)
    t2 = start_server(f"{uds}_6001", source)
    r = run_vmm(args(uds, "vsock-bench 6000 1"), timeout=60)
    t1.join(5)
    t2.join(5)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^vsock-bench: tx_mib_s (\d+) rx_mib_s (\d+)$", r.stdout, re.M)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0, r.stdout
