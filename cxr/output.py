"""Parse a model's raw output into its reasoning steps and its answer.

Models are asked for ``<think> steps </think><answer> X </answer>`` (see `cxr.prompts`), and real
outputs stray from it in every direction: no tags at all ("... Thus, the answer is:\n\nA) Yes"),
an opening tag without its closing one (generation cut at the token limit), tags repeated, the
whole chat transcript echoed before the reply (whose prompt itself names ``<think></think>``),
the option's text instead of its letter ("Support Devices"), or nothing at all.

>>> out = parse_output("<think>No pneumothorax.\\nSmall left effusion.</think><answer>A</answer>")
>>> out.steps, out.letters, out.well_formed
(['No pneumothorax.', 'Small left effusion.'], [], True)
>>> from cxr.questions import parse_question
>>> options = parse_question("Effusion? Options:\\nA) Yes\\nB) No").options
>>> parse_output("The angles are blunted. The answer is:\\n\\nA) Yes", options).letters
['A']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from cxr.labeler import ABSENT, label_report
from cxr.questions import Option, parse_answer
from cxr.questions import answer_text as answer_text_of  # "<answer> B </answer>" -> "B"
from cxr.text import normalise_whitespace, split_steps
from cxr.vocabulary import NO_FINDING, canonical


@dataclass(frozen=True)
class ParsedOutput:
    think: str  # the reasoning: inside <think> (joined when repeated), or the text without tags
    answer_text: str  # the answer as written: inside <answer>, or after "the answer is"
    letters: list[str]  # sorted option letters the answer names ([] for open questions)
    steps: list[str]  # the reasoning split one step per line / item / sentence
    well_formed: bool  # exactly one <think>..</think> then one <answer>..</answer>, both non-empty


# A chat transcript echoed before the reply: a line that is only the role ("assistant"), or the
# special token that opens the assistant turn. The reply is what follows the last one.
_ASSISTANT_TURN: Final = re.compile(
    r"(?im)^[ \t]*assistant[ \t]*:?[ \t]*$|<\|im_start\|>\s*assistant\b|<\|assistant\|>"
)
_END_TOKENS: Final = re.compile(r"<\|(?:im_end|endoftext|eot_id|end)\|>|</s>")
_TAG: Final = re.compile(r"(?i)<(/?)(think|answer)\s*>")
_WELL_FORMED: Final = re.compile(r"(?is)\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*")
# "the answer is:", "Answer: B", "the correct option would be", "**Final answer**:"
_ANSWER_CUE: Final = re.compile(
    r"(?i)\b(?:(?:final|correct|best|right|most\s+(?:appropriate|likely))\s+"
    r"(?:answer|option|choice|finding|description|diagnosis)s?|answers?)\b"
    r"(?:\s+(?:in|for|from)\s+(?:this|the)\s+(?:chest\s+)?(?:x-ray|image|radiograph|question|options))?"
    r"(?:\s+(?:to\s+the\s+question|would\s+be|should\s+be|is|are|=))*\s*[*_]*\s*:?\s*[*_]*\s*"
)
# A line that announces the answer on the next one: "Thus, the answer is:", "we can conclude:".
_CONCLUDING: Final = (
    r"\b(?:answer|conclu\w*|options?|choices?|findings?\s+(?:in\s+[^\n:]*)?(?:are|is)|"
    r"therefore|thus|hence|diagnos\w*|best\s+(?:match|fit)\w*)\b"
)
_CONCLUSION_LINE: Final = re.compile(rf"(?im)^[^\n]*{_CONCLUDING}[^\n]*:[ \t*_]*$")
# In the last paragraph: "The findings that best fit the X-ray are: edema, effusion."
_CONCLUSION_INLINE: Final = re.compile(rf"(?i){_CONCLUDING}[^\n:]*:[ \t*_]*(\S[^\n]*)$")
_LETTER_CUE: Final = re.compile(
    r"(?:\b(?:option|answer|choice)s?\s*(?:is\s*)?:?\s*\(?([A-Z])\b\)?|(?:^|[\s*(])\(?([A-Z])\))"
)
_MARKDOWN: Final = re.compile(r"\*\*|__|^#+\s*|`")
_HAS_WORD: Final = re.compile(r"[A-Za-z0-9]")
# How much text after an answer cue counts as the answer: a line or two, never the whole tail.
_ANSWER_MAX_CHARS: Final = 300


def parse_output(text: str, options: list[Option] | None = None) -> ParsedOutput:
    """Split `text` into reasoning and answer; `options` turn the answer into letters.

    Never raises on odd text: an empty or tag-less output gives what can be read from it.
    """
    reply = _reply(text or "")
    think, answer, stated = _blocks(reply)
    if not stated:
        answer, stated = _answer_from_prose(think)
    answer = _clean(answer)
    return ParsedOutput(
        think=think.strip(),
        answer_text=answer,
        letters=_letters(answer, options or [], by_text=stated),
        steps=steps_of(think),
        well_formed=_well_formed(reply),
    )


def steps_of(reasoning: str) -> list[str]:
    """One step per line, list item or sentence (`cxr.text.split_steps`), markdown removed."""
    steps = []
    for step in split_steps(reasoning):
        step = normalise_whitespace(_MARKDOWN.sub("", step)).strip(" -:")
        if _HAS_WORD.search(step):
            steps.append(step)
    return steps


def _reply(text: str) -> str:
    """The model's own reply, without an echoed transcript or end-of-turn tokens."""
    turns = list(_ASSISTANT_TURN.finditer(text))
    if turns:
        text = text[turns[-1].end() :]
    return _END_TOKENS.sub("", text)


