"""Double reading and adjudication: two readers, two private copies, one settled chain.

    assign_double(chains, alice, bob, by=carol)   # each chain -> two reading copies
    ...both readers verify or reject their copy on the ordinary review page...
    pair = pair_for(reference)                    # both readings, aligned step by step
    settle(reference, {row_key: Choice(...)}, outcome="verify", by=senior)

A reading copy is a Chain (purpose=reading, derived_from=the reference) whose steps copy the
reference's live steps (source_step set, original_text kept, no verdicts), assigned to exactly one
reader. Blinding follows from assignment: a radiologist sees only the chains assigned to them, so
neither reader can reach the other's copy (page, history, API) at any time. The adjudicated chain
(purpose=adjudicated, derived_from=the reference) is the one exported for the case.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation import services
from annotation.models import Assignment, Chain, ReviewEvent, Role, Step, WorkflowError

DECIDED = (Chain.Status.VERIFIED, Chain.Status.REJECTED)
JUDGED = ("correct", "incorrect", "irrelevant")


def is_adjudicator(user: Any) -> bool:
    """The senior reader (the adjudicator group), or a curator."""
    roles = services.roles_of(user)
    return Role.ADJUDICATOR in roles or Role.CURATOR in roles


# --- assigning ---------------------------------------------------------------------------------


@dataclass
class DoubleAssignment:
    created: int = 0
    skipped: list[str] = field(default_factory=list)  # "question…: reason"


def assign_double(chains: Iterable[Chain], first: Any, second: Any, *, by: Any) -> DoubleAssignment:
    """Give each reference chain to two readers as two private copies (idempotent per chain)."""
    for reader in (first, second):
        if not services.is_radiologist(reader):
            raise WorkflowError(f"{reader} is not a radiologist")
    if first.pk == second.pk:
        raise WorkflowError("Double reading needs two different readers")
    result = DoubleAssignment()
    with transaction.atomic():
        for chain in chains:
            reason = _cannot_double_read(chain)
            if reason:
                result.skipped.append(f"{chain.case.question[:50]}…: {reason}")
                continue
            _make_copies(chain, (first, second), by=by)
            result.created += 1
    return result


def _cannot_double_read(chain: Chain) -> str:
    locked = Chain.objects.select_for_update().get(pk=chain.pk)
    if locked.purpose != Chain.Purpose.REFERENCE:
        return f"a {locked.get_purpose_display().lower()} chain is not read again"
    if locked.status in DECIDED:
        return "already decided"
    if locked.assignments.exists():
        return "already assigned to a single reader"
    if locked.derived.filter(purpose=Chain.Purpose.READING).exists():
        return "already double read"
    return ""


def _make_copies(reference: Chain, readers: Sequence[Any], *, by: Any) -> list[Chain]:
    steps = list(reference.live_steps())
    copies = []
    for reader in readers:
        copy = Chain.objects.create(
            case_id=reference.case_id, origin=reference.origin, purpose=Chain.Purpose.READING,
            derived_from=reference,
        )
        # No verdicts, notes or edits are carried over: each reader starts from the mined text.
        Step.objects.bulk_create(
            Step(
                chain=copy, position=position, text=step.text, original_text=step.original_text,
                finding=step.finding, evidence=step.evidence, source_step=step,
                added_by_reader=step.added_by_reader,
            )
            for position, step in enumerate(steps, start=1)
        )
        Assignment.objects.create(chain=copy, reader=reader, assigned_by=by)
        ReviewEvent.objects.create(
            chain=copy, actor=by, action="assign", after={"reader": reader.get_username()}
        )
        copies.append(copy)
    Chain.objects.filter(pk=reference.pk, status=Chain.Status.PENDING).update(
        status=Chain.Status.IN_REVIEW
    )
    ReviewEvent.objects.create(
        chain=reference, actor=by, action="double_read",
        after={"readers": [r.get_username() for r in readers],
               "copies": [str(c.uuid) for c in copies]},
    )
    return copies


# --- the two readings, aligned -----------------------------------------------------------------


@dataclass
class Side:
    """One reader's version of a step."""

    uuid: str
    text: str
    original_text: str
    verdict: str
    deleted: bool
    note: str

    @property
    def effective_verdict(self) -> str:
        if self.verdict == Step.Verdict.UNREVIEWED and self.deleted:
            return Step.Verdict.IRRELEVANT  # removed without a verdict: not part of the reasoning
        return self.verdict

    @property
    def rewritten(self) -> bool:
        return self.text != self.original_text


