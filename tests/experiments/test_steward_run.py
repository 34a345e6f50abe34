"""`make run` refuses a port that is taken, prints what works pasted into a fresh shell, and stops clean."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.core.management import CommandError, call_command

from experiments.management.commands.steward_run import Command, port_check

ROOT = Path(__file__).resolve().parents[2]


def test_a_taken_port_stops_the_start_naming_the_port_and_the_way_out():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        expected = rf"Port {port} on 127.0.0.1 is already in use.*PORT={port + 1}"
        with pytest.raises(CommandError, match=expected):
            port_check("127.0.0.1", port)
        # Before anything else happens: no migration, no credentials, no banner.
        with pytest.raises(CommandError, match="already in use"):
            call_command("steward_run", host="127.0.0.1", port=port, no_demo=True)


def test_a_free_port_passes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    port_check("127.0.0.1", port)


def test_the_banner_names_make_targets_not_a_bare_python():
    class Admin:
        username = "admin"

    lines = "\n".join(Command()._credential_lines(Admin(), "pw", "stw_x")
                      + Command()._credential_lines(Admin(), None, None))
    assert "make token USER=admin" in lines and "make password USER=admin" in lines
    assert "python manage.py" not in lines


def test_make_token_without_a_user_says_how_to_name_one():
    result = subprocess.run(["make", "-s", "token"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "make token USER=<username>" in result.stderr


# The whole command, as `make run` starts it: honcho runs the Procfile's web, worker and beat.

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Started:
    def __init__(self, var_dir: Path, database_url: str, broker_url: str | None) -> None:
        self.database = database_url.split(":")[0]
        self.port = _free_port()
        env = {**os.environ, "SECRET_KEY": "test-only-secret-key", "STEWARD_VAR_DIR": str(var_dir),
               "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
        env.pop("CELERY_BROKER_URL", None)
        if broker_url:
            env["CELERY_BROKER_URL"] = broker_url
        command = [sys.executable, "manage.py", "steward_run", "--no-demo", "--port", str(self.port),
                   "--web-workers", "1"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()
        deadline = time.monotonic() + 180
        while not any("Steward is running at" in line for line in self.lines):
            assert self.process.poll() is None and time.monotonic() < deadline, self.output
            time.sleep(0.2)
        self.descendants = psutil.Process(self.process.pid).children(recursive=True)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def named(self, name: str) -> psutil.Process:
        """The Procfile process `name` (a child of honcho's helper, its own process group leader)."""
        leaders = [p for p in self.descendants if p.pid == os.getpgid(p.pid)]
        return next(p for p in leaders if f" {name} " in " ".join(p.cmdline()) + " ")

    def wait(self) -> int:
        code = self.process.wait(timeout=60)
        gone, alive = psutil.wait_procs(self.descendants, timeout=15)
        assert alive == [], f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"
        return code


@pytest.fixture(scope="module")
def sqlite_var(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("run")
    return var_dir, f"sqlite:///{var_dir / 'steward.sqlite3'}"


@pytest.fixture
def started():
    runs: list[Started] = []
    yield lambda *args: runs.append(Started(*args)) or runs[-1]
    for run in runs:
        if run.process.poll() is None:  # a failed test: stop it all the same
            run.process.kill()
            run.wait()


def _ctrl_c_stops_everything(run: Started) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{run.port}/healthz", timeout=10) as response:
        assert response.status == 200
    prefixes = {line.split("|")[0].split()[-1] for line in run.lines if " | " in line}
    assert {"web", "worker", "beat"} <= prefixes  # each process's lines, named
    pool = "--pool=solo" if run.database == "sqlite" else "--concurrency=2"  # SQLite: one writer
    assert pool in run.named("worker").cmdline()
    run.process.send_signal(signal.SIGINT)
    assert run.wait() == 0
    assert run.output.rstrip().endswith("Steward stopped.")
    port_check("127.0.0.1", run.port)  # the port is free again


def test_ctrl_c_stops_web_worker_and_beat_and_leaves_no_process(started, sqlite_var):
    # What `make run` uses by default: an SQLite file and the embedded broker.
    _ctrl_c_stops_everything(started(sqlite_var[0], sqlite_var[1], None))


def test_ctrl_c_stops_everything_on_postgresql_and_redis(started, transactional_db, tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql" or not os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("needs DATABASE_URL on PostgreSQL and CELERY_BROKER_URL (the production set-up)")
    db = connection.settings_dict
    user = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    url = f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    _ctrl_c_stops_everything(started(tmp_path, url, os.environ["CELERY_BROKER_URL"]))


def test_a_process_that_dies_stops_the_others_and_the_command_fails(started, sqlite_var):
    run = started(sqlite_var[0], sqlite_var[1], None)
    os.killpg(run.named("beat").pid, signal.SIGKILL)
    assert run.wait() != 0
    assert "The beat process exited (code -9); stopped the others." in run.output


def test_killing_the_command_itself_leaves_no_process(started, sqlite_var):
    run = started(sqlite_var[0], sqlite_var[1], None)
    run.process.kill()  # SIGKILL: the command cannot stop anything itself
    assert run.wait() == -signal.SIGKILL
