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
