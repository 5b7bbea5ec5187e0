import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from annotation.importing import import_cases
from annotation.models import Case, Chain, Image, ImportRun, Step, TaskType
from tests.conftest import SHARED_DATA

RECORDS = [
    {  # a list of steps, options embedded in the question
        "item_id": "[mimic-cxr] [1]", "dataset_name": "Image Classification",
        "question": "Does this chest X-ray show pleural effusion? Options:\nA) Yes\nB) No",
        "answer": "A", "answer_content": "Yes",
        "reason_steps": ["Examine the costophrenic angles.", "The right angle is blunted.", "Answer: A) Yes."],
        "original_report": "FINDINGS: Right pleural effusion. IMPRESSION: Effusion.",
        "image_path": ["/cluster/files/p10/p10000001/s50000001/frontal.png"],
    },
    {  # one string of several sentences, no item id
        "question": "Which finding is in this chest X-ray? Options:\nA) Edema\nB) Pneumothorax\nC) Fracture\nD) Cardiomegaly",
        "answer": "D", "reason_steps": "Check the heart size. The heart is enlarged, e.g. the ratio is 0.6. No pneumothorax. So the answer is D.",
        "original_report": "The heart is enlarged.",
    },
    {  # an object holding the steps, several letters
        "question": "Which findings are in this chest X-ray? Options:\nA) Edema\nB) Pneumothorax\nC) Atelectasis\nD) Cardiomegaly",
        "answer": "A, D", "reason_steps": {"steps": ["Edema is present.", "The heart is enlarged.", "Answer: A and D."]},
        "original_report": "Cardiomegaly with edema.",
    },
    {  # open question: answer is text
        "question": "Which findings are in this chest X-ray?", "answer": "cardiomegaly, edema",
        "reason_steps": ["The heart is enlarged.", "There is interstitial edema."],
        "original_report": "Cardiomegaly with edema.",
    },
    {  # temporal pair
        "question": "How has the effusion changed? Options:\nA) Improving\nB) Stable\nC) Worsening", "answer": "A",
        "reason_steps": ["Compare both studies.", "The effusion is smaller."],
        "original_report1": "Large effusion.", "original_report2": "Small effusion.",
    },
]


def write_jsonl(path: Path, records: list[Any], raw_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in records] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images" / "p10" / "p10000001" / "s50000001"
    folder.mkdir(parents=True)
    PILImage.new("L", (64, 48), 128).save(folder / "frontal.png")
    return tmp_path / "images"


def test_it_imports_every_shape_of_record(db: Any, tmp_path: Path, image_dir: Path) -> None:
    result = import_cases(write_jsonl(tmp_path / "cases.jsonl", RECORDS), source="t", image_dir=image_dir)
    assert (result.imported, result.rejected, result.warnings) == (5, 0, 0)
    cases = {c.question.split("?")[0]: c for c in Case.objects.all()}
    binary = cases["Does this chest X-ray show pleural effusion"]
    assert binary.task_type == TaskType.BINARY and binary.answer == ["A"]
    assert binary.options == [{"key": "A", "text": "Yes"}, {"key": "B", "text": "No"}]
    assert binary.images.get().width == 64
    assert cases["Which finding is in this chest X-ray"].task_type == TaskType.SINGLE
    assert Case.objects.get(answer=["A", "D"]).task_type == TaskType.MULTI
    assert Case.objects.get(options=[], question__startswith="Which").answer == ["cardiomegaly, edema"]
    temporal = cases["How has the effusion changed"]
    assert temporal.task_type == TaskType.TEMPORAL
    assert temporal.report.text == "Small effusion." and temporal.prior_report.text == "Large effusion."
    split = Chain.objects.get(case__answer=["D"]).live_steps()
    assert [s.text for s in split] == [
        "Check the heart size.", "The heart is enlarged, e.g. the ratio is 0.6.", "No pneumothorax.", "So the answer is D.",
    ]
    assert all(s.original_text == s.text for s in Step.objects.all())
    assert Chain.objects.filter(origin="mined_llm").count() == 5


