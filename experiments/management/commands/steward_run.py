"""`make run`: everything Steward needs on one machine, in the foreground.

Migrates the database, does the first-start setup (an `admin` user with a
random password and an API token, both printed once), seeds the demo project,
then starts three child processes and watches them:

  web     gunicorn serving mlplatform.wsgi (static files through WhiteNoise)
  worker  a real Celery worker; with no CELERY_BROKER_URL it uses the embedded
          filesystem broker under var/broker/
  beat    Celery beat, which runs the stale-job reaper every minute

Ctrl-C (SIGINT) or SIGTERM stops all three and everything they started. If
one of them dies, the others are stopped too and the command exits non-zero.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.services import api_token_create

ADMIN_USERNAME = "admin"
STOP_GRACE_SECONDS = 10
READY_TIMEOUT_SECONDS = 60


def _die_with_parent() -> None:
    # A child must not outlive this command, even if it is killed with SIGKILL.
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    ready_marker: str | None = None

    def start(self, env: dict[str, str], out) -> None:
        self.process = subprocess.Popen(
            self.argv, env=env, cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._relay, args=(out,), daemon=True).start()

    def _relay(self, out) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if self.ready_marker and self.ready_marker in line:
                self.ready.set()
            # Keep draining even when our own output is gone (a closed pipe):
            # a child blocked on a full pipe would hang.
            with suppress(OSError, ValueError):
                out.write(f"{self.name:<6} | {line}")
                out.flush()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        # Each child leads its own process group: this reaches gunicorn's and
        # Celery's own worker processes as well.
        if self.process is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, sig)


def port_check(host: str, port: int) -> None:
    """Stop before anything starts when the port is taken, naming it and the way out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gunicorn binds: SO_REUSEADDR lets a port in TIME_WAIT (a Steward just stopped) be used.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"Port {port} on {host} is already in use: another Steward or another program is "
                    f"listening there. Stop it, or start on another port: make run PORT={port + 1}"
                ) from None
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror}.") from None


