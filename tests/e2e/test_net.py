"""virtio-net end to end over taps, inside network namespaces the tests create and
remove: the host pings a guest, and two guests ping each other across a bridge."""
import re
import subprocess
import uuid

import pytest

from conftest import GUEST, needs

pytestmark = needs("kvm", "root", "tun", "mount-point-root")


def sh(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns():
    """A fresh namespace with loopback up; deleting it removes its taps and bridges."""
    name = f"argon-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        sh("ip", "link", "set", "lo", "up", ns=name)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def tap(ns, name, address=None, bridge=None):
    sh("ip", "tuntap", "add", "dev", name, "mode", "tap", ns=ns)
    if address:
        sh("ip", "addr", "add", address, "dev", name, ns=ns)
    if bridge:
        sh("ip", "link", "set", name, "master", bridge, ns=ns)
    sh("ip", "link", "set", name, "up", ns=ns)


def guest(console, ns, tap_name, mac, ip, cmd):
    return console(["--kernel", GUEST, "--net", f"tap={tap_name},mac={mac}",
                    "--cmdline", f'console=ttyS0 argon.ip={ip} argon.cmd="{cmd}"'],
                   prefix=["ip", "netns", "exec", ns])


def test_host_pings_the_guest(netns, console):
    tap(netns, "argtap0", address="10.77.0.1/24")
    c = guest(console, netns, "argtap0", "AA:FC:00:00:00:02", "10.77.0.2/24", "net-echo 60")
    c.expect(b"net-echo: ip 10.77.0.2/24")
    r = sh("ping", "-c", "3", "-W", "2", "10.77.0.2", ns=netns)
    assert re.search(r"3 packets transmitted, 3 received", r.stdout), r.stdout
    c.kill()


def test_two_guests_ping_over_a_bridge(netns, console):
    sh("ip", "link", "add", "argbr0", "type", "bridge", ns=netns)
    sh("ip", "link", "set", "argbr0", "up", ns=netns)
    tap(netns, "argtapa", bridge="argbr0")
    tap(netns, "argtapb", bridge="argbr0")
    a = guest(console, netns, "argtapa", "AA:FC:00:00:00:0A", "10.78.0.10/24", "net-echo 60")
    a.expect(b"net-echo: ip 10.78.0.10/24")
    b = guest(console, netns, "argtapb", "AA:FC:00:00:00:0B", "10.78.0.11/24",
              "net-ping 10.78.0.10 5")
    out = b.expect(b"net-ping: sent")
    assert b.wait(timeout=30) == 0, out
    assert re.search(r"net-ping: sent 5 received 5", b.buffer.decode()), b.buffer.decode()


def test_a_missing_tap_device_is_created_and_removed(netns, console):
    c = guest(console, netns, "argtapz", "AA:FC:00:00:00:03", "10.79.0.2/24", "net-info")
    c.expect(b"net-info: mac aa:fc:00:00:00:03")
    assert c.wait() == 0
    links = sh("ip", "-o", "link", ns=netns).stdout
    assert "argtapz" not in links, links  # argon-vmm created it, so it goes with the VM
