"""What a run records about where it came from: git state, entry point, host, packages, seed."""

from __future__ import annotations

import os
import platform
import random
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

GIT_DIFF_MAX_BYTES = 1_000_000
ENTRY_POINT_MAX = 1000

_seed: int | None = None


@dataclass
class Capture:
    source: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def _script_dir() -> Path:
    main = sys.argv[0] if sys.argv and sys.argv[0] else ""
    path = Path(main)
    if main and path.exists():
        return path.resolve().parent
    return Path.cwd()


def git_info(
    cwd: Path | None = None, diff_max_bytes: int = GIT_DIFF_MAX_BYTES
) -> tuple[dict[str, Any], bytes | None]:
    """Commit, branch and dirty flag of the repository holding the script, and its diff (capped)."""
    cwd = cwd or _script_dir()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {}, None
    info: dict[str, Any] = {"git_commit": commit.strip()}
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    if branch:
        info["git_branch"] = branch.strip()[:250]
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    diff = None
    if status is not None:
        info["git_dirty"] = bool(status.strip())
        if info["git_dirty"]:
            text = _git(["diff", "HEAD", "--no-color", "--no-ext-diff"], cwd) or ""
            raw = text.encode("utf-8")
            if len(raw) > diff_max_bytes:
                note = f"\n# steward: diff truncated to {diff_max_bytes} of {len(raw)} bytes\n"
                raw = raw[:diff_max_bytes] + note.encode()
            diff = raw
    return info, diff


def entry_point() -> str:
    argv = list(sys.argv) if sys.argv else []
    if argv and argv[0] and Path(argv[0]).exists():
        try:
            argv[0] = os.path.relpath(argv[0])
        except ValueError:
            pass
    text = " ".join(shlex.quote(a) for a in argv) or "<interactive>"
    return text[:ENTRY_POINT_MAX]


def installed_packages() -> dict[str, str]:
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            packages[name] = dist.version
    return dict(sorted(packages.items(), key=lambda kv: kv[0].lower()))


def capture(*, git: bool = True) -> Capture:
    """The run's source block and the artifacts that go with it (git diff, package list)."""
    result = Capture()
    source: dict[str, Any] = {
        "entry_point": entry_point(),
        "host": socket.gethostname()[:250],
        "python_version": platform.python_version(),
    }
    if git:
        info, diff = git_info()
        source.update(info)
        if diff:
            result.artifacts["steward/git.diff"] = diff
    packages = installed_packages()
    source["packages"] = packages
    result.artifacts["steward/requirements.txt"] = "".join(
        f"{name}=={version}\n" for name, version in packages.items()
    ).encode()
    result.source = source
    return result


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy and (when installed) PyTorch, and record the seed.

    Call it before :func:`steward.start_run` and the next run stores the seed;
    inside a run it is also logged as the param ``seed``. ``PYTHONHASHSEED`` is
    set for child processes (this process's hash seed is fixed at start-up).
    """
    global _seed
    seed = int(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.manual_seed(seed)
        if getattr(torch, "cuda", None) is not None and torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    _seed = seed
    from steward import run as run_module

    active = run_module.active_run()
    if active is not None:
        active.log_param("seed", seed)
    return seed


def current_seed() -> int | None:
    return _seed
