from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotation import demo


class Command(BaseCommand):
    help = (
        "Create demo users (one per role), a dozen demo cases assigned to the demo radiologist, "
        "and two demo model runs to compare"
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="Allow with DJANGO_DEBUG off")

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("Demo users have published passwords: run with DJANGO_DEBUG=1 (or --force)")
        result = demo.seed()
        if result is None:
            self.stdout.write("Demo cases already present.")
        else:
            self.stdout.write(result.summary())
        for run in demo.seed_runs():
            self.stdout.write(f"Model run {run.run.name}: {run.summary()}")
        self.stdout.write("Demo logins (username / password / role):")
        for username, role, password in demo.USERS:
            self.stdout.write(f"  {username} / {password} / {role}")
