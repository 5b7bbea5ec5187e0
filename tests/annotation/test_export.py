"""Export snapshots: each format's exact rows, splits by patient, determinism, filters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from annotation import imaging, services, synthetic
from annotation.exporting import (
    ExportError,
    ExportOptions,
    compare,
    export,
    select_chains,
    split_for,
)
from annotation.importing import store_image
from annotation.models import Chain, ExportSnapshot, Report, Study
from annotation.reading import Choice, assign_double, pair_for, settle
from cxr import prompts

STEPS = (
    "Look at the costophrenic angles.",
    "The right angle is blunted.",
    "The heart is enlarged.",
    "The patient is standing.",
    "Old rib fracture on the left.",
    "Answer: A) Yes.",
)


def stored_image(tmp_path: Path, seed: int) -> Any:
    path = synthetic.write_chest_png(tmp_path / f"film-{seed}.png", seed=seed, size=96)
    return store_image(path)


def png_name(image: Any, size: int = 512) -> str:
    data = imaging.render(image.path, max_side=size)
    return f"images/{hashlib.sha256(data).hexdigest()}.png"


def reviewed_chain(make_chain: Callable[..., Chain], reader: Any, *, images: tuple[Any, ...] = (), patient: str = "patient-1") -> Chain:
    """Correct, rewritten-incorrect, incorrect, irrelevant, deleted-incorrect, added and correct steps."""
    chain = make_chain(steps=STEPS, readers=(reader,), images=images)
    set_patient(chain, patient)
    look, angle, heart, standing, rib, answer = chain.live_steps()
    look.finding = {"observation": "Pleural Effusion", "status": "present"}
    look.save(update_fields=["finding"])
    for step, verdict in ((look, "correct"), (angle, "incorrect"), (heart, "incorrect"),
                          (standing, "irrelevant"), (rib, "incorrect"), (answer, "correct")):
        step.refresh_from_db()
        step.mark(verdict, by=reader, expected=step.version)
    angle.refresh_from_db()
    angle.edit("The right angle is sharp.", by=reader, expected=angle.version)
    chain.refresh_from_db()
    rib.refresh_from_db()
    services.delete_step(rib, by=reader, expected_step=rib.version, expected_chain=chain.version)
    chain.refresh_from_db()
    services.add_step(chain, "No pneumothorax.", by=reader, expected=chain.version, after=look)
    chain.refresh_from_db()
    services.finish_chain(chain, reader, "verify")
    chain.refresh_from_db()
    return chain


def set_patient(chain: Chain, patient: str) -> None:
    study, _ = Study.objects.get_or_create(source="test", external_id=f"study-{patient}", defaults={"patient_key": patient})
    Report.objects.filter(pk=chain.case.report_id).update(study=study)


def rows(folder: Path, fmt: str) -> list[dict[str, Any]]:
    found = []
    for split in ("train", "validation", "test"):
        found += [json.loads(line) for line in (folder / fmt / f"{split}.jsonl").read_text().splitlines()]
    return found


@pytest.fixture
def exported(make_chain: Any, alice: Any, tmp_path: Path) -> tuple[Chain, Path, Any]:
    image = stored_image(tmp_path, 1)
    chain = reviewed_chain(make_chain, alice, images=(image,))
    make_chain()  # pending: not exported
    export(ExportOptions(), tmp_path / "snap")
    return chain, tmp_path / "snap", image


def test_it_writes_the_sft_rows(exported: Any) -> None:
    chain, folder, image = exported
    (row,) = rows(folder, "sft")
    question = chain.case.question
    assert row == {
        "id": str(chain.uuid),
        "case_id": str(chain.case.uuid),
        "task_type": "binary",
        "messages": [
            *prompts.conversation(question, 1),
            {"role": "assistant", "content": [{"type": "text", "text": (
                "<think>\nLook at the costophrenic angles.\nNo pneumothorax.\n"
                "The right angle is sharp.\nAnswer: A) Yes.\n</think>\n<answer>A</answer>")}]},
        ],
        "images": [png_name(image)],
    }
    assert row["messages"][1]["content"][0] == {"type": "image"}


def test_it_writes_the_prm_rows(exported: Any) -> None:
    chain, folder, image = exported
    (row,) = rows(folder, "prm")
    assert row == {
        "id": str(chain.uuid), "case_id": str(chain.case.uuid), "chain_id": str(chain.uuid),
        "task_type": "binary", "origin": "mined_llm", "source": "test",
        "prompt": chain.case.question,
        "completions": [
            "Look at the costophrenic angles.",
            "No pneumothorax.",  # added by the reader: true
            "The right angle is blunted.",  # rewritten and judged incorrect: the original, false,
            "The right angle is sharp.",  # then the correction, true
            "The heart is enlarged.",  # incorrect: false
            "Old rib fracture on the left.",  # deleted and judged incorrect: false
            # "The patient is standing." is irrelevant: left out
            "Answer: A) Yes.",
        ],
        "labels": [True, True, False, True, False, False, True],
        "images": [png_name(image)],
    }


def test_it_writes_the_grpo_rows(exported: Any) -> None:
    chain, folder, image = exported
    (row,) = rows(folder, "grpo")
    assert row == {
        "id": str(chain.uuid), "case_id": str(chain.case.uuid), "task_type": "binary",
        "prompt": prompts.conversation(chain.case.question, 1),
        "images": [png_name(image)],
        "answer": "A",
        "options": [{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}],
        "reference_steps": ["Look at the costophrenic angles.", "No pneumothorax.",
                            "The right angle is sharp.", "Answer: A) Yes."],
        # the first step's own finding; the rest read from the step texts; vocabulary order
        "reference_findings": [
            {"observation": "No Finding", "status": "absent"},  # an abnormal finding is present
            {"observation": "Pneumothorax", "status": "absent"},
            {"observation": "Pleural Effusion", "status": "present"},
        ],
    }


def test_it_writes_the_radrbench_rows_with_both_reports_for_a_temporal_case(exported: Any, make_chain: Any, bob: Any, tmp_path: Path) -> None:
    chain, folder, image = exported
    (row,) = rows(folder, "radrbench")
    assert row == {
        "case_key": str(chain.case.uuid), "item_id": chain.case.external_id, "task": "binary",
        "question": chain.case.question, "answer": "A",
        "reason_steps": ["Look at the costophrenic angles.", "No pneumothorax.",
                         "The right angle is sharp.", "Answer: A) Yes."],
        "original_report": "FINDINGS: Right pleural effusion. IMPRESSION: Effusion.",
        "image_path": [png_name(image)],
        "original_report1": "",  # prior and current reports of temporal cases only
        "original_report2": "",
    }
    prior, current = stored_image(tmp_path, 2), stored_image(tmp_path, 3)
    temporal = make_chain(steps=("The effusion is larger.",), readers=(bob,), task_type="temporal", images=(prior, current))
    temporal.case.prior_report = Report.objects.create(text="FINDINGS: Small effusion.")
    temporal.case.save()
    step = temporal.live_steps()[0]
    step.mark("correct", by=bob, expected=step.version)
    services.finish_chain(temporal, bob, "verify")
    snapshot = export(ExportOptions(formats=("radrbench",), tasks=("temporal",)), tmp_path / "temporal")
    (row,) = rows(Path(snapshot.path), "radrbench")
    assert row["image_path"] == [png_name(prior), png_name(current)]
    assert (row["original_report1"], row["original_report2"]) == ("FINDINGS: Small effusion.", row["original_report"])


def test_it_writes_small_windowed_pngs_without_identifiers(make_chain: Any, alice: Any, tmp_path: Path) -> None:
    dicom = synthetic.write_chest_dicom(tmp_path / "film.dcm", seed=4, size=300)
    image = store_image(dicom)
    reviewed_chain(make_chain, alice, images=(image,))
    snapshot = export(ExportOptions(formats=("sft",), image_size=128), tmp_path / "snap")
    (name,) = rows(Path(snapshot.path), "sft")[0]["images"]
    path = Path(snapshot.path) / name
    assert path.read_bytes() == imaging.render(image.path, max_side=128)
    assert name == f"images/{hashlib.sha256(path.read_bytes()).hexdigest()}.png"
    with PILImage.open(path) as png:
        assert png.mode == "L" and max(png.size) == 128 and not png.info.get("dpi") and not getattr(png, "text", {})
    everything = b"".join(p.read_bytes() for p in Path(snapshot.path).rglob("*") if p.is_file())
    for identifier in synthetic.FAKE_IDENTIFIERS.values():
        assert identifier.encode() not in everything
    assert image.sha256.encode() not in everything  # not even the source file's hash


def test_it_keeps_each_patient_in_one_split(make_chain: Any, alice: Any, tmp_path: Path) -> None:
    chains = {}
    for n in range(80):
        chain = make_chain(status="verified")
        patient = f"patient-{n % 40}"
        set_patient(chain, patient)
        chains[str(chain.uuid)] = patient
    snapshot = export(ExportOptions(formats=("sft",)), tmp_path / "snap")
    seen: dict[str, set[str]] = {}
    for split in ("train", "validation", "test"):
        for line in (Path(snapshot.path) / "sft" / f"{split}.jsonl").read_text().splitlines():
            seen.setdefault(chains[json.loads(line)["id"]], set()).add(split)
    assert len(seen) == 40 and all(len(splits) == 1 for splits in seen.values())
    assert {s for splits in seen.values() for s in splits} == {"train", "validation", "test"}
    assert sum(snapshot.counts["patients"].values()) == 40


def test_it_splits_about_80_10_10() -> None:
    splits = [split_for(f"p{n}", "0") for n in range(10_000)]
    assert 0.78 < splits.count("train") / 10_000 < 0.82
    assert 0.08 < splits.count("validation") / 10_000 < 0.12
    assert split_for("p1", "0") == split_for("p1", "0")


def test_it_writes_byte_identical_files_twice(make_chain: Any, alice: Any, bob: Any, tmp_path: Path) -> None:
    image = stored_image(tmp_path, 1)
    reviewed_chain(make_chain, alice, images=(image,))
    reviewed_chain(make_chain, bob, patient="patient-2")
    first = export(ExportOptions(), tmp_path / "one")
    second = export(ExportOptions(), tmp_path / "two")
    assert second.number == first.number + 1
    data = [f for f in first.files if f["path"] != "README.md"]
    assert data == [f for f in second.files if f["path"] != "README.md"]
    assert {f["path"].split("/")[0] for f in data} == {"images", "sft", "prm", "grpo", "radrbench"}
    for entry in data:
        assert (Path(first.path) / entry["path"]).read_bytes() == (Path(second.path) / entry["path"]).read_bytes()
    manifest = json.loads((Path(first.path) / "manifest.json").read_text())
    assert manifest["snapshot"] == str(first.uuid) and manifest["chains"] == first.manifest
    assert manifest["files"] == first.files and manifest["code_revision"] == first.code_revision


def test_it_loads_the_parquet_files_with_the_same_rows(exported: Any) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    _, folder, _ = exported
    for fmt in ("sft", "prm", "grpo", "radrbench"):
        table = pq.read_table(folder / fmt / "train.parquet")
        jsonl = [json.loads(x) for x in (folder / fmt / "train.jsonl").read_text().splitlines()]
        assert table.num_rows == len(jsonl)
        for parquet_row, json_row in zip(table.to_pylist(), jsonl):
            assert {k: v for k, v in parquet_row.items() if k in json_row} == _nulls(json_row, parquet_row)


def _nulls(json_row: dict[str, Any], parquet_row: dict[str, Any]) -> dict[str, Any]:
    """Parquet has a fixed schema: a missing struct field (an image part's text) reads as None."""
    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            out = {k: fill(v) for k, v in value.items()}
            if out.get("type") == "image":
                out.setdefault("text", None)
            return out
        return value
    return {k: fill(v) for k, v in json_row.items()}


def test_it_filters_by_status_task_source_origin_and_date(make_chain: Any, alice: Any, tmp_path: Path) -> None:
    verified = make_chain(status="verified")
    rejected = make_chain(status="rejected", task_type="single")
    other = make_chain(status="verified")
    Chain.objects.filter(pk=other.pk).update(origin="mined_rule")
    other.case.source = "elsewhere"
    other.case.save()

    def chosen(**options: Any) -> set[Chain]:
        return set(select_chains(ExportOptions(**options)))

    assert chosen() == {verified, other}
    assert chosen(status=("verified", "rejected")) == {verified, rejected, other}
    assert chosen(status=("rejected",), tasks=("single",)) == {rejected}
    assert chosen(sources=("elsewhere",)) == {other}
    assert chosen(origins=("mined_llm",)) == {verified}
    assert chosen(since="2999-01-01") == set()
    assert chosen(since="2000-01-01") == {verified, other}
    with pytest.raises(ExportError, match="unknown format"):
        ExportOptions(formats=("csv",))


def test_it_exports_the_settled_chain_of_a_double_reading(make_chain: Any, alice: Any, bob: Any, carol: Any, tmp_path: Path) -> None:
    reference = make_chain(steps=("One.", "Two."))
    assign_double([reference], alice, bob, by=carol)
    for reader, verdicts in ((alice, ["correct", "correct"]), (bob, ["correct", "incorrect"])):
        copy = reference.derived.get(assignments__reader=reader)
        for step, verdict in zip(list(copy.live_steps()), verdicts):
            step.mark(verdict, by=reader, expected=step.version)
        services.finish_chain(copy, reader, "verify")
    assert set(select_chains(ExportOptions(status=()))) == {reference}  # readings never leave
    (row,) = [r for r in pair_for(reference).rows() if r.disputed]
    settled = settle(reference, {row.key: Choice("second")}, outcome="verify", by=carol)
    assert set(select_chains(ExportOptions(status=()))) == {settled}
    assert set(select_chains(ExportOptions(min_agreement=0.5))) == set()  # alice·bob kappa is 0
    assert set(select_chains(ExportOptions(min_agreement=-0.5))) == {settled}
    snapshot = export(ExportOptions(formats=("prm",)), tmp_path / "snap")
    (prm,) = rows(Path(snapshot.path), "prm")
    assert (prm["id"], prm["chain_id"], prm["labels"]) == (str(settled.uuid), str(reference.uuid), [True, False])


def test_it_compares_two_snapshots(make_chain: Any, alice: Any, tmp_path: Path) -> None:
    kept, changed, removed = (make_chain(status="verified") for _ in range(3))
    first = export(ExportOptions(formats=("radrbench",)), tmp_path / "one")
    Chain.objects.filter(pk=removed.pk).update(status="rejected")
    changed.steps.filter(position=1).update(text="Look at both angles.")
    added = make_chain(status="verified")
    second = export(ExportOptions(formats=("radrbench",)), tmp_path / "two")
    difference = compare(first, second)
    assert difference.added == [str(added.uuid)] and difference.removed == [str(removed.uuid)]
    assert difference.changed == [str(changed.uuid)] and difference.unchanged == 1


def test_it_refuses_a_folder_that_is_not_empty(db: Any, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export(ExportOptions(), tmp_path / "busy")
    assert not ExportSnapshot.objects.exists()


def test_reference_findings_read_reasoning_and_follow_the_verified_answer() -> None:
    """Planning sentences assert nothing; the verified answer settles the asked finding."""
    from annotation.exporting import StepRecord, reference_findings

    def step(text: str) -> StepRecord:
        return StepRecord(position=0, text=text, original_text=text, verdict="correct",
                          deleted=False, added=False, finding=None)

    question = "Does this chest X-ray show pneumothorax? Options:\nA) Yes\nB) No"
    steps = [
        step("To assess for pneumothorax, look for a visceral pleural line."),
        step("Look for cardiomegaly by measuring the cardiothoracic ratio."),
        step("A small pneumothorax may be present at the apex."),  # overruled by the answer
        step("There is no pleural effusion."),
    ]
    found = {f["observation"]: f["status"] for f in reference_findings(steps, question=question, answer=["B"])}
    assert found == {"No Finding": "present", "Pneumothorax": "absent", "Pleural Effusion": "absent"}


def test_the_prm_export_leaves_out_chains_with_no_judged_step(
    make_chain: Any, alice: Any, tmp_path: Path
) -> None:
    judged = reviewed_chain(make_chain, alice)
    make_chain()  # pending, nothing judged: nothing for a PRM to learn from
    export(ExportOptions(status=("verified", "pending")), tmp_path / "snap")
    assert [row["chain_id"] for row in rows(tmp_path / "snap", "prm")] == [str(judged.uuid)]
    assert len(rows(tmp_path / "snap", "sft")) == 2  # the other formats keep both
    manifest = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert manifest["counts"]["prm_chains_without_judged_steps"] == 1
    assert "1 chains with no judged step left out of prm/" in (tmp_path / "snap" / "README.md").read_text()


def test_an_export_with_no_matching_chain_takes_no_snapshot_number(make_chain: Any, tmp_path: Path) -> None:
    make_chain()  # pending: the default export takes verified chains only
    with pytest.raises(ExportError, match="no chain matches"):
        export(ExportOptions(), tmp_path / "snap")
    assert not ExportSnapshot.objects.exists()


def test_unlettered_options_are_lettered_as_the_answer_is(make_chain: Any, alice: Any, tmp_path: Path) -> None:
    chain = reviewed_chain(make_chain, alice)
    unlettered = "Which finding is in this chest X-ray? Options:\nPneumothorax\nPleural Effusion"
    type(chain.case).objects.filter(pk=chain.case.pk).update(
        question=unlettered, options=[{"key": "A", "text": "Pneumothorax"}, {"key": "B", "text": "Pleural Effusion"}],
        answer=["B"], task_type="single",
    )
    export(ExportOptions(formats=("radrbench", "grpo")), tmp_path / "snap")
    (bench,) = rows(tmp_path / "snap", "radrbench")
    assert bench["question"].endswith("Options:\nA) Pneumothorax\nB) Pleural Effusion")
    assert bench["answer"] == "B"
    (grpo,) = rows(tmp_path / "snap", "grpo")
    assert "B) Pleural Effusion" in json.dumps(grpo["prompt"])
    client = __import__("django.test", fromlist=["Client"]).Client()
    client.force_login(alice)
    page = client.get(f"/chains/{chain.uuid}/").content.decode()
    assert "A) Pneumothorax<br>B) Pleural Effusion" in page
