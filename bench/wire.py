"""HTTP on the wire for the load generator: requests written as bytes, responses parsed just enough,
one blocking connection (``Client``), its cookies, and browser-shaped multipart bodies."""
from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass


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

class ResponseParser:
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
            parser = ResponseParser(request.method)
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
