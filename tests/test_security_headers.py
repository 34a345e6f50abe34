"""Security headers: a Content Security Policy on every page, and a clean `check --deploy` behind TLS."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/accounts/login/", "/", "/accounts/tokens/", "/admin/", "/admin/login/",
                                 "/api/docs/", "/api/v1/projects/", "/no-such-page/"])
def test_every_page_sends_a_policy_with_scripts_from_this_origin_only(url):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    policy = directives(client.get(url))
    # No inline script; eval only for Plotly's WebGL charts (see settings.py).
    assert policy["script-src"] == ["'self'", "'unsafe-eval'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'self'"]


def test_no_template_has_an_inline_script_or_event_handler():
    """The policy allows no inline script; a template that had one would break under it."""
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text, re.IGNORECASE):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{template.relative_to(ROOT)}: {tag}")
        for handler in re.findall(r"<[^>]*\s(on[a-z]+)\s*=", text, re.IGNORECASE):
            offenders.append(f"{template.relative_to(ROOT)}: {handler}=")
        if re.search(r"""(href|src|action)\s*=\s*["']\s*javascript:""", text, re.IGNORECASE):
            offenders.append(f"{template.relative_to(ROOT)}: javascript: URL")
    assert offenders == []


def test_the_api_docs_load_their_start_up_script_as_a_file(client):
    page = client.get("/api/docs/").content.decode()
    sources = re.findall(r'<script src="([^"]+)"', page)
    assert any("script" in src for src in sources)
    assert not re.search(r"<script>\s*\S", page)  # nothing inline
    script = client.get(next(src for src in sources if "script" in src))
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content


PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "steward.example.com",
    "SECURE_COOKIES": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https",
}


def check_deploy(tmp_path, **overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env.update(PRODUCTION, SECRET_KEY=secrets.token_urlsafe(50), STEWARD_VAR_DIR=str(tmp_path), **overrides)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' fixture, never in production
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    result = check_deploy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_still_warns_without_the_tls_settings(tmp_path):
    result = check_deploy(tmp_path, SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="false")
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_behind_tls_plain_http_is_redirected_but_the_health_check_is_not(settings, client, db):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 3600
    redirected = client.get("/accounts/login/")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")
    secure = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200 and secure["Strict-Transport-Security"] == "max-age=3600"
    assert client.get("/healthz").status_code == 200