@dataclass
class Row:
    """A step position across both readings: a copied reference step, or one a reader added."""

    key: str
    original_text: str
    first: Side | None
    second: Side | None
    source_step_id: int | None = None  # the reference step, for copied steps
    added_step_id: int | None = None  # the reader's own step, for added ones

    @property
    def differences(self) -> list[str]:
        if self.first is None or self.second is None:
            return ["added by one reader only"]
        found = []
        if self.first.deleted != self.second.deleted:
            found.append("removed by one reader")
        if self.first.effective_verdict != self.second.effective_verdict:
            found.append("verdict")
        if self.first.text != self.second.text:
            found.append("text")
        return found

    @property
    def disputed(self) -> bool:
        return bool(self.differences)


@dataclass
class _StepRow:
    id: int
    uuid: str
    source_step_id: int | None
    position: int
    text: str
    original_text: str
    verdict: str
    deleted: bool
    note: str

    def side(self) -> Side:
        return Side(self.uuid, self.text, self.original_text, self.verdict, self.deleted, self.note)


@dataclass
class Reading:
    chain_id: int
    uuid: str
    reader: str
    status: str
    note: str = ""  # the reader's note on their copy: why they verified or rejected it
    steps: list[_StepRow] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        return self.status in DECIDED


@dataclass
class Pair:
    """The two readings of a reference chain; `first` is the reader whose name sorts first."""

    reference_id: int
    first: Reading
    second: Reading

    @property
    def finished(self) -> bool:
        return self.first.decided and self.second.decided

    def aligned_verdicts(self) -> list[tuple[str, str]]:
        """(first, second) verdicts of the copied steps both readers judged (see agreement.py)."""
        pairs = []
        for row in self.rows(reference_order=False):
            if row.first is None or row.second is None:
                continue
            a, b = row.first.effective_verdict, row.second.effective_verdict
            if a in JUDGED and b in JUDGED:
                pairs.append((a, b))
        return pairs

    def rows(self, *, reference_order: bool = True) -> list[Row]:
        """Copied steps in the reference's order, each reader's added steps after the step they
        follow in that reader's copy."""
        copied: dict[int, Row] = {}
        added_after: dict[int | None, list[Row]] = defaultdict(list)
        order: dict[int, int] = {}
        for which, reading in (("first", self.first), ("second", self.second)):
            anchor: int | None = None
            for step in sorted(reading.steps, key=lambda s: (s.position, not s.deleted)):
                if step.source_step_id is None:
                    row = Row(f"a{step.uuid}", step.original_text, None, None,
                              added_step_id=step.id)
                    setattr(row, which, step.side())
                    added_after[anchor].append(row)
                    continue
                anchor = step.source_step_id
                row = copied.setdefault(
                    step.source_step_id,
                    Row(f"s{step.source_step_id}", step.original_text, None, None,
                        source_step_id=step.source_step_id),
                )
                setattr(row, which, step.side())
                order.setdefault(step.source_step_id, step.position)
        if reference_order:
            # the reference's own order (a reader may have moved steps in their copy)
            positions = dict(
                Step.objects.filter(pk__in=copied).values_list("pk", "position")
            )
            order.update(positions)
        rows: list[Row] = list(added_after.get(None, []))
        for source_id in sorted(copied, key=lambda pk: (order.get(pk, 0), pk)):
            rows.append(copied[source_id])
            rows.extend(added_after.get(source_id, []))
        return rows


