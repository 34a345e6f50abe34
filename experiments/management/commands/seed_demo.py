"""A demo project with real (small) training runs, so a new installation has something to look at.

The runs train scikit-learn models on datasets that ship with scikit-learn and
log their learning curves step by step, exactly as a training script would.
Run ids are derived from the run names, so seeding twice finds the runs of the
first time instead of adding copies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import platform
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Project
from accounts.services import project_create
from core.validation import param_text
from experiments import artifacts, services
from experiments.models import Experiment, Run, RunStatus

DEMO_SLUG = "demo"
RUN_NAMESPACE = uuid.UUID("6f1d3c2e-7a4b-4e59-9d0c-5b8e2f1a9c47")


@dataclass
class Curve:
    params: dict[str, Any]
    metrics: dict[str, list[float]] = field(default_factory=dict)
    summary: str = ""
    final: dict[str, float] = field(default_factory=dict)  # logged once, at the last step
    files: dict[str, bytes] = field(default_factory=dict)  # artifacts, e.g. the model
    tags: dict[str, str] = field(default_factory=dict)


def _split(x, y, seed: int):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_val), y_train, y_val


def train_sgd_logistic(*, alpha: float, learning_rate: float, epochs: int, seed: int,
                       test_size: float = 0.25) -> Curve:
    """Logistic regression by SGD on the breast-cancer data, one point per epoch.

    The same split, params, metrics and model file as examples/train_sklearn.py, so the
    example's runs and these rank together on the leaderboard and compare side by side.
    """
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y)
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, test_size=0.2, random_state=seed, stratify=y_train)
    scaler = StandardScaler().fit(X_fit)
    model = SGDClassifier(loss="log_loss", alpha=alpha, learning_rate="constant", eta0=learning_rate,
                          random_state=seed)
    classes = np.unique(y_train)
    curve = Curve(params={
        "model": "SGDClassifier", "loss": "log_loss", "alpha": alpha, "learning_rate": learning_rate,
        "epochs": epochs, "test_size": test_size, "n_train": len(y_fit), "n_val": len(y_val),
        "n_test": len(y_test), "seed": seed,
    }, tags={"dataset": "sklearn.datasets.load_breast_cancer", "model_family": "linear"})
    for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        curve.metrics[name] = []
    Xf, Xv = scaler.transform(X_fit), scaler.transform(X_val)
    for _ in range(epochs):
        model.partial_fit(Xf, y_fit, classes=classes)
        curve.metrics["train_loss"].append(log_loss(y_fit, model.predict_proba(Xf)))
        curve.metrics["val_loss"].append(log_loss(y_val, model.predict_proba(Xv)))
        curve.metrics["train_accuracy"].append(accuracy_score(y_fit, model.predict(Xf)))
        curve.metrics["val_accuracy"].append(accuracy_score(y_val, model.predict(Xv)))
    pipeline = make_pipeline(scaler, model)
    predicted = pipeline.predict(X_test)
    curve.final = {
        "test_accuracy": accuracy_score(y_test, predicted),
        "test_f1": f1_score(y_test, predicted),
        "test_roc_auc": roc_auc_score(y_test, pipeline.predict_proba(X_test)[:, 1]),
    }
    # The model as run.log_model stores it: a skops file and an input example, so it can be
    # registered and tried in the browser.
    head = X_test.head(20)
    curve.files["model/model.skops"] = sio.dumps(pipeline)
    curve.files["model/input_example.json"] = json.dumps({
        "columns": list(map(str, head.columns)), "dtypes": [str(t) for t in head.dtypes],
        "data": head.astype(float).values.tolist()}).encode()
    curve.summary = (f"val accuracy {curve.metrics['val_accuracy'][-1]:.3f} after {epochs} epochs, "
                     f"test accuracy {curve.final['test_accuracy']:.3f}")
    return curve


def train_gradient_boosting(*, learning_rate: float, max_depth: int, n_estimators: int,
                            seed: int) -> Curve:
    """Gradient boosting on the wine data, one point per boosting iteration."""
    from sklearn.datasets import load_wine
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.metrics import accuracy_score, log_loss

    data = load_wine()
    x_train, x_val, y_train, y_val = _split(data.data, data.target, seed)
    model = GradientBoostingClassifier(
        learning_rate=learning_rate, max_depth=max_depth, n_estimators=n_estimators,
        subsample=0.8, random_state=seed,
    ).fit(x_train, y_train)
    curve = Curve(tags={"dataset": "sklearn.datasets.load_wine", "model_family": "trees"}, params={
        "model": "GradientBoostingClassifier",
        "learning_rate": str(learning_rate), "max_depth": str(max_depth),
        "n_estimators": str(n_estimators), "subsample": "0.8", "seed": str(seed),
    })
    curve.metrics["train_loss"] = [
        log_loss(y_train, proba, labels=model.classes_)
        for proba in model.staged_predict_proba(x_train)
    ]
    curve.metrics["val_loss"] = [
        log_loss(y_val, proba, labels=model.classes_) for proba in model.staged_predict_proba(x_val)
    ]
    curve.metrics["val_accuracy"] = [
        accuracy_score(y_val, pred) for pred in model.staged_predict(x_val)
    ]
    curve.summary = f"val accuracy {curve.metrics['val_accuracy'][-1]:.3f} after {n_estimators} trees"
    return curve


EXPERIMENTS = [
    {
        "name": "breast-cancer-sgd",
        "description": "Logistic regression trained by SGD on scikit-learn's breast-cancer data; "
                       "how the regularisation strength and the step size shape the learning curve.",
        "runs": [
            # Named as the example script names its runs: "sgd alpha=... lr=...".
            ("sgd alpha=0.0001 lr=0.01", "main", train_sgd_logistic,
             {"alpha": 1e-4, "learning_rate": 0.01, "epochs": 40, "seed": 42}),
            ("sgd alpha=0.001 lr=0.01", "main", train_sgd_logistic,
             {"alpha": 1e-3, "learning_rate": 0.01, "epochs": 40, "seed": 42}),
            ("sgd alpha=0.01 lr=0.01", "main", train_sgd_logistic,
             {"alpha": 1e-2, "learning_rate": 0.01, "epochs": 40, "seed": 42}),
            ("sgd alpha=0.0001 lr=0.5", "try-large-step", train_sgd_logistic,
             {"alpha": 1e-4, "learning_rate": 0.5, "epochs": 40, "seed": 7}),
        ],
    },
    {
        "name": "wine-gradient-boosting",
        "description": "Gradient boosting on scikit-learn's wine data, logged per boosting iteration.",
        "runs": [
            ("gbt-lr-0.05", "main", train_gradient_boosting,
             {"learning_rate": 0.05, "max_depth": 2, "n_estimators": 80, "seed": 3}),
            ("gbt-lr-0.3", "main", train_gradient_boosting,
             {"learning_rate": 0.3, "max_depth": 3, "n_estimators": 80, "seed": 3}),
        ],
    },
]


def _demo_project(user) -> tuple[Project, bool]:
    project = Project.objects.filter(slug=DEMO_SLUG).first()
    if project is not None:
        return project, False
    project = project_create(
        user=user, slug=DEMO_SLUG, name="Demo",
        description="Example runs made by `manage.py seed_demo`: small scikit-learn models "
                    "trained on datasets that ship with scikit-learn.",
    )
    return project, True


def _seed_run(*, project: Project, user, experiment: str, name: str, branch: str, train, kwargs) -> bool:
    run_id = uuid.uuid5(RUN_NAMESPACE, f"{DEMO_SLUG}/{experiment}/{name}")
    if Run.objects.filter(pk=run_id).exists():
        return False
    started_ms = services.now_ms()
    curve = train(**kwargs)
    steps = len(next(iter(curve.metrics.values())))
    # Space the points a second apart, as a real training loop would log them.
    points = [
        services.MetricPoint(key=key, value=float(value), step=step, timestamp=started_ms + step * 1000)
        for key, values in curve.metrics.items()
        for step, value in enumerate(values)
    ] + [services.MetricPoint(key=key, value=float(value), step=steps, timestamp=started_ms + steps * 1000)
         for key, value in curve.final.items()]
    with transaction.atomic():
        created = services.run_create(
            project=project, experiment=experiment, user=user, run_id=run_id, name=name,
            start_time=_time(started_ms), seed=int(kwargs["seed"]),
            tags=list({"demo": "True", "model": curve.params["model"], **curve.tags}.items()),
            source={
                "git_commit": hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest(),
                "git_branch": branch,
                "git_dirty": False, "entry_point": f"steward seed_demo ({train.__name__})",
                "host": "demo", "python_version": platform.python_version(),
                "packages": _packages(),
            },
            notes=f"Seeded demo run: {train.__doc__} Result: {curve.summary}.",
        )
        if not created.created:
            return False
        run = created.run
        services.params_log(run=run, pairs=[(key, param_text(value)) for key, value in curve.params.items()])
        services.metrics_log(run=run, points=points)
        for path, data in curve.files.items():
            artifacts.artifact_upload(run=run, path=path, stream=io.BytesIO(data), content_length=len(data),
                                      content_type="application/json" if path.endswith(".json") else "")
        services.run_update(
            run=run, status=RunStatus.FINISHED, end_time=_time(started_ms + steps * 1000)
        )
    return True


def _time(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def _packages() -> dict[str, str]:
    import sklearn

    return {"numpy": np.__version__, "scikit-learn": sklearn.__version__}


class Command(BaseCommand):
    help = "Create (once) a demo project with example experiments and runs."

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="admin", help="Username that owns the demo project.")

    def handle(self, *args, owner: str, **options):
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named '{owner}'; create it first or pass --owner USERNAME.")
        began = time.monotonic()
        project, project_created = _demo_project(user)
        made = kept = 0
        for spec in EXPERIMENTS:
            if not Experiment.objects.filter(project=project, name=spec["name"]).exists():
                services.experiment_create(
                    project=project, name=spec["name"], description=spec["description"], user=user
                )
            for name, branch, train, kwargs in spec["runs"]:
                if _seed_run(project=project, user=user, experiment=spec["name"], name=name,
                             branch=branch, train=train, kwargs=kwargs):
                    made += 1
                else:
                    kept += 1
        what = "created" if project_created else "already there"
        self.stdout.write(
            f"Demo project '{DEMO_SLUG}' {what}: {made} run(s) added, {kept} already present "
            f"({time.monotonic() - began:.1f} s)."
        )
        # The registered model and its alias: the registry's own command (a layer above runs).
        call_command("seed_demo_models", owner=owner, stdout=self.stdout)
