from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"

    def ready(self) -> None:
        from core.audit import audit_sink_register
        from governance import signals  # noqa: F401 - connects the promotion receivers
        from governance.audit import audit_event_append

        # Lower apps report through core.audit; from here on every report is a chained row.
        audit_sink_register(audit_event_append)
