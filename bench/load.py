"""A small closed-loop HTTP load generator: one thread, non-blocking sockets, loopback only.

It is deliberately thin, so that it takes as little CPU as possible from the server it measures and
answers the server without delay (gunicorn's sync workers wait for the client to close before taking
the next connection): requests are written as bytes, responses parsed just enough (status, headers,
length-framed, chunked or closed-framed body), and every connection is driven from one selector loop,
so no thread waits for another's turn. A connection is reused when the server keeps it alive;
gunicorn's sync workers close every connection, so each request then opens a new one, as it would
behind nginx.

An operation is a generator ``op(n)``: it yields ``Request``s, receives each ``Response``, raises
``Unexpected`` when an answer is wrong, and returns the durations of its steps (or None). The same
generator runs under the load loop and, one request at a time, under ``Client.drive``.
"""
from __future__ import annotations

import contextlib
import errno
import ipaddress
import itertools
import math
import os
import selectors
import socket
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Unexpected(Exception):
    """The server answered, but not as the scenario expects: counted as an error."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def encode(self, host_header: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1\r\nHost: {host_header}\r\n"
                 "User-Agent: feedback-bench\r\nAccept: text/html\r\n"]
        lines.extend(f"{k}: {v}\r\n" for k, v in self.headers)
        if self.body or self.method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(self.body)}\r\n")
        return ("".join(lines) + "\r\n").encode("latin-1") + self.body


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    cookies: list[str]
    body: bytes = b""

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


Operation = Callable[[int], Generator[Request, Response, "dict[str, float] | None"]]


def check_loopback(host: str) -> None:
    for info in socket.getaddrinfo(host, None):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise ValueError(f"load is only sent to this machine's loopback addresses, not {host!r}")


# --- parsing ----------------------------------------------------------------------------------

class _Parser:
    """Incremental HTTP/1.1 response parser over one growing buffer."""

    __slots__ = ("body_start", "buf", "keep", "length", "method", "response")

    def __init__(self, method: str):
        self.buf = bytearray()
        self.response: Response | None = None
        self.body_start = 0
        self.length: int | None = None  # None: chunked or until close
        self.keep = False
        self.method = method

    def feed(self, data: bytes) -> bool:
        """Add received bytes; True once the response is complete."""
        self.buf += data
        if self.response is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            self._head(end)
        return self._body_complete()

    def eof(self) -> bool:
        """The peer closed: True when that completes the response."""
        if self.response is None:
            return False
        if self.length is None and not self._chunked():
            self.response.body = bytes(self.buf[self.body_start:])
            self.keep = False
            return True
        return self._body_complete()

    def _chunked(self) -> bool:
        return self.response.headers.get("transfer-encoding", "").lower() == "chunked"

    def _head(self, end: int) -> None:
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        version, _, status_text = lines[0].partition(" ")
        status = int(status_text[:3])
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            else:
                headers[name] = value
        self.response = Response(status, headers, cookies)
        self.body_start = end + 4
        self.keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if self.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.length = 0
        elif "content-length" in headers:
            self.length = int(headers["content-length"])
        elif not self._chunked():
            self.keep = False  # framed by the close

    def _body_complete(self) -> bool:
        if self.length is not None:
            if len(self.buf) - self.body_start < self.length:
                return False
            self.response.body = bytes(self.buf[self.body_start:self.body_start + self.length])
            return True
        if self._chunked():
            body = _dechunk(self.buf, self.body_start)
            if body is None:
                return False
            self.response.body = body
            return True
        return False


def _dechunk(buf: bytearray, pos: int) -> bytes | None:
    """The body of a complete chunked message in ``buf`` from ``pos``, or None while incomplete."""
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return bytes(body) if buf.find(b"\r\n", pos) >= 0 else None  # trailers end in a blank line
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos:pos + size]
        pos += size + 2


# --- one connection, blocking -------------------------------------------------------------------

class Client:
    """A blocking HTTP/1.1 connection to ``host:port``, for set-up and single checks."""

    def __init__(self, host: str, port: int, timeout: float = 30.0):
        check_loopback(host)
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, request: Request | str, path: str | None = None) -> Response:
        if isinstance(request, str):
            request = Request(request, path or "/")
        for attempt in (1, 2):
            reused = self.sock is not None
            if self.sock is None:
                self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            parser = _Parser(request.method)
            try:
                self.sock.sendall(request.encode(f"{self.host}:{self.port}"))
                while True:
                    data = self.sock.recv(65536)
                    if not data:
                        if parser.eof():
                            break
                        if reused and attempt == 1 and not parser.buf:
                            raise _Stale()
                        raise ConnectionResetError("connection closed before the response ended")
                    if parser.feed(data):
                        break
            except _Stale:
                self.close()
                continue
            except BaseException:
                self.close()
                raise
            if not parser.keep:
                self.close()
            return parser.response
        raise ConnectionResetError("connection closed before a response")

    def drive(self, op: Operation, n: int = 0):
        """Run one operation to its end, one request at a time; returns what the operation returns."""
        gen = op(n)
        try:
            request = next(gen)
            while True:
                request = gen.send(self.request(request))
        except StopIteration as stop:
            return stop.value


class _Stale(ConnectionError):
    pass


class CookieJar:
    """Name=value pairs from Set-Cookie, sent back as one Cookie header (one site, no expiry)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def update(self, response: Response) -> None:
        for cookie in response.cookies:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.values[name.strip()] = value.strip()

    def headers(self) -> tuple[tuple[str, str], ...]:
        if not self.values:
            return ()
        return (("Cookie", "; ".join(f"{k}={v}" for k, v in self.values.items())),)


