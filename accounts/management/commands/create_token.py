import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label to recognise the token by.")
        parser.add_argument(
            "--expires-in-days", type=int, default=None,
            help="Days until the token stops working (default: never).",
        )

    def handle(self, *args, username: str, name: str, expires_in_days: int | None, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        expires_at = None
        if expires_in_days is not None:
            if expires_in_days < 1:
                raise CommandError("--expires-in-days must be 1 or more.")
            expires_at = timezone.now() + dt.timedelta(days=expires_in_days)
        try:
            token, raw = api_token_create(user=user, name=name, expires_at=expires_at)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if options["verbosity"] >= 1:
            until = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else ""
            self.stderr.write(
                f"Token '{token.name}' for {username}{until}. It is shown only now; store it safely:"
            )
        self.stdout.write(raw)
