"""HTML views for accounts: API tokens and project members. Thin: parse, check, call a service."""

from __future__ import annotations

import datetime as dt
import math

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services, throttling
from accounts.forms import MemberForm, MemberRemoveForm, TokenCreateForm, form_add_service_errors
from accounts.models import ApiToken, Membership, Role
from accounts.permissions import project_for_user


def login_locked_out(request, response, credentials):
    """The answer to a log-in refused for too many failures (django-axes' AXES_LOCKOUT_CALLABLE).

    The login form again, on /accounts/login/ and /admin/login/ alike, saying how long
    the lock lasts; 429, as for a throttled API client.
    """
    ends = throttling.login_lockout_ends(request, credentials)
    seconds = max(1, math.ceil((ends - timezone.now()).total_seconds())) if ends is not None else None
    form = AuthenticationForm(request, initial={"username": (credentials or {}).get("username", "")})
    answer = render(request, "registration/login.html", {
        "form": form, "locked_out": True,
        "retry_minutes": math.ceil(seconds / 60) if seconds is not None else None,
        "next": request.POST.get("next", request.GET.get("next", "")),
    }, status=429)
    if seconds is not None:
        answer["Retry-After"] = str(seconds)
    return answer


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    form = TokenCreateForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        days = form.cleaned_data["expires_in_days"]
        expires_at = timezone.now() + dt.timedelta(days=days) if days else None
        try:
            token, raw = services.api_token_create(
                user=request.user, name=form.cleaned_data["name"], expires_at=expires_at
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            # Shown in this response only: the raw value is kept nowhere (no session, no
            # redirect), and no cache may keep the page that holds it.
            new_token = {"id": token.pk, "raw": raw}
            form = TokenCreateForm()
    user_tokens = ApiToken.objects.filter(user=request.user)
    response = render(request, "accounts/tokens.html", {
        "form": form, "tokens": user_tokens, "new_token": new_token, "nav": "tokens",
    })
    if new_token is not None:
        add_never_cache_headers(response)
    return response


@login_required
@require_POST
def token_revoke(request, token_id: int):
    token = services.api_token_revoke(user=request.user, token_id=token_id)
    messages.success(request, f"Token “{token.name}” was revoked.")
    return redirect("accounts:tokens")


@login_required
@require_http_methods(["GET", "POST"])
def members(request, slug: str):
    project = project_for_user(request.user, slug)
    is_owner = project.user_role >= Role.OWNER
    form = MemberForm()
    if request.method == "POST":
        project = project_for_user(request.user, slug, min_role=Role.OWNER)
        action = request.POST.get("action", "set")
        form_class = MemberRemoveForm if action == "remove" else MemberForm
        posted = form_class(request.POST)
        if posted.is_valid():
            try:
                if action == "remove":
                    services.membership_remove(project=project, username=posted.cleaned_data["username"],
                                               actor=request.user)
                    messages.success(request, f"Removed {posted.cleaned_data['username']}.")
                else:
                    services.membership_set(project=project, actor=request.user, **posted.cleaned_data)
                    messages.success(
                        request,
                        f"{posted.cleaned_data['username']} is now {posted.cleaned_data['role']}.",
                    )
                # Back to this page (its URL belongs to the pages that list projects).
                return redirect(request.path)
            except ValidationError as exc:
                form_add_service_errors(posted, exc)
        if action != "remove":
            form = posted
        else:
            for error in posted.errors.values():
                messages.error(request, "; ".join(error))
    memberships = Membership.objects.filter(project=project).select_related("user").order_by(
        "-role", "user__username"
    )
    return render(request, "accounts/members.html", {
        "project": project, "memberships": memberships, "form": form, "is_owner": is_owner,
        "roles": [r.label for r in Role], "nav": "projects",
    })
