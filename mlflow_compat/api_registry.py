"""MLflow's model registry endpoints (/api/2.0/mlflow/registered-models/*, model-versions/*)
on Steward's registry: registration runs Steward's checks, aliases keep their protection."""

from __future__ import annotations

import re

from django.db import transaction
from rest_framework.response import Response

from accounts.models import Role
from mlflow_compat import errors, filters, output
from mlflow_compat import registry as reg
from mlflow_compat.api_tracking import _offset_token, _offset_token_make, _page_size
from mlflow_compat.models import VersionTags
from mlflow_compat.views_base import MlflowView, required
from registry import selectors
from registry import services as registry
from registry.models import ModelAlias, ModelVersion, RegisteredModel

EDITOR = Role.EDITOR
STAGE_ALIASES = {"production": "production", "staging": "staging"}
PROMOTION_HINT = (" In Steward, open a promotion request for this version; the alias moves when a "
                  "reviewer approves it.")


def _tags(tags: dict) -> list[dict]:
    return [{"key": k, "value": val} for k, val in sorted(tags.items())]


def version_json(version: ModelVersion, aliases: list[str] | None = None) -> dict:
    status, message = reg.version_status(version)
    if aliases is None:
        aliases = sorted(version.aliases.values_list("name", flat=True))
    tags = VersionTags.objects.filter(version=version).values_list("tags", flat=True).first() or {}
    body = {
        "name": version.model.name,
        "version": str(version.version),
        "creation_timestamp": output.ms(version.created_at),
        "last_updated_timestamp": output.ms(version.checked_at or version.created_at),
        "user_id": version.author.username if version.author_id else "",
        "current_stage": "None",
        "description": version.description,
        "source": reg.version_source(version),
        "run_id": version.run_id.hex,
        "status": status,
        "status_message": message,
        "tags": _tags(tags),
        "aliases": aliases,
    }
    source = body["source"]
    if source.startswith("models:/"):
        body["model_id"] = source[len("models:/"):]
    return body


def model_json(model: RegisteredModel, *, latest: bool = True) -> dict:
    aliases = list(ModelAlias.objects.filter(model=model).values_list("name", "version__version"))
    body = {
        "name": model.name,
        "creation_timestamp": output.ms(model.created_at),
        "last_updated_timestamp": output.ms(model.updated_at),
        "user_id": model.owner.username if model.owner_id else "",
        "description": model.description,
        "tags": _tags(model.tags or {}),
        "aliases": [{"alias": name, "version": str(number)} for name, number in sorted(aliases)],
    }
    if latest:
        newest = model.versions.select_related("model", "author").order_by("-version").first()
        body["latest_versions"] = [version_json(newest)] if newest else []
    return body


class _RegistryView(MlflowView):
    def model(self, request, name, min_role=Role.VIEWER) -> RegisteredModel:
        if not isinstance(name, str) or not name:
            raise errors.invalid("Missing value for required parameter 'name'.")
        project = self.project(request, min_role)
        model = RegisteredModel.objects.select_related("owner").filter(project=project, name=name).first()
        if model is None:
            raise errors.not_found(f"Registered Model with name={name[:100]} not found")
        model.project = project
        return model

    def version(self, request, name, number, min_role=Role.VIEWER) -> ModelVersion:
        model = self.model(request, name, min_role)
        if not str(number or "").isdigit() or len(str(number)) > selectors.VERSION_DIGITS_MAX:
            raise errors.not_found(f"Model Version (name={name[:100]}, version={str(number)[:20]}) not found")
        version = ModelVersion.objects.select_related("model", "author", "run").filter(
            model=model, version=int(number)).first()
        if version is None:
            raise errors.not_found(f"Model Version (name={name[:100]}, version={number}) not found")
        version.model = model
        return version


