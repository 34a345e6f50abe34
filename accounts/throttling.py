"""Limits on guessing credentials: who the client is, and failed bearer tokens per address.

Failed log-ins on the login pages are counted by django-axes (settings.AXES_*), which
asks ``client_address`` for the address, so both limits agree on who a client is.
"""

from __future__ import annotations

import datetime as dt
import time

from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def client_address(request) -> str | None:
    """The client's address: REMOTE_ADDR, or with NUM_PROXIES proxies in front, the one they saw.

    DRF's rule, so an X-Forwarded-For header a client made up is never believed.
    """
    return BaseThrottle().get_ident(request)


class TokenFailureThrottle(SimpleRateThrottle):
    """Failed bearer-token authentications per client address (DEFAULT_THROTTLE_RATES["token_failure"]).

    Only failures are counted. Once an address has failed the rate's number of times
    within its period, every bearer-token request from it is refused until the oldest
    failure leaves the period, so a guess is not even looked up.
    """

    scope = "token_failure"

    def get_rate(self) -> str | None:
        # Read per instance, not from the class attribute DRF binds at import, so a
        # changed setting applies at once.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}

    def _load(self, request) -> None:
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [t for t in self.cache.get(self.key, ()) if t > self.now - self.duration]

    def refused_for(self, request) -> float | None:
        """Seconds until this address may try again, or None when it may try now."""
        if self.rate is None:
            return None
        self._load(request)
        if len(self.history) >= self.num_requests:
            return self.wait()
        return None

    def failure_record(self, request) -> float | None:
        """Count a failure; the seconds this address must now wait, if it is refused."""
        if self.rate is None:
            return None
        self._load(request)
        if len(self.history) < self.num_requests:
            self.history.insert(0, self.now)  # newest first, as SimpleRateThrottle keeps it
            self.cache.set(self.key, self.history, self.duration)
        if len(self.history) >= self.num_requests:
            return self.wait()
        return None


# Addresses this process has seen refused, and until when. Successful requests are the hot
# path (every prediction): they read the shared counts only when their address is here,
# so an address with no recent failures costs one dict lookup, not a cache round trip.
# Another process learns of a refusal at its first failure from that address.
_refused_here: dict[str | None, float] = {}
_REFUSED_HERE_MAX = 10_000


def token_failure_check(request) -> None:
    """Raise Throttled (429 with Retry-After) when the client has failed too often."""
    if not _refused_here:
        return
    address = client_address(request)
    if address not in _refused_here:
        return
    wait = TokenFailureThrottle().refused_for(request)  # the shared counts decide
    if wait is None:
        _refused_here.pop(address, None)
        return
    raise Throttled(wait=wait, detail="Too many failed authentication attempts from this address.")


def token_failure_record(request) -> None:
    wait = TokenFailureThrottle().failure_record(request)
    if wait is None:
        return
    now = time.time()
    if len(_refused_here) >= _REFUSED_HERE_MAX:
        for address, until in list(_refused_here.items()):
            if until <= now:
                _refused_here.pop(address, None)
        if len(_refused_here) >= _REFUSED_HERE_MAX:
            _refused_here.clear()  # many addresses at once: the shared counts still hold
    _refused_here[client_address(request)] = now + wait


def login_lockout_ends(request, credentials: dict | None) -> dt.datetime | None:
    """When the lockout django-axes just applied to this log-in ends (None if it is not locked).

    Axes counts the failures newer than the cool-off for each lockout parameter (this
    username, this address); a parameter is unlocked once enough of its failures have
    aged past the cool-off that fewer than the limit remain.
    """
    from axes.handlers.database import AxesDatabaseHandler  # needs the app registry ready
    from axes.helpers import get_cool_off, get_failure_limit

    cool_off = get_cool_off(request)
    if cool_off is None:
        return None
    limit = get_failure_limit(request, credentials)
    ends = []
    for attempts in AxesDatabaseHandler().get_user_attempts(request, credentials):
        failures = 0
        newest_first = attempts.order_by("-attempt_time")
        for count, at in newest_first.values_list("failures_since_start", "attempt_time"):
            failures += count
            if failures >= limit:
                ends.append(at + cool_off)
                break
    return max(ends, default=None)
