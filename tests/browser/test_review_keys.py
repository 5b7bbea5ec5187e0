"""The case page as a reader types on it: notes, Enter, the step editor, actions taken while a write
is still on its way (made slow on purpose, so the tests never race the live server)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from annotation.models import Chain
from tests.browser.pages import (
    SLOW_REQUESTS,
    STEPS,
    button,
    open_chain,
    row,
    verdict_class,
)

pytestmark = pytest.mark.browser

expect: Any = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed"
).expect

SLOW_MS = 300  # longer than a key press takes, far shorter than the tests' timeouts


def test_it_saves_a_step_note_on_leaving_it_and_on_enter_without_reloading(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first, second, _ = chain.live_steps()
    login(page, "alice")
    open_chain(page, chain)
    page.evaluate("() => { window.samePage = true; }")  # gone if the page reloads

    row(page, first).get_by_role("textbox", name="Note on step 1").click()
    page.keyboard.type("Check the lateral view.")
    page.keyboard.press("Tab")  # leaving the box is enough
    expect(row(page, first).locator(".note-text")).to_have_text("Note: Check the lateral view.")

    row(page, second).get_by_role("textbox", name="Note on step 2").click()
    page.keyboard.type("Blunted on the right.")
    page.keyboard.press("Enter")
    expect(row(page, second).locator(".note-text")).to_have_text("Note: Blunted on the right.")
    assert page.evaluate("() => window.samePage === true")  # swapped in by htmx, not reloaded
    # The keys are back on the row.
    expect(row(page, second)).to_be_focused()
    page.keyboard.press("2")
    expect(row(page, second)).to_have_class(verdict_class("incorrect"))

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.note, second.note) == ("Check the lateral view.", "Blunted on the right.")
    open_chain(page, chain)
    expect(row(page, first).get_by_role("textbox", name="Note on step 1")).to_have_value(
        "Check the lateral view."
    )


def test_it_never_decides_the_chain_from_enter_or_keys_in_its_note(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    for step in chain.live_steps():
        step.mark("correct", by=alice, expected=step.version)  # so that verifying would succeed
    login(page, "alice")
    open_chain(page, chain)
    note = page.get_by_role("textbox", name="Chain note")
    note.click()
    typed = "Have to review the lateral view; I intend to reject"  # has a v, the verify key
    page.keyboard.type(typed)
    page.keyboard.press("Enter")
    expect(note).to_have_value(typed)
    button(page, "Reject chain").click()
    expect(page).to_have_url(re.compile(r"/queue/$"))
    expect(page.get_by_role("status")).to_have_text("Chain rejected.")
    chain.refresh_from_db()
    assert (chain.status, chain.note) == (Chain.Status.REJECTED, typed)
    assert not chain.events.filter(action="verify").exists()
    # Reject sends the active time with it, as verify does (it used to be lost).
    assert chain.assignments.get(reader=alice).seconds_spent > 0


def test_it_enables_verify_and_clears_the_stale_error_when_the_last_verdict_lands(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first, second, third = chain.live_steps()
    login(page, "alice")
    open_chain(page, chain)
    button(row(page, first), "Correct").click()
    expect(row(page, first)).to_have_class(verdict_class("correct"))
    button(row(page, second), "Incorrect").click()
    expect(row(page, second)).to_have_class(verdict_class("incorrect"))
    verify = button(page, "Verify chain")
    verify.click(force=True)
    alerts = page.locator("#chain-panel").get_by_role("alert")
    expect(alerts).to_have_text("1 step still without a verdict: mark every step before verifying")
    expect(verify).to_have_attribute("aria-disabled", "true")

    button(row(page, third), "Irrelevant").click()
    expect(page.locator("#progress")).to_contain_text("3 of 3 steps judged")
    expect(alerts).to_have_count(0)
    expect(verify).not_to_have_attribute("aria-disabled", "true")
    page.locator("body").press("v")
    expect(page).to_have_url(re.compile(r"/queue/$"))
    expect(page.get_by_role("status")).to_have_text("Chain verified.")


def test_it_verifies_when_v_follows_the_last_verdict_before_its_answer(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    for step in chain.live_steps()[:2]:
        step.mark("correct", by=alice, expected=step.version)
    login(page, "alice")
    open_chain(page, chain)
    page.evaluate(SLOW_REQUESTS, {"parts": ["/verdict/"], "ms": SLOW_MS})
    for key in ("j", "j", "j", "3", "v"):  # v goes while the verdict is still on its way
        page.keyboard.press(key)
    expect(page).to_have_url(re.compile(r"/queue/$"))
    expect(page.get_by_role("status")).to_have_text("Chain verified.")
    chain.refresh_from_db()
    assert chain.status == Chain.Status.VERIFIED
    assert [s.verdict for s in chain.live_steps()] == ["correct", "correct", "irrelevant"]


def test_it_keeps_a_verdict_given_while_the_note_is_saving(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first = chain.live_steps()[0]
    login(page, "alice")
    open_chain(page, chain)
    page.evaluate(SLOW_REQUESTS, {"parts": ["/note/"], "ms": SLOW_MS})
    row(page, first).get_by_role("textbox", name="Note on step 1").click()
    page.keyboard.type("Compare with the prior.")
    page.keyboard.press("Escape")  # leaves the note, which saves it
    page.keyboard.press("2")  # before the note's answer: the verdict waits for it
    expect(row(page, first)).to_have_class(verdict_class("incorrect"))
    expect(row(page, first).locator(".note-text")).to_have_text("Note: Compare with the prior.")
    expect(row(page, first).get_by_role("alert")).to_have_count(0)  # no stale-version refusal
    first.refresh_from_db()
    assert (first.note, first.verdict, first.version) == ("Compare with the prior.", "incorrect", 3)


def test_it_puts_every_key_typed_after_e_into_the_editor(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    second = chain.live_steps()[1]
    login(page, "alice")
    open_chain(page, chain)
    page.evaluate(SLOW_REQUESTS, {"parts": ["/steps/"], "ms": SLOW_MS})
    editor = row(page, second).get_by_role("textbox", name="Step text")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("e")
    page.keyboard.type(" Left too.")  # at once: the editor opens with the caret at the end
    expect(editor).to_be_focused()
    expect(editor).to_have_value("The right angle is blunted. Left too.")
    # Esc drops the draft; e at once opens the editor again, on the step's text.
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.keyboard.type(" Both sides.")
    expect(editor).to_have_value("The right angle is blunted. Both sides.")
    page.keyboard.press("Enter")
    expect(row(page, second).locator(".text")).to_have_text("The right angle is blunted. Both sides.")
    expect(editor).to_have_count(0)
    second.refresh_from_db()
    assert second.text == "The right angle is blunted. Both sides."


def test_it_keeps_the_editor_open_while_a_verdict_lands(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first = chain.live_steps()[0]
    login(page, "alice")
    open_chain(page, chain)
    page.evaluate(SLOW_REQUESTS, {"parts": ["/verdict/"], "ms": SLOW_MS})
    for key in ("j", "1", "e"):
        page.keyboard.press(key)
    page.keyboard.type(" Both of them.")
    expect(row(page, first)).to_have_class(verdict_class("correct"))  # the row was swapped
    editor = row(page, first).get_by_role("textbox", name="Step text")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Look at the costophrenic angles. Both of them.")
    page.keyboard.type(" Now.")  # the caret stayed where it was
    page.keyboard.press("Enter")
    expect(row(page, first).locator(".text")).to_have_text(
        "Look at the costophrenic angles. Both of them. Now."
    )
    first.refresh_from_db()
    assert (first.text, first.verdict) == ("Look at the costophrenic angles. Both of them. Now.", "correct")


def test_it_moves_on_with_keys_typed_while_an_edit_is_saving(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    first, second, _ = chain.live_steps()
    login(page, "alice")
    open_chain(page, chain)
    page.evaluate(SLOW_REQUESTS, {"parts": ["/edit/"], "ms": SLOW_MS})
    page.keyboard.press("j")
    page.keyboard.press("e")
    page.keyboard.type(" Both sides.")
    page.keyboard.press("Enter")
    # At once, while the edit is on its way: the keys are the row's again, not the editor's.
    assert page.evaluate("() => document.activeElement.matches('li.step')")
    page.keyboard.press("j")
    page.keyboard.press("3")
    expect(row(page, first).locator(".text")).to_have_text("Look at the costophrenic angles. Both sides.")
    expect(row(page, second)).to_have_class(verdict_class("irrelevant"))
    expect(row(page, second)).to_be_focused()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.text, first.verdict) == ("Look at the costophrenic angles. Both sides.", "unreviewed")
    assert second.verdict == "irrelevant"


def test_it_verifies_when_v_follows_an_edit_before_its_answer(
    page: Any, login: Any, make_chain: Any, alice: Any
) -> None:
    chain = make_chain(readers=(alice,), steps=STEPS)
    for step in chain.live_steps():
        step.mark("correct", by=alice, expected=step.version)
    login(page, "alice")
    open_chain(page, chain)
    page.evaluate(SLOW_REQUESTS, {"parts": ["/edit/"], "ms": SLOW_MS})
    for key in ("j", "j", "e"):
        page.keyboard.press(key)
    page.keyboard.type(" Right side.")
    # Typed as a quick reader does: each key lands while the edit is still on its way.
    for key in ("Enter", "v"):
        page.keyboard.press(key)
        page.wait_for_timeout(100)
    expect(page).to_have_url(re.compile(r"/queue/$"))
    expect(page.get_by_role("status")).to_have_text("Chain verified.")
    chain.refresh_from_db()
    assert chain.status == Chain.Status.VERIFIED
    assert chain.live_steps()[1].text == "The right angle is blunted. Right side."
