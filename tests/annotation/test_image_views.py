"""Image previews through the web app, and patient identifiers that must never leave it."""

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from annotation import synthetic
from annotation.importing import import_cases
from annotation.models import Case, Chain, Image

FAKE_VALUES = [v for v in synthetic.FAKE_IDENTIFIERS.values() if len(v) > 3]


@pytest.fixture
def dicom_case(db: Any, tmp_path: Path, alice: Any) -> Chain:
    folder = tmp_path / "in"
    folder.mkdir()
    synthetic.write_chest_dicom(folder / "scan.dcm", seed=3, size=256, monochrome1=True)
    record = {
        "item_id": "x1", "question": "Does this chest X-ray show pneumothorax? Options:\nA) Yes\nB) No",
        "answer": "B", "reason_steps": ["No pleural line.", "Answer: B."],
        "original_report": "No pneumothorax.", "image_path": ["scan.dcm"],
    }
    (tmp_path / "c.jsonl").write_text(json.dumps(record) + "\n")
    result = import_cases(tmp_path / "c.jsonl", source="t", image_dir=folder)
    assert result.imported == 1, result.problems
    chain = Chain.objects.get()
    chain.assignments.create(reader=alice)
    return chain


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_renders_and_caches_previews_for_people_who_may_see_the_case(
    dicom_case: Chain, alice: Any, bob: Any, settings: Any
) -> None:
    image = dicom_case.case.images.get()
    url = reverse("annotation:image-render", args=[image.uuid])
    first = _client(alice).get(url)
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    assert len(list(settings.RENDER_CACHE.rglob("*.png"))) == 1
    again = _client(alice).get(url)
    assert again.content == first.content
    assert _client(bob).get(url).status_code == 404
    inverted = _client(alice).get(url + "?invert=1")
    assert inverted.content != first.content
    windowed = _client(alice).get(url + "?wc=1000&ww=400&size=512")
    assert windowed.status_code == 200
    assert _client(alice).get(url + "?wc=abc&ww=1").status_code == 400
    assert _client(alice).get(url + "?size=99999").status_code == 400


def test_it_renders_monochrome1_inverted(dicom_case: Chain, alice: Any, tmp_path: Path) -> None:
    """The synthetic MONOCHROME1 file stores the anatomy inverted: lungs must still show dark."""
    image = dicom_case.case.images.get()
    png = _client(alice).get(reverse("annotation:image-render", args=[image.uuid])).content
    (tmp_path / "r.png").write_bytes(png)
    pixels = PILImage.open(tmp_path / "r.png").convert("L")
    w, h = pixels.size
    lung = pixels.getpixel((int(w * 0.3), int(h * 0.45)))
    spine = pixels.getpixel((w // 2, int(h * 0.45)))
    assert lung < spine


def test_it_keeps_dicom_identifiers_out_of_pages_api_and_database(
    dicom_case: Chain, alice: Any, carol: Any
) -> None:
    from rest_framework.test import APIClient

    image = dicom_case.case.images.get()
    texts = [
        _client(alice).get(reverse("annotation:chain", args=[dicom_case.uuid])).content.decode(),
        _client(carol).get(reverse("annotation:curator")).content.decode(),
    ]
    api = APIClient()
    api.force_authenticate(carol)
    texts.append(json.dumps(api.get(f"/api/v1/cases/{dicom_case.case.uuid}/").json()))
    texts.append(json.dumps(api.get(f"/api/v1/chains/{dicom_case.uuid}/").json()))
    row = Image.objects.filter(pk=image.pk).values().get()
    texts.append(json.dumps(row, default=str))
    texts.append(json.dumps(list(Case.objects.values()), default=str))
    for text in texts:
        for value in FAKE_VALUES:
            assert value not in text, value
    assert image.photometric == "MONOCHROME1" and image.width == 256


def test_it_renders_the_next_case_previews_in_the_background(
    transactional_db: Any, tmp_path: Path, alice: Any, make_chain: Any, settings: Any
) -> None:
    from django.core.management import call_command

    from annotation.importing import store_image

    synthetic.write_chest_png(tmp_path / "a.png", seed=1, size=64)
    image = store_image(tmp_path / "a.png")
    make_chain(readers=(alice,))
    make_chain(readers=(alice,), images=(image,))
    _client(alice).post(reverse("annotation:next-case"))  # hands out the first, warms the second
    assert not list(settings.RENDER_CACHE.rglob("*.png"))
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    assert len(list(settings.RENDER_CACHE.rglob("*.png"))) == 1
