"""The case page in real Chromium: marking, editing, reordering, verifying, the viewer, page weight."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from annotation.models import Chain, Image
from tests.browser.pages import REVIEW_READY, STEPS, button, open_chain, row, verdict_class

pytestmark = pytest.mark.browser

expect: Any = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed"
).expect

PAGE_WEIGHT_LIMIT = 150_000  # bytes of HTML + CSS + JS for one case page, images excluded


def test_it_reviews_a_chain_from_the_queue_to_verified(
    page: Any,
    new_page: Callable[[], Any],
    login: Any,
    make_chain: Any,
    alice: Any,
    bob: Any,
    tmp_path: Path,
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first, second, third = chain.live_steps()
    login(page, "alice")
    page.goto("/queue/")
    button(page, "Next case").click()
    expect(page).to_have_url(re.compile(rf"/chains/{chain.uuid}/$"))
    page.wait_for_function(REVIEW_READY)
    expect(page.locator("#progress")).to_contain_text("0 of 3 steps judged")

    # Each verdict once by key and once by button: j/k move, 1/2/3 judge.
    page.keyboard.press("j")
    expect(row(page, first)).to_have_class(re.compile(r"\bcurrent\b"))
    page.keyboard.press("2")
    expect(row(page, first)).to_have_class(verdict_class("incorrect"))
    button(row(page, first), "Correct").click()
    expect(button(row(page, first), "Correct")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("j")
    page.keyboard.press("3")
    expect(row(page, second)).to_have_class(verdict_class("irrelevant"))
    button(row(page, second), "Incorrect").click()
    expect(button(row(page, second), "Incorrect")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("j")
    page.keyboard.press("1")
    expect(row(page, third)).to_have_class(verdict_class("correct"))
    button(row(page, third), "Irrelevant").click()
    expect(button(row(page, third), "Irrelevant")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#progress")).to_contain_text("3 of 3 steps judged")

    # e opens the editor on the current row; Esc leaves the text as it was.
    page.keyboard.press("k")
    expect(row(page, second)).to_have_class(re.compile(r"\bcurrent\b"))
    page.keyboard.press("e")
    editor = row(page, second).get_by_role("textbox", name="Step text")
    expect(editor).to_be_focused()
    page.keyboard.type(" Not saved.")
    page.keyboard.press("Escape")
    expect(editor).to_have_count(0)
    expect(row(page, second).locator(".text")).to_have_text("The right angle is blunted.")
    # The Edit button, then Enter saves.
    button(row(page, second), "Edit").click()
    expect(editor).to_be_focused()
    editor.fill("The right costophrenic angle is sharp.")
    editor.press("Enter")
    expect(row(page, second).locator(".text")).to_have_text(
        "The right costophrenic angle is sharp."
    )
    expect(row(page, second).locator(".original")).to_have_text(
        "Originally: The right angle is blunted."
    )

    # The history shows the edit as a word diff.
    page.locator("details.history summary").click()
    diff = page.locator("#history .diff")
    expect(diff.locator("del")).to_have_text(["blunted."])
    expect(diff.locator("ins")).to_have_text(["costophrenic", "sharp."])

    # Reorder with the buttons, then by dragging a row onto another (HTML5 drag and drop).
    texts = page.locator("#steps > li.step .text")
    button(row(page, first), "Move down").click()
    expect(texts).to_have_text(["The right costophrenic angle is sharp.", STEPS[0], STEPS[2]])
    button(row(page, third), "Move up").click()
    expect(texts).to_have_text(["The right costophrenic angle is sharp.", STEPS[2], STEPS[0]])
    row(page, first).locator(".step-head").drag_to(row(page, third).locator(".step-head"))
    expect(texts).to_have_text(["The right costophrenic angle is sharp.", STEPS[0], STEPS[2]])

    # Add a step: it is the reader's own, so correct by construction.
    page.get_by_role("textbox", name="New step text").fill("No pneumothorax is seen.")
    button(page, "Add step").click()
    expect(texts).to_have_count(4)
    expect(page.locator("#steps > li.step").last).to_contain_text("Correct · added")
    # The history followed every change without being reopened.
    expect(page.locator("#history")).to_contain_text("added step 4")
    page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

    page.locator("body").press("v")
    expect(page).to_have_url(re.compile(r"/queue/$"))
    expect(page.get_by_role("status")).to_contain_text("Chain verified.")

    open_chain(page, chain)
    expect(page.locator(".case .status")).to_have_text("Verified")
    expect(texts).to_have_text(
        ["The right costophrenic angle is sharp.", STEPS[0], STEPS[2], "No pneumothorax is seen."]
    )
    expect(page.locator("#steps > li.step .badge")).to_have_text(
        ["Incorrect · rewritten", "Correct", "Irrelevant", "Correct · added"]
    )
    expect(row(page, second).locator(".original")).to_have_text(
        "Originally: The right angle is blunted."
    )
    expect(page.locator("#chain-panel")).to_contain_text("Verified by alice")
    expect(page.locator("#chain-panel")).to_contain_text("Read-only.")
    expect(page.locator("#chain-panel button")).to_have_count(0)
    expect(page.locator("#steps > li.step[draggable]")).to_have_count(0)
    chain.refresh_from_db()
    assert chain.status == Chain.Status.VERIFIED

    # Bob reads films too, but this chain is not his.
    other = new_page()
    login(other, "bob")
    response = other.goto(f"/chains/{chain.uuid}/")
    assert response is not None and response.status == 404
    expect(other.get_by_role("button", name="Verify chain")).to_have_count(0)


def test_it_refuses_to_verify_while_a_step_has_no_verdict(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first = chain.live_steps()[0]
    login(page, "alice")
    open_chain(page, chain)
    expect(page.locator(".case .status")).to_have_text("In review")  # opening it started the review
    button(row(page, first), "Correct").click()
    expect(row(page, first)).to_have_class(verdict_class("correct"))
    verify = button(page, "Verify chain")
    expect(verify).to_have_attribute("aria-disabled", "true")
    # aria-disabled only signals the state: a click still goes to the server, which says why.
    verify.click(force=True)
    expect(page.locator("#chain-panel").get_by_role("alert")).to_have_text(
        "2 steps still without a verdict: mark every step before verifying"
    )
    expect(page).to_have_url(re.compile(rf"/chains/{chain.uuid}/$"))
    chain.refresh_from_db()
    assert chain.status == Chain.Status.IN_REVIEW


def test_it_shows_a_stale_edit_as_a_conflict_without_overwriting(
    page: Any, login: Any, make_chain: Any, alice: Any, tmp_path: Path
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first = chain.live_steps()[0]
    login(page, "alice")
    open_chain(page, chain)
    button(row(page, first), "Edit").click()
    editor = row(page, first).get_by_role("textbox", name="Step text")
    expect(editor).to_be_focused()
    # Someone else saves first, after this page loaded its editor.
    first.edit("Look at both costophrenic angles.", by=alice, expected=first.version)
    editor.fill("Check the angles.")
    editor.press("Enter")
    conflict = row(page, first).get_by_role("alert")
    expect(conflict).to_contain_text("Someone changed this since you loaded it")
    expect(conflict.locator(".current-text")).to_have_text(
        "Current text: “Look at both costophrenic angles.”"
    )
    expect(editor).to_have_value("Check the angles.")  # the draft is kept for another try
    page.screenshot(path=str(tmp_path / "conflict.png"))
    first.refresh_from_db()
    assert first.text == "Look at both costophrenic angles."


def _write_png(store: Path) -> Image:
    """A 256×256 horizontal grey ramp, stored the way imports store images."""
    from PIL import Image as PILImage

    ramp = PILImage.linear_gradient("L").rotate(90)  # 0 on the left, 255 on the right
    buffer = io.BytesIO()
    ramp.save(buffer, format="PNG")
    data = buffer.getvalue()
    image = Image(
        sha256=hashlib.sha256(data).hexdigest(),
        kind=Image.Kind.PNG,
        width=256,
        height=256,
        window_center=128,
        window_width=256,
        size_bytes=len(data),
    )
    image.path.parent.mkdir(parents=True, exist_ok=True)
    image.path.write_bytes(data)
    image.save()
    return image


LOADED = """(expected) => {
  const img = document.querySelector('.viewer img');
  return img.complete && img.naturalWidth > 0 && img.getAttribute('src') === expected;
}"""
# The decoded pixels' grey values along the top row (red channel; the image is grey).
TOP_ROW = """(img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(0, 0, canvas.width, 1).data.filter((_, i) => i % 4 === 0));
}"""


def test_it_shows_the_image_with_invert_reset_and_window_drag(
    page: Any, login: Any, make_chain: Any, alice: Any, tmp_path: Path
) -> None:
    image = _write_png(settings.IMAGE_STORE)
    chain = make_chain(readers=(alice,), steps=STEPS, images=(image,))
    base = f"/images/{image.uuid}/render/"
    login(page, "alice")
    open_chain(page, chain)
    img = page.locator(".viewer img")
    page.wait_for_function(LOADED, arg=base)
    assert img.evaluate("(img) => img.naturalWidth") == 256
    label = page.locator(".viewer .wl")
    expect(label).to_have_text("W 256 / L 128")
    before = img.evaluate(TOP_ROW)
    assert before[0] < 10 and before[-1] > 245
    shot = img.screenshot()
    page.screenshot(path=str(tmp_path / "case-page.png"), full_page=True)

    invert = button(page, "Invert")
    invert.click()
    page.wait_for_function(LOADED, arg=f"{base}?invert=1")
    expect(invert).to_have_attribute("aria-pressed", "true")
    inverted = img.evaluate(TOP_ROW)
    assert [255 - value for value in inverted] == before
    assert img.screenshot() != shot

    button(page, "Reset").click()
    page.wait_for_function(LOADED, arg=base)
    expect(invert).to_have_attribute("aria-pressed", "false")
    assert img.evaluate(TOP_ROW) == before

    # A drag right and down widens the window and raises the level (256/300 units a pixel).
    box = page.locator(".viewer .stage").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 30, steps=5)
    page.mouse.up()
    expect(label).to_have_text("W 307 / L 154")
    page.wait_for_function(LOADED, arg=f"{base}?wc=153.6&ww=307.2")
    page.screenshot(path=str(tmp_path / "case-page-windowed.png"), full_page=True)


def test_it_never_shows_an_older_render_that_finishes_last(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    image = _write_png(settings.IMAGE_STORE)
    chain = make_chain(readers=(alice,), steps=STEPS, images=(image,))
    base = f"/images/{image.uuid}/render/"
    held: list[Any] = []

    def hold_first_window(route: Any) -> None:
        # The first windowed render is kept waiting; every other goes at once.
        if "wc=" in route.request.url and not held:
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/render/\?"), hold_first_window)
    login(page, "alice")
    open_chain(page, chain)
    page.wait_for_function(LOADED, arg=base)
    box = page.locator(".viewer .stage").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    label = page.locator(".viewer .wl")
    for dx in (60, 120):  # two drags right: 256 + 51.2, then + 102.4
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + dx, y, steps=3)
        page.mouse.up()
    expect(label).to_have_text("W 410 / L 128")
    page.wait_for_function(LOADED, arg=f"{base}?wc=128.0&ww=409.6")
    assert len(held) == 1 and "ww=307.2" in held[0].request.url
    with page.expect_request_finished(lambda request: "ww=307.2" in request.url):
        held[0].continue_()
    page.evaluate("() => new Promise((done) => setTimeout(done, 300))")  # its onload has run
    assert page.locator(".viewer img").get_attribute("src") == f"{base}?wc=128.0&ww=409.6"
    expect(label).to_have_text("W 410 / L 128")


def test_it_keeps_the_case_page_under_150_kb(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    login(page, "alice")
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    page.goto(f"/chains/{chain.uuid}/", wait_until="networkidle")
    sizes = {
        response.url: len(response.body())
        for response in responses
        if response.request.resource_type in ("document", "stylesheet", "script")
    }
    total = sum(sizes.values())
    print(f"case page weight: {total} bytes (HTML + CSS + JS)")
    for url, size in sorted(sizes.items(), key=lambda item: -item[1]):
        print(f"  {size:>7}  {url}")
    assert len(sizes) == 5  # the page, app.css, htmx, viewer.js, review.js
    assert total < PAGE_WEIGHT_LIMIT
