"""Serving a WSGI app under gunicorn on 127.0.0.1 for the length of a benchmark."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.load import CLK_TCK
from bench.wire import Client

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def gunicorn_version() -> str:
    try:
        from importlib.metadata import version

        return version("gunicorn")
    except Exception:
        return "unknown"


def _has_option(flag: str) -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return False
    return any(flag in (setting.cli or ()) for setting in KNOWN_SETTINGS)


class Gunicorn:
    """``gunicorn APP`` with a fixed worker setup; a context manager that always stops it."""

    def __init__(self, app: str, *, env: dict[str, str], logdir: Path, workers: int = 2,
                 worker_class: str = "sync", name: str = "server"):
        self.app, self.env, self.workers, self.worker_class = app, env, workers, worker_class
        self.name = name
        self.port = free_port()
        self.log_path = Path(logdir) / f"gunicorn-{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def options(self) -> list[str]:
        options = ["--workers", str(self.workers), "--worker-class", self.worker_class,
                   "--bind", f"{HOST}:{self.port}"]
        if _has_option("--no-control-socket"):  # no shared ~/.gunicorn socket between servers
            options.append("--no-control-socket")
        return options

    def start(self, ready_path: str = "/", timeout: float = 30.0) -> Gunicorn:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", *self.options, self.app],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status = Client(HOST, self.port, timeout=5).request("GET", ready_path).status
                if status == 200 and len(self.worker_pids()) >= self.workers:
                    return self
                last = f"HTTP {status}"
            except OSError as exc:
                last = exc
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn ({self.name}) not ready after {timeout:.0f} s ({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the master and its current workers."""
        total = 0
        for pid in [self.proc.pid, *self.worker_pids()] if self.proc else []:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLK_TCK

    def worker_boots(self) -> int:
        """How many workers were started (more than ``workers`` means some were restarted)."""
        try:
            return self.log_path.read_text(errors="replace").count("Booting worker")
        except OSError:
            return 0

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
