"""Steward's Python client: log runs from training scripts."""

__version__ = "0.1.0"
