"""Real servers for the tests, started by the tests themselves: a private PostgreSQL server and an
S3-compatible object store (moto's standalone server, installed from PyPI with the test extra).

``scripts/ensure_servers.sh`` (run by ``make test``) installs Debian's ``postgresql`` package when no
``initdb`` is found; this module runs ``initdb`` into a fresh directory, starts the server with ``pg_ctl`` on a
free loopback port, and stops it when the session ends. PostgreSQL refuses to run as root, so under root the
server runs as the ``postgres`` user (the Debian package creates it) or a system user made for it.

Nothing is skipped: when the server cannot be started the fixture fails, so a machine without PostgreSQL
cannot pass the suite silently. ``SMSC_TEST_POSTGRES_URL`` points the tests at a server of your own instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL_ENV = "SMSC_TEST_POSTGRES_URL"
PG_USER = "smsc"
PG_DATABASE = "smsc_test"
# The system user the server runs as when the tests run as root.
SERVICE_USERS = ("postgres", "smsc-pg")


def postgres_bin_dir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _service_user() -> str | None:
    """``None`` when not root; else a non-root system user to run the server as (created if need be)."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    name = SERVICE_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
        text=True,
    )
    return name


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1, password-authenticated over TCP."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.user = _service_user()
        self.password = secrets.token_urlsafe(18)
        # Not under pytest's basetemp: that is root-only (0700) and the server's user must reach its directory.
        self.root = Path(tempfile.mkdtemp(prefix="smsc-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._started = False

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(
            cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout, env={**os.environ, "LC_ALL": "C"}
        )

    def _check(self, what: str, proc: subprocess.CompletedProcess[str]) -> None:
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"PostgreSQL test server: {what} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n"
                f"--- server log ---\n{log}"
            )

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user:
            info = pwd.getpwnam(self.user)
            for path in (self.root, pwfile):
                os.chown(path, info.pw_uid, info.pw_gid)
        self._check(
            "initdb",
            self._run(
                self.bin_dir / "initdb", "-D", self.data, "-U", PG_USER, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync",
            ),
        )
        pwfile.unlink()
        last: Exception | None = None
        for _ in range(3):  # a free port can be taken between choosing and binding it
            self.port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
            )
            proc = self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                             "-o", options, "start")
            try:
                self._check("pg_ctl start", proc)
            except RuntimeError as exc:
                last = exc
                continue
            self._started = True
            break
        else:
            raise last or RuntimeError("PostgreSQL test server did not start")
        self._check(
            "createdb",
            self._run(self.bin_dir / "createdb", "-h", self.root, "-p", str(self.port), "-U", PG_USER, PG_DATABASE),
        )

    def stop(self) -> None:
        try:
            if self._started:
                self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "30", "stop")
                self._started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL (with its password) of a private PostgreSQL database on 127.0.0.1 for this test session."""
    external = os.environ.get(POSTGRES_URL_ENV)
    if external:
        yield external
        return
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): run "
            "scripts/ensure_servers.sh (make test does), or set " + POSTGRES_URL_ENV,
            pytrace=False,
        )
    server = PostgresServer(bin_dir)
    started = time.monotonic()
    try:
        server.start()
    except Exception as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    server.startup_s = time.monotonic() - started  # type: ignore[attr-defined]
    try:
        yield server.url
    finally:
        server.stop()


class S3Server:
    """moto's standalone S3-compatible server on 127.0.0.1 (a real HTTP server speaking the S3 protocol; its
    objects live in that process's memory), in its own process."""

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkdtemp(prefix="smsc-s3-")) / "server.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The AWS variables a process uses to reach this server (test credentials, not secrets)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "smsc-test",
            "AWS_SECRET_ACCESS_KEY": "smsc-test-secret",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> None:
        for _ in range(3):
            self.port = _free_port()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=log, stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError("S3 test server (moto) did not start:\n" + self.log.read_text(errors="replace")[-4000:])

    def new_bucket(self) -> str:
        """A fresh, empty bucket's name."""
        import pyarrow.fs as pafs

        name = f"smsc-{uuid.uuid4().hex[:12]}"
        fs = pafs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{self.port}", scheme="http", region="us-east-1",
            access_key="smsc-test", secret_key="smsc-test-secret", allow_bucket_creation=True,
        )
        fs.create_dir(name)
        return name

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An S3-compatible server on 127.0.0.1 for this test session (fails, never skips, when it cannot run)."""
    server = S3Server()
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{exc} (is the test extra installed? pip install -e '.[test]')", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """This process pointed at the S3 test server through the AWS variables."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return s3_server
