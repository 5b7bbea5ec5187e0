import io
import json
import re
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from annotation import jobs, llm_mining
from annotation.importing import patient_and_study
from annotation.mining import mine
from annotation.models import Assignment, Case, CaseImage, Chain, Job, Step, Study
from tests.loopback import chat_completion, error, loopback_server

REPORTS = [
    {
        "study_id": "s50000001", "patient_id": "p10000001",
        "report": "FINDINGS: The heart is enlarged. There is a small left pleural effusion. No pneumothorax.\n"
                  "IMPRESSION: Cardiomegaly and small left pleural effusion.",
    },
    {
        "study_id": "50000002", "patient_id": "p10000002",
        "report": "FINDINGS: The lungs are clear. Heart size is normal. No pleural effusion or pneumothorax. "
                  "Bones are intact.\r\nIMPRESSION: No acute cardiopulmonary process.",
    },
]


def write_jsonl(path: Path, records: list[Any], raw: tuple[str, ...] = ()) -> Path:
    path.write_text("\n".join([json.dumps(r) for r in records] + list(raw)) + "\n")
    return path


def run_mine(*args: Any) -> str:
    out = io.StringIO()
    call_command("mine", *[str(a) for a in args], stdout=out, stderr=io.StringIO(), verbosity=0)
    return out.getvalue()


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_links_valid(chain: Chain) -> None:
    for step in chain.steps.all():
        if step.evidence:
            report = chain.case.prior_report if step.evidence["report"] == "prior" else chain.case.report
            assert report.text[step.evidence["start"] : step.evidence["end"]] == step.evidence["text"]


@pytest.fixture(autouse=True)
def _llm_settings(settings: Any, tmp_path: Path) -> None:
    settings.LLM_CACHE_DIR = tmp_path / "llm-cache"
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""


# --- the command ---------------------------------------------------------------------------


def test_it_mines_reports_into_pending_unassigned_chains(db: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "reports.jsonl", REPORTS)
    out = run_mine("--reports", path, "--tasks", "binary,single,open", "--source", "mimic")
    assert out.startswith("Mined 5 cases from 2 reports (binary 2, open 1, single 2), 0 rejected")
    assert Case.objects.filter(source="mimic").count() == 5
    assert set(Chain.objects.values_list("origin", "status")) == {(Chain.Origin.MINED_RULE, Chain.Status.PENDING)}
    assert not Assignment.objects.exists()
    single = Case.objects.get(task_type="single", report__text__startswith="FINDINGS: The lungs")
    assert single.answer_content == "No Finding" and len(single.options) == 4
    chain = single.chains.get()
    steps = list(chain.steps.order_by("position"))
    assert len(steps) == 6 and all(s.original_text == s.text for s in steps)
    assert steps[1].finding["observation"] == single.options[0]["text"]
    for chain in Chain.objects.all():
        assert_links_valid(chain)
    # Reports are stored with their line breaks normalised, so offsets hold in a browser too.
    assert "\r" not in single.report.text
    # Pseudonymous keys only: the raw ids never reach the database.
    assert not Study.objects.filter(external_id__contains="5000000").exists()
    assert not Study.objects.filter(patient_key__contains="1000000").exists()
    assert Study.objects.values("patient_key").distinct().count() == 2


def test_it_creates_nothing_new_on_a_rerun(db: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "reports.jsonl", REPORTS)
    run_mine("--reports", path, "--source", "mimic")
    counts = (Case.objects.count(), Chain.objects.count(), Step.objects.count(), Study.objects.count())
    out = run_mine("--reports", path, "--source", "mimic")
    assert out.startswith("Mined 0 cases from 2 reports, 0 rejected (")
    assert "already present" in out
    assert (Case.objects.count(), Chain.objects.count(), Step.objects.count(), Study.objects.count()) == counts


