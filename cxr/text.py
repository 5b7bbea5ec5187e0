"""Sentence and step splitting for radiology reports and reasoning chains.

Reports are terse, often all capitals, numbered ("1. NO EFFUSION. 2.STABLE HEART."), full of
abbreviations and de-identification marks (``___``); reasoning chains come as lists, as one
paragraph, or as "Step 1: ..." text. Everything here keeps character offsets available
(`sentence_spans`) so that the labeler can point at the evidence in the original text.
"""

import re
from collections.abc import Iterable, Mapping

from cxr.sections import HEADER, may_have_header

# Never end a sentence: titles, Latin and other abbreviations that sit mid-sentence.
_HARD_ABBREVIATIONS = frozenset(
    "dr drs mr mrs ms prof vs v approx apprx appr e.g eg i.e ie cf fig figs st pt pts hx jr sr"
    " resp incl esp ca al ext dept ref viz".split()
)
# End a sentence only when the next word is capitalised: units and times close sentences too
# ("measures 2 cm. The heart ..."), but "2 cm. in diameter" or "4 p.m. on ___" continues.
_SOFT_ABBREVIATIONS = frozenset("cm mm m ml cc kg g mg sec min hr hrs etc am pm".split())
# Initialisms written with dots: "a.m", "p.m", "u.s"; treated like soft abbreviations.
_DOTTED = re.compile(r"(?:[a-z]\.)+[a-z]")

# Where a sentence may end: terminal punctuation (with closing quotes or brackets) before
# whitespace or the end, a blank line, or a single line break.
_CANDIDATE = re.compile(r"(?P<punct>[.!?]+[\"')\]]*)(?=\s|$)|(?P<para>\n[ \t]*\n)|(?P<newline>\n)")
# Terminal punctuation followed by whitespace: a sentence end candidate before the text's end.
_INNER_END = re.compile(r"[.!?][\"')\]]*\s")
_TOKEN_BEFORE = re.compile(r"[\w.]+$")
_NEXT_CHAR = re.compile(r"\s*(\S)")
_NEXT_CHAR_ON_LINE = re.compile(r"[ \t]*(\S)")

# List numbering: "1. ", "2) ", "(3) ", and "1.STABLE" (reports often drop the space).
# A decimal such as "1.5" never matches because a digit follows the dot.
_LIST_MARKER = re.compile(r"(?<![\w.,/\-])\(?(\d{1,2})[.)](?=[ \t]+\S|[A-Z_(])")
_BULLET = re.compile(r"[ \t]*(?:[-*\u2022]|\(?\d{1,2}[.)])[ \t]+")
_HAS_WORD = re.compile(r"[A-Za-z0-9]")

_STEP_MARKER = re.compile(
    r"(?i)(?<![\w])(?:\*\*|__)?step[ \t]*(\d+)[ \t]*(?:\*\*|__)?[ \t]*[:.)\-\u2013]"
    r"(?:\*\*|__)?[ \t]*"
)
_LINE_BULLET = re.compile(r"(?m)^[ \t]*[-*\u2022][ \t]+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_LEADING_STEP = re.compile(
    r"(?i)^\s*(?:(?:\*\*|__)?step[ \t]*\d+[ \t]*(?:\*\*|__)?[ \t]*[:.)\-\u2013](?:\*\*|__)?|"
    r"\(?\d{1,2}[.)](?!\d)|[-*\u2022])\s*"
)
_WHITESPACE = re.compile(r"\s+")


def _is_sentence_start(text: str, index: int) -> bool:
    """True when only whitespace separates `index` from the start, a line break, or ``.!?:;``."""
    previous = _previous_char(text, index)
    return not previous or previous in ".!?:;\n"


def _previous_char(text: str, index: int) -> str:
    """The last character before `index` that is not a space or tab, or "" at the start."""
    index -= 1
    while index >= 0 and text[index] in " \t":
        index -= 1
    return text[index] if index >= 0 else ""


