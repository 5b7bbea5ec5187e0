"""API authentication: DRF's token check, with the user's roles read in the same query."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from annotation import services


@cache
def _token_query() -> tuple[str, list[str]]:
    """SQL for the user holding a token key, with their group names and the token's creation
    time last; and the user's field names, in the order of its columns.

    Written out, not built by the ORM: every API request runs it, and composing the same
    select_related query each time cost more CPU than everything else in the token check.
    """
    quote = connection.ops.quote_name
    user_model = get_user_model()
    fields = user_model._meta.concrete_fields
    columns = ", ".join(f"u.{quote(f.column)}" for f in fields)
    membership = user_model.groups.through._meta.db_table  # type: ignore[attr-defined]
    sql = (
        f"SELECT {columns}, "
        f"ARRAY(SELECT g.name FROM {quote(Group._meta.db_table)} g "
        f"JOIN {quote(membership)} m ON m.group_id = g.id WHERE m.user_id = u.id), t.created "
        f"FROM {quote(Token._meta.db_table)} t "
        f"JOIN {quote(user_model._meta.db_table)} u ON u.id = t.user_id WHERE t.key = %s"
    )
    return sql, [f.attname for f in fields]


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token KEY`, as DRF's, in one query instead of two.

    Every API request asks for the user's roles (which chains they see, whether they may
    write), so the group names come back with the user and are kept on it.
    """

    model = Token

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        sql, names = _token_query()
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        *values, group_names, created = row
        user = get_user_model().from_db(connection.alias, names, values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        services.remember_roles(user, group_names)
        return user, Token(key=key, user=user, created=created)
