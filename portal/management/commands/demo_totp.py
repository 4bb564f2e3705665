"""``manage.py demo_totp EMAIL``: the current 6-digit TOTP code of a demo user, for logins without a phone."""

import time
from typing import Any

from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from allauth.mfa.utils import decrypt
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.management.commands.seed_demo import DEMO_USERS, demo_user_for_email


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo user (only the accounts seed_demo creates)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email", help="e.g. maintainer@demo.medharm.local")

    def handle(self, *args: object, **options: Any) -> None:
        # Demo accounts only: printing the codes of real accounts would undo their second factor.
        spec = demo_user_for_email(options["email"])
        if spec is None:
            raise CommandError(
                f"{options['email']} is not a demo account; demo accounts with a second factor: "
                + ", ".join(s.email for s in DEMO_USERS if s.totp_secret)
            )
        authenticator = Authenticator.objects.filter(
            user__email=spec.email, type=Authenticator.Type.TOTP
        ).first()
        if authenticator is None:
            raise CommandError(
                f"{spec.email} has no TOTP authenticator; run `.venv/bin/python manage.py seed_demo`."
            )
        secret = decrypt(authenticator.data["secret"])
        now = int(time.time())
        counter, elapsed = divmod(now, mfa_settings.TOTP_PERIOD)
        code = format_hotp_value(hotp_value(secret, counter))
        self.stdout.write(code)
        self.stderr.write(f"valid for about {mfa_settings.TOTP_PERIOD - elapsed} more seconds")