def _next_char(text: str, index: int) -> str:
    """The first non-whitespace character at or after `index`, or "" at the end."""
    match = _NEXT_CHAR.match(text, index)
    return match.group(1) if match else ""


def _list_markers(text: str) -> list[tuple[int, int]]:
    """Spans of list-numbering markers that start an item.

    A marker counts when it starts a sentence or line, or continues the running numbering
    ("LOW LUNG VOLUMES 3. MILD CROWDING" after a "2."); "measuring 2. The ..." does not.
    """
    accepted: list[tuple[int, int]] = []
    last = 0
    for match in _LIST_MARKER.finditer(text):
        number = int(match.group(1))
        # "1)" cannot be mistaken for a sentence end, so it opens a list anywhere.
        opens_list = number == 1 and match.group(0).endswith(")")
        if (last and number == last + 1) or opens_list or _is_sentence_start(text, match.start()):
            accepted.append((match.start(), match.end()))
            last = number
    return accepted


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Decide whether a full stop candidate really closes a sentence."""
    punct = match.group("punct")
    if punct[0] != "." or len(punct.rstrip("\"')]")) > 1:
        return True  # "?", "!", "..." always close
    next_char = _next_char(text, match.end())
    token_match = _TOKEN_BEFORE.search(text, max(0, match.start() - 24), match.start())
    token = token_match.group(0).lstrip(".").lower() if token_match else ""
    if token in _HARD_ABBREVIATIONS:
        return False
    if token == "no" and (next_char.isdigit() or next_char == "#"):
        return False  # "No. 5" is a number, "Effusion? No. The ..." is an answer
    if token in _SOFT_ABBREVIATIONS or _DOTTED.fullmatch(token):
        return not next_char.islower()
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of `text`, in order.

    Spans exclude surrounding whitespace, list numbering and bullets, and lone section labels;
    ``text[start:end]`` is the sentence exactly as written (line breaks included).
    """
    if "\n" not in text and not _INNER_END.search(text.rstrip()) and not _LIST_MARKER.search(text):
        # One sentence at most (the usual model step): no line break, no list numbering, and
        # no terminal punctuation before the end; the full pass below would cut nothing else.
        span = _trim(text, 0, len(text))
        return [span] if span is not None else []
    return _all_sentence_spans(text)


