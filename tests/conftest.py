"""A fixed cast: Alice and Bob read films, Carol curates, Dave researches, Eve has no role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    """Each test gets its own image store and render cache."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGE_STORE = tmp_path / "media" / "images"
    settings.RENDER_CACHE = tmp_path / "media" / "renders"
    settings.IMPORT_REPORTS = tmp_path / "media" / "reports"


def _user(username: str, role: str | None) -> Any:
    from django.contrib.auth import get_user_model

    from annotation import services

    user = get_user_model().objects.create_user(username=username, password=f"{username}-password")
    if role:
        services.set_role(user, role)
    return user


@pytest.fixture
def alice(db: Any) -> Any:
    return _user("alice", "radiologist")


@pytest.fixture
def bob(db: Any) -> Any:
    return _user("bob", "radiologist")


@pytest.fixture
def carol(db: Any) -> Any:
    return _user("carol", "curator")


@pytest.fixture
def dave(db: Any) -> Any:
    return _user("dave", "researcher")


@pytest.fixture
def eve(db: Any) -> Any:
    return _user("eve", None)


@pytest.fixture
def make_chain(db: Any) -> Callable[..., Any]:
    """Build a case with a chain of steps, optionally assigned to readers."""
    from annotation.models import Assignment, Case, Chain, Report, Step

    counter = {"n": 0}

    def make(
        steps: tuple[str, ...] = ("Look at the costophrenic angles.", "The right angle is blunted.", "Answer: A) Yes."),
        readers: tuple[Any, ...] = (),
        status: str = Chain.Status.PENDING,
        task_type: str = "binary",
        images: tuple[Any, ...] = (),
    ) -> Chain:
        counter["n"] += 1
        report = Report.objects.create(text="FINDINGS: Right pleural effusion. IMPRESSION: Effusion.")
        case = Case.objects.create(
            source="test", external_id=f"case-{counter['n']}", content_hash=f"{counter['n']:064d}",
            task_type=task_type, question="Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No",
            options=[{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}], answer=["A"], report=report,
        )
        for position, image in enumerate(images):
            case.case_images.create(image=image, position=position)
        chain = Chain.objects.create(case=case, origin=Chain.Origin.MINED_LLM, status=status)
        for position, text in enumerate(steps, start=1):
            Step.objects.create(chain=chain, position=position, text=text)
        for reader in readers:
            Assignment.objects.create(chain=chain, reader=reader)
        return chain

    return make
