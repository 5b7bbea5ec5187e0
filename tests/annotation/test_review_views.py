import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

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
