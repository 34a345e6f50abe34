"""Signals monitoring sends for the app above it (governance) to act on."""

from django.dispatch import Signal

# A monitor's retraining registered a new model version (its checks are queued; no alias moved).
# Sent after the version commits. Governance opens a promotion request for a reviewer on it.
# Arguments: version (the ModelVersion), monitor (the Monitor that retrained).
retrained_version_created = Signal()
