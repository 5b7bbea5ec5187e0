"""Questions with embedded options, and answers normalised to option letters.

Real case files embed the options in the question text, in several shapes:

    Does this chest X-ray show edema? Options:
    A) Yes
    B) No
    Let's think step by step. ...

or "A. text" / "(A) text" lines, or unlettered lines after "Options:" (then lettered A, B, C, ...
in order). Answers come as "B", "<answer> B </answer>", "A, C", "AC", "['A', 'C']", "B) Edema",
or the option text itself ("Support Devices", "lung opacity, edema").
"""

import ast
import re
from dataclasses import dataclass
from string import ascii_uppercase


@dataclass(frozen=True)
class Option:
    key: str  # an upper-case letter: "A", "B", ...
    text: str


@dataclass(frozen=True)
class ParsedQuestion:
    stem: str  # the question without its options block (instructions after it kept)
    options: list[Option]

    @property
    def keys(self) -> list[str]:
        return [option.key for option in self.options]


# "Options:" / "Choices:" / "Answer choices:" at the end of a line or on its own line.
_OPTIONS_LABEL = re.compile(r"(?i)[ \t]*\b(?:answer\s+)?(?:options|choices)\s*:[ \t]*$")
_LETTERED_LINE = re.compile(r"^[ \t]*(?:\(([A-Za-z])\)|([A-Za-z])[.):])[ \t]+(\S.*?)[ \t]*$")
# Inline options after a label: "Options: A) Yes B) No".
_INLINE_LABEL = re.compile(r"(?i)\b(?:answer\s+)?(?:options|choices)\s*:")
_INLINE_OPTION = re.compile(r"(?:^|(?<=\s))\(?([A-Z])[.)]\s+")
# Lines after an unlettered options block that are instructions, not options.
_INSTRUCTION = re.compile(
    r"(?i)^\s*(?:let'?s|please|answer\b|enclose|think|choose|select|respond|provide|output|"
    r"explain|reason|give|return|you\b)|<\w+>"
)

_ANSWER_TAG = re.compile(r"(?is)<answer>(.*?)(?:</answer>|$)")
_THINK_BLOCK = re.compile(r"(?is)<think>.*?(?:</think>|$)")
_ANSWER_PREFIX = re.compile(
    r"(?i)^\s*(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option|choice)s?\b\s*(?:is|are|:)?\s*:?\s*"
)
_LETTER_WITH_TEXT = re.compile(r"^\(?([A-Za-z])\s*[).:]\s*(\S.*)$", re.S)
_LETTER_TOKEN = re.compile(r"\(?([A-Za-z])\)?")
_LETTER_SEPARATOR = re.compile(r"\s*(?:,|;|/|&|\+|\band\b|\bor\b|\s)\s*", re.I)
_TEXT_SEPARATOR = re.compile(r"\s*(?:,|;|\band\b|&|\+)\s*", re.I)
_EDGE_PUNCTUATION = " \t\n.;:!\"'`*"


def parse_question(text: str) -> ParsedQuestion:
    """Split a question into its stem and embedded options (none for an open question)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    block = _lettered_block(lines)
    if block is not None:
        first, last, options = block
        before = lines[:first]
        if before:
            before[-1] = _OPTIONS_LABEL.sub("", before[-1])
        return ParsedQuestion(_join_stem(before, lines[last:]), options)
    for index, line in enumerate(lines):
        if _OPTIONS_LABEL.search(line):
            head = [*lines[:index], _OPTIONS_LABEL.sub("", line)]
            options, used = _unlettered_block(lines[index + 1 :])
            if options:
                return ParsedQuestion(_join_stem(head, lines[index + 1 + used :]), options)
    inline = _inline_options(text)
    if inline is not None:
        return inline
    return ParsedQuestion(text.strip(), [])


def lettered(text: str) -> str:
    r"""The question with its options lettered as the answers are: unlettered option lines
    ("Options:\nCardiomegaly\nEdema") become "A) Cardiomegaly", "B) Edema"; any other question
    comes back unchanged. Readers and models then see the letters an answer "B" refers to.

    >>> print(lettered("Which finding is in this chest X-ray? Options:\nEdema\nPneumothorax"))
    Which finding is in this chest X-ray? Options:
    A) Edema
    B) Pneumothorax
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if _lettered_block(lines) is not None:
        return text
    for index, line in enumerate(lines):
        if _OPTIONS_LABEL.search(line):
            options, used = _unlettered_block(lines[index + 1 :])
            if not options:
                continue
            block = iter(options)
            body = [
                f"{option.key}) {option.text}" if line.strip() and (option := next(block)) else line
                for line in lines[index + 1 : index + 1 + used]
            ]
            return "\n".join([*lines[: index + 1], *body, *lines[index + 1 + used :]])
    return text


def _join_stem(before: list[str], after: list[str]) -> str:
    parts = ["\n".join(before).strip(), "\n".join(after).strip()]
    return "\n".join(part for part in parts if part)


