"""Model card pages and downloads: thin views over governance.cards."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import can_see_pii
from core.errors import error_text
from governance import cards
from registry import selectors


def _version_for(request, slug: str, name: str, number: int, min_role: Role = Role.VIEWER):
    model = selectors.model_for_user(request.user, slug, name, min_role=min_role)
    return model, selectors.version_by_ref(model, number)


@login_required
def card_page(request, slug: str, name: str, number: int):
    model, version = _version_for(request, slug, name, number)
    return render(request, "governance/card_page.html", {
        "project": model.project, "model": model, "version": version,
        "card": cards.model_card_context(version, show_pii=can_see_pii(request.user, model.project)),
        "can_edit": model.project.user_role >= Role.EDITOR, "nav": "models",
    })


@login_required
@require_POST
def card_edit(request, slug: str, name: str, number: int):
    model, version = _version_for(request, slug, name, number, min_role=Role.EDITOR)
    sections = {key: request.POST[key] for key in cards.SECTION_KEYS if key in request.POST}
    try:
        cards.model_card_sections_update(version=version, sections=sections, user=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "Model card saved.")
    return redirect(reverse("cards:card", args=[slug, name, version.version]))


def _download(body: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _filename(model, version, ext: str) -> str:
    # Model names are letters, digits, '_', '.' and '-': safe in a header as they are.
    return f"model-card-{model.name}-v{version.version}.{ext}"


@login_required
def card_markdown(request, slug: str, name: str, number: int):
    model, version = _version_for(request, slug, name, number)
    context = cards.model_card_context(version, show_pii=can_see_pii(request.user, model.project))
    return _download(cards.model_card_markdown(context), _filename(model, version, "md"),
                     "text/markdown; charset=utf-8")


@login_required
def card_html(request, slug: str, name: str, number: int):
    model, version = _version_for(request, slug, name, number)
    context = cards.model_card_context(version, show_pii=can_see_pii(request.user, model.project))
    return _download(cards.model_card_html(context), _filename(model, version, "html"),
                     "text/html; charset=utf-8")
