from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"

    def ready(self) -> None:
        from core.audit import audit_sink_register

        # Signal receivers (promotion and analyses), the analyses' job kinds, and the version
        # page's analysis section.
        from governance import receivers, signals, tasks, version_page  # noqa: F401
        from governance.audit import audit_event_append

        # Lower apps report through core.audit; from here on every report is a chained row.
        audit_sink_register(audit_event_append)
        version_page.register()