def multipart(fields: Iterable[tuple[str, str]], files: Iterable[tuple[str, str, bytes]] = ()
              ) -> tuple[str, bytes]:
    """A multipart/form-data body as a browser sends it; returns (content type, body)."""
    boundary = "----feedbackbench" + os.urandom(12).hex()
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, filename, content in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


# --- results ------------------------------------------------------------------------------------

def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores, every process), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user and nice
    return (sum(values) - idle - guest) / CLK_TCK


@dataclass
class LoadResult:
    name: str
    connections: int
    duration: float = 0.0
    ops: int = 0
    errors: int = 0
    warmup_ops: int = 0
    warmup_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    machine_cpu_seconds: float | None = None
    capped: bool = False
    rounds: list[float] = field(default_factory=list)  # ops/s of each measured window

    def merge(self, other: LoadResult) -> LoadResult:
        """This result and ``other`` (another window of the same scenario) as one."""
        self.duration += other.duration
        self.ops += other.ops
        self.errors += other.errors
        self.warmup_ops += other.warmup_ops
        self.warmup_errors += other.warmup_errors
        self.latencies += other.latencies
        for step, values in other.steps.items():
            self.steps.setdefault(step, []).extend(values)
        for kind, count in other.error_kinds.items():
            self.error_kinds[kind] = self.error_kinds.get(kind, 0) + count
        self.client_cpu_seconds += other.client_cpu_seconds
        for attr in ("server_cpu_seconds", "machine_cpu_seconds"):
            a, b = getattr(self, attr), getattr(other, attr)
            setattr(self, attr, b if a is None else a if b is None else a + b)
        self.capped = self.capped or other.capped
        self.rounds += other.rounds
        return self

    @property
    def rate(self) -> float:
        return self.ops / self.duration if self.duration else 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        out = {
            "connections": self.connections,
            "duration_s": round(self.duration, 3),
            "ops": self.ops,
            "errors": self.errors,
            "ops_per_s": round(self.rate, 1),
            "p50_ms": _ms(percentile(lat, 50)),
            "p90_ms": _ms(percentile(lat, 90)),
            "p99_ms": _ms(percentile(lat, 99)),
            "max_ms": _ms(lat[-1] if lat else None),
            "ops_per_s_by_round": [round(r, 1) for r in self.rounds],
            "warmup_ops": self.warmup_ops,
            "warmup_errors": self.warmup_errors,
            "server_cpu_pct": self._pct(self.server_cpu_seconds),
            "server_cpu_ms_per_op": self.server_cpu_ms_per_op(),
            "client_cpu_pct": self._pct(self.client_cpu_seconds),
            "other_processes_cpu_pct": self.other_cpu_pct(),
            "capped_by_max_ops": self.capped,
        }
        if self.steps:
            out["steps"] = {
                name: {"p50_ms": _ms(percentile(sorted(v), 50)), "p99_ms": _ms(percentile(sorted(v), 99)),
                       "mean_ms": _ms(sum(v) / len(v) if v else None)}
                for name, v in self.steps.items()
            }
        if self.error_kinds:
            out["error_kinds"] = dict(sorted(self.error_kinds.items(), key=lambda kv: -kv[1]))
        return out

    def server_cpu_ms_per_op(self) -> float | None:
        """Server CPU (all its processes) per recorded operation: what an operation costs the server."""
        if self.server_cpu_seconds is None or not self.ops:
            return None
        return round(1000 * self.server_cpu_seconds / self.ops, 3)

    def _pct(self, seconds: float | None) -> float | None:
        """CPU seconds as a percentage of one core over the measured time (200 = both cores)."""
        if not self.duration or seconds is None:
            return None
        return round(100 * seconds / self.duration, 1)

    def other_cpu_pct(self) -> float | None:
        """CPU that processes other than the server and this client used meanwhile (100 = one core)."""
        if self.machine_cpu_seconds is None or self.server_cpu_seconds is None:
            return None
        other = self.machine_cpu_seconds - self.server_cpu_seconds - self.client_cpu_seconds
        return self._pct(max(0.0, other))


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# --- the closed loop ------------------------------------------------------------------------------

