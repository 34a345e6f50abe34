"""Walk the audit log's hash chain: exit 0 with the count when intact, 1 naming the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from governance.audit import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exits 1 and names the first broken link if it is not intact."

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(
                f"Audit log broken at event {report.broken.event_id}: {report.broken.reason}. "
                f"{report.checked} event(s) before it verified.",
                returncode=1,
            )
        self.stdout.write(f"Audit log intact: {report.checked} event(s) verified.")
