"""A client for argon-vmm's API socket, for the tests and the benchmark: HTTP/1.1 over
a unix socket with http.client (keep-alive), raw socket access for hostile bytes, and
a running VMM whose console we can read and type into. Standard library only."""
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: what `curl --unix-socket` does."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Api:
    """One keep-alive connection; request() returns (status, parsed body or text)."""

    def __init__(self, path, timeout=30):
        self.path = path
        self.conn = UnixHTTPConnection(path, timeout)

    def request(self, method, url, body=None, raw=None, headers=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        hdrs = {"Accept": "application/json"}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        self.conn.request(method, url, body=data, headers=hdrs)
        resp = self.conn.getresponse()
        text = resp.read().decode()
        ctype = resp.getheader("Content-Type") or ""
        return resp.status, (json.loads(text) if text and "json" in ctype else text)

    def get(self, url):
        return self.request("GET", url)

    def put(self, url, body=None, raw=None):
        return self.request("PUT", url, body, raw)

    def patch(self, url, body=None, raw=None):
        return self.request("PATCH", url, body, raw)

    def ok(self, method, url, body=None):
        """A request that must succeed; returns the body."""
        status, data = self.request(method, url, body)
        assert status in (200, 204), f"{method} {url} {body!r}: {status} {data!r}"
        return data

    def close(self):
        self.conn.close()


def sample(text, name, **labels):
    """The value of one sample in Prometheus text (GET /metrics), None when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    key = f"{name}{{{want}}}" if want else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return None


def metric(text, name, **labels):
    """The value of one Prometheus sample (0 when absent: a counter not yet counted)."""
    value = sample(text, name, **labels)
    return 0.0 if value is None else value


def raw_exchange(path, data, timeout=10, shutdown=False):
    """Sends raw bytes on a new connection and reads until the server closes it or a
    whole response arrived; returns (status, headers dict, body text)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    if data:
        s.sendall(data)
    if shutdown:
        s.shutdown(socket.SHUT_WR)
    buf = read_response_bytes(s, timeout)
    s.close()
    return parse_response(buf)


class ResponseReader:
    """Reads whole responses off a socket, keeping bytes of the next ones (pipelining)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def next(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            end = response_end(self.buf)
            if end:
                one, self.buf = self.buf[:end], self.buf[end:]
                return one
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no whole response within {timeout}s: {self.buf!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                one, self.buf = self.buf, b""
                return one
            self.buf += chunk


def response_end(buf):
    """Length of the first whole response in buf (head + Content-Length body), or 0."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return 0
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    return len(head) + 4 + length if len(rest) >= length else 0


def read_response_bytes(s, timeout=10):
    """One whole response, or what came before EOF (no pipelining: see ResponseReader)."""
    return ResponseReader(s).next(timeout)


def parse_response(buf):
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"not an HTTP response: {buf!r}")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body.decode()


def fault(body):
    """The fault_message of an error body (text or parsed)."""
    if isinstance(body, str):
        body = json.loads(body)
    return body["fault_message"]


def read_console_until(stdout, buffer, marker, timeout, tail, on_close=lambda: ""):
    """Reads the VMM's console pipe into buffer until marker (bytes) is in it;
    returns the buffer. Fails with the last `tail` characters of the console when
    the deadline passes, or when the console closes (plus what on_close() adds)."""
    deadline = time.monotonic() + timeout
    while marker not in buffer:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} within {timeout}s; console:\n"
                                 + buffer.decode(errors="replace")[-tail:])
        ready, _, _ = select.select([stdout], [], [], left)
        if ready:
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"console closed before {marker!r}; console:\n"
                                     + buffer.decode(errors="replace")[-tail:] + on_close())
            buffer += chunk
    return buffer


class VmmProcess:
    """argon-vmm started with --api-sock, its console on pipes."""

    def __init__(self, vmm, sock, extra=None, env=None, cwd=None, prefix=None):
        self.sock = sock
        self.proc = subprocess.Popen((prefix or []) + [vmm, "--api-sock", sock] + (extra or []),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=cwd)
        self.buffer = b""
        self.err_text = None
        self.wait_socket()
        self.api = Api(sock)

    def wait_socket(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("argon-vmm exited: " + self.proc.stderr.read().decode())
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.005)
        raise AssertionError(f"no API socket at {self.sock} within {timeout}s")

    def expect(self, marker, timeout=30):
        """Reads the console until marker (bytes) appears after what was read so far."""
        self.buffer = read_console_until(self.proc.stdout, self.buffer, marker, timeout, 3000)
        text = self.buffer.decode(errors="replace")
        self.buffer = self.buffer[self.buffer.index(marker) + len(marker):]
        return text

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, timeout=30):
        self.api.close()
        return self.proc.wait(timeout=timeout)

    def stderr(self):
        """Everything the VMM wrote to stderr (read once it has exited)."""
        if self.err_text is None:
            self.err_text = self.proc.stderr.read().decode(errors="replace")
        return self.err_text

    def stop(self, timeout=30):
        """SIGTERM, then the exit status and stderr: a sanitizer build reports leaks
        and memory errors at a clean exit, which a test should check."""
        self.api.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        return rc, self.stderr()

    def kill(self):
        self.api.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
