"""Links a higher app adds to a lower app's pages.

A page names a *place* ("project" for the project page's buttons, "datasets" for the dataset list,
"dataset-version" for a version page, "registered-model" and "model-version" for the registry's
model and version pages, "run-panels" for the panels the run page loads into itself); an app
higher in the layers registers, in its ``AppConfig.ready``, what appears there: a label and a
function from the page's object to a URL. So a lower app's pages never name a higher app's URLs,
and an app that is not installed adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PageLink:
    label: str
    url_for: Callable[[Any], str]
    # The project role a user needs to see the link (the number of ``accounts.Role``); 0: anyone
    # who can see the page.
    min_role: int = 0
    primary: bool = False
    # Links are shown in this order (then by registration).
    order: int = 100
    # The element's id on the page, for links a script or a test finds by id.
    element_id: str = ""


@dataclass(frozen=True)
class ShownLink:
    label: str
    url: str
    primary: bool
    element_id: str = ""


_PLACES: dict[str, list[PageLink]] = {}


def page_link_register(place: str, link: PageLink) -> None:
    """Add ``link`` to ``place`` (once: registering the same label again replaces it)."""
    links = [known for known in _PLACES.get(place, []) if known.label != link.label]
    links.append(link)
    links.sort(key=lambda known: known.order)
    _PLACES[place] = links


def page_links(place: str, obj: Any, *, role: int | None) -> list[ShownLink]:
    """What ``place`` shows for ``obj`` to a user holding ``role`` (None: no role in the project)."""
    held = role or 0
    return [ShownLink(link.label, link.url_for(obj), link.primary, link.element_id)
            for link in _PLACES.get(place, []) if held >= link.min_role]
