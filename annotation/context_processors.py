from typing import Any

from django.http import HttpRequest

from annotation import reading, services


def roles(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "is_curator": services.is_curator(user),
        "is_radiologist": services.is_radiologist(user),
        "is_researcher": services.is_researcher(user),
        "is_adjudicator": reading.is_adjudicator(user),  # the senior reader, or a curator
    }
