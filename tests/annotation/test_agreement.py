"""Agreement maths against kappas worked out by hand, then over real double readings."""

from __future__ import annotations

from typing import Any

import pytest

from annotation import services
from annotation.agreement import agreement_report, cohen_kappa, percent_agreement
from annotation.reading import assign_double, pair_for

C, I, R = "correct", "incorrect", "irrelevant"  # noqa: E741 - the verdicts, as a reader would tally them


def test_it_computes_the_textbook_kappa() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po 0.7, pe 0.5*0.6+0.5*0.4 = 0.5
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_it_computes_a_three_verdict_kappa_by_hand() -> None:
    first = [C, C, C, C, C, C, I, I, R, R]
    second = [C, C, C, C, I, C, I, R, R, R]
    # po = 8/10; marginals C 6/5, I 2/2, R 2/3 -> pe = (30 + 4 + 6) / 100 = 0.4
    # kappa = (0.8 - 0.4) / 0.6 = 2/3
    assert cohen_kappa(zip(first, second)) == pytest.approx(2 / 3)
    assert percent_agreement(list(zip(first, second))) == pytest.approx(0.8)


def test_it_handles_the_degenerate_cases() -> None:
    assert cohen_kappa([]) is None
    assert percent_agreement([]) is None
    assert cohen_kappa([(C, C)] * 4) == 1.0  # one label throughout: perfect agreement
    assert cohen_kappa([(C, I), (I, C)]) == pytest.approx(-1.0)


def _read(chain: Any, reader: Any, verdicts: list[str], decision: str = "verify") -> None:
    copy = chain.derived.get(assignments__reader=reader)
    for step, verdict in zip(list(copy.live_steps()), verdicts):
        if verdict == "delete":
            copy.refresh_from_db()
            services.delete_step(step, by=reader, expected_step=step.version, expected_chain=copy.version)
        else:
            step.mark(verdict, by=reader, expected=step.version)
    copy.refresh_from_db()
    services.finish_chain(copy, reader, decision)


@pytest.fixture
def frank(db: Any) -> Any:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="frank", password="frank-password")
    services.set_role(user, "radiologist")
    return user


def test_it_measures_agreement_per_pair_and_pooled(make_chain: Any, alice: Any, bob: Any, carol: Any, frank: Any) -> None:
    five = ("One.", "Two.", "Three.", "Four.", "Five.")
    one, two = make_chain(steps=five), make_chain(steps=five)
    three = make_chain(steps=("One.", "Two.", "Three.", "Four."))
    assign_double([one, two], alice, bob, by=carol)
    assign_double([three], frank, alice, by=carol)
    _read(one, alice, [C, C, C, C, C])
    _read(one, bob, [C, C, C, C, I])
    _read(two, alice, [C, I, I, R, R])
    _read(two, bob, [C, I, R, R, R])
    _read(three, alice, [C, C, I, R])
    _read(three, frank, [C, I, I, "delete"], decision="reject")  # deleted unjudged -> irrelevant

    report = agreement_report()
    (ab, af) = report.pairs
    assert (ab.first, ab.second, ab.chains, ab.steps) == ("alice", "bob", 2, 10)
    assert ab.kappa == pytest.approx(2 / 3)  # the hand-worked ten steps above
    assert ab.decision_agreement == 1.0
    # alice C C I R, frank C I I R: po 3/4; marginals C 2/1, I 1/2, R 1/1 -> pe 5/16
    assert (af.first, af.second) == ("alice", "frank")
    assert af.kappa == pytest.approx((3 / 4 - 5 / 16) / (1 - 5 / 16))
    assert af.decision_agreement == 0.0
    # pooled 14 steps: po 11/14; marginals C 8/6, I 3/4, R 3/4 -> pe 72/196; kappa 82/124
    assert report.overall.steps == 14
    assert report.overall.kappa == pytest.approx(82 / 124)
    assert report.overall.decision_agreement == pytest.approx(2 / 3)
    assert report.kappa_of("bob", "alice") == pytest.approx(2 / 3)
    assert ab.confusion() == [[5, 1, 0], [0, 1, 1], [0, 0, 2]]


def test_it_ignores_readings_until_both_are_finished(make_chain: Any, alice: Any, bob: Any, carol: Any) -> None:
    chain = make_chain()
    assign_double([chain], alice, bob, by=carol)
    _read(chain, alice, [C, C, C])
    assert agreement_report().overall.chains == 0
    assert pair_for(chain) is not None and not pair_for(chain).finished
