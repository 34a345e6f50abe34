"""A served model with a monitor and drifted traffic, so a new installation shows a drift alert.

Once per installation, in the demo project: a small credit dataset, a model trained
on it by a training job (run here, in this process), registered and checked, the alias
``live`` on it, a monitor that runs every minute, and a stretch of served traffic in the
prediction log whose income, age and region have moved, with labels. A first report is
made at once, so the monitor page shows the drift alert as soon as the server is up.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Project
from datasets import services as datasets
from experiments.models import Run
from monitoring import services
from monitoring.models import Monitor
from registry import services as registry_services
from registry.models import AliasEvent, ModelAlias
from registry.prediction_log import Entry, prediction_log_enqueue, prediction_log_flush
from training import services as training

DEMO_SLUG = "demo"
MODEL = "credit-demo"
ALIAS = "live"
FEATURES = ["income", "age", "debt", "region"]


def credit_frame(rows: int, seed: int, drifted: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(62_000 if drifted else 50_000, 12_000, rows).round(2)
    age = rng.integers(20, 70, rows).astype(float) + (9 if drifted else 0)
    debt = rng.gamma(2.0, 3_000, rows).round(2)
    p = [0.1, 0.2, 0.3, 0.4] if drifted else [0.4, 0.3, 0.2, 0.1]
    region = rng.choice(["north", "south", "east", "west"], rows, p=p)
    score = income / 20_000 + age / 40 - debt / 8_000 + (region == "north") + rng.normal(0, 0.5, rows)
    # After the drift the outcome depends on debt more than before: the model gets worse too.
    if drifted:
        score -= debt / 6_000
    return pd.DataFrame(
        {"income": income, "age": age, "debt": debt, "region": region, "default": (score < 3.4).astype(int)}
    )


class Command(BaseCommand):
    help = "Create (once) a served demo model with a monitor and drifted traffic."

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="admin", help="Username that owns the demo project.")

    def handle(self, *args, owner: str, **options):
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"No user named '{owner}'; create it first or pass --owner USERNAME.")
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        if project is None:
            raise CommandError(f"No project '{DEMO_SLUG}': run seed_demo first.")
        if Monitor.objects.filter(project=project, model__name=MODEL, alias=ALIAS).exists():
            self.stdout.write(f"Demo monitor {MODEL}@{ALIAS} already there.")
            return
        began = time.monotonic()
        data = credit_frame(2000, seed=0).to_csv(index=False).encode()
        reference = datasets.dataset_version_create(
            project=project,
            name="credit-demo",
            user=user,
            stream=ContentFile(data),
            content_length=len(data),
            filename="credit-demo.csv",
        ).version
        spec = {
            "dataset_version": reference.pk,
            "target": "default",
            "features": FEATURES,
            "task": "classification",
            "estimator": "LogisticRegression",
            "params": {"max_iter": 500},
            "split": {"test_size": 0.25, "stratify": True, "seed": 1},
            "metrics": ["accuracy", "f1"],
        }
        job = training.training_job_submit(project=project, experiment="credit-demo", spec=spec, user=user)
        training.training_run(job_id=job.pk)
        job.refresh_from_db()
        if job.status != "succeeded":
            raise CommandError(f"The demo model did not train: {job.error}")
        run = Run.objects.get(pk=job.result["run_id"])
        version = registry_services.model_version_create(
            project=project, model_name=MODEL, run=run, artifact_path="model", user=user
        )
        registry_services.model_version_check(job_id=version.check_job_id)
        version.refresh_from_db()
        if not ModelAlias.objects.filter(model=version.model, name=ALIAS).exists():
            registry_services.alias_set(model=version.model, alias=ALIAS, version=version, user=user)
        # The replayed traffic below is dated over the last twenty minutes: the alias was "set" before it.
        AliasEvent.objects.filter(model=version.model, alias=ALIAS).update(
            created_at=timezone.now() - dt.timedelta(minutes=30)
        )
        monitor = services.monitor_create(
            project=project,
            model_name=MODEL,
            alias=ALIAS,
            user=user,
            schedule_minutes=1,
            window_predictions=600,
        )
        self._replay(monitor=monitor, version=version)
        report_job = services.monitor_run_start(monitor=monitor, user=user)
        services.drift_report_compute(job_id=report_job.pk)
        report_job.refresh_from_db()
        result = report_job.result or {}
        self.stdout.write(
            f"Demo monitor {MODEL}@{ALIAS} created with drifted traffic: dataset drift "
            f"{'found' if result.get('dataset_drift') else 'not found'} ({time.monotonic() - began:.1f} s)."
        )

    def _replay(self, *, monitor: Monitor, version) -> None:
        """Twenty minutes of traffic, the last ten drifted, written to the prediction log, with labels."""
        from registry.serving import predictor_get
        from registry.signature import number_columns, request_parse

        predictor = predictor_get(version)
        now = timezone.now()
        labels = []
        for minute in range(20):
            frame = credit_frame(60, seed=100 + minute, drifted=minute >= 10)
            body = {"records": frame[FEATURES].to_dict("records")}
            parsed = request_parse(
                body, predictor.columns, max_rows=1000, numbers=number_columns(predictor.columns)
            )
            predictions, _ = predictor.predict(parsed)
            rid = uuid.uuid4()
            prediction_log_enqueue(
                Entry(
                    version_id=version.pk,
                    request_id=rid.hex,
                    created_at=now - dt.timedelta(minutes=20 - minute),
                    rows=len(frame),
                    names=FEATURES,
                    columns={n: frame[n].tolist() for n in FEATURES},
                    predictions=np.asarray(predictions).tolist(),
                )
            )
            labels.extend((rid, row, int(label)) for row, label in enumerate(frame["default"]))
        prediction_log_flush()
        services.labels_log(monitor=monitor, labels=labels)