def test_it_creates_nothing_new_on_reimport(db: Any, tmp_path: Path, image_dir: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", RECORDS)
    import_cases(path, source="t", image_dir=image_dir)
    counts = (Case.objects.count(), Step.objects.count(), Image.objects.count())
    again = import_cases(path, source="t", image_dir=image_dir)
    assert again.imported == 0 and again.duplicates == 5
    assert (Case.objects.count(), Step.objects.count(), Image.objects.count()) == counts


def test_it_reports_bad_lines_with_file_line_and_reason(db: Any, tmp_path: Path, image_dir: Path) -> None:
    records = [
        RECORDS[0],
        {"answer": "A", "reason_steps": ["x"]},  # line 2: no question
        {"question": "Q? Options:\nA) Yes\nB) No", "answer": "C", "reason_steps": ["x"]},  # 3: letter not an option
        {"question": "Q?", "answer": "yes", "reason_steps": 7},  # 4: steps not a list
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", records, ('{"question": "broken', ))
    result = import_cases(path, source="t", image_dir=image_dir)
    assert result.imported == 1 and result.rejected == 4
    problems = {p.line: p for p in result.problems}
    assert problems[2].field == "question" and "missing field 'question'" in problems[2].reason
    assert problems[3].field == "answer" and "C" in problems[3].reason
    assert problems[4].field == "reason_steps"
    assert problems[5].reason.startswith("unreadable JSON")
    assert all(p.file == "bad.jsonl" for p in result.problems)
    report = result.report_path.read_text()
    assert "bad.jsonl:5" in report and "bad.jsonl:2 [question]" in report
    assert ImportRun.objects.get().rejected == 4


def test_it_imports_a_case_without_its_missing_image_and_warns(db: Any, tmp_path: Path) -> None:
    result = import_cases(write_jsonl(tmp_path / "c.jsonl", RECORDS[:1]), source="t", image_dir=tmp_path)
    assert result.imported == 1 and result.rejected == 0 and result.warnings == 1
    assert "frontal.png" in result.problems[0].reason and result.problems[0].field == "image_path[0]"
    assert Case.objects.get().images.count() == 0


def test_it_rejects_a_case_whose_image_is_not_an_image(db: Any, tmp_path: Path, image_dir: Path) -> None:
    (image_dir / "p10/p10000001/s50000001/frontal.png").write_text("this is not a picture")
    result = import_cases(write_jsonl(tmp_path / "c.jsonl", RECORDS[:2]), source="t", image_dir=image_dir)
    assert result.imported == 1 and result.rejected == 1
    assert result.problems[0].line == 1 and result.problems[0].field == "image_path[0]"
    assert Image.objects.count() == 0


def test_it_rejects_a_truncated_dicom(db: Any, tmp_path: Path) -> None:
    folder = tmp_path / "img"
    folder.mkdir()
    (folder / "scan.dcm").write_bytes(Path(get_testdata_file("MR_truncated.dcm")).read_bytes())
    record = dict(RECORDS[1], image_path=["scan.dcm"])
    result = import_cases(write_jsonl(tmp_path / "c.jsonl", [record]), source="t", image_dir=folder)
    assert result.rejected == 1 and "trunc" in result.problems[0].reason.lower()


def test_it_stores_images_content_addressed_and_once(db: Any, tmp_path: Path, image_dir: Path, settings: Any) -> None:
    records = [dict(RECORDS[0]), dict(RECORDS[0], item_id="other")]
    import_cases(write_jsonl(tmp_path / "c.jsonl", records), source="t", image_dir=image_dir)
    image = Image.objects.get()
    assert image.path.is_file() and image.sha256 in image.path.name
    assert image.path.is_relative_to(settings.IMAGE_STORE)


def test_the_command_prints_a_summary_and_fails_when_anything_is_rejected(db: Any, tmp_path: Path, image_dir: Path, capsys: Any) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", RECORDS)
    call_command("import_cases", str(good), "--images", str(image_dir), "--source", "s")
    assert "Imported 5 cases, 0 rejected" in capsys.readouterr().out
    bad = write_jsonl(tmp_path / "bad.jsonl", [], ("not json",))
    with pytest.raises(CommandError) as failure:
        call_command("import_cases", str(bad), "--source", "s")
    assert failure.value.returncode == 1
    out = capsys.readouterr()
    assert "Imported 0 cases, 1 rejected" in out.out and "see " in out.out
    assert "bad.jsonl:1" in out.err
    with pytest.raises(CommandError, match="longer than 100 characters.*--source"):
        call_command("import_cases", str(good), "--source", "s" * 101)


def test_the_curator_page_imports_an_upload_with_a_zip(db: Any, carol: Any, alice: Any, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    png = io.BytesIO()
    PILImage.new("L", (32, 32), 80).save(png, format="PNG")
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("p10/p10000001/s50000001/frontal.png", png.getvalue())
    cases = io.BytesIO(("\n".join(json.dumps(r) for r in RECORDS) + "\n").encode())
    cases.name, buffer.name = "upload.jsonl", "images.zip"
    buffer.seek(0)
    client = Client()
    client.force_login(carol)
    response = client.post(reverse("annotation:import"), {"cases": cases, "images": buffer, "source": "upload"})
    assert response.status_code == 200
    assert "Imported 5 cases, 0 rejected" in response.content.decode()
    assert Case.objects.get(external_id="[mimic-cxr] [1]").images.count() == 1
    client.force_login(alice)
    assert client.get(reverse("annotation:import")).status_code == 403


def test_the_upload_refuses_a_zip_that_escapes_its_folder(db: Any, carol: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("../../evil.png", b"x")
    buffer.seek(0)
    buffer.name = "images.zip"
    cases = io.BytesIO(json.dumps(RECORDS[1]).encode())
    cases.name = "c.jsonl"
    client = Client()
    client.force_login(carol)
    response = client.post(reverse("annotation:import"), {"cases": cases, "images": buffer, "source": "upload"})
    assert "escapes the archive" in response.content.decode()
    assert Case.objects.count() == 0


@pytest.mark.skipif(not (SHARED_DATA / "radrbench-dev" / "cases.jsonl").exists(), reason="shared data absent")
def test_it_imports_all_real_radrbench_records(db: Any) -> None:
    result = import_cases(SHARED_DATA / "radrbench-dev" / "cases.jsonl", source="radrbench-dev")
    assert result.rejected == 0, result.problems[:5]
    assert result.imported == 1096
    assert Case.objects.count() == 1096 and Step.objects.count() > 3000


def test_it_rejects_text_postgresql_cannot_store_and_imports_the_rest(db: Any, tmp_path: Path) -> None:
    good = RECORDS[1]
    records = [
        good,
        dict(RECORDS[2], question=RECORDS[2]["question"] + "\u0000"),  # 2: NUL in the question
        dict(RECORDS[3], reason_steps=["The heart is enlarged.", "Edema\u0000."]),  # 3: in a step
        dict(RECORDS[4], original_report2="Small\u0000effusion."),  # 4: in a report
        dict(RECORDS[3], item_id="item\u0000"),  # 5: in the item id
        dict(RECORDS[3], answer="cardio\u0000megaly"),  # 6: in the answer
    ]
    lines = tuple(json.dumps(r) for r in records) + (
        json.dumps(dict(RECORDS[3], item_id="x")).replace('"x"', '"\\ud800"'),  # 7: half a surrogate pair
    )
    result = import_cases(write_jsonl(tmp_path / "nul.jsonl", [], lines), source="t")
    assert result.imported == 1 and result.rejected == 6
    problems = {p.line: p for p in result.problems}
    assert problems[2].field == "question" and problems[2].reason == "contains a NUL character"
    assert problems[3].field == "reason_steps[1]"
    assert problems[4].field == "original_report2"
    assert problems[5].field == "item_id"
    assert problems[6].field == "answer"
    assert problems[7].field == "item_id" and "surrogate" in problems[7].reason
    assert all(p.kind == "rejected" and p.file == "nul.jsonl" for p in result.problems)
    assert Case.objects.get().question == good["question"]
    assert ImportRun.objects.get().rejected == 6


def test_it_rejects_values_longer_than_their_column(db: Any, tmp_path: Path) -> None:
    records = [
        RECORDS[1],
        dict(RECORDS[3], item_id="x" * 201),  # external_id is varchar(200)
        dict(RECORDS[3], item_id="y" * 200),  # fits
        dict(RECORDS[2], dataset_name="d" * 101),  # varchar(100)
        dict(RECORDS[4], split="s" * 17),  # varchar(16)
    ]
    result = import_cases(write_jsonl(tmp_path / "long.jsonl", records), source="t")
    assert result.imported == 2 and result.rejected == 3
    problems = {p.line: p for p in result.problems}
    assert problems[2].field == "item_id" and "200 characters" in problems[2].reason
    assert problems[4].field == "dataset_name" and "100 characters" in problems[4].reason
    assert problems[5].field == "split" and "16 characters" in problems[5].reason
    assert Case.objects.filter(external_id="y" * 200).exists()


def test_it_rejects_fields_of_the_wrong_shape(db: Any, tmp_path: Path) -> None:
    records = [
        RECORDS[1],
        dict(RECORDS[3], answer=5),  # a number where text or a list is expected
        dict(RECORDS[3], task=["open"]),  # a list where a name is expected
        dict(RECORDS[3], origin={"x": 1}),
    ]
    result = import_cases(write_jsonl(tmp_path / "shape.jsonl", records), source="t")
    assert result.imported == 1 and result.rejected == 3
    assert {(p.line, p.field) for p in result.problems} == {(2, "answer"), (3, "task"), (4, "origin")}


def test_it_refuses_a_source_name_too_long_to_store(db: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="100 characters"):
        import_cases(write_jsonl(tmp_path / "c.jsonl", RECORDS[1:2]), source="s" * 101)
    assert not Case.objects.exists() and not ImportRun.objects.exists()


def test_the_upload_page_reports_bad_records_and_speaks_of_no_command_line_flag(
    db: Any, carol: Any, tmp_path: Path, settings: Any
) -> None:
    records = [RECORDS[0], dict(RECORDS[3], question="Which\u0000?"), dict(RECORDS[3], item_id="z" * 300)]
    cases = io.BytesIO(("\n".join(json.dumps(r) for r in records) + "\n").encode())
    cases.name = "x" * 250 + ".jsonl"  # the longest name an upload keeps: the report's too
    client = Client()
    client.force_login(carol)
    response = client.post(reverse("annotation:import"), {"cases": cases, "source": "upload"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Imported 1 case, 2 rejected" in page
    assert "contains a NUL character" in page and "longer than 200 characters" in page
    assert "no image folder or zip given" in page and "--images" not in page
    assert str(settings.IMPORT_REPORTS) not in page  # a server path is of no use in a browser
    assert ImportRun.objects.get().report_path  # the report is still written and recorded


def test_the_upload_names_the_zip_an_image_is_missing_from(db: Any, carol: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("other.png", b"x")
    buffer.seek(0)
    buffer.name = "images.zip"
    cases = io.BytesIO(json.dumps(RECORDS[0]).encode())
    cases.name = "c.jsonl"
    client = Client()
    client.force_login(carol)
    response = client.post(reverse("annotation:import"), {"cases": cases, "images": buffer, "source": "upload"})
    page = response.content.decode()
    assert "not found in images.zip" in page and "/tmp" not in page


def test_the_command_names_the_images_folder(db: Any, tmp_path: Path, capsys: Any) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", RECORDS[:1])
    call_command("import_cases", str(path), "--source", "s")
    assert "no image folder or zip given" in capsys.readouterr().err
    call_command("import_cases", str(path), "--source", "s2", "--images", str(tmp_path))
    assert f"not found in {tmp_path}" in capsys.readouterr().err


def test_it_reports_json_python_cannot_read_as_unreadable(db: Any, tmp_path: Path) -> None:
    lines = ("1" * 5000, "[" * 100_000)  # too many digits for an int; too deep for the parser
    result = import_cases(write_jsonl(tmp_path / "odd.jsonl", [RECORDS[1]], lines), source="t")
    assert result.imported == 1 and [p.line for p in result.problems] == [2, 3]
    assert "5000 digits" in result.problems[0].reason and "sys." not in result.problems[0].reason
    assert result.problems[1].reason == "unreadable JSON: nested too deeply"
    array = tmp_path / "odd.json"
    array.write_text("[" * 100_000)
    assert import_cases(array, source="t").problems[0].reason == "unreadable JSON: nested too deeply"


def test_it_quotes_a_bad_value_without_copying_it(db: Any, tmp_path: Path) -> None:
    result = import_cases(write_jsonl(tmp_path / "c.jsonl", [dict(RECORDS[1], task="x" * 100_000)]), source="t")
    assert result.problems[0].field == "task" and len(result.problems[0].reason) < 120


def test_it_rejects_a_question_that_is_not_text(db: Any, tmp_path: Path) -> None:
    # A list was joined into the question "list"; a number became its digits.
    records = [dict(RECORDS[3], question=["list"]), dict(RECORDS[3], question=5), RECORDS[3]]
    result = import_cases(write_jsonl(tmp_path / "q.jsonl", records), source="t")
    assert result.imported == 1
    assert [(p.line, p.field, p.reason) for p in result.problems] == [
        (1, "question", "'question' should be text, not list"),
        (2, "question", "'question' should be text, not int"),
    ]


def test_it_rejects_two_answers_to_a_yes_no_question(db: Any, tmp_path: Path) -> None:
    records = [
        dict(RECORDS[0], answer=["A", "B"]),
        dict(RECORDS[0], answer="A, B", item_id="2"),
        dict(RECORDS[1], answer="A, D", task="single"),  # a single-choice question named as such
        dict(RECORDS[0], answer=["A"], item_id="4"),
    ]
    result = import_cases(write_jsonl(tmp_path / "yn.jsonl", records), source="t")
    assert result.imported == 1 and Case.objects.get().answer == ["A"]
    rejected = [p for p in result.problems if p.kind == "rejected"]  # line 4 warns of its image
    assert [(p.line, p.field) for p in rejected] == [(1, "answer"), (2, "answer"), (3, "answer")]
    assert rejected[0].reason == "a yes/no question takes exactly one answer, not 2 (A, B)"
    assert rejected[2].reason == "a single-choice question takes exactly one answer, not 2 (A, D)"


def test_it_reads_a_file_that_starts_with_a_byte_order_mark(db: Any, tmp_path: Path) -> None:
    # Windows editors write one; line 1 was rejected as "Unexpected UTF-8 BOM".
    lines = tmp_path / "bom.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(r) for r in RECORDS[1:3]).encode() + b"\n")
    result = import_cases(lines, source="t")
    assert (result.imported, result.rejected) == (2, 0)
    array = tmp_path / "bom.json"
    array.write_bytes(b"\xef\xbb\xbf  " + json.dumps(RECORDS[3:5]).encode())
    result = import_cases(array, source="t")
    assert (result.imported, result.rejected) == (2, 0)


def test_the_command_says_a_folder_is_not_a_file(db: Any, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is a folder: give the JSONL or JSON file in it"):
        call_command("import_cases", str(tmp_path), "--source", "s")
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_cases", str(tmp_path / "missing.jsonl"), "--source", "s")
    cases = write_jsonl(tmp_path / "c.jsonl", RECORDS[:1])
    with pytest.raises(CommandError, match="is a file: give the folder the images are in"):
        call_command("import_cases", str(cases), "--source", "s", "--images", str(cases))
    assert not Case.objects.exists()


def test_an_archive_given_as_the_cases_file_is_refused_whole(db: Any, tmp_path: Path) -> None:
    import zipfile

    bundle = tmp_path / "cases.jsonl"  # named like a cases file, but a zip
    with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("cases.jsonl", "\n".join(json.dumps(r) for r in RECORDS) + "\n")
    result = import_cases(bundle, source="zipped")
    assert (result.imported, result.rejected) == (0, 1)
    assert "zip archive" in str(result.problems[0])
    assert not Case.objects.exists()
