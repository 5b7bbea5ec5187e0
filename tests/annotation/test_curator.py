import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from annotation import demo
from annotation.models import Assignment, Case, Chain, ModelRun


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_filters_chains_as_a_page_and_as_a_fragment(make_chain: Any, carol: Any) -> None:
    make_chain(task_type="binary")
    make_chain(task_type="open", status=Chain.Status.VERIFIED)
    client = client_for(carol)
    page = client.get(reverse("annotation:curator"), {"task": "open"})
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert "1 chain ·" in page.content.decode()
    assert "Pending: 1 · Verified: 1" in client.get(reverse("annotation:curator")).content.decode()
    fragment = client.get(reverse("annotation:curator"), {"status": "pending"}, HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.lstrip().startswith('<section id="chain-table"') and "1 chain ·" in body


def test_it_assigns_selected_chains_in_bulk(make_chain: Any, carol: Any, alice: Any) -> None:
    chains = [make_chain() for _ in range(3)]
    response = client_for(carol).post(
        reverse("annotation:curator"),
        {"reader": alice.pk, "scope": "selected", "chains": [str(chains[0].uuid), str(chains[2].uuid)]},
    )
    assert response.status_code == 302
    assert set(Assignment.objects.filter(reader=alice).values_list("chain_id", flat=True)) == {chains[0].pk, chains[2].pk}
    page = client_for(carol).get(reverse("annotation:curator"))
    assert 'data-reader-open="alice">2<' in page.content.decode()


def test_it_assigns_every_chain_matching_the_filter(make_chain: Any, carol: Any, alice: Any) -> None:
    make_chain(task_type="binary")
    make_chain(task_type="binary")
    make_chain(task_type="open")
    client_for(carol).post(reverse("annotation:curator") + "?task=binary", {"reader": alice.pk, "scope": "all"})
    assert Assignment.objects.filter(reader=alice).count() == 2


def test_it_says_which_chains_it_left_alone(make_chain: Any, carol: Any, alice: Any, bob: Any) -> None:
    verified = make_chain(status=Chain.Status.VERIFIED)
    held = make_chain(readers=(bob,))
    response = client_for(carol).post(
        reverse("annotation:curator"),
        {"reader": alice.pk, "scope": "selected", "chains": [str(verified.uuid), str(held.uuid)]},
        follow=True,
    )
    page = response.content.decode()
    assert "Assigned 0 chains to alice." in page
    assert "1 already verified or rejected, 1 with another reader" in page
    assert not Assignment.objects.filter(reader=alice).exists()


def test_it_refuses_to_assign_to_a_non_radiologist(make_chain: Any, carol: Any, dave: Any) -> None:
    chain = make_chain()
    client_for(carol).post(reverse("annotation:curator"), {"reader": dave.pk, "scope": "selected", "chains": [str(chain.uuid)]})
    assert not Assignment.objects.exists()


def test_it_keeps_curator_pages_from_other_roles(alice: Any, dave: Any, eve: Any, carol: Any) -> None:
    for user in (alice, dave, eve):
        assert client_for(user).get(reverse("annotation:curator")).status_code == 403
        assert client_for(user).get(reverse("annotation:import")).status_code == 403
    assert client_for(alice).get(reverse("annotation:verified")).status_code == 403
    assert client_for(dave).get(reverse("annotation:verified")).status_code == 200
    assert client_for(carol).get(reverse("annotation:verified")).status_code == 200


def test_it_sends_each_role_home_to_its_own_page(alice: Any, carol: Any, dave: Any, eve: Any) -> None:
    assert client_for(alice).get("/")["Location"] == reverse("annotation:queue")
    assert client_for(carol).get("/")["Location"] == reverse("annotation:curator")
    assert client_for(dave).get("/")["Location"] == reverse("annotation:verified")
    assert client_for(eve).get("/").status_code == 403


def test_create_user_gives_the_role_and_prints_a_password(db: Any, capsys: Any) -> None:
    call_command("create_user", "rita", "--role", "radiologist")
    out = capsys.readouterr().out
    password = out.strip().rsplit(": ", 1)[1]
    user = get_user_model().objects.get(username="rita")
    assert user.check_password(password) and user.groups.filter(name="radiologist").exists()
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", "rita", "--role", "curator")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        # A ValueError traceback, a DataError (varchar 150) traceback, then names no login
        # form takes and passwords the validators refuse, all once accepted.
        (("",), "username '': This field cannot be blank."),
        (("r" * 200,), "at most 150 characters"),
        (("bad name!",), "Enter a valid username"),
        (("rita", "--password", "x"), "--password: This password is too short"),
        (("rita", "--password", "password123"), "This password is too common"),
        (("rita", "--email", "not-an-address"), "email 'not-an-address': Enter a valid email address."),
    ],
)
def test_create_user_refuses_what_the_user_model_refuses(db: Any, arguments: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("create_user", *arguments, "--role", "curator")
    assert not get_user_model().objects.exists()


def test_create_user_takes_a_password_the_validators_accept(db: Any, capsys: Any) -> None:
    call_command("create_user", "rita.m@x", "--role", "curator", "--password", "umbra-lateral-view-7")
    assert capsys.readouterr().out.strip().endswith("with password: umbra-lateral-view-7")
    assert get_user_model().objects.get(username="rita.m@x").check_password("umbra-lateral-view-7")


def test_the_demo_creates_users_and_cases_once(db: Any, settings: Any, capsys: Any) -> None:
    settings.DEBUG = True
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Imported 12 cases, 0 rejected" in out and "alice / alice-reads-films / radiologist" in out
    assert Case.objects.filter(source="demo").count() == 12
    assert set(Case.objects.values_list("task_type", flat=True)) == {"binary", "single", "multi", "open", "temporal"}
    temporal = Case.objects.filter(task_type="temporal").first()
    assert [ci.label for ci in temporal.case_images.all()] == ["prior", "current"]
    assert Assignment.objects.filter(reader__username="alice").count() == 12
    # Two model runs to compare, scored on import; the base model's three worst chains for bob.
    assert "Model run demo-sft-3b: Imported 12 predictions" in out
    sft, base = (ModelRun.objects.get(name=name) for name, _ in demo.RUNS)
    assert sft.predictions.count() == base.predictions.count() == 12
    mean = {
        run.name: sum(p.radrscore for p in run.predictions.all()) / 12 for run in (sft, base)
    }
    accuracy = {run.name: sum(p.correct for p in run.predictions.all()) for run in (sft, base)}
    assert mean["demo-sft-3b"] > mean["demo-base-3b"]
    assert accuracy["demo-sft-3b"] > accuracy["demo-base-3b"]
    sent = Assignment.objects.filter(reader__username="bob").select_related("chain")
    assert sent.count() == 3 and all(a.chain.origin == Chain.Origin.MODEL for a in sent)
    lowest = sorted(base.predictions.all(), key=lambda p: p.radrscore)[:3]
    assert {a.chain_id for a in sent} == {p.chain_id for p in lowest}
    client = Client()
    client.force_login(get_user_model().objects.get(username="bob"))
    page = client.get(reverse("annotation:queue")).content.decode()
    assert page.count('data-origin="model"') == 3 and "Model run" in page
    call_command("seed_demo")
    assert "already present" in capsys.readouterr().out
    assert Case.objects.count() == 12 and ModelRun.objects.count() == 2
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        call_command("seed_demo")
    assert demo.USERS[0][0] == "alice"
