"""SDK tests run the real server in a subprocess (gunicorn) against pytest's test database.

A subprocess rather than ``live_server`` because the outage tests stop the
server and start it again on the same port with the same database. Rows the
tests create are committed (``transactional_db``) so the server sees them.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from accounts import services as account_services
from accounts.models import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

REPO = Path(__file__).resolve().parents[2]

# Short retry budgets so the outage tests take seconds, not minutes.
SDK_ENV = {
    "STEWARD_RETRY_TIMEOUT": "1.5",
    "STEWARD_PROBE_INTERVAL": "0.5",
    "STEWARD_FLUSH_INTERVAL": "0.2",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        return f"postgres://{auth}@{host}:{port}/{db['NAME']}"
    name = str(db["NAME"])
    if connection.vendor == "sqlite" and "memory" not in name and name != ":memory:":
        return f"sqlite:///{name}"
    pytest.skip("SDK tests need a test database a second process can open (PostgreSQL or an SQLite file).")


class ServerProcess:
    """gunicorn serving Steward on one port; can be stopped and started again on that port."""

    def __init__(self, database_url: str, var_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.var_dir = var_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "sdk-test-secret",
            "STEWARD_VAR_DIR": str(var_dir),
            "CONN_MAX_AGE": "0",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            # Jobs run inside the request that queues them; SDK tests only poll them.
            "CELERY_TASK_ALWAYS_EAGER": "1",
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        log = (self.var_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mlplatform.wsgi", "-b", f"127.0.0.1:{self.port}",
             "--workers", "1", "--worker-class", "gthread", "--threads", "4",
             "--graceful-timeout", "2", "--timeout", "120", "--no-control-socket"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.var_dir / 'server.log').read_text()[-3000:]}")
            try:
                requests.get(self.url + "/api/v1/me/", timeout=10)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="session")
def steward_server(django_db_setup, tmp_path_factory):
    server = ServerProcess(_database_url(), tmp_path_factory.mktemp("steward-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_server(django_db_setup, tmp_path):
    """A server of this test's own, which the test may stop and start again."""
    var = tmp_path / "server"
    var.mkdir()
    server = ServerProcess(_database_url(), var)
    yield server
    server.stop()


@dataclass
class Account:
    username: str
    token: str
    project: str
    user: object

    def env(self, url: str) -> dict[str, str]:
        return {"STEWARD_URL": url, "STEWARD_TOKEN": self.token, "STEWARD_PROJECT": self.project}


def make_account(role: Role = Role.OWNER, project=None) -> Account:
    user = UserFactory()
    project = project or ProjectFactory()
    MembershipFactory(project=project, user=user, role=role)
    _, raw = account_services.api_token_create(user=user, name="sdk-test")
    return Account(username=user.username, token=raw, project=project.slug, user=user)


@pytest.fixture
def account(transactional_db) -> Account:
    """An owner of a fresh project, with an API token; committed so the server sees it."""
    return make_account()


@pytest.fixture(autouse=True)
def sdk_sandbox(tmp_path, monkeypatch):
    """A private HOME, config and spool per test; afterwards no run or SDK thread may be left."""
    import steward

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in list(os.environ):
        if var.startswith("STEWARD_") and var != "STEWARD_VAR_DIR":
            monkeypatch.delenv(var)
    monkeypatch.setenv("STEWARD_SPOOL_DIR", str(tmp_path / "spool"))
    for var, value in SDK_ENV.items():
        monkeypatch.setenv(var, value)
    steward.reset_configuration()
    yield tmp_path / "spool"
    leftover = steward.open_runs()
    for run in leftover:
        try:
            run.end("KILLED")
        except steward.StewardError:
            pass
    steward.reset_configuration()
    threads = [t.name for t in threading.enumerate() if t.name.startswith("steward-")]
    assert not leftover, f"runs left open: {leftover}"
    assert not threads, f"SDK threads left running: {threads}"


def run_cli(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess:
    """The `steward` command in a child process, with this test's HOME and spool."""
    return subprocess.run(
        [sys.executable, "-m", "steward.cli", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})}, input=input, check=False,
    )


class Proxy:
    """A TCP proxy in front of the test server, for network failures the SDK must ride out.

    ``drop_batches=N`` forwards the first N batch posts but throws their
    responses away: the server has stored the batch by the time it answers,
    so the client sees a lost response for a request that succeeded, the case
    the Idempotency-Key is for. ``down()`` closes the port (connections are
    refused, as with a stopped server) and ``up()`` opens it again.
    """

    BATCH = re.compile(rb"^POST /api/v1/runs/[^ ]+/batch/ ", re.M)
    KEY = re.compile(rb"^Idempotency-Key: *([^\r\n]+)", re.M | re.I)

    def __init__(self, target_port: int, drop_batches: int = 0, start_down: bool = False) -> None:
        self.target_port = target_port
        self.drop_batches = drop_batches
        self.dropped = 0
        self.batch_keys: list[str] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        if not start_down:
            self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept, args=(listener,), name="test-proxy",
                                               daemon=True)
        self._accept_thread.start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones, like a server that went away."""
        if self._listener is not None:
            _shutdown(self._listener)
            self._listener = None
            self._accept_thread.join(5)
        for s in self._sockets:
            _shutdown(s)
        for t in self._threads:
            t.join(5)
        self._sockets.clear()
        self._threads.clear()

    close = down

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            state = {"drop": False}
            self._sockets += [client, upstream]
            for target in (self._to_server, self._to_client):
                t = threading.Thread(target=target, args=(client, upstream, state), daemon=True)
                t.start()
                self._threads.append(t)

    def _to_server(self, client, upstream, state) -> None:
        try:
            while data := client.recv(65536):
                if self.BATCH.search(data):
                    key = self.KEY.search(data)
                    with self._lock:
                        self.batch_keys.append(key.group(1).decode() if key else "")
                        if self.dropped < self.drop_batches:
                            self.dropped += 1
                            state["drop"] = True
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(upstream)

    def _to_client(self, client, upstream, state) -> None:
        try:
            while data := upstream.recv(65536):
                if state["drop"]:
                    # The server answered, so the batch is committed; the client never hears of it.
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(client)
            _shutdown(upstream)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
