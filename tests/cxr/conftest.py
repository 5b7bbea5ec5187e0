"""cxr is pure Python: its tests run without Django (``-p no:django``), so they opt out of the
repository-wide autouse fixture that points Django's media settings at a temporary folder."""

import pytest


@pytest.fixture(autouse=True)
def _media() -> None:
    """Overrides tests/conftest.py's fixture of the same name, which needs pytest-django."""
