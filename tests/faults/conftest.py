"""What the fault-injection suite breaks things with: real ones, no mocks.

- ``mounts``: tmpfs folders and read-only bind mounts (root is needed; as root ``chmod`` stops no write),
  each unmounted when the test ends, whatever happened;
- ``fill``: a filesystem filled to its last byte, ``leave_free`` to give some room back;
- ``private_postgres``: a throwaway PostgreSQL cluster of the test's own, on a free port, that the test
  may stop and start (the shared server on 5432 is never touched);
- ``gunicorn``: the app served by gunicorn (``bench.server.Gunicorn``), stopped at the end, its workers too;
- what a person and the stores are looked at with: a citizen's visit over the wire, the files under the
  attachment store, the rows.

Nothing here is skipped: what a fault test needs and does not find (root, the PostgreSQL binaries,
gunicorn) fails the test, with what is missing.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import importlib.util
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bench.server import HOST, Gunicorn, free_port
from bench.web import server_env
from bench.wire import Client, CookieJar, Request, Response, ResponseParser, multipart
from feedback_app.core.database import make_engine
from feedback_app.intake.attachments import PARTIAL_DIR
from feedback_app.migrations import upgrade

SLUG = "huangpu-2025-03-28"
FORM = f"/bulletins/{SLUG}/feedback"
OFFICE_PHONE = "020-82370000"
BULLETIN_PHONE = "020-82378781"  # the seed bulletin's
NOT_SAVED = "系统暂时无法保存"
NOT_READ = "系统暂时无法访问"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
FORM_TOKEN_RE = re.compile(r'name="form_token" value="([^"]+)"')
REFERENCE_RE = re.compile(r'id="reference">([^<]+)<')


def need(condition: object, what: str) -> None:
    """Fail, loudly, when what a fault test needs is not there (never a skip)."""
    if not condition:
        pytest.fail(f"the fault tests need {what}", pytrace=False)


def run(*command: str, user: str | None = None, timeout: float = 60) -> str:
    if user is not None:
        command = ("runuser", "-u", user, "--", *command)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


# --- mounts -------------------------------------------------------------------------------------

class Mounts:
    """Mounts made by one test, undone (innermost first) when it ends."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def tmpfs(self, path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
        self.points.append(path)
        return path

    def read_only(self, path: Path) -> None:
        """``path`` (a file or a folder) read-only from now on, through a bind mount of itself. Nothing
        may have it open for writing through that mount: the kernel refuses the remount (EBUSY)."""
        run("mount", "--bind", str(path), str(path))
        self.points.append(path)
        run("mount", "-o", "remount,bind,ro", str(path))

    def writable(self, path: Path) -> None:
        """Undo ``read_only`` (the bind mount goes)."""
        self.points.remove(path)
        run("umount", str(path))

    def undo(self) -> None:
        while self.points:
            point = self.points.pop()
            try:
                run("umount", str(point))
            except RuntimeError:
                run("umount", "-l", str(point))  # something still has a file open there


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    need(os.geteuid() == 0, "root (mount -t tmpfs, mount --bind)")
    made = Mounts()
    try:
        yield made
    finally:
        made.undo()


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to its last byte with one file; returns that file."""
    filler = directory / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)
    assert free_bytes(directory) == 0
    return filler


def leave_free(filler: Path, nbytes: int) -> None:
    """Give ``nbytes`` (rounded up to whole pages) back to the filesystem ``filler`` fills."""
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - (nbytes + 4095) // 4096 * 4096))


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


# --- databases ----------------------------------------------------------------------------------

def sqlite_copy(sqlite_template: tuple[str, Path], directory: Path) -> str:
    """A migrated, empty SQLite database in ``directory``, whatever database the run is against."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "feedback.db"
    shutil.copy(sqlite_template[1], path)
    return f"sqlite:///{path}"


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of one test's own: ``stop()`` and ``start()`` it at will."""

    bindir: Path
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "feedback") -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def init(self) -> None:
        run(str(self.bindir / "initdb"), "-D", str(self.data), "--auth=trust", "--username=postgres",
            "--encoding=UTF8", "--locale=C.UTF-8", "-N", user="postgres")

    def start(self) -> None:
        """Without fsync: the cluster is thrown away, and an immediate stop (a crash of the server, not
        of the machine) loses nothing the kernel has; its recovery at the next start takes no seconds."""
        options = (f"-p {self.port} -c listen_addresses={HOST} -c unix_socket_directories={self.root} "
                   "-c max_connections=40 -c shared_buffers=16MB -c fsync=off")
        run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
            "-t", "30", "-o", options, "start", user="postgres")

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server ends at once, as in a crash (it recovers at the next start)."""
        run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", user="postgres")

    def running(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex((HOST, self.port)) == 0

    def create_database(self, name: str = "feedback") -> str:
        admin = make_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                                  "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"))
        finally:
            admin.dispose()
        engine = make_engine(self.url(name))
        try:
            upgrade(engine)  # as tests/conftest.py (and ``feedback-app db upgrade``) does
        finally:
            engine.dispose()
        return self.url(name)


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    need(found, "PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb)")
    need(shutil.which("runuser"), "runuser (initdb refuses to run as root)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        need(False, "the postgres OS user (initdb refuses to run as root)")
    return Path(found[-1]).parent


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    need(os.geteuid() == 0, "root (to run initdb and pg_ctl as the postgres user)")
    root = Path(tempfile.mkdtemp(prefix="feedback-faults-pg-"))  # pytest's tmp folders are root's alone
    os.chown(root, pwd.getpwnam("postgres").pw_uid, -1)
    cluster = PrivatePostgres(postgres_bindir(), root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):
            if (cluster.data / "postmaster.pid").exists():
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def rows(engine: Engine, sql: str, **params: object) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


# --- the attachment store -----------------------------------------------------------------------

def photo(seed: int, size: int = 64 * 1024) -> bytes:
    """A PNG as the attachment check sees one (by its signature), of bytes of its own."""
    return b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(size - 8)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(directory: Path) -> set[str]:
    """Every file under the attachment store, ``partial/`` included, as paths relative to it."""
    if not directory.exists():
        return set()
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


def partial_files(directory: Path) -> set[str]:
    return {name for name in stored_files(directory) if name.startswith(PARTIAL_DIR + "/")}


# --- the app under gunicorn, and a citizen's browser on the wire -----------------------------

class Served:
    """Every gunicorn the test started; each is stopped, its workers too, when the test ends."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[Gunicorn] = []
        self.pids: set[int] = set()

    def start(self, env: dict[str, str], *, workers: int = 2, name: str = "app") -> Gunicorn:
        need(importlib.util.find_spec("gunicorn"), "gunicorn (python -m gunicorn)")
        server = Gunicorn("feedback_app.app:create_app()", env=env, logdir=self.logdir, workers=workers,
                          name=f"{name}-{len(self.started)}")
        self.started.append(server)
        server.start("/healthz")
        assert server.proc is not None
        self.pids.update([server.proc.pid, *server.worker_pids()])
        return server

    def stop_all(self) -> None:
        for server in self.started:
            self.pids.update(server.worker_pids())
            server.stop()
            for pid in self.pids:  # a worker whose master was killed, if it is still that worker
                if f"{HOST}:{server.port}".encode() in _cmdline(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture
def gunicorn(tmp_path) -> Iterator[Served]:
    served = Served(tmp_path)
    try:
        yield served
    finally:
        served.stop_all()


def app_env(instance: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of the app under gunicorn: production, CSRF on, as ``bench`` runs it."""
    env = server_env(instance)
    env.update(FEEDBACK_DATABASE_URL=database_url, FEEDBACK_LOG_LEVEL="WARNING", FEEDBACK_OFFICE_PHONE=OFFICE_PHONE)
    env.update(extra)
    return env


FIELDS = {"item": "5", "kind": "suggestion", "reply_by": "online", "name": "", "phone": "", "email": "",
          "address": "", "privacy_consent": "y", "website": ""}


class Visit:
    """One citizen's visit: the form opened (its cookie and tokens kept), then posted."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.client = Client(HOST, port, timeout=timeout)
        self.port = port
        self.jar = CookieJar()
        self.tokens: list[tuple[str, str]] = []

    def open_form(self) -> Response:
        page = self.client.request(Request("GET", f"{FORM}?item=5"))
        self.jar.update(page)
        if page.status == 200:
            html = page.text()
            csrf, token = CSRF_RE.search(html), FORM_TOKEN_RE.search(html)
            assert csrf and token, "the form without its tokens"
            self.tokens = [("csrf_token", csrf.group(1)), ("form_token", token.group(1))]
        return page

    def body(self, body: str, files: list[tuple[str, bytes]] = ()) -> tuple[str, bytes]:
        fields = [*self.tokens, *FIELDS.items(), ("body", body)]
        return multipart(fields, [("attachments", name, data) for name, data in files] or
                         [("attachments", "", b"")])

    def post(self, body: str, files: list[tuple[str, bytes]] = ()) -> Response:
        content_type, payload = self.body(body, files)
        response = self.client.request(Request("POST", FORM, (("Content-Type", content_type), *self.jar.headers()),
                                               payload))
        self.jar.update(response)
        return response

    def receipt(self) -> str | None:
        page = self.client.request(Request("GET", "/receipt", self.jar.headers()))
        found = REFERENCE_RE.search(page.text()) if page.status == 200 else None
        return found.group(1) if found else None

    def close(self) -> None:
        self.client.close()


def send_chunked(port: int, path: str, headers: list[tuple[str, str]], body: bytes, chunk: int = 16 * 1024,
                 timeout: float = 30.0) -> Response:
    """POST ``body`` with ``Transfer-Encoding: chunked`` and no ``Content-Length``; the answer, as read
    even when the server answered before the whole body was sent."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", "Transfer-Encoding: chunked", "Connection: close",
                *(f"{k}: {v}" for k, v in headers)]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server answered already
            for start in range(0, len(body), chunk):
                piece = body[start:start + chunk]
                sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        parser = ResponseParser("POST")
        while True:
            data = sock.recv(65536)
            if not data:
                assert parser.eof(), "the connection closed before the answer ended"
                break
            if parser.feed(data):
                break
        assert parser.response is not None
        return parser.response
    finally:
        sock.close()


def wait_until(condition, timeout: float, what: str, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"waited {timeout:g} s for {what}")