def _readings(chains: QuerySet[Chain]) -> dict[int, list[Reading]]:
    """Reading copies (with their steps and reader) grouped by reference chain id."""
    rows = list(chains.values_list("pk", "uuid", "status", "derived_from_id", "note"))
    ids = [pk for pk, *_ in rows]
    readers = dict(
        Assignment.objects.filter(chain_id__in=ids).values_list("chain_id", "reader__username")
    )
    readings = {
        pk: Reading(pk, str(uuid), readers.get(pk, "?"), status, note)
        for pk, uuid, status, _, note in rows
    }
    steps = Step.objects.filter(chain_id__in=ids).values_list(
        "chain_id", "pk", "uuid", "source_step_id", "position", "text", "original_text",
        "verdict", "deleted", "note",
    )
    for chain_id, *values in steps.iterator(chunk_size=5000):
        readings[chain_id].steps.append(_StepRow(values[0], str(values[1]), *values[2:]))
    grouped: dict[int, list[Reading]] = defaultdict(list)
    for pk, _, _, reference_id, _ in rows:
        grouped[reference_id].append(readings[pk])
    return grouped


def _pair(reference_id: int, readings: list[Reading]) -> Pair | None:
    if len(readings) != 2:
        return None
    first, second = sorted(readings, key=lambda r: (r.reader, r.chain_id))
    return Pair(reference_id, first, second)


def finished_pairs(references: Iterable[int] | None = None) -> Iterator[Pair]:
    """Every double reading whose two readers have both verified or rejected their copy."""
    chains = Chain.objects.filter(purpose=Chain.Purpose.READING)
    if references is not None:
        chains = chains.filter(derived_from_id__in=list(references))
    for reference_id, readings in sorted(_readings(chains).items()):
        pair = _pair(reference_id, readings)
        if pair is not None and pair.finished:
            yield pair


def pair_for(reference: Chain) -> Pair | None:
    chains = Chain.objects.filter(purpose=Chain.Purpose.READING, derived_from=reference)
    return _pair(reference.pk, _readings(chains).get(reference.pk, []))


def awaiting_adjudication() -> QuerySet[Chain]:
    """Reference chains whose two readings are both finished and not yet settled."""
    return (
        Chain.objects.filter(purpose=Chain.Purpose.REFERENCE)
        .annotate(
            readings=Count("derived", filter=Q(derived__purpose=Chain.Purpose.READING)),
            finished=Count(
                "derived",
                filter=Q(derived__purpose=Chain.Purpose.READING, derived__status__in=DECIDED),
            ),
            settled=Exists(
                Chain.objects.filter(derived_from=OuterRef("pk"), purpose=Chain.Purpose.ADJUDICATED)
            ),
        )
        .filter(readings=2, finished=2, settled=False)
    )


def double_reading_counts() -> dict[str, int]:
    """Cases being read twice, waiting for the senior reader, and settled."""
    references = Chain.objects.filter(
        purpose=Chain.Purpose.REFERENCE, derived__purpose=Chain.Purpose.READING
    ).distinct()
    settled = Chain.objects.filter(purpose=Chain.Purpose.ADJUDICATED).count()
    waiting = awaiting_adjudication().count()
    return {
        "double_read": references.count(),
        "reading": max(references.count() - waiting - settled, 0),
        "awaiting": waiting,
        "settled": settled,
    }


def adjudicated_chain(reference: Chain) -> Chain | None:
    return reference.derived.filter(purpose=Chain.Purpose.ADJUDICATED).first()


# --- settling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """How the senior reader settles one row: "first", "second", "own" (verdict + text), "drop"."""

    take: str
    verdict: str = ""
    text: str = ""


