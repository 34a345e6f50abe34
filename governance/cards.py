"""Model cards: one per model version, generated from what Steward already knows about it.

Lineage (run, parameters, dataset versions and their hashes, code commit, seed), metrics, the
fairness report and the explanation are read fresh every time; only the hand-written sections
(intended use, out-of-scope use, limitations, ethical considerations, caveats) are stored, in
``ModelCard``. ``model_card_context`` is the one place that assembles a card: the card page, the
Markdown and HTML exports, the API and the promotion review page all show the same thing.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.selectors import pii_columns
from core.audit import audit_record
from datasets.models import LineageDirection, RunDataset
from governance.models import MODEL_CARD_SECTIONS, ModelCard
from registry.models import ModelVersion
from training.models import TrainingRun

SECTION_KEYS = [key for key, _ in MODEL_CARD_SECTIONS]
SECTION_MAX_CHARS = 20_000
IMPORTANCE_SHOWN = 20
PII_MASK = "(PII: hidden)"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _pii_columns(version: ModelVersion) -> frozenset[str]:
    dataset = version.training_dataset_version if version.training_dataset_version_id else None
    return pii_columns(version.columns, dataset.columns if dataset else ())


def _is_pii_feature(feature: str, pii: frozenset[str]) -> bool:
    # An intersection is named "a & b": it is PII if any of its parts is.
    return any(part.strip() in pii for part in str(feature).split("&"))


def _lineage(version: ModelVersion) -> dict[str, Any]:
    run = version.run
    links = list(RunDataset.objects.filter(run=run).select_related("dataset_version__dataset"))
    datasets = [
        {"name": link.dataset_version.dataset.name, "version": link.dataset_version.version,
         "sha256": link.dataset_version.sha256, "rows": link.dataset_version.row_count,
         "direction": link.direction, "role": link.role}
        for link in links
    ]
    trained_on = version.training_dataset_version
    if trained_on is not None and not any(
        link.dataset_version_id == trained_on.pk and link.direction == LineageDirection.INPUT
        for link in links
    ):
        datasets.insert(0, {"name": trained_on.dataset.name, "version": trained_on.version,
                            "sha256": trained_on.sha256, "rows": trained_on.row_count,
                            "direction": LineageDirection.INPUT, "role": "train"})
    training = TrainingRun.objects.filter(run=run).first()
    return {
        "run_id": str(run.pk),
        "run_name": run.name,
        "run_author": run.author.get_username() if run.author_id else None,
        "git_commit": run.git_commit or None,
        "git_branch": run.git_branch or None,
        "git_dirty": run.git_dirty,
        "seed": run.seed,
        "entry_point": run.entry_point or None,
        "python_version": run.python_version or None,
        "params": sorted(run.params.values_list("key", "value")),
        "datasets": datasets,
        "training_spec": training.spec if training else None,
    }


def _related_or_none(version: ModelVersion, name: str):
    # version.fairness_report / version.explanation raise when the analysis row does not exist.
    try:
        return getattr(version, name)
    except ObjectDoesNotExist:
        return None


def _fairness(version: ModelVersion, *, show_pii: bool) -> dict[str, Any] | None:
    report = _related_or_none(version, "fairness_report")
    if report is None:
        return None
    pii = frozenset() if show_pii else _pii_columns(version)
    groups = []
    for group in report.groups or []:
        row = dict(group)
        if _is_pii_feature(row.get("feature", ""), pii):
            row["group"] = PII_MASK
        groups.append(row)
    return {
        "status": report.status, "error": report.error, "task": report.task,
        "sensitive_features": report.sensitive_features, "summary": report.summary, "groups": groups,
        "min_group_size": report.min_group_size, "updated_at": _iso(report.updated_at),
        "metric_names": [k for k in ("count", "selection_rate", "accuracy", "precision", "recall",
                                     "false_positive_rate", "false_negative_rate", "mean_prediction",
                                     "mean_absolute_error")
                         if any(k in g for g in groups)],
    }


def _explanation(version: ModelVersion) -> dict[str, Any] | None:
    explanation = _related_or_none(version, "explanation")
    if explanation is None:
        return None
    importance = sorted((explanation.global_importance or {}).items(), key=lambda kv: -abs(kv[1] or 0))
    return {
        "status": explanation.status, "error": explanation.error, "explainer": explanation.explainer,
        "output": explanation.output, "base_value": explanation.base_value,
        "global_importance": importance[:IMPORTANCE_SHOWN], "features_total": len(importance),
        "additivity_ok": explanation.additivity_ok, "row_count": explanation.row_count,
        "updated_at": _iso(explanation.updated_at),
    }


def model_card_context(version: ModelVersion, *, show_pii: bool = False) -> dict[str, Any]:
    """Everything a model card shows, as plain JSON-ready values.

    ``show_pii`` says whether the reader may see values of PII columns (accounts.permissions.
    can_see_pii); without it, fairness groups of a PII feature are masked.
    """
    version = ModelVersion.objects.select_related(
        "model__project", "run__author", "author", "training_dataset_version__dataset"
    ).get(pk=version.pk)
    card = ModelCard.objects.select_related("updated_by").filter(version=version).first()
    stored = card.sections if card else {}
    model = version.model
    return {
        "project": model.project.slug,
        "model": model.name,
        "model_description": model.description,
        "version": version.version,
        "status": version.status,
        "description": version.description,
        "author": version.author.get_username() if version.author_id else None,
        "created_at": _iso(version.created_at),
        "artifact": {"path": version.artifact_path, "format": version.model_format, "sha256": version.sha256,
                     "size": version.size, "onnx_sha256": version.onnx_sha256 or None,
                     "runtime": version.runtime or None},
        "output_kind": version.output_kind or None,
        "classes": version.classes,
        "inputs": [{"name": c["name"], "dtype": c.get("dtype"), "pii": bool(c.get("pii"))}
                   for c in version.columns],
        "aliases": sorted(version.aliases.values_list("name", flat=True)),
        "metrics": sorted((version.metrics or {}).items()),
        "lineage": _lineage(version),
        "fairness": _fairness(version, show_pii=show_pii),
        "explanation": _explanation(version),
        "sections": [{"key": key, "title": title, "text": stored.get(key, "")}
                     for key, title in MODEL_CARD_SECTIONS],
        "updated_by": card.updated_by.get_username() if card and card.updated_by_id else None,
        "updated_at": _iso(card.updated_at) if card else None,
        "generated_at": timezone.now().isoformat(timespec="seconds"),
    }


def model_card_sections_update(*, version: ModelVersion, sections: Any, user) -> ModelCard:
    """Replace the given hand-written sections (others are kept); the change is audited."""
    if not isinstance(sections, dict) or not sections:
        raise ValidationError({"sections": "Must be an object of section: text."})
    unknown = sorted(set(sections) - set(SECTION_KEYS))
    if unknown:
        raise ValidationError({"sections": f"Unknown section(s) {', '.join(map(str, unknown))}; "
                                           f"the sections are {', '.join(SECTION_KEYS)}."})
    clean: dict[str, str] = {}
    for key, text in sections.items():
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise ValidationError({f"sections.{key}": "Must be text (Markdown)."})
        if "\x00" in text:
            raise ValidationError({f"sections.{key}": "Must not contain NUL characters."})
        if len(text) > SECTION_MAX_CHARS:
            raise ValidationError({f"sections.{key}": f"At most {SECTION_MAX_CHARS} characters."})
        clean[key] = text.replace("\r\n", "\n").strip()
    with transaction.atomic():
        card, _ = ModelCard.objects.select_for_update().get_or_create(version=version)
        before = {k: card.sections.get(k, "") for k in clean}
        changed = {k: v for k, v in clean.items() if before[k] != v}
        if not changed:
            return card
        card.sections = {**card.sections, **changed}
        card.updated_by, card.updated_at = user, timezone.now()
        card.save(update_fields=["sections", "updated_by", "updated_at"])
        audit_record(
            action="model_card.updated", actor=user, object_type="registry.ModelVersion",
            object_id=version.pk,
            project_id=version.model.project_id,
            before={"model": version.model.name, "version": version.version,
                    "sections": {k: before[k] for k in changed}},
            after={"model": version.model.name, "version": version.version, "sections": changed},
        )
    return card


def model_card_markdown(context: dict[str, Any]) -> str:
    return render_to_string("governance/card_export.md", {"card": context})


def model_card_html(context: dict[str, Any]) -> str:
    return render_to_string("governance/card_export.html", {"card": context})
