"""Starting the web server loads neither pandas, pyarrow nor scikit-learn; a request that needs them does.

Each gunicorn worker imports the WSGI application and the URLconf; every
module those reach at import time is resident in every worker.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "sklearn")

START = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.urls import get_resolver, resolve
get_resolver().url_patterns  # the root URLconf and every app URLconf it includes
resolved = [resolve(path).view_name or resolve(path).func.__name__ for path in sys.argv[1:]]
from mlplatform.wsgi import application
print(json.dumps({"resolved": resolved, "urlconf": settings.ROOT_URLCONF,
                  "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""

PATHS = [
    "/healthz",
    "/",
    "/api/v1/projects/",
    "/api/v1/projects/demo/datasets/",
    "/api/v1/serve/demo/model/champion/predict",
    "/api/schema/",
    "/api/2.0/mlflow/experiments/search",
]


def _start(code: str, tmp_path, *paths: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlplatform.settings",
           "SECRET_KEY": "test-only-secret-key", "STEWARD_VAR_DIR": str(tmp_path)}
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'lean.sqlite3'}")
    result = subprocess.run([sys.executable, "-c", code, *paths], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_web_start_loads_no_pandas_pyarrow_or_sklearn(tmp_path):
    started = _start(START, tmp_path, *PATHS)
    assert started["urlconf"] == "mlplatform.urls"
    assert len(started["resolved"]) == len(PATHS)  # every path resolved to a view
    loaded = [name for name in HEAVY if name in started["modules"]]
    assert loaded == [], f"imported at web start: {loaded}"
    assert "rest_framework" in started["modules"] and "celery" in started["modules"]


def test_the_modules_that_need_them_still_load_them_when_used(tmp_path):
    # The same check sees the heavy modules once a dataset file is read: it can tell them apart.
    used = START.replace("from mlplatform.wsgi import application", """from mlplatform.wsgi import application
import io
from datasets import files as dataset_files
data = b"a,b\\n1,x\\n2,y\\n"
assert dataset_files.inspect_file(io.BytesIO(data), size=len(data), fmt="csv").row_count == 2
""")
    started = _start(used, tmp_path, "/healthz")
    assert "pyarrow" in started["modules"]
