import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation import services
from annotation.models import Role


def _messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Create a user with a role (radiologist, curator, researcher, adjudicator) and print the password."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="Default: a random one, printed once")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, username: str, role: str, password: str | None, email: str, **options: Any) -> None:
        users = get_user_model()
        # The model's own checks (blank, length, the username validator), as the admin's form
        # runs them: the database would refuse some (a 200-character name) with a traceback and
        # take others ("bad name!") that no login form accepts.
        for name, value in (("username", username), ("email", email)):
            try:
                users._meta.get_field(name).clean(value, None)
            except ValidationError as exc:
                raise CommandError(f"{name} {value!r}: {_messages(exc)}") from None
        if users.objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists")
        if password is not None:
            try:
                validate_password(password, users(username=username, email=email))
            except ValidationError as exc:
                raise CommandError(f"--password: {_messages(exc)}") from None
        password = password or secrets.token_urlsafe(12)
        user = users.objects.create_user(username=username, email=email, password=password)
        services.set_role(user, role)
        self.stdout.write(f"Created {role} {username} with password: {password}")