class Command(BaseCommand):
    help = "Start Steward here: migrate, first-start setup, web server, Celery worker and beat."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"),
                            help="Address to bind the web server to (env HOST, default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")),
                            help="Port of the web server (env PORT, default 8000).")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes.")
        parser.add_argument("--no-demo", action="store_true", help="Do not seed the demo project.")

    def handle(self, *args, host: str, port: int, web_workers: int, no_demo: bool, **options):
        port_check(host, port)
        self.stdout.write("Migrating the database ...")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Collecting static files (hashed and compressed) ...")
        call_command("collectstatic", interactive=False, verbosity=0)
        admin, password, token = self._first_start()
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        url = f"http://{f'[{shown_host}]' if ':' in shown_host else shown_host}:{port}/"
        banner_shown = False
        failed = None
        try:
            if not no_demo:
                call_command("seed_demo", owner=admin.username, stdout=self.stdout)
                # A served model with a monitor and drifted traffic (the monitoring app's command).
                # The rest of the demo is worth starting without it.
                try:
                    call_command("monitoring_demo", owner=admin.username, stdout=self.stdout)
                except Exception as exc:  # noqa: BLE001 - reported, and the server starts anyway
                    self.stderr.write(f"The monitoring demo could not be set up: {exc}")
            children = self._children(host, port, web_workers)
            stopping = threading.Event()

            def request_stop(signum, frame):
                stopping.set()

            signal.signal(signal.SIGINT, request_stop)
            signal.signal(signal.SIGTERM, request_stop)
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            try:
                for child in children:
                    child.start(env, sys.stdout)
                self._wait_ready(children, url, stopping)
                if not stopping.is_set() and all(c.alive() for c in children):
                    self._banner(url, admin, password, token)
                    banner_shown = True
                while not stopping.is_set():
                    failed = next((c for c in children if not c.alive()), None)
                    if failed is not None:
                        break
                    stopping.wait(0.5)
            finally:
                self._stop(children)
        finally:
            if not banner_shown and (password or token):
                # The first start's credentials exist only now: never lose them to a failed start.
                with suppress(OSError, ValueError):
                    self.stdout.write("\n".join(
                        ["", "Keep these; they are not shown again:"]
                        + self._credential_lines(admin, password, token)
                    ))
        if failed is not None:
            raise CommandError(
                f"The {failed.name} process exited (code {failed.process.returncode}); stopped the others."
            )
        with suppress(OSError, ValueError):
            self.stdout.write("Steward stopped.")

    def _first_start(self):
        """Create the admin and a token once; later starts only find them."""
        users = get_user_model()
        admin = (users.objects.filter(username=ADMIN_USERNAME, is_superuser=True).first()
                 or users.objects.filter(is_superuser=True).order_by("pk").first())
        if admin is not None:
            return admin, None, None
        password = secrets.token_urlsafe(12)
        admin = users.objects.create_superuser(username=ADMIN_USERNAME, email="", password=password)
        _, token = api_token_create(user=admin, name="first start")
        return admin, password, token

    def _children(self, host: str, port: int, web_workers: int) -> list[Child]:
        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        celery = [sys.executable, "-m", "celery", "-A", "mlplatform"]
        worker = [*celery, "worker", "--loglevel", "INFO", "--hostname", f"steward@{os.uname().nodename}"]
        if connection.vendor == "sqlite":
            # One task at a time: SQLite has a single writer.
            worker.append("--pool=solo")
        else:
            worker.append("--concurrency=2")
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            # The folder broker has no broadcast exchange for worker-to-worker chatter.
            worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        return [
            # Ready only once gunicorn says it listens: whatever else answers /healthz on the
            # port (another server started meanwhile) is never announced as this one.
            Child("web", [sys.executable, "-m", "gunicorn", "mlplatform.wsgi:application",
                          "--bind", bind, "--workers", str(web_workers), "--threads", "4",
                          "--no-control-socket",
                          "--graceful-timeout", str(STOP_GRACE_SECONDS - 2)],
                  ready_marker="Listening at:"),
            Child("worker", worker, ready_marker=" ready."),
            Child("beat", [*celery, "beat", "--loglevel", "INFO"], ready_marker="beat: Starting"),
        ]

    def _wait_ready(self, children: list[Child], url: str, stopping: threading.Event) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        web_up = False
        while time.monotonic() < deadline and not stopping.is_set():
            if any(not c.alive() for c in children):
                return False
            if not web_up:
                with suppress(OSError):
                    with urllib.request.urlopen(url + "healthz", timeout=2) as response:  # noqa: S310
                        web_up = response.status == 200
            if web_up and all(c.ready.is_set() for c in children if c.ready_marker):
                return True
            stopping.wait(0.3)
        if not stopping.is_set() and all(c.alive() for c in children):
            self.stderr.write(f"Not all ready after {READY_TIMEOUT_SECONDS} s; still starting, see the log.")
        return False

    def _credential_lines(self, admin, password: str | None, token: str | None) -> list[str]:
        # Commands that work pasted into a fresh shell: make targets use the project's virtualenv.
        name = admin.username
        if password:
            lines = [f"  Log in:     {name} / {password}",
                     f"              (printed only this once; change it with `make password USER={name}`)"]
        else:
            lines = [f"  Log in:     {name} (its password was printed on the first start; "
                     f"`make password USER={name}` sets a new one)"]
        if token:
            lines += [f"  API token:  {token}",
                      f"              (printed only this once; make another with `make token USER={name}`)"]
        else:
            lines += [f"  API token:  `make token USER={name}` prints a new one"]
        return lines

    def _banner(self, url: str, admin, password: str | None, token: str | None) -> None:
        broker = settings.CELERY_BROKER_URL
        if broker.startswith("filesystem://"):
            broker = f"embedded (files in {settings.CELERY_BROKER_DIR})"
        else:
            broker = broker.split("@")[-1]  # never print a password from the URL
        database = settings.DATABASES["default"]
        lines = [
            "", "=" * 72, f"Steward is running at {url}", "",
            *self._credential_lines(admin, password, token),
            f"  API docs:   {url}api/docs/",
            f"  Worker:     Celery worker + beat, broker {broker}",
            f"  Data:       {database['NAME']}" if connection.vendor == "sqlite"
            else f"  Database:   {connection.vendor} {database['NAME']} on {database['HOST']}",
            "", "Press Ctrl-C to stop.", "=" * 72, "",
        ]
        self.stdout.write("\n".join(lines))

    def _stop(self, children: list[Child]) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        running = [c for c in children if c.process is not None]
        for child in running:
            child.signal_group(signal.SIGTERM)
        with suppress(OSError, ValueError):
            self.stdout.write("Stopping web, worker and beat ...")
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in running:
            with suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in running:
            # Anything still there (a task that ignores the warm shutdown, a
            # straggling pool process) is killed; acks_late re-delivers its task.
            child.signal_group(signal.SIGKILL)
            child.process.wait()
