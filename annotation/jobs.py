"""Background jobs: a Job row the UI polls for progress, run by a django-tasks task.

    job = jobs.start("export", user, params={...}, runner=run_export_job)

`runner(job, report)` does the work; `report(progress, total, message)` updates the row (at
most a few times a second). An exception marks the job failed with a readable error; nothing is
swallowed.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import task

from annotation.models import Job

Report = Callable[[int, int, str], None]
Runner = Callable[[Job, Report], dict[str, Any]]


def start(kind: str, user: Any, *, params: dict[str, Any], runner: str) -> Job:
    """Create the job row and enqueue its task once the transaction commits.

    `runner` is the dotted path of a function `(job, report) -> result dict`.
    """
    job = Job.objects.create(
        kind=kind, created_by=user if user and user.pk else None,
        params={**params, "runner": runner}, message="Queued",
    )
    transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: Job) -> None:
    result = run_job.enqueue(str(job.uuid))
    Job.objects.filter(pk=job.pk).update(task_id=str(result.id))


@task()
def run_job(job_uuid: str) -> None:
    execute(Job.objects.get(uuid=job_uuid))


def execute(job: Job) -> Job:
    """Run a job in this process (the worker, or a test) and record the outcome."""
    runner: Runner = import_string(job.params["runner"])
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, started_at=timezone.now(), message="Running"
    )
    last = [0.0]

    def report(progress: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] < 0.25 and progress < total:
            return  # throttled: the page polls about once a second
        last[0] = now
        Job.objects.filter(pk=job.pk).update(progress=progress, total=total, message=message[:500])

    try:
        result = runner(job, report)
    except Exception as exc:
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED, finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=8)}",
            message=f"Failed: {exc}"[:500],
        )
        raise
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.DONE, finished_at=timezone.now(), result=result or {}, message="Done"
    )
    job.refresh_from_db()
    return job
