"""Workflows over several objects: who may see what, the queue, assignment, chain structure.

HTML views, API views and management commands all call these functions.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.models import (
    STEP_TEXT_MAX_LENGTH,
    Assignment,
    Case,
    Chain,
    Prediction,
    ReviewEvent,
    Role,
    StaleVersion,
    Step,
    WorkflowError,
    check_text,
)

User = AbstractBaseUser | AnonymousUser


# --- roles and permissions -------------------------------------------------------------------


def roles_of(user: Any) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_workbench_roles", None)
    if cached is None:
        cached = remember_roles(user, user.groups.values_list("name", flat=True))
    return cached


def remember_roles(user: Any, group_names: Iterable[str]) -> set[str]:
    """Keep `user`'s roles on the object, from group names read with it (saves a query)."""
    roles = set(group_names)
    if user.is_superuser:
        roles.add(Role.CURATOR)
    user._workbench_roles = roles
    return roles


def is_curator(user: Any) -> bool:
    return Role.CURATOR in roles_of(user)


def is_radiologist(user: Any) -> bool:
    return Role.RADIOLOGIST in roles_of(user)


def is_researcher(user: Any) -> bool:
    return Role.RESEARCHER in roles_of(user)


def settled_by_adjudication() -> Q:
    """Reference chains settled from a double reading: their adjudicated chain stands for them."""
    adjudicated = Chain.objects.filter(
        derived_from=OuterRef("pk"), purpose=Chain.Purpose.ADJUDICATED
    )
    return Q(Exists(adjudicated), purpose=Chain.Purpose.REFERENCE)


def _published() -> Q:
    """The verified chains researchers read: never a reader's private copy (double reading is
    blind, even once verified), nor a settled reference, whose steps carry no verdicts."""
    return (
        Q(status=Chain.Status.VERIFIED)
        & ~Q(purpose=Chain.Purpose.READING)
        & ~settled_by_adjudication()
    )


def visible_chains(user: Any) -> QuerySet[Chain]:
    """Chains `user` may read: curators all; radiologists their assigned ones; researchers verified."""
    chains = Chain.objects.all()
    if is_curator(user):
        return chains
    allowed = Q(pk__in=[])
    if is_radiologist(user):
        # EXISTS, not a join: no duplicate rows, so no DISTINCT over every chain column.
        allowed |= Q(Exists(Assignment.objects.filter(chain=OuterRef("pk"), reader=user)))
    if is_researcher(user):
        allowed |= _published()
    return chains.filter(allowed)


def published_chains() -> QuerySet[Chain]:
    """Verified chains as researchers browse them (the Verified page)."""
    return Chain.objects.filter(_published())


def can_view_chain(user: Any, chain: Chain) -> bool:
    if is_curator(user):
        return True
    if is_radiologist(user) and chain.assignments.filter(reader=user).exists():
        return True
    return is_researcher(user) and Chain.objects.filter(_published(), pk=chain.pk).exists()


def compared_cases() -> QuerySet[Case]:
    """Cases some model run answered: what the comparison page shows researchers side by side."""
    return Case.objects.filter(Exists(Prediction.objects.filter(case=OuterRef("pk"))))


def image_cases(user: Any) -> QuerySet[Case]:
    """Cases whose images `user` may see: those of the chains they may read, and for researchers
    the compared cases too (the comparison page shows their images beside the models' chains)."""
    if is_curator(user):
        return Case.objects.all()
    allowed = Q(Exists(visible_chains(user).filter(case=OuterRef("pk"))))
    if is_researcher(user):
        allowed |= Q(Exists(Prediction.objects.filter(case=OuterRef("pk"))))
    return Case.objects.filter(allowed)


def can_review_chain(user: Any, chain: Chain, *, assigned: bool | None = None) -> bool:
    """Only an assigned radiologist changes a chain; a decided chain is closed to edits.

    `assigned`: whether `user` is assigned to `chain`, when the caller's query already found out.
    """
    if chain.status in (Chain.Status.VERIFIED, Chain.Status.REJECTED):
        return False
    if not is_radiologist(user):
        return False
    if assigned is None:
        assigned = chain.assignments.filter(reader=user).exists()
    return assigned