class RegisteredModelCreate(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        project = self.project(request, EDITOR)
        name = required(body, "name")
        tags = {k: val for k, val in _pairs(body.get("tags"))}
        if RegisteredModel.objects.filter(project=project, name=name).exists():
            raise errors.MlflowError(errors.RESOURCE_ALREADY_EXISTS,
                                     f"Registered Model (name={name}) already exists.")
        model = registry.registered_model_create(
            project=project, name=name, user=request.user, description=body.get("description") or "",
            tags=tags,
        )
        return Response({"registered_model": model_json(model)})


def _pairs(items) -> list[tuple[str, str]]:
    from mlflow_compat.services import _pairs as pairs

    return pairs(items or [], "tags")


class RegisteredModelDetail(_RegistryView):
    def get(self, request, **kwargs):
        model = self.model(request, self.body(request).get("name"))
        return Response({"registered_model": model_json(model)})


class RegisteredModelUpdate(_RegistryView):
    def patch(self, request, **kwargs):
        body = self.body(request)
        model = self.model(request, body.get("name"), EDITOR)
        if body.get("description") is not None:
            registry.registered_model_update(model=model, description=str(body["description"]))
        return Response({"registered_model": model_json(model)})


class RegisteredModelRename(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        model = self.model(request, body.get("name"), EDITOR)
        model = registry.registered_model_rename(model=model, new_name=required(body, "new_name"))
        return Response({"registered_model": model_json(model)})


def _refuse_protected_aliases(model: RegisteredModel, aliases) -> None:
    """A delete never takes a protected alias with it: the alias leaves only through an approval."""
    protected = sorted(a.name for a in aliases if model.is_protected(a.name))
    if protected:
        names = ", ".join(f"'{name}'" for name in protected)
        raise errors.MlflowError(
            errors.PERMISSION_DENIED,
            f"Protected alias {names} of {model.name} points at what would be deleted: a protected alias "
            "moves only through an approved promotion request, not by hand." + PROMOTION_HINT,
        )


class RegisteredModelDelete(_RegistryView):
    """Deleted with its versions on Steward's rules: refused while an alias points at a version."""

    def delete(self, request, **kwargs):
        model = self.model(request, self.body(request).get("name"), EDITOR)
        _refuse_protected_aliases(model, ModelAlias.objects.filter(model=model))
        registry.registered_model_delete(model=model, user=request.user)
        return Response({})


def _size(value, default: int, cap: int) -> int:
    """A page size as MLflow's client asks for it; more than ``cap`` gets ``cap`` and a token."""
    return min(_page_size(value, cap) if value not in (None, "") else default, cap)


MODEL_ORDER = {"name": "name", "creation_timestamp": "created", "timestamp": "created",
               "last_updated_timestamp": "updated"}
VERSION_ORDER = {**MODEL_ORDER, "version_number": "version"}


def _model_value(model: RegisteredModel, field: str):
    return {"name": lambda: model.name, "created": lambda: model.created_at,
            "updated": lambda: model.updated_at}[field]()


def _version_value(version: ModelVersion, field: str):
    return {"name": lambda: version.model.name, "version": lambda: version.version,
            "created": lambda: version.created_at,
            "updated": lambda: version.checked_at or version.created_at}[field]()


def _run_hex(value: str) -> str:
    return value.replace("-", "").lower()


class RegisteredModelSearch(_RegistryView):
    """MLflow's search_registered_models: ``name`` (=, !=, LIKE, ILIKE, IN) and ``tags.<key>``
    conditions, order_by name / creation_timestamp / last_updated_timestamp, offset page tokens."""

    def get(self, request, **kwargs):
        body = self.body(request)
        project = self.project(request)
        size = _size(body.get("max_results"), 100, 1000)
        offset = _offset_token(body.get("page_token"))
        conditions = filters.parse(body.get("filter"), {"name"})
        # Ties fall to the name, which is unique in a project, so pages never overlap.
        order = filters.order_parse(self.list_arg(request, "order_by"), MODEL_ORDER) + [("name", False)]
        stored = RegisteredModel.objects.filter(project=project).select_related("owner").order_by("name")
        models = [m for m in stored if filters.matches(conditions, {"name": m.name}, m.tags or {})]
        models = filters.order_apply(models, order, _model_value)
        page = models[offset:offset + size + 1]
        answer = {"registered_models": [model_json(m) for m in page[:size]]}
        if len(page) > size:
            answer["next_page_token"] = _offset_token_make(offset + size)
        return Response(answer)

    post = get


class RegisteredModelTag(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        model = self.model(request, body.get("name"), EDITOR)
        (key, value), = _pairs([{"key": body.get("key"), "value": body.get("value", "")}])
        registry.registered_model_update(model=model, tags={**(model.tags or {}), key: value})
        return Response({})

    def delete(self, request, **kwargs):
        body = self.body(request)
        model = self.model(request, body.get("name"), EDITOR)
        key = required(body, "key")
        if key not in (model.tags or {}):
            raise errors.not_found(f"No tag with key '{key[:250]}' on registered model {model.name}.")
        remaining = {k: val for k, val in model.tags.items() if k != key}
        registry.registered_model_update(model=model, tags=remaining)
        return Response({})


class LatestVersions(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        model = self.model(request, body.get("name"))
        stages = [s.lower() for s in self.list_arg(request, "stages")] or ["none", "production", "staging"]
        found: dict[int, ModelVersion] = {}
        for stage in stages:
            if stage in STAGE_ALIASES:
                alias = ModelAlias.objects.filter(model=model, name=STAGE_ALIASES[stage]).first()
                if alias:
                    found[alias.version_id] = alias.version
            elif stage == "none":
                newest = model.versions.order_by("-version").first()
                if newest:
                    found[newest.pk] = newest
        versions = sorted(found.values(), key=lambda v: v.version)
        for version in versions:
            version.model = model
        return Response({"model_versions": [version_json(v) for v in versions]})

    get = post


def _alias_check(alias) -> None:
    """MLflow's own rules on top of Steward's: "latest" and "v<digits>" would read as versions
    in a ``models:/name@alias`` URI."""
    if isinstance(alias, str) and (alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias)):
        raise errors.invalid(f"'{alias}' cannot be an alias: 'latest' and v<number> name versions.")


class AliasApi(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        _alias_check(body.get("alias"))
        version = self.version(request, body.get("name"), required(body, "version"), EDITOR)
        try:
            registry.alias_set(model=version.model, alias=required(body, "alias"), version=version,
                               user=request.user, via="mlflow")
        except registry.AliasProtected as exc:
            raise errors.MlflowError(errors.PERMISSION_DENIED, exc.message + PROMOTION_HINT) from None
        return Response({})

    def delete(self, request, **kwargs):
        body = self.body(request)
        model = self.model(request, body.get("name"), EDITOR)
        try:
            registry.alias_remove(model=model, alias=required(body, "alias"), user=request.user, via="mlflow")
        except registry.AliasProtected as exc:
            raise errors.MlflowError(errors.PERMISSION_DENIED, exc.message + PROMOTION_HINT) from None
        return Response({})

    def get(self, request, **kwargs):
        body = self.body(request)
        model = self.model(request, body.get("name"))
        alias = required(body, "alias")
        found = ModelAlias.objects.filter(model=model, name=alias).first()
        if found is None:
            raise errors.not_found(f"Registered model alias {alias[:64]} not found.")
        version = ModelVersion.objects.select_related("model", "author").get(pk=found.version_id)
        version.model = model
        return Response({"model_version": version_json(version)})


class VersionCreate(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        name = required(body, "name")
        project = self.project(request, EDITOR)
        claimed = self.run(request, body["run_id"], EDITOR) if body.get("run_id") else None
        run, folder = reg.source_resolve(source=body.get("source"), run=claimed)
        if run.project_id != project.pk:
            raise errors.invalid("source: The run belongs to another project.")
        self.run(request, run.pk.hex, EDITOR)
        mlmodel = reg.mlmodel_read(run, folder)
        signature = reg.signature_from_mlmodel(mlmodel)
        example = reg.example_read(run, folder, mlmodel, signature)
        if not folder:
            raise errors.invalid("source: Name the folder of the model among the run's artifacts.")
        with transaction.atomic():
            version = registry.model_version_create(
                project=project, model_name=name, run=run, artifact_path=folder,
                user=request.user, description=body.get("description") or "",
                signature=signature, example=example,
            )
            tags = dict(_pairs(body.get("tags")))
            if tags:
                VersionTags.objects.create(version=version, tags=tags)
        version = ModelVersion.objects.select_related("model", "author").get(pk=version.pk)
        return Response({"model_version": version_json(version, [])})


class VersionDetail(_RegistryView):
    def get(self, request, **kwargs):
        body = self.body(request)
        version = self.version(request, body.get("name"), required(body, "version"))
        return Response({"model_version": version_json(version)})


class VersionUpdate(_RegistryView):
    def patch(self, request, **kwargs):
        body = self.body(request)
        version = self.version(request, body.get("name"), required(body, "version"), EDITOR)
        if body.get("description") is not None:
            registry.model_version_describe(version=version, description=str(body["description"]))
        return Response({"model_version": version_json(version)})


class VersionDelete(_RegistryView):
    """Deleted on Steward's rules: refused while an alias points at the version."""

    def delete(self, request, **kwargs):
        body = self.body(request)
        version = self.version(request, body.get("name"), required(body, "version"), EDITOR)
        _refuse_protected_aliases(version.model, ModelAlias.objects.filter(version=version))
        registry.model_version_delete(version=version, user=request.user)
        return Response({})


class VersionDownloadUri(_RegistryView):
    def get(self, request, **kwargs):
        body = self.body(request)
        version = self.version(request, body.get("name"), required(body, "version"))
        folder = reg.version_folder(version)
        uri = output.run_artifact_uri(version.run.experiment_id, version.run_id)
        return Response({"artifact_uri": f"{uri}/{folder}" if folder else uri})


class VersionSearch(_RegistryView):
    """MLflow's search_model_versions: ``name`` (=, !=, LIKE, ILIKE, IN), ``run_id`` (= or IN),
    ``version_number`` (comparisons, IN), ``source_path``, ``user_id`` and ``tags.<key>`` conditions,
    order_by name / version_number / creation_timestamp / last_updated_timestamp, offset page tokens.
    The client asks for 10,000 a page: it gets 1,000 and a token."""

    def get(self, request, **kwargs):
        body = self.body(request)
        project = self.project(request)
        size = _size(body.get("max_results"), 1000, 1000)
        offset = _offset_token(body.get("page_token"))
        conditions = filters.parse(body.get("filter"), {"name", "run_id", "source", "source_path", "user_id"},
                                   numeric={"version", "version_number"}, normalise={"run_id": _run_hex})
        order = filters.order_parse(self.list_arg(request, "order_by"), VERSION_ORDER)
        # Newest versions first within a model, as before; (name, version) is unique, so pages never overlap.
        order += [("name", False), ("version", True)]
        rows = ModelVersion.objects.filter(model__project=project).select_related("model", "author")
        tags_of = dict(VersionTags.objects.filter(version__model__project=project)
                       .values_list("version_id", "tags"))
        versions = []
        for version in rows.order_by("model__name", "-version"):
            source = reg.version_source(version)
            fields = {"name": version.model.name, "run_id": version.run_id.hex,
                      "version": version.version, "version_number": version.version,
                      "source": source, "source_path": source,
                      "user_id": version.author.username if version.author_id else ""}
            if filters.matches(conditions, fields, tags_of.get(version.pk, {})):
                versions.append(version)
        versions = filters.order_apply(versions, order, _version_value)
        page = versions[offset:offset + size + 1]
        answer = {"model_versions": [version_json(v) for v in page[:size]]}
        if len(page) > size:
            answer["next_page_token"] = _offset_token_make(offset + size)
        return Response(answer)

    post = get


class VersionTag(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        version = self.version(request, body.get("name"), required(body, "version"), EDITOR)
        (key, value), = _pairs([{"key": body.get("key"), "value": body.get("value", "")}])
        with transaction.atomic():
            row, _ = VersionTags.objects.select_for_update().get_or_create(version=version)
            row.tags = {**row.tags, key: value}
            row.save(update_fields=["tags"])
        return Response({})

    def delete(self, request, **kwargs):
        body = self.body(request)
        version = self.version(request, body.get("name"), required(body, "version"), EDITOR)
        key = required(body, "key")
        with transaction.atomic():
            row = VersionTags.objects.select_for_update().filter(version=version).first()
            if row is None or key not in row.tags:
                raise errors.not_found(f"No tag with key '{key[:250]}' on this model version.")
            row.tags = {k: val for k, val in row.tags.items() if k != key}
            row.save(update_fields=["tags"])
        return Response({})


class TransitionStage(_RegistryView):
    def post(self, request, **kwargs):
        body = self.body(request)
        version = self.version(request, body.get("name"), required(body, "version"), EDITOR)
        stage = str(body.get("stage") or "")
        if stage.lower() == "production" or version.model.is_protected(stage.lower()):
            raise errors.MlflowError(
                errors.PERMISSION_DENIED,
                f"'{stage}' is protected on {version.model.name}: a version reaches it only through an "
                "approved promotion request, not by hand." + PROMOTION_HINT,
            )
        raise errors.invalid(
            "Steward uses aliases rather than stages: set_registered_model_alias(name, alias, version)."
        )