def _blocks(reply: str) -> tuple[str, str, bool]:
    """(reasoning, answer, whether an <answer> tag was found), tolerating broken tags.

    Reasoning is every <think> block joined; an unclosed <think> runs to the next <answer> or the
    end; a stray </think> closes everything before it. Without <think>, the reasoning is the text
    outside the <answer> blocks. The answer is the last non-empty <answer> block (an unclosed one
    runs to the end).
    """
    thinks: list[str] = []
    answers: list[str] = []
    outside: list[str] = []
    open_tag: str | None = None
    start = 0
    for tag in _TAG.finditer(reply):
        closing, name = tag.group(1) == "/", tag.group(2).lower()
        chunk = reply[start : tag.start()]
        if open_tag is None:
            if closing and name == "think" and not thinks:
                thinks.append(chunk)  # "... </think>": what came before was the reasoning
            else:
                outside.append(chunk)
        else:
            (thinks if open_tag == "think" else answers).append(chunk)
        if closing:
            open_tag = None if open_tag in (name, None) else open_tag
        else:
            open_tag = name
        start = tag.end()
    tail = reply[start:]
    if open_tag == "think":
        thinks.append(tail)
    elif open_tag == "answer":
        answers.append(tail)
    else:
        outside.append(tail)
    found = [a for a in answers if a.strip()]
    answer = found[-1] if found else ""
    think = "\n".join(t.strip() for t in thinks if t.strip())
    if not think:
        think = "\n".join(chunk.strip() for chunk in outside if chunk.strip())
    return think, answer, bool(answers)


def _answer_from_prose(text: str) -> tuple[str, bool]:
    """The answer of an untagged reply and whether it was stated as one.

    Stated: what follows the last "the answer is", or the paragraph after a concluding line that
    ends with a colon ("Based on these observations, we can conclude:"), whichever comes last.
    Otherwise the last line stands in, and only an explicit letter or an exact option text in it
    counts (see `_letters`).
    """
    candidates: list[tuple[int, str]] = []
    for cue in reversed(list(_ANSWER_CUE.finditer(text))):
        after = re.split(r"\n[ \t]*\n", text[cue.end() :].lstrip(), maxsplit=1)[0].strip()
        if _HAS_WORD.search(after):
            candidates.append((cue.end(), after))
            break
    for intro in reversed(list(_CONCLUSION_LINE.finditer(text))):
        # Only near the end: "Let's consider each option:" opens the reasoning, not the answer.
        following = [p for p in re.split(r"\n[ \t]*\n", text[intro.end() :]) if p.strip()]
        if following and len(following) <= 2 and _HAS_WORD.search(following[0]):
            candidates.append((intro.end(), following[0].strip()))
            break
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text) if _HAS_WORD.search(p)]
    if paragraphs:
        last = paragraphs[-1].strip()
        inline = _CONCLUSION_INLINE.search(last)
        if inline:
            candidates.append((len(text), inline.group(1).strip()))
    if candidates:
        return max(candidates)[1][:_ANSWER_MAX_CHARS], True
    lines = [line for line in text.splitlines() if _HAS_WORD.search(line)]
    return (lines[-1][:_ANSWER_MAX_CHARS] if lines else ""), False


