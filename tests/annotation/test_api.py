import uuid
from typing import Any

from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Chain, ReviewEvent, Step


def api_for(user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_it_requires_a_token(make_chain: Any) -> None:
    make_chain()
    assert APIClient().get("/api/v1/chains/").status_code == 401


def test_it_lists_only_visible_chains(make_chain: Any, alice: Any, bob: Any, carol: Any, dave: Any) -> None:
    mine = make_chain(readers=(alice,))
    make_chain(readers=(bob,))
    verified = make_chain(readers=(bob,), status=Chain.Status.VERIFIED)
    assert [c["uuid"] for c in api_for(alice).get("/api/v1/chains/").json()["results"]] == [str(mine.uuid)]
    assert len(api_for(carol).get("/api/v1/chains/").json()["results"]) == 3
    assert [c["uuid"] for c in api_for(dave).get("/api/v1/chains/").json()["results"]] == [str(verified.uuid)]
    detail = api_for(alice).get(f"/api/v1/chains/{mine.uuid}/").json()
    assert detail["version"] == 1 and [s["position"] for s in detail["steps"]] == [1, 2, 3]
    assert api_for(alice).get(f"/api/v1/chains/{verified.uuid}/").status_code == 404
    cases = api_for(alice).get("/api/v1/cases/").json()["results"]
    assert [c["uuid"] for c in cases] == [str(mine.case.uuid)]


def test_it_patches_a_step_and_refuses_a_stale_version_with_409(make_chain: Any, alice: Any) -> None:
    step = make_chain(readers=(alice,)).live_steps()[0]
    client = api_for(alice)
    url = f"/api/v1/steps/{step.uuid}/"
    ok = client.patch(url, {"version": 1, "verdict": "incorrect", "text": "Corrected step."}, format="json")
    assert ok.status_code == 200
    assert ok.json()["verdict"] == "incorrect" and ok.json()["text"] == "Corrected step."
    assert ok.json()["original_text"] == "Look at the costophrenic angles."
    version = ok.json()["version"]
    stale = client.patch(url, {"version": 1, "verdict": "correct"}, format="json")
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == version and stale.json()["current"]["verdict"] == "incorrect"
    assert client.patch(url, {"version": version}, format="json").status_code == 400
    assert client.patch(url, {"version": version, "verdict": "maybe"}, format="json").status_code == 400


def test_it_refuses_step_changes_from_readers_not_assigned(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    step = make_chain(readers=(alice,)).live_steps()[0]
    assert api_for(bob).patch(f"/api/v1/steps/{step.uuid}/", {"version": 1, "verdict": "correct"}, format="json").status_code == 404
    assert api_for(carol).patch(f"/api/v1/steps/{step.uuid}/", {"version": 1, "verdict": "correct"}, format="json").status_code == 403


def test_it_verifies_a_chain_through_the_api(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    client = api_for(alice)
    url = f"/api/v1/chains/{chain.uuid}/verify/"
    refused = client.post(url, {"version": 1}, format="json")
    assert refused.status_code == 400 and "without a verdict" in refused.json()["detail"]
    for step in chain.live_steps():
        client.patch(f"/api/v1/steps/{step.uuid}/", {"version": step.version, "verdict": "correct"}, format="json")
    assert client.post(url, {"version": 7}, format="json").status_code == 409
    done = client.post(url, {"version": 1}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "verified" and done.json()["decided_by"] == "alice"


def test_it_lets_only_curators_create_assignments(make_chain: Any, alice: Any, carol: Any) -> None:
    chain = make_chain()
    body = {"chain": str(chain.uuid), "reader": "alice"}
    assert api_for(alice).post("/api/v1/assignments/", body, format="json").status_code == 403
    created = api_for(carol).post("/api/v1/assignments/", body, format="json")
    assert created.status_code == 201 and created.json()["reader"] == "alice"
    assert [a["chain"] for a in api_for(alice).get("/api/v1/assignments/").json()["results"]] == [str(chain.uuid)]
    wrong = api_for(carol).post("/api/v1/assignments/", {"chain": str(chain.uuid), "reader": "carol"}, format="json")
    assert wrong.status_code == 400


def test_it_serves_the_openapi_schema_and_docs(alice: Any) -> None:
    client = api_for(alice)
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/steps/{uuid}/" in schema.json()["paths"]
    assert client.get(reverse("api-docs")).status_code == 200
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert anonymous.get(reverse("api-schema")).status_code in (401, 403)
    assert anonymous.get(reverse("api-docs")).status_code in (401, 403)


def test_it_refuses_unknown_tokens_and_inactive_users(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get(f"/api/v1/chains/{chain.uuid}/").status_code == 401
    client = api_for(alice)
    assert client.get(f"/api/v1/chains/{chain.uuid}/").status_code == 200
    alice.is_active = False
    alice.save()
    assert client.get(f"/api/v1/chains/{chain.uuid}/").status_code == 401


def test_it_reads_a_chain_in_two_queries(make_chain: Any, alice: Any, django_assert_max_num_queries: Any) -> None:
    # The token with its user and roles, then the reader's chain with its live steps: the review
    # page's API calls stay constant-cost however many chains and assignments there are.
    chain = make_chain(readers=(alice,))
    services.delete_step(chain.live_steps()[1], by=alice, expected_step=1, expected_chain=1)
    client = api_for(alice)
    with django_assert_max_num_queries(2):
        body = client.get(f"/api/v1/chains/{chain.uuid}/").json()
    assert [s["position"] for s in body["steps"]] == [1, 2]  # the deleted step is left out
    assert [s["text"] for s in body["steps"]] == ["Look at the costophrenic angles.", "Answer: A) Yes."]


def test_it_patches_a_step_in_three_queries_with_its_audit_events(make_chain: Any, alice: Any, django_assert_max_num_queries: Any) -> None:
    # Token with user and roles, the step with its chain and the assignment, then one statement
    # that checks the version, writes and logs the event. Two changes in one PATCH add a write
    # (and a transaction around both: savepoints here, as the test runs in one).
    step = make_chain(readers=(alice,)).live_steps()[0]
    client = api_for(alice)
    url = f"/api/v1/steps/{step.uuid}/"
    with django_assert_max_num_queries(3):
        assert client.patch(url, {"version": 1, "verdict": "incorrect"}, format="json").status_code == 200
    with django_assert_max_num_queries(6):
        both = client.patch(url, {"version": 2, "verdict": "correct", "text": "Corrected  step."}, format="json")
    assert both.status_code == 200 and both.json()["version"] == 4
    assert both.json()["chain"] == str(step.chain.uuid) and both.json()["text"] == "Corrected step."
    events = [(e.action, e.before, e.after) for e in ReviewEvent.objects.filter(step=step).order_by("id")]
    assert events == [
        ("verdict", {"verdict": "unreviewed"}, {"verdict": "incorrect", "at": 1}),
        ("edit", {"text": "Look at the costophrenic angles."}, {"text": "Corrected step.", "at": 1}),
        ("verdict", {"verdict": "incorrect"}, {"verdict": "correct", "at": 1}),
    ]
    with django_assert_max_num_queries(4):  # the refused write reads the current row for the 409
        stale = client.patch(url, {"version": 3, "verdict": "irrelevant"}, format="json")
    assert stale.status_code == 409 and stale.json()["current"]["version"] == 4
    assert stale.json()["current"]["verdict"] == "correct"
    assert ReviewEvent.objects.filter(step=step).count() == 3
    assert Step.objects.get(pk=step.pk).verdict == "correct"


def test_it_lets_a_curator_read_a_step_but_not_change_it(make_chain: Any, alice: Any, carol: Any) -> None:
    step = make_chain(readers=(alice,)).live_steps()[0]
    assert api_for(carol).get(f"/api/v1/steps/{step.uuid}/").json()["version"] == 1
    assert api_for(carol).patch(f"/api/v1/steps/{step.uuid}/", {"version": 1, "verdict": "correct"}, format="json").status_code == 403
    assert api_for(alice).get(f"/api/v1/steps/{step.uuid}/").status_code == 200


def test_it_renders_steps_exactly_as_drf_would(make_chain: Any, alice: Any) -> None:
    # StepSerializer writes its fields out by hand for speed: it must stay what DRF's own
    # field-by-field rendering gives, key order included.
    from rest_framework import serializers

    from annotation.serializers import StepSerializer

    step = make_chain(readers=(alice,)).live_steps()[0]
    step.mark("incorrect", by=alice, expected=1)
    Step.objects.filter(pk=step.pk).update(finding={"observation": "effusion", "status": "present"}, note="Ünïcode")
    for loaded in (Step.objects.select_related("chain").get(pk=step.pk), step):
        serializer = StepSerializer(loaded)
        generic = serializers.Serializer.to_representation(serializer, loaded)
        assert list(serializer.data.items()) == list(generic.items())


def test_it_shows_a_reader_their_chain_as_the_generic_path_does(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    # A reader's GET takes a written-out query (services.assigned_chain); curators go through
    # the viewset's queryset. Both must render the same chain the same way: decider, source
    # chain, deleted steps left out, JSON fields decoded.
    from annotation.serializers import ChainSerializer, for_chain_serializer

    source = make_chain()
    chain = make_chain(readers=(alice,))
    services.delete_step(chain.live_steps()[1], by=alice, expected_step=1, expected_chain=1)
    Step.objects.filter(chain=chain, position=1).update(finding={"observation": "effusion", "status": "present"})
    Chain.objects.filter(pk=chain.pk).update(derived_from=source, decided_by=carol, status=Chain.Status.REJECTED)
    empty = make_chain(steps=(), readers=(alice,))
    for each in (chain, empty, source):
        expected = ChainSerializer(for_chain_serializer(Chain.objects.filter(pk=each.pk)).get()).data
        assert api_for(carol).get(f"/api/v1/chains/{each.uuid}/").json() == expected
    for each in (chain, empty):
        expected = ChainSerializer(for_chain_serializer(Chain.objects.filter(pk=each.pk)).get()).data
        assert api_for(alice).get(f"/api/v1/chains/{each.uuid}/").json() == expected
    body = api_for(alice).get(f"/api/v1/chains/{chain.uuid}/").json()
    assert body["decided_by"] == "carol" and body["derived_from"] == str(source.uuid)
    assert [s["position"] for s in body["steps"]] == [1, 2] and body["steps"][0]["finding"]["status"] == "present"
    assert api_for(alice).get(f"/api/v1/chains/{empty.uuid}/").json()["steps"] == []


def test_it_answers_404_to_a_reader_not_assigned_to_the_chain(make_chain: Any, alice: Any, bob: Any) -> None:
    chain = make_chain(readers=(alice,))
    refused = api_for(bob).get(f"/api/v1/chains/{chain.uuid}/")
    assert refused.status_code == 404 and refused.json() == {"detail": "No Chain matches the given query."}
    assert api_for(bob).get(f"/api/v1/chains/{uuid.uuid4()}/").status_code == 404
    malformed = api_for(alice).get("/api/v1/chains/not-a-uuid/")
    assert malformed.status_code == 404 and malformed.json() == {"detail": "Not found."}
    # List filters narrow the detail view too, for readers as for everyone.
    assert api_for(alice).get(f"/api/v1/chains/{chain.uuid}/?status=verified").status_code == 404
    assert api_for(alice).get(f"/api/v1/chains/{chain.uuid}/?status=pending").status_code == 200


def test_it_answers_404_to_a_patch_of_a_step_out_of_reach(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    chain = make_chain(readers=(alice,))
    first, second = chain.live_steps()[:2]
    services.delete_step(second, by=alice, expected_step=1, expected_chain=1)
    body = {"version": 1, "verdict": "correct"}
    refused = api_for(bob).patch(f"/api/v1/steps/{first.uuid}/", body, format="json")
    assert refused.status_code == 404 and refused.json() == {"detail": "No Step matches the given query."}
    assert api_for(alice).patch(f"/api/v1/steps/{second.uuid}/", body, format="json").status_code == 404
    assert api_for(alice).patch("/api/v1/steps/not-a-uuid/", body, format="json").status_code == 404
    assert api_for(carol).patch(f"/api/v1/steps/{first.uuid}/", body, format="json").status_code == 403
    Chain.objects.filter(pk=chain.pk).update(status=Chain.Status.VERIFIED)
    assert api_for(alice).patch(f"/api/v1/steps/{first.uuid}/", body, format="json").status_code == 403
    assert Step.objects.get(pk=first.pk).verdict == "unreviewed"


def test_it_answers_a_readers_patch_as_the_step_now_is(make_chain: Any, alice: Any) -> None:
    from annotation.serializers import StepSerializer

    step = make_chain(readers=(alice,)).live_steps()[0]
    Step.objects.filter(pk=step.pk).update(finding={"observation": "effusion", "status": "present"})
    done = api_for(alice).patch(f"/api/v1/steps/{step.uuid}/", {"version": 1, "verdict": "correct"}, format="json")
    assert done.status_code == 200
    assert done.json() == StepSerializer(Step.objects.select_related("chain").get(pk=step.pk)).data



def test_it_answers_400_to_list_filters_postgresql_cannot_store(make_chain: Any, carol: Any) -> None:
    # A NUL character in a query parameter reached PostgreSQL as a 500 (DataError).
    make_chain()
    client = api_for(carol)
    for name in ("status", "origin", "task", "source", "purpose", "case", "since"):
        refused = client.get(f"/api/v1/chains/?{name}=%00")
        assert refused.status_code == 400, name
        assert list(refused.json()) == [name]
    assert client.get("/api/v1/chains/?source=a%00b").json() == {"source": "contains a NUL character"}
    assert client.get("/api/v1/chains/?source=test").json()["count"] == 1
    assert client.get("/api/v1/chains/?source=other").json()["count"] == 0


def test_it_names_the_allowed_values_of_an_unknown_choice_filter(make_chain: Any, alice: Any, carol: Any) -> None:
    # An unknown value was an empty 200: a misspelt filter read as "there are no such chains".
    chain = make_chain(readers=(alice,))
    client = api_for(carol)
    for query, allowed in (
        ("status=bogus", "pending, in_review, verified, rejected"),
        ("origin=x", "imported, mined_rule, mined_llm, model, radiologist"),
        ("task=zzz", "binary, single"),
        ("purpose=x", "reference, reading, adjudicated"),
    ):
        refused = client.get(f"/api/v1/chains/?{query}")
        name, value = query.split("=")
        assert refused.status_code == 400, query
        message = refused.json()[name]
        assert f"unknown {name} '{value}'" in message and allowed in message, message
    assert client.get("/api/v1/chains/?status=pending&origin=mined_llm&task=binary&purpose=reference").json()["count"] == 1
    # A reader's detail view honours the filters too, through the same checks.
    assert api_for(alice).get(f"/api/v1/chains/{chain.uuid}/?status=bogus").status_code == 400


def test_it_answers_400_to_a_page_out_of_range(make_chain: Any, carol: Any, dave: Any) -> None:
    # A limit past bigint's range was a 500 ("bigint out of range"); DRF ignored one that was
    # no number at all.
    make_chain()
    client = api_for(carol)
    for endpoint in ("chains", "cases", "assignments", "snapshots", "runs"):
        for query, name in (
            ("limit=100000000000000000000", "limit"), ("limit=0", "limit"), ("limit=ten", "limit"),
            ("limit=1001", "limit"), ("offset=-1", "offset"), ("offset=x", "offset"),
        ):
            refused = client.get(f"/api/v1/{endpoint}/?{query}")
            assert refused.status_code == 400, (endpoint, query)
            assert "must be a whole number" in refused.json()[name]
    assert client.get("/api/v1/chains/?offset=100000000000000000000").json()["results"] == []
    page = client.get("/api/v1/chains/?limit=1000&offset=0").json()
    assert page["count"] == 1 and len(page["results"]) == 1
    assert api_for(dave).get("/api/v1/runs/?limit=5&page=100000000000000000000").status_code == 200


def test_it_refuses_an_assignment_with_a_reader_that_is_no_username(make_chain: Any, alice: Any, carol: Any) -> None:
    chain = make_chain()
    client = api_for(carol)

    def refused(body: dict[str, Any], field: str) -> str:
        answer = client.post("/api/v1/assignments/", body, format="json")
        assert answer.status_code == 400, answer.content
        return answer.json()[field][0]

    # A NUL character reached the username lookup as a 500.
    assert "NUL character" in refused({"chain": str(chain.uuid), "reader": "b\u0000ob"}, "reader")
    assert refused({"chain": str(chain.uuid), "reader": {"x": 1}}, "reader") == "Must be a username (text), not an object."
    assert refused({"chain": str(chain.uuid), "reader": 5}, "reader") == "Must be a username (text), not a number."
    assert refused({"chain": str(chain.uuid), "reader": "zed"}, "reader") == "No user has the username 'zed'."
    assert refused({"chain": {"x": 1}, "reader": "alice"}, "chain") == "Must be a chain's uuid (text), not an object."
    assert refused({"chain": "x", "reader": "alice"}, "chain") == "Not a chain's uuid: 'x'."
    assert refused({"chain": str(uuid.uuid4()), "reader": "alice"}, "chain").startswith("No chain has the uuid")
    assert client.post("/api/v1/assignments/", {"chain": str(chain.uuid), "reader": "alice"}, format="json").status_code == 201
    assert refused({"chain": str(chain.uuid), "reader": "alice"}, "chain") == "This chain is already assigned to alice."


def test_it_answers_a_stale_decision_with_409_before_judging_the_steps(make_chain: Any, alice: Any) -> None:
    # Verify checked the verdicts first: a stale client was told about steps it has not seen.
    chain = make_chain(readers=(alice,))
    client = api_for(alice)
    for verb in ("verify", "reject"):
        stale = client.post(f"/api/v1/chains/{chain.uuid}/{verb}/", {"version": 99}, format="json")
        assert stale.status_code == 409 and stale.json()["current"]["version"] == 1
        assert "your version 99, current 1" in stale.json()["detail"]
    huge = client.post(f"/api/v1/chains/{chain.uuid}/verify/", {"version": 2**63}, format="json")
    assert huge.status_code == 400 and "version" in huge.json()
    assert Chain.objects.get(pk=chain.pk).status == Chain.Status.PENDING


def test_it_refuses_notes_and_texts_that_are_not_text(make_chain: Any, alice: Any) -> None:
    # DRF's CharField turned 5 into "5".
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[0]
    client = api_for(alice)
    refused = client.post(f"/api/v1/chains/{chain.uuid}/reject/", {"note": 5}, format="json")
    assert refused.status_code == 400 and refused.json() == {"note": ["Must be text, not a number."]}
    for body in ({"version": 1, "note": 5}, {"version": 1, "text": ["a"]}, {"version": 1, "note": None}):
        assert client.patch(f"/api/v1/steps/{step.uuid}/", body, format="json").status_code == 400, body
    assert Chain.objects.get(pk=chain.pk).status == Chain.Status.PENDING
    assert Step.objects.get(pk=step.pk).version == 1
    done = client.post(f"/api/v1/chains/{chain.uuid}/reject/", {"note": "Wrong side."}, format="json")
    assert done.status_code == 200 and done.json()["note"] == "Wrong side."
