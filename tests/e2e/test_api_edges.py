"""The API's edges: request forms RFC 9112 says a server accepts (absolute-form
targets, empty lines before a request), and a failed InstanceStart, after which no
request is answered with success and the process ends with the start's status."""
import json
import os
import socket
import tempfile

import pytest

from api_client import ResponseReader, VmmProcess, parse_response, raw_exchange
from conftest import EXIT_IMAGE, VMM, needs_kvm, vmm_env


@pytest.fixture
def sock_path():
    d = tempfile.mkdtemp(prefix="ag", dir="/tmp")
    yield os.path.join(d, "api.sock")
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


@pytest.fixture
def idle(sock_path):
    v = VmmProcess(VMM, sock_path, env=vmm_env())
    yield v
    rc, err = v.stop()
    assert rc == 84 and "Sanitizer" not in err, err


def put_bytes(target, body, lead=b""):
    data = json.dumps(body).encode()
    return (lead + f"PUT {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(data)}"
            "\r\n\r\n".encode() + data)


def test_absolute_form_targets_are_served(idle):
    status, _, body = raw_exchange(idle.sock, b"GET http://localhost/machine-config HTTP/1.1\r\n"
                                               b"Host: localhost\r\n\r\n")
    assert status == 200, body
    assert json.loads(body)["vcpu_count"] == 1
    status, _, body = raw_exchange(idle.sock, put_bytes("http://localhost/machine-config",
                                                        {"vcpu_count": 3, "mem_size_mib": 64}))
    assert status == 204, body
    assert idle.api.get("/machine-config")[1]["vcpu_count"] == 3
    status, _, body = raw_exchange(idle.sock, b"GET HTTP://LOCALHOST:80 HTTP/1.1\r\n\r\n")
    assert status == 200 and json.loads(body)["state"] == "Not started", body


def test_empty_lines_before_a_request_are_ignored(idle):
    # One connection: a request led by empty lines, then one after a body that a
    # client ended with an extra CRLF (RFC 9112, 2.2), both answered in order.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(idle.sock)
    s.sendall(put_bytes("/machine-config", {"vcpu_count": 2, "mem_size_mib": 64},
                        lead=b"\r\n\r\n") + b"\r\n" +
              b"GET /machine-config HTTP/1.1\r\n\r\n")
    reader = ResponseReader(s)
    assert parse_response(reader.next())[0] == 204
    status, _, body = parse_response(reader.next())
    s.close()
    assert status == 200 and json.loads(body)["vcpu_count"] == 2, body


@needs_kvm
def test_nothing_succeeds_after_a_failed_start(sock_path, tmp_path):
    bogus = tmp_path / "not-a-kernel"
    bogus.write_bytes(b"hello" * 1000)
    v = VmmProcess(VMM, sock_path, env=vmm_env())
    v.api.ok("PUT", "/boot-source", {"kernel_image_path": str(bogus)})
    # Pipelined on one connection: the start that fails, then requests that would have
    # succeeded before it (another configuration, another start, a state query).
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(sock_path)
    s.sendall(put_bytes("/actions", {"action_type": "InstanceStart"}) +
              put_bytes("/machine-config", {"vcpu_count": 2, "mem_size_mib": 64}) +
              put_bytes("/actions", {"action_type": "InstanceStart"}) +
              b"GET / HTTP/1.1\r\n\r\n")
    reader = ResponseReader(s)
    status, _, body = parse_response(reader.next())
    assert status == 400, body
    assert str(bogus) in json.loads(body)["fault_message"], body
    answers = []
    for _ in range(3):
        raw = reader.next()
        if not raw:
            break  # the process ended and closed the connection: also no success
        answers.append(parse_response(raw))
    s.close()
    for status, _, body in answers:
        assert status == 400, (status, body)
        assert "argon-vmm is ending with status 65: InstanceStart failed" in body, body
    assert v.wait() == EXIT_IMAGE
    assert str(bogus) in v.stderr()
