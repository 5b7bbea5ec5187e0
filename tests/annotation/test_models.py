from typing import Any

import pytest

from annotation import services
from annotation.models import Chain, ReviewEvent, StaleVersion, Step, WorkflowError


def test_it_keeps_the_original_text_when_a_step_is_rewritten(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    step = chain.live_steps()[1]
    step.mark("incorrect", by=alice, expected=1)
    step.edit("The right angle is  sharp.", by=alice, expected=2)
    step.refresh_from_db()
    assert step.text == "The right angle is sharp."
    assert step.original_text == "The right angle is blunted."
    assert step.verdict == Step.Verdict.INCORRECT
    assert step.rewritten
    edit = ReviewEvent.objects.get(step=step, action="edit")
    assert edit.before == {"text": "The right angle is blunted."}
    assert edit.after == {"text": "The right angle is sharp.", "at": 2}
    assert edit.actor == alice


def test_it_refuses_a_stale_step_write(make_chain: Any, alice: Any) -> None:
    step = make_chain(readers=(alice,)).live_steps()[0]
    step.edit("Newer text.", by=alice, expected=1)
    stale = Step.objects.get(pk=step.pk)
    with pytest.raises(StaleVersion):
        stale.edit("Older text.", by=alice, expected=1)
    step.refresh_from_db()
    assert step.text == "Newer text."
    assert step.version == 2


def test_it_keeps_the_step_in_memory_as_the_database_has_it_after_a_write(make_chain: Any, alice: Any) -> None:
    step = make_chain(readers=(alice,)).live_steps()[0]
    step.mark("correct", by=alice, expected=1)
    stored = Step.objects.get(pk=step.pk)
    assert (step.version, step.verdict, step.position) == (stored.version, stored.verdict, stored.position) == (2, "correct", 1)
    assert step.updated_at == stored.updated_at


def test_it_logs_the_stored_before_even_when_the_writer_holds_an_older_copy(make_chain: Any, alice: Any, bob: Any) -> None:
    # Two tabs: one loaded the step at version 1, the other changed it to version 2; the
    # first then writes with version 2 (it reloaded the version only). The event's "before"
    # must be what the database had, not the first tab's stale copy.
    step = make_chain(readers=(alice,)).live_steps()[0]
    old_copy = Step.objects.get(pk=step.pk)
    step.mark("incorrect", by=bob, expected=1)
    old_copy.mark("correct", by=alice, expected=2)
    event = ReviewEvent.objects.filter(step=step, action="verdict").order_by("id").last()
    assert event is not None
    assert event.before == {"verdict": "incorrect"} and event.after == {"verdict": "correct", "at": 1}
    assert event.actor == alice and event.chain_id == step.chain_id


def test_it_writes_no_event_for_a_refused_write(make_chain: Any, alice: Any) -> None:
    step = make_chain(readers=(alice,)).live_steps()[0]
    step.mark("correct", by=alice, expected=1)
    with pytest.raises(StaleVersion):
        Step.objects.get(pk=step.pk).mark("incorrect", by=alice, expected=1)
    assert list(ReviewEvent.objects.filter(step=step).values_list("action", flat=True)) == ["verdict"]
    assert Step.objects.get(pk=step.pk).verdict == "correct"


def test_a_change_to_what_the_step_already_holds_stores_and_logs_nothing(
    make_chain: Any, alice: Any
) -> None:
    step = make_chain().live_steps().first()
    step.mark("correct", by=alice, expected=step.version)
    version = step.version
    step.mark("correct", by=alice, expected=version)  # pressed again
    step.edit(step.text, by=alice, expected=version)  # saved unchanged
    assert Step.objects.get(pk=step.pk).version == version == step.version
    assert ReviewEvent.objects.filter(step=step).count() == 1
    with pytest.raises(StaleVersion):  # a no-op against an old version is still stale
        step.mark("correct", by=alice, expected=version - 1)


def test_it_refuses_to_verify_with_unjudged_steps(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    first = chain.live_steps()[0]
    first.mark("correct", by=alice, expected=1)
    with pytest.raises(WorkflowError, match="2 steps still without a verdict"):
        chain.verify(by=alice)
    chain.refresh_from_db()
    assert chain.status == Chain.Status.PENDING


def test_it_records_who_verified_and_when(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    for step in chain.live_steps():
        step.mark("correct", by=alice, expected=step.version)
    services.finish_chain(chain, alice, "verify", expected=1)
    chain.refresh_from_db()
    assert chain.status == Chain.Status.VERIFIED
    assert chain.decided_by == alice and chain.decided_at is not None
    assert chain.assignments.get(reader=alice).status == "done"


def test_it_refuses_a_stale_chain_decision(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    services.add_step(chain, "A new step.", by=alice, expected=1)
    for step in chain.live_steps():
        step.mark("correct", by=alice, expected=step.version)
    with pytest.raises(StaleVersion):
        services.finish_chain(chain, alice, "verify", expected=1)


def test_it_reorders_adds_and_soft_deletes_steps_with_events(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    a, b, c = chain.live_steps()
    services.reorder_steps(chain, [str(c.uuid), str(a.uuid), str(b.uuid)], by=alice, expected=1)
    assert [s.uuid for s in chain.live_steps()] == [c.uuid, a.uuid, b.uuid]
    added = services.add_step(chain, "Check the left side too.", by=alice, expected=2, after=c)
    assert [s.text for s in chain.live_steps()][1] == "Check the left side too."
    assert added.verdict == Step.Verdict.CORRECT and added.added_by_reader
    services.delete_step(a, by=alice, expected_step=1, expected_chain=3)
    assert [s.position for s in chain.live_steps()] == [1, 2, 3]
    assert Step.objects.filter(pk=a.pk, deleted=True).exists()  # kept for history
    actions = list(chain.events.values_list("action", flat=True))
    assert actions == ["reorder", "add", "delete"]


def test_it_refuses_a_reorder_that_drops_a_step(make_chain: Any, alice: Any) -> None:
    chain = make_chain(readers=(alice,))
    a, b, _ = chain.live_steps()
    with pytest.raises(WorkflowError):
        services.reorder_steps(chain, [str(b.uuid), str(a.uuid)], by=alice, expected=1)


def test_a_step_refuses_text_the_database_cannot_hold_or_too_long(make_chain: Any, alice: Any) -> None:
    from annotation.models import NOTE_MAX_LENGTH, STEP_TEXT_MAX_LENGTH

    chain = make_chain()
    step = chain.live_steps().first()
    for call in (
        lambda: step.edit("bad \x00 byte", by=alice, expected=step.version),
        lambda: step.annotate("bad \x00 byte", by=alice, expected=step.version),
        lambda: services.add_step(chain, "bad \x00", by=alice, expected=chain.version),
    ):
        with pytest.raises(WorkflowError, match="Null characters"):
            call()
    with pytest.raises(WorkflowError, match="at most 5,000 characters"):
        step.edit("x" * (STEP_TEXT_MAX_LENGTH + 1), by=alice, expected=step.version)
    with pytest.raises(WorkflowError, match="at most 2,000 characters"):
        step.annotate("x" * (NOTE_MAX_LENGTH + 1), by=alice, expected=step.version)
    assert not ReviewEvent.objects.filter(step=step).exists()


def test_a_stale_verify_is_refused_as_stale_before_anything_else(make_chain: Any, alice: Any) -> None:
    chain = make_chain()  # its steps have no verdict yet
    with pytest.raises(StaleVersion):
        chain.verify(by=alice, expected=chain.version + 5)
    with pytest.raises(WorkflowError, match="without a verdict"):
        chain.verify(by=alice, expected=chain.version)