def _clean(answer: str) -> str:
    return normalise_whitespace(_MARKDOWN.sub("", answer)).strip(" .")


def _letters(answer: str, options: list[Option], *, by_text: bool) -> list[str]:
    """Option letters named by the answer: its letters, else the option texts it contains.

    Option texts found inside a longer sentence count only in a stated answer (`by_text`): in
    a reasoning line that merely ends the output, "no" in "there is no effusion" is no answer.
    """
    if not options or not answer:
        return []
    try:
        return parse_answer(answer, options)  # a letter, letters, or exactly an option's text
    except ValueError:
        pass
    keys = {option.key for option in options}
    cued = {a or b for a, b in _LETTER_CUE.findall(answer)} & keys
    if cued:
        return sorted(cued)
    return _texts_named(answer, options) if by_text else []


def _texts_named(answer: str, options: list[Option]) -> list[str]:
    """Letters of the option texts found in `answer`, longest first, not overlapping.

    An answer that names every option ("Yes or No") commits to none of them.
    """
    lowered = answer.lower()
    taken = [False] * len(lowered)
    found: set[str] = set()
    for option in sorted(options, key=lambda o: len(o.text), reverse=True):
        wanted = option.text.strip().lower()
        if not wanted:
            continue
        for match in re.finditer(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)", lowered):
            if not any(taken[match.start() : match.end()]):
                taken[match.start() : match.end()] = [True] * (match.end() - match.start())
                found.add(option.key)
    if len(found) == len(options) and len(options) > 1:
        return []
    return sorted(found)


def _well_formed(reply: str) -> bool:
    match = _WELL_FORMED.fullmatch(reply)
    if match is None or len(_TAG.findall(reply)) != 4:
        return False
    return bool(match.group(1).strip()) and bool(match.group(2).strip())


_LIST_SEPARATOR: Final = re.compile(r"\s*(?:,|;|/|\band\b|\n)\s*", re.I)


def named_observations(text: str) -> frozenset[str]:
    """The vocabulary observations an open answer lists ("lung opacity, edema and effusion").

    Each listed item is a vocabulary name, or else whatever the labeler reads in it as present
    or possible; "No Finding" only when written as such.
    """
    found: set[str] = set()
    for item in _LIST_SEPARATOR.split(answer_text_of(text)):
        item = item.strip(" .:*\"'")
        if not _HAS_WORD.search(item):
            continue
        try:
            found.add(canonical(item))
            continue
        except KeyError:
            pass
        found.update(
            f.observation
            for f in label_report(item)
            if f.status != ABSENT and f.observation != NO_FINDING
        )
    return frozenset(found)


def is_correct(
    parsed: ParsedOutput, answer: str | list[str], options: list[Option] | None = None
) -> bool:
    """Whether the parsed output answers as `answer` does.

    With options: the same set of letters (an answer naming extra or fewer options is wrong).
    Without (open questions): the same set of observations, compared by vocabulary name.
    Raises ValueError when the gold `answer` itself cannot be read against the options.
    """
    if options:
        return bool(parsed.letters) and parsed.letters == parse_answer(answer, options)
    gold_text = answer if isinstance(answer, str) else ", ".join(str(a) for a in answer)
    gold = named_observations(gold_text)
    if not gold:
        return _normal_text(parsed.answer_text) == _normal_text(answer_text_of(gold_text))
    return named_observations(parsed.answer_text) == gold


def _normal_text(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .")
