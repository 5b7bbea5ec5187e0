"""The Exports page, its background job, downloads, comparison and the snapshot API."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from annotation.exporting import ExportOptions, export
from annotation.models import ExportSnapshot, Job
from tests.annotation.test_export import reviewed_chain


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def snapshot(make_chain: Any, alice: Any, tmp_path: Path) -> ExportSnapshot:
    reviewed_chain(make_chain, alice)
    return export(ExportOptions(formats=("sft", "prm")), tmp_path / "snap")


def test_it_shows_the_exports_page_and_its_fragment(carol: Any, snapshot: ExportSnapshot) -> None:
    client = client_for(carol)
    page = client.get("/exports/")
    assert page.status_code == 200
    assert b'id="export-form"' in page.content and b'data-snapshot="v1"' in page.content
    fragment = client.get("/exports/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    assert fragment.content.lstrip().startswith(b'<section class="card" id="snapshot-list">')


def test_it_lets_radiologists_and_users_without_a_role_see_no_export(alice: Any, eve: Any, snapshot: ExportSnapshot) -> None:
    for user in (alice, eve):
        client = client_for(user)
        for url in ("/exports/", f"/exports/{snapshot.uuid}/", f"/exports/{snapshot.uuid}/download/",
                    f"/exports/{snapshot.uuid}/files/sft/train.jsonl", "/api/v1/snapshots/",
                    f"/api/v1/snapshots/{snapshot.uuid}/files/sft/train.jsonl"):
            assert client.get(url).status_code == 403, (user, url)
        assert client.post("/exports/", {"formats": ["sft"], "image_size": 512}).status_code == 403
        assert client.post("/api/v1/snapshots/", {}, content_type="application/json").status_code == 403
    assert ExportSnapshot.objects.count() == 1


def test_it_lets_researchers_download_but_not_start_exports(dave: Any, snapshot: ExportSnapshot) -> None:
    client = client_for(dave)
    assert client.get("/exports/").status_code == 200
    assert b'id="export-form"' not in client.get("/exports/").content
    assert client.get(f"/exports/{snapshot.uuid}/files/prm/train.jsonl").status_code in (200, 404)
    assert client.post("/exports/", {"formats": ["sft"], "image_size": 512}).status_code == 403
    assert client.post("/api/v1/snapshots/", {"formats": ["sft"]}, content_type="application/json").status_code == 403


def test_it_runs_an_export_as_a_background_job_with_progress(transactional_db: Any, make_chain: Any, alice: Any, carol: Any, settings: Any, tmp_path: Path) -> None:
    reviewed_chain(make_chain, alice)
    client = client_for(carol)
    response = client.post("/exports/", {"formats": ["sft", "grpo"], "status": ["verified"], "image_size": 256},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and b'hx-trigger="every 1s"' in response.content
    snapshot = ExportSnapshot.objects.get()
    assert snapshot.status == "pending" and snapshot.job.status == Job.Status.QUEUED
    row = client.get(f"/exports/{snapshot.uuid}/row/", headers={"HX-Request": "true"})
    assert b"<progress" in row.content and b"every 1s" in row.content
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    snapshot.refresh_from_db()
    assert snapshot.status == "done" and snapshot.job.status == Job.Status.DONE
    assert snapshot.options["formats"] == ["sft", "grpo"] and snapshot.options["image_size"] == 256
    assert Path(snapshot.path, "grpo", "train.parquet").exists() or Path(snapshot.path, "grpo", "test.parquet").exists()
    row = client.get(f"/exports/{snapshot.uuid}/row/", headers={"HX-Request": "true"})
    assert b"every 1s" not in row.content and b"Download zip" in row.content


def test_it_shows_form_errors_inline(carol: Any) -> None:
    response = client_for(carol).post("/exports/", {"image_size": 3}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Retarget"] == "#export-form"
    assert b"errorlist" in response.content and not ExportSnapshot.objects.exists()
    page = client_for(carol).post("/exports/", {"image_size": 3})
    assert page.status_code == 200 and b"errorlist" in page.content


def test_it_streams_the_snapshot_as_a_zip(carol: Any, snapshot: ExportSnapshot) -> None:
    response = client_for(carol).get(f"/exports/{snapshot.uuid}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"snapshot-v1/manifest.json", "snapshot-v1/README.md", "snapshot-v1/sft/train.jsonl", "snapshot-v1/prm/test.parquet"} <= names
    for entry in snapshot.files:
        assert archive.read(f"snapshot-v1/{entry['path']}") == Path(snapshot.path, entry["path"]).read_bytes()


def test_it_serves_listed_files_only(carol: Any, snapshot: ExportSnapshot) -> None:
    client = client_for(carol)
    card = client.get(f"/exports/{snapshot.uuid}/files/README.md")
    assert card.status_code == 200 and b"snapshot v1" in b"".join(card.streaming_content)
    assert client.get(f"/exports/{snapshot.uuid}/files/../../etc/passwd").status_code == 404
    assert client.get(f"/exports/{snapshot.uuid}/files/nothing.jsonl").status_code == 404
    page = client.get(f"/exports/{snapshot.uuid}/")
    assert page.status_code == 200 and b"sft/train.jsonl" in page.content


def test_it_compares_two_snapshots_on_a_page(carol: Any, make_chain: Any, snapshot: ExportSnapshot, tmp_path: Path) -> None:
    added = make_chain(status="verified")
    newer = export(ExportOptions(formats=("sft", "prm")), tmp_path / "newer")
    page = client_for(carol).get(f"/exports/compare/?old={snapshot.uuid}&new={newer.uuid}")
    assert page.status_code == 200
    assert b'data-count="added">1<' in page.content and str(added.uuid).encode() in page.content
    assert client_for(carol).get("/exports/compare/?old=nonsense&new=").status_code == 404


def test_it_lists_creates_and_fetches_snapshots_through_the_api(carol: Any, snapshot: ExportSnapshot) -> None:
    client = client_for(carol)
    listed = client.get("/api/v1/snapshots/").json()["results"]
    assert [s["uuid"] for s in listed] == [str(snapshot.uuid)]
    detail = client.get(f"/api/v1/snapshots/{snapshot.uuid}/").json()
    entry = next(f for f in detail["files"] if f["path"] == "sft/train.jsonl")
    fetched = client.get(entry["url"])
    assert fetched.status_code == 200 and b"".join(fetched.streaming_content) == Path(snapshot.path, "sft/train.jsonl").read_bytes()
    created = client.post("/api/v1/snapshots/", {"formats": ["prm"], "status": ["verified"], "image_size": 128},
                          content_type="application/json")
    assert created.status_code == 202 and created.json()["status"] == "pending" and created.json()["number"] == 2
    bad = client.post("/api/v1/snapshots/", {"formats": ["csv"]}, content_type="application/json")
    assert bad.status_code == 400 and "unknown format" in json.dumps(bad.json())


def test_it_filters_the_chain_listing_for_scripts(carol: Any, make_chain: Any, alice: Any, bob: Any) -> None:
    from annotation.reading import assign_double

    verified = make_chain(status="verified")
    reference = make_chain()
    assign_double([reference], alice, bob, by=carol)
    client = client_for(carol)

    def uuids(query: str) -> set[str]:
        return {c["uuid"] for c in client.get(f"/api/v1/chains/?{query}").json()["results"]}

    readings = {str(c.uuid) for c in reference.derived.all()}
    assert uuids("purpose=reading") == readings
    assert uuids("exportable=1") == {str(verified.uuid), str(reference.uuid)}
    assert uuids("exportable=1&status=verified") == {str(verified.uuid)}
    assert uuids(f"case={verified.case.uuid}") == {str(verified.uuid)}
    assert uuids("since=2999-01-01") == set()
    assert client.get("/api/v1/chains/?since=soon").status_code == 400
    row = client.get("/api/v1/chains/?purpose=reading").json()["results"][0]
    assert row["derived_from"] == str(reference.uuid) and row["purpose"] == "reading"


def test_it_takes_snapshot_options_as_lists_or_comma_separated_text(carol: Any, snapshot: ExportSnapshot) -> None:
    # The docstring promised comma-separated text; "sft,prm" was refused as "not a list".
    client = client_for(carol)
    for formats in ("sft,prm", "sft, prm", ["sft", "prm"], ["sft,prm"]):
        created = client.post("/api/v1/snapshots/", {"formats": formats, "status": "verified,rejected"},
                              content_type="application/json")
        assert created.status_code == 202, created.content
        assert created.json()["options"]["formats"] == ["sft", "prm"]
        assert created.json()["options"]["status"] == ["verified", "rejected"]
    for bad in ({"formats": 5}, {"formats": [5]}, {"formats": {"sft": 1}}, {"sources": "a\u0000b"}, {"seed": 5}):
        refused = client.post("/api/v1/snapshots/", bad, content_type="application/json")
        assert refused.status_code == 400, bad
        assert list(refused.json()) == list(bad)
    assert ExportSnapshot.objects.count() == 5


def test_starting_an_export_with_nothing_to_export_says_so(make_chain: Any, carol: Any) -> None:
    make_chain()  # pending only
    page = client_for(carol).post(
        "/exports/", {"formats": ["sft"], "status": ["verified"], "image_size": 512, "seed": "0"}
    )
    assert page.status_code == 200 and b"no chain matches" in page.content
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(carol)
    answer = api.post("/api/v1/snapshots/", {"formats": ["sft"]}, format="json")
    assert answer.status_code == 400 and "no chain matches" in answer.json()["detail"]
    assert not ExportSnapshot.objects.exists()
