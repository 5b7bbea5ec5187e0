import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotation import services
from annotation.models import Chain, ReviewEvent, Step

HX = {"HTTP_HX_REQUEST": "true"}


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_sends_anonymous_users_to_login(make_chain: Any) -> None:
    chain = make_chain()
    response = Client().get(reverse("annotation:chain", args=[chain.uuid]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_shows_the_case_page_to_the_assigned_radiologist_only(
    make_chain: Any, alice: Any, bob: Any, carol: Any, dave: Any, eve: Any
) -> None:
    chain = make_chain(readers=(alice,))
    url = reverse("annotation:chain", args=[chain.uuid])
    page = client_for(alice).get(url)
    assert page.status_code == 200
    body = page.content.decode()
    for name in ("Correct", "Incorrect", "Irrelevant", "Edit", "Delete", "Add step", "Verify chain", "Reject chain", "Skip"):
        assert f">{name}</button>" in body
    assert client_for(bob).get(url).status_code == 404
    assert client_for(eve).get(url).status_code == 404
    assert client_for(dave).get(url).status_code == 404  # not verified yet
    curator_page = client_for(carol).get(url)
    assert curator_page.status_code == 200
    assert ">Verify chain</button>" not in curator_page.content.decode()  # curators read, readers decide


def test_it_lets_researchers_read_verified_chains(make_chain: Any, alice: Any, dave: Any) -> None:
    chain = make_chain(readers=(alice,), status=Chain.Status.VERIFIED)
    page = client_for(dave).get(reverse("annotation:chain", args=[chain.uuid]))
    assert page.status_code == 200
    assert "Read-only" in page.content.decode()
    step = chain.live_steps()[0]
    response = client_for(dave).post(reverse("annotation:step-verdict", args=[step.uuid]), {"verdict": "incorrect", "version": 1})
    assert response.status_code == 403


def test_it_marks_a_step_as_a_fragment_for_htmx(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[0]
    url = reverse("annotation:step-verdict", args=[step.uuid])
    response = client_for(alice).post(url, {"verdict": "correct", "version": 1}, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith(f'<li id="step-{step.uuid}"')
    assert "<html" not in body
    assert 'id="progress"' in body and 'hx-swap-oob="true"' in body and "1 of 3 steps judged" in body
    assert json.loads(response["HX-Trigger"]) == {"chainChanged": {}}
    step.refresh_from_db()
    assert step.verdict == "correct" and step.version == 2


def test_it_marks_a_step_without_htmx_and_redirects(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[0]
    response = client_for(alice).post(reverse("annotation:step-verdict", args=[step.uuid]), {"verdict": "irrelevant", "version": 1})
    assert response.status_code == 302
    assert response["Location"].endswith(f"#step-{step.uuid}")
    assert Step.objects.get(pk=step.pk).verdict == "irrelevant"


def test_it_refuses_a_stale_edit_and_shows_the_current_text(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[0]
    url = reverse("annotation:step-edit", args=[step.uuid])
    client = client_for(alice)
    assert client.post(url, {"text": "First tab's text.", "version": 1}, **HX).status_code == 200
    stale = client.post(url, {"text": "Second tab's text.", "version": 1}, **HX)
    assert stale.status_code == 409
    body = stale.content.decode()
    assert "changed this since you loaded it" in body
    assert "First tab&#x27;s text." in body or "First tab's text." in body  # the current text is shown
    step.refresh_from_db()
    assert step.text == "First tab's text." and step.version == 2


def test_it_opens_the_edit_form_as_a_fragment_and_as_a_page(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[1]
    client = client_for(alice)
    fragment = client.get(reverse("annotation:step-edit", args=[step.uuid]), **HX)
    assert fragment.status_code == 200 and 'name="text"' in fragment.content.decode()
    assert "<html" not in fragment.content.decode()
    page = client.get(reverse("annotation:step-edit", args=[step.uuid]))
    assert page.status_code == 302 and f"?edit={step.uuid}" in page["Location"]
    full = client.get(page["Location"])
    assert '<textarea name="text"' in full.content.decode()


def test_it_verifies_only_when_every_step_has_a_verdict(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    client = client_for(alice)
    url = reverse("annotation:chain-verify", args=[chain.uuid])
    refused = client.post(url, {"chain_version": 1}, **HX)
    assert refused.status_code == 400
    assert "3 steps still without a verdict" in refused.content.decode()
    for step in chain.live_steps():
        client.post(reverse("annotation:step-verdict", args=[step.uuid]), {"verdict": "correct", "version": step.version}, **HX)
    done = client.post(url, {"chain_version": 1, "seconds": "42.5"}, **HX)
    assert done.status_code == 200 and done["HX-Redirect"] == reverse("annotation:queue")
    chain.refresh_from_db()
    assert chain.status == Chain.Status.VERIFIED and chain.decided_by == alice
    assignment = chain.assignments.get(reader=alice)
    assert assignment.status == "done" and assignment.seconds_spent == pytest.approx(42.5)


def test_it_adds_moves_reorders_and_deletes_through_the_page(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    a, b, c = chain.live_steps()
    client = client_for(alice)
    response = client.post(reverse("annotation:step-add", args=[chain.uuid]), {"text": "Check the apices.", "chain_version": 1}, **HX)
    assert response.status_code == 200 and 'id="chain-panel"' in response.content.decode()
    assert [s.text for s in chain.live_steps()][-1] == "Check the apices."
    client.post(reverse("annotation:step-move", args=[c.uuid]), {"direction": "up", "chain_version": 2}, **HX)
    assert [s.uuid for s in chain.live_steps()][:3] == [a.uuid, c.uuid, b.uuid]
    order = [str(s.uuid) for s in reversed(list(chain.live_steps()))]
    client.post(reverse("annotation:chain-reorder", args=[chain.uuid]), {"order": order, "chain_version": 3}, **HX)
    assert [str(s.uuid) for s in chain.live_steps()] == order
    stale = client.post(reverse("annotation:step-delete", args=[a.uuid]), {"version": 1, "chain_version": 3}, **HX)
    assert stale.status_code == 409
    client.post(reverse("annotation:step-delete", args=[a.uuid]), {"version": 1, "chain_version": 4}, **HX)
    assert a.uuid not in [s.uuid for s in chain.live_steps()]


def test_it_shows_history_with_a_word_diff(make_chain: Any, alice: Any, bob: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[1]
    client = client_for(alice)
    client.post(reverse("annotation:step-edit", args=[step.uuid]), {"text": "The left angle is blunted.", "version": 1}, **HX)
    history = client.get(reverse("annotation:chain-history", args=[chain.uuid]), **HX)
    body = history.content.decode()
    assert history.status_code == 200 and body.lstrip().startswith('<div id="history">')
    assert "<del>right</del>" in body and "<ins>left</ins>" in body
    assert client.get(reverse("annotation:chain-history", args=[chain.uuid])).status_code == 200
    assert client_for(bob).get(reverse("annotation:chain-history", args=[chain.uuid])).status_code == 404


def test_it_hands_out_the_next_case_from_the_queue_page(make_chain: Any, alice: Any, carol: Any, dave: Any) -> None:
    chain = make_chain(readers=(alice,))
    client = client_for(alice)
    page = client.get(reverse("annotation:queue"))
    assert page.status_code == 200 and 'data-count="open">1<' in page.content.decode()
    response = client.post(reverse("annotation:next-case"))
    assert response["Location"] == reverse("annotation:chain", args=[chain.uuid])
    assert client_for(carol).get(reverse("annotation:queue")).status_code == 403
    assert client_for(dave).post(reverse("annotation:next-case")).status_code == 403


def test_it_records_time_reported_by_the_page(make_chain: Any, alice: Any, bob: Any) -> None:
    chain = make_chain(readers=(alice,))
    client_for(alice).post(reverse("annotation:chain-time", args=[chain.uuid]), {"seconds": "12"})
    client_for(bob).post(reverse("annotation:chain-time", args=[chain.uuid]), {"seconds": "99"})
    assert chain.assignments.get(reader=alice).seconds_spent == 12


def test_it_logs_opening_the_case_and_moves_it_into_review(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    client_for(alice).get(reverse("annotation:chain", args=[chain.uuid]))
    chain.refresh_from_db()
    assert chain.status == Chain.Status.IN_REVIEW
    assert ReviewEvent.objects.filter(chain=chain, action="open", actor=alice).exists()


def test_it_keeps_every_view_closed_to_the_wrong_people(make_chain: Any, alice: Any, bob: Any, dave: Any, eve: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[0]
    posts = [
        (reverse("annotation:step-verdict", args=[step.uuid]), {"verdict": "correct", "version": 1}),
        (reverse("annotation:step-edit", args=[step.uuid]), {"text": "x", "version": 1}),
        (reverse("annotation:step-note", args=[step.uuid]), {"note": "x", "version": 1}),
        (reverse("annotation:step-delete", args=[step.uuid]), {"version": 1, "chain_version": 1}),
        (reverse("annotation:step-move", args=[step.uuid]), {"direction": "down", "chain_version": 1}),
        (reverse("annotation:step-add", args=[chain.uuid]), {"text": "x", "chain_version": 1}),
        (reverse("annotation:chain-reorder", args=[chain.uuid]), {"order": [], "chain_version": 1}),
        (reverse("annotation:chain-verify", args=[chain.uuid]), {"chain_version": 1}),
        (reverse("annotation:chain-reject", args=[chain.uuid]), {"chain_version": 1}),
        (reverse("annotation:chain-skip", args=[chain.uuid]), {"chain_version": 1}),
    ]
    for user in (bob, dave, eve):
        client = client_for(user)
        for url, data in posts:
            assert client.post(url, data).status_code in (403, 404), (user, url)
    step.refresh_from_db()
    chain.refresh_from_db()
    assert step.version == 1 and chain.version == 1 and chain.events.count() == 0


def test_it_names_steps_in_history_by_their_position_at_the_time(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    a, b, c = chain.live_steps()
    client = client_for(alice)
    client.post(reverse("annotation:step-verdict", args=[c.uuid]), {"verdict": "incorrect", "version": 1}, **HX)
    client.post(reverse("annotation:step-move", args=[c.uuid]), {"direction": "up", "chain_version": 1}, **HX)
    body = client.get(reverse("annotation:chain-history", args=[chain.uuid]), **HX).content.decode()
    assert "step 3: unreviewed → incorrect" in body


def test_it_refuses_nul_characters_inline_instead_of_failing(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[0]
    client = client_for(alice)
    writes = [
        (reverse("annotation:step-note", args=[step.uuid]), {"note": "Blunted\x00", "version": 1}, f'<li id="step-{step.uuid}"'),
        (reverse("annotation:step-edit", args=[step.uuid]), {"text": "The angle\x00 is sharp.", "version": 1}, f'<li id="step-{step.uuid}"'),
        (reverse("annotation:step-add", args=[chain.uuid]), {"text": "Check\x00 the apices.", "chain_version": 1}, '<section id="chain-panel"'),
        (reverse("annotation:chain-reject", args=[chain.uuid]), {"note": "Wrong\x00", "chain_version": 1}, '<section id="chain-panel"'),
    ]
    for url, data, fragment in writes:
        response = client.post(url, data, **HX)
        assert response.status_code == 400, url
        body = response.content.decode()
        assert body.lstrip().startswith(fragment), url
        assert 'role="alert">Null characters are not allowed.<' in body, url  # the API's words
        plain = client.post(url, data)  # without htmx: back to the page, the message on it
        assert plain.status_code == 302
        assert "Null characters are not allowed." in client.get(plain["Location"]).content.decode()
    bad_after = client.post(reverse("annotation:step-add", args=[chain.uuid]), {"text": "x", "after": "\x00", "chain_version": 1}, **HX)
    assert bad_after.status_code == 400 and "No such step to add the new one after." in bad_after.content.decode()
    step.refresh_from_db()
    chain.refresh_from_db()
    assert (step.version, step.note, step.text) == (1, "", "Look at the costophrenic angles.")
    assert chain.version == 1 and chain.status == Chain.Status.IN_REVIEW and chain.live_steps().count() == 3


def test_it_applies_the_api_length_limits_on_the_page(make_chain: Any, alice: Any) -> None:
    from annotation.serializers import ChainDecisionSerializer, StepPatchSerializer

    text_max = StepPatchSerializer().fields["text"].max_length
    note_max = StepPatchSerializer().fields["note"].max_length
    chain_note_max = ChainDecisionSerializer().fields["note"].max_length
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[0]
    client = client_for(alice)
    page = client.get(reverse("annotation:chain", args=[chain.uuid])).content.decode()
    assert f'<input name="note" value="" maxlength="{note_max}"' in page
    assert page.count(f'<textarea name="text" rows="4" maxlength="{text_max}"') == 3  # each row's editor
    assert f'<textarea name="text" rows="2" maxlength="{text_max}" aria-label="New step text"' in page
    assert f'maxlength="{chain_note_max}" autocomplete="off" placeholder="Note on the chain"' in page

    note_url = reverse("annotation:step-note", args=[step.uuid])
    too_long = client.post(note_url, {"note": "x" * (note_max + 1), "version": 1}, **HX)
    assert too_long.status_code == 400
    assert f"A note can be at most {note_max:,} characters long; this one has {note_max + 1:,}." in too_long.content.decode()
    assert client.post(note_url, {"note": "x" * note_max, "version": 1}, **HX).status_code == 200
    edit = client.post(reverse("annotation:step-edit", args=[step.uuid]), {"text": "y" * (text_max + 1), "version": 2}, **HX)
    assert edit.status_code == 400
    assert f"A step can be at most {text_max:,} characters long" in edit.content.decode()
    add = client.post(reverse("annotation:step-add", args=[chain.uuid]), {"text": "z" * (text_max + 1), "chain_version": 1}, **HX)
    assert add.status_code == 400 and "A step can be at most" in add.content.decode()
    reject = client.post(reverse("annotation:chain-reject", args=[chain.uuid]), {"note": "n" * (chain_note_max + 1), "chain_version": 1}, **HX)
    assert reject.status_code == 400 and "A note can be at most" in reject.content.decode()
    step.refresh_from_db()
    chain.refresh_from_db()
    assert (step.version, step.note, step.text) == (2, "x" * note_max, "Look at the costophrenic angles.")
    assert chain.version == 1 and chain.status == Chain.Status.IN_REVIEW and chain.live_steps().count() == 3


def test_it_gives_enter_in_the_chain_note_no_button_to_press(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    page = client_for(alice).get(reverse("annotation:chain", args=[chain.uuid])).content.decode()
    decide = page[page.index('<form class="decide"'):]
    decide = decide[: decide.index("</form>")]
    # Implicit submission (Enter in a text field) clicks the form's first submit button, and does
    # nothing when that button is disabled: Enter in the note must not verify the chain.
    first_button = decide[decide.index("<button") : decide.index(">", decide.index("<button"))]
    assert 'type="submit"' in first_button and " disabled" in first_button
    assert decide.index("<button") < decide.index('data-action="verify"')


def test_it_enables_verify_and_clears_a_stale_error_with_the_last_verdict(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    a, b, c = chain.live_steps()
    client = client_for(alice)
    for step in (a, b):
        client.post(reverse("annotation:step-verdict", args=[step.uuid]), {"verdict": "correct", "version": 1}, **HX)
    refused = client.post(reverse("annotation:chain-verify", args=[chain.uuid]), {"chain_version": 1}, **HX).content.decode()
    assert "1 step still without a verdict" in refused
    assert 'id="verify-button" type="submit" class="primary" data-action="verify" title="Verify (v)" aria-disabled="true"' in refused

    last = client.post(reverse("annotation:step-verdict", args=[c.uuid]), {"verdict": "incorrect", "version": 1}, **HX)
    body = last.content.decode()
    assert last.status_code == 200
    # Out of band, with the row: the chain's state without the stale message, and the button.
    state = body[body.index('<div id="chain-state" hx-swap-oob="true">') :]
    assert "3 of 3 steps judged" in state and 'role="alert"' not in state
    button = body[body.index('<button id="verify-button"') :]
    button = button[: button.index("</button>")]
    assert 'hx-swap-oob="true"' in button and "aria-disabled" not in button


def test_it_keeps_the_chain_note_when_skipping_as_verify_and_reject_do(make_chain: Any, alice: Any) -> None:
    skipped, rejected = make_chain(readers=(alice,)), make_chain(readers=(alice,))
    client = client_for(alice)
    response = client.post(reverse("annotation:chain-skip", args=[skipped.uuid]), {"note": "Lateral view missing.", "chain_version": 1}, **HX)
    # Straight on to the next case; after the last one, back to the queue.
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("annotation:chain", args=[rejected.uuid])
    last = client.post(reverse("annotation:chain-reject", args=[rejected.uuid]), {"note": "Wrong side.", "chain_version": 1}, **HX)
    assert last["HX-Redirect"] == reverse("annotation:queue")
    skipped.refresh_from_db()
    rejected.refresh_from_db()
    assert (skipped.note, rejected.note) == ("Lateral view missing.", "Wrong side.")
    assert skipped.status == Chain.Status.PENDING and skipped.assignments.get(reader=alice).status == "skipped"
    assert skipped.events.get(action="skip").after == {"note": "Lateral view missing."}
    # As with verify and reject, skipping with no note keeps the note the chain had.
    client.post(reverse("annotation:chain-skip", args=[skipped.uuid]), {"note": "", "chain_version": 1}, **HX)
    skipped.refresh_from_db()
    assert skipped.note == "Lateral view missing."


def test_it_keeps_the_typed_chain_note_when_a_decision_is_refused(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    response = client_for(alice).post(reverse("annotation:chain-verify", args=[chain.uuid]), {"note": "Looks right.", "chain_version": 1}, **HX)
    assert response.status_code == 400
    assert '<input name="note" value="Looks right."' in response.content.decode()


def test_the_queue_lists_what_to_do_next_first(make_chain: Any, alice: Any) -> None:
    from annotation.models import Assignment

    chains = [make_chain(readers=(alice,)) for _ in range(4)]
    services.finish_chain(chains[0], alice, "skip")
    services.open_chain(chains[2], alice)
    Assignment.objects.filter(chain=chains[3]).update(status=Assignment.Status.DONE)
    client = Client()
    client.force_login(alice)
    page = client.get(reverse("annotation:queue")).content.decode()
    order = [page.index(f"/chains/{c.uuid}/") for c in (chains[2], chains[1], chains[0], chains[3])]
    assert order == sorted(order)  # in progress, open, skipped, done
