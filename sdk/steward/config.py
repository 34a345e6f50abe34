"""Where the SDK finds its server, token and defaults.

Precedence, highest first: arguments given in code (``Client(url=...)``,
``start_run(project=...)``), then :func:`steward.configure`, then environment
variables (``STEWARD_URL``, ``STEWARD_TOKEN``, ``STEWARD_PROJECT``, ...), then
``~/.steward/config`` (written by ``steward login``), then built-in defaults.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
SECTION = "steward"
MAX_BATCH_METRICS = 10_000  # the server's limit per request

# Settings that may come from the environment, with their variable and type.
_ENV: dict[str, tuple[str, type]] = {
    "url": ("STEWARD_URL", str),
    "token": ("STEWARD_TOKEN", str),
    "project": ("STEWARD_PROJECT", str),
    "experiment": ("STEWARD_EXPERIMENT", str),
    "mode": ("STEWARD_MODE", str),
    "spool_dir": ("STEWARD_SPOOL_DIR", str),
    "batch_size": ("STEWARD_BATCH_SIZE", int),
    "flush_interval": ("STEWARD_FLUSH_INTERVAL", float),
    "retry_timeout": ("STEWARD_RETRY_TIMEOUT", float),
    "probe_interval": ("STEWARD_PROBE_INTERVAL", float),
    "system_metrics_interval": ("STEWARD_SYSTEM_METRICS", float),
}

_configured: dict[str, Any] = {}


def home_dir() -> Path:
    return Path(os.path.expanduser("~")) / ".steward"


def config_path() -> Path:
    return home_dir() / "config"


@dataclass(frozen=True)
class Settings:
    """Everything a client or a run needs to know, resolved once."""

    url: str = DEFAULT_URL
    token: str | None = None
    project: str | None = None
    experiment: str | None = None
    mode: str = "online"
    spool_dir: Path = field(default_factory=lambda: home_dir() / "spool")
    batch_size: int = MAX_BATCH_METRICS
    flush_interval: float = 2.0
    retry_timeout: float = 15.0
    probe_interval: float = 5.0
    system_metrics_interval: float | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 120.0

    @property
    def offline(self) -> bool:
        return self.mode == "offline"

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def read_config_file(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return {}
    if not parser.has_section(SECTION):
        return {}
    return {k: v for k, v in parser.items(SECTION) if v}


def write_config_file(values: dict[str, str], path: Path | None = None) -> Path:
    """Write ``~/.steward/config`` readable by its owner only (it holds a token)."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    parser = configparser.ConfigParser(interpolation=None)
    parser[SECTION] = {k: v for k, v in values.items() if v}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        parser.write(fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def configure(
    url: str | None = None,
    token: str | None = None,
    project: str | None = None,
    **settings: Any,
) -> None:
    """Set process-wide defaults for the server URL, token and project.

    Values given here win over environment variables and ``~/.steward/config``;
    ``None`` leaves a setting as it was.

    Args:
        url: Server URL, e.g. ``http://127.0.0.1:8000``.
        token: API token (``stw_...``).
        project: Default project slug for new runs and searches.
        **settings: Further settings: ``experiment`` (default experiment name,
            what :func:`steward.set_experiment` sets), ``mode`` (``"online"``
            or ``"offline"``), ``spool_dir``, ``batch_size`` (points per
            request, at most 10,000), ``flush_interval`` (seconds),
            ``retry_timeout`` (seconds spent retrying before spooling),
            ``probe_interval`` (seconds between tries while offline),
            ``system_metrics_interval`` (seconds), ``connect_timeout`` and
            ``read_timeout`` (seconds).

    Raises:
        TypeError: an unknown setting name.
    """
    unknown = set(settings) - set(Settings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"configure() got unknown settings: {', '.join(sorted(unknown))}")
    for name, value in {"url": url, "token": token, "project": project, **settings}.items():
        if value is not None:
            _configured[name] = value


def reset_configuration() -> None:
    """Forget what :func:`configure` and :func:`steward.set_experiment` set (tests use this)."""
    _configured.clear()


def _coerce(name: str, value: Any) -> Any:
    if name == "spool_dir":
        return Path(os.path.expanduser(str(value)))
    if name == "mode":
        mode = str(value).strip().lower()
        if mode not in ("online", "offline"):
            raise ValueError("STEWARD_MODE must be 'online' or 'offline'.")
        return mode
    if name == "url":
        return str(value).rstrip("/")
    if name == "batch_size":
        size = int(value)
        if not 1 <= size <= MAX_BATCH_METRICS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_METRICS}.")
        return size
    typ = _ENV.get(name, (None, None))[1]
    if typ in (int, float) and value is not None:
        return typ(value)
    return value


def resolve(**explicit: Any) -> Settings:
    """Settings from code arguments, configure(), the environment and the config file."""
    merged: dict[str, Any] = {}
    file_values = read_config_file()
    for name in _ENV:
        if name in file_values:
            merged[name] = file_values[name]
    for name, (var, _typ) in _ENV.items():
        if os.environ.get(var):
            merged[name] = os.environ[var]
    merged.update(_configured)
    merged.update({k: v for k, v in explicit.items() if v is not None})
    known = {k: _coerce(k, v) for k, v in merged.items() if k in Settings.__dataclass_fields__}
    return Settings(**known)
