from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"

    def ready(self) -> None:
        # Signal receivers, the analyses' job kinds, and the version page's analysis section.
        from governance import receivers, tasks, version_page  # noqa: F401

        version_page.register()
