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
import itertools
import math
import os
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bench.wire import Operation, Response, ResponseParser, Unexpected, check_loopback

CLK_TCK = os.sysconf("SC_CLK_TCK")


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
        slot.parser = ResponseParser(request.method)
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
