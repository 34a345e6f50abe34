"""Additions to the generated OpenAPI schema."""

from __future__ import annotations

_ERROR = {"$ref": "#/components/schemas/StewardError"}

SERVING_PATH = "/api/v1/serve/{slug}/{name}/{ref}/predict"

_PREDICT = {
    "post": {
        "operationId": "serve_predict",
        "summary": "Score rows with a model version (the serving endpoint)",
        "description": (
            "POST to `/api/v1/serve/<project>/<model>/<alias-or-version>/predict` (no trailing slash) "
            "with `Authorization: Bearer <token>` of anyone who may view the project. The body is "
            "`{\"records\": [{column: value, ...}, ...]}` or `{\"columns\": {column: [values, ...]}}`; "
            "every column of the version's signature is required and checked by type. The answer "
            "holds `predictions` (one per row), `probabilities` and `classes` for a classifier, "
            "`model_version`, `runtime` (`onnx` or `sklearn`) and `request_id`. Send an "
            "`X-Request-ID` header holding a UUID to choose the request id (it is echoed back in the "
            "`X-Request-ID` response header and recorded in the prediction log with each row). "
            "Errors: 400 naming each bad field, 401, 404 (no such project, model, alias or version), "
            "409 (the version is not ready), 413 (more rows than SERVING_MAX_ROWS), 429."
        ),
        "tags": ["serve"],
        "parameters": [
            {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "Project slug."},
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "Registered model name."},
            {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "An alias (champion, staging, ...) or a version number."},
            {"name": "X-Request-ID", "in": "header", "required": False,
             "schema": {"type": "string", "format": "uuid"}},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "oneOf": [
                {"type": "object", "required": ["records"], "properties": {"records": {
                    "type": "array", "minItems": 1, "items": {"type": "object"}}}},
                {"type": "object", "required": ["columns"], "properties": {"columns": {
                    "type": "object", "additionalProperties": {"type": "array"}}}},
            ]}}}},
        "responses": {
            "200": {"description": "Predictions.", "headers": {
                "X-Request-ID": {"schema": {"type": "string"}, "description": "The request id."}},
                "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "predictions": {"type": "array", "items": {}},
                    "probabilities": {"type": "array",
                                      "items": {"type": "array", "items": {"type": "number"}}},
                    "classes": {"type": "array", "items": {}},
                    "model_version": {"type": "integer"},
                    "runtime": {"type": "string"},
                    "request_id": {"type": "string"},
                }, "required": ["predictions", "model_version", "request_id"]}}}},
            **{code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
               for code, text in (("400", "A bad body; `fields` names each bad field."),
                                  ("401", "No or a bad token."),
                                  ("404", "No such project, model, alias or version."),
                                  ("409", "The version is not ready to serve."),
                                  ("413", "Too many rows."),
                                  ("429", "Too many failed tokens from this address."))},
        },
    },
}

_ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": True}}}}}


def serving_endpoint(result, generator, request, public):
    """The predict endpoint is a plain Django view (for speed), so the generator cannot see it."""
    result.setdefault("paths", {})[SERVING_PATH] = _PREDICT
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("StewardError", _ERROR_SCHEMA)
    return result