_CONNECTING, _SENDING, _READING = 1, 2, 3


class _Slot:
    """One virtual user: one connection at a time, one operation at a time."""

    __slots__ = (
        "deadline",
        "gen",
        "n",
        "out",
        "parser",
        "request",
        "retried",
        "reused",
        "sock",
        "state",
        "t0",
        "wake",
    )

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.state = 0
        self.gen = None
        self.wake = 0.0


def run_load(name: str, op: Operation, *, host: str, port: int, connections: int, duration: float,
             warmup: float, max_ops: int, sequence: Iterable[int] | None = None,
             server_cpu: Callable[[], float] | None = None, timeout: float = 30.0) -> LoadResult:
    """Run ``op`` in a closed loop on ``connections`` connections: ``warmup`` seconds unrecorded,
    then ``duration`` seconds recorded. An operation counts when it ends inside the recorded window.
    At most ``max_ops`` operations are started, none after the window closes, and a request that
    takes longer than ``timeout`` seconds fails; the call returns when the last one has ended."""
    check_loopback(host)
    sequence = iter(sequence) if sequence is not None else itertools.count(1)
    address, host_header = (host, port), f"{host}:{port}"
    sel = selectors.DefaultSelector()
    result = LoadResult(name, connections, duration)
    clock = time.perf_counter
    t_start = clock()
    t_measure, t_end = t_start + warmup, t_start + warmup + duration
    marks: dict[str, tuple[float, float, float | None]] = {}
    started = 0
    ready: list[_Slot] = []  # slots that may start their next operation
    waiting: list[_Slot] = []  # slots pausing after a failure
    active: set[_Slot] = set()

    def mark(key: str) -> None:
        marks[key] = (time.process_time(), machine_cpu_seconds(), server_cpu() if server_cpu else None)

    def close(slot: _Slot) -> None:
        if slot.sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(slot.sock)
            slot.sock.close()
            slot.sock = None
        slot.state = 0

    def finish(slot: _Slot, laps: dict | None, failure: str | None) -> None:
        now = clock()
        active.discard(slot)
        slot.gen = None
        if failure is not None:
            close(slot)
        if now < t_measure:
            result.warmup_ops += failure is None
            result.warmup_errors += failure is not None
        elif now <= t_end:
            if failure is None:
                result.latencies.append(now - slot.t0)
                for step, seconds in (laps or {}).items():
                    result.steps.setdefault(step, []).append(seconds)
            else:
                result.errors += 1
                result.error_kinds[failure] = result.error_kinds.get(failure, 0) + 1
        if failure is None:
            ready.append(slot)
        else:
            slot.wake = now + 0.01  # a failing server is not hammered in a tight loop
            waiting.append(slot)

    def advance(slot: _Slot, response: Response | None) -> None:
        try:
            request = next(slot.gen) if response is None else slot.gen.send(response)
        except StopIteration as stop:
            finish(slot, stop.value, None)
            return
        except Unexpected as exc:
            finish(slot, None, str(exc))
            return
        except (ValueError, KeyError, IndexError) as exc:
            finish(slot, None, f"{type(exc).__name__}: {exc}")
            return
        slot.request = request
        slot.out = memoryview(request.encode(host_header))
        slot.parser = _Parser(request.method)
        slot.deadline = clock() + timeout
        slot.retried = False
        if slot.sock is None:
            connect(slot)
        else:
            slot.reused = True
            slot.state = _SENDING
            sel.modify(slot.sock, selectors.EVENT_WRITE, slot)

    def connect(slot: _Slot) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        slot.sock, slot.reused = sock, False
        code = sock.connect_ex(address)
        if code == 0:
            slot.state = _SENDING
            sel.register(sock, selectors.EVENT_WRITE, slot)
        elif code in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            slot.state = _CONNECTING
            sel.register(sock, selectors.EVENT_WRITE, slot)
        else:
            fail(slot, errno.errorcode.get(code, str(code)))

    def fail(slot: _Slot, reason: str) -> None:
        if slot.reused and not slot.retried and not slot.parser.buf and reason != "timeout":
            close(slot)  # a kept-alive connection that the server had dropped: once more, anew
            slot.retried = True
            slot.out = memoryview(slot.request.encode(host_header))
            connect(slot)
            return
        slot.gen.close()
        finish(slot, None, reason)

    def on_event(slot: _Slot) -> None:
        sock = slot.sock
        if slot.gen is None:  # an idle kept-alive connection that the server closed
            close(slot)
            return
        if slot.state == _CONNECTING:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                fail(slot, errno.errorcode.get(code, str(code)))
                return
            slot.state = _SENDING
        if slot.state == _SENDING:
            try:
                sent = sock.send(slot.out)
            except BlockingIOError:
                return
            except OSError as exc:
                fail(slot, type(exc).__name__)
                return
            slot.out = slot.out[sent:]
            if not slot.out:
                slot.state = _READING
                sel.modify(sock, selectors.EVENT_READ, slot)
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            fail(slot, type(exc).__name__)
            return
        parser = slot.parser
        if data:
            if not parser.feed(data):
                return
        elif not parser.eof():
            fail(slot, "connection closed early")
            return
        if not parser.keep:
            close(slot)
        else:
            slot.state = 0
        advance(slot, parser.response)

    slots = [_Slot() for _ in range(connections)]
    ready.extend(slots)
    next_timeout_check = t_start + 0.5
    try:
        while True:
            now = clock()
            if "start" not in marks and now >= t_measure:
                mark("start")
            if "end" not in marks and now >= t_end:
                mark("end")
            if waiting:
                due = [s for s in waiting if s.wake <= now]
                for s in due:
                    waiting.remove(s)
                    ready.append(s)
            while ready:
                slot = ready.pop()
                if clock() >= t_end or started >= max_ops:
                    result.capped = result.capped or (started >= max_ops and clock() < t_end)
                    close(slot)
                    continue
                started += 1
                slot.n = next(sequence)
                slot.t0 = clock()
                slot.gen = op(slot.n)
                active.add(slot)
                advance(slot, None)
            if not active and ("end" in marks or (started >= max_ops and not waiting)):
                break
            if now >= next_timeout_check:
                for slot in [s for s in active if s.deadline < now]:
                    fail(slot, "timeout")
                next_timeout_check = now + 0.5
            until = t_measure if "start" not in marks else t_end if "end" not in marks else now + 0.05
            events = sel.select(max(0.0, min(0.05, until - clock())))
            for key, _mask in events:
                on_event(key.data)
    finally:
        for slot in slots:
            close(slot)
        sel.close()
    if "start" not in marks:
        mark("start")
    if "end" not in marks:  # stopped early by max_ops: measured time is what elapsed
        mark("end")
        result.duration = max(1e-9, clock() - t_measure)
    result.ops = len(result.latencies)
    result.client_cpu_seconds = marks["end"][0] - marks["start"][0]
    result.machine_cpu_seconds = marks["end"][1] - marks["start"][1]
    if server_cpu:
        result.server_cpu_seconds = marks["end"][2] - marks["start"][2]
    result.rounds = [result.rate]
    return result