def test_the_same_seed_gives_the_same_cases_and_another_seed_new_ones(db: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "reports.jsonl", REPORTS[:1])
    first = mine(path, tasks=["single"], seed=1, source="a")
    again = mine(path, tasks=["single"], seed=1, source="b")
    assert sum(first.cases.values()) == sum(again.cases.values()) == 1
    a, b = Case.objects.get(source="a"), Case.objects.get(source="b")
    assert a.question == b.question
    assert [s.text for s in a.chains.get().live_steps()] == [s.text for s in b.chains.get().live_steps()]
    for seed in range(2, 8):
        mine(path, tasks=["single"], seed=seed, source="c")
    assert Case.objects.filter(source="c").values("question").distinct().count() > 1


def test_it_mines_a_mimic_style_folder_with_images(db: Any, tmp_path: Path) -> None:
    root = tmp_path / "mimic" / "files" / "p10" / "p10000032"
    root.mkdir(parents=True)
    (root / "s50414267.txt").write_text(REPORTS[0]["report"])
    (root / "s50414268.txt").write_text("   ")
    (root / "notes.txt").write_text("not a report")
    images = tmp_path / "images" / "files" / "p10" / "p10000032" / "s50414267"
    images.mkdir(parents=True)
    PILImage.new("L", (64, 48), 128).save(images / "frontal.png")
    with pytest.raises(CommandError) as raised:
        run_mine("--reports", tmp_path / "mimic", "--images", tmp_path / "images", "--tasks", "binary", "--source", "mimic")
    assert raised.value.returncode == 1  # the empty report was rejected; the other was mined
    case = Case.objects.get()
    assert case.case_images.count() == 1
    # The same pseudonymous keys as the importer derives from the study's path.
    patient, study = patient_and_study("mimic", "/p10/p10000032/s50414267/", "")
    assert (case.report.study.external_id, case.report.study.patient_key) == (study, patient)


def test_it_reads_labels_from_a_csv_and_rejects_bad_rows(db: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "reports.jsonl", REPORTS)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "subject_id,study_id,Atelectasis,Cardiomegaly,Pleural Effusion,Pneumothorax,No Finding\n"
        "10000001,50000001,1.0,,,0.0,\n"
        "10000002,50000002,maybe,,,,1.0\n"
    )
    result = mine(path, labels_csv=labels, tasks=["single", "binary"], source="lab")
    assert result.rejected == 1
    problem = next(p for p in result.problems if p.kind == "rejected")
    assert (problem.file, problem.line, problem.field) == ("labels.csv", 3, "Atelectasis")
    single = Case.objects.get(task_type="single", report__text__contains="heart is enlarged")
    # The file says atelectasis (which the report never names) and nothing else present.
    assert single.answer_content == "Atelectasis"
    # The second study's row was rejected: the labeler labels it, and says so.
    assert any("no row in the labels file" in p.reason for p in result.problems if p.kind == "warning")


def test_it_rejects_unreadable_inputs_and_exits_non_zero(db: Any, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "reports.jsonl",
        [REPORTS[0], {"study_id": "7", "text": "no report field"}, {**REPORTS[1], "study_id": "s50000001"}],
        raw=("{not json",),
    )
    err = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("mine", "--reports", str(path), "--tasks", "binary", stdout=io.StringIO(), stderr=err, verbosity=0)
    assert raised.value.returncode == 1 and "3 inputs rejected" in str(raised.value)
    messages = err.getvalue()
    assert "reports.jsonl:2 [report]: missing field 'report'" in messages
    assert "study 50000001 already given on line 1" in messages
    assert "reports.jsonl:4: unreadable JSON" in messages
    assert Case.objects.count() == 1