# --- a radiologist's own chains and steps, read for the API's hot paths ----------------------
#
# A reader at work opens a chain and then judges and rewrites its steps, one request each; with
# the token check, these two reads are most of what those requests do. They are written out,
# not composed by the ORM: building the equivalent querysets (the visibility EXISTS, the
# select_related, only() and prefetch of live steps) cost more CPU than running them. The rows
# become model instances through Model.from_db, with each field's from_db_value applied, as
# the ORM does. Access is the same rule as visible_chains() gives a radiologist: a chain they
# are assigned to (one assignment per chain and reader, so the join makes no duplicates).


def sql_table(model: type[Model]) -> str:
    """`model`'s table name, quoted for SQL."""
    return connection.ops.quote_name(model._meta.db_table)


def sql_column(model: type[Model], name: str) -> str:
    """The column of `model`'s field `name`, quoted for SQL."""
    return connection.ops.quote_name(model._meta.get_field(name).column)


def model_columns(model: type[Model], alias: str) -> tuple[str, list[str], list[Any]]:
    """`model`'s concrete columns prefixed with `alias`, their attribute names, and for each
    a converter from the database value (or None): what `instance_from_row` needs."""
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    columns = ", ".join(f"{alias}.{quote(f.column)}" for f in fields)
    converters = []
    for f in fields:
        convert = getattr(f, "from_db_value", None)
        col = f.get_col(model._meta.db_table)
        converters.append(None if convert is None else (lambda value, convert=convert, col=col: convert(value, col, connection)))
    return columns, [f.attname for f in fields], converters


def instance_from_row(model: type[Model], names: list[str], converters: list[Any], values: Sequence[Any]) -> Any:
    """A `model` instance from a row of `model_columns`, converted as the ORM would."""
    values = [v if c is None else c(v) for c, v in zip(converters, values)]
    return model.from_db(connection.alias, names, values)


@cache
def _assigned_chain_query() -> tuple[str, list[str], list[Any], list[str], list[Any]]:
    table, col = sql_table, sql_column
    chain_columns, chain_names, chain_converters = model_columns(Chain, "c")
    step_columns, step_names, step_converters = model_columns(Step, "s")
    user_model = get_user_model()
    sql = (
        f"SELECT {chain_columns}, k.{col(Case, 'uuid')}, d.{col(user_model, user_model.USERNAME_FIELD)}, "
        f"f.{col(Chain, 'uuid')}, {step_columns} "
        f"FROM {table(Chain)} c "
        f"JOIN {table(Assignment)} a ON a.{col(Assignment, 'chain')} = c.{col(Chain, 'id')} "
        f"AND a.{col(Assignment, 'reader')} = %s "
        f"JOIN {table(Case)} k ON k.{col(Case, 'id')} = c.{col(Chain, 'case')} "
        f"LEFT JOIN {table(user_model)} d ON d.{col(user_model, user_model._meta.pk.name)} = c.{col(Chain, 'decided_by')} "
        f"LEFT JOIN {table(Chain)} f ON f.{col(Chain, 'id')} = c.{col(Chain, 'derived_from')} "
        f"LEFT JOIN {table(Step)} s ON s.{col(Step, 'chain')} = c.{col(Chain, 'id')} AND NOT s.{col(Step, 'deleted')} "
        f"WHERE c.{col(Chain, 'uuid')} = %s ORDER BY s.{col(Step, 'position')}"
    )
    return sql, chain_names, chain_converters, step_names, step_converters


def assigned_chain(reader: Any, uuid: uuid_module.UUID) -> Chain | None:
    """The chain `uuid` if `reader` is assigned to it, as `for_chain_serializer` fetches it: the
    keys of its case, decider and source chain, and its live steps in order (`live_step_list`)."""
    sql, chain_names, chain_converters, step_names, step_converters = _assigned_chain_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [reader.pk, uuid])
        rows = cursor.fetchall()
    if not rows:
        return None
    width = len(chain_names)
    first = rows[0]
    chain = instance_from_row(Chain, chain_names, chain_converters, first[:width])
    case_uuid, decider, source_uuid = first[width : width + 3]
    chain.case = Case.from_db(connection.alias, ["id", "uuid"], [chain.case_id, case_uuid])
    if chain.decided_by_id is not None:
        user_model = get_user_model()
        chain.decided_by = user_model.from_db(
            connection.alias, [user_model._meta.pk.attname, user_model.USERNAME_FIELD], [chain.decided_by_id, decider]
        )
    if chain.derived_from_id is not None:
        chain.derived_from = Chain.from_db(connection.alias, ["id", "uuid"], [chain.derived_from_id, source_uuid])
    steps = []
    for row in rows:
        if row[width + 3] is None:  # the LEFT JOIN's row for a chain with no live steps
            continue
        step = instance_from_row(Step, step_names, step_converters, row[width + 3 :])
        step.chain = chain
        steps.append(step)
    chain.live_step_list = steps
    return chain


