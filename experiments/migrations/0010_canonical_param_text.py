"""Params and tags stored in one text per value, and a training job's fit time under system/.

Before this, the same value was stored as different text depending on the path it
came by: ``np.float64(1.0)`` from the SDK, ``true`` (REST) or ``True`` (autolog),
``""`` for ``None`` from the SDK and ``None`` from autolog. Every path now stores
MLflow's form (``str()`` of the plain Python value, ``validation.param_text``);
this rewrites what is already stored to it, so filters find a value however it
was logged (a training job's list and dict params, written as JSON, included). An empty param value can only have come from ``None`` (the SDK wrote
``""`` for it), so it becomes ``None``; tags keep empty values and lowercase words,
which people do set on purpose.
"""

import ast
import json
import re

from django.db import migrations

BATCH = 2000
# NumPy 2's repr of a scalar: np.float64(1.0), np.int64(3), np.str_('a'), np.True_.
_NP_CALL = re.compile(r"np\.(?:float|int|uint|bool|str|bytes|complex|longdouble|half|single|double)\w*"
                      r"\(((?:'[^']*'|\"[^\"]*\"|[^()'\"])*)\)")
_NP_BOOL = re.compile(r"np\.(True|False)_")
_WHOLE_STR = re.compile(r"np\.str_\(((?:'[^']*'|\"[^\"]*\"))\)\Z")


def canonical(value: str, *, param: bool) -> str:
    whole = _WHOLE_STR.fullmatch(value)
    if whole:
        try:
            return str(ast.literal_eval(whole.group(1)))
        except (ValueError, SyntaxError):
            return value
    if "np." in value:
        value = _NP_BOOL.sub(r"\1", _NP_CALL.sub(r"\1", value))
    if param:
        if value in ("true", "false"):
            return value.capitalize()
        if value == "":
            return "None"
    return value


def _rewrite(model, *, param: bool) -> None:
    rows = model.objects.filter(value__regex=r"np\.") if not param else model.objects.filter(
        value__regex=r"(np\.|^true$|^false$|^$)")
    changed = []
    for row in rows.only("pk", "value").iterator(chunk_size=BATCH):
        value = canonical(row.value, param=param)
        if value != row.value:
            row.value = value
            changed.append(row)
        if len(changed) >= BATCH:
            model.objects.bulk_update(changed, ["value"])
            changed = []
    if changed:
        model.objects.bulk_update(changed, ["value"])


def _training_json(param_model, training_runs) -> None:
    """Training jobs wrote list and dict params as JSON ('["a", null]'); str() writes "['a', None]"."""
    changed = []
    rows = param_model.objects.filter(run_id__in=training_runs, value__regex=r"^[\[{]")
    for row in rows.only("pk", "value").iterator(chunk_size=BATCH):
        try:
            value = str(json.loads(row.value))
        except ValueError:
            continue
        if value != row.value:
            row.value = value
            changed.append(row)
    for start in range(0, len(changed), BATCH):
        param_model.objects.bulk_update(changed[start:start + BATCH], ["value"])


def forwards(apps, schema_editor):
    training_runs = apps.get_model("experiments", "TrainingRun").objects.values("run_id")
    _training_json(apps.get_model("experiments", "Param"), training_runs)
    _rewrite(apps.get_model("experiments", "Param"), param=True)
    _rewrite(apps.get_model("experiments", "Tag"), param=False)
    for name in ("Metric", "LatestMetric", "MetricRollup"):
        apps.get_model("experiments", name).objects.filter(
            run_id__in=training_runs, key="fit_seconds").update(key="system/fit_seconds")


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0009_idempotentrequest_request_hash"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
