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
        page_link_register("registered-model", PageLink(
            "protection changes", element_id="protection-link",
            url_for=lambda model: reverse("audit:protection", args=[model.project.slug, model.name])))
        page_link_register("model-version", PageLink(
            "Model card", element_id="model-card-link",
            url_for=lambda version: reverse(
                "cards:card", args=[version.model.project.slug, version.model.name, version.version])))