@cache
def _assigned_step_query() -> tuple[str, list[str], list[Any]]:
    table, col = sql_table, sql_column
    step_columns, step_names, step_converters = model_columns(Step, "s")
    sql = (
        f"SELECT {step_columns}, c.{col(Chain, 'uuid')}, c.{col(Chain, 'status')} "
        f"FROM {table(Step)} s JOIN {table(Chain)} c ON c.{col(Chain, 'id')} = s.{col(Step, 'chain')} "
        f"JOIN {table(Assignment)} a ON a.{col(Assignment, 'chain')} = s.{col(Step, 'chain')} "
        f"AND a.{col(Assignment, 'reader')} = %s "
        f"WHERE s.{col(Step, 'uuid')} = %s AND NOT s.{col(Step, 'deleted')}"
    )
    return sql, step_names, step_converters


def assigned_step(reader: Any, uuid: uuid_module.UUID) -> Step | None:
    """The live step `uuid` if `reader` is assigned to its chain, with the chain's key and
    status (what the write check and StepSerializer read), and `assigned` set."""
    sql, step_names, step_converters = _assigned_step_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [reader.pk, uuid])
        row = cursor.fetchone()
    if row is None:
        return None
    step = instance_from_row(Step, step_names, step_converters, row[:-2])
    step.chain = Chain.from_db(connection.alias, ["id", "uuid", "status"], [step.chain_id, *row[-2:]])
    step.assigned = True
    return step


def set_role(user: Any, role: str) -> None:
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}: choose one of {', '.join(Role.values)}")
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)


# --- the queue -------------------------------------------------------------------------------


# Chains still open for review: an assignment on any other chain has nothing left to hand out.
_OPEN_CHAIN: Final = (Chain.Status.PENDING, Chain.Status.IN_REVIEW)
_FINISHED_CHAIN: Final = (Chain.Status.VERIFIED, Chain.Status.REJECTED)
_WORKING: Final = (Assignment.Status.OPEN, Assignment.Status.IN_PROGRESS)


def queue_counts(reader: Any) -> dict[str, int]:
    rows = (
        Assignment.objects.filter(reader=reader)
        .exclude(status__in=_WORKING, chain__status__in=_FINISHED_CHAIN)
        .values("status")
        .annotate(n=Count("id"))
    )
    counts = {status: 0 for status in Assignment.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def next_chain_for(reader: Any) -> Chain | None:
    """Hand out the reader's next chain: the one in progress, else the oldest open assignment.

    Only chains still open for review are handed out: one verified or rejected meanwhile (by
    adjudication, say) is passed over. Rows are locked with SKIP LOCKED, so two requests at
    once (two tabs) never claim the same open assignment.
    """
    with transaction.atomic():
        in_progress = (
            Assignment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                reader=reader, status=Assignment.Status.IN_PROGRESS, chain__status__in=_OPEN_CHAIN
            )
            .order_by("started_at", "id")
            .first()
        )
        if in_progress is not None:
            return in_progress.chain
        assignment = (
            Assignment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(reader=reader, status=Assignment.Status.OPEN, chain__status__in=_OPEN_CHAIN)
            .order_by("assigned_at", "id")
            .first()
        )
        if assignment is None:
            return None
        assignment.status = Assignment.Status.IN_PROGRESS
        assignment.started_at = timezone.now()
        assignment.save(update_fields=["status", "started_at"])
        Chain.objects.filter(pk=assignment.chain_id, status=Chain.Status.PENDING).update(
            status=Chain.Status.IN_REVIEW
        )
        return Chain.objects.get(pk=assignment.chain_id)


