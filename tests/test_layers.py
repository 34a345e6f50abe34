"""A lower app never names a higher app's URLs, in its templates or its code.

import-linter (make lint) keeps imports downward; a URL name is a coupling import-linter cannot
see, so this test reads every template folder and every app's Python for ``{% url 'ns:...' %}``,
``reverse("ns:...")`` and ``redirect("ns:...")`` and checks ``ns`` belongs to the same app or a
lower one. A higher app adds its links to a lower app's pages through ``core.links``.
"""

import re
from pathlib import Path

import pytest
from django.urls import get_resolver

ROOT = Path(__file__).resolve().parent.parent
# Bottom to top, as pyproject.toml's import-linter contract orders them.
LAYERS = ["core", "accounts", "experiments", "datasets", "training", "registry", "monitoring", "governance"]
URL_NAME = re.compile(
    r"""(?:\{%\s*url\s+|reverse\(\s*|redirect\(\s*|reverse_lazy\(\s*)['"]([a-z_]+):[\w-]+['"]""")


def _namespace_owners() -> dict[str, str]:
    """Every URL namespace and the app whose URL module defines it."""
    owners = {}
    for pattern in get_resolver().url_patterns:
        namespace = getattr(pattern, "namespace", None)
        module = getattr(pattern, "urlconf_module", None)
        if namespace and module is not None:
            name = module.__name__ if hasattr(module, "__name__") else type(module).__module__
            owners[namespace] = name.split(".")[0]
        for inner in getattr(pattern, "url_patterns", []):
            if getattr(inner, "namespace", None):
                owners[inner.namespace] = getattr(pattern.urlconf_module, "__name__", "").split(".")[0]
    return owners


def _named(text: str) -> set[str]:
    return set(URL_NAME.findall(text))


def test_every_namespace_belongs_to_an_app_of_the_layers():
    owners = _namespace_owners()
    expected = {"experiments", "datasets", "training", "registry", "governance", "audit", "monitoring"}
    assert expected <= set(owners)
    assert owners["audit"] == owners["cards"] == owners["governance_analysis"] == "governance"
    assert owners["training"] == "training" and owners["datasets"] == "datasets"


@pytest.mark.parametrize("app", LAYERS)
def test_an_app_names_only_its_own_urls_and_lower_apps(app):
    owners = _namespace_owners()
    allowed = set(LAYERS[: LAYERS.index(app) + 1])
    sources = [*(ROOT / "templates" / app).rglob("*.html"), *(ROOT / app).rglob("*.py")]
    found = {}
    for source in sources:
        if "migrations" in source.parts:
            continue
        for namespace in _named(source.read_text()):
            owner = owners.get(namespace)
            if owner in LAYERS and owner not in allowed:
                found.setdefault(str(source.relative_to(ROOT)), set()).add(namespace)
    assert found == {}


def test_the_check_sees_a_url_name():
    assert _named("""<a href="{% url 'registry:models' project.slug %}">""") == {"registry"}
    assert _named("""return redirect("training:sweep", sweep_id=1)""") == {"training"}


# The modules that face HTTP: they parse requests, check permission and answer; everything else
# (services, selectors, tasks, models, the search package...) raises core.errors or Django's
# ValidationError, which core.api_errors and core.middleware turn into answers.
EDGE = re.compile(r"(^|/)(api|views|urls|management|migrations|templatetags)(/|\.py$)|(^|/)(api_\w+|"
                  r"serializers|schema|middleware|authentication|throttling|json_input|admin|forms)\.py$")
HTTP_ERRORS = re.compile(r"^\s*(from rest_framework\b|import rest_framework\b|from django\.http import .*"
                         r"\b(Http404|HttpResponse\w*|JsonResponse)\b)", re.MULTILINE)


def test_services_and_selectors_raise_domain_errors_not_http_answers():
    offenders = []
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT / app).as_posix()
            if EDGE.search(relative):
                continue
            if HTTP_ERRORS.search(path.read_text()):
                offenders.append(f"{app}/{relative}")
    assert offenders == []
