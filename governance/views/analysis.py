"""Re-running a version's fairness audit or explanation from its page (editors and above)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.models import Role
from core.errors import error_text
from governance import analysis
from registry import selectors


@login_required
@require_POST
def analysis_rerun(request, slug: str, name: str, number: int, which: str):
    model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
    version = selectors.version_by_ref(model, number)
    start = {"fairness": analysis.fairness_start, "explanation": analysis.explanation_start}[which]
    try:
        start(version=version, user=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"The {'fairness audit' if which == 'fairness' else 'explanation'} "
                                  f"of v{version.version} is queued.")
    return redirect(f"/p/{model.project.slug}/models/{model.name}/v/{version.version}/#{which}")
