"""Request context the lower layers read without a request object (the audit log's IP), and
domain errors a view lets through."""

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.core.handlers.exception import response_for_exception
from django.http import Http404, JsonResponse
from django.shortcuts import render

from core.api_errors import domain_error_answer
from core.audit import request_ip
from core.errors import (
    AuthenticationFailed,
    DomainError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    error_status,
    error_text,
)


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy sets it.
        token = request_ip.set(request.META.get("REMOTE_ADDR") or None)
        try:
            return self.get_response(request)
        finally:
            request_ip.reset(token)


class DomainErrorMiddleware:
    """A domain refusal that a view lets through answers as it does everywhere else, not as a 500.

    A page view that looks an object up through a selector does not catch its
    NotFound: it becomes the site's 404 page (which names nothing of the
    project), a PermissionDenied the 403 page with its reason, and a Conflict,
    a body too large or a reused key the error page with their own status, and
    a ValidationError the error page with 400. A plain Django view under /api/
    answers the API's JSON error shape. DRF views
    never get here: their exception handler (core.api_errors) answers first.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError | ValidationError):
            return None
        if request.path.startswith("/api/"):
            status, body = domain_error_answer(exception)
            return JsonResponse(body, status=status)
        if isinstance(exception, ValidationError):
            # Bad input a page did not catch is still the user's to fix: 400, never a 500.
            return render(request, "error.html", {"message": error_text(exception), "code": "invalid",
                                                  "status": 400}, status=400)
        # Django's own handlers (the project's handler404, the 403 page) for the two it knows.
        if isinstance(exception, NotFound):
            return response_for_exception(request, Http404(exception.message))
        if isinstance(exception, PermissionDenied):
            return response_for_exception(request, DjangoPermissionDenied(exception.message))
        if isinstance(exception, NotAuthenticated | AuthenticationFailed):
            return redirect_to_login(request.get_full_path())
        status = error_status(exception)
        return render(request, "error.html", {"message": exception.message, "code": exception.code,
                                              "status": status}, status=status)
