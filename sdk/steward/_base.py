"""What every part of :class:`steward.Client` stands on: settings, one HTTP session, JSON calls."""

from __future__ import annotations

from typing import Any

from steward import config
from steward.errors import ConfigurationError
from steward.transport import Transport


class ClientBase:
    """One server and one identity: the settings, the HTTP session and the project default.

    The method groups of :class:`steward.Client` (runs, datasets, registry)
    derive from this class, so each of them declares what it relies on.
    """

    settings: config.Settings
    _transport: Transport

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 project: str | None = None, **settings: Any) -> None:
        self.settings = config.resolve(url=url, token=token, project=project, **settings)
        self._transport = Transport(
            self.settings.url, self.settings.token, retry_timeout=self.settings.retry_timeout,
            connect_timeout=self.settings.connect_timeout, read_timeout=self.settings.read_timeout,
        )

    @property
    def url(self) -> str:
        """The server's URL."""
        return self.settings.url

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._transport.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _project(self, project: str | None) -> str:
        slug = project or self.settings.project
        if not slug:
            raise ConfigurationError(
                "No project given: pass project=..., call steward.configure(project=...), "
                "set STEWARD_PROJECT or run `steward login --project ...`."
            )
        return slug
