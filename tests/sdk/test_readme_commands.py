"""Every manage.py command the README and the guides show works pasted into a fresh shell."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_no_bare_python_manage_py_outside_a_container():
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if "docker compose" in line:
                continue  # inside the image, `python` is the project's
            bare = re.search(r"(?<![/\w.])python manage\.py", line)
            assert not bare, f"{path.name}:{number}: use .venv/bin/python or a make target: {line.strip()}"


def test_the_make_targets_the_docs_name_exist():
    makefile = (ROOT / "Makefile").read_text()
    named = set()
    for path in DOCS:
        named |= set(re.findall(r"`make ([a-z0-9-]+)", path.read_text()))
    assert named, "the docs name make targets"
    for target in named:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"make {target} is not a target"
