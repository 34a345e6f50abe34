"""Run search: a small filter language (MLflow's) over a project's runs.

    parser      the filter and sort-key grammar, with position-aware errors
    compiler    parsed conditions and sort keys to a Run queryset
    backends    what differs between PostgreSQL and SQLite, chosen from the connection
    pagination  keyset page tokens
    runs        the entry point: ``runs_search_rows`` and ``runs_search_count``
"""

from experiments.search.parser import Condition, Group, OrderKey, parse_filter, parse_order_by
from experiments.search.runs import (
    ACTIVE_ONLY,
    ALL,
    DEFAULT_MAX_RESULTS,
    DELETED_ONLY,
    MAX_RESULTS_LIMIT,
    VIEW_TYPES,
    experiment_ids_for,
    runs_from_rows,
    runs_search_count,
    runs_search_rows,
    view_type_clean,
)

__all__ = [
    "ACTIVE_ONLY", "ALL", "DEFAULT_MAX_RESULTS", "DELETED_ONLY", "MAX_RESULTS_LIMIT", "VIEW_TYPES",
    "Condition", "Group", "OrderKey", "experiment_ids_for", "parse_filter", "parse_order_by",
    "runs_from_rows", "runs_search_count", "runs_search_rows", "view_type_clean",
]
