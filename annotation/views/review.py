"""The radiologist's screens: the queue and the case review page (htmx, works without it too).

Each POST returns the fragment for its swap target when htmx asked, and a redirect otherwise.
A write based on a stale version answers 409 with the current state shown inline.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case as SqlCase
from django.db.models import F, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from annotation import previews, reading, services
from annotation.diffing import word_diff
from annotation.models import (
    NOTE_MAX_LENGTH,
    STEP_TEXT_MAX_LENGTH,
    Assignment,
    Chain,
    Prediction,
    ReviewEvent,
    StaleVersion,
    Step,
    WorkflowError,
    check_text,
)

TEMPLATE = "annotation/review.html"

def _int(request: HttpRequest, name: str) -> int | None:
    try:
        return int(request.POST[name])
    except (KeyError, ValueError):
        return None


def _text(request: HttpRequest, name: str, *, what: str, limit: int) -> str:
    """A text field within the limits the API and the models share, or WorkflowError saying why."""
    value = request.POST.get(name, "")
    check_text(value.strip(), limit=limit, what=what)
    return value


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if services.is_curator(request.user):
        return redirect("annotation:curator")
    if services.is_radiologist(request.user):
        return redirect("annotation:queue")
    if reading.is_adjudicator(request.user):
        return redirect("annotation:adjudication")
    if services.is_researcher(request.user):
        return redirect("annotation:verified")
    return render(request, "annotation/no_role.html", status=403)


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    if not services.is_radiologist(request.user):
        return HttpResponseForbidden("Only radiologists have a review queue")
    # What to do next first: in progress, open, then skipped and done (latest first).
    order = SqlCase(
        When(status=Assignment.Status.IN_PROGRESS, then=0),
        When(status=Assignment.Status.OPEN, then=1),
        When(status=Assignment.Status.SKIPPED, then=2),
        default=3,
    )
    assignments = request.user.assignments.select_related("chain__case").order_by(
        order, F("completed_at").desc(nulls_last=True), "assigned_at", "id"
    )[:200]
    context = {"counts": services.queue_counts(request.user), "assignments": assignments}
    return render(request, "annotation/queue.html", context)


@login_required
@require_POST
def next_case(request: HttpRequest) -> HttpResponse:
    if not services.is_radiologist(request.user):
        return HttpResponseForbidden("Only radiologists have a review queue")
    chain = services.next_chain_for(request.user)
    previews.warm_next_for(request.user)
    if chain is None:
        messages.info(request, "Your queue is empty: nothing left to review.")
        return redirect("annotation:queue")
    return redirect("annotation:chain", chain=chain.uuid)


# --- the case page ---------------------------------------------------------------------------


def _chain_for(request: HttpRequest, chain_uuid: Any, *, write: bool) -> Chain:
    chain = get_object_or_404(Chain.objects.select_related("case"), uuid=chain_uuid)
    if not services.can_view_chain(request.user, chain):
        raise Http404("No such chain")
    if write and not services.can_review_chain(request.user, chain):
        raise PermissionDenied("You may read this chain but not change it")
    return chain



def _step_for(request: HttpRequest, step_uuid: Any) -> Step:
    step = get_object_or_404(Step.objects.select_related("chain__case"), uuid=step_uuid, deleted=False)
    _chain_for(request, step.chain.uuid, write=True)
    return step


def _panel_context(request: HttpRequest, chain: Chain, **extra: Any) -> dict[str, Any]:
    steps = list(chain.live_steps())
    judged = sum(1 for s in steps if s.verdict != Step.Verdict.UNREVIEWED)
    context = {
        "chain": chain,
        "case": chain.case,
        "steps": steps,
        "judged": judged,
        "total": len(steps),
        "can_review": services.can_review_chain(request.user, chain),
        "limits": {"text": STEP_TEXT_MAX_LENGTH, "note": NOTE_MAX_LENGTH, "chain_note": NOTE_MAX_LENGTH},
        "verdicts": [
            (Step.Verdict.CORRECT, "Correct", "1"),
            (Step.Verdict.INCORRECT, "Incorrect", "2"),
            (Step.Verdict.IRRELEVANT, "Irrelevant", "3"),
        ],
    }
    context.update(extra)
    return context


@login_required
@require_GET
def chain_page(request: HttpRequest, chain: Any) -> HttpResponse:
    chain_obj = _chain_for(request, chain, write=False)
    if services.can_review_chain(request.user, chain_obj):
        services.open_chain(chain_obj, request.user)
        chain_obj.refresh_from_db(fields=["status"])  # opening moves a pending chain to in review
    case = chain_obj.case
    editing = request.GET.get("edit", "")
    context = _panel_context(
        request,
        chain_obj,
        images=list(case.case_images.select_related("image")),
        editing_uuid=editing,
        report=case.report,
        prior_report=case.prior_report,
        # A model's chain: its answer, marked right or wrong (not the run's name: no bias).
        prediction=(
            Prediction.objects.filter(chain=chain_obj).first()
            if chain_obj.origin == Chain.Origin.MODEL else None
        ),
    )
    return render(request, TEMPLATE, context)


def _row_response(request: HttpRequest, step: Step, *, status: int = 200, **extra: Any) -> HttpResponse:
    chain = step.chain
    context = _panel_context(request, chain, step=step, **extra)
    if request.htmx:
        response = render(request, f"{TEMPLATE}#step-row", context, status=status)
        # What depends on every verdict is refreshed with the row: the progress (clearing a
        # chain-level message the change made stale) and whether the chain can be verified.
        for partial in ("chain-state", "verify-button"):
            response.content += render(request, f"{TEMPLATE}#{partial}", {**context, "oob": True}).content
        return trigger_client_event(response, "chainChanged")
    for key in ("row_conflict", "row_error"):
        if key in extra:
            messages.error(request, extra[key])
    return redirect(reverse("annotation:chain", args=[chain.uuid]) + f"#step-{step.uuid}")


def _conflict_text(exc: StaleVersion) -> str:
    return "Someone changed this since you loaded it; here is the current version. Your change was not applied."


@login_required
@require_POST
def step_verdict(request: HttpRequest, step: Any) -> HttpResponse:
    step_obj = _step_for(request, step)
    try:
        step_obj.mark(request.POST.get("verdict", ""), by=request.user, expected=_int(request, "version") or 0)
    except StaleVersion as exc:
        return _row_response(request, step_obj, status=409, row_conflict=_conflict_text(exc))
    except WorkflowError as exc:
        return _row_response(request, step_obj, status=400, row_error=str(exc))
    return _row_response(request, step_obj)


@login_required
def step_edit(request: HttpRequest, step: Any) -> HttpResponse:
    step_obj = _step_for(request, step)
    if request.method == "GET":
        if not request.htmx:
            return redirect(reverse("annotation:chain", args=[step_obj.chain.uuid]) + f"?edit={step_obj.uuid}#step-{step_obj.uuid}")
        return render(request, f"{TEMPLATE}#step-row", _panel_context(request, step_obj.chain, step=step_obj, editing_uuid=str(step_obj.uuid)))
    if request.method != "POST":
        return HttpResponse(status=405)
    try:
        text = _text(request, "text", what="A step", limit=STEP_TEXT_MAX_LENGTH)
    except WorkflowError as exc:
        return _row_response(request, step_obj, status=400, row_error=str(exc), editing_uuid=str(step_obj.uuid))
    try:
        step_obj.edit(text, by=request.user, expected=_int(request, "version") or 0)
    except StaleVersion as exc:
        return _row_response(request, step_obj, status=409, row_conflict=_conflict_text(exc), draft=text, editing_uuid=str(step_obj.uuid))
    except WorkflowError as exc:
        return _row_response(request, step_obj, status=400, row_error=str(exc), editing_uuid=str(step_obj.uuid))
    return _row_response(request, step_obj)


@login_required
@require_GET
def step_row(request: HttpRequest, step: Any) -> HttpResponse:
    """The plain row again (Esc / Cancel on an edit)."""
    step_obj = _step_for(request, step)
    if not request.htmx:
        return redirect(reverse("annotation:chain", args=[step_obj.chain.uuid]) + f"#step-{step_obj.uuid}")
    return render(request, f"{TEMPLATE}#step-row", _panel_context(request, step_obj.chain, step=step_obj))


@login_required
@require_POST
def step_note(request: HttpRequest, step: Any) -> HttpResponse:
    step_obj = _step_for(request, step)
    try:
        note = _text(request, "note", what="A note", limit=NOTE_MAX_LENGTH)
        step_obj.annotate(note, by=request.user, expected=_int(request, "version") or 0)
    except StaleVersion as exc:
        return _row_response(request, step_obj, status=409, row_conflict=_conflict_text(exc))
    except WorkflowError as exc:
        return _row_response(request, step_obj, status=400, row_error=str(exc))
    return _row_response(request, step_obj)


def _panel_response(request: HttpRequest, chain: Chain, *, status: int = 200, **extra: Any) -> HttpResponse:
    chain.refresh_from_db()
    if request.htmx:
        response = render(request, f"{TEMPLATE}#chain-panel", _panel_context(request, chain, **extra), status=status)
        return trigger_client_event(response, "chainChanged")
    for key in ("conflict", "error"):
        if key in extra:
            messages.error(request, extra[key])
    return redirect("annotation:chain", chain=chain.uuid)


@login_required
@require_POST
def step_delete(request: HttpRequest, step: Any) -> HttpResponse:
    step_obj = _step_for(request, step)
    chain = step_obj.chain
    try:
        services.delete_step(step_obj, by=request.user, expected_step=_int(request, "version") or 0, expected_chain=_int(request, "chain_version") or 0)
    except StaleVersion:
        return _panel_response(request, chain, status=409, conflict="The chain changed since you loaded it; nothing was deleted. This is the current chain.")
    return _panel_response(request, chain)


@login_required
@require_POST
def step_move(request: HttpRequest, step: Any) -> HttpResponse:
    step_obj = _step_for(request, step)
    chain = step_obj.chain
    offset = -1 if request.POST.get("direction") == "up" else 1
    try:
        services.move_step(step_obj, offset, by=request.user, expected=_int(request, "chain_version") or 0)
    except StaleVersion:
        return _panel_response(request, chain, status=409, conflict="The chain changed since you loaded it; nothing was moved. This is the current order.")
    return _panel_response(request, chain)


@login_required
@require_POST
def chain_reorder(request: HttpRequest, chain: Any) -> HttpResponse:
    chain_obj = _chain_for(request, chain, write=True)
    order = request.POST.getlist("order")
    try:
        services.reorder_steps(chain_obj, order, by=request.user, expected=_int(request, "chain_version") or 0)
    except StaleVersion:
        return _panel_response(request, chain_obj, status=409, conflict="The chain changed since you loaded it; the order was not saved. This is the current order.")
    except WorkflowError as exc:
        return _panel_response(request, chain_obj, status=400, error=str(exc))
    return _panel_response(request, chain_obj)


@login_required
@require_POST
def step_add(request: HttpRequest, chain: Any) -> HttpResponse:
    chain_obj = _chain_for(request, chain, write=True)
    after = None
    if request.POST.get("after"):
        try:
            after = chain_obj.steps.filter(uuid=request.POST["after"], deleted=False).first()
        except ValidationError:  # not a UUID
            return _panel_response(request, chain_obj, status=400, error="No such step to add the new one after.")
    try:
        text = _text(request, "text", what="A step", limit=STEP_TEXT_MAX_LENGTH)
        services.add_step(chain_obj, text, by=request.user, expected=_int(request, "chain_version") or 0, after=after)
    except StaleVersion:
        return _panel_response(request, chain_obj, status=409, conflict="The chain changed since you loaded it; the step was not added. This is the current chain.", draft=request.POST.get("text", ""))
    except WorkflowError as exc:
        return _panel_response(request, chain_obj, status=400, error=str(exc))
    return _panel_response(request, chain_obj)


@login_required
@require_POST
def chain_finish(request: HttpRequest, chain: Any, action: str) -> HttpResponse:
    chain_obj = _chain_for(request, chain, write=True)
    seconds = request.POST.get("seconds")
    if seconds:
        try:
            services.record_time(chain_obj, request.user, float(seconds))
        except ValueError:
            pass
    try:
        note = _text(request, "note", what="A note", limit=NOTE_MAX_LENGTH)
    except WorkflowError as exc:
        return _panel_response(request, chain_obj, status=400, error=str(exc))
    try:
        services.finish_chain(chain_obj, request.user, action, expected=_int(request, "chain_version"), note=note)
    except StaleVersion:
        return _panel_response(request, chain_obj, status=409, conflict="The chain changed since you loaded it: review the current chain, then decide again.", chain_note=note)
    except WorkflowError as exc:
        return _panel_response(request, chain_obj, status=400, error=str(exc), chain_note=note)
    done = {"verify": "Chain verified.", "reject": "Chain rejected.", "skip": "Case skipped."}[action]
    # Straight on to the reader's next case, as "Next case" would; the queue when none is left.
    following = services.next_chain_for(request.user) if services.is_radiologist(request.user) else None
    if following is not None:
        previews.warm_next_for(request.user)
        messages.success(request, f"{done} Next case.")
        target = reverse("annotation:chain", args=[following.uuid])
    else:
        messages.success(request, done)
        target = reverse("annotation:queue")
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@login_required
@require_POST
def chain_time(request: HttpRequest, chain: Any) -> HttpResponse:
    """Active seconds on the page, sent by the browser when the reader leaves it."""
    chain_obj = get_object_or_404(Chain, uuid=chain)
    if not services.can_review_chain(request.user, chain_obj):
        return HttpResponse(status=204)
    try:
        services.record_time(chain_obj, request.user, float(request.POST.get("seconds", "0")))
    except ValueError:
        return HttpResponse("seconds must be a number", status=400)
    return HttpResponse(status=204)


@login_required
@require_GET
def chain_history(request: HttpRequest, chain: Any) -> HttpResponse:
    chain_obj = _chain_for(request, chain, write=False)
    events = []
    for event in chain_obj.events.select_related("actor", "step").exclude(action="open").order_by("-created_at", "-id")[:300]:
        diff = None
        if event.action == "edit":
            diff = word_diff(str(event.before.get("text", "")), str(event.after.get("text", "")))
        events.append({"event": event, "diff": diff, "summary": _summary(event)})
    context = _panel_context(request, chain_obj, events=events, history_loaded=True)
    if request.htmx:
        return render(request, f"{TEMPLATE}#history", context)
    return render(request, "annotation/history.html", context)


def _summary(event: ReviewEvent) -> str:
    at = event.after.get("at") or (event.step.position if event.step_id else None)
    position = f"step {at}" if event.step_id else "chain"
    if event.action == "verdict":
        return f"{position}: {event.before.get('verdict')} → {event.after.get('verdict')}"
    if event.action == "note":
        return f"{position}: note “{event.after.get('note', '')}”"
    if event.action in ("verify", "reject", "skip", "assign"):
        detail = event.after.get("reader") or event.after.get("note") or ""
        return f"{event.action} {detail}".strip()
    if event.action == "add":
        return f"added {position}: “{event.after.get('text', '')}”"
    if event.action == "delete":
        return f"deleted {position}"
    if event.action == "reorder":
        return "reordered the steps"
    return f"{event.action} {position}"

