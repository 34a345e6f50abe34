"""Write a random SECRET_KEY to $STEWARD_VAR_DIR/secret_key (default var/) unless one exists.

`make run` calls this before Django starts: settings.py refuses to start
without a key (DEBUG is off), and reads this file when SECRET_KEY is not set
in the environment. The file is readable by its owner only.
"""

import os
import secrets
import sys
from pathlib import Path


def main() -> int:
    if os.environ.get("SECRET_KEY"):
        return 0
    base = Path(__file__).resolve().parent.parent
    var_dir = Path(os.environ.get("STEWARD_VAR_DIR") or base / "var")
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / "secret_key"
    if path.exists():
        if path.read_text().strip():
            return 0
        path.unlink()  # an empty file left by an interrupted first start
    # O_EXCL: two first starts at once must not leave each with a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return 0
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50) + "\n")
    print(f"Generated a SECRET_KEY in {path} (mode 0600); keep it, sessions and signatures depend on it.",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
