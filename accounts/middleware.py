"""Refuse a NUL character anywhere in a request's URL before any view sees it.

No name, reference or query value holds one, and PostgreSQL cannot compare
text with it: a model name, alias, username or filename with a NUL would
otherwise fail as a database error (a 500) in whichever view looked it up.
"""

from __future__ import annotations

from django.http import HttpResponseBadRequest

from core.api_errors import json_error_fields

NUL_IN_URL = "Must not contain the NUL character."


class NulInUrlMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        field = None
        if "\x00" in request.path:
            field = "path"
        elif "%00" in (query := request.META.get("QUERY_STRING", "")) or "\x00" in query:
            field = next((name for name, values in request.GET.lists()
                          if "\x00" in name or any("\x00" in v for v in values)), None)
        if field is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return json_error_fields(400, "invalid", f"{field}: {NUL_IN_URL}", {field: NUL_IN_URL})
        return HttpResponseBadRequest(f"{field}: {NUL_IN_URL}", content_type="text/plain")
