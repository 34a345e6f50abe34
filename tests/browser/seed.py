"""Data the browser tests (and a hand-started dev server) look at: one project, real runs."""

from __future__ import annotations

import io
import math
import time

from accounts import services as account_services
from accounts.models import Role
from experiments import artifacts, services
from experiments.api.serializers import epoch_ms
from experiments.services import MetricPoint
from tests.factories import UserFactory

PASSWORD = "pw-Steward-123"
XSS_NAME = "<script>alert(1)</script>"
XSS_NOTE = "Evil [click me](javascript:alert(2)) and <img src=x onerror=alert(3)> **bold**"
CSV_TEXT = "epoch,loss,acc\n" + "".join(f"{i},{1 / (i + 1):.4f},{0.5 + i / 40:.3f}\n" for i in range(20))


def seed_demo(*, username: str = "alice", runs: int = 12, points: int = 200) -> dict:
    user = UserFactory(username=username, password=PASSWORD)
    viewer = UserFactory(username=f"{username}-viewer", password=PASSWORD)
    project = account_services.project_create(user=user, slug="vision", name="Vision",
                                              description="Image classifiers")
    account_services.membership_set(project=project, username=viewer.username, role=Role.VIEWER.label)
    now_ms = int(time.time() * 1000)
    created = []
    for i in range(runs):
        name = XSS_NAME if i == runs - 1 else f"resnet-{i:02d}"
        run = services.run_create(
            project=project, experiment="baseline", user=user, name=name,
            start_time=epoch_ms(now_ms - (runs - i) * 600_000, "start_time"), seed=1000 + i,
            source={"git_commit": f"{i:02d}c0ffee1234567890abcdef", "git_branch": "main",
                    "git_dirty": i % 3 == 0},
            notes=XSS_NOTE if i == runs - 1 else "",
        ).run
        services.params_log(run=run, pairs=[
            ("lr", str([0.1, 0.01, 0.001][i % 3])), ("depth", str(18 + 16 * (i % 2))),
            ("optimizer", ["sgd", "adam"][i % 2]),
        ])
        lr = [0.1, 0.01, 0.001][i % 3]
        services.metrics_log(run=run, points=[
            MetricPoint("loss", 2.0 * math.exp(-step / (40 + 10 * i)) + 0.05 * math.sin(step) + 0.1,
                        step, now_ms + step * 1000)
            for step in range(points)
        ] + [
            MetricPoint("acc", min(0.99, 0.5 + 0.4 * (1 - math.exp(-step / 50)) + i * 0.004 + lr),
                        step, now_ms + step * 1000)
            for step in range(points)
        ])
        services.run_update(run=run, status="FINISHED" if i % 5 else "FAILED",
                            end_time=epoch_ms(now_ms - (runs - i) * 600_000 + 90_000 + i * 7000, "end_time"))
        created.append(run)
    first = created[0]
    data = CSV_TEXT.encode()
    artifacts.artifact_upload(run=first, path="eval/metrics.csv", stream=io.BytesIO(data),
                              content_length=len(data), content_type="text/csv")
    config = b'{"model": "resnet", "layers": [18, 34]}'
    artifacts.artifact_upload(run=first, path="config.json", stream=io.BytesIO(config),
                              content_length=len(config), content_type="application/json")
    return {"user": user, "viewer": viewer, "project": project, "runs": created,
            "experiment": created[0].experiment}
