"""Agreement between two independent readers of the same chains.

- Step verdicts: Cohen's kappa over the steps both readers judged (correct / incorrect /
  irrelevant), per reader pair and pooled over every pair ("overall").
- Chain decisions: percent agreement on verify / reject.

Which steps count (see `reading.aligned_verdicts`): steps copied from the same reference step,
both judged; a step a reader deleted counts with the verdict it had, or as irrelevant when it
had none (removing it says "not part of the reasoning"). Steps only one reader added have no
counterpart and do not count. Kappa is not symmetric in its raters: in a pair the reader whose
username sorts first is rater 1, also when pooling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

VERDICTS = ("correct", "incorrect", "irrelevant")


def cohen_kappa(pairs: Iterable[tuple[str, str]]) -> float | None:
    """Cohen's kappa of (rater 1, rater 2) labels; None with no pairs.

    kappa = (po - pe) / (1 - pe), po the observed agreement, pe the agreement expected from each
    rater's own label frequencies. When pe is 1 both raters used one and the same label
    throughout: they agree perfectly and kappa is taken as 1 (the formula is 0/0 there).

    >>> round(cohen_kappa([("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")]), 3)
    0.5
    """
    pairs = list(pairs)
    n = len(pairs)
    if not n:
        return None
    observed = sum(1 for first, second in pairs if first == second) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def percent_agreement(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Share of pairs with the same label (0..1); None with no pairs."""
    if not pairs:
        return None
    return sum(1 for a, b in pairs if a == b) / len(pairs)


@dataclass
class PairAgreement:
    """Agreement of two readers (`first` sorts before `second`) over the chains both read."""

    first: str
    second: str
    chains: int = 0  # chains both finished
    step_pairs: list[tuple[str, str]] = field(default_factory=list)
    decision_pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.first} · {self.second}"

    @property
    def steps(self) -> int:
        return len(self.step_pairs)

    @property
    def kappa(self) -> float | None:
        return cohen_kappa(self.step_pairs)

    @property
    def step_agreement(self) -> float | None:
        return percent_agreement(self.step_pairs)

    @property
    def decision_agreement(self) -> float | None:
        return percent_agreement(self.decision_pairs)

    def confusion(self) -> list[list[int]]:
        """Rows: rater 1's verdict; columns: rater 2's (in VERDICTS order)."""
        counts = Counter(self.step_pairs)
        return [[counts[(a, b)] for b in VERDICTS] for a in VERDICTS]


@dataclass
class AgreementReport:
    pairs: list[PairAgreement]
    overall: PairAgreement

    def kappa_of(self, first: str, second: str) -> float | None:
        first, second = sorted((first, second))
        for pair in self.pairs:
            if (pair.first, pair.second) == (first, second):
                return pair.kappa
        return None


def agreement_report(references: Iterable[int] | None = None) -> AgreementReport:
    """Agreement over every finished double reading (or those of the given reference chain ids)."""
    from annotation.reading import finished_pairs

    by_pair: dict[tuple[str, str], PairAgreement] = {}
    overall = PairAgreement("all", "pairs")
    for pair in finished_pairs(references):
        key = (pair.first.reader, pair.second.reader)
        stats = by_pair.setdefault(key, PairAgreement(*key))
        steps = pair.aligned_verdicts()
        decision = (pair.first.status, pair.second.status)
        for target in (stats, overall):
            target.chains += 1
            target.step_pairs.extend(steps)
            target.decision_pairs.append(decision)
    return AgreementReport(pairs=[by_pair[key] for key in sorted(by_pair)], overall=overall)
