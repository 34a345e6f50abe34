"""A model version's fairness audit and SHAP explanation from the SDK.

    client = steward.Client()
    report = client.get_fairness_report("credit", "credit-scorer", 3)
    report["summary"]["sex"]["demographic_parity_ratio"]
    explanation = client.get_explanation("credit", "credit-scorer", "champion")
    explanation["global_importance"]          # {column: mean |SHAP|}, largest first

Both start on the server when a version passes its checks; until they finish, ``status`` says
where they are (``waiting_for_checks``, ``queued``, ``running``, then ``succeeded`` or
``failed``). ``wait=True`` polls until they end.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from steward._base import ClientBase

ENDED = ("succeeded", "failed", "not_applicable")


def _version_url(project: str, model: str, version: int | str) -> str:
    parts = (quote(str(project), safe=""), quote(str(model), safe=""), quote(str(version), safe=""))
    return "/api/v1/projects/{}/models/{}/versions/{}".format(*parts)


class ClientAnalyses(ClientBase):
    """Fairness and explanation calls of :class:`~steward.Client`."""

    def _analysis(self, url: str, wait: bool, timeout: float, params: dict | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            body = self._json("GET", url, params=params) if params else self._json("GET", url)
            if not wait or body["status"] in ENDED or time.monotonic() >= deadline:
                return body
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def get_fairness_report(self, project: str, model: str, version: int | str, *, wait: bool = False,
                            timeout: float = 600.0) -> dict[str, Any]:
        """The version's bias audit (``version`` is a number or an alias):
        ``{"status", "groups": [{"feature", "group", "count", "selection_rate", ...}],
        "summary": {feature: {"demographic_parity_difference", "demographic_parity_ratio",
        "equalized_odds_difference", "equalized_odds_ratio", "ci", ...}}, "verdicts": [...], ...}``.
        With several sensitive features, their intersection is one more feature named "a & b"."""
        return self._analysis(f"{_version_url(project, model, version)}/fairness/", wait, timeout)

    def get_explanation(self, project: str, model: str, version: int | str, *, wait: bool = False,
                        timeout: float = 600.0) -> dict[str, Any]:
        """The version's SHAP explanation: ``{"status", "explainer", "output", "base_value",
        "global_importance": {feature: value}, "rows": [{"input", "shap_values", "prediction"}],
        "additivity_ok", ...}``; for each row ``base_value + sum(shap_values) == prediction``,
        the named ``output`` ("log_odds", "probability" or "value")."""
        return self._analysis(f"{_version_url(project, model, version)}/explanation/", wait, timeout)

    def rerun_fairness_report(self, project: str, model: str, version: int | str, *,
                              dataset_version: int | None = None, target: str | None = None,
                              sensitive_features: list[str] | None = None,
                              positive_label: Any = None) -> dict[str, Any]:
        """Audit the version again (editor or above), optionally on a dataset version of your
        choice with its target and sensitive columns (for a model logged from a script)."""
        body: dict[str, Any] = {}
        if dataset_version is not None:
            body = {"dataset_version": int(dataset_version), "target": target}
            if sensitive_features is not None:
                body["sensitive_features"] = list(sensitive_features)
            if positive_label is not None:
                body["positive_label"] = positive_label
        return self._json("POST", f"{_version_url(project, model, version)}/fairness/", json_body=body)

    def explain_records(self, project: str, model: str, version: int | str, records: Any) -> dict[str, Any]:
        """SHAP values for up to 20 records (dicts or a DataFrame), with the explainer and
        background of the version's stored explanation."""
        from steward._registry import records_json

        return self._json("POST", f"{_version_url(project, model, version)}/explanation/rows/",
                          json_body={"records": records_json(records)})
