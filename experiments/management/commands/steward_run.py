"""`make run`: everything Steward needs on one machine, in the foreground.

Migrates the database, does the first-start setup (an `admin` user with a
random password and an API token, both printed once), seeds the demo project,
then hands the processes of the Procfile to honcho:

  web     gunicorn serving mlplatform.wsgi (static files through WhiteNoise)
  worker  a real Celery worker; with no CELERY_BROKER_URL it uses the embedded
          filesystem broker under var/broker/
  beat    Celery beat, which runs the stale-job reaper every minute

honcho starts each in a process group of its own. Ctrl-C (SIGINT) or SIGTERM
stops the three groups, and with them every process they started (SIGKILL for
what is left after honcho's five seconds). If one of them dies, honcho stops
the others and the command exits non-zero naming it.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer
from honcho.process import Popen, Process

from accounts.services import api_token_create

ADMIN_USERNAME = "admin"
READY_TIMEOUT_SECONDS = 60
PROCFILE = Path(settings.BASE_DIR) / "Procfile"
# What each process prints once it serves: gunicorn's must come before /healthz is believed, so
# whatever else answers on the port (another server started meanwhile) is never announced.
READY_MARKERS = {"web": "Listening at:", "worker": " ready.", "beat": "beat: Starting"}
STOPPED = re.compile(r"^(\S+) stopped \(rc=(-?\d+)\)")
SIGNALLED = re.compile(r"^SIG(INT|TERM) received")


def _die_with_parent(sig: int) -> None:
    # Nothing must outlive this command, even when it is killed with SIGKILL (no chance to stop
    # anything): the kernel signals each process whose parent dies.
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


class GuardedProcess(Process):
    """honcho's process, tied to its parent at both ends.

    honcho runs each Procfile line from a helper process that ignores SIGINT and SIGTERM: the
    helper is killed when this command dies, and the line's process (the Procfile `exec`s it, so
    the setting survives) gets SIGTERM when its helper dies.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        on_helper_death = functools.partial(_die_with_parent, signal.SIGTERM)
        self._child_ctor = functools.partial(Popen, preexec_fn=on_helper_death)

    def run(self, events=None, ignore_signals=False) -> None:
        _die_with_parent(signal.SIGKILL)
        super().run(events, ignore_signals)


class GuardedManager(Manager):
    def __init__(self, printer) -> None:
        super().__init__(printer)
        self._process_ctor = GuardedProcess  # honcho's own seam for the process class


class ReadyPrinter(Printer):
    """honcho's printer, which also notes each process's ready line and the first one to stop.

    honcho reports signals and stopped processes as lines of its own ("system"); the lines are
    those of the pinned honcho version (tests/experiments/test_steward_run.py runs them).
    """

    def __init__(self, output, on_all_ready) -> None:
        super().__init__(output)
        self._lock = threading.Lock()
        self._waiting = set(READY_MARKERS)
        self._on_all_ready = on_all_ready
        self.stop_requested = False
        self.first_stopped: tuple[str, int] | None = None

    def write(self, message) -> None:
        text = message.data.decode("utf-8", "replace") if isinstance(message.data, bytes) else message.data
        if message.name == "system":
            if SIGNALLED.match(text):
                self.stop_requested = True
            elif (stopped := STOPPED.match(text)) and self.first_stopped is None and not self.stop_requested:
                self.first_stopped = (stopped[1], int(stopped[2]))
        elif message.name in self._waiting and READY_MARKERS[message.name] in text:
            self._waiting.discard(message.name)
            if not self._waiting:
                self._on_all_ready()
        with self._lock, suppress(OSError, ValueError):
            # Our own output may be gone (a closed pipe); the processes must go on being drained.
            super().write(message)

    @property
    def running(self) -> bool:
        return not self.stop_requested and self.first_stopped is None

    def say(self, text: str) -> None:
        with self._lock, suppress(OSError, ValueError):
            print(text, file=self.output, flush=True)


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
        banner_shown = threading.Event()
        printer = None
        try:
            if not no_demo:
                call_command("seed_demo", owner=admin.username, stdout=self.stdout)
                # A served model with a monitor and drifted traffic (the monitoring app's command).
                # The rest of the demo is worth starting without it.
                try:
                    call_command("monitoring_demo", owner=admin.username, stdout=self.stdout)
                except Exception as exc:  # noqa: BLE001 - reported, and the server starts anyway
                    self.stderr.write(f"The monitoring demo could not be set up: {exc}")
            env = self._environment(host, port, web_workers)
            # honcho forks a helper per process: none of them may share this one's database handle.
            connections.close_all()

            def announce() -> None:
                threading.Thread(target=self._announce, daemon=True, name="steward-run-banner",
                                 args=(printer, url, admin, password, token, banner_shown)).start()

            printer = ReadyPrinter(sys.stdout, announce)
            manager = GuardedManager(printer)
            for name, command in parse_procfile(PROCFILE.read_text()).processes.items():
                manager.add_process(name, command, env=env, cwd=str(settings.BASE_DIR))
            threading.Thread(target=self._warn_if_slow, daemon=True, name="steward-run-ready",
                             args=(printer, banner_shown)).start()
            manager.loop()  # until Ctrl-C / SIGTERM, or until one process stops
        finally:
            if not banner_shown.is_set() and (password or token):
                # The first start's credentials exist only now: never lose them to a failed start.
                with suppress(OSError, ValueError):
                    self.stdout.write("\n".join(
                        ["", "Keep these; they are not shown again:"]
                        + self._credential_lines(admin, password, token)
                    ))
        if printer.first_stopped is not None:
            name, code = printer.first_stopped
            raise CommandError(f"The {name} process exited (code {code}); stopped the others.")
        with suppress(OSError, ValueError):
            self.stdout.write("Steward stopped.")

    def _environment(self, host: str, port: int, web_workers: int) -> dict[str, str]:
        """The Procfile's variables, and this interpreter's folder first on PATH for its `python`."""
        worker = []
        if connection.vendor == "sqlite":
            # One task at a time: SQLite has a single writer.
            worker.append("--pool=solo")
        else:
            worker.append("--concurrency=2")
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            # The folder broker has no broadcast exchange for worker-to-worker chatter.
            worker += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        bin_dir = os.path.dirname(sys.executable)
        return {
            **os.environ,
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
            "STEWARD_BIND": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            "WEB_WORKERS": str(web_workers),
            "WORKER_OPTIONS": " ".join(worker),
        }

    def _announce(self, printer: ReadyPrinter, url: str, admin, password, token,
                  shown: threading.Event) -> None:
        """Every process said it is ready: once /healthz answers too, show the banner."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline and printer.running:
            with suppress(OSError):
                with urllib.request.urlopen(url + "healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        printer.say(self._banner(url, admin, password, token))
                        shown.set()
                        return
            time.sleep(0.3)

    def _warn_if_slow(self, printer: ReadyPrinter, shown: threading.Event) -> None:
        if not shown.wait(READY_TIMEOUT_SECONDS) and printer.running:
            printer.say(f"Not all ready after {READY_TIMEOUT_SECONDS} s; still starting, see the log.")

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

    def _banner(self, url: str, admin, password: str | None, token: str | None) -> str:
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
        return "\n".join(lines)
