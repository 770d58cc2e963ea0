"""Firecracker's own configurations, unchanged but for file paths: its example
tests/framework/vm_config.json boots under --config, its test framework's
basic_config() sequence of API calls boots, and what Firecracker refuses when a PUT
opens a tap (a MAC in use, a tap in use) is refused at PUT time here too."""
import fcntl
import json
import os
import shutil
import struct
import tempfile

import pytest

from api_client import UnixHTTPConnection, VmmProcess, fault
from conftest import GUEST, VMM, needs_kvm, vmm_env

pytestmark = needs_kvm
MIB = 1 << 20


@pytest.fixture
def vmm():
    d = tempfile.mkdtemp(prefix="agfc", dir="/tmp")  # a unix socket path is short
    started = []

    def start(extra=None):
        v = VmmProcess(VMM, os.path.join(d, "api.sock"), extra, env=vmm_env())
        started.append(v)
        return v

    yield start
    for v in started:
        v.kill()
        assert "Sanitizer" not in v.stderr(), v.stderr()
    shutil.rmtree(d, ignore_errors=True)


def rootfs(tmp_path):
    disk = tmp_path / "bionic.rootfs.ext4"
    disk.write_bytes(b"\0" * MIB)
    return str(disk)


# firecracker-microvm/firecracker, tests/framework/vm_config.json (main, 2026), field
# for field; only kernel_image_path and path_on_host point at argon's files.
def firecracker_vm_config(kernel, disk):
    return {
        "boot-source": {
            "kernel_image_path": kernel,
            "boot_args": "console=ttyS0 reboot=k panic=1",
            "initrd_path": None,
        },
        "drives": [
            {
                "drive_id": "rootfs",
                "partuuid": None,
                "is_root_device": True,
                "cache_type": "Unsafe",
                "is_read_only": False,
                "path_on_host": disk,
                "io_engine": "Sync",
                "rate_limiter": None,
                "socket": None,
            }
        ],
        "machine-config": {
            "vcpu_count": 2,
            "mem_size_mib": 1024,
            "smt": False,
            "track_dirty_pages": False,
            "huge_pages": "None",
        },
        "cpu-config": None,
        "balloon": None,
        "network-interfaces": [],
        "vsock": None,
        "logger": None,
        "metrics": None,
        "mmds-config": None,
        "entropy": None,
        "pmem": [],
        "memory-hotplug": None,
    }


def test_firecracker_example_vm_config_boots(vmm, tmp_path):
    config = firecracker_vm_config(GUEST, rootfs(tmp_path))
    path = tmp_path / "vm_config.json"
    path.write_text(json.dumps(config, indent=2))
    v = vmm(["--config", str(path)])  # boots at once, as Firecracker's --config-file
    v.expect(b"argon> ")
    got = v.api.get("/vm/config")[1]
    # Firecracker's GET /vm/config shape: what was given comes back, nulls included.
    for section in ("boot-source", "machine-config", "cpu-config", "balloon", "vsock",
                    "mmds-config", "entropy", "pmem", "memory-hotplug", "network-interfaces",
                    "metrics"):
        assert got[section] == config[section], section
    assert got["drives"] == config["drives"]


def basic_config_calls(kernel, disk):
    """What Firecracker's tests/framework/microvm.py basic_config() sends with its
    defaults: its http_api drops arguments that are None (smt, partuuid, cache_type,
    io_engine) before sending."""
    boot_args = "reboot=k panic=1 nomodule swiotlb=noforce console=ttyS0 cryptomgr.notests"
    boot_args += " pci=off"
    return [
        ("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256,
                             "track_dirty_pages": False, "huge_pages": "None"}),
        ("/boot-source", {"kernel_image_path": kernel, "boot_args": boot_args}),
        ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": disk,
                            "is_root_device": True, "is_read_only": False}),
    ]


def test_firecracker_basic_config_boots(vmm, tmp_path):
    v = vmm()
    for url, body in basic_config_calls(GUEST, rootfs(tmp_path)):
        assert v.api.put(url, body) == (204, ""), url
    assert v.api.get("/machine-config")[1] == {"vcpu_count": 2, "mem_size_mib": 256,
                                              "smt": False, "track_dirty_pages": False,
                                              "huge_pages": "None"}
    drive = v.api.get("/vm/config")[1]["drives"][0]
    assert drive["cache_type"] == "Unsafe" and drive["partuuid"] is None
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.expect(b"argon> ")


def open_tap(name):
    """Holds a tap open as another VMM would (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0002 | 0x1000 | 0x4000))
    return fd


def test_mac_and_tap_in_use_are_refused_at_put(vmm):
    v = vmm()
    eth0 = {"iface_id": "eth0", "host_dev_name": "agfcfree0", "guest_mac": "AA:FC:00:00:00:01"}
    assert v.api.put("/network-interfaces/eth0", eth0) == (204, "")
    same_mac = {"iface_id": "eth1", "host_dev_name": "agfcfree1", "guest_mac": "AA:FC:00:00:00:01"}
    status, body = v.api.put("/network-interfaces/eth1", same_mac)
    assert status == 400 and fault(body) == ("The MAC address is already in use: "
                                             "AA:FC:00:00:00:01 (network interface 'eth0')")
    same_tap = {"iface_id": "eth1", "host_dev_name": "agfcfree0"}
    status, body = v.api.put("/network-interfaces/eth1", same_tap)
    assert status == 400 and fault(body) == ("Could not create the network device: tap "
                                             "'agfcfree0' is in use by network interface 'eth0'")
    # eth0 itself may be PUT again with its own MAC and tap.
    assert v.api.put("/network-interfaces/eth0", eth0) == (204, "")
    name = f"agfcbusy{os.getpid() % 10000}"
    fd = open_tap(name)
    try:
        status, body = v.api.put("/network-interfaces/eth1",
                                 {"iface_id": "eth1", "host_dev_name": name})
    finally:
        os.close(fd)
    assert status == 400 and fault(body) == (f"Could not create the network device: tap "
                                             f"'{name}' is in use (busy: another process "
                                             "has it open)")
    assert [n["iface_id"] for n in v.api.get("/vm/config")[1]["network-interfaces"]] == ["eth0"]


def test_vsock_id_is_deprecated(vmm):
    v = vmm()
    conn = UnixHTTPConnection(v.sock)
    body = {"vsock_id": "vsock0", "guest_cid": 3, "uds_path": v.sock + ".vsock"}
    conn.request("PUT", "/vsock", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 204 and resp.getheader("Deprecation") == "true"
    conn.request("PUT", "/vsock", body=json.dumps({"guest_cid": 3, "uds_path": body["uds_path"]}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 204 and resp.getheader("Deprecation") is None
    conn.close()


def test_what_the_host_cannot_give_is_refused(vmm):
    v = vmm()
    smt_active = open("/sys/devices/system/cpu/smt/active").read().strip() == "1"
    status, body = v.api.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 128,
                                                 "smt": True})
    if smt_active:
        assert status == 204
    else:
        assert status == 400 and "no simultaneous multithreading" in fault(body)
    with open("/proc/meminfo") as f:
        free = [int(l.split()[1]) for l in f if l.startswith("HugePages_Free:")][0]
    status, body = v.api.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 2 * (free + 8),
                                                 "huge_pages": "2M"})
    assert status == 400 and fault(body).startswith('machine-config.huge_pages: "2M": ')
    assert v.api.get("/machine-config")[1]["huge_pages"] == "None"
