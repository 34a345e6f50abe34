"""Sweeps: a grid or random search over hyperparameters as a group of training jobs.

Every trial's parameters are checked when the sweep is created, so a bad
value is a 400 rather than a failed job later. Only ``parallelism`` trials
are queued at once; each finished trial calls ``sweep_advance``, which
queues the next ones under a row lock on the sweep.
"""

from __future__ import annotations

import math
import random
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.json_input import check_json_value
from accounts.models import Project
from core import jobs
from core.models import Job, JobStatus
from experiments import services
from experiments.models import LatestMetric
from training import services as training
from training.models import Sweep, SweepStatus, SweepTrial, TrainingRun

MAX_TRIALS = 200
MAX_PARALLELISM = 16
LOWER_IS_BETTER = {"mse", "rmse", "mae", "median_ae", "log_loss"}


def _grid(space: dict[str, Any]) -> list[dict[str, Any]]:
    from sklearn.model_selection import ParameterGrid

    for name, values in space.items():
        if not isinstance(values, list) or not values:
            raise ValidationError({f"search.space.{name}": "A grid needs a non-empty list of values."})
    grid = ParameterGrid(space)
    if len(grid) > MAX_TRIALS:
        raise ValidationError(
            {"search.space": f"The grid has {len(grid)} combinations; at most {MAX_TRIALS}."}
        )
    return list(grid)


def _distribution(name: str, dist: Any) -> Any:
    """A list of choices, or a scipy.stats distribution for {low, high, log}."""
    from scipy import stats

    if isinstance(dist, list):
        if not dist:
            raise ValidationError({f"search.space.{name}": "Give a non-empty list or {low, high}."})
        return dist
    if not isinstance(dist, dict) or not {"low", "high"} <= set(dist) <= {"low", "high", "log", "int"}:
        raise ValidationError({f"search.space.{name}": "Give a list of values or {low, high, log, int}."})
    lo, hi = dist["low"], dist["high"]
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in (lo, hi)) or lo >= hi:
        raise ValidationError({f"search.space.{name}": "low and high must be numbers with low < high."})
    if dist.get("log"):
        if lo <= 0:
            raise ValidationError({f"search.space.{name}": "A log range needs low > 0."})
        return stats.loguniform(lo, hi)
    return stats.uniform(lo, hi - lo)


def _plain(value: Any, as_int: bool) -> Any:
    value = value.item() if hasattr(value, "item") else value  # NumPy scalars are not JSON
    return int(round(value)) if as_int else value


