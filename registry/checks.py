"""System checks that read the database: names stored before they were checked to their end.

Names and keys were once matched with a pattern ending in ``$``, which also
accepts a final newline, so a row may hold "champion\\n": it reads as
"champion" on every page, yet is another name. Such names are refused now and
an alias that carries one serves nothing; this lists the rows still holding
one, so an operator sees them on upgrade (``manage.py migrate`` runs the
database checks first; ``manage.py check --database default`` runs them alone).
"""

from __future__ import annotations

from django.core.checks import Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import connections

from accounts.models import Project
from experiments.models import LatestMetric, Param, Tag
from registry.models import ModelAlias, RegisteredModel

SHOWN = 20
HINT = ("Such names can no longer be given, and an alias so named serves nothing: rename or delete "
        "each row listed (`manage.py shell`).")


def _rows(model, using: str, field: str, describe) -> tuple[list[str], int]:
    found = model._default_manager.using(using).filter(**{f"{field}__endswith": "\n"})
    return [describe(row) for row in found.order_by("pk")[:SHOWN]], found.count()


# Each kind: (check id, what it is, model, field, how one row is named). Metric keys are read
# from LatestMetric, which holds every key a run logged, rather than scanning every point.
KINDS = [
    ("registry.W001", "project slug", Project, "slug", lambda p: f"project {p.slug!r}"),
    ("registry.W002", "registered model name", RegisteredModel, "name",
     lambda m: f"model {m.name!r} (project id {m.project_id})"),
    ("registry.W003", "model alias", ModelAlias, "name",
     lambda a: f"alias {a.name!r} (model id {a.model_id})"),
    ("registry.W004", "metric key", LatestMetric, "key", lambda m: f"metric {m.key!r} (run {m.run_id})"),
    ("registry.W005", "param key", Param, "key", lambda p: f"param {p.key!r} (run {p.run_id})"),
    ("registry.W006", "tag key", Tag, "key", lambda t: f"tag {t.key!r} (run {t.run_id})"),
]


@register(Tags.database)
def names_ending_in_newline_check(app_configs=None, databases=None, **kwargs) -> list[CheckWarning]:
    issues = []
    for using in databases or []:
        tables = set(connections[using].introspection.table_names())
        for check_id, what, model, field, describe in KINDS:
            if model._meta.db_table not in tables:  # a fresh database, before its first migrate
                continue
            shown, count = _rows(model, using, field, describe)
            if count:
                more = f" and {count - len(shown)} more" if count > len(shown) else ""
                issues.append(CheckWarning(
                    f"{count} {what}{' ends' if count == 1 else 's end'} in a newline: "
                    f"{', '.join(shown)}{more}.",
                    hint=HINT, id=check_id,
                ))
    return issues
