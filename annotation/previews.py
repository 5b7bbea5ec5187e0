"""Preview renders cached on disk by image hash + parameters, and warming them ahead of the reader.

A 3000x3000 JPEG 2000 takes over a second to decode; the reader should never wait for it. When
a case is handed out, the default previews of the reader's next case are rendered in the
background worker, so opening it reads a cached file (well under 5 ms).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django_tasks import task

from annotation import imaging
from annotation.models import Assignment, Image

SIZES = {"512": 512, "1024": 1024, "2048": 2048, "full": None}
log = logging.getLogger(__name__)


def cached_render(
    image: Image, *, window: tuple[float, float] | None = None, invert: bool = False,
    size: str = "1024", fmt: str = "png",
) -> bytes:
    params = f"{window}|{invert}|{size}|{fmt}|v1"
    key = hashlib.sha256(params.encode()).hexdigest()[:16]
    path = settings.RENDER_CACHE / image.sha256[:2] / f"{image.sha256}-{key}.{fmt}"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = imaging.render(image.path, window=window, invert=invert, max_side=SIZES[size], fmt=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{fmt}.part{id(data)}")
    partial.write_bytes(data)
    partial.replace(path)  # atomic: concurrent renders of the same key are harmless
    return data


@task()
def warm_previews(image_ids: list[int]) -> int:
    """Render the default previews of these images into the cache; returns how many."""
    done = 0
    for image in Image.objects.filter(pk__in=image_ids):
        try:
            cached_render(image)
            done += 1
        except imaging.ImageError as exc:  # the page shows the same error when it asks
            log.warning("cannot pre-render image %s: %s", image.uuid, exc)
    return done


def warm_next_for(reader: Any) -> None:
    """Queue the rendering of the reader's next open case's images."""
    upcoming = (
        Assignment.objects.filter(reader=reader, status=Assignment.Status.OPEN)
        .order_by("assigned_at", "id")
        .values_list("chain__case_id", flat=True)[:1]
    )
    ids = list(Image.objects.filter(caseimage__case_id__in=list(upcoming)).values_list("pk", flat=True))
    if ids:
        warm_previews.enqueue(ids)