def _random_trials(space: dict[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    from sklearn.model_selection import ParameterSampler

    distributions = {name: _distribution(name, dist) for name, dist in space.items()}
    as_int = {name for name, dist in space.items() if isinstance(dist, dict) and dist.get("int")}
    if all(isinstance(d, list) for d in distributions.values()):
        # ParameterSampler draws lists alone without replacement and stops at the grid's size;
        # a random search over choices draws n trials, repeats allowed, like any other space.
        rng = random.Random(seed)
        return [{name: rng.choice(values) for name, values in distributions.items()} for _ in range(n)]
    sampler = ParameterSampler(distributions, n_iter=n, random_state=seed)
    return [{name: _plain(value, name in as_int) for name, value in trial.items()} for trial in sampler]


def trials_generate(search: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(search, dict):
        raise ValidationError({"search": "Must be an object {strategy, space, n_trials, seed}."})
    unknown = set(search) - {"strategy", "space", "n_trials", "seed"}
    if unknown:
        raise ValidationError({f"search.{sorted(unknown)[0]}": "Unknown field."})
    strategy = search.get("strategy", "grid")
    space = search.get("space")
    if not isinstance(space, dict) or not space:
        raise ValidationError({"search.space": "Give an object of parameter -> values."})
    if strategy == "grid":
        return {"strategy": "grid", "space": space}, _grid(space)
    if strategy != "random":
        raise ValidationError({"search.strategy": "Must be 'grid' or 'random'."})
    n = search.get("n_trials", 10)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_TRIALS:
        raise ValidationError({"search.n_trials": f"Must be an integer from 1 to {MAX_TRIALS}."})
    seed = search.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError({"search.seed": "Must be an integer."})
    trials = _random_trials(space, n, seed)
    return {"strategy": "random", "space": space, "n_trials": n, "seed": seed}, trials


def sweep_create(*, project: Project, experiment: str, spec: Any, search: Any, user,
                 objective: str | None = None, goal: str | None = None, parallelism: int = 2,
                 name: str = "") -> Sweep:
    clean, version = training.spec_clean(project=project, spec=spec, user=user)
    search_clean, trials = trials_generate(check_json_value(search, field="search"))
    for i, trial in enumerate(trials):
        try:
            params = training.params_check(clean["estimator"], {**clean["params"], **trial})
            training.params_for_target(params=params, task=clean["task"], version=version,
                                       target=clean["target"])
        except ValidationError as exc:
            detail = "; ".join(f"{k}: {'; '.join(v)}" for k, v in exc.message_dict.items())
            raise ValidationError({"search.space": f"Trial {i + 1} ({trial}) is invalid: {detail}"}) from None
    if objective is None:
        objective = f"test_{clean['metrics'][0]}"
    valid = {f"{s}_{m}" for s in ("train", "test") for m in clean["metrics"]}
    if objective not in valid:
        raise ValidationError({"objective": f"Must be one of {', '.join(sorted(valid))}."})
    if goal is None:
        goal = "min" if objective.split("_", 1)[1] in LOWER_IS_BETTER else "max"
    if goal not in ("min", "max"):
        raise ValidationError({"goal": "Must be 'min' or 'max'."})
    if (isinstance(parallelism, bool) or not isinstance(parallelism, int)
            or not 1 <= parallelism <= MAX_PARALLELISM):
        raise ValidationError({"parallelism": f"Must be an integer from 1 to {MAX_PARALLELISM}."})
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationError({"name": "At most 200 characters."})
    with transaction.atomic():
        exp = services.experiment_get_or_create(project=project, name=experiment, user=user)
        sweep = Sweep.objects.create(
            project=project, experiment=exp, name=name, base_spec=clean, search=search_clean,
            objective=objective, goal=goal, parallelism=parallelism, created_by=user,
        )
        SweepTrial.objects.bulk_create(
            SweepTrial(sweep=sweep, index=i, params=p) for i, p in enumerate(trials)
        )
        sweep_advance(sweep_id=sweep.pk)
    return sweep


def sweep_advance(*, sweep_id: int) -> None:
    """Queue trials up to the parallelism limit; finish the sweep when every trial has ended."""
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().filter(pk=sweep_id).select_related("experiment").first()
        if sweep is None or sweep.status != SweepStatus.RUNNING:
            return
        trials = list(sweep.trials.select_related("job"))
        active = sum(1 for t in trials if t.job is not None and not t.job.is_final)
        pending = [t for t in trials if t.job_id is None]
        for trial in pending:
            if active >= sweep.parallelism:
                break
            spec = dict(sweep.base_spec)
            spec["params"] = {**sweep.base_spec.get("params", {}), **trial.params}
            try:
                with transaction.atomic():
                    training.training_job_submit(project=sweep.project, experiment=sweep.experiment.name,
                                                 spec=spec, user=sweep.created_by, sweep_trial=trial)
            except ValidationError as exc:
                # The spec passed when the sweep began but not now (a column since flagged PII, a
                # role lost): the trial ends as a failed job that says why, and the sweep goes on.
                _trial_fail(sweep=sweep, trial=trial, spec=spec, error="; ".join(exc.messages))
                continue
            active += 1
        best = sweep_best_run(sweep)
        fields = ["best_run"]
        sweep.best_run = best
        if active == 0 and all(t.job_id is not None for t in pending):
            sweep.status = SweepStatus.FINISHED
            sweep.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        sweep.save(update_fields=fields)


def _trial_fail(*, sweep: Sweep, trial: SweepTrial, spec: dict[str, Any], error: str) -> None:
    now = timezone.now()
    trial.job = Job.objects.create(
        kind="training", project=sweep.project, created_by=sweep.created_by, status=JobStatus.FAILED,
        params={"experiment": sweep.experiment.name, "spec": spec, "sweep_id": sweep.pk,
                "trial": trial.index},
        message="Invalid input", error=error[:20_000], created_at=now, finished_at=now,
    )
    trial.save(update_fields=["job"])


def sweep_cancel(*, sweep: Sweep) -> Sweep:
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().get(pk=sweep.pk)
        if sweep.status != SweepStatus.RUNNING:
            raise ValidationError({"status": f"The sweep has already ended ({sweep.status})."})
        sweep.status = SweepStatus.CANCELLED
        sweep.finished_at = timezone.now()
        sweep.save(update_fields=["status", "finished_at"])
        for trial in sweep.trials.select_related("job"):
            if trial.job is not None and not trial.job.is_final:
                jobs.job_cancel(job=trial.job)
    return sweep


def _objective_values(sweep: Sweep) -> dict[Any, float]:
    run_ids = TrainingRun.objects.filter(sweep=sweep).values_list("run_id", flat=True)
    return {
        run_id: value
        for run_id, value in LatestMetric.objects.filter(run_id__in=run_ids, key=sweep.objective)
        .values_list("run_id", "value")
        if value is not None and not math.isnan(value)
    }


def sweep_best_run(sweep: Sweep):
    values = _objective_values(sweep)
    if not values:
        return None
    pick = max if sweep.goal == "max" else min
    best_id = pick(values, key=lambda r: values[r])
    return TrainingRun.objects.select_related("run").get(run_id=best_id).run


def sweep_leaderboard(sweep: Sweep) -> list[dict[str, Any]]:
    """Every trial with its job state and, once trained, its run and metrics; best first."""
    trials = list(sweep.trials.select_related("job"))
    records = {r.job_id: r for r in TrainingRun.objects.filter(sweep=sweep).select_related("run")}
    metrics: dict[Any, dict[str, float]] = {}
    for run_id, key, value in LatestMetric.objects.filter(
        run_id__in=[r.run_id for r in records.values()]
    ).values_list("run_id", "key", "value"):
        metrics.setdefault(run_id, {})[key] = value
    rows = []
    for t in trials:
        record = records.get(t.job_id) if t.job_id else None
        run_metrics = metrics.get(record.run_id, {}) if record else {}
        rows.append({
            "trial": t.index + 1,
            "params": t.params,
            "job_id": t.job_id,
            "status": t.job.status if t.job else "pending",
            "progress": t.job.progress if t.job else 0,
            "error": t.job.error if t.job else "",
            "run_id": str(record.run_id) if record else None,
            "objective": run_metrics.get(sweep.objective),
            "metrics": run_metrics,
            "best": bool(record and sweep.best_run_id == record.run_id),
        })
    sign = -1 if sweep.goal == "max" else 1

    def order(row):
        value = row["objective"]
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return (missing, sign * value if not missing else 0, row["trial"])

    return sorted(rows, key=order)


def sweep_progress(sweep: Sweep) -> dict[str, int]:
    counts = dict.fromkeys(("total", "pending", "queued", "running", "succeeded", "failed", "cancelled"), 0)
    for t in sweep.trials.select_related("job"):
        counts["total"] += 1
        counts[t.job.status if t.job else "pending"] += 1
    done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
    counts["percent"] = 100 * done // max(1, counts["total"])
    return counts
