"""Extension points for the apps above the registry (the registry never imports them).

A model version's page draws the sections registered here after its own, so governance can add
its fairness audit and explanation without the registry's templates naming governance's.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString

# Each takes (request, version) and returns rendered HTML (a SafeString), or "" for nothing.
VersionSection = Callable[[HttpRequest, object], SafeString | str]
_version_sections: list[VersionSection] = []


def version_section_register(render: VersionSection) -> None:
    if render not in _version_sections:
        _version_sections.append(render)


def version_sections(request: HttpRequest, version) -> list[SafeString | str]:
    return [html for html in (render(request, version) for render in _version_sections) if html]
