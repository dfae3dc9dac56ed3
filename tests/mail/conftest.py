"""A throwaway Dovecot IMAP server per test, on a free loopback port, with a Maildir to deliver into.

``dovecot`` speaks plain IMAP only; ``dovecot_tls`` requires TLS (implicit on its ``imaps`` port, STARTTLS on
the plain one) with a certificate for 127.0.0.1 and localhost signed by a throwaway CA (``tls_files``, made
once per test process with the ``openssl`` binary).
Dovecot is a Debian package (``apt-get install -y dovecot-imapd``); without it the fixture fails.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "app", "secret"
PR_SET_PDEATHSIG = 1

CONFIG = """\
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
mail_location = maildir:{dir}/mail/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"""
NO_TLS = "ssl = no"
# Dovecot 2.3's names. Dovecot counts loopback as secure and so accepts a plain login there even with
# "required": its log line ("TLS" rather than "secured") is what shows a session was encrypted.
# No ssl_dh: without it Dovecot offers no DHE ciphers, and ECDHE needs none.
REQUIRE_TLS = """\
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}"""

OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # fast to make, unlike RSA


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # signed the server's certificate
    stranger_ca: Path  # a CA that signed nothing the server shows
    cert: Path
    key: Path


def _openssl(directory: Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"openssl {args[0]} 失败：\n{done.stderr}", pytrace=False)


def _make_ca(directory: Path, name: str) -> Path:
    _openssl(directory, "req", "-config", "openssl.cnf", "-x509", *EC_KEY, "-keyout", f"{name}.key",
             "-out", f"{name}.pem", "-days", "2", "-subj", f"/O=feedback-app tests/CN={name}", "-extensions", "ca")
    return directory / f"{name}.pem"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TlsFiles:
    directory = tmp_path_factory.mktemp("tls")
    (directory / "openssl.cnf").write_text(OPENSSL_CONFIG)
    ca, stranger = _make_ca(directory, "ca"), _make_ca(directory, "stranger")
    _openssl(directory, "req", "-config", "openssl.cnf", "-new", *EC_KEY, "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=localhost")
    _openssl(directory, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", "2", "-days", "2", "-out", "server.pem", "-extfile", "openssl.cnf",
             "-extensions", "server")
    return TlsFiles(ca, stranger, directory / "server.pem", directory / "server.key")


def _dovecot_binary() -> str:
    found = shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail("Dovecot 未安装：邮件收取测试需要真实的 IMAP 服务器，请运行 apt-get install -y dovecot-imapd",
                    pytrace=False)
    return found


def _die_with_parent() -> None:
    """In the child: Linux sends it SIGKILL when the test process dies, even killed without cleanup."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Dovecot:
    directory: Path
    port: int  # plain IMAP; STARTTLS too when TLS is on
    process: subprocess.Popen
    tls_port: int | None = None  # implicit TLS (imaps), when TLS is on
    ca_file: Path | None = None  # the CA that signed the server's certificate
    host: str = "127.0.0.1"
    username: str = USER
    password: str = PASSWORD

    _names = itertools.count(1)

    @property
    def maildir(self) -> Path:
        return self.directory / "mail" / USER / "Maildir"

    def deliver(self, raw: bytes, label: str = "msg") -> Path:
        """Put one message into the Maildir's new/ folder, as a local delivery agent would."""
        nobody = pwd.getpwnam("nobody")
        name = f"{int(time.time())}.M{next(self._names)}P{os.getpid()}.{label}"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
        target = self.maildir / "new" / name
        os.replace(tmp, target)
        return target

    def env(self) -> dict[str, str]:
        """FEEDBACK_* variables pointing ``feedback-app mail fetch`` at this server."""
        return {"FEEDBACK_IMAP_HOST": self.host, "FEEDBACK_IMAP_PORT": str(self.port),
                "FEEDBACK_IMAP_USERNAME": self.username, "FEEDBACK_IMAP_PASSWORD": self.password,
                "FEEDBACK_IMAP_SECURITY": "plain", "FEEDBACK_IMAP_ALLOW_PLAIN": "1"}

    def settings_overrides(self) -> dict:
        return dict(imap_host=self.host, imap_port=self.port, imap_username=self.username,
                    imap_password=self.password, imap_security="plain", imap_allow_plain=True)

    def tls_overrides(self, security: str) -> dict:
        """Settings for a fetch over ``tls`` (the imaps port) or ``starttls`` (the plain port), trusting our CA."""
        port = self.tls_port if security == "tls" else self.port
        return dict(self.settings_overrides(), imap_port=port, imap_security=security, imap_allow_plain=False,
                    imap_ca_file=self.ca_file)

    def log(self) -> str:
        paths = (self.directory / "stderr.log", self.directory / "dovecot.log")
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())


def _wait_ready(server: Dovecot, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"Dovecot 启动失败：\n{server.log()}", pytrace=False)
        try:
            with socket.create_connection((server.host, server.port), timeout=1) as conn:
                if conn.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"Dovecot 未在规定时间内就绪：\n{server.log()}", pytrace=False)


@contextmanager
def _running_dovecot(tls: TlsFiles | None):
    binary = _dovecot_binary()
    directory = Path(tempfile.mkdtemp(prefix="feedback-dovecot-"))
    directory.chmod(0o755)  # the mail processes run as nobody
    nobody = pwd.getpwnam("nobody")
    for sub in ("cur", "new", "tmp"):
        (directory / "mail" / USER / "Maildir" / sub).mkdir(parents=True)
    for path in [directory / "mail", *(directory / "mail").rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    (directory / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    port = _free_port()
    tls_port = _free_port() if tls else None
    ssl_block = REQUIRE_TLS.format(cert=tls.cert, key=tls.key) if tls else NO_TLS
    config = directory / "dovecot.conf"
    config.write_text(CONFIG.format(dir=directory, port=port, tls_port=tls_port or 0, ssl=ssl_block))
    with open(directory / "stderr.log", "wb") as stderr:
        process = subprocess.Popen([binary, "-c", str(config), "-F"], stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True, preexec_fn=_die_with_parent)
    server = Dovecot(directory, port, process, tls_port=tls_port, ca_file=tls.ca if tls else None)
    try:
        _wait_ready(server, time.monotonic() + 15)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the server and its children: a throwaway, nothing to save
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def dovecot():
    with _running_dovecot(None) as server:
        yield server


@pytest.fixture
def dovecot_tls(tls_files):
    with _running_dovecot(tls_files) as server:
        yield server