def test_it_refuses_unknown_tasks_and_missing_paths(db: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", REPORTS)
    with pytest.raises(CommandError, match="unknown task 'essay'"):
        run_mine("--reports", path, "--tasks", "binary,essay")
    with pytest.raises(CommandError, match="no such file or folder"):
        run_mine("--reports", tmp_path / "missing.jsonl")
    with pytest.raises(CommandError, match="WORKBENCH_LLM_BASE_URL"):
        run_mine("--reports", path, "--llm")


def test_it_builds_temporal_cases_from_prior_studies(db: Any, tmp_path: Path) -> None:
    records = [
        {"study_id": "1", "patient_id": "p1", "report": "FINDINGS: Small right pleural effusion. No pneumothorax."},
        {"study_id": "2", "patient_id": "p1", "prior_study_id": "1",
         "report": "FINDINGS: The right pleural effusion has increased. No pneumothorax."},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    result = mine(path, tasks=["temporal"], source="pairs")
    assert result.cases == {"temporal": 1}
    case = Case.objects.get(task_type="temporal")
    assert case.answer_content == "Worsening"
    assert case.prior_report.text.startswith("FINDINGS: Small right")
    assert case.report.study.prior == case.prior_report.study
    chain = case.chains.get()
    assert [s.evidence["report"] for s in chain.live_steps() if s.evidence][:2] == ["prior", "current"]
    assert_links_valid(chain)


def test_it_takes_progression_labels_from_an_ms_cxr_t_style_csv(db: Any, tmp_path: Path) -> None:
    records = [
        {"study_id": "1", "report": "FINDINGS: Mild pulmonary edema."},
        {"study_id": "2", "report": "FINDINGS: Mild pulmonary edema."},
    ]
    path = write_jsonl(tmp_path / "pairs.jsonl", records)
    labels = tmp_path / "progression.csv"
    labels.write_text("dicom_id,previous_dicom_id,study_id,previous_study_id,edema_progression\n"
                      "d2,d1,2,1,improving\n")
    result = mine(path, labels_csv=labels, tasks=["temporal"], source="mscxrt")
    assert result.cases == {"temporal": 1}
    assert Case.objects.get().answer_content == "Improving"


# --- the background job and the page ------------------------------------------------------


def test_it_runs_mining_in_the_background_from_the_page(transactional_db: Any, carol: Any, tmp_path: Path, settings: Any) -> None:
    upload = SimpleUploadedFile("reports.jsonl", "\n".join(json.dumps(r) for r in REPORTS).encode() + b"\n{broken\n")
    client = client_for(carol)
    response = client.post(reverse("annotation:mining"), {
        "reports": upload, "tasks": ["binary", "open"], "seed": 3, "source": "upload",
    })
    job = Job.objects.get(kind="mining")
    assert response.status_code == 302 and response["Location"] == reverse("annotation:mining-job", args=[job.uuid])
    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 1s"' in page and "Waiting for a worker" in page
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and (job.progress, job.total) == (2, 2)
    assert job.result["cases"] == {"binary": 2, "open": 1} and job.result["rejected"] == 1
    assert not list((settings.MEDIA_ROOT / "mining-uploads").iterdir())  # no copies kept
    fragment = client.get(reverse("annotation:mining-job", args=[job.uuid]), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section id="job-status"') and "every 1s" not in fragment
    assert "Mined 3 cases from 2 reports (binary 2, open 1), 1 rejected" in fragment
    assert "unreadable JSON" in fragment and "<html" not in fragment
    assert Chain.objects.filter(case__source="upload", origin=Chain.Origin.MINED_RULE).count() == 3


def test_it_mines_a_zipped_folder_in_a_job(db: Any, carol: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("files/p10/p10000001/s50000001.txt", REPORTS[0]["report"])
    upload = SimpleUploadedFile("mimic.zip", buffer.getvalue())
    from annotation.mining import start_mining_job

    job = start_mining_job(carol, upload, None, tasks=["binary"], llm=False, limit=None, seed=0, source="zip")
    jobs.execute(job)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.result["cases"] == {"binary": 1}


def test_the_page_works_as_a_page_and_as_fragments(db: Any, carol: Any) -> None:
    client = client_for(carol)
    page = client.get(reverse("annotation:mining")).content.decode()
    assert "<html" in page and 'id="mining-form"' in page and "LLM mining is off" in page
    assert f'href="{reverse("annotation:mining")}"' in page  # the nav link
    invalid = client.post(reverse("annotation:mining"), {"tasks": ["essay"], "llm": "on"}, HTTP_HX_REQUEST="true")
    body = invalid.content.decode()
    assert invalid.status_code == 200 and body.lstrip().startswith('<div id="mining-form"')
    assert "This field is required" in body and "No LLM endpoint is configured" in body
    upload = SimpleUploadedFile("r.jsonl", json.dumps(REPORTS[0]).encode())
    started = client.post(reverse("annotation:mining"), {"reports": upload, "tasks": ["binary"], "seed": 0, "source": "x"},
                          HTTP_HX_REQUEST="true")
    body = started.content.decode()
    assert started.status_code == 200 and 'id="job-status"' in body and 'hx-trigger="every 1s"' in body


def test_it_keeps_the_mining_page_from_other_roles(db: Any, alice: Any, dave: Any, eve: Any, carol: Any) -> None:
    job = Job.objects.create(kind="mining", params={"reports_name": "r.jsonl", "tasks": ["binary"]})
    for user in (alice, dave, eve):
        client = client_for(user)
        assert client.get(reverse("annotation:mining")).status_code == 403
        assert client.post(reverse("annotation:mining"), {}).status_code == 403
        assert client.get(reverse("annotation:mining-job", args=[job.uuid])).status_code == 403
    assert not Job.objects.exclude(pk=job.pk).exists()
    assert client_for(carol).get(reverse("annotation:mining-job", args=[job.uuid])).status_code == 200
    other = Job.objects.create(kind="export")
    assert client_for(carol).get(reverse("annotation:mining-job", args=[other.uuid])).status_code == 404
    assert Client().get(reverse("annotation:mining")).status_code == 302  # to the login page


# --- the LLM path, against an OpenAI-protocol server on loopback ----------------------------


class FakeLLM:
    """POST /v1/chat/completions, answering the three stages from the prompt it is sent."""

    def __init__(self) -> None:
        self.mode = "good"  # good | garbage | refuse-schema | wrong-answer
        self.fail_first: list[int] = []  # statuses to answer before succeeding
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.requests.append(body)
            if self.fail_first:
                status = self.fail_first.pop(0)
                return status, {"error": {"message": "slow down", "type": "rate_limit"}}, {"Retry-After": "0"}
        if self.mode == "refuse-schema" and "response_format" in body:
            return 400, {"error": {"message": "response_format json_schema is not supported"}}, {}
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        answer = re.search(r"Correct answer: (.+)", user).group(1).strip()
        letter = answer.split(")")[0] if ")" in answer else answer
        if self.mode == "wrong-answer":
            letter = {"A": "B", "B": "A"}[letter]
        if self.mode == "garbage" and "writing the step-by-step" in system:
            content = "Sure! Here is the chain: {steps: [oops"
        elif "preparing" in system:
            content = json.dumps({"plans": [{"option": "A", "plan": "Examine the costophrenic angles."}]})
        elif "writing the step-by-step" in system:
            content = json.dumps({"answer": letter, "steps": [
                {"text": "The question needs the pleura and the heart examined.", "observation": None, "status": None, "evidence": None},
                {"text": "The report mentions a small left pleural effusion.", "observation": "pleural effusion",
                 "status": "present", "evidence": "small left pleural effusion"},
                {"text": f"So the answer is {letter}.", "observation": None, "status": None, "evidence": None},
            ]})
        else:
            content = "```json\n" + json.dumps({"steps": [
                {"text": "Examine the pleura and the heart.", "observation": None, "status": None, "evidence": None},
                {"text": "A small left pleural effusion blunts the left costophrenic angle.", "observation": "Pleural Effusion",
                 "status": "present", "evidence": "small left pleural effusion"},
                {"text": f"Therefore the answer is {letter}.", "observation": None, "status": None, "evidence": None},
            ]}) + "\n```"
        return 200, chat_completion(content, body["model"]), {}


@pytest.fixture
def fake_llm(settings: Any) -> Iterator[FakeLLM]:
    fake = FakeLLM()

    def respond(
        method: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if method != "POST" or path != "/v1/chat/completions":
            return error(404, "not found")
        return fake.reply(body)

    with loopback_server(respond) as url:
        settings.LLM_BASE_URL = url
        settings.LLM_MODEL = "fake-radiologist"
        settings.LLM_CONCURRENCY = 2
        yield fake


def effusion_reports(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "reports.jsonl", REPORTS[:1])


def test_the_llm_writes_the_chains_in_three_stages(db: Any, tmp_path: Path, fake_llm: FakeLLM) -> None:
    out = run_mine("--reports", effusion_reports(tmp_path), "--tasks", "binary,single", "--llm", "--source", "llm")
    assert out.startswith("Mined 2 cases from 1 reports")
    assert len(fake_llm.requests) == 6  # plan, steps, refine for each case
    assert all(r["response_format"]["type"] == "json_schema" for r in fake_llm.requests)
    chain = Chain.objects.get(case__task_type="single")
    assert chain.origin == Chain.Origin.MINED_LLM and chain.status == Chain.Status.PENDING and not chain.note
    steps = list(chain.live_steps())
    assert steps[1].text == "A small left pleural effusion blunts the left costophrenic angle."
    assert steps[1].finding == {"observation": "Pleural Effusion", "status": "present"}
    assert steps[1].evidence["text"] == "There is a small left pleural effusion."  # the whole sentence
    assert_links_valid(chain)
    assert steps[-1].text == f"Therefore the answer is {chain.case.answer[0]}."


def test_a_garbage_reply_falls_back_to_the_rule_chain_with_the_error(db: Any, tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.mode = "garbage"
    err = io.StringIO()
    call_command("mine", "--reports", str(effusion_reports(tmp_path)), "--tasks", "binary", "--llm",
                 stdout=io.StringIO(), stderr=err, verbosity=0)  # no exception: nothing was rejected
    chain = Chain.objects.get()
    assert chain.origin == Chain.Origin.MINED_RULE and chain.live_steps().count() == 3
    assert "steps: the reply is not JSON" in chain.note
    assert "llm: reports.jsonl:1 [llm]: binary:" in err.getvalue() and "kept the rule-based chain" in err.getvalue()
    # Once the model behaves, a rerun adds its chain to the same case.
    fake_llm.mode = "good"
    result = mine(effusion_reports(tmp_path), tasks=["binary"], llm=True, source="reports")
    assert result.cases == {} and result.chains == {"mined_llm": 1}
    assert sorted(Case.objects.get().chains.values_list("origin", flat=True)) == ["mined_llm", "mined_rule"]


def test_an_answer_that_contradicts_the_labels_is_an_error(db: Any, tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.mode = "wrong-answer"
    result = mine(effusion_reports(tmp_path), tasks=["binary"], llm=True, source="x")
    assert len(result.llm_errors) == 1 and "but the labels say" in result.llm_errors[0].reason
    assert Chain.objects.get().origin == Chain.Origin.MINED_RULE


def test_it_retries_after_429_and_5xx(db: Any, tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.fail_first = [429, 503]
    result = mine(effusion_reports(tmp_path), tasks=["binary"], llm=True, source="x")
    assert not result.llm_errors and result.chains == {"mined_llm": 1}
    assert len(fake_llm.requests) == 5  # two refused, then the three stages


def test_it_gives_up_after_the_retries_and_reports_it(db: Any, tmp_path: Path, fake_llm: FakeLLM, settings: Any) -> None:
    settings.LLM_MAX_RETRIES = 1
    fake_llm.fail_first = [429, 429]
    result = mine(effusion_reports(tmp_path), tasks=["binary"], llm=True, source="x")
    assert "HTTP 429 after 2 attempts" in result.llm_errors[0].reason
    assert Chain.objects.get().origin == Chain.Origin.MINED_RULE


def test_a_wrong_model_or_url_stops_the_run_with_the_reason(db: Any, tmp_path: Path, fake_llm: FakeLLM, settings: Any) -> None:
    settings.LLM_BASE_URL = settings.LLM_BASE_URL.replace("/v1", "/v2")  # the server answers 404
    with pytest.raises(CommandError, match=r"LLM endpoint unusable.*HTTP 404"):
        run_mine("--reports", effusion_reports(tmp_path), "--tasks", "binary", "--llm")
    assert not Case.objects.exists()


def test_a_rerun_is_served_from_the_cache(db: Any, tmp_path: Path, fake_llm: FakeLLM) -> None:
    path = effusion_reports(tmp_path)
    mine(path, tasks=["binary"], llm=True, source="first")
    asked = len(fake_llm.requests)
    assert asked == 3
    result = mine(path, tasks=["binary"], llm=True, source="second")  # new cases, same prompts
    assert len(fake_llm.requests) == asked  # the server saw no second request
    assert result.llm_cache_hits == 3 and result.chains == {"mined_llm": 1}
    first, second = (Chain.objects.get(case__source=s) for s in ("first", "second"))
    assert [s.text for s in first.live_steps()] == [s.text for s in second.live_steps()]


def test_a_server_without_json_schema_support_is_asked_in_words(db: Any, tmp_path: Path, fake_llm: FakeLLM) -> None:
    fake_llm.mode = "refuse-schema"
    result = mine(effusion_reports(tmp_path), tasks=["binary"], llm=True, source="x")
    assert not result.llm_errors
    assert "response_format" in fake_llm.requests[0]
    assert all("response_format" not in r for r in fake_llm.requests[1:])


def test_the_refinement_must_not_mention_the_report() -> None:
    from cxr.mining import build_cases, labels_from_report

    case = build_cases(labels_from_report("FINDINGS: Small left pleural effusion."), tasks=["binary"]).cases[0]
    steps = {"steps": [
        {"text": "Plan.", "observation": None, "status": None, "evidence": None},
        {"text": "The report mentions an effusion, so the answer is A.", "observation": None, "status": None, "evidence": None},
    ]}
    with pytest.raises(llm_mining.LLMError, match="still refers to the report"):
        llm_mining.validate("refine", steps, case)
    with pytest.raises(llm_mining.LLMError, match="status 'maybe'"):
        llm_mining.validate("steps", {"answer": "A", "steps": [{**steps["steps"][0], "status": "maybe"}] * 2}, case)


def test_an_llm_chain_shows_evidence_links_on_the_review_page(db: Any, tmp_path: Path, carol: Any) -> None:
    mine(effusion_reports(tmp_path), tasks=["binary"], source="x")
    chain = Chain.objects.get()
    page = client_for(carol).get(reverse("annotation:chain", args=[chain.uuid])).content.decode()
    step = next(s for s in chain.live_steps() if s.evidence)
    assert f'data-evidence-start="{step.evidence["start"]}"' in page
    assert 'data-report="current"' in page
    assert CaseImage.objects.count() == 0


def test_a_job_summary_names_no_server_file_and_an_empty_report_says_so(db: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "reports.jsonl", [*REPORTS, {"report": "   "}])
    result = mine(path, tasks=["binary"], source="web")
    problem = next(p for p in result.problems if p.kind == "rejected")
    assert problem.field == "report" and "empty" in problem.reason
    assert result.report_path is not None and str(result.report_path) in result.summary()
    assert str(result.report_path) not in result.as_dict()["summary"]  # the Mining page's copy
    assert str(result.report_path) in result.summary()  # the command still names it
