"""OpenAPI schema tweaks: bearer-token auth and unique names for views' nested serializers."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


class StewardAutoSchema(AutoSchema):
    def _get_serializer_name(self, serializer, direction, *args):
        name = super()._get_serializer_name(serializer, direction, *args)
        qualname = type(serializer).__qualname__
        if "." in qualname:
            # Views declare nested Input/Output classes; name them after the view.
            return qualname.replace(".", "")
        return name


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token: `Bearer stw_...`"}
