"""Guessing passwords: failed log-ins lock a username and an address out (django-axes)."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-Steward-123"  # tests/factories.py


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=10)


def log_in(client, username, password, url="/accounts/login/", address="127.0.0.1", **extra):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_wrong_passwords_lock_the_user_out_even_with_the_right_one_until_reset():
    UserFactory(username="alice")
    client = Client()
    for _ in range(2):
        response = log_in(client, "alice", "guess")
        assert response.status_code == 200
        assert "lockout" not in response.content.decode()
    locked = log_in(client, "alice", "guess")
    page = locked.content.decode()
    assert locked.status_code == 429
    assert 'id="lockout"' in page and "Try again in 10 minutes" in page
    assert 0 < int(locked["Retry-After"]) <= 600
    assert 'name="username"' in page  # the login form is still there to use later

    refused = log_in(client, "alice", PASSWORD)
    assert refused.status_code == 429 and not logged_in(client)

    call_command("axes_reset", verbosity=0)
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert logged_in(client)


def test_the_lock_ends_once_the_failures_are_older_than_the_cool_off():
    UserFactory(username="alice")
    client = Client()
    for _ in range(3):
        log_in(client, "alice", "guess")
    last_failure = AccessAttempt.objects.get().attempt_time
    assert log_in(client, "alice", PASSWORD).status_code == 429
    assert log_in(client, "alice", "guess").status_code == 429
    # Attempts while locked are not counted, so they do not prolong the lock.
    assert AccessAttempt.objects.get().attempt_time == last_failure
    assert AccessAttempt.objects.get().failures_since_start == 3
    # Time passes: the failures age past the cool-off.
    AccessAttempt.objects.update(attempt_time=last_failure - dt.timedelta(minutes=10, seconds=1))
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert logged_in(client)


def test_an_address_is_locked_for_every_username_and_a_username_from_every_address():
    UserFactory(username="alice")
    UserFactory(username="bob")
    client = Client()
    for name in ("x1", "x2", "x3"):  # one address trying many names
        log_in(client, name, "guess", address="10.0.0.1")
    assert log_in(client, "bob", PASSWORD, address="10.0.0.1").status_code == 429
    assert log_in(Client(), "bob", PASSWORD, address="10.0.0.2").status_code == 302

    for address in ("10.0.1.1", "10.0.1.2", "10.0.1.3"):  # one name tried from many addresses
        log_in(Client(), "alice", "guess", address=address)
    assert log_in(Client(), "alice", PASSWORD, address="10.0.1.9").status_code == 429


def test_a_made_up_forwarded_for_header_does_not_escape_the_address_lock():
    UserFactory(username="bob")
    client = Client()
    for i in range(3):
        log_in(client, f"x{i}", "guess", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    assert log_in(client, "bob", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_the_admin_login_is_locked_too_and_staff_see_and_unlock_it():
    UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(3):
        log_in(client, "root", "guess", url="/admin/login/")
    locked = log_in(client, "root", PASSWORD, url="/admin/login/")
    assert locked.status_code == 429 and 'id="lockout"' in locked.content.decode()
    assert not logged_in(client)

    # Another administrator sees the lock in the admin and lifts it.
    admin = Client()
    admin.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "root" in listing.content.decode() and "Locked Out" in listing.content.decode()
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    response = admin.post("/admin/axes/accessattempt/",
                          {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()

    assert log_in(client, "root", PASSWORD, url="/admin/login/").status_code == 302
    assert logged_in(client)


def test_a_success_below_the_limit_does_not_wipe_the_failures():
    """Logging in to one's own account must not reset the count of other names tried."""
    UserFactory(username="mallory")
    UserFactory(username="bob")
    client = Client()
    log_in(client, "bob", "guess1")
    log_in(client, "bob", "guess2")
    assert log_in(Client(), "mallory", PASSWORD).status_code == 302
    assert log_in(client, "bob", "guess3").status_code == 429
    assert log_in(client, "bob", PASSWORD).status_code == 429
