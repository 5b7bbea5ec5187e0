"""Database configuration: PostgreSQL only.

`DATABASE_URL` (postgres://user:password@host:port/name) when set; otherwise an embedded
PostgreSQL started through `pgserver`, with its data kept under var/pgdata so a fresh
machine needs no server and the data survives restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def parse_database_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported: PostgreSQL is the only database"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://host:5432/NAME)")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = unquote(parts.hostname or "")
    # A socket directory may be given as ?host=/path (libpq style).
    if "host" in options:
        host = options.pop("host")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def embedded_database_url(data_dir: Path) -> str:
    """Start (or reuse) the embedded server for this data directory and return its URI."""
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (it then uses /tmp): harmless here.
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: only the embedded mode needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
    return server.get_uri("postgres")
