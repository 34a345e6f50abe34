"""The lock files hold every pin of requirements*.txt, with hashes, and agree with each other."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            pins.update(_pins(path.parent / line[3:].strip()))
        elif match := PIN.match(line):
            pins[_name(match[1])] = match[2]
    return pins


def _locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) from a `--generate-hashes` lock file."""
    locked: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            current = _name(match[1])
            locked[current] = (match[2], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = locked[current]
            locked[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return locked


def test_every_pin_is_locked_at_its_version_with_hashes():
    pairs = (("requirements-dev.txt", "requirements-dev.lock"), ("requirements.txt", "requirements.lock"))
    for source, lock in pairs:
        locked = _locked(ROOT / lock)
        for name, version in _pins(ROOT / source).items():
            assert name in locked, f"{name} (in {source}) is missing from {lock}: run `make lock`"
            assert locked[name][0] == version, (
                f"{lock} has {name}=={locked[name][0]}, {source} pins {version}: run `make lock`")
        assert all(hashes for _, hashes in locked.values()), f"{lock} has a package without hashes"


def test_the_runtime_lock_takes_its_versions_from_the_dev_lock():
    runtime, dev = _locked(ROOT / "requirements.lock"), _locked(ROOT / "requirements-dev.lock")
    assert len(runtime) > 50  # the whole tree, not only the direct pins
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime}

