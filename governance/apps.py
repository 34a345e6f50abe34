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

        from django.urls import reverse

        from core.links import PageLink, page_link_register

        page_link_register("project", PageLink(
            "Audit log", lambda project: reverse("audit:log", args=[project.slug]), order=50))
