"""Double reading: private copies, blinding, and the senior reader's settlement."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from annotation import services
from annotation.models import Chain, ReviewEvent, Step, WorkflowError
from annotation.reading import Choice, assign_double, awaiting_adjudication, pair_for, settle

STEPS = ("Look at the costophrenic angles.", "The right angle is blunted.", "Answer: A) Yes.")


@pytest.fixture
def senior(db: Any) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="grace", password="grace-password")
    services.set_role(user, "adjudicator")
    return user


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def copy_of(chain: Chain, reader: Any) -> Chain:
    return chain.derived.get(purpose=Chain.Purpose.READING, assignments__reader=reader)


def read(chain: Chain, reader: Any, verdicts: list[str], *, edit: dict[int, str] | None = None, decision: str = "verify", note: str = "") -> Chain:
    copy = copy_of(chain, reader)
    for index, (step, verdict) in enumerate(zip(list(copy.live_steps()), verdicts)):
        step.mark(verdict, by=reader, expected=step.version)
        if edit and index in edit:
            step.edit(edit[index], by=reader, expected=step.version)
    copy.refresh_from_db()
    services.finish_chain(copy, reader, decision, note=note)
    return copy


def test_it_assigns_a_chain_to_two_readers_as_private_copies(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    reference = make_chain(steps=STEPS)
    first = reference.steps.get(position=1)
    first.mark("incorrect", by=carol, expected=first.version)  # a verdict on the reference is not copied
    result = assign_double([reference], alice, bob, by=carol)
    assert result.created == 1 and not result.skipped
    copies = list(reference.derived.order_by("id"))
    assert [c.purpose for c in copies] == ["reading", "reading"]
    assert [c.assignments.get().reader for c in copies] == [alice, bob]
    for copy in copies:
        steps = list(copy.live_steps())
        assert [s.text for s in steps] == list(STEPS)
        assert [s.source_step for s in steps] == list(reference.live_steps())
        assert {s.verdict for s in steps} == {"unreviewed"}
    reference.refresh_from_db()
    assert reference.status == Chain.Status.IN_REVIEW and not reference.assignments.exists()
    # a second request for the same chain changes nothing
    again = assign_double([reference], alice, bob, by=carol)
    assert again.created == 0 and "already double read" in again.skipped[0]


def test_it_refuses_the_wrong_readers(make_chain: Any, alice: Any, carol: Any, dave: Any) -> None:
    chain = make_chain()
    with pytest.raises(WorkflowError, match="two different readers"):
        assign_double([chain], alice, alice, by=carol)
    with pytest.raises(WorkflowError, match="not a radiologist"):
        assign_double([chain], alice, dave, by=carol)


def test_it_skips_a_chain_already_given_to_one_reader(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    chain = make_chain(readers=(alice,))
    result = assign_double([chain], alice, bob, by=carol)
    assert result.created == 0 and "single reader" in result.skipped[0]


def test_it_keeps_each_reader_blind_to_the_other_reading(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    alices = read(reference, alice, ["correct", "incorrect", "correct"], edit={1: "Alice's secret rewrite."})
    bobs = copy_of(reference, bob)
    client = client_for(bob)
    # Bob's own page shows his untouched copy, none of Alice's verdicts or words.
    page = client.get(f"/chains/{bobs.uuid}/")
    assert page.status_code == 200 and b"Alice's secret rewrite." not in page.content
    assert b"verdict-incorrect" not in page.content
    # Alice's copy, its history and the reference are out of reach, on the page and the API.
    for url in (f"/chains/{alices.uuid}/", f"/chains/{alices.uuid}/history/", f"/chains/{reference.uuid}/",
                f"/api/v1/chains/{alices.uuid}/", f"/api/v1/chains/{reference.uuid}/",
                f"/api/v1/steps/{alices.live_steps()[1].uuid}/"):
        assert client.get(url).status_code == 404, url
    listed = client.get("/api/v1/chains/").json()["results"]
    assert [c["uuid"] for c in listed] == [str(bobs.uuid)]
    assert all(s["verdict"] == "unreviewed" for s in listed[0]["steps"])
    assert b"secret" not in client.get("/api/v1/cases/").content
    assert b"secret" not in client.get(f"/chains/{bobs.uuid}/history/").content
    # Nor does the adjudication page open to a reader.
    assert client.get(f"/adjudication/{reference.uuid}/").status_code == 403


def test_it_lists_a_pair_for_adjudication_only_when_both_have_finished(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct"] * 3)
    assert not awaiting_adjudication().exists()
    read(reference, bob, ["correct", "incorrect", "correct"])
    assert list(awaiting_adjudication()) == [reference]


def test_it_aligns_both_readings_and_marks_the_disputes(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct", "incorrect", "correct"], edit={1: "The right angle is sharp."})
    bobs = copy_of(reference, bob)
    services.add_step(bobs, "No pneumothorax.", by=bob, expected=bobs.version, after=bobs.live_steps()[0])
    read(reference, bob, ["correct", "correct", "correct", "correct"])
    rows = pair_for(reference).rows()
    assert [r.original_text for r in rows] == [STEPS[0], "No pneumothorax.", STEPS[1], STEPS[2]]
    assert [r.differences for r in rows] == [[], ["added by one reader only"], ["verdict", "text"], []]
    assert rows[1].first is None and rows[1].second.text == "No pneumothorax."


def test_it_settles_disputed_steps_into_the_adjudicated_chain(make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct", "incorrect", "correct"], edit={1: "The right angle is sharp."})
    bobs = copy_of(reference, bob)
    services.add_step(bobs, "No pneumothorax.", by=bob, expected=bobs.version)
    read(reference, bob, ["correct", "correct", "irrelevant", "correct"])
    rows = pair_for(reference).rows()
    disputed = [r.key for r in rows if r.disputed]
    assert len(disputed) == 3
    with pytest.raises(WorkflowError, match="Settle every disputed step"):
        settle(reference, {}, outcome="verify", by=senior)
    choices = {disputed[0]: Choice("first"), disputed[1]: Choice("own", "incorrect", "The left angle is blunted."),
               disputed[2]: Choice("second")}
    chain = settle(reference, choices, outcome="verify", by=senior, note="settled")
    assert (chain.purpose, chain.status, chain.derived_from, chain.decided_by) == ("adjudicated", "verified", reference, senior)
    steps = list(chain.steps.order_by("position", "id"))
    assert [(s.text, s.original_text, s.verdict, s.added_by_reader) for s in steps] == [
        (STEPS[0], STEPS[0], "correct", False),
        ("The right angle is sharp.", STEPS[1], "incorrect", False),
        ("The left angle is blunted.", STEPS[2], "incorrect", False),
        ("No pneumothorax.", "No pneumothorax.", "correct", True),
    ]
    assert ReviewEvent.objects.filter(chain=chain, action="adjudicate", actor=senior).exists()
    assert not awaiting_adjudication().exists()
    with pytest.raises(WorkflowError, match="already been settled"):
        settle(reference, choices, outcome="verify", by=senior)


def test_it_refuses_to_settle_for_a_reader_or_before_both_finish(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    with pytest.raises(WorkflowError, match="senior reader"):
        settle(reference, {}, outcome="verify", by=alice)
    read(reference, alice, ["correct"] * 3)
    with pytest.raises(WorkflowError, match="Both readers must finish"):
        settle(reference, {}, outcome="verify", by=carol)
    assert Step.objects.filter(chain__purpose="adjudicated").count() == 0


def test_it_shows_the_adjudication_page_and_settles_from_the_form(make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any, eve: Any) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct", "incorrect", "correct"])
    read(reference, bob, ["correct", "correct", "correct"])
    for user in (alice, bob, eve):
        assert client_for(user).get(f"/adjudication/{reference.uuid}/").status_code == 403
        assert client_for(user).get("/adjudication/").status_code == 403
    client = client_for(senior)
    listing = client.get("/adjudication/")
    assert listing.status_code == 200 and f"/adjudication/{reference.uuid}/".encode() in listing.content
    page = client.get(f"/adjudication/{reference.uuid}/")
    assert page.status_code == 200 and page.content.count(b'class="disputed"') == 1
    assert b"diff-field" in page.content and b"1 disputed step" in page.content
    (row,) = [r for r in pair_for(reference).rows() if r.disputed]
    missing = client.post(f"/adjudication/{reference.uuid}/", {"outcome": "verify"}, headers={"HX-Request": "true"})
    assert missing.status_code == 400 and b"Settle every disputed step" in missing.content and b"<html" not in missing.content
    done = client.post(f"/adjudication/{reference.uuid}/", {"outcome": "verify", f"{row.key}-take": "second"})
    assert done.status_code == 302
    settled = reference.derived.get(purpose="adjudicated")
    assert [s.verdict for s in settled.live_steps()] == ["correct", "correct", "correct"]
    assert b"Settled by grace" in client.get(f"/adjudication/{reference.uuid}/").content
    assert client_for(carol).get(f"/adjudication/{reference.uuid}/").status_code == 200


def test_it_assigns_two_readers_from_the_curator_page(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    chain = make_chain()
    response = client_for(carol).post("/curator/", {"reader": alice.pk, "second_reader": bob.pk, "scope": "selected", "chains": [str(chain.uuid)]})
    assert response.status_code == 302
    copies = chain.derived.filter(purpose="reading")
    assert sorted(c.assignments.get().reader.username for c in copies) == ["alice", "bob"]
    assert not chain.assignments.exists()


def test_it_gives_the_senior_reader_a_home_and_a_nav_link(alice: Any, carol: Any, senior: Any, eve: Any) -> None:
    client = client_for(senior)
    assert client.get("/")["Location"] == "/adjudication/"
    page = client.get("/adjudication/")
    nav = page.content.decode().split('<nav aria-label="Main">')[1].split("</nav>")[0]
    assert page.status_code == 200 and nav.count('href="/adjudication/"') == 1
    for other in ("/queue/", "/curator/", "/verified/", "/dashboard/", "/models/compare/"):
        assert f'href="{other}"' not in nav
        assert client.get(other).status_code == 403, other  # other roles' pages stay closed
    curators_nav = client_for(carol).get("/curator/").content.decode()
    assert curators_nav.count('href="/adjudication/"') == 1  # a curator settles readings too
    assert 'href="/adjudication/"' not in client_for(alice).get("/queue/").content.decode()
    assert client_for(eve).get("/").status_code == 403


def _settled_case(make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any, outcome: str = "verify") -> tuple[Chain, Chain]:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct", "incorrect", "correct"])
    read(reference, bob, ["correct", "correct", "correct"])
    (row,) = [r for r in pair_for(reference).rows() if r.disputed]
    settled = settle(reference, {row.key: Choice("second")}, outcome=outcome, by=senior)
    reference.refresh_from_db()
    return reference, settled


def test_it_closes_the_reference_once_the_readings_are_settled(make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any, dave: Any) -> None:
    from annotation.dashboard import status_by_task
    from annotation.exporting import ExportOptions, select_chains
    from annotation.predictions import reference_chain

    version = make_chain().version  # a second, untouched case for the counts
    reference, settled = _settled_case(make_chain, alice, bob, carol, senior)
    assert (reference.status, reference.decided_by, reference.decided_at) == ("verified", senior, settled.decided_at)
    assert reference.version == version + 1
    event = reference.events.get(action="adjudicated")
    assert (event.actor, event.before, event.after) == (
        senior, {"status": "in_review"}, {"chain": str(settled.uuid), "status": "verified"}
    )
    # The settled chain stands for the case, once, wherever readings are counted or shown.
    assert set(select_chains(ExportOptions())) == {settled}
    assert status_by_task()["totals"] == [1, 0, 1, 0]  # pending, in review, verified, rejected
    assert b"Pending: 1 \xc2\xb7 Verified: 1" in client_for(carol).get("/curator/").content
    assert reference_chain(reference.case) == settled
    assert set(services.visible_chains(dave)) == {settled}
    listing = client_for(dave).get("/verified/").content.decode()
    assert listing.count("<tr><td><a") == 1 and f"/chains/{settled.uuid}/" in listing
    assert client_for(dave).get(f"/chains/{reference.uuid}/").status_code == 404
    assert not awaiting_adjudication().exists()


def test_it_rejects_the_reference_when_the_readings_are_settled_as_rejected(make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any) -> None:
    reference, settled = _settled_case(make_chain, alice, bob, carol, senior, outcome="reject")
    assert (settled.status, reference.status, reference.decided_by) == ("rejected", "rejected", senior)
    assert reference.events.get(action="adjudicated").after["status"] == "rejected"


def test_the_adjudication_page_of_a_model_chain_shows_the_models_answer(
    make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any
) -> None:
    from annotation.models import ModelRun, Prediction

    reference = make_chain(steps=STEPS)
    Chain.objects.filter(pk=reference.pk).update(origin=Chain.Origin.MODEL)
    run = ModelRun.objects.create(name="sft")
    Prediction.objects.create(run=run, case=reference.case, chain=reference, answer=["B"], correct=False)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct", "incorrect", "correct"])
    read(reference, bob, ["correct", "correct", "correct"])
    page = client_for(senior).get(f"/adjudication/{reference.uuid}/").content.decode()
    assert "Model's answer:</strong> B" in page and "✗ wrong" in page
    assert "sft" not in page  # which model it was stays hidden, as on the review page



def test_a_chain_out_for_double_reading_is_not_given_to_a_single_reader(
    make_chain: Any, alice: Any, bob: Any, carol: Any
) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    assigned = services.assign_chains([reference], bob, by=carol)
    assert (assigned.created, assigned.double_read) == (0, 1)
    assert "1 out for double reading" in assigned.message(bob)
    assert not reference.assignments.exists()
    unassigned = client_for(carol).get("/curator/", {"assigned": "no"}).content.decode()
    assigned_page = client_for(carol).get("/curator/", {"assigned": "yes"}).content.decode()
    assert str(reference.uuid) not in unassigned and str(reference.uuid) in assigned_page


def test_it_keeps_what_was_entered_when_the_settle_form_is_refused(
    make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any
) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct", "incorrect", "correct"])
    read(reference, bob, ["correct", "correct", "irrelevant"])
    second, third = [r for r in pair_for(reference).rows() if r.disputed]
    client = client_for(senior)
    page = client.get(f"/adjudication/{reference.uuid}/").content.decode()
    assert "checked" not in page and f'name="{second.key}-verdict" aria-label="Verdict for step 2" required' not in page
    sent = {
        "outcome": "verify", "note": "Left side seen on the lateral",
        f"{second.key}-take": "first",
        f"{third.key}-take": "own", f"{third.key}-text": "Answer: B) No.",  # own, but no verdict
    }
    for headers in ({}, {"HX-Request": "true"}):
        refused = client.post(f"/adjudication/{reference.uuid}/", sent, headers=headers)
        html = refused.content.decode()
        assert refused.status_code == 400 and "Choose a verdict for" in html
        assert f'name="{second.key}-take" value="first" required checked' in html
        assert f'name="{third.key}-take" value="own" required checked' in html
        assert html.count(" checked") == 2
        assert 'value="Answer: B) No."' in html and 'value="Left side seen on the lateral"' in html
        # The browser asks for the missing verdict next time, before sending.
        assert f'name="{third.key}-verdict" aria-label="Verdict for step 3" required' in html
    sent[f"{third.key}-verdict"] = "incorrect"
    refused = client.post(f"/adjudication/{reference.uuid}/", {**sent, f"{second.key}-take": ""})
    assert refused.status_code == 400
    assert '<option value="incorrect" selected>' in refused.content.decode()
    assert client.post(f"/adjudication/{reference.uuid}/", sent).status_code == 302
    settled = reference.derived.get(purpose="adjudicated")
    assert settled.note == "Left side seen on the lateral"
    assert [(s.text, s.verdict) for s in settled.live_steps()][2] == ("Answer: B) No.", "incorrect")


def test_it_shows_each_readers_decision_and_note(
    make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any
) -> None:
    reference = make_chain(steps=STEPS)
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct", "incorrect", "correct"], note="Effusion on the right")
    read(reference, bob, ["correct", "correct", "correct"], decision="reject", note="Prior image looks mislabeled")
    page = client_for(senior).get(f"/adjudication/{reference.uuid}/").content.decode()
    assert "Note: “Prior image looks mislabeled”" in page and "Note: “Effusion on the right”" in page
    assert '<strong>bob</strong> <span class="decision-rejected">rejected</span>' in page
    assert '<strong>alice</strong> <span class="decision-verified">verified</span>' in page
    assert "1 disputed step · <span class=\"decisions-differ\">the readers' decisions differ: alice verified, bob rejected" in page

    # Two readers who decided alike: no such warning.
    agreed = make_chain(steps=STEPS)
    assign_double([agreed], alice, bob, by=carol)
    read(agreed, alice, ["correct"] * 3)
    read(agreed, bob, ["correct"] * 3)
    page = client_for(senior).get(f"/adjudication/{agreed.uuid}/").content.decode()
    assert "decisions differ" not in page and page.count("no note") == 2


def test_it_labels_the_images_and_shows_both_reports_of_a_temporal_case(
    make_chain: Any, alice: Any, bob: Any, carol: Any, senior: Any
) -> None:
    from annotation.models import Image, Report

    images = tuple(
        Image.objects.create(sha256=f"{n:064d}", kind=Image.Kind.PNG, width=8, height=8) for n in (1, 2)
    )
    reference = make_chain(steps=STEPS, task_type="temporal", images=images)
    case = reference.case
    case.case_images.filter(position=0).update(label="prior")
    case.case_images.filter(position=1).update(label="current")
    case.prior_report = Report.objects.create(text="FINDINGS: Clear lungs. IMPRESSION: Normal.")
    case.save(update_fields=["prior_report"])
    assign_double([reference], alice, bob, by=carol)
    read(reference, alice, ["correct"] * 3)
    read(reference, bob, ["correct"] * 3)
    page = client_for(senior).get(f"/adjudication/{reference.uuid}/").content.decode()
    assert page.index("<figcaption><strong>Prior</strong>") < page.index("<figcaption><strong>Current</strong>")
    assert "<summary>Prior report</summary><p>FINDINGS: Clear lungs." in page
    assert "<summary>Current report</summary><p>FINDINGS: Right pleural effusion." in page
