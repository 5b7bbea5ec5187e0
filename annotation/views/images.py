"""Image previews rendered from the full bit depth, cached on disk by content hash + parameters."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from annotation import imaging, services
from annotation.models import Image
from annotation.previews import SIZES, cached_render

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}


def _float(value: str | None) -> float | None:
    if value in (None, ""):
        return None
    number = float(value)
    if number != number or abs(number) > 1e7:  # NaN or absurd
        raise ValueError(value)
    return round(number, 1)  # bounds the number of distinct cache entries


@login_required
@require_GET
def render_image(request: HttpRequest, image: str) -> HttpResponse:
    image_obj = get_object_or_404(Image, uuid=image)
    if not services.image_cases(request.user).filter(images=image_obj).exists():
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