def settle(
    reference: Chain, choices: dict[str, Choice], *, outcome: str, by: Any, note: str = ""
) -> Chain:
    """Create the adjudicated chain from both readings and the senior reader's choices.

    Rows both readers agree on are taken as they are; every disputed row needs a choice.
    """
    if not is_adjudicator(by):
        raise WorkflowError("Only the senior reader (adjudicator) or a curator settles readings")
    if outcome not in ("verify", "reject"):
        raise WorkflowError(f"Unknown outcome {outcome!r}: verify or reject")
    with transaction.atomic():
        reference = Chain.objects.select_for_update().get(pk=reference.pk)
        if adjudicated_chain(reference) is not None:
            raise WorkflowError("These readings have already been settled")
        pair = pair_for(reference)
        if pair is None or not pair.finished:
            raise WorkflowError("Both readers must finish before the readings can be settled")
        settled = [_settle_row(row, choices.get(row.key)) for row in pair.rows()]
        live = [s for s in settled if s is not None and not s["deleted"]]
        if outcome == "verify":
            if not live:
                raise WorkflowError("A chain with no steps cannot be verified")
            unjudged = [i for i, s in enumerate(live, 1) if s["verdict"] not in JUDGED]
            if unjudged:
                raise WorkflowError(
                    f"Step {unjudged[0]} has no verdict: choose one before verifying"
                )
        status = Chain.Status.VERIFIED if outcome == "verify" else Chain.Status.REJECTED
        chain = Chain.objects.create(
            case_id=reference.case_id, origin=reference.origin,
            purpose=Chain.Purpose.ADJUDICATED, derived_from=reference, status=status,
            decided_by=by, decided_at=timezone.now(), note=note.strip(),
        )
        position = 0
        steps = []
        for values in settled:
            if values is None:
                continue
            if not values["deleted"]:
                position += 1
            # a removed step keeps the place it had, like a deletion on the review page
            steps.append(Step(chain=chain, position=position + values["deleted"], **values))
        # Structured findings come from the reference step the row copies, as mined.
        findings = dict(
            Step.objects.filter(pk__in=[s.source_step_id for s in steps]).values_list("pk", "finding")
        )
        for step in steps:
            step.finding = findings.get(step.source_step_id)
        Step.objects.bulk_create(steps)
        disputed = {row.key: row.differences for row in pair.rows() if row.disputed}
        ReviewEvent.objects.create(
            chain=chain, actor=by, action="adjudicate",
            after={
                "readings": [pair.first.uuid, pair.second.uuid],
                "readers": [pair.first.reader, pair.second.reader],
                "disputed": len(disputed),
                "choices": {key: choices[key].__dict__ for key in disputed if key in choices},
                "outcome": outcome,
            },
        )
        # The reference is settled too (same outcome, who, when), so nothing lists it as open;
        # its adjudicated chain stands for it wherever a case's reading is counted or exported.
        before = {"status": reference.status}
        reference.bump(None)
        Chain.objects.filter(pk=reference.pk).update(
            status=status, decided_by=by, decided_at=chain.decided_at
        )
        ReviewEvent.objects.create(
            chain=reference, actor=by, action="adjudicated", before=before,
            after={"chain": str(chain.uuid), "status": status},
        )
    return chain


def _settle_row(row: Row, choice: Choice | None) -> dict[str, Any] | None:
    if not row.disputed:
        assert row.first is not None
        return _from_side(row, row.first)
    if choice is None:
        raise WorkflowError(f"Settle every disputed step: {row.original_text[:60]!r} is open")
    if choice.take in ("first", "second"):
        side = getattr(row, choice.take)
        if side is None:
            raise WorkflowError(f"The {choice.take} reader has no version of this step")
        return _from_side(row, side)
    if choice.take == "drop":
        if row.source_step_id is None:
            return None  # an added step nobody keeps: leave it out
        values = _base(row)
        values.update(text=row.original_text, verdict=Step.Verdict.IRRELEVANT, deleted=True)
        return values
    if choice.take == "own":
        if choice.verdict not in JUDGED:
            raise WorkflowError(f"Choose a verdict for {row.original_text[:60]!r}")
        text = " ".join(choice.text.split()) or row.original_text
        values = _base(row)
        values.update(text=text, verdict=choice.verdict, deleted=False)
        return values
    raise WorkflowError(f"Unknown choice {choice.take!r}")


def _base(row: Row) -> dict[str, Any]:
    return {
        "original_text": row.original_text,
        "source_step_id": row.source_step_id or row.added_step_id,
        "added_by_reader": row.source_step_id is None,
        "note": "",
    }


def _from_side(row: Row, side: Side) -> dict[str, Any]:
    values = _base(row)
    values.update(
        text=side.text, verdict=side.effective_verdict, deleted=side.deleted, note=side.note
    )
    return values
