import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from reasoner_site.database import parse_database_url
from reasoner_site.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def test_it_parses_booleans_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAG", "yes")
    assert env_bool("FLAG") is True
    monkeypatch.setenv("FLAG", "0")
    assert env_bool("FLAG", True) is False
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG='maybe' is not a boolean"):
        env_bool("FLAG")


def test_it_parses_integers_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("N", "12")
    assert env_int("N", 1) == 12
    monkeypatch.setenv("N", "twelve")
    with pytest.raises(ImproperlyConfigured):
        env_int("N", 1)
    monkeypatch.setenv("HOSTS", "a.example, b.example,,")
    assert env_list("HOSTS") == ["a.example", "b.example"]


def test_it_parses_database_urls() -> None:
    config = parse_database_url("postgres://u:p%40ss@db.example:5433/work?sslmode=require")
    assert (config["NAME"], config["USER"], config["PASSWORD"], config["HOST"], config["PORT"]) == ("work", "u", "p@ss", "db.example", "5433")
    assert config["OPTIONS"] == {"sslmode": "require"}
    socket = parse_database_url("postgresql://postgres:@/postgres?host=/tmp/pg")
    assert socket["HOST"] == "/tmp/pg" and socket["OPTIONS"] == {}
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL is the only database"):
        parse_database_url("sqlite:///db.sqlite3")
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        parse_database_url("postgres://localhost:5432/")


def _settings_in_subprocess(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    clean.update(env)
    clean.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return subprocess.run(
        [sys.executable, "-c", "import reasoner_site.settings as s; print(s.DEBUG, s.ALLOWED_HOSTS)"],
        cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60,
    )


def test_it_fails_closed_without_a_secret_key_in_production() -> None:
    result = _settings_in_subprocess()
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in result.stderr


def test_it_refuses_a_short_production_secret_key() -> None:
    result = _settings_in_subprocess(DJANGO_SECRET_KEY="short")
    assert result.returncode != 0 and "at least 32 characters" in result.stderr


def test_it_allows_no_host_by_default_in_production() -> None:
    result = _settings_in_subprocess(DJANGO_SECRET_KEY="k" * 40)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False []"


def test_it_refuses_a_negative_or_unreadable_connection_age() -> None:
    for value in ("-1", "forever"):
        result = _settings_in_subprocess(DJANGO_SECRET_KEY="k" * 40, DJANGO_CONN_MAX_AGE=value)
        assert result.returncode != 0 and "DJANGO_CONN_MAX_AGE" in result.stderr


def test_it_serves_with_threaded_workers_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("WORKBENCH_WEB_THREADS", raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["worker_class"] == "gthread" and config["workers"] >= 2 and config["threads"] == 8
    monkeypatch.setenv("WEB_CONCURRENCY", "0")
    with pytest.raises(ImproperlyConfigured, match="WEB_CONCURRENCY"):
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))
