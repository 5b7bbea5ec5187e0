"""Word-level diffs for the history panel."""

from __future__ import annotations

import difflib


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """[(op, text)] with op in {"same", "del", "ins"}, at word granularity."""
    old, new = before.split(), after.split()
    pieces: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pieces.append(("same", " ".join(old[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("del", " ".join(old[i1:i2])))
        if j2 > j1:
            pieces.append(("ins", " ".join(new[j1:j2])))
    return pieces
