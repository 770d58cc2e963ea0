"""argon-guest's virtio-net driver against argon's tap backend: the host pings the
guest, the guest pings the host, and UDP flows both ways. Needs root to create a tap."""
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import GUEST, VMM, needs, needs_kvm, run_vmm


def vmm_has(option):
    try:
        out = subprocess.run([VMM, "--help"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False
    return option in out.stdout + out.stderr


pytestmark = [needs_kvm,
              pytest.mark.skipif(not vmm_has("--net"), reason="argon-vmm has no --net option yet"),
              needs("root", "tun")]  # to create a tap

HOST_IP, GUEST_IP = "10.213.7.1", "10.213.7.2"


@pytest.fixture
def tap():
    name = f"agt{os.getpid() % 100000}"
    subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{HOST_IP}/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def guest_args(tap, cmd):
    return ["--kernel", GUEST, "--memory", "128", "--net", f"tap={tap}",
            "--cmdline", f'console=ttyS0 argon.ip={GUEST_IP}/24 argon.cmd="{cmd}"']


def test_net_info_and_guest_pings_host(tap):
    r = run_vmm(guest_args(tap, f"net-info;net-ping {HOST_IP} 5"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^net-info: mac [0-9a-f:]{17} link up$", r.stdout, re.M), r.stdout
    assert re.search(r"^net-ping: sent 5 received 5 rtt_avg_us", r.stdout, re.M), r.stdout


def test_host_pings_guest(tap, console):
    c = console(guest_args(tap, "net-echo 20"))
    c.expect(b"net-echo: ip 10.213.7.2/24")
    p = subprocess.run(["ping", "-c", "5", "-i", "0.2", "-W", "2", GUEST_IP],
                       capture_output=True, text=True, timeout=30)
    assert " 0% packet loss" in p.stdout, p.stdout
    c.kill()


def test_udp_from_guest_reaches_host(tap):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST_IP, 0))
    sock.settimeout(0.5)
    port = sock.getsockname()[1]
    got = []

    def sink():
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                got.append(len(sock.recv(65536)))
            except socket.timeout:
                if got:
                    return

    t = threading.Thread(target=sink)
    t.start()
    r = run_vmm(guest_args(tap, f"net-bench tx {HOST_IP} {port} 1 1000"))
    t.join()
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^net-bench: tx_frames_s (\d+) tx_mib_s (\d+) tx_frames (\d+)$", r.stdout, re.M)
    assert m and int(m.group(3)) > 0, r.stdout
    assert got and all(n == 1000 for n in got)


def test_udp_from_host_is_counted(tap, console):
    c = console(guest_args(tap, "net-bench rx 3"))
    c.expect(b"net-bench: rx ready")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(200):
        s.sendto(b"z" * 512, (GUEST_IP, 9000))
        time.sleep(0.001)
    out = c.expect(b"rx_frames ", timeout=20)
    assert c.wait(timeout=20) == 0, out
    m = re.search(r"net-bench: rx_frames_s \d+ rx_mib_s \d+ rx_frames (\d+)", c.buffer.decode())
    assert m and int(m.group(1)) >= 150, c.buffer.decode()
