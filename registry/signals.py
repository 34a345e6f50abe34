"""Signals the registry sends for apps above it to act on (apps depend downward only).

The governance app's audit log subscribes to these; the registry never imports it.
"""

from django.dispatch import Signal

# An instance administrator trusted a pickle/joblib sha256 in a project (the audit event
# "pickle hash trusted"). Sent inside the transaction that records the trust, so what a
# receiver writes commits or rolls back with it. Arguments: trust (the TrustedModelHash,
# with project, sha256, trusted_by, trusted_at and note), user.
pickle_hash_trusted = Signal()

# A model version's status changed (pending_checks -> ready or failed). Sent after the change
# commits, so a receiver that enqueues work (governance's fairness audit and explanation) sees
# the new status. Arguments: version (the ModelVersion, reloaded), old_status, new_status.
model_version_status_changed = Signal()
