"""The fairness audit and explanation on a model version's page, through the registry's
version-section hook (registry.extensions)."""

from __future__ import annotations

from django.template.loader import render_to_string

from accounts.models import Role
from accounts.permissions import can_see_pii, role_for
from governance.analysis_read import explanation_output, fairness_output
from registry.extensions import version_section_register


def version_analyses_section(request, version) -> str:
    show_pii = can_see_pii(request.user, version.model.project)
    return render_to_string("governance/_version_analyses.html", {
        "report": fairness_output(version, show_pii=show_pii),
        "explanation": explanation_output(version, show_pii=show_pii, beeswarm=True),
        "version": version,
        "can_rerun": (role_for(request.user, version.model.project) or 0) >= Role.EDITOR,
    }, request=request)


def register() -> None:
    version_section_register(version_analyses_section)
