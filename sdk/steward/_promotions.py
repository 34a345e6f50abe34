"""Promotion requests and reviews from the SDK.

    client = steward.Client()
    request = client.request_promotion("credit", "credit-scorer", 3, "champion",
                                       "Better recall on the 2026 holdout; fairness audit attached.")
    # ...a reviewer, with their own token:
    steward.Client(token=reviewer_token).review_promotion(request["id"], "approve", "Looks right.")

A protected alias moves only when every check of the model's policy has passed and enough
reviewers (never the requester or the version's author) have approved.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from steward._base import ClientBase

DECISIONS = ("approve", "reject", "request_changes")


def _path(value: Any) -> str:
    return quote(str(value), safe="")


class ClientPromotions(ClientBase):
    """Promotion calls of :class:`~steward.Client`."""

    def request_promotion(self, project: str, model: str, version: int, alias: str,
                          justification: str) -> dict[str, Any]:
        """Ask for the protected ``alias`` to move to ``version``. Returns the request:
        ``{"id", "status", "checks", "reasons", "approvals_required", "approvals", ...}``; its
        ``status`` is ``checks_running``, ``blocked`` (see ``reasons``) or ``in_review``."""
        url = f"/api/v1/projects/{_path(project)}/models/{_path(model)}/promotion-requests/"
        body = {"version": int(version), "alias": alias, "justification": justification}
        return self._json("POST", url, json_body=body)

    def get_promotion_request(self, request_id: int) -> dict[str, Any]:
        """One promotion request: its ``status``, ``checks`` (each policy verdict), ``reviews``..."""
        return self._json("GET", f"/api/v1/promotion-requests/{int(request_id)}/")

    def review_promotion(self, request_id: int, decision: str, comment: str = "") -> dict[str, Any]:
        """``decision``: "approve", "reject" (a comment is required) or "request_changes".
        Returns ``{"review", "request"}``; ``request["status"]`` is ``approved`` once the alias moved."""
        return self._json("POST", f"/api/v1/promotion-requests/{int(request_id)}/reviews/",
                          json_body={"decision": decision, "comment": comment})
