"""Request bodies of the tracking API: each serializer checks what it documents.

A body is parsed here, at the edge, into the typed values the services take
(``MetricPoint``, ``(key, value)`` pairs, datetimes, UUIDs); the services check
only what needs the database (an experiment in the trash, a parent run of
another project, a param logged before with another value).

Errors name the place in the body as the API always has (``metrics[3].value``,
``source.git_commit``, ``tags[0].key``), one flat field each, which
core.api_errors turns into the JSON error shape. Each serializer and field has
``parse(data, where)``, which the views and the MLflow-compatible API call;
DRF's ``is_valid`` works as well (``to_internal_value`` is ``parse``).

Metric points arrive by the hundred thousand: a point whose values have their
plain JSON types and whose key the batch already showed passes with a few type
tests, and any other point goes through the declared fields, which give the
answer and the message (tests/experiments/test_request_bodies.py checks that
both ways agree).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.json_input import check_json_value
from core import validation as v
from experiments.metric_store import MetricPoint
from experiments.models import EXPERIMENT_NAME_MAX_LENGTH, RunStatus
from experiments.services import BatchInput, now_ms

MAX_BATCH_METRICS = 10_000
MAX_BATCH_PARAMS = 1_000
MAX_BATCH_TAGS = 1_000
RUN_NAME_MAX_LENGTH = 250
NOTES_MAX_LENGTH = 100_000
SOURCE_TEXT_MAX_LENGTH = {
    "git_commit": 64,
    "git_branch": 250,
    "entry_point": 1000,
    "host": 250,
    "python_version": 50,
}

_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER_TEXT = re.compile(r"-?\d{1,19}\Z")


def _refuse(where: str, message: str):
    raise ValidationError({where or "body": message})


class RuleField(serializers.Field):
    """A value checked by one of core.validation's rules, the ones the SDK keeps a copy of."""

    @staticmethod
    def rule(value: Any, where: str) -> Any:
        raise NotImplementedError

    def parse(self, data: Any, where: str) -> Any:
        return self.rule(data, where)

    def to_internal_value(self, data: Any) -> Any:
        try:
            return self.parse(data, "value")
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["value"]) from None

    def to_representation(self, value: Any) -> Any:
        return value


def text_check(value: Any, where: str, *, max_length: int, blank: bool = True, strip: bool = True) -> str:
    """Plain text as a database stores it: no NUL, no lone surrogate, at most ``max_length``."""
    if type(value) is not str:
        _refuse(where, "Must be a string.")
    if strip:
        value = value.strip()
    if not value and not blank:
        _refuse(where, "Must not be blank.")
    if len(value) > max_length:
        _refuse(where, f"At most {max_length:,} characters.")
    if "\x00" in value:
        _refuse(where, "Must not contain the NUL character.")
    if not value.isascii() and _SURROGATE.search(value):
        _refuse(where, "Must not contain a lone surrogate.")
    return value


class TextField(serializers.CharField):
    """A CharField (documented as one) checked by ``text_check``; ``strip=False`` keeps the text's
    outer whitespace."""

    def __init__(self, *, max_length: int, blank: bool = True, strip: bool = True, **kwargs):
        super().__init__(max_length=max_length, allow_blank=blank, trim_whitespace=strip, **kwargs)

    def parse(self, data: Any, where: str) -> str:
        return text_check(data, where, max_length=self.max_length, blank=self.allow_blank,
                          strip=self.trim_whitespace)

    def to_internal_value(self, data: Any) -> str:
        try:
            return self.parse(data, "value")
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["value"]) from None


_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": v.KEY_MAX_LENGTH,
               "pattern": v.KEY_RE.pattern.replace("\\Z", "$"),
               "description": "Letters, digits and _ - . / space :, not an absolute or parent path."}


@extend_schema_field(_KEY_SCHEMA)
class KeyField(RuleField):
    rule = staticmethod(v.key_check)


def _value_schema(max_length: int) -> dict:
    return {"oneOf": [{"type": "string", "maxLength": max_length}, {"type": "number"}, {"type": "boolean"}],
            "nullable": True,
            "description": "Stored as text: a number or a boolean as Python writes it (1.0, True, None)."}


@extend_schema_field(_value_schema(v.PARAM_VALUE_MAX_LENGTH))
class ParamValueField(RuleField):
    rule = staticmethod(v.param_value)


@extend_schema_field(_value_schema(v.TAG_VALUE_MAX_LENGTH))
class TagValueField(RuleField):
    rule = staticmethod(v.tag_value)