def _lettered_block(lines: list[str]) -> tuple[int, int, list[Option]] | None:
    """The first run of lines lettered A, B, C, ... (at least two): (first, end, options)."""
    for start, line in enumerate(lines):
        match = _LETTERED_LINE.match(line)
        if not match or (match.group(1) or match.group(2)).upper() != "A":
            continue
        options: list[Option] = []
        index = start
        while index < len(lines):
            match = _LETTERED_LINE.match(lines[index])
            expected = ascii_uppercase[len(options)] if len(options) < 26 else ""
            if not match or (match.group(1) or match.group(2)).upper() != expected:
                break
            options.append(Option(expected, match.group(3).strip()))
            index += 1
        if len(options) >= 2:
            return start, index, options
    return None


def _unlettered_block(lines: list[str]) -> tuple[list[Option], int]:
    """Options one per line after an "Options:" label, lettered in order; (options, lines used)."""
    options: list[Option] = []
    used = 0
    for line in lines:
        if not line.strip():
            if options:
                break  # a blank line closes the block
            used += 1
            continue
        if _INSTRUCTION.search(line) or len(options) >= 26:
            break
        options.append(Option(ascii_uppercase[len(options)], line.strip()))
        used += 1
    return options, used


def _inline_options(text: str) -> ParsedQuestion | None:
    """Options written on one line after a label: "Options: A) Yes B) No"."""
    label = _INLINE_LABEL.search(text)
    if label is None:
        return None
    markers = [m for m in _INLINE_OPTION.finditer(text, label.end())]
    expected = [m for i, m in enumerate(markers) if m.group(1) == ascii_uppercase[min(i, 25)]]
    if len(expected) < 2 or len(expected) != len(markers):
        return None
    options = [
        Option(m.group(1), text[m.end() : (nxt.start() if nxt else len(text))].strip())
        for m, nxt in zip(markers, [*markers[1:], None], strict=True)
    ]
    return ParsedQuestion(text[: label.start()].strip(), options)


def _normal(text: str) -> str:
    """Comparable form of an option or answer text: lower case, single spaces, no edge marks."""
    return " ".join(text.lower().split()).strip(_EDGE_PUNCTUATION)


def answer_text(answer: str) -> str:
    """The answer proper: inside ``<answer>`` tags when present, without a leading "Answer:"."""
    tagged = _ANSWER_TAG.search(answer)
    text = tagged.group(1) if tagged else _THINK_BLOCK.sub("", answer)
    return _ANSWER_PREFIX.sub("", text.strip(), count=1).strip()


def parse_answer(answer: str | list[str], options: list[Option]) -> list[str]:
    """Normalise an answer to a sorted list of option letters, or ``[text]`` for open questions.

    Raises ValueError when the answer is empty, names a letter that is not an option, or
    matches no option.

    >>> opts = [Option("A", "Pleural effusion"), Option("B", "Edema"), Option("C", "Fracture")]
    >>> parse_answer("A and C", opts), parse_answer("<answer> Edema </answer>", opts)
    (['A', 'C'], ['B'])
    """
    if not isinstance(answer, str):
        items = [str(item) for item in answer]
        if not options:
            texts = [answer_text(item) for item in items]
            return [text for text in texts if text] or _empty(answer)
        return sorted({key for item in items for key in parse_answer(item, options)})
    text = answer_text(answer)
    if not text:
        return _empty(answer)
    if not options:
        return [text]
    return sorted(set(_letters(text, options)))


def _empty(answer: object) -> list[str]:
    raise ValueError(f"empty answer: {answer!r}")


def _letters(text: str, options: list[Option]) -> list[str]:
    keys = [option.key for option in options]
    by_text = {_normal(option.text): option.key for option in options}
    wanted = _normal(text)
    if wanted in by_text:  # the option text itself, checked first: "No Finding" is no letter
        return [by_text[wanted]]
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            items = None
        if isinstance(items, (list, tuple)) and items:
            return [key for item in items for key in _letters(str(item), options)]
    letters = _letter_list(text.strip(_EDGE_PUNCTUATION), len(keys))
    if letters is None:
        labelled = _LETTER_WITH_TEXT.match(text)
        if labelled:  # "B) Edema": the letter decides, the words only explain it
            letters = [labelled.group(1).upper()]
    if letters is None:
        parts = [_normal(part) for part in _TEXT_SEPARATOR.split(text) if part.strip()]
        if len(parts) > 1 and all(part in by_text for part in parts):
            return [by_text[part] for part in parts]
        raise ValueError(
            f"answer {text!r} matches none of the options "
            + ", ".join(f"{o.key}) {o.text}" for o in options)
        )
    missing = [letter for letter in letters if letter not in keys]
    if missing:
        raise ValueError(
            f"answer {text!r} names option {', '.join(missing)}, "
            f"but the options are {', '.join(keys)}"
        )
    return letters


def _letter_list(text: str, option_count: int) -> list[str] | None:
    """Letters in "B", "A, C", "A and C", "(A) (C)", "AC"; None when the text is not that."""
    tokens = [token for token in _LETTER_SEPARATOR.split(text) if token]
    if tokens and all(_LETTER_TOKEN.fullmatch(token) for token in tokens):
        return [token.strip("()").upper() for token in tokens]
    # Run-together capitals ("AC"), no longer than the option list and without repeats.
    if text.isalpha() and text.isupper() and 1 < len(text) <= option_count:
        if len(set(text)) == len(text):
            return list(text)
    return None
