"""What every Celery task shares: retry what is transient, never a bad input.

A lost or refused database connection (a failover, a restart, a full pool) is worth retrying
with backoff; a ValidationError is the job's own failure, recorded on its row, and retrying it
would only fail again.
"""

from django.db import InterfaceError, OperationalError

TRANSIENT_ERRORS = (OperationalError, InterfaceError)

TASK_OPTIONS = {
    "acks_late": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 5,
}