@extend_schema_field(
    {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
)
class MetricValueField(RuleField):
    """A number, or NaN/Infinity/-Infinity spelled as a string (JSON has no such numbers)."""

    rule = staticmethod(v.metric_value)


@extend_schema_field({"type": "integer", "format": "int64"})
class Int64Field(RuleField):
    rule = staticmethod(v.int64)


def _int64_or_text(value: Any, where: str) -> int:
    """An int64, also written as decimal text ("1700000000000"), as the API has always taken."""
    if type(value) is str and _INTEGER_TEXT.match(value.strip()):
        value = int(value.strip())
    return v.int64(value, where)


@extend_schema_field({"type": "integer", "format": "int64"})
class LenientInt64Field(RuleField):
    rule = staticmethod(_int64_or_text)


def epoch_ms(value: Any, where: str) -> dt.datetime:
    ms = _int64_or_text(value, where)
    try:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        _refuse(where, "Not a valid time in milliseconds.")


@extend_schema_field({"type": "integer", "format": "int64", "description": "Epoch milliseconds."})
class EpochMsField(RuleField):
    rule = staticmethod(epoch_ms)


class UUIDTextField(serializers.UUIDField):
    def parse(self, data: Any, where: str):
        if data is None and self.allow_null:
            return None
        try:
            return self.run_validation(data)
        except serializers.ValidationError as exc:
            _refuse(where, "; ".join(map(str, exc.detail)))


class BodySerializer(serializers.Serializer):
    # A JSON object parsed by ``parse``; ``is_valid`` runs the same parse.

    def parse(self, data: Any, where: str = "") -> Any:
        raise NotImplementedError

    def to_internal_value(self, data: Any) -> Any:
        try:
            return self.parse(data, self.field_name)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None


def _object(data: Any, where: str, shape: str) -> dict:
    if type(data) is not dict:
        _refuse(where, shape)
    return data


# --- params, tags and metric points ------------------------------------------------------------


def _pairs_schema(item: str, value_schema: dict) -> dict:
    return {"oneOf": [{"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
                      {"type": "object", "additionalProperties": value_schema}],
            "description": "A list of {key, value}, or an object of key: value."}


@extend_schema_field(_pairs_schema("ParamIn", _value_schema(v.PARAM_VALUE_MAX_LENGTH)))
class ParamListSerializer(serializers.ListSerializer):
    """Params as a list of {key, value}, or an object of key: value; a key given twice must
    carry the same value."""

    def parse(self, data: Any, where: str) -> list[tuple[str, str]]:
        if type(data) is dict:
            data = [{"key": k, "value": value} for k, value in data.items()]
        if not isinstance(data, list):
            _refuse(where, "Must be a list of {key, value}.")
        if len(data) > MAX_BATCH_PARAMS:
            _refuse(where, f"At most {MAX_BATCH_PARAMS} params per request.")
        pairs: dict[str, str] = {}
        for i, item in enumerate(data):
            here = f"{where}[{i}]"
            key, value = self.child.parse(item, here)
            if key in pairs and pairs[key] != value:
                _refuse(here, f"Param '{key}' is given twice with different values.")
            pairs[key] = value
        return list(pairs.items())

    def to_internal_value(self, data: Any) -> list[tuple[str, str]]:
        return self.parse(data, self.field_name or "params")


class ParamIn(BodySerializer):
    """A param: written once; the same value again is accepted, another value is a 409."""

    key = KeyField()
    value = ParamValueField(required=False, help_text="A missing value is stored as None.")

    class Meta:
        list_serializer_class = ParamListSerializer

    def parse(self, data: Any, where: str = "param") -> tuple[str, str]:
        if type(data) is not dict or "key" not in data:
            _refuse(where, "Each param is {key, value}.")
        fields = self.fields
        return (fields["key"].parse(data["key"], f"{where}.key"),
                fields["value"].parse(data.get("value"), f"{where}.value"))


@extend_schema_field(_pairs_schema("TagIn", _value_schema(v.TAG_VALUE_MAX_LENGTH)))
class TagListSerializer(serializers.ListSerializer):
    """Tags as a list of {key, value}, or an object of key: value."""

    def parse(self, data: Any, where: str) -> list[tuple[str, str]]:
        if type(data) is dict:
            return [(self.child.fields["key"].parse(key, f"{where}[{i}].key"),
                     self.child.fields["value"].parse(value, f"{where}[{i}].value"))
                    for i, (key, value) in enumerate(data.items())]
        if not isinstance(data, list):
            _refuse(where, "Must be an object or a list of {key, value}.")
        return [self.child.parse(item, f"{where}[{i}]") for i, item in enumerate(data)]

    def to_internal_value(self, data: Any) -> list[tuple[str, str]]:
        return self.parse(data, self.field_name or "tags")


class TagIn(BodySerializer):
    """A tag: setting it again replaces its value."""

    key = KeyField()
    value = TagValueField(required=False, help_text='Default "".')

    class Meta:
        list_serializer_class = TagListSerializer

    def parse(self, data: Any, where: str = "tag") -> tuple[str, str]:
        if type(data) is not dict or "key" not in data:
            _refuse(where, "Each tag is {'key', 'value'}.")
        fields = self.fields
        return (fields["key"].parse(data["key"], f"{where}.key"),
                fields["value"].parse(data.get("value", ""), f"{where}.value"))


class MetricPointListSerializer(serializers.ListSerializer):
    def parse(self, data: Any, where: str) -> list[MetricPoint]:
        if not isinstance(data, list):
            _refuse(where, "Must be a list.")
        if len(data) > MAX_BATCH_METRICS:
            _refuse(where, f"At most {MAX_BATCH_METRICS} points per request.")
        now = now_ms()
        point = self.child.parse
        known: set[str] = set()
        points = []
        append = points.append
        lo, hi = v.INT64_MIN, v.INT64_MAX
        for i, item in enumerate(data):
            # The SDK's point: a float value, int step and timestamp (or none), a key seen before.
            if type(item) is dict:
                key, value = item.get("key"), item.get("value")
                step = item.get("step") or 0
                timestamp = item.get("timestamp") or now
                if (type(value) is float and type(key) is str and key in known
                        and type(step) is int and lo <= step <= hi
                        and type(timestamp) is int and lo <= timestamp <= hi):
                    append(MetricPoint(key, value, step, timestamp))
                    continue
            parsed = point(item, f"{where}[{i}]", now)
            known.add(parsed.key)
            append(parsed)
        return points

    def to_internal_value(self, data: Any) -> list[MetricPoint]:
        return self.parse(data, self.field_name or "metrics")


class MetricPointIn(BodySerializer):
    """One point of a metric's history."""

    key = KeyField()
    value = MetricValueField()
    step = Int64Field(required=False, help_text="Default 0.")
    timestamp = Int64Field(required=False, help_text="Epoch milliseconds; default now.")

    class Meta:
        list_serializer_class = MetricPointListSerializer

    def parse(self, data: Any, where: str = "metric", now: int | None = None) -> MetricPoint:
        _object(data, where, "Each point is {key, value, step, timestamp}.")
        fields = self.fields
        key = fields["key"].parse(data.get("key"), f"{where}.key")
        if "value" not in data:
            _refuse(f"{where}.value", "This field is required.")
        value = fields["value"].parse(data["value"], f"{where}.value")
        # 0, null and no step at all are step 0; likewise for the time, which is then now.
        step = fields["step"].parse(data.get("step") or 0, f"{where}.step")
        timestamp = fields["timestamp"].parse(data.get("timestamp") or now or now_ms(), f"{where}.timestamp")
        return MetricPoint(key, value, step, timestamp)


class BatchIn(BodySerializer):
    """Params, metric points and tags of one run, stored whole or not at all."""

    params = ParamIn(many=True, required=False)
    metrics = MetricPointIn(many=True, required=False, help_text=f"At most {MAX_BATCH_METRICS:,} points.")
    tags = TagIn(many=True, required=False)

    def parse(self, data: Any, where: str = "") -> BatchInput:
        _object(data, "body", "Must be a JSON object with params, metrics and tags.")
        unknown = data.keys() - {"params", "metrics", "tags"}
        if unknown:
            _refuse(sorted(unknown)[0], "Unknown field.")
        fields = self.fields
        tags = data.get("tags") or []
        if isinstance(tags, list) and len(tags) > MAX_BATCH_TAGS:
            _refuse("tags", f"At most {MAX_BATCH_TAGS} tags per request.")
        return BatchInput(
            params=fields["params"].parse(data.get("params") or [], "params"),
            metrics=fields["metrics"].parse(data.get("metrics") or [], "metrics"),
            tags=fields["tags"].parse(tags, "tags"),
        )


# --- runs --------------------------------------------------------------------------------------


def _git_dirty(value: Any, where: str) -> bool:
    if type(value) is not bool:
        _refuse(where, "Must be true or false.")
    return value


def _packages(value: Any, where: str) -> dict:
    if type(value) is not dict:
        _refuse(where, "Must be an object of name: version.")
    return check_json_value(value, field=where)


@extend_schema_field({"type": "boolean", "nullable": True})
class GitDirtyField(RuleField):
    rule = staticmethod(_git_dirty)


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class PackagesField(RuleField):
    rule = staticmethod(_packages)


class SourceIn(BodySerializer):
    """Where the run's code came from. Fields not given, or null, stay empty."""

    git_commit = TextField(max_length=SOURCE_TEXT_MAX_LENGTH["git_commit"], strip=False, required=False)
    git_branch = TextField(max_length=SOURCE_TEXT_MAX_LENGTH["git_branch"], strip=False, required=False)
    git_dirty = GitDirtyField(required=False, allow_null=True)
    entry_point = TextField(max_length=SOURCE_TEXT_MAX_LENGTH["entry_point"], strip=False, required=False)
    host = TextField(max_length=SOURCE_TEXT_MAX_LENGTH["host"], strip=False, required=False)
    python_version = TextField(max_length=SOURCE_TEXT_MAX_LENGTH["python_version"], strip=False,
                               required=False)
    packages = PackagesField(required=False, allow_null=True,
                             help_text="name: version of the installed packages.")

    def parse(self, data: Any, where: str = "source") -> dict[str, Any]:
        _object(data, where, "Must be an object.")
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            if name in data:
                value = data[name]
                if value is None and field.allow_null:
                    continue
                out[name] = field.parse(value, f"{where}.{name}")
        return out


class RunCreateIn(BodySerializer):
    """A new run. Only ``experiment`` is required."""

    experiment = TextField(max_length=EXPERIMENT_NAME_MAX_LENGTH, blank=False,
                           help_text="Made if the project has no experiment of this name.")
    id = UUIDTextField(required=False, help_text="Chosen by the client: sending the same run again is "
                                                 "answered with the run made the first time.")
    name = TextField(max_length=RUN_NAME_MAX_LENGTH, required=False)
    start_time = EpochMsField(required=False, help_text="Epoch milliseconds; default now.")
    tags = TagIn(many=True, required=False)
    source = SourceIn(required=False)
    seed = LenientInt64Field(required=False, allow_null=True)
    notes = TextField(max_length=NOTES_MAX_LENGTH, required=False)
    parent_run_id = UUIDTextField(required=False, allow_null=True,
                                  help_text="A run of the same project this run is nested under.")

    def parse(self, data: Any, where: str = "") -> dict[str, Any]:
        """The keyword arguments of ``services.run_create`` (without project and user)."""
        _object(data, "body", "Must be a JSON object.")
        fields = self.fields
        out: dict[str, Any] = {}
        for name in ("experiment", "id", "name", "start_time", "tags", "source", "seed", "notes",
                     "parent_run_id"):
            if name in data:
                value = data[name]
                if value is None and fields[name].allow_null:
                    continue
                out[name] = fields[name].parse(value, name)
            elif name == "experiment":
                _refuse(name, "This field is required.")
        if "id" in out:
            out["run_id"] = out.pop("id")
        return out


def _status(value: Any, where: str) -> str:
    if value not in RunStatus.values:
        _refuse(where, f"Must be one of {', '.join(RunStatus.values)}.")
    return value


@extend_schema_field({"type": "string", "enum": list(RunStatus.values)})
class RunStatusField(RuleField):
    rule = staticmethod(_status)


class RunUpdateIn(BodySerializer):
    """What to change of a run; fields not sent stay as they are."""

    status = RunStatusField(required=False, help_text="A run that ended cannot go back to RUNNING.")
    end_time = EpochMsField(required=False)
    name = TextField(max_length=RUN_NAME_MAX_LENGTH, required=False)
    notes = TextField(max_length=NOTES_MAX_LENGTH, required=False)
    error = TextField(max_length=10 * NOTES_MAX_LENGTH, strip=False, required=False,
                      help_text="Kept to its first 20,000 characters.")
    seed = LenientInt64Field(required=False, allow_null=True)

    def parse(self, data: Any, where: str = "") -> dict[str, Any]:
        """The keyword arguments of ``services.run_update`` (without the run)."""
        _object(data, "body", "Must be a JSON object.")
        fields = self.fields
        out: dict[str, Any] = {}
        for name, field in fields.items():
            if name in data:
                value = data[name]
                if value is None and field.allow_null:
                    continue
                out[name] = field.parse(value, name)
        return out


# What the views and the MLflow-compatible API call.
batch_parse = BatchIn().parse
run_create_parse = RunCreateIn().parse
run_update_parse = RunUpdateIn().parse
metric_points_parse = MetricPointIn(many=True).parse
param_pairs_parse = ParamIn(many=True).parse
tag_pairs_parse = TagIn(many=True).parse
