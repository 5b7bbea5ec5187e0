import threading
from collections import defaultdict
from typing import Any

from django.db import connection

from annotation import services
from annotation.models import Assignment, Chain


def test_it_hands_out_the_oldest_open_assignment_and_resumes_it(make_chain: Any, alice: Any) -> None:
    first, second = make_chain(readers=(alice,)), make_chain(readers=(alice,))
    assert services.next_chain_for(alice) == first
    assert services.next_chain_for(alice) == first  # still in progress: resume it
    services.finish_chain(first, alice, "skip")
    assert services.next_chain_for(alice) == second
    assert Chain.objects.get(pk=second.pk).status == Chain.Status.IN_REVIEW


def test_it_returns_nothing_when_the_queue_is_empty(make_chain: Any, alice: Any, bob: Any) -> None:
    make_chain(readers=(bob,))
    assert services.next_chain_for(alice) is None


def test_it_never_hands_one_chain_to_two_readers_unless_both_are_assigned(
    transactional_db: Any, make_chain: Any, alice: Any, bob: Any, carol: Any
) -> None:
    readers = [alice, bob]
    for name in ("rita", "ravi"):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user(name)
        services.set_role(user, "radiologist")
        readers.append(user)
    expected: dict[int, set[int]] = defaultdict(set)
    for index in range(24):
        assigned = (readers[index % 4],)
        if index % 6 == 0:  # double reading: two readers on the same chain
            assigned = (readers[index % 4], readers[(index + 1) % 4])
        chain = make_chain(readers=assigned)
        for reader in assigned:
            expected[reader.pk].add(chain.pk)

    got: dict[int, list[int]] = defaultdict(list)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(reader: Any) -> None:
        try:
            start.wait()
            while True:
                chain = services.next_chain_for(reader)
                if chain is None:
                    break
                got[reader.pk].append(chain.pk)
                services.finish_chain(chain, reader, "skip")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in readers + readers]  # two tabs each
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for reader in readers:
        # Each assignment handed out once per reader; a second tab at most resumes the same one.
        assert set(got[reader.pk]) == expected[reader.pk]
    assert not Assignment.objects.exclude(status="skipped").exists()


def test_a_finished_chain_is_not_assigned_again(
    make_chain: Any, alice: Any, bob: Any, carol: Any
) -> None:
    done = make_chain(readers=(alice,), status=Chain.Status.VERIFIED)
    assigned = services.assign_chains([done], bob, by=carol)
    assert (assigned.created, assigned.finished) == (0, 1)
    assert "1 already verified or rejected" in assigned.message(bob)
    assert not Assignment.objects.filter(chain=done, reader=bob).exists()


def test_a_chain_another_reader_holds_is_left_with_them(
    make_chain: Any, alice: Any, bob: Any, carol: Any
) -> None:
    held, skipped, free = make_chain(), make_chain(), make_chain()
    services.assign_chains([held, skipped], alice, by=carol)
    services.finish_chain(skipped, alice, "skip")  # alice gave it back: it may go to bob
    assigned = services.assign_chains([held, skipped, free], bob, by=carol)
    assert (assigned.created, assigned.taken, assigned.finished) == (2, 1, 0)
    assert set(Assignment.objects.filter(reader=bob).values_list("chain_id", flat=True)) == {
        skipped.pk,
        free.pk,
    }
    again = services.assign_chains([free], bob, by=carol)  # idempotent: nothing new, nothing odd
    assert (again.created, again.taken, again.finished) == (0, 0, 0)


def test_the_queue_passes_over_chains_finished_meanwhile(
    make_chain: Any, alice: Any, carol: Any
) -> None:
    settled, current = make_chain(readers=(alice,)), make_chain(readers=(alice,))
    settled.reject(by=carol, expected=None)  # e.g. settled by adjudication meanwhile
    assert services.queue_counts(alice)["open"] == 1
    assert services.next_chain_for(alice) == current
    current.reject(by=carol, expected=None)  # finished while alice had it in progress
    assert services.next_chain_for(alice) is None
    assert services.queue_counts(alice)["in_progress"] == 0


def test_a_chain_skipped_by_its_only_reader_is_pending_again(
    make_chain: Any, alice: Any, bob: Any
) -> None:
    alone, shared = make_chain(readers=(alice,)), make_chain(readers=(alice, bob))
    for chain in (alone, shared):
        services.open_chain(chain, alice)
        services.finish_chain(chain, alice, "skip")
    assert Chain.objects.get(pk=alone.pk).status == Chain.Status.PENDING
    assert Chain.objects.get(pk=shared.pk).status == Chain.Status.IN_REVIEW  # bob still has it