def open_chain(chain: Chain, reader: Any) -> None:
    """The reader opened the case page: their assignment is now in progress."""
    Assignment.objects.filter(chain=chain, reader=reader, status=Assignment.Status.OPEN).update(
        status=Assignment.Status.IN_PROGRESS, started_at=timezone.now()
    )
    Chain.objects.filter(pk=chain.pk, status=Chain.Status.PENDING).update(
        status=Chain.Status.IN_REVIEW
    )
    ReviewEvent.objects.create(chain=chain, actor=reader, action="open")


@dataclass(frozen=True)
class Assigned:
    """What `assign_chains` did: chains newly assigned, and those it left alone and why."""

    created: int = 0
    finished: int = 0  # already verified or rejected: nothing left to review
    taken: int = 0  # another reader has it open or in progress
    double_read: int = 0  # out for double reading: its readers have private copies

    def message(self, reader: Any, of: str = "") -> str:
        """E.g. "Assigned 3 chains of RUN to READER.", then what was left alone and why."""
        chains = "chain" if self.created == 1 else "chains"
        text = f"Assigned {self.created} {chains}{f' of {of}' if of else ''} to {reader.get_username()}."
        reasons = []
        if self.finished:
            reasons.append(f"{self.finished} already verified or rejected")
        if self.taken:
            reasons.append(f"{self.taken} with another reader")
        if self.double_read:
            reasons.append(f"{self.double_read} out for double reading")
        return f"{text} Left alone: {', '.join(reasons)}." if reasons else text


def assign_chains(chains: Iterable[Chain], reader: Any, *, by: Any) -> Assigned:
    """Assign each chain to `reader` (idempotent): a chain is read by one reader at a time.

    A chain already verified or rejected, or open or in progress with another reader, is left
    alone and counted in the result (a second reader of the same chain would edit it under the
    first one's hands; double reading gives each reader a private copy instead, see
    `annotation.reading`). A chain another reader skipped can be assigned again.
    """
    if not is_radiologist(reader):
        raise WorkflowError(f"{reader} is not a radiologist")
    created = finished = taken = double_read = 0
    with transaction.atomic():
        for chain in chains:
            chain = Chain.objects.select_for_update().get(pk=chain.pk)
            if Assignment.objects.filter(chain=chain, reader=reader).exists():
                continue  # already theirs
            if chain.status in _FINISHED_CHAIN:
                finished += 1
                continue
            if chain.derived.filter(purpose=Chain.Purpose.READING).exists():
                double_read += 1  # decided by its readers' copies and an adjudicator only
                continue
            if (
                Assignment.objects.filter(chain=chain, status__in=_WORKING)
                .exclude(reader=reader)
                .exists()
            ):
                taken += 1
                continue
            Assignment.objects.create(chain=chain, reader=reader, assigned_by=by)
            created += 1
            ReviewEvent.objects.create(
                chain=chain, actor=by, action="assign", after={"reader": reader.get_username()}
            )
    return Assigned(created, finished, taken, double_read)


def reader_workload() -> list[dict[str, Any]]:
    """Open and done counts per radiologist, for the curator page."""
    from django.contrib.auth import get_user_model

    readers = (
        get_user_model()
        .objects.filter(groups__name=Role.RADIOLOGIST)
        .annotate(
            open=Count("assignments", filter=Q(assignments__status__in=["open", "in_progress"])),
            done=Count("assignments", filter=Q(assignments__status="done")),
        )
        .order_by("username")
    )
    return [{"user": r, "open": r.open, "done": r.done} for r in readers]


def _assignment(chain: Chain, reader: Any) -> Assignment | None:
    return Assignment.objects.filter(chain=chain, reader=reader).first()


def record_time(chain: Chain, reader: Any, seconds: float) -> None:
    """Add active seconds on the case page; the browser reports them (bounded, never negative)."""
    seconds = max(0.0, min(float(seconds), 4 * 3600.0))
    assignment = _assignment(chain, reader)
    if assignment is not None and seconds:
        from django.db.models import F

        Assignment.objects.filter(pk=assignment.pk).update(
            seconds_spent=F("seconds_spent") + seconds
        )


