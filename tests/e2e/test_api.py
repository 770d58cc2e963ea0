"""argon-vmm's Firecracker-compatible API, end to end: a VM booted purely through API
calls, Firecracker's getting-started curl recipes unchanged, pause and resume,
metrics that follow the guest's I/O, GET /vm/config accepted by --config, logs and
metrics files, the socket's life cycle."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from api_client import Api, VmmProcess, fault, metric
from conftest import GUEST, VMM, needs, needs_kvm, vmm_env

pytestmark = needs_kvm
MIB = 1 << 20
EXIT_NO_FILE, EXIT_IMAGE, EXIT_SIGNAL = 66, 65, 84


@pytest.fixture
def sockdir():
    # Short: a unix socket path must fit in 108 bytes.
    d = tempfile.mkdtemp(prefix="ag", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def vmm(sockdir):
    started = []

    def start(extra=None, name="api.sock", env=None):
        v = VmmProcess(VMM, os.path.join(sockdir, name), extra, env=env or vmm_env())
        started.append(v)
        return v

    yield start
    for v in started:
        if v.proc.poll() is None:
            v.stop()
        err = v.stderr()
        assert "Sanitizer" not in err, err


def boot_args(cmd=None):
    return "console=ttyS0" + (f' argon.cmd="{cmd}"' if cmd else "")


def configure(api, cmd=None, vcpus=1, mem=128):
    api.ok("PUT", "/boot-source", {"kernel_image_path": GUEST, "boot_args": boot_args(cmd)})
    api.ok("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": mem})


def test_boot_purely_through_the_api(vmm, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * MIB)
    v = vmm()
    assert v.api.get("/") == (200, {"id": "anonymous-instance", "state": "Not started",
                                    "vmm_version": "0.1.0", "app_name": "argon-vmm"})
    assert v.api.get("/version")[1]["firecracker_version"] == "0.1.0"
    configure(v.api, "info", vcpus=2, mem=256)
    v.api.ok("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(disk),
                                       "is_root_device": True, "is_read_only": False})
    assert v.api.get("/machine-config")[1] == {"vcpu_count": 2, "mem_size_mib": 256,
                                              "smt": False, "track_dirty_pages": False,
                                              "huge_pages": "None"}
    assert v.api.put("/actions", {"action_type": "InstanceStart"}) == (204, "")
    out = v.expect(b"boot_ms:")
    assert "cpus_online: 2" in out and "memory_mib: 256" in out
    assert v.wait() == 0


def curl(sock, method, path, data):
    r = subprocess.run(["curl", "-sS", "-X", method, "--unix-socket", sock, "--data", data,
                        "-w", "%{http_code}", f"http://localhost{path}"],
                       capture_output=True, text=True, timeout=30)
    return r.stdout


@needs("root", "tun")  # to create the tap
def test_firecracker_getting_started_recipes(vmm, tmp_path):
    """The curl calls of Firecracker's getting-started guide, byte for byte, with
    argon-guest as the kernel (it shows its prompt, so the VM stays up)."""
    rootfs = tmp_path / "rootfs.ext4"
    rootfs.write_bytes(b"\0" * (4 * MIB))
    logfile = tmp_path / "firecracker.log"
    tap = f"aga{os.getpid() % 100000}"
    v = vmm()
    sock = v.sock
    assert curl(sock, "PUT", "/logger", json.dumps({
        "log_path": str(logfile), "level": "Debug", "show_level": True,
        "show_log_origin": True})) == "204"
    assert curl(sock, "PUT", "/boot-source", json.dumps({
        "kernel_image_path": GUEST, "boot_args": "console=ttyS0 reboot=k panic=1"})) == "204"
    assert curl(sock, "PUT", "/drives/rootfs", json.dumps({
        "drive_id": "rootfs", "path_on_host": str(rootfs), "is_root_device": True,
        "is_read_only": False})) == "204"
    assert curl(sock, "PUT", "/network-interfaces/net1", json.dumps({
        "iface_id": "net1", "guest_mac": "06:00:AC:10:00:02", "host_dev_name": tap})) == "204"
    assert curl(sock, "PUT", "/actions", json.dumps({"action_type": "InstanceStart"})) == "204"
    v.expect(b"argon> ")
    assert v.api.get("/")[1]["state"] == "Running"
    text = v.api.get("/metrics")[1]
    assert metric(text, "argon_virtio_notifies_total", device="block:rootfs") >= 0
    v.send(b"virtio-list\r")
    out = v.expect(b"argon> ")
    assert "blk" in out and "net" in out
    # After boot, the interface's rate limiters change (Firecracker's PATCH).
    limiter = {"bandwidth": {"size": 1 << 20, "one_time_burst": 0, "refill_time": 100},
               "ops": None}
    assert v.api.patch("/network-interfaces/net1", {"iface_id": "net1",
                                                    "tx_rate_limiter": limiter}) == (204, "")
    nets = v.api.get("/vm/config")[1]["network-interfaces"]
    assert nets[0]["tx_rate_limiter"]["bandwidth"]["size"] == 1 << 20
    assert nets[0]["rx_rate_limiter"] is None
    assert "debug" in logfile.read_text(), "the logger took the Debug level and the file"
    v.send(b"poweroff\r")
    assert v.wait() == 0


def test_pause_resume_keeps_working(vmm):
    v = vmm(["--log-level", "debug"])
    configure(v.api)
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.expect(b"argon> ")
    v.send(b"cpu-bench 2000\r")
    before = v.expect(b"argon> ")
    ns_before = float(before.split("ns_per_round ")[1].split()[0])

    assert v.api.patch("/vm", {"state": "Paused"}) == (204, "")
    assert v.api.get("/")[1]["state"] == "Paused"
    assert v.api.patch("/vm", {"state": "Paused"}) == (204, ""), "pausing a paused VM is fine"
    exits = metric(v.api.get("/metrics")[1], "argon_vcpu_exits_total", reason="IO")
    v.send(b"echo still-here\r")
    time.sleep(1.0)
    assert metric(v.api.get("/metrics")[1], "argon_vcpu_exits_total", reason="IO") == exits, \
        "no vCPU ran while paused"
    assert b"still-here" not in v.buffer
    paused = metric(v.api.get("/metrics")[1], "argon_vm_paused_seconds_total")
    assert paused >= 0.9

    assert v.api.patch("/vm", {"state": "Resumed"}) == (204, "")
    assert v.api.patch("/vm", {"state": "Resumed"}) == (204, ""), "resuming a running VM is fine"
    assert "still-here" in v.expect(b"argon> ")
    assert v.api.get("/")[1]["state"] == "Running"
    # The guest's sense of time is sane after the pause: the same work takes about
    # the same guest-measured time.
    v.send(b"cpu-bench 2000\r")
    after = v.expect(b"argon> ")
    ns_after = float(after.split("ns_per_round ")[1].split()[0])
    assert ns_after < ns_before * 5, (ns_before, ns_after)
    v.send(b"poweroff\r")
    assert v.wait() == 0
    log = v.stderr()
    assert "KVM_SET_CLOCK" not in log, log  # restoring kvm-clock did not fail
    assert "kvm-clock set back to" in log, log  # the guest's clock skips the pause
    assert "VM paused" in log and "VM resumed" in log


def test_metrics_follow_guest_io(vmm, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * (16 * MIB))
    lines = tmp_path / "metrics.json"
    v = vmm()
    configure(v.api)
    v.api.ok("PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(disk),
                                     "is_root_device": False, "is_read_only": False})
    v.api.ok("PUT", "/metrics", {"metrics_path": str(lines), "period_ms": 200})
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.expect(b"argon> ")
    before = v.api.get("/metrics")[1]
    v.send(b"blk-write 0 4 7\r")
    v.expect(b"argon> ")
    after = v.api.get("/metrics")[1]
    written = (metric(after, "argon_block_bytes_total", drive="data", op="write")
               - metric(before, "argon_block_bytes_total", drive="data", op="write"))
    assert written >= 4 * MIB, written
    assert metric(after, "argon_block_ops_total", drive="data", op="write") > \
        metric(before, "argon_block_ops_total", drive="data", op="write")
    assert metric(after, "argon_virtio_notifies_total", device="block:data") > \
        metric(before, "argon_virtio_notifies_total", device="block:data")
    assert metric(after, "argon_vcpu_exits_total", reason="IO") > \
        metric(before, "argon_vcpu_exits_total", reason="IO")
    assert metric(after, "argon_device_accesses_total", bus="pio", device="serial") > \
        metric(before, "argon_device_accesses_total", bus="pio", device="serial")
    assert metric(after, "argon_api_requests_total", endpoint="GET /metrics") >= 1
    assert metric(after, "argon_vmm_rss_bytes") > MIB
    assert metric(after, "argon_guest_memory_bytes") == 128 * MIB
    assert metric(after, "argon_vcpu_run_seconds_total", vcpu="0") > 0

    # The same counters as JSON lines: on the period, and on FlushMetrics.
    time.sleep(0.5)
    v.api.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(rows) >= 3, "periodic lines and the flushed one"
    last = rows[-1]
    assert last["block_bytes_total"]["data"]["write"] >= 4 * MIB
    assert last["vm_state"]["Running"] == 1
    assert last["api_requests_total"]["PUT /actions"] >= 1
    assert "utc_timestamp_ms" in last
    v.send(b"poweroff\r")
    assert v.wait() == 0


def test_vm_config_round_trips_through_config_file(vmm, tmp_path, sockdir):
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * MIB)
    v = vmm()
    configure(v.api, "info", vcpus=2, mem=192)
    v.api.ok("PUT", "/drives/d1", {"drive_id": "d1", "path_on_host": str(disk),
                                   "is_root_device": False, "is_read_only": True,
                                   "rate_limiter": {"bandwidth": {"size": 1 << 20,
                                                                  "refill_time": 100}}})
    v.api.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": os.path.join(sockdir, "v.sock")})
    v.api.ok("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True,
                                 "stats_polling_interval_s": 1})
    v.api.ok("PUT", "/entropy", {})
    config = v.api.get("/vm/config")[1]
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(config))

    w = vmm(["--config", str(path)], name="second.sock")
    assert w.api.get("/vm/config")[1] == config
    out = w.expect(b"boot_ms:")
    assert "cpus_online: 2" in out
    assert w.wait() == 0


def test_failed_start_says_why_and_ends(vmm, tmp_path):
    bogus = tmp_path / "kernel"
    bogus.write_bytes(b"not a kernel\n" * 100)
    v = vmm()
    v.api.ok("PUT", "/boot-source", {"kernel_image_path": str(bogus)})
    status, body = v.api.put("/actions", {"action_type": "InstanceStart"})
    assert status == 400
    assert fault(body).startswith("Start microvm error: " + str(bogus))
    assert "not a Linux bzImage or x86-64 ELF kernel" in fault(body)
    assert v.wait() == EXIT_IMAGE


def test_socket_is_private_and_stale_sockets_are_replaced(vmm, sockdir):
    path = os.path.join(sockdir, "api.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # a dead process's socket file
    v = vmm()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert v.api.get("/")[0] == 200
    # A socket a live process serves is left alone.
    r = subprocess.run([VMM, "--api-sock", path], capture_output=True, text=True, timeout=30,
                       env=vmm_env())
    assert r.returncode == EXIT_NO_FILE
    assert "another process is serving this socket" in r.stderr
    assert v.api.get("/")[0] == 200
    v.proc.send_signal(signal.SIGTERM)
    assert v.wait() == EXIT_SIGNAL, "SIGTERM before InstanceStart"
    assert not os.path.exists(path), "the socket file is removed at exit"
    # Any other file at the path is not touched.
    with open(path, "w") as f:
        f.write("precious")
    r = subprocess.run([VMM, "--api-sock", path], capture_output=True, text=True, timeout=30,
                       env=vmm_env())
    assert r.returncode == EXIT_NO_FILE
    assert "exists and is not a socket" in r.stderr
    assert open(path).read() == "precious"


def test_closed_log_fifo_never_blocks(vmm, tmp_path):
    """A FIFO nobody reads as the log: lines are dropped and counted, requests and the
    guest go on at full speed."""
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    v = vmm()
    v.api.ok("PUT", "/logger", {"log_path": str(fifo), "level": "Debug"})
    configure(v.api)
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.expect(b"argon> ")
    start = time.monotonic()
    for _ in range(3000):  # each request logs a debug line: far more than a FIFO holds
        assert v.api.get("/")[0] == 200
    elapsed = time.monotonic() - start
    text = v.api.get("/metrics")[1]
    assert metric(text, "argon_log_lines_dropped_total") > 0
    v.send(b"echo alive\r")
    assert "alive" in v.expect(b"argon> ")
    assert elapsed < 60, elapsed
    v.send(b"poweroff\r")
    assert v.wait() == 0


def test_start_racing_the_end_never_hangs(sockdir, tmp_path):
    """A boot that fails at once (--kernel of a bogus file) while InstanceStart
    arrives: whichever comes first, the request is answered and the process ends."""
    bogus = tmp_path / "kernel"
    bogus.write_bytes(b"not a kernel\n" * 100)
    path = os.path.join(sockdir, "race.sock")
    for _ in range(10):
        proc = subprocess.Popen([VMM, "--api-sock", path, "--kernel", str(bogus)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=vmm_env())
        try:
            while not os.path.exists(path) and proc.poll() is None:
                time.sleep(0.0002)
            try:
                api = Api(path, timeout=10)
                status, _ = api.put("/actions", {"action_type": "InstanceStart"})
                assert status in (204, 400)
                api.close()
            except OSError:
                pass  # the process had already ended and closed the socket
            assert proc.wait(timeout=15) == EXIT_IMAGE
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = proc.stderr.read().decode()
        assert "Sanitizer" not in err, err


def test_balloon_target_and_statistics_through_the_api(vmm):
    v = vmm()
    configure(v.api, mem=256)
    v.api.ok("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True,
                                 "stats_polling_interval_s": 1})
    assert v.api.get("/balloon")[1] == {"amount_mib": 0, "deflate_on_oom": True,
                                        "stats_polling_interval_s": 1}
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.expect(b"argon> ")
    assert v.api.patch("/balloon", {"amount_mib": 64}) == (204, "")
    assert v.api.get("/balloon")[1]["amount_mib"] == 64
    v.send(b"balloon\r")
    assert "target_pages 16384 actual_pages 16384" in v.expect(b"argon> ")
    deadline = time.monotonic() + 10
    while True:  # the guest answers the statistics request within its interval
        stats = v.api.get("/balloon/statistics")[1]
        if "total_memory" in stats or time.monotonic() > deadline:
            break
        v.send(b"balloon-status\r")
        v.expect(b"argon> ")
    assert stats["target_mib"] == 64 and stats["actual_mib"] == 64, stats
    assert stats["total_memory"] > 200 * MIB, stats
    assert metric(v.api.get("/metrics")[1], "argon_balloon_actual_bytes") == 64 * MIB
    assert v.api.patch("/balloon/statistics", {"stats_polling_interval_s": 2}) == (204, "")
    assert v.api.get("/balloon")[1]["stats_polling_interval_s"] == 2
    status, body = v.api.patch("/balloon/statistics", {"stats_polling_interval_s": 0})
    assert status == 400 and "cannot be switched on or off after boot" in fault(body)
    v.send(b"poweroff\r")
    assert v.wait() == 0
