import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation import services
from annotation.models import Role


class Command(BaseCommand):
    help = "Create a user with a role (radiologist, curator, researcher) and print the password."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="Default: a random one, printed once")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, username: str, role: str, password: str | None, email: str, **options: Any) -> None:
        users = get_user_model()
        if users.objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists")
        password = password or secrets.token_urlsafe(12)
        user = users.objects.create_user(username=username, email=email, password=password)
        services.set_role(user, role)
        self.stdout.write(f"Created {role} {username} with password: {password}")
