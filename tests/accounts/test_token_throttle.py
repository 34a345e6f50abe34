"""Guessing API tokens: failed bearer authentication is throttled per client address."""

import time

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def set_rate(settings, rate, **extra):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, **extra,
                               "DEFAULT_THROTTLE_RATES": {"token_failure": rate}}


@pytest.fixture
def good_token(db):
    _, raw = account_services.api_token_create(user=UserFactory(), name="ok")
    return raw


def get(token, address="127.0.0.1", **extra):
    return APIClient().get("/api/v1/projects/", HTTP_AUTHORIZATION=f"Bearer {token}", REMOTE_ADDR=address,
                           **extra)


def test_bad_tokens_then_429_with_retry_after_in_the_json_error_shape(settings, good_token):
    set_rate(settings, "5/min")
    for i in range(5):
        assert get(f"stw_wrong{i}").status_code == 401
    throttled = get("stw_wrong-again")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "throttled"
    assert "failed authentication" in throttled.json()["error"]["message"]
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # While refused, no token from that address is even looked up, or guessing would go on.
    assert get(good_token).status_code == 429
    # Other addresses are not affected, and keep their own count.
    assert get(good_token, address="10.9.9.9").status_code == 200
    assert get("stw_wrong", address="10.9.9.9").status_code == 401


def test_good_tokens_are_never_counted(settings, good_token):
    set_rate(settings, "5/min")
    for _ in range(30):
        assert get(good_token).status_code == 200
    for i in range(5):
        assert get(f"stw_wrong{i}").status_code == 401  # the five failures the rate allows
    assert get("stw_wrong").status_code == 429


def test_the_address_may_try_again_once_its_failures_leave_the_period(settings, good_token):
    set_rate(settings, "2/s")
    assert get("stw_a").status_code == 401
    assert get("stw_b").status_code == 401
    assert get(good_token).status_code == 429
    time.sleep(1.1)
    assert get(good_token).status_code == 200


def test_a_malformed_bearer_header_counts_as_a_failure(settings):
    set_rate(settings, "2/min")
    client = APIClient()
    for _ in range(2):
        assert client.get("/api/v1/projects/", HTTP_AUTHORIZATION="Bearer a b").status_code == 401
    assert client.get("/api/v1/projects/", HTTP_AUTHORIZATION="Bearer stw_x").status_code == 429


def test_forwarded_for_is_believed_only_behind_configured_proxies(settings, good_token):
    set_rate(settings, "2/min")
    for i in range(2):
        get("stw_x", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    # No proxies configured: a made-up header does not give a fresh address.
    assert get("stw_x", HTTP_X_FORWARDED_FOR="198.51.100.77").status_code == 429

    set_rate(settings, "2/min", NUM_PROXIES=1)
    # Behind one proxy, the address it saw (the header's last) is the client.
    assert get(good_token, HTTP_X_FORWARDED_FOR="198.51.100.77").status_code == 200
    for _ in range(2):
        get("stw_x", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.78")
    assert get(good_token, HTTP_X_FORWARDED_FOR="198.51.100.78").status_code == 429
    assert get(good_token, HTTP_X_FORWARDED_FOR="198.51.100.79").status_code == 200


def test_the_throttle_can_be_turned_off(settings):
    set_rate(settings, None)
    for i in range(30):
        assert get(f"stw_wrong{i}").status_code == 401