def finish_chain(
    chain: Chain, reader: Any, action: str, *, expected: int | None = None, note: str = ""
) -> None:
    """Verify, reject or skip a chain as `reader`, closing their assignment."""
    with transaction.atomic():
        chain = Chain.objects.select_for_update().get(pk=chain.pk)
        if action == "verify":
            chain.verify(by=reader, expected=expected, note=note)
            status = Assignment.Status.DONE
        elif action == "reject":
            chain.reject(by=reader, expected=expected, note=note)
            status = Assignment.Status.DONE
        elif action == "skip":
            ReviewEvent.objects.create(chain=chain, actor=reader, action="skip", after={"note": note})
            if note:  # kept on the chain, as verify and reject keep theirs
                Chain.objects.filter(pk=chain.pk).update(note=note)
            status = Assignment.Status.SKIPPED
        else:
            raise WorkflowError(f"Unknown action {action!r}")
        Assignment.objects.filter(chain=chain, reader=reader).update(
            status=status, completed_at=timezone.now()
        )
        if action == "skip" and not Assignment.objects.filter(
            chain=chain, status__in=_WORKING
        ).exists():
            # Nobody is on it any more: back to pending, for the curator to hand out again.
            Chain.objects.filter(pk=chain.pk, status=Chain.Status.IN_REVIEW).update(
                status=Chain.Status.PENDING
            )


# --- chain structure (guarded by the chain's version) ----------------------------------------


def add_step(
    chain: Chain, text: str, *, by: Any, expected: int, after: Step | None = None
) -> Step:
    text = " ".join(text.split())
    if not text:
        raise WorkflowError("A new step needs some text")
    check_text(text, limit=STEP_TEXT_MAX_LENGTH, what="A step")
    with transaction.atomic():
        chain.bump(expected)
        steps = list(chain.live_steps())
        index = steps.index(after) + 1 if after is not None and after in steps else len(steps)
        top = chain.steps.aggregate(m=Max("position"))["m"] or 0
        step = Step.objects.create(
            chain=chain,
            position=top + 1,
            text=text,
            verdict=Step.Verdict.CORRECT,  # written by the reader: correct by construction
            added_by_reader=True,
        )
        steps.insert(index, step)
        _renumber(steps)
        ReviewEvent.objects.create(
            chain=chain, step=step, actor=by, action="add", after={"text": text, "index": index}
        )
    return step


def reorder_steps(chain: Chain, order: Sequence[str], *, by: Any, expected: int) -> None:
    """Put the live steps in the order of the given step UUIDs (all of them, each once)."""
    with transaction.atomic():
        steps = {str(s.uuid): s for s in chain.live_steps()}
        if sorted(order) != sorted(steps):
            raise WorkflowError("The new order must list every step of the chain exactly once")
        chain.bump(expected)
        before = [str(s.uuid) for s in sorted(steps.values(), key=lambda s: s.position)]
        _renumber([steps[key] for key in order])
        ReviewEvent.objects.create(
            chain=chain, actor=by, action="reorder", before={"order": before},
            after={"order": list(order)},
        )


def move_step(step: Step, offset: int, *, by: Any, expected: int) -> None:
    order = [str(s.uuid) for s in step.chain.live_steps()]
    index = order.index(str(step.uuid))
    target = max(0, min(len(order) - 1, index + offset))
    if target == index:
        return
    order.insert(target, order.pop(index))
    reorder_steps(step.chain, order, by=by, expected=expected)


def delete_step(step: Step, *, by: Any, expected_step: int, expected_chain: int) -> None:
    with transaction.atomic():
        step.chain.bump(expected_chain)
        step.remove(by=by, expected=expected_step)
        _renumber(list(step.chain.live_steps()))


def _renumber(steps: list[Step]) -> None:
    for position, step in enumerate(steps, start=1):
        if step.position != position:
            Step.objects.filter(pk=step.pk).update(position=position)
            step.position = position


__all__ = [
    "Assigned",
    "StaleVersion",
    "WorkflowError",
    "add_step",
    "assign_chains",
    "can_review_chain",
    "can_view_chain",
    "compared_cases",
    "delete_step",
    "finish_chain",
    "image_cases",
    "move_step",
    "next_chain_for",
    "published_chains",
    "queue_counts",
    "record_time",
    "remember_roles",
    "reorder_steps",
    "settled_by_adjudication",
    "visible_chains",
]