def _all_sentence_spans(text: str) -> list[tuple[int, int]]:
    """`sentence_spans` without its shortcut for one-sentence texts."""
    markers = _list_markers(text)
    inside_marker = {end - 1 for _, end in markers}  # the dot or bracket of "2." / "2)"
    # Each cut is (end of the sentence before, start of the sentence after).
    cuts: list[tuple[int, int]] = [(start, end) for start, end in markers]
    for match in _CANDIDATE.finditer(text):
        if match.group("punct") is not None:
            if match.start() in inside_marker or not _ends_sentence(text, match):
                continue
            cuts.append((match.end(), match.end()))
        elif match.group("para") is not None:
            cuts.append((match.start(), match.end()))
        else:
            # A single line break ends a sentence unless the next line continues it in lower
            # case or the line ends mid-phrase (hyphen, comma): reports are often hard-wrapped.
            after = _NEXT_CHAR_ON_LINE.match(text, match.end())
            following = after.group(1) if after else ""
            previous = _previous_char(text, match.start())
            if following and not following.islower() and previous not in {"-", ",", "("}:
                cuts.append((match.start(), match.end()))
    cuts.sort()
    spans: list[tuple[int, int]] = []
    start = 0
    for end, next_start in [*cuts, (len(text), len(text))]:
        if end >= start:
            span = _trim(text, start, end)
            if span is not None:
                spans.append(span)
        start = max(start, next_start)
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink a raw span to its sentence: drop whitespace, bullets and numbering; None if empty."""
    while True:
        while start < end and text[start].isspace():
            start += 1
        bullet = _BULLET.match(text, start, end)
        if not bullet or bullet.end() == start:
            break
        start = bullet.end()
    while end > start and text[end - 1].isspace():
        end -= 1
    piece = text[start:end]
    # A span that is only section labels ("Findings:", "Findings: / Impression:") is no sentence.
    if not _HAS_WORD.search(piece):
        return None
    if ":" in piece and may_have_header(piece) and not _HAS_WORD.search(HEADER.sub("", piece)):
        return None
    return start, end


def normalise_whitespace(text: str) -> str:
    """Collapse runs of whitespace (line breaks included) to single spaces."""
    # str.split() and re's \s agree on what whitespace is (both Py_UNICODE_ISSPACE).
    return " ".join(text.split())


def split_sentences(text: str) -> list[str]:
    """Split radiology text into stripped, non-empty sentences.

    >>> split_sentences("Compared to ___. 1. Tube 5.3 cm above the carina. 2.NO EFFUSION.")
    ['Compared to ___.', 'Tube 5.3 cm above the carina.', 'NO EFFUSION.']
    """
    return [normalise_whitespace(text[start:end]) for start, end in sentence_spans(text)]


def _step_marker_spans(text: str) -> list[tuple[int, int]]:
    """Spans of "Step N:" markers, or of list numbering when there is no "Step" wording."""
    steps = [(m.start(), m.end()) for m in _STEP_MARKER.finditer(text)]
    return steps or _list_markers(text)


def split_steps(text: str) -> list[str]:
    """Split a reasoning chain given as one string into steps.

    Numbered forms ("Step 1: ...", "1. ...", "2) ...") and bullets give one step per item, markers
    stripped; free text (a paragraph, or the text around a list) gives one step per sentence.
    """
    if not text or not text.strip():
        return []
    markers = _step_marker_spans(text) + [(m.start(), m.end()) for m in _LINE_BULLET.finditer(text)]
    if not markers:
        return split_sentences(text)
    markers = sorted(set(markers))
    steps: list[str] = []
    steps.extend(_free_text_steps(text[: markers[0][0]]))
    for index, (_, body_start) in enumerate(markers):
        body_end = markers[index + 1][0] if index + 1 < len(markers) else len(text)
        body = text[body_start:body_end]
        # A blank line closes a numbered item; what follows is free text, not part of the item.
        blank = _BLANK_LINE.search(body)
        item, rest = (body[: blank.start()], body[blank.end() :]) if blank else (body, "")
        item = normalise_whitespace(item)
        if item:
            steps.append(item)
        steps.extend(_free_text_steps(rest))
    return steps


def _free_text_steps(text: str) -> list[str]:
    return split_sentences(text) if text.strip() else []


def strip_step_marker(step: str) -> str:
    """Remove a leading "Step N:", "N." / "N)" or bullet marker and surrounding whitespace."""
    return normalise_whitespace(_LEADING_STEP.sub("", step, count=1))


# Keys under which mined or exported chains keep their steps when given as an object.
_STEP_KEYS = ("steps", "reason_steps", "reasoning_steps", "reasoning", "chain", "text", "content")


def steps_from(value: object) -> list[str]:
    """Normalise a reasoning chain as found in real files into a list of step texts.

    Accepts a list of strings, one string, or an object holding either under a usual key
    (``steps``, ``reason_steps``, ``reasoning``, ...). Raises ValueError for anything else.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return split_steps(value)
    if isinstance(value, Mapping):
        for key in _STEP_KEYS:
            if key in value:
                return steps_from(value[key])
        raise ValueError(f"reasoning chain object has none of the keys {', '.join(_STEP_KEYS)}")
    if isinstance(value, Iterable):
        steps: list[str] = []
        for item in value:
            if isinstance(item, Mapping):
                steps.extend(steps_from(item))
            elif isinstance(item, str):
                step = strip_step_marker(item)
                if step:
                    steps.append(step)
            else:
                raise ValueError(f"reasoning step must be text, not {type(item).__name__}")
        return steps
    raise ValueError(f"reasoning chain must be text or a list of steps, not {type(value).__name__}")
