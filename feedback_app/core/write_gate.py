"""The SQLite write gate: one writer at a time among this machine's workers, queued by the kernel,
waiting no longer than it is told."""
from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
import weakref

from sqlalchemy import Engine, exc


class WriteGateTimeout(exc.TimeoutError):
    """The write gate stayed held past the wait (another worker's writer did not let go): the request
    fails as when SQLite's own lock is held past its busy timeout, well before the server kills it."""


class WriteGate:
    """One SQLite writer at a time among this machine's workers, queued by the kernel.

    A SQLite writer that finds the database locked sleeps and tries again (its busy handler waits
    1, 2, 5, 10… ms), so under load two workers spend more time asleep than writing. A request
    that is about to write takes an exclusive ``flock`` on a file beside the database first: the
    next writer wakes the moment the previous one has committed. A thread lock comes first, since
    ``flock`` does not exclude two threads of one process; the file is opened by each process
    itself, since a descriptor inherited across ``fork`` would share one lock. Writers that do not
    pass the gate (the command line) still meet SQLite's own busy handler, as before.

    ``wait_seconds`` bounds the wait as SQLite's busy timeout bounds its own: a worker stuck while it
    holds the gate must not hold up every other writer until the server kills them, with no answer
    to the person. ``WriteGateTimeout`` then. A writer that finds the gate held still waits in the
    kernel's queue: in the main thread (a gunicorn sync worker's requests) in ``flock`` itself, which
    an alarm signal interrupts at the deadline (``_flock_until``); in any other thread, in a thread of
    its own on a descriptor of its own (``_Waiter``). None: as long as it takes.
    """

    def __init__(self, path: str, wait_seconds: float | None = None) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._held: int | None = None  # the descriptor that holds the lock: ``_fd``, or a waiter's
        this = weakref.ref(self)

        def forked() -> None:
            gate = this()
            if gate is not None:
                gate._forked()

        os.register_at_fork(after_in_child=forked)

    def _forked(self) -> None:
        """In a new child process: a lock and a descriptor of its own, whatever the parent held."""
        self._threads = threading.Lock()
        self._fd = None
        self._held = None

    def acquire(self) -> None:
        wait = self.wait_seconds
        deadline = None if wait is None else time.monotonic() + wait
        if not self._threads.acquire(timeout=-1 if wait is None else wait):
            raise WriteGateTimeout(f"the write gate {self.path} stayed held for {wait} s (in this process)")
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            held = self._lock(self._fd, deadline)
            if held is None:
                raise WriteGateTimeout(f"the write gate {self.path} stayed held for {wait} s")
            self._held = held
        except BaseException:
            self._threads.release()
            raise

    def _lock(self, fd: int, deadline: float | None) -> int | None:
        """The descriptor that now holds the lock (``fd``, or a waiter's); None once ``deadline`` passed."""
        if deadline is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if _alarm_is_free():
            return fd if _flock_until(fd, deadline) else None
        waiter = _Waiter(self.path)
        return waiter.fd if waiter.wait(deadline - time.monotonic()) else None

    def release(self) -> None:
        try:
            held, self._held = self._held, None
            assert held is not None, "release() without acquire()"
            fcntl.flock(held, fcntl.LOCK_UN)
            if held != self._fd:  # a waiter's descriptor
                os.close(held)
        finally:
            self._threads.release()


class _Alarm(Exception):
    """The deadline of a wait at the write gate (SIGALRM), raised in the waiting ``flock``."""


def _ring(_signum: int, _frame: object) -> None:
    raise _Alarm


def _alarm_is_free() -> bool:
    """Whether this thread may bound a wait with SIGALRM: the main thread (only it runs signal
    handlers), no handler of anybody else's for it, and no timer of anybody else's running."""
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
            and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))


def _flock_until(fd: int, deadline: float) -> bool:
    """``flock(fd, LOCK_EX)``, interrupted by an alarm at ``deadline``: True when the lock is held."""
    signal.signal(signal.SIGALRM, _ring)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 0.001))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            return True
        except _Alarm:  # (also when it rang as the lock was granted: let go again)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
    finally:
        while True:  # an alarm that rang before the timer was stopped, and is handled only now, is late
            try:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                break
            except _Alarm:
                continue


class _Waiter:
    """A blocking ``flock`` on a descriptor of its own, in a thread of its own, that its caller may stop
    waiting for: the lock is then let go as soon as the thread gets it."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._mutex = threading.Lock()
        self._got = threading.Event()
        self._abandoned = False
        self._error: OSError | None = None
        threading.Thread(target=self._wait, name="write-gate-waiter", daemon=True).start()

    def _wait(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as error:
            self._error = error
        with self._mutex:
            if not self._abandoned:
                self._got.set()
                return
        if self._error is None:  # nobody waits for it any more
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)

    def wait(self, seconds: float) -> bool:
        """True once the lock is held (on ``fd``); False when ``seconds`` passed first."""
        if not self._got.wait(max(0.0, seconds)):
            with self._mutex:
                if not self._got.is_set():
                    self._abandoned = True
                    return False
        if self._error is not None:
            os.close(self.fd)
            raise self._error
        return True


def write_gate(engine: Engine, wait_seconds: float | None = None) -> WriteGate | None:
    """The gate of a SQLite file's writers (None for PostgreSQL, or SQLite in memory); a writer waits at
    it at most ``wait_seconds`` (None: as long as it takes)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return WriteGate(database + ".writegate", wait_seconds)
