"""Hostile API clients: every malformed, oversized, out-of-range, out-of-order or
slow request gets its status and a clear message (golden file:
tests/e2e/golden/api_errors.json; ARGON_UPDATE_GOLDEN=1 rewrites it), and the next
request still works."""
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
import time

import pytest

from api_client import (Api, ResponseReader, VmmProcess, parse_response, raw_exchange,
                        read_response_bytes)
from conftest import GUEST, VMM, needs_kvm, require, vmm_env

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "api_errors.json")
UPDATE = os.environ.get("ARGON_UPDATE_GOLDEN") == "1"


def raw(text):
    return text.encode() if isinstance(text, str) else text


def put(path, body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    data = raw(data)
    return raw(f"PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(data)}\r\n\r\n") + data


def patch(path, body):
    return put(path, body).replace(b"PUT ", b"PATCH ", 1)


MACHINE = "/machine-config"
KERNEL = "/boot-source"
# An image another process holds a lock on (the running_vmm fixture takes it, shared so
# that concurrent runs of this suite can both hold it): PATCH /drives must refuse it.
LOCKED = "/tmp/argon-hostile-locked.img"

# Cases against a VM that has not started. Each is raw request bytes.
PRE_BOOT = {
    # malformed HTTP
    "request_line_garbage": "HELLO\r\n\r\n",
    "bare_lf": "GET / HTTP/1.1\nHost: x\n\n",
    "binary_bytes": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "http2_preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "http_version_2": "GET / HTTP/2.0\r\n\r\n",
    "absolute_target_not_http": "GET ftp://localhost/ HTTP/1.1\r\n\r\n",
    "asterisk_target": "OPTIONS * HTTP/1.1\r\n\r\n",
    "folded_header": "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
    "header_without_colon": "GET / HTTP/1.1\r\nHost\r\n\r\n",
    # lengths
    "content_length_negative": "PUT /machine-config HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "content_length_not_a_number": "PUT /machine-config HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
    "content_length_2_64": "PUT /machine-config HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
    "content_length_over_limit": "PUT /machine-config HTTP/1.1\r\nContent-Length: 51201\r\n\r\n",
    "content_length_conflicting": "PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
    "chunked_body": "PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "expect_unknown": "PUT /machine-config HTTP/1.1\r\nExpect: 102-processing\r\n\r\n",
    "header_too_large": "GET / HTTP/1.1\r\nX-Big: " + "a" * 9000 + "\r\n\r\n",
    "too_many_headers": "GET / HTTP/1.1\r\n" + "".join(f"X-{i}: v\r\n" for i in range(70)) + "\r\n",
    "uri_too_long": "GET /" + "a" * 2000 + " HTTP/1.1\r\n\r\n",
    # routing
    "unknown_path": "GET /nope HTTP/1.1\r\n\r\n",
    "unknown_method": "BREW /machine-config HTTP/1.1\r\n\r\n",
    "delete_drive": "DELETE /drives/rootfs HTTP/1.1\r\n\r\n",
    "post_actions": put("/actions", {"action_type": "InstanceStart"}).replace(b"PUT", b"POST", 1),
    "path_traversal_in_url": "GET /drives/../machine-config HTTP/1.1\r\n\r\n",
    "get_with_body": "GET /machine-config HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    "put_without_body": "PUT /machine-config HTTP/1.1\r\n\r\n",
    "drive_id_empty": put("/drives/", {"drive_id": "", "path_on_host": "/x"}),
    "drive_id_bad_chars": put("/drives/a-b", {"drive_id": "a-b", "path_on_host": "/x"}),
    "drive_id_too_long": put("/drives/" + "d" * 65, {"drive_id": "d", "path_on_host": "/x"}),
    # JSON
    "json_malformed": put(MACHINE, "{\"vcpu_count\": 1,"),
    "json_not_an_object": put(MACHINE, "[1, 2]"),
    "json_duplicate_key": put(MACHINE, "{\"vcpu_count\": 1, \"vcpu_count\": 2, \"mem_size_mib\": 128}"),
    "json_invalid_utf8": put(KERNEL, b"{\"kernel_image_path\": \"\xff\xfe\"}"),
    "json_trailing_garbage": put(MACHINE, "{\"vcpu_count\": 1, \"mem_size_mib\": 128} x"),
    "wrong_type": put(MACHINE, {"vcpu_count": "2", "mem_size_mib": 128}),
    "wrong_type_bool": put("/drives/d", {"drive_id": "d", "path_on_host": "/x", "is_read_only": "no"}),
    "unknown_field": put(MACHINE, {"vcpu_count": 1, "mem_size_mib": 128, "cpus": 2}),
    "missing_field": put(MACHINE, {"vcpu_count": 1}),
    "vcpu_count_negative": put(MACHINE, {"vcpu_count": -2, "mem_size_mib": 128}),
    "vcpu_count_too_many": put(MACHINE, {"vcpu_count": 33, "mem_size_mib": 128}),
    "memory_zero": put(MACHINE, {"vcpu_count": 1, "mem_size_mib": 0}),
    "memory_2_64": put(MACHINE, "{\"vcpu_count\": 1, \"mem_size_mib\": 18446744073709551616}"),
    "memory_more_than_host": put(MACHINE, {"vcpu_count": 1, "mem_size_mib": 1 << 29}),
    "patch_empty": patch(MACHINE, {}),
    "mac_malformed": put("/network-interfaces/e", {"iface_id": "e", "host_dev_name": "tap0",
                                                   "guest_mac": "zz:00"}),
    "tap_name_bad": put("/network-interfaces/e", {"iface_id": "e", "host_dev_name": "../etc"}),
    "id_mismatch": put("/drives/rootfs", {"drive_id": "other", "path_on_host": GUEST}),
    "vsock_cid_reserved": put("/vsock", {"guest_cid": 2, "uds_path": "/tmp/v.sock"}),
    "balloon_bigger_than_guest": put("/balloon", {"amount_mib": 4096, "deflate_on_oom": False}),
    "rate_limiter_bad": put("/entropy", {"rate_limiter": {"bandwidth": {"size": 10}}}),
    "action_unknown": put("/actions", {"action_type": "Reboot"}),
    "action_extra_field": put("/actions", {"action_type": "FlushMetrics", "now": True}),
    "logger_level_unknown": put("/logger", {"level": "Loud"}),
    # paths
    "kernel_path_dotdot": put(KERNEL, {"kernel_image_path": "/tmp/../etc/passwd"}),
    "kernel_path_device": put(KERNEL, {"kernel_image_path": "/dev/zero"}),
    "kernel_path_missing": put(KERNEL, {"kernel_image_path": "/nonexistent/vmlinux"}),
    "kernel_path_directory": put(KERNEL, {"kernel_image_path": "/tmp"}),
    "kernel_path_empty": put(KERNEL, {"kernel_image_path": ""}),
    "initrd_path_device": put(KERNEL, {"kernel_image_path": GUEST, "initrd_path": "/dev/urandom"}),
    "drive_path_device": put("/drives/d", {"drive_id": "d", "path_on_host": "/dev/null"}),
    "drive_path_dotdot": put("/drives/d", {"drive_id": "d", "path_on_host": "../../etc/shadow"}),
    "log_path_device": put("/logger", {"log_path": "/dev/null"}),
    "log_path_missing_dir": put("/logger", {"log_path": "/nonexistent/dir/log"}),
    "metrics_path_dotdot": put("/metrics", {"metrics_path": "/tmp/../tmp/m.json"}),
    "vsock_path_not_socket": put("/vsock", {"guest_cid": 3, "uds_path": "/etc/hostname"}),
    # order
    "pause_before_start": patch("/vm", {"state": "Paused"}),
    "flush_metrics_without_file": put("/actions", {"action_type": "FlushMetrics"}),
    "ctrl_alt_del_before_start": put("/actions", {"action_type": "SendCtrlAltDel"}),
    "balloon_stats_before_start": "GET /balloon/statistics HTTP/1.1\r\n\r\n",
    "patch_drive_before_start": patch("/drives/d", {"drive_id": "d", "path_on_host": "/x"}),
    "get_balloon_without_one": "GET /balloon HTTP/1.1\r\n\r\n",
}

# Cases against a running VM (argon-guest at its prompt).
POST_BOOT = {
    "start_twice": put("/actions", {"action_type": "InstanceStart"}),
    "machine_config_after_start": put(MACHINE, {"vcpu_count": 1, "mem_size_mib": 128}),
    "boot_source_after_start": put(KERNEL, {"kernel_image_path": GUEST}),
    "drive_after_start": put("/drives/d2", {"drive_id": "d2", "path_on_host": GUEST}),
    "logger_after_start": put("/logger", {"level": "Debug"}),
    "patch_unknown_drive": patch("/drives/nope", {"drive_id": "nope", "path_on_host": GUEST}),
    "patch_drive_unknown_field": patch("/drives/d", {"drive_id": "d", "size": 1}),
    "patch_drive_nothing": patch("/drives/d", {"drive_id": "d", "path_on_host": None}),
    "patch_drive_missing_file": patch("/drives/d", {"drive_id": "d",
                                                    "path_on_host": "/nonexistent/disk.img"}),
    "patch_drive_device": patch("/drives/d", {"drive_id": "d", "path_on_host": "/dev/null"}),
    "patch_drive_dotdot": patch("/drives/d", {"drive_id": "d", "path_on_host": "/tmp/../etc/x"}),
    "patch_drive_path_wrong_type": patch("/drives/d", {"drive_id": "d", "path_on_host": 1}),
    "patch_drive_locked": patch("/drives/d", {"drive_id": "d", "path_on_host": LOCKED}),
    "patch_drive_bad_limiter": patch("/drives/d", {"drive_id": "d",
                                                   "rate_limiter": {"bytes": 1}}),
    "patch_balloon_without_one": patch("/balloon", {"amount_mib": 1}),
    "patch_balloon_stats_without_one": patch("/balloon/statistics",
                                             {"stats_polling_interval_s": 1}),
    "patch_net_unknown": patch("/network-interfaces/eth9", {"iface_id": "eth9",
                                                            "tx_rate_limiter": None}),
    "patch_net_bad_limiter": patch("/network-interfaces/eth9",
                                   {"iface_id": "eth9", "rx_rate_limiter": {"bytes": 1}}),
    "vm_state_wrong_type": patch("/vm", {"state": 1}),
    "vm_state_unknown": patch("/vm", {"state": "Frozen"}),
    "vm_extra_field": patch("/vm", {"state": "Paused", "when": "now"}),
}


def load_golden():
    try:
        with open(GOLDEN) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def normalize(message):
    """Host-dependent figures out of messages, so the golden file holds anywhere."""
    return re.sub(r"this host's \d+ MiB", "this host's N MiB", message)


def check_golden(name, status, message):
    message = normalize(message)
    if UPDATE:
        golden = load_golden()
        golden[name] = [status, message]
        os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
        with open(GOLDEN, "w") as f:
            json.dump(golden, f, indent=1, sort_keys=True)
            f.write("\n")
        return
    golden = load_golden()
    assert name in golden, f"{name}: not in {GOLDEN} (run with ARGON_UPDATE_GOLDEN=1)"
    assert [status, message] == golden[name]


def stop_cleanly(v):
    """After all the abuse: SIGTERM ends the VMM with its status, and the sanitizer
    build found no leak or memory error."""
    rc, err = v.stop()
    assert rc == 84, err
    assert "Sanitizer" not in err, err


@pytest.fixture(scope="module")
def sockdir():
    d = tempfile.mkdtemp(prefix="ag", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def idle_vmm(sockdir):
    v = VmmProcess(VMM, os.path.join(sockdir, "pre.sock"), env=vmm_env())
    yield v
    stop_cleanly(v)


@pytest.fixture(scope="module")
def locked_image():
    fd = os.open(LOCKED, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, 1 << 20)
    fcntl.flock(fd, fcntl.LOCK_SH)
    yield LOCKED
    try:  # the last holder removes it
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(LOCKED)
    except OSError:
        pass
    os.close(fd)


@pytest.fixture(scope="module")
def running_vmm(sockdir, locked_image):
    require("kvm")
    v = VmmProcess(VMM, os.path.join(sockdir, "post.sock"), env=vmm_env())
    disk = os.path.join(sockdir, "d.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    v.api.ok("PUT", "/boot-source", {"kernel_image_path": GUEST, "boot_args": "console=ttyS0"})
    v.api.ok("PUT", "/drives/d", {"drive_id": "d", "path_on_host": disk,
                                  "is_root_device": False, "is_read_only": False})
    v.api.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    v.expect(b"argon> ")
    yield v
    stop_cleanly(v)


def exchange_and_check(v, name, request):
    status, headers, body = raw_exchange(v.sock, raw(request))
    assert headers.get("content-type") == "application/json", (headers, body)
    message = json.loads(body)["fault_message"]
    check_golden(name, status, message)
    # The server is still there and answers the next request.
    assert Api(v.sock).get("/")[0] == 200
    return status, headers


@pytest.mark.parametrize("name", sorted(PRE_BOOT))
def test_refused_before_start(idle_vmm, name):
    exchange_and_check(idle_vmm, name, PRE_BOOT[name])
    assert idle_vmm.api.get("/")[1]["state"] == "Not started"


@pytest.mark.parametrize("name", sorted(POST_BOOT))
def test_refused_after_start(running_vmm, name):
    exchange_and_check(running_vmm, name, POST_BOOT[name])
    assert running_vmm.api.get("/")[1]["state"] == "Running"


def test_refused_requests_change_nothing(idle_vmm):
    before = idle_vmm.api.get("/vm/config")[1]
    for name in ("vcpu_count_negative", "unknown_field", "kernel_path_device", "id_mismatch"):
        raw_exchange(idle_vmm.sock, raw(PRE_BOOT[name]))
    assert idle_vmm.api.get("/vm/config")[1] == before


def test_refused_drive_patches_change_nothing(running_vmm):
    before = running_vmm.api.get("/vm/config")[1]
    for name in sorted(POST_BOOT):
        if name.startswith("patch_drive"):
            raw_exchange(running_vmm.sock, raw(POST_BOOT[name]))
    assert running_vmm.api.get("/vm/config")[1] == before


def test_keep_alive_survives_json_errors(idle_vmm):
    """A refused body leaves the connection usable; a broken byte stream closes it."""
    api = Api(idle_vmm.sock)
    for _ in range(3):
        assert api.put(MACHINE, raw="{nope")[0] == 400
        assert api.get("/machine-config")[0] == 200
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(idle_vmm.sock)
    s.sendall(b"GET / HTTP/1.1\nHost: x\n\n")
    status, headers, _ = parse_response(read_response_bytes(s))
    assert status == 400 and headers.get("connection") == "close"
    assert s.recv(1) == b"", "closed after a malformed head"
    s.close()


def test_body_larger_than_limit_sent_whole(idle_vmm):
    body = b"{\"x\": \"" + b"a" * 60000 + b"\"}"
    status, headers, text = raw_exchange(
        idle_vmm.sock, f"PUT {MACHINE} HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    assert status == 413
    assert json.loads(text)["fault_message"] == \
        f"body of {len(body)} bytes is larger than the limit of 51200 bytes"
    assert Api(idle_vmm.sock).get("/")[0] == 200


def test_pipelined_requests_are_answered_in_order(idle_vmm):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(idle_vmm.sock)
    s.sendall(b"GET /machine-config HTTP/1.1\r\n\r\n" + raw(PRE_BOOT["unknown_path"])
              + b"GET / HTTP/1.1\r\n\r\n")
    reader = ResponseReader(s)
    statuses = [parse_response(reader.next())[0] for _ in range(3)]
    s.close()
    assert statuses == [200, 400, 200]


def test_expect_100_continue(idle_vmm):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(idle_vmm.sock)
    body = json.dumps({"vcpu_count": 1, "mem_size_mib": 128}).encode()
    s.sendall(f"PATCH {MACHINE} HTTP/1.1\r\nExpect: 100-continue\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode())
    assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.sendall(body)
    assert parse_response(read_response_bytes(s))[0] == 204
    s.close()


def test_slow_client_times_out_and_others_go_on(idle_vmm):
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.settimeout(15)
    slow.connect(idle_vmm.sock)
    slow.sendall(b"PUT /machine-config HTTP/1.1\r\nContent-Le")
    start = time.monotonic()
    api = Api(idle_vmm.sock)
    while time.monotonic() - start < 2:  # others are served meanwhile
        assert api.get("/")[0] == 200
    status, headers, text = parse_response(read_response_bytes(slow, timeout=15))
    waited = time.monotonic() - start
    check_golden("slow_client", status, json.loads(text)["fault_message"])
    assert 4.5 <= waited <= 8, waited
    assert slow.recv(1) == b""
    slow.close()


def test_too_many_clients(idle_vmm):
    held = []
    for _ in range(16):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(idle_vmm.sock)
        held.append(s)
    time.sleep(0.2)
    extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    extra.settimeout(10)
    extra.connect(idle_vmm.sock)
    status, headers, text = parse_response(read_response_bytes(extra))
    check_golden("too_many_clients", status, json.loads(text)["fault_message"])
    extra.close()
    for s in held:
        s.close()
    time.sleep(0.2)
    assert Api(idle_vmm.sock).get("/")[0] == 200
    metrics = Api(idle_vmm.sock).get("/metrics")[1]
    refused = re.search(r"^argon_api_connections_refused_total (\d+)$", metrics, re.M)
    assert refused and int(refused.group(1)) >= 1, metrics
