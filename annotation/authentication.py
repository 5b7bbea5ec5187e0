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
def _token_query() -> tuple[str, list[str], list[Any]]:
    """SQL for the user holding a token key, with their group names and the token's creation
    time last; and the user's field names and converters (`services.model_columns`).

    Written out, not built by the ORM: every API request runs it, and composing the same
    select_related query each time cost more CPU than everything else in the token check.
    """
    user_model = get_user_model()
    columns, names, converters = services.model_columns(user_model, "u")
    membership = user_model.groups.through  # type: ignore[attr-defined]
    table, col = services.sql_table, services.sql_column
    user_id = col(user_model, user_model._meta.pk.name)
    sql = (
        f"SELECT {columns}, "
        f"ARRAY(SELECT g.{col(Group, 'name')} FROM {table(Group)} g "
        f"JOIN {table(membership)} m ON m.{col(membership, 'group')} = g.{col(Group, 'id')} "
        f"WHERE m.{col(membership, 'user')} = u.{user_id}), t.{col(Token, 'created')} "
        f"FROM {table(Token)} t "
        f"JOIN {table(user_model)} u ON u.{user_id} = t.{col(Token, 'user')} "
        f"WHERE t.{col(Token, 'key')} = %s"
    )
    return sql, names, converters


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token KEY`, as DRF's, in one query instead of two.

    Every API request asks for the user's roles (which chains they see, whether they may
    write), so the group names come back with the user and are kept on it.
    """

    model = Token

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        sql, names, converters = _token_query()
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        *values, group_names, created = row
        user = services.instance_from_row(get_user_model(), names, converters, values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        services.remember_roles(user, group_names)
        return user, Token(key=key, user=user, created=created)
