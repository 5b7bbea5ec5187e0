"""What browser tests wait for on the app's pages, and how they find a case page's parts."""

from __future__ import annotations

import re
from typing import Any

# The page's scripts are deferred: htmx first, then review.js, which binds the keys and marks the
# review as ready. A page without a review (a verified chain, read only) needs htmx alone.
REVIEW_READY = """() => {
    const review = document.querySelector('.review');
    return window.htmx !== undefined && (review === null || review.dataset.ready === '1');
}"""

# A slow network for the page's own requests: sends to URLs containing any of the given parts
# wait `ms` first, so what a reader does while a write is in flight can be tested without racing
# the live server. Pass it to page.evaluate with {"parts": [...], "ms": ...}.
SLOW_REQUESTS = """({parts, ms}) => {
    const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.open = function (method, url, ...rest) {
        this.slowUrl = String(url);
        return open.call(this, method, url, ...rest);
    };
    XMLHttpRequest.prototype.send = function (body) {
        if (!parts.some((part) => this.slowUrl.includes(part))) return send.call(this, body);
        setTimeout(() => send.call(this, body), ms);
    };
}"""


STEPS = ("Look at the costophrenic angles.", "The right angle is blunted.", "Answer: A) Yes.")


def open_chain(page: Any, chain: Any) -> None:
    """Open a chain's case page and wait until its keys are bound."""
    page.goto(f"/chains/{chain.uuid}/")
    page.wait_for_function(REVIEW_READY)


def row(page: Any, step: Any) -> Any:
    return page.locator(f"#step-{step.uuid}")


def button(scope: Any, name: str) -> Any:
    return scope.get_by_role("button", name=name, exact=True)


def verdict_class(verdict: str) -> re.Pattern[str]:
    return re.compile(rf"\bverdict-{verdict}\b")
