from typing import Any

import pytest
from django.core.management import call_command

from annotation import jobs
from annotation.models import Job


def count_to_three(job: Job, report: Any) -> dict[str, Any]:
    for i in range(1, 4):
        report(i, 3, f"step {i}")
    return {"counted": job.params["n"]}


def explode(job: Job, report: Any) -> dict[str, Any]:
    raise ValueError("bad input on line 7")


def test_it_runs_a_job_through_the_database_worker(transactional_db: Any, carol: Any) -> None:
    job = jobs.start("demo", carol, params={"n": 3}, runner="tests.annotation.test_jobs.count_to_three")
    assert Job.objects.get(pk=job.pk).status == Job.Status.QUEUED
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.result == {"counted": 3}
    assert (job.progress, job.total, job.percent) == (3, 3, 100)


def test_it_records_a_failure_with_a_readable_error(db: Any, carol: Any) -> None:
    job = Job.objects.create(kind="demo", params={"runner": "tests.annotation.test_jobs.explode"})
    with pytest.raises(ValueError):
        jobs.execute(job)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "bad input on line 7" in job.error
