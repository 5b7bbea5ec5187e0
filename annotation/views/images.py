"""Image previews rendered from the full bit depth, cached on disk by content hash + parameters."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from annotation import imaging, services
from annotation.models import Image

SIZES = {"512": 512, "1024": 1024, "2048": 2048, "full": None}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


def _float(value: str | None) -> float | None:
    if value in (None, ""):
        return None
    number = float(value)
    if number != number or abs(number) > 1e7:  # NaN or absurd
        raise ValueError(value)
    return round(number, 1)  # bounds the number of distinct cache entries


def cached_render(image: Image, *, window: tuple[float, float] | None, invert: bool, size: str, fmt: str) -> bytes:
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


@login_required
@require_GET
def render_image(request: HttpRequest, image: str) -> HttpResponse:
    image_obj = get_object_or_404(Image, uuid=image)
    if not services.visible_chains(request.user).filter(case__images=image_obj).exists():
        raise Http404("No such image")
    try:
        center, width = _float(request.GET.get("wc")), _float(request.GET.get("ww"))
    except ValueError:
        return HttpResponseBadRequest("wc and ww must be numbers")
    window = (center, max(width, 1.0)) if center is not None and width is not None else None
    size = request.GET.get("size", "1024")
    fmt = request.GET.get("fmt", "png")
    if size not in SIZES or fmt not in CONTENT_TYPES:
        return HttpResponseBadRequest(f"size must be one of {', '.join(SIZES)}; fmt png or jpeg")
    try:
        data = cached_render(image_obj, window=window, invert=request.GET.get("invert") == "1", size=size, fmt=fmt)
    except imaging.ImageError as exc:
        return HttpResponse(f"Cannot render this image: {exc}", status=422, content_type="text/plain")
    response = HttpResponse(data, content_type=CONTENT_TYPES[fmt])
    # Same URL, same bytes: the content is keyed by the image hash and the parameters.
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response
